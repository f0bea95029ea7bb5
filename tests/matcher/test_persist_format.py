"""The persister writes messages and COPY rows as text directly (matcher/service/persist.py): they must be
exactly what ``Event.to_dict()`` describes (contract C) and what the tables hold. No database needed."""

from __future__ import annotations

import contextlib
import json
import random
import types
from typing import Any

from psycopg.pq import ExecStatus

from matcher.engine import BalanceEvent, DealEvent, Engine, OrderEvent, view
from matcher.engine.amounts import format_units
from matcher.service.persist import Batch, Persister, message_of
from matcher.service.state import ms_to_dt

TOPICS = {"order": "p.orders", "deal": "p.deals", "balance": "p.balances", "depth": "p.depth"}
ODD = ['a"b', "back\\slash", "tab\there", "new\nline", "ünï €", "\u2028x", "cr\rx"]


class NoConnection:
    """Enough of a psycopg connection for the persister's constructor; prepare() does no I/O."""

    autocommit = True

    def transaction(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    def execute(self, *args: Any) -> None:
        return None

    class pgconn:  # the connection's libpq object
        @staticmethod
        def prepare(*args: Any) -> Any:
            return types.SimpleNamespace(status=ExecStatus.COMMAND_OK)


class OfflinePersister(Persister):
    """The persister's formatting without a connection (ids as the tables would give them)."""

    def refresh_ids(self) -> None:
        self.asset_ids = {"ETH": 11, "USDT": 12, "BTC": 13}
        self.market_ids = {"ETH_USDT": 21, "BTC_USDT": 22}


def _engine() -> Engine:
    e = Engine()
    for name, prec in (("ETH", 18), ("USDT", 6), ("BTC", 8)):
        assert e.apply("add_asset", {"name": name, "prec": prec}, 1).ok
    for base, pp, ap in (("ETH", 2, 4), ("BTC", 1, 5)):
        assert e.apply("add_market", {"name": f"{base}_USDT", "base": base, "quote": "USDT", "price_prec": pp,
                                      "amount_prec": ap, "min_amount": "0.0001", "min_notional": "1",
                                      "maker_fee": "0.001", "taker_fee": "0.002"}, 1).ok
    return e


def _commands(e: Engine, rng: random.Random, n: int) -> list[tuple[str, dict[str, Any]]]:
    """A varied mix: limits (GTC/IOC/FOK/post-only), market orders, cancels, self-trades, odd client ids,
    balance updates with and without a detail and with caller-chosen businesses and ids."""
    out: list[tuple[str, dict[str, Any]]] = []
    users = [1, 2, 3, 4]
    for i in range(n):
        r = rng.random()
        user = rng.choice(users)
        market = rng.choice(["ETH_USDT", "BTC_USDT"])
        side = rng.choice(["buy", "sell"])
        if r < 0.08:
            p: dict[str, Any] = {"user": user, "asset": rng.choice(["ETH", "USDT", "BTC"]),
                                 "business": rng.choice(["deposit", "withdraw", ODD[i % len(ODD)][:30]]),
                                 "business_id": f"id-{i}-{rng.choice(ODD)}", "change": str(rng.randint(1, 50))}
            if rng.random() < 0.5:
                p["detail"] = {"note": rng.choice(ODD), "n": rng.randint(0, 10**20)}
            out.append(("update_balance", p))
        elif r < 0.25:
            opens = e.open_orders(user)
            if opens:
                o = rng.choice(opens)
                out.append(("cancel", {"user": user, "market": o["market"], "order_id": o["id"]}))
        elif r < 0.35:
            amount = (f"{rng.randint(5, 500)}.{rng.randint(0, 99):02d}" if side == "buy"
                      else f"0.{rng.randint(1, 999):04d}")
            out.append(("place_market", {"user": user, "market": market, "side": side, "amount": amount}))
        else:
            ticks = 200_000 + rng.randint(-300, 300)
            price = f"{ticks // 100}.{ticks % 100:02d}" if market == "ETH_USDT" else f"{ticks // 10}.{ticks % 10}"
            p = {"user": user, "market": market, "side": side, "price": price,
                 "amount": f"0.{rng.randint(100, 9999):04d}",
                 "tif": rng.choice(["GTC", "GTC", "GTC", "IOC", "FOK"]),
                 "stp": rng.choice(["cancel_resting", "cancel_incoming", "cancel_both"])}
            if rng.random() < 0.1:
                p["post_only"] = True
                p["tif"] = "GTC"
            if rng.random() < 0.3:
                p["client_order_id"] = f"c{i}{rng.choice(ODD)}"
            out.append(("place_limit", p))
    return out


def _array(literal: str) -> list[str | None]:
    """Parse a one-dimensional PostgreSQL array literal as the persister writes them."""
    assert literal[0] == "{" and literal[-1] == "}"
    out: list[str | None] = []
    i, body = 0, literal[1:-1]
    while i < len(body):
        if body[i] == '"':
            j, chars = i + 1, []
            while body[j] != '"':
                if body[j] == "\\":
                    j += 1
                chars.append(body[j])
                j += 1
            out.append("".join(chars))
            i = j + 2  # past the quote and the comma
        else:
            j = body.find(",", i)
            j = len(body) if j < 0 else j
            out.append(None if body[i:j] == "NULL" else body[i:j])
            i = j + 1
    return out


#: the statement's array parameters after ``now``: columns per table, in order
TABLES = (("oplog", 3), ("inserts", 18), ("updates", 6), ("stp", 2), ("deals", 13), ("balances", 5), ("ledger", 9),
          ("outbox", 3), ("depth", 3))


def _tables(encoded: list[bytes | None]) -> dict[str, list[list[str | None]]]:
    """The rows of each table in the statement's parameters."""
    params = [None if p is None else p.decode() for p in encoded]
    out, i = {}, 1
    for name, width in TABLES:
        columns: list[list[str | None]] = [_array(p) for p in params[i:i + width - 1]]
        last = params[i + width - 1]
        if name in ("oplog", "outbox"):  # texts joined with RS, split by string_to_array(..., chr(30))
            columns.append(list(last.split("\x1e")) if last else [])
        else:
            columns.append(_array(last))
        out[name] = [list(row) for row in zip(*columns, strict=True)]
        i += width
    assert len(params) == i + 7
    return out


def test_messages_and_rows_match_to_dict() -> None:
    e = _engine()
    for u in (1, 2, 3, 4):
        e.apply("update_balance", {"user": u, "asset": "USDT", "business": "deposit", "business_id": f"u{u}",
                                   "change": "1000000"}, 2)
        e.apply("update_balance", {"user": u, "asset": "ETH", "business": "deposit", "business_id": f"e{u}",
                                   "change": "1000"}, 2)
        e.apply("update_balance", {"user": u, "asset": "BTC", "business": "deposit", "business_id": f"b{u}",
                                   "change": "100"}, 2)
    persister = OfflinePersister(NoConnection(), "p.")  # type: ignore[arg-type]
    # the same batches built piecewise, as the batching loop does while the previous batch commits
    piecewise = OfflinePersister(NoConnection(), "p.")  # type: ignore[arg-type]
    rng = random.Random(7)
    kinds: set[str] = set()
    seen_odd_coid = False
    markets_traded: set[str] = set()
    for batch_no in range(40):
        now = 1_700_000_000_000 + batch_no
        b = Batch(time_ms=now)
        for method, params in _commands(e, rng, 60):
            res = e.apply(method, params, now)
            if res.ok:
                b.ops.append((len(b.ops) + 1, method, params))
                b.events.extend(res.raw)
        rows = persister.prepare(b)
        tables = _tables(rows.params)
        b2 = Batch(time_ms=now, ops=b.ops)
        builder = piecewise.start(b2)
        step = rng.randint(1, 40)
        for i in range(0, len(b.events), step):
            b2.events.extend(b.events[i:i + step])
            builder.catch_up()
        assert builder.finish().params == rows.params
        if not b.events:
            continue
        events = [view(ev) for ev in b.events]  # the NamedTuples of what the persister read
        # messages: byte for byte what to_dict() + JSON gives, one per event, in order
        lines = []
        for row in tables["outbox"]:
            payload = row[2]
            assert payload is not None
            lines.extend(payload.split("\n"))
        assert lines == [message_of(ev, TOPICS) for ev in events]
        for line in lines:
            json.loads(line.split("\t", 2)[2])
        # rows: the last state of each order, every deal, ledger rows of balance changes
        last: dict[int, OrderEvent] = {}
        new: set[int] = set()
        for ev in events:
            kinds.add(type(ev).__name__ + ":" + getattr(ev, "event", getattr(ev, "business", "")))
            if isinstance(ev, OrderEvent):
                last[ev.order.id] = ev
                if ev.event == "new":
                    new.add(ev.order.id)
        inserts = {int(r[0] or 0): r for r in tables["inserts"]}
        assert set(inserts) == new
        upd_ids = [int(r[0] or 0) for r in tables["updates"]]
        assert set(upd_ids) == set(last) - new
        for oid, row in inserts.items():
            od = last[oid].order_dict()
            seen_odd_coid = seen_odd_coid or any(c in (od["client_order_id"] or "") for c in "\t\n\\\"")
            assert row[1:11] == [str(od["user"]), str(persister.market_ids[od["market"]]), od["side"], od["type"],
                                 od["tif"], "t" if od["post_only"] else "f", od["price"], od["amount"],
                                 od["quote_amount"], od["filled_amount"]]
            assert row[11:14] == [od["filled_quote"], od["fee"], str(persister.asset_ids[od["fee_asset"]])]
            ev = last[oid]
            status = ("partially_filled" if ev.filled else "open") if ev.reason is None else ev.reason
            assert row[14:16] == [od["client_order_id"], status]
            assert row[16] == ms_to_dt(od["created_at"]).isoformat() and row[17] == ms_to_dt(now).isoformat()
        deals = [ev.to_dict() for ev in events if isinstance(ev, DealEvent)]
        markets_traded.update(d["market"] for d in deals)
        assert [[r[0], r[2], r[3], r[4], r[9], r[10], r[11]] for r in tables["deals"]] == [
            [str(d["id"]), d["price"], d["amount"], d["quote_amount"], d["maker_fee"], d["taker_fee"],
             d["taker_side"]] for d in deals]
        changes = [ev for ev in events if isinstance(ev, BalanceEvent) and ev.change]
        ledger = tables["ledger"]
        assert len(ledger) == len(changes)
        for row, ev in zip(ledger, changes, strict=True):
            d = ev.to_dict()
            assert row[:6] == [str(ev.user), str(persister.asset_ids[d["asset"]]), d["business"], d["business_id"],
                               d["change"], format_units(ev.available + ev.frozen, ev.asset.prec)]
            assert json.loads(row[6] or "") == (d["detail"] or {})
        oplog = tables["oplog"]
        assert [json.loads(r[2] or "") for r in oplog] == [p for _, _, p in b.ops]
    assert seen_odd_coid and {"ETH_USDT", "BTC_USDT"} <= markets_traded
    assert {"OrderEvent:new", "OrderEvent:update", "OrderEvent:done", "DealEvent:", "BalanceEvent:trade",
            "BalanceEvent:fee", "BalanceEvent:freeze", "BalanceEvent:deposit"} <= kinds


def test_a_resting_orders_cached_text_keeps_no_row_tuples_after_its_insert() -> None:
    """Its row is inserted once; kept, its two tuples were walked by every young garbage collection
    while the order rested (docs/matcher.md, fourth round)."""
    e = _engine()
    e.apply("update_balance", {"user": 1, "asset": "USDT", "business": "deposit", "business_id": "u1",
                               "change": "1000000"}, 2)
    persister = OfflinePersister(NoConnection(), "p.")  # type: ignore[arg-type]
    b = Batch(time_ms=3)
    res = e.apply("place_limit", {"user": 1, "market": "ETH_USDT", "side": "buy", "price": "2000",
                                  "amount": "1"}, 3)
    assert res.ok and res.value["status"] == "open"
    b.ops.append((1, "place_limit", {}))
    b.events.extend(res.raw)
    tables = _tables(persister.prepare(b).params)
    oid = res.value["id"]
    assert [int(r[0] or 0) for r in tables["inserts"]] == [oid]
    cached = persister._orders[oid]  # still there: the order's later messages use its texts
    assert cached.row_head == () and cached.row_mid == ()
