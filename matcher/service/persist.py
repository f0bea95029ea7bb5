"""The persister: one PostgreSQL transaction per batch, written with psycopg 3 (COPY and set-based SQL).

For a batch of applied commands it writes the operation log rows (accepted
commands only: a refused command changes nothing, docs/adr/0006), the orders
(inserted when created in this batch, else updated, from the last event of each
order), the deals, the balances (the last state of each (user, asset)), the
ledger rows (balance events whose change is not 0), the outbox rows (the
Kafka messages of the batch's events, up to ``OUTBOX_CHUNK`` per row, ``seq`` =
the first event's seq), the depth diff messages, the counters and,
when an operator command changed them, the market configuration. Nothing here
decides anything: it turns the engine's events into rows.

Amounts are the engine's decimal strings, sent as text and parsed by
PostgreSQL: no float and no ``Decimal`` arithmetic on the way.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg

from matcher.engine import BalanceEvent, DealEvent, Event, OrderEvent
from matcher.engine.amounts import format_units
from matcher.engine.events import CANCELLED, EXPIRED, FILLED, NEW, SELF_TRADE
from matcher.service.state import STATE_ID, ms_to_dt

SCHEMA_VERSION = 1
#: Events (Kafka messages) per matcher_eventoutbox row.
OUTBOX_CHUNK = 1000
_STATUS = {FILLED: "filled", CANCELLED: "cancelled", EXPIRED: "expired", SELF_TRADE: "self_trade"}


def dumps(obj: Any) -> str:
    """Fast JSON (orjson) for the hot path; ``json`` when orjson refuses (integers beyond 64 bits,
    as in the engine's snapshots and configuration, which hold amounts in minimal units)."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return json.dumps(obj)


@dataclass
class Batch:
    """Everything one transaction writes. ``events`` are the engine's, in order."""

    time_ms: int
    ops: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    # (market, depth_seq, payload json)
    depth: list[tuple[str, int, str]] = field(default_factory=list)
    stps: list[tuple[int, str]] = field(default_factory=list)
    op_seq: int = 0
    event_seq: int = 0
    next_order_id: int = 1
    next_deal_id: int = 1
    depth_seqs: dict[str, int] = field(default_factory=dict)
    depth_changed: bool = False
    config: dict[str, Any] | None = None
    # market name -> (status, maker_fee, taker_fee) to mirror into markets_market
    market_rows: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    snapshot: dict[str, Any] | None = None
    snapshot_id: int | None = None


@dataclass
class Rows:
    """A batch turned into rows, ready for ``Persister.execute``."""

    batch: Batch
    now: datetime
    inserts: list[tuple[Any, ...]]
    updates: tuple[list[int], list[str], list[str], list[str], list[str], list[datetime]]
    deals: list[tuple[Any, ...]]
    balances: list[tuple[int, int, datetime, str, str]]
    ledger: list[tuple[Any, ...]]
    outbox: list[tuple[int, int, str]]


class Persister:
    """Writes batches on its own connection; one ``write`` at a time (the caller serialises them)."""

    def __init__(self, conn: psycopg.Connection[Any], topic_prefix: str) -> None:
        self.conn = conn
        self.topics = {"order": f"{topic_prefix}orders", "deal": f"{topic_prefix}deals",
                       "balance": f"{topic_prefix}balances", "depth": f"{topic_prefix}depth"}
        self.asset_ids: dict[str, int] = {}
        self.market_ids: dict[str, int] = {}
        # where the time goes (logged at shutdown, printed by bench/matcher_e2e.py)
        self.build_seconds = 0.0
        self.db_seconds = 0.0
        self.rows = 0
        self.sections: dict[str, float] = {}
        self.refresh_ids()

    def refresh_ids(self) -> None:
        """Asset and market ids by name (after a load_asset/load_market too)."""
        with self.conn.transaction():
            self.asset_ids = dict(self.conn.execute("SELECT symbol, id FROM markets_asset").fetchall())
            self.market_ids = dict(self.conn.execute("SELECT name, id FROM markets_market").fetchall())

    def write(self, b: Batch) -> None:
        """Write the batch in one transaction and commit; raises on any failure (the caller must crash)."""
        self.execute(self.prepare(b))

    def prepare(self, b: Batch) -> Rows:
        """Turn the batch's events into rows (Python only, no I/O).

        Separate from ``execute`` so the batching loop can prepare batch N+1 while batch N's
        transaction is in PostgreSQL (the GIL is released while psycopg waits).
        """
        t0 = time.perf_counter()
        now = ms_to_dt(b.time_ms)
        dts = {b.time_ms: now}

        def dt(ms: int) -> datetime:
            # every event of a batch carries the batch's time: one conversion per batch
            v = dts.get(ms)
            if v is None:
                v = dts[ms] = ms_to_dt(ms)
            return v

        asset_ids = self.asset_ids
        market_ids = self.market_ids
        topics = self.topics

        messages: list[str] = []  # "topic\tkey\tmessage JSON", in event seq order
        ledger: list[tuple[Any, ...]] = []
        balances: dict[tuple[int, str], tuple[int, int, datetime, str, str]] = {}
        last_order: dict[int, tuple[OrderEvent, dict[str, Any]]] = {}
        new_orders: set[int] = set()
        deals: list[tuple[Any, ...]] = []
        for ev in b.events:
            d = ev.to_dict()
            if type(ev) is BalanceEvent:
                user = ev.user
                aid = asset_ids[ev.asset.name]
                messages.append(f"{topics['balance']}\t{user}\t" + dumps(
                    {"v": SCHEMA_VERSION, "type": "balance", "seq": ev.seq, "time": ev.time, "data": d}))
                balances[(user, ev.asset.name)] = (user, aid, dt(ev.time), d["available"], d["frozen"])
                if ev.change:
                    total = format_units(ev.available + ev.frozen, ev.asset.prec)
                    ledger.append((user, aid, ev.business, d["business_id"], d["change"], total,
                                   dumps(ev.detail) if ev.detail else "{}", ev.seq, dt(ev.time)))
            elif type(ev) is OrderEvent:
                od = d["order"]
                messages.append(f"{topics['order']}\t{od['user']}\t" + dumps(
                    {"v": SCHEMA_VERSION, "type": "order", "seq": ev.seq, "time": ev.time, "data": d}))
                oid = ev.order.id
                if ev.event == NEW:
                    new_orders.add(oid)
                last_order[oid] = (ev, od)
            else:
                assert type(ev) is DealEvent
                messages.append(f"{topics['deal']}\t{d['market']}\t" + dumps(
                    {"v": SCHEMA_VERSION, "type": "deal", "seq": ev.seq, "time": ev.time, "data": d}))
                deals.append((ev.id, market_ids[d["market"]], d["price"], d["amount"], d["quote_amount"],
                              ev.maker_order_id, ev.taker_order_id, ev.maker_user, ev.taker_user,
                              d["maker_fee"], d["taker_fee"], ev.taker_side, dt(ev.time)))

        inserts: list[tuple[Any, ...]] = []
        upd_id: list[int] = []
        upd_filled: list[str] = []
        upd_fq: list[str] = []
        upd_fee: list[str] = []
        upd_status: list[str] = []
        upd_time: list[datetime] = []
        for oid, (ev, od) in last_order.items():
            reason = ev.reason
            status = ("partially_filled" if ev.filled else "open") if reason is None else _STATUS[reason]
            if oid in new_orders:
                inserts.append((oid, od["user"], market_ids[od["market"]], od["side"], od["type"], od["tif"],
                                od["post_only"], od["price"], od["amount"], od["quote_amount"], od["filled_amount"],
                                od["filled_quote"], od["fee"], asset_ids[od["fee_asset"]], status,
                                od["client_order_id"], dt(od["created_at"]), dt(od["updated_at"])))
            else:
                upd_id.append(oid)
                upd_filled.append(od["filled_amount"])
                upd_fq.append(od["filled_quote"])
                upd_fee.append(od["fee"])
                upd_status.append(status)
                upd_time.append(dt(od["updated_at"]))

        # One outbox row per run of up to OUTBOX_CHUNK consecutive events, one message per line: text, so
        # PostgreSQL neither parses nor indexes each message (docs/adr/0006). Event seqs are consecutive.
        outbox: list[tuple[int, int, str]] = []
        first_seq = b.events[0].seq if b.events else 0
        for i in range(0, len(messages), OUTBOX_CHUNK):
            chunk = messages[i:i + OUTBOX_CHUNK]
            outbox.append((first_seq + i, first_seq + i + len(chunk) - 1, "\n".join(chunk)))

        self.build_seconds += time.perf_counter() - t0
        self.rows += len(b.ops) + len(inserts) + len(upd_id) + len(deals) + len(balances) + len(ledger) + len(messages)
        return Rows(b, now, inserts, (upd_id, upd_filled, upd_fq, upd_fee, upd_status, upd_time), deals,
                    list(balances.values()), ledger, outbox)

    def execute(self, rows: Rows) -> None:
        """Write prepared rows in one transaction and commit; raises on any failure (the caller must crash)."""
        t1 = time.perf_counter()
        b, now, inserts, deals = rows.batch, rows.now, rows.inserts, rows.deals
        ledger, outbox = rows.ledger, rows.outbox
        upd_id, upd_filled, upd_fq, upd_fee, upd_status, upd_time = rows.updates
        balances = rows.balances
        conn = self.conn
        sections = self.sections
        last = [t1]

        def mark(name: str) -> None:
            t = time.perf_counter()
            sections[name] = sections.get(name, 0.0) + t - last[0]
            last[0] = t

        with conn.transaction(), conn.cursor() as cur:
            if b.ops:
                with cur.copy("COPY trading_operation (seq, time, method, params) FROM STDIN") as cp:
                    for seq, method, params in b.ops:
                        cp.write_row((seq, now, method, dumps(params)))
            mark("oplog")
            if inserts:
                with cur.copy("COPY trading_order (id, user_id, market_id, side, type, time_in_force, post_only,"
                              " price, amount, quote_amount, filled_amount, filled_quote, fee, fee_asset_id,"
                              " status, client_order_id, created_at, updated_at) FROM STDIN") as cp:
                    for row in inserts:
                        cp.write_row(row)
            mark("order_insert")
            if upd_id:
                cur.execute(
                    "UPDATE trading_order o SET filled_amount = u.fa, filled_quote = u.fq, fee = u.fee,"
                    " status = u.st, updated_at = u.ut FROM unnest(%s::bigint[], %s::text[]::numeric[],"
                    " %s::text[]::numeric[], %s::text[]::numeric[], %s::text[], %s::timestamptz[])"
                    " AS u(id, fa, fq, fee, st, ut) WHERE o.id = u.id",
                    (upd_id, upd_filled, upd_fq, upd_fee, upd_status, upd_time))
            mark("order_update")
            if b.stps:
                with cur.copy("COPY matcher_orderstp (order_id, stp) FROM STDIN") as cp:
                    for row in b.stps:
                        cp.write_row(row)
            mark("stp")
            if deals:
                with cur.copy("COPY trading_deal (id, market_id, price, amount, quote_amount, maker_order_id,"
                              " taker_order_id, maker_user_id, taker_user_id, maker_fee, taker_fee, taker_side, time)"
                              " FROM STDIN") as cp:
                    for row in deals:
                        cp.write_row(row)
            mark("deals")
            if balances:
                users, aids, times, avail, frozen = zip(*balances, strict=True)
                cur.execute(
                    "INSERT INTO trading_balance (user_id, asset_id, available, frozen, updated_at)"
                    " SELECT u, a, av, fr, t FROM unnest(%s::bigint[], %s::bigint[],"
                    " %s::text[]::numeric[], %s::text[]::numeric[], %s::timestamptz[]) AS x(u, a, av, fr, t)"
                    " ON CONFLICT (user_id, asset_id) DO UPDATE SET available = EXCLUDED.available,"
                    " frozen = EXCLUDED.frozen, updated_at = EXCLUDED.updated_at",
                    (list(users), list(aids), list(avail), list(frozen), list(times)))
            mark("balances")
            if ledger:
                with cur.copy("COPY trading_balancehistory (user_id, asset_id, business, business_id, change,"
                              " balance, detail, seq, time) FROM STDIN") as cp:
                    for row in ledger:
                        cp.write_row(row)
            mark("ledger")
            if outbox:
                with cur.copy("COPY matcher_eventoutbox (seq, last_seq, payload, delivered, created_at)"
                              " FROM STDIN") as cp:
                    for seq, last_seq, payload in outbox:
                        cp.write_row((seq, last_seq, payload, False, now))
            mark("outbox")
            if b.depth:
                with cur.copy("COPY matcher_depthoutbox (market, depth_seq, payload, delivered, created_at)"
                              " FROM STDIN") as cp:
                    for market, depth_seq, payload in b.depth:
                        cp.write_row((market, depth_seq, payload, False, now))
            mark("depth")
            for name, (status, maker, taker) in b.market_rows.items():
                cur.execute("UPDATE markets_market SET status = %s, maker_fee = %s::numeric, taker_fee = %s::numeric"
                            " WHERE name = %s", (status, maker, taker, name))
            if b.snapshot is not None:
                cur.execute("INSERT INTO matcher_snapshot (op_seq, event_seq, created_at, state)"
                            " VALUES (%s, %s, %s, %s::jsonb) RETURNING id",
                            (b.op_seq, b.event_seq, now, json.dumps(b.snapshot)))
                row = cur.fetchone()
                assert row is not None
                b.snapshot_id = row[0]
            sets = "op_seq = %s, event_seq = %s, next_order_id = %s, next_deal_id = %s, last_time = %s, updated_at = %s"
            args: list[Any] = [b.op_seq, b.event_seq, b.next_order_id, b.next_deal_id, b.time_ms, now]
            if b.depth_changed:
                sets += ", depth_seqs = %s::jsonb"
                args.append(dumps(b.depth_seqs))
            if b.config is not None:
                sets += ", config = %s::jsonb"
                args.append(dumps(b.config))
            cur.execute(f"UPDATE matcher_matcherstate SET {sets} WHERE id = %s", (*args, STATE_ID))
            mark("state")
        mark("commit")
        self.db_seconds += time.perf_counter() - t1
