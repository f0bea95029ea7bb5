"""The persister: one PostgreSQL transaction per batch, in one statement (psycopg 3, array literals).

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

This is the matcher's hottest Python after the engine (about five events per
command), so ``prepare`` does not go through ``Event.to_dict()`` and a dict per
message: it writes each Kafka message and each row as text directly, with the
parts of an order that never change (id, user, market, price, ...) formatted
once per order. ``message_of`` is the plain ``to_dict()`` + JSON form; the two
give the same bytes (tests/matcher/test_persist_format.py), and events that are
rare or carry caller-supplied data (a balance update with a detail, a business
of the caller's) take the plain form.

A batch is ONE statement (``STATEMENT``: a data-modifying CTE per table over
``unnest`` of array literals built here as text, one per column), run on an
autocommit connection: the statement is the transaction, one round trip. With
BEGIN, a COPY per table and COMMIT it took ~17, each a wait for PostgreSQL and
then for the GIL, and a statement for PostgreSQL to run: at 5000 commands/s in
small batches that fixed cost per batch was most of the work.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.errors import error_from_result
from psycopg.pq import ExecStatus

from matcher.engine import BalanceEvent, DealEvent, Event, OrderEvent, RawEvent, view
from matcher.engine.amounts import format_units
from matcher.engine.book import BUY, MARKET
from matcher.engine.events import CANCELLED, EXPIRED, FILLED, NEW, ORDER_STATUS, RESERVED_BUSINESSES, SELF_TRADE
from matcher.service.state import STATE_ID, ms_to_dt

SCHEMA_VERSION = 1
#: Events (Kafka messages) per matcher_eventoutbox row.
OUTBOX_CHUNK = 1000
#: trading_order.status of a finished order, by the engine's done reason
ROW_STATUS = {FILLED: "filled", CANCELLED: "cancelled", EXPIRED: "expired", SELF_TRADE: "self_trade"}


def row_status(reason: str | None, filled: int) -> str:
    """trading_order.status after an order event of this done reason and filled amount (replay_oplog
    compares the table with it)."""
    if reason is None:
        return "partially_filled" if filled else "open"
    return ROW_STATUS[reason]

_NULL = "NULL"  # in an array literal
_RS = "\x1e"  # joins texts that string_to_array(..., chr(30)) splits
_JSON_REASON = {reason: json.dumps(reason) for reason in ORDER_STATUS}  # the reason as JSON


def keyed_plans(conn: psycopg.Connection[Any]) -> None:
    """Make the plans of this session's statements find rows by their keys, whatever the table's size.

    The matcher's connections run a few statements over and over, each touching rows by primary key
    or by a partial index, and they keep a statement's plan for the life of the connection (the
    persister forces one generic plan; psycopg prepares the relay's after five runs). A plan made while
    a table was empty or small (a new exchange, the first batches after start-up) joins the updated
    orders by a sequential scan of ``trading_order``, and that plan stayed: every batch then read the
    whole table, milliseconds per batch after a few tens of thousands of orders and more with every
    order (measured: 4 ms of PostgreSQL time per 20-command batch at 50,000 orders, against 0.7 ms).
    With sequential scans priced out the planner takes the index on any size.
    """
    conn.execute("SET enable_seqscan = off")


def dumps(obj: Any) -> str:
    """Fast JSON (orjson) for the hot path; ``json`` when orjson refuses (integers beyond 64 bits,
    as in the engine's snapshots and configuration, which hold amounts in minimal units)."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return json.dumps(obj)


def _q(text: str) -> str:
    """A JSON string literal."""
    return orjson.dumps(text).decode()


def arr_text(value: str) -> str:
    """A text element of a PostgreSQL array literal: quoted, backslash and double quote escaped."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if '"' in value:
        value = value.replace('"', '\\"')
    return f'"{value}"'


def array(values: Any) -> str:
    """An array literal of elements that need no quoting (numbers, words, timestamps, NULL)."""
    return "{" + ",".join(values) + "}"


def add_columns(params: list[Any], rows: Any, width: int, ints: tuple[int, ...]) -> None:
    """Append one array literal per column of ``rows`` (tuples of ``width`` elements that need no
    quoting; the columns at ``ints`` hold ints, the others str)."""
    columns: list[Any] = list(zip(*rows, strict=True))
    if not columns:
        params.extend(["{}"] * width)
        return
    for i in ints:
        columns[i] = map(str, columns[i])
    params.extend([array(c) for c in columns])


def message_of(ev: Event, topics: dict[str, str]) -> str:
    """``topic<TAB>key<TAB>message JSON`` of one event, from ``to_dict()`` (contract C)."""
    d = ev.to_dict()
    if type(ev) is OrderEvent:
        topic, key = topics["order"], d["order"]["user"]
    elif type(ev) is BalanceEvent:
        topic, key = topics["balance"], d["user"]
    else:
        topic, key = topics["deal"], d["market"]
    return f"{topic}\t{key}\t" + dumps({"v": SCHEMA_VERSION, "type": d["kind"], "seq": ev.seq, "time": ev.time,
                                        "data": d})


@dataclass
class Batch:
    """Everything one transaction writes. ``events`` are the engine's (``Result.raw``), in order."""

    time_ms: int
    ops: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    events: list[RawEvent] = field(default_factory=list)
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
    """A batch turned into the parameters of ``STATEMENT`` (array literals, one per column, as UTF-8 text
    for libpq), for ``execute``."""

    batch: Batch
    now: datetime
    params: list[bytes | None]
    counts: dict[str, int] = field(default_factory=dict)


class _OrderText:
    """The parts of an order's message and row that never change, formatted once per order."""

    __slots__ = ("json_head", "json_mid", "json_tail", "row_head", "row_mid", "amount_prec", "quote_prec",
                 "fee_prec", "user")

    def __init__(self, o: Any, market_id: int, asset_ids: dict[str, int]) -> None:
        m = o.market
        is_buy = o.side == BUY
        fee_asset = m.base if is_buy else m.quote
        is_market = o.type == MARKET
        is_market_buy = is_market and is_buy
        price = None if is_market else format_units(o.price, m.price_prec)
        amount = None if is_market_buy else format_units(o.amount, m.amount_prec)
        quote_amount = format_units(o.quote_amount, m.quote.prec) if is_market_buy else None
        # side, type, tif and stp are the engine's own words, market and asset names letters, digits
        # and "_" (checked by the engine): nothing to escape but the client order id
        self.json_head = (f'{{"id":{o.id},"user":{o.user},"market":"{m.name}","side":"{o.side}",'
                          f'"type":"{o.type}","tif":"{o.tif}","post_only":{"true" if o.post_only else "false"},'
                          f'"stp":"{o.stp}","price":{"null" if price is None else chr(34) + price + chr(34)},'
                          f'"amount":{"null" if amount is None else chr(34) + amount + chr(34)},'
                          f'"quote_amount":{"null" if quote_amount is None else chr(34) + quote_amount + chr(34)},'
                          f'"filled_amount":"')
        self.json_mid = f'","fee_asset":"{fee_asset.name}","status":"'
        self.json_tail = (f'","client_order_id":{"null" if o.client_order_id is None else _q(o.client_order_id)},'
                          f'"created_at":{o.created_at},"updated_at":')
        # trading_order columns as array elements: id .. quote_amount, then fee_asset_id, client_order_id
        self.row_head = (str(o.id), str(o.user), str(market_id), o.side, o.type, o.tif, "t" if o.post_only else "f",
                         _NULL if price is None else price, _NULL if amount is None else amount,
                         _NULL if quote_amount is None else quote_amount)
        self.row_mid = (str(asset_ids[fee_asset.name]),
                        _NULL if o.client_order_id is None else arr_text(o.client_order_id))
        self.amount_prec = m.amount_prec
        self.quote_prec = m.quote.prec
        self.fee_prec = fee_asset.prec
        self.user = o.user


class Persister:
    """Writes batches on its own connection; one ``write`` at a time (the caller serialises them)."""

    def __init__(self, conn: psycopg.Connection[Any], topic_prefix: str) -> None:
        self.conn = conn
        self.topics = {"order": f"{topic_prefix}orders", "deal": f"{topic_prefix}deals",
                       "balance": f"{topic_prefix}balances", "depth": f"{topic_prefix}depth"}
        self.asset_ids: dict[str, int] = {}
        self.market_ids: dict[str, int] = {}
        # order id -> its unchanging text; dropped with the order's done event (so: open orders only)
        self._orders: dict[int, _OrderText] = {}
        # timestamptz text by ms (every event of a batch has the batch's time)
        self._ts: dict[int, str] = {}
        # where the time goes (logged at shutdown, printed by bench/matcher_e2e.py)
        self.build_seconds = 0.0
        self.db_seconds = 0.0
        self.rows = 0
        self.sections: dict[str, float] = {}
        with conn.transaction():
            # STATEMENT's arrays come as parameters: with custom plans PostgreSQL planned all ten parts
            # of it again for every batch (~1.5 ms of its CPU each, measured); its generic plan suits
            # every size (inserts, and primary-key lookups for the order updates)
            conn.execute("SET plan_cache_mode = force_generic_plan")
            keyed_plans(conn)
        _check(conn.pgconn.prepare(PREPARED_NAME, PG_STATEMENT))
        self.refresh_ids()

    def refresh_ids(self) -> None:
        """Asset and market ids by name (after a load_asset/load_market too)."""
        with self.conn.transaction():
            self.asset_ids = dict(self.conn.execute("SELECT symbol, id FROM markets_asset").fetchall())
            self.market_ids = dict(self.conn.execute("SELECT name, id FROM markets_market").fetchall())

    def write(self, b: Batch) -> None:
        """Write the batch and commit; raises on any failure (the caller must crash)."""
        self.execute(self.prepare(b))

    def _timestamp(self, ms: int) -> str:
        v = self._ts.get(ms)
        if v is None:
            if len(self._ts) > 1000:
                self._ts.clear()
            v = self._ts[ms] = ms_to_dt(ms).isoformat()
        return v

    def prepare(self, b: Batch) -> Rows:
        """Turn the batch's events into rows and messages (Python only, no I/O), all at once."""
        return self.start(b).finish()

    def start(self, b: Batch) -> RowBuilder:
        """A ``RowBuilder`` for a batch still being applied: ``catch_up`` as events come, then ``finish``."""
        return RowBuilder(self, b)

    def can_send(self, rows: Rows) -> bool:
        """Whether ``send`` can write this batch: the common case, one statement on an autocommit connection."""
        b = rows.batch
        return self.conn.autocommit and not b.market_rows and b.snapshot is None

    async def send(self, rows: Rows) -> None:
        """``execute`` for a batch that ``can_send``, from the event loop itself, without a thread.

        The statement goes out on the connection's (non-blocking) socket and the loop waits for the
        socket to become readable. Handed to a thread instead, each commit first waited for that
        thread to get the GIL from the loop, which holds it while applying the next batch: ~0.7 ms
        per commit at the median and ~3 ms at the 99th percentile (measured at 5,000 commands/s),
        then for the loop again to hear of its end, both on the path of every acknowledgement.
        """
        t1 = time.perf_counter()
        pgconn = self.conn.pgconn
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[Any]] = loop.create_future()
        fd = pgconn.socket
        results: list[Any] = []

        def end(exc: BaseException | None) -> None:
            loop.remove_reader(fd)
            loop.remove_writer(fd)
            if not done.done():
                if exc is None:
                    done.set_result(results)
                else:
                    done.set_exception(exc)

        def flush() -> None:
            try:
                if pgconn.flush() == 0:
                    loop.remove_writer(fd)
            except BaseException as exc:  # handed to the waiting commit
                end(exc)

        def readable() -> None:
            try:
                pgconn.consume_input()
                while not pgconn.is_busy():
                    res = pgconn.get_result()
                    if res is None:
                        end(None)
                        return
                    results.append(res)
            except BaseException as exc:  # handed to the waiting commit
                end(exc)

        pgconn.send_query_prepared(PREPARED_NAME, rows.params)
        loop.add_reader(fd, readable)
        if pgconn.flush():  # a large batch that the socket did not take at once
            loop.add_writer(fd, flush)
        try:
            for res in await done:
                _check(res)
        finally:
            end(asyncio.CancelledError())
        self._count_statement(time.perf_counter() - t1)

    def execute(self, rows: Rows) -> None:
        """Write prepared rows and commit; raises on any failure (the caller must crash).

        One statement (``STATEMENT``) writes every table: on an autocommit connection it is the
        whole transaction, one round trip instead of ~17 (BEGIN, a COPY per table in two, updates,
        COMMIT), each of which cost the commit thread a wait for PostgreSQL and for the GIL, and
        PostgreSQL a statement. Rare extras (market rows, a snapshot) add statements in a transaction.

        The statement goes to libpq as it is, prepared once, its parameters already text: through
        psycopg's ``execute`` each batch paid ~0.4 ms of Python to split the long query and adapt its
        70 parameters, a fixed cost per batch that small batches felt most. libpq's call releases
        the GIL while it waits.
        """
        t1 = time.perf_counter()
        b, now = rows.batch, rows.now
        conn = self.conn
        if self.can_send(rows):
            _check(conn.pgconn.exec_prepared(PREPARED_NAME, rows.params))
        else:
            with conn.transaction(), conn.cursor() as cur:
                _check(conn.pgconn.exec_prepared(PREPARED_NAME, rows.params))
                for name, (status, maker, taker) in b.market_rows.items():
                    cur.execute("UPDATE markets_market SET status = %s, maker_fee = %s::numeric,"
                                " taker_fee = %s::numeric WHERE name = %s", (status, maker, taker, name))
                if b.snapshot is not None:
                    cur.execute("INSERT INTO matcher_snapshot (op_seq, event_seq, created_at, state)"
                                " VALUES (%s, %s, %s, %s::jsonb) RETURNING id",
                                (b.op_seq, b.event_seq, now, json.dumps(b.snapshot)))
                    row = cur.fetchone()
                    assert row is not None
                    b.snapshot_id = row[0]
        self._count_statement(time.perf_counter() - t1)

    def _count_statement(self, seconds: float) -> None:
        """Add a commit's time to the figures logged at shutdown (whichever way it was sent)."""
        self.sections["statement"] = self.sections.get("statement", 0.0) + seconds
        self.db_seconds += seconds


class RowBuilder:
    """The rows and messages of one batch, built from its events as they are applied.

    The batching loop applies commands into the open batch while the previous batch commits and
    calls ``catch_up`` as it goes, so formatting the events (most of the work here) overlaps
    PostgreSQL; only ``finish`` (orders, columns, parameters) is left for the moment the previous
    commit has ended and this batch is sealed.
    """

    __slots__ = ("persister", "batch", "seconds", "done", "messages", "ledger", "balances", "last_order",
                 "new_orders", "deals")

    def __init__(self, persister: Persister, b: Batch) -> None:
        self.persister = persister
        self.batch = b
        self.seconds = 0.0
        self.done = 0  # events of b.events already turned into rows
        self.messages: list[str] = []  # "topic\tkey\tmessage JSON", in event seq order
        self.ledger: list[tuple[Any, ...]] = []
        self.balances: dict[tuple[int, str], tuple[int, int, str, str, str]] = {}
        # order id -> (its last raw event, its _OrderText, filled, filled_quote, fee text)
        self.last_order: dict[int, tuple[RawEvent, _OrderText, str, str, str]] = {}
        self.new_orders: set[int] = set()
        self.deals: list[tuple[Any, ...]] = []

    def catch_up(self) -> None:
        """Turn the batch's events applied since the last call into rows and messages."""
        b = self.batch
        events = b.events
        if self.done == len(events):
            return
        t0 = time.perf_counter()
        if self.done:
            events = events[self.done:]
        self.done = len(b.events)
        ps = self.persister
        fmt = format_units
        ts = ps._timestamp
        now_ts = ts(b.time_ms)
        asset_ids = ps.asset_ids
        market_ids = ps.market_ids
        topics = ps.topics
        t_order, t_balance, t_deal = topics["order"], topics["balance"], topics["deal"]
        order_texts = ps._orders
        messages = self.messages
        ledger = self.ledger
        balances = self.balances
        last_order = self.last_order
        new_orders = self.new_orders
        deals = self.deals
        reserved = RESERVED_BUSINESSES
        # every event of a batch carries the batch's time; events are unpacked as tuples (one step
        # instead of an attribute lookup per field: this loop runs ~5 times per command)
        now_ms = b.time_ms
        now_s = str(now_ms)
        for ev in events:
            tev = ev[0]
            if tev is BalanceEvent:
                _, seq, user, asset, business, business_id, ch, av, fr, t_ms, detail = ev
                prec = asset.prec
                aname = asset.name
                change = fmt(ch, prec)
                available = fmt(av, prec)
                frozen = fmt(fr, prec)
                t_s, t = (now_s, now_ts) if t_ms == now_ms else (str(t_ms), ts(t_ms))
                if detail is None and business in reserved:
                    # engine businesses: business_id is a deal or order id
                    messages.append(
                        f'{t_balance}\t{user}\t{{"v":1,"type":"balance","seq":{seq},"time":{t_s},"data":'
                        f'{{"kind":"balance","seq":{seq},"user":{user},"asset":"{aname}","business":"{business}",'
                        f'"business_id":"{business_id}","change":"{change}","available":"{available}",'
                        f'"frozen":"{frozen}","time":{t_s},"detail":null}}}}')
                    if ch:
                        ledger.append((user, asset_ids[aname], business, business_id, change, fmt(av + fr, prec),
                                       '"{}"', seq, t))
                else:
                    messages.append(message_of(view(ev), topics))
                    if ch:
                        ledger.append((user, asset_ids[aname], arr_text(business), arr_text(str(business_id)),
                                       change, fmt(av + fr, prec), arr_text(dumps(detail) if detail else "{}"), seq,
                                       t))
                balances[(user, aname)] = (user, asset_ids[aname], t, available, frozen)
            elif tev is OrderEvent:
                _, seq, event, reason, o, filled_u, filled_quote_u, fee_u, t_ms = ev
                oid = o.id
                ot = order_texts.get(oid)
                if ot is None:
                    ot = order_texts[oid] = _OrderText(o, market_ids[o.market.name], asset_ids)
                filled = fmt(filled_u, ot.amount_prec)
                filled_quote = fmt(filled_quote_u, ot.quote_prec)
                fee = fmt(fee_u, ot.fee_prec)
                t_s = now_s if t_ms == now_ms else str(t_ms)
                messages.append(
                    f'{t_order}\t{ot.user}\t{{"v":1,"type":"order","seq":{seq},"time":{t_s},"data":'
                    f'{{"kind":"order","seq":{seq},"event":"{event}",'
                    f'"reason":{_JSON_REASON[reason]},"time":{t_s},'
                    f'"order":{ot.json_head}{filled}","filled_quote":"{filled_quote}","fee":"{fee}{ot.json_mid}'
                    f'{ORDER_STATUS[reason]}{ot.json_tail}{t_s}}}}}}}')
                if event == NEW:
                    new_orders.add(oid)
                last_order[oid] = (ev, ot, filled, filled_quote, fee)
                if reason is not None:
                    del order_texts[oid]
            else:
                assert tev is DealEvent
                (_, seq, did, m, price_u, amount_u, quote_u, maker_oid, taker_oid, maker_user, taker_user,
                 maker_fee_u, taker_fee_u, taker_side, t_ms) = ev
                if taker_side == BUY:
                    maker_fee_asset, taker_fee_asset = m.quote, m.base
                else:
                    maker_fee_asset, taker_fee_asset = m.base, m.quote
                price = fmt(price_u, m.price_prec)
                amount = fmt(amount_u, m.amount_prec)
                quote = fmt(quote_u, m.quote.prec)
                maker_fee = fmt(maker_fee_u, maker_fee_asset.prec)
                taker_fee = fmt(taker_fee_u, taker_fee_asset.prec)
                t_s, t = (now_s, now_ts) if t_ms == now_ms else (str(t_ms), ts(t_ms))
                name = m.name
                messages.append(
                    f'{t_deal}\t{name}\t{{"v":1,"type":"deal","seq":{seq},"time":{t_s},"data":'
                    f'{{"kind":"deal","seq":{seq},"id":{did},"market":"{name}","price":"{price}",'
                    f'"amount":"{amount}","quote_amount":"{quote}","maker_order_id":{maker_oid},'
                    f'"taker_order_id":{taker_oid},"maker_user":{maker_user},'
                    f'"taker_user":{taker_user},"maker_fee":"{maker_fee}",'
                    f'"maker_fee_asset":"{maker_fee_asset.name}","taker_fee":"{taker_fee}",'
                    f'"taker_fee_asset":"{taker_fee_asset.name}","taker_side":"{taker_side}",'
                    f'"time":{t_s}}}}}')
                deals.append((did, market_ids[name], price, amount, quote, maker_oid, taker_oid, maker_user, taker_user,
                              maker_fee, taker_fee, taker_side, t))

        self.seconds += time.perf_counter() - t0

    def finish(self) -> Rows:
        """The statement's parameters for the whole batch (after a last ``catch_up``)."""
        self.catch_up()
        t0 = time.perf_counter()
        b = self.batch
        ps = self.persister
        ts = ps._timestamp
        now_ts = ts(b.time_ms)
        messages = self.messages
        ledger = self.ledger
        balances = self.balances
        deals = self.deals
        new_orders = self.new_orders
        inserts: list[tuple[str, ...]] = []
        updates: list[tuple[str, ...]] = []
        for oid, (ev, ot, filled, filled_quote, fee) in self.last_order.items():
            # ev: (OrderEvent, seq, event, reason, order, filled, filled_quote, fee, time)
            status = row_status(ev[3], ev[5])
            if oid in new_orders:
                inserts.append((*ot.row_head, filled, filled_quote, fee, *ot.row_mid, status,
                                ts(ev[4].created_at), ts(ev[8])))
                # an order's row is inserted once: free its tuples now rather than keep them while it
                # rests, where each young garbage collection walked them (~2 of ~5 objects per new order)
                ot.row_head = ot.row_mid = ()
            else:
                updates.append((str(oid), filled, filled_quote, fee, status, ts(ev[8])))

        # One outbox row per run of up to OUTBOX_CHUNK consecutive events, one message per line: text, so
        # PostgreSQL neither parses nor indexes each message (docs/adr/0006). Event seqs are consecutive.
        ob_seq: list[str] = []
        ob_last: list[str] = []
        ob_payload: list[str] = []
        first_seq = b.events[0][1] if b.events else 0
        for i in range(0, len(messages), OUTBOX_CHUNK):
            chunk = messages[i:i + OUTBOX_CHUNK]
            ob_seq.append(str(first_seq + i))
            ob_last.append(str(first_seq + i + len(chunk) - 1))
            ob_payload.append("\n".join(chunk))

        # the statement's parameters, in its order: every column as one array literal, except that the
        # oplog's params and the outbox payloads (most of the bytes) are joined with RS (U+001E) and split
        # by PostgreSQL: JSON never holds a raw control character, so they need no escaping
        params: list[Any] = [now_ts, array([str(op[0]) for op in b.ops]), array([op[1] for op in b.ops]),
                             _RS.join([dumps(op[2]) for op in b.ops])]
        add_columns(params, inserts, 18, ())
        add_columns(params, updates, 6, ())
        add_columns(params, b.stps, 2, (0,))
        add_columns(params, deals, 13, (0, 1, 5, 6, 7, 8))
        add_columns(params, balances.values(), 5, (0, 1))
        add_columns(params, ledger, 9, (0, 1, 3, 7))
        params += [array(ob_seq), array(ob_last), _RS.join(ob_payload)]
        add_columns(params, [(m, seq, arr_text(p)) for m, seq, p in b.depth], 3, (1,))
        params += [b.op_seq, b.event_seq, b.next_order_id, b.next_deal_id, b.time_ms,
                   dumps(b.depth_seqs) if b.depth_changed else None, dumps(b.config) if b.config is not None else None]

        ps.build_seconds += self.seconds + time.perf_counter() - t0
        counts = {"ops": len(b.ops), "inserts": len(inserts), "updates": len(updates), "deals": len(deals),
                  "balances": len(balances), "ledger": len(ledger), "messages": len(messages)}
        ps.rows += sum(counts.values())
        return Rows(b, ms_to_dt(b.time_ms), [None if p is None else str(p).encode() for p in params], counts)


#: The LISTEN/NOTIFY channel on which every batch's COMMIT wakes an outbox relay in another process.
OUTBOX_CHANNEL = "matcher_outbox"

#: Every table of a batch in one statement: data-modifying CTEs over ``unnest`` of array literals
#: (all run, in one snapshot; no CTE touches a row another one writes: an order inserted by a batch
#: is never updated by the same batch, its insert carries its last state). The shape never changes
#: (empty arrays insert nothing), so PostgreSQL plans it once per connection. ``nt`` notifies
#: ``OUTBOX_CHANNEL`` (delivered at COMMIT; a SELECT in a CTE runs only when referenced, hence the
#: EXISTS): a relay in its own process starts delivering at once instead of at its next poll.
STATEMENT = f"""
WITH n AS (SELECT %s::timestamptz AS now), op AS (
  INSERT INTO trading_operation (seq, time, method, params)
  SELECT s, (SELECT now FROM n), m, p::jsonb
  FROM unnest(%s::bigint[], %s::text[], string_to_array(%s::text, chr(30))) AS x(s, m, p)
), oi AS (
  INSERT INTO trading_order (id, user_id, market_id, side, type, time_in_force, post_only, price, amount,
    quote_amount, filled_amount, filled_quote, fee, fee_asset_id, client_order_id, status, created_at, updated_at)
  SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::bool[],
    %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[], %s::bigint[],
    %s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[])
), ou AS (
  UPDATE trading_order o SET filled_amount = u.fa, filled_quote = u.fq, fee = u.fee, status = u.st, updated_at = u.ut
  FROM unnest(%s::bigint[], %s::numeric[], %s::numeric[], %s::numeric[], %s::text[], %s::timestamptz[])
    AS u(id, fa, fq, fee, st, ut) WHERE o.id = u.id
), st AS (
  INSERT INTO matcher_orderstp (order_id, stp) SELECT * FROM unnest(%s::bigint[], %s::text[])
), dl AS (
  INSERT INTO trading_deal (id, market_id, price, amount, quote_amount, maker_order_id, taker_order_id,
    maker_user_id, taker_user_id, maker_fee, taker_fee, taker_side, time)
  SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::numeric[], %s::numeric[], %s::numeric[], %s::bigint[],
    %s::bigint[], %s::bigint[], %s::bigint[], %s::numeric[], %s::numeric[], %s::text[], %s::timestamptz[])
), bl AS (
  INSERT INTO trading_balance (user_id, asset_id, updated_at, available, frozen)
  SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[], %s::numeric[], %s::numeric[])
  ON CONFLICT (user_id, asset_id) DO UPDATE SET available = EXCLUDED.available, frozen = EXCLUDED.frozen,
    updated_at = EXCLUDED.updated_at
), lg AS (
  INSERT INTO trading_balancehistory (user_id, asset_id, business, business_id, change, balance, detail, seq, time)
  SELECT u, a, bu, bi, c, ba, d::jsonb, s, t FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[],
    %s::numeric[], %s::numeric[], %s::text[], %s::bigint[], %s::timestamptz[]) AS x(u, a, bu, bi, c, ba, d, s, t)
), eo AS (
  INSERT INTO matcher_eventoutbox (seq, last_seq, payload, delivered, created_at)
  SELECT s, l, p, false, (SELECT now FROM n)
  FROM unnest(%s::bigint[], %s::bigint[], string_to_array(%s::text, chr(30))) AS x(s, l, p)
), dp AS (
  INSERT INTO matcher_depthoutbox (market, depth_seq, payload, delivered, created_at)
  SELECT m, s, p::jsonb, false, (SELECT now FROM n) FROM unnest(%s::text[], %s::bigint[], %s::text[]) AS x(m, s, p)
), nt AS (
  SELECT pg_notify('{OUTBOX_CHANNEL}', '')
)
UPDATE matcher_matcherstate SET op_seq = %s, event_seq = %s, next_order_id = %s, next_deal_id = %s,
  last_time = %s, updated_at = (SELECT now FROM n), depth_seqs = coalesce(%s::jsonb, depth_seqs),
  config = coalesce(%s::jsonb, config)
WHERE id = {STATE_ID} AND EXISTS (SELECT FROM nt)
"""

def dollar_placeholders(sql: str) -> str:
    """``sql`` with PostgreSQL's own placeholders ($1, $2, ...) for psycopg's ``%s``, as libpq takes them."""
    numbers = iter(range(1, sql.count("%s") + 1))
    return re.sub("%s", lambda _m: f"${next(numbers)}", sql)


#: ``STATEMENT`` as libpq takes it, prepared once per writer connection
PREPARED_NAME = b"matcher_batch"
PG_STATEMENT = dollar_placeholders(STATEMENT).encode()


def _check(result: Any) -> None:
    """Raise the server's error as psycopg would (the matcher then stops: the commit failed)."""
    if result.status != ExecStatus.COMMAND_OK:
        raise error_from_result(result)
