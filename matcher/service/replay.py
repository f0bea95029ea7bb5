"""The audit: rebuild the engine from the operation log alone and compare it with the tables.

``replay(conn)`` starts from an empty engine (or a stored ``matcher_snapshot``),
applies every logged operation in ``seq`` order with its logged time, and
compares the result with what the tables hold, all inside one REPEATABLE READ
transaction so a running matcher does not move the ground underneath:

* the whole engine state (balances, open orders with fills and fees, counters,
  market configuration, used idempotency keys) against the state start-up would
  load from the tables;
* every deal the replay produces against ``trading_deal`` (no deal lost, none
  extra, same content);
* the final status, fills and fee of every order the replay touched against
  ``trading_order``;
* conservation: per asset, the sum of all balances equals the sum of the
  ledger's external changes (deposits, withdrawals, adjustments), and trades and
  fees sum to zero.

An operation that the engine refuses on replay is itself a difference: only
accepted operations are logged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

import psycopg

from matcher.engine import DealEvent, Engine, OrderEvent
from matcher.engine.amounts import format_units
from matcher.service.persist import row_status
from matcher.service.state import diff_states, dt_to_ms, normalize, snapshot_from_tables

MAX_LISTED = 20


@dataclass
class Report:
    ops: int = 0
    start_op: int = 0
    snapshot_id: int | None = None
    deals: int = 0
    orders: int = 0
    differences: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.differences.append(text)

    @property
    def ok(self) -> bool:
        return not self.differences


def _norm_num(text: str | None) -> str | None:
    """A decimal string in canonical form (the tables hold 18 places, the engine its precision)."""
    if text is None:
        return None
    with localcontext() as ctx:
        ctx.prec = 100
        d = Decimal(text)
        return "0" if d == 0 else format(d.normalize(), "f")


def replay(conn: psycopg.Connection[Any], *, snapshot: str | None = None,
           progress: Callable[[int], Any] | None = None, on_total: Callable[[int], Any] | None = None) -> Report:
    """Replay and compare; ``snapshot`` is None (from the beginning), "latest" or a snapshot id."""
    report = Report()
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
    engine = Engine()
    if snapshot is not None:
        if snapshot == "latest":
            row = conn.execute("SELECT id, op_seq, state FROM matcher_snapshot ORDER BY op_seq DESC LIMIT 1").fetchone()
        else:
            row = conn.execute("SELECT id, op_seq, state FROM matcher_snapshot WHERE id = %s",
                               (int(snapshot),)).fetchone()
        if row is None:
            raise LookupError(f"no snapshot {snapshot}")
        report.snapshot_id, report.start_op, state = row
        engine = Engine.restore(state)
    first_deal = engine.next_deal_id
    first_order = engine.next_order_id
    total = conn.execute("SELECT count(*) FROM trading_operation WHERE seq > %s", (report.start_op,)).fetchone()
    if on_total is not None:
        on_total(total[0] if total else 0)

    deals: dict[int, tuple[Any, ...]] = {}
    orders: dict[int, tuple[str, str, str, str]] = {}
    expected_seq = report.start_op + 1
    with conn.cursor(name="replay_ops") as cur:
        cur.itersize = 5000
        cur.execute("SELECT seq, time, method, params FROM trading_operation WHERE seq > %s ORDER BY seq",
                    (report.start_op,))
        for seq, time, method, params in cur:
            if seq != expected_seq:
                report.add(f"operation log: seq {expected_seq} missing (next is {seq})")
            expected_seq = seq + 1
            res = engine.apply(method, params, dt_to_ms(time))
            report.ops += 1
            if progress is not None:
                progress(1)
            if not res.ok:
                report.add(f"operation {seq} ({method}) refused on replay: {res.reason}")
                continue
            for ev in res.events:
                if type(ev) is DealEvent:
                    d = ev.to_dict()
                    deals[ev.id] = (d["market"], d["price"], d["amount"], d["quote_amount"], ev.maker_order_id,
                                    ev.taker_order_id, ev.maker_user, ev.taker_user, d["maker_fee"],
                                    d["taker_fee"], ev.taker_side, ev.time)
                elif type(ev) is OrderEvent:
                    m = ev.order.market
                    fee_prec = m.base.prec if ev.order.side == "buy" else m.quote.prec
                    orders[ev.order.id] = (row_status(ev.reason, ev.filled), format_units(ev.filled, m.amount_prec),
                                           format_units(ev.filled_quote, m.quote.prec),
                                           format_units(ev.fee, fee_prec))
    report.deals = len(deals)
    report.orders = len(orders)

    tables, _ = snapshot_from_tables(conn)
    for line in diff_states(normalize(engine.snapshot()), normalize(tables), MAX_LISTED):
        report.add("state (replay vs tables): " + line)

    seen = 0
    for row in conn.execute(
        "SELECT d.id, m.name, d.price::text, d.amount::text, d.quote_amount::text, d.maker_order_id,"
        " d.taker_order_id, d.maker_user_id, d.taker_user_id, d.maker_fee::text, d.taker_fee::text, d.taker_side,"
        " d.time FROM trading_deal d JOIN markets_market m ON m.id = d.market_id WHERE d.id >= %s ORDER BY d.id",
        (first_deal,),
    ):
        seen += 1
        did = row[0]
        table = (row[1], *map(_norm_num, row[2:5]), *row[5:9], *map(_norm_num, row[9:11]), row[11],
                 dt_to_ms(row[12]))
        mine = deals.get(did)
        if mine is None:
            report.add(f"deal {did} is in trading_deal but not produced by the replay")
            continue
        mine = (mine[0], *map(_norm_num, mine[1:4]), *mine[4:8], *map(_norm_num, mine[8:10]), *mine[10:])
        if mine != table:
            report.add(f"deal {did} differs: replay {mine} != table {table}")
    if seen != len(deals):
        have = {r[0] for r in conn.execute("SELECT id FROM trading_deal WHERE id >= %s", (first_deal,))}
        for did in sorted(set(deals) - have)[:MAX_LISTED]:
            report.add(f"deal {did} produced by the replay is missing from trading_deal")

    # orders placed during the replay, and older ones (from the snapshot) it changed
    older = [oid for oid in orders if oid < first_order]
    found: set[int] = set()
    for oid, status, filled, fq, fee in conn.execute(
        "SELECT id, status, filled_amount::text, filled_quote::text, fee::text FROM trading_order"
        " WHERE id >= %s OR id = ANY(%s)", (first_order, older),
    ):
        found.add(oid)
        mine_o = orders.get(oid)
        if mine_o is None:
            report.add(f"order {oid} is in trading_order but not produced by the replay")
        elif (mine_o[0], *map(_norm_num, mine_o[1:])) != (status, *map(_norm_num, (filled, fq, fee))):
            report.add(f"order {oid} differs: replay {mine_o} != table {(status, filled, fq, fee)}")
    for oid in sorted(set(orders) - found)[:MAX_LISTED]:
        report.add(f"order {oid} produced by the replay is missing from trading_order")

    for line in conservation(conn, engine):
        report.add("conservation: " + line)
    if len(report.differences) > 5 * MAX_LISTED:
        report.differences = report.differences[: 5 * MAX_LISTED] + ["... (more differences not listed)"]
    return report


def conservation(conn: psycopg.Connection[Any], engine: Engine) -> list[str]:
    out = []
    with localcontext() as ctx:
        ctx.prec = 100
        held: dict[str, Decimal] = {}
        for symbol, total in conn.execute(
            "SELECT a.symbol, SUM(b.available + b.frozen)::text FROM trading_balance b"
            " JOIN markets_asset a ON a.id = b.asset_id GROUP BY a.symbol"
        ):
            held[symbol] = Decimal(total)
        external: dict[str, Decimal] = {}
        for symbol, internal, total in conn.execute(
            "SELECT a.symbol, h.business IN ('trade', 'fee'), SUM(h.change)::text FROM trading_balancehistory h"
            " JOIN markets_asset a ON a.id = h.asset_id GROUP BY 1, 2"
        ):
            if internal:
                if Decimal(total) != 0:
                    out.append(f"{symbol}: trades and fees sum to {total}, not 0")
            else:
                external[symbol] = Decimal(total)
        for symbol in sorted(held.keys() | external.keys()):
            if held.get(symbol, Decimal(0)) != external.get(symbol, Decimal(0)):
                out.append(f"{symbol}: balances sum to {held.get(symbol, 0)}, credits - debits to "
                           f"{external.get(symbol, 0)}")
        for symbol, units in engine.balance_totals().items():
            prec = engine.assets[symbol].prec
            if Decimal(format_units(units, prec)) != held.get(symbol, Decimal(0)):
                out.append(f"{symbol}: replayed total {format_units(units, prec)} != tables {held.get(symbol, 0)}")
    return out
