"""Rebuilding the engine from PostgreSQL, and comparing engine states.

Start-up and ``replay_oplog`` both need the engine "as of the last committed
batch": the counters and market configuration from ``matcher_matcherstate``,
balances from ``trading_balance``, open orders from ``trading_order`` (their
remaining amount, fills and fees), the used ``(business, business_id)`` keys
from the ledger and the used client order ids from the orders. We build the
engine's own snapshot dict from those tables and call ``Engine.restore``, so
the engine checks (frozen == what open orders reserve) what we loaded.

Amount columns are read as text and converted here, exactly, without
``Decimal`` arithmetic (whose default context has 28 digits).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from matcher.engine import Engine
from matcher.engine.book import CANCEL_RESTING
from matcher.engine.core import SNAPSHOT_VERSION
from matcher.engine.events import RESERVED_BUSINESSES

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
STATE_ID = 1


def conninfo() -> str:
    """libpq connection string of Django's default database (the test database under pytest)."""
    from django.db import connection

    sd = connection.settings_dict
    parts = {
        "dbname": sd.get("NAME"),
        "user": sd.get("USER"),
        "password": sd.get("PASSWORD"),
        "host": sd.get("HOST"),
        "port": str(sd.get("PORT") or ""),
    }
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in parts.items() if v})


def ms_to_dt(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def dt_to_ms(dt: datetime) -> int:
    return (dt - EPOCH) // MS


def db_units(text: str, prec: int) -> int:
    """NUMERIC text (e.g. "1.500000000000000000") to minimal units with ``prec`` decimals, exactly."""
    sign = 1
    if text.startswith("-"):
        sign, text = -1, text[1:]
    whole, _, frac = text.partition(".")
    if frac[prec:].strip("0"):
        raise ValueError(f"{text} has more than {prec} decimals")
    return sign * int((whole or "0") + frac[:prec].ljust(prec, "0"))


class LoadedState:
    """What start-up needs besides the engine: counters the engine does not own."""

    def __init__(self, engine: Engine, op_seq: int, last_time: int, depth_seqs: dict[str, int]) -> None:
        self.engine = engine
        self.op_seq = op_seq
        self.last_time = last_time
        self.depth_seqs = depth_seqs


def ensure_state_row(conn: psycopg.Connection[Any]) -> None:
    conn.execute("INSERT INTO matcher_matcherstate (id, op_seq, event_seq, next_order_id, next_deal_id, last_time,"
                 " config, depth_seqs) VALUES (%s, 0, 0, 1, 1, 0, %s, '{}') ON CONFLICT (id) DO NOTHING",
                 (STATE_ID, '{"assets": [], "markets": []}'))


def snapshot_from_tables(conn: psycopg.Connection[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The engine snapshot dict of the last committed batch, and the state row (as a dict).

    Run inside one transaction (REPEATABLE READ when the matcher may be writing) for a consistent view.
    """
    row = conn.execute("SELECT op_seq, event_seq, next_order_id, next_deal_id, last_time, config, depth_seqs"
                       " FROM matcher_matcherstate WHERE id = %s", (STATE_ID,)).fetchone()
    if row is None:
        raise RuntimeError("matcher_matcherstate has no row: the matcher never started on this database")
    op_seq, event_seq, next_order_id, next_deal_id, last_time, config, depth_seqs = row
    precs: dict[str, int] = {name: prec for name, prec in config.get("assets", [])}
    markets = {m["name"]: m for m in config.get("markets", [])}

    balances = []
    for user, symbol, available, frozen in conn.execute(
        "SELECT b.user_id, a.symbol, b.available::text, b.frozen::text FROM trading_balance b"
        " JOIN markets_asset a ON a.id = b.asset_id ORDER BY b.user_id, a.symbol"
    ):
        if symbol not in precs:
            raise RuntimeError(f"balance of user {user} in {symbol}, an asset the matcher never loaded")
        p = precs[symbol]
        balances.append([user, symbol, db_units(available, p), db_units(frozen, p)])

    orders = []
    for (oid, user, market, side, tif, post_only, stp, price, amount, filled, filled_quote, fee, coid,
         created, updated) in conn.execute(
        "SELECT o.id, o.user_id, m.name, o.side, o.time_in_force, o.post_only, s.stp, o.price::text,"
        " o.amount::text, o.filled_amount::text, o.filled_quote::text, o.fee::text, o.client_order_id,"
        " o.created_at, o.updated_at FROM trading_order o JOIN markets_market m ON m.id = o.market_id"
        " LEFT JOIN matcher_orderstp s ON s.order_id = o.id"
        " WHERE o.status IN ('open', 'partially_filled') ORDER BY o.id"
    ):
        md = markets[market]
        fee_prec = precs[md["base"]] if side == "buy" else precs[md["quote"]]
        orders.append([
            oid, user, market, side, tif, post_only, stp or CANCEL_RESTING,
            db_units(price, md["price_prec"]), db_units(amount, md["amount_prec"]),
            db_units(filled, md["amount_prec"]), db_units(filled_quote, precs[md["quote"]]),
            db_units(fee, fee_prec), coid, dt_to_ms(created), dt_to_ms(updated),
        ])

    reserved = sorted(RESERVED_BUSINESSES)
    updates = sorted([b, i] for b, i in conn.execute(
        "SELECT DISTINCT business, business_id FROM trading_balancehistory WHERE business <> ALL(%s)", (reserved,)))
    coids: dict[int, list[str]] = {}
    for user, coid in conn.execute(
        "SELECT user_id, client_order_id FROM trading_order WHERE client_order_id IS NOT NULL"
    ):
        coids.setdefault(user, []).append(coid)

    snap = {
        "version": SNAPSHOT_VERSION,
        "event_seq": event_seq,
        "next_order_id": next_order_id,
        "next_deal_id": next_deal_id,
        "assets": config.get("assets", []),
        "markets": config.get("markets", []),
        "balances": balances,
        "orders": orders,
        "updates": updates,
        "client_order_ids": [[u, sorted(ids)] for u, ids in sorted(coids.items())],
    }
    state = {"op_seq": op_seq, "last_time": last_time, "depth_seqs": depth_seqs, "event_seq": event_seq}
    return snap, state


def load_engine(conn: psycopg.Connection[Any]) -> LoadedState:
    """The engine as of the last committed batch (creates the state row on a fresh database)."""
    with conn.transaction():
        ensure_state_row(conn)
    with conn.transaction():
        snap, state = snapshot_from_tables(conn)
    engine = Engine.restore(snap)
    return LoadedState(engine, state["op_seq"], state["last_time"], dict(state["depth_seqs"]))


def normalize(snap: dict[str, Any]) -> dict[str, Any]:
    """An engine snapshot in a canonical form for comparison.

    Accounts with zero available and zero frozen are dropped: the engine creates some
    without an event (e.g. the fee account's account of an asset before any fee), so
    the tables have no row for them, and they behave exactly like a missing account.
    """
    return {
        "event_seq": snap["event_seq"],
        "next_order_id": snap["next_order_id"],
        "next_deal_id": snap["next_deal_id"],
        "assets": sorted(map(tuple, snap["assets"])),
        "markets": sorted(
            ({**m, "user_fees": sorted(map(tuple, m["user_fees"]))} for m in snap["markets"]),
            key=lambda m: m["name"],
        ),
        "balances": sorted(tuple(b) for b in snap["balances"] if b[2] or b[3]),
        "orders": sorted(tuple(o) for o in snap["orders"]),
        "updates": sorted(map(tuple, snap["updates"])),
        "client_order_ids": sorted((u, tuple(sorted(ids))) for u, ids in snap["client_order_ids"] if ids),
    }


def diff_states(a: dict[str, Any], b: dict[str, Any], limit: int = 20) -> list[str]:
    """Human-readable differences between two normalized snapshots (empty when equal)."""
    out: list[str] = []
    for key in a.keys() | b.keys():
        va, vb = a.get(key), b.get(key)
        if va == vb:
            continue
        if isinstance(va, list) and isinstance(vb, list):
            sa, sb = set(map(repr, va)), set(map(repr, vb))
            for item in sorted(sa - sb)[:limit]:
                out.append(f"{key}: only in first: {item}")
            for item in sorted(sb - sa)[:limit]:
                out.append(f"{key}: only in second: {item}")
            if sa == sb:
                out.append(f"{key}: same items, different order or multiplicity")
        else:
            out.append(f"{key}: {va!r} != {vb!r}")
    return out
