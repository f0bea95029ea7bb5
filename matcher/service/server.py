"""The matcher process: gRPC (grpc.aio) in front of the batching loop, the outbox relay beside it.

``serve()`` takes a PostgreSQL advisory lock (two matchers on one database
would each believe they own the balances), rebuilds the engine from the tables,
loads assets and markets added since the last run (as logged commands, so the
operation log alone can rebuild everything), then serves until SIGTERM/SIGINT:
it stops taking calls, answers the ones it has, commits, and exits 0. A failed
commit ends it with exit code 3 (the launcher restarts it; start-up reloads the
committed state).

Reads (balances, orders, depth) are answered from memory between batches: they
can show the effect of a batch whose commit is under way, never a half-applied
batch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import psycopg

from matcher.engine import Result
from matcher.engine import reasons as R
from matcher.engine.amounts import AmountError
from matcher.engine.events import OrderEvent
from matcher.proto import matcher_pb2 as pb
from matcher.proto import matcher_pb2_grpc as pb_grpc
from matcher.service.core import Core, Unavailable
from matcher.service.gcpolicy import FrozenSurvivorsGC
from matcher.service.persist import Persister
from matcher.service.relay import OutboxRelay
from matcher.service.state import load_engine

log = logging.getLogger("matcher")

#: pg_advisory_lock key held for the life of the matcher ("cgmatch").
MATCHER_LOCK = 0x6367_6D61_7463_68
EXIT_COMMIT_FAILED = 3

# service-level reasons (the engine's are in matcher.engine.reasons)
UNKNOWN_USER = "unknown_user"
NOT_OPEN = "not_open"

#: bad input; every other reason is a business-state refusal (FAILED_PRECONDITION)
INVALID_ARGUMENT_REASONS = frozenset({
    R.INVALID_PRECISION, R.INVALID_AMOUNT, R.INVALID_ARGUMENT, R.UNKNOWN_METHOD, R.UNKNOWN_MARKET,
    R.UNKNOWN_ASSET, R.BELOW_MIN_AMOUNT, R.BELOW_MIN_NOTIONAL, UNKNOWN_USER,
})
MESSAGES = {
    R.INSUFFICIENT_BALANCE: "insufficient available balance",
    R.INVALID_PRECISION: "more decimals than the market or asset allows",
    R.INVALID_AMOUNT: "amount is not a positive plain decimal number in range",
    R.INVALID_ARGUMENT: "invalid argument",
    R.BELOW_MIN_AMOUNT: "amount below the market minimum",
    R.BELOW_MIN_NOTIONAL: "price x amount below the market minimum",
    R.WOULD_TAKE: "a post-only order would trade",
    R.FOK_UNFILLABLE: "a fill-or-kill order cannot fill entirely",
    R.NO_LIQUIDITY: "no orders to trade against",
    R.MARKET_HALTED: "market halted",
    R.UNKNOWN_MARKET: "unknown market",
    R.UNKNOWN_ASSET: "unknown asset",
    R.UNKNOWN_ORDER: "no such open order",
    R.NOT_OWNER: "order belongs to another user",
    R.DUPLICATE_CLIENT_ORDER_ID: "client_order_id already used",
    R.DUPLICATE_ASSET: "asset already loaded",
    R.DUPLICATE_MARKET: "market already loaded",
    R.REPEATED_UPDATE: "(business, business_id) already applied",
    UNKNOWN_USER: "no such user",
    NOT_OPEN: "order is not open",
}
MAX_BUSINESS = 32  # trading_balancehistory.business
MAX_BUSINESS_ID = 128  # trading_balancehistory.business_id
MAX_DETAIL_BYTES = 4096


def status_for(reason: str) -> grpc.StatusCode:
    if reason in INVALID_ARGUMENT_REASONS:
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.FAILED_PRECONDITION


class Refuse(Exception):
    def __init__(self, reason: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code or status_for(reason)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], reason: str,
                 code: grpc.StatusCode | None = None) -> None:
    await context.abort(code or status_for(reason), f"{reason}: {MESSAGES.get(reason, reason)}",
                        trailing_metadata=(("reason", reason),))


def _clean_str(value: str, limit: int) -> str:
    """Strings that reach the database: PostgreSQL text cannot hold NUL; columns have limits."""
    if "\x00" in value or len(value) > limit:
        raise Refuse(R.INVALID_ARGUMENT)
    return value


def limit_params(r: pb.PlaceLimitRequest) -> dict[str, Any]:
    p: dict[str, Any] = {"user": r.user, "market": r.market, "side": r.side, "price": r.price, "amount": r.amount}
    if r.tif:
        p["tif"] = r.tif
    if r.post_only:
        p["post_only"] = True
    if r.HasField("client_order_id"):
        p["client_order_id"] = _clean_str(r.client_order_id, 64)
    if r.HasField("stp"):
        p["stp"] = r.stp
    return p


def market_params(r: pb.PlaceMarketRequest) -> dict[str, Any]:
    p: dict[str, Any] = {"user": r.user, "market": r.market, "side": r.side, "amount": r.amount}
    if r.HasField("client_order_id"):
        p["client_order_id"] = _clean_str(r.client_order_id, 64)
    if r.HasField("stp"):
        p["stp"] = r.stp
    return p


def cancel_params(r: pb.CancelRequest) -> dict[str, Any]:
    p: dict[str, Any] = {"user": r.user, "market": r.market}
    if r.HasField("order_id"):
        p["order_id"] = r.order_id
    if r.HasField("client_order_id"):
        p["client_order_id"] = r.client_order_id
    return p


def batch_calls(request: pb.PlaceBatchRequest) -> tuple[list[tuple[str, dict[str, Any]]], dict[int, Refuse]]:
    """Engine calls of a batch request, and the items refused before the engine (by position)."""
    calls: list[tuple[str, dict[str, Any]]] = []
    refused: dict[int, Refuse] = {}
    append = calls.append
    for i, one in enumerate(request.orders):
        kind = one.WhichOneof("kind")
        try:
            if kind == "limit":
                append(("place_limit", limit_params(one.limit)))
            elif kind == "market":
                append(("place_market", market_params(one.market)))
            elif kind == "cancel":
                append(("cancel", cancel_params(one.cancel)))
            else:
                raise Refuse(R.INVALID_ARGUMENT)
        except Refuse as exc:
            refused[i] = exc
            append(("", {}))  # keeps positions; the engine refuses an unknown method
    return calls, refused


def batch_reply(results: list[Result], refused: dict[int, Refuse]) -> pb.PlaceBatchReply:
    # results built in place (results.add): a PlaceResult(order=pb.Order(...)) copies the order
    # twice, into the result and into the reply, which was most of the cost of a reply
    reply = pb.PlaceBatchReply()
    add = reply.results.add
    for i, res in enumerate(results):
        if res.ok:
            add(order=res.value)
        elif i in refused:
            add(reason=refused[i].reason, code=refused[i].code.value[0])
        else:
            reason = res.reason or R.INVALID_ARGUMENT
            add(reason=reason, code=status_for(reason).value[0])
    return reply


def order_pb(d: dict[str, Any]) -> pb.Order:
    return pb.Order(**d)


def market_pb(d: dict[str, Any]) -> pb.MarketReply:
    return pb.MarketReply(json=json.dumps(d))


class MatcherService(pb_grpc.MatcherServicer):
    def __init__(self, core: Core, read_conn: psycopg.AsyncConnection[Any], dsn: str) -> None:
        self.core = core
        self.engine = core.engine
        self.read = read_conn
        self._dsn = dsn  # conn.info.dsn leaves the password out
        self._read_lock = asyncio.Lock()
        self.known_users: set[int] = set()

    async def _fetchone(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """One row from the read connection, reconnecting once if PostgreSQL dropped it."""
        async with self._read_lock:
            for attempt in (1, 2):
                try:
                    async with self.read.cursor() as cur:
                        await cur.execute(sql, args)
                        return await cur.fetchone()
                except psycopg.OperationalError:
                    if attempt == 2:
                        raise
                    log.warning("read connection lost; reconnecting")
                    self.read = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
        return None

    async def _run(self, context: grpc.aio.ServicerContext[Any, Any], method: str,
                   params: dict[str, Any]) -> Result:
        try:
            res = await self.core.call(method, params)
        except Unavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            raise  # unreachable: abort raises
        if not res.ok:
            await _abort(context, res.reason or R.INVALID_ARGUMENT)
        return res

    # ------------------------------------------------------------ orders

    async def PlaceLimit(self, request: pb.PlaceLimitRequest, context: Any) -> pb.Order:
        try:
            params = limit_params(request)
        except Refuse as exc:
            await _abort(context, exc.reason, exc.code)
        return order_pb((await self._run(context, "place_limit", params)).value)

    async def PlaceMarket(self, request: pb.PlaceMarketRequest, context: Any) -> pb.Order:
        try:
            params = market_params(request)
        except Refuse as exc:
            await _abort(context, exc.reason, exc.code)
        return order_pb((await self._run(context, "place_market", params)).value)

    async def PlaceBatch(self, request: pb.PlaceBatchRequest, context: Any) -> pb.PlaceBatchReply:
        calls, refused = batch_calls(request)
        try:
            results = await self.core.submit(calls)
        except Unavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return batch_reply(results, refused)

    async def PlaceStream(self, requests: AsyncIterator[pb.PlaceBatchRequest],
                          context: Any) -> AsyncIterator[pb.PlaceBatchReply]:
        # requests are read (and queued to the batching loop) while earlier ones await their commit
        answers: asyncio.Queue[tuple[asyncio.Future[list[Result]], dict[int, Refuse]] | None] = asyncio.Queue()

        async def read() -> None:
            try:
                async for request in requests:
                    calls, refused = batch_calls(request)
                    answers.put_nowait((self.core.submit(calls), refused))
            finally:
                answers.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while (item := await answers.get()) is not None:
                future, refused = item
                try:
                    results = await future
                except Unavailable as exc:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
                yield batch_reply(results, refused)
            await reader  # a failed read ends the call with its error
        finally:
            reader.cancel()

    async def Cancel(self, request: pb.CancelRequest, context: Any) -> pb.Order:
        return order_pb((await self._run(context, "cancel", cancel_params(request))).value)

    async def CancelAll(self, request: pb.CancelAllRequest, context: Any) -> pb.OrderList:
        params: dict[str, Any] = {"user": request.user}
        if request.HasField("market"):
            params["market"] = request.market
        res = await self._run(context, "cancel_all", params)
        orders = [pb.Order(**ev.order_dict()) for ev in res.events if type(ev) is OrderEvent]
        return pb.OrderList(orders=orders)

    # ------------------------------------------------------------ balances

    async def _user_exists(self, user: int) -> bool:
        if user in self.known_users or self.engine.balances(user):
            return True
        found = await self._fetchone("SELECT 1 FROM accounts_user WHERE id = %s", (user,)) is not None
        if found:
            self.known_users.add(user)
        return found

    async def UpdateBalance(self, request: pb.UpdateBalanceRequest, context: Any) -> pb.BalanceReply:
        try:
            business = _clean_str(request.business, MAX_BUSINESS)
            business_id = _clean_str(request.business_id, MAX_BUSINESS_ID)
            params: dict[str, Any] = {"user": request.user, "asset": request.asset, "business": business,
                                      "business_id": business_id, "change": request.change}
            if request.detail_json:
                if len(request.detail_json) > MAX_DETAIL_BYTES or "\\u0000" in request.detail_json:
                    raise Refuse(R.INVALID_ARGUMENT)
                try:
                    detail = json.loads(request.detail_json)
                    # lone surrogates ("\ud800") parse but PostgreSQL would refuse them at commit
                    json.dumps(detail, ensure_ascii=False).encode()
                except (ValueError, TypeError, RecursionError):
                    raise Refuse(R.INVALID_ARGUMENT) from None
                if not isinstance(detail, dict):
                    raise Refuse(R.INVALID_ARGUMENT)
                params["detail"] = detail
            if request.user < 0:
                raise Refuse(R.INVALID_ARGUMENT)
            if not await self._user_exists(request.user):
                raise Refuse(UNKNOWN_USER)
        except Refuse as exc:
            await _abort(context, exc.reason, exc.code)
        v = (await self._run(context, "update_balance", params)).value
        return pb.BalanceReply(asset=v["asset"], available=v["available"], frozen=v["frozen"])

    async def GetBalances(self, request: pb.GetBalancesRequest, context: Any) -> pb.BalancesReply:
        bals = self.engine.balances_str(request.user)
        return pb.BalancesReply(balances=[pb.BalanceReply(asset=a, available=v["available"], frozen=v["frozen"])
                                          for a, v in sorted(bals.items())])

    # ------------------------------------------------------------ reads

    async def GetOrder(self, request: pb.GetOrderRequest, context: Any) -> pb.Order:
        d = self.engine.get_order(request.order_id)
        if d is None:
            await _abort(context, NOT_OPEN, grpc.StatusCode.NOT_FOUND)
        return order_pb(d)  # type: ignore[arg-type]

    async def OpenOrders(self, request: pb.OpenOrdersRequest, context: Any) -> pb.OrderList:
        market = request.market if request.HasField("market") else None
        orders = sorted(self.engine.open_orders(request.user, market), key=lambda o: o["id"])
        return pb.OrderList(orders=[order_pb(o) for o in orders])

    async def Depth(self, request: pb.DepthRequest, context: Any) -> pb.DepthReply:
        limit = request.limit or 20
        if not 0 < limit <= 10000:
            await _abort(context, R.INVALID_ARGUMENT)
        interval = request.interval if request.HasField("interval") else None
        try:
            d = self.engine.depth(request.market, limit, interval)
        except KeyError:
            await _abort(context, R.UNKNOWN_MARKET)
        except AmountError as exc:
            await _abort(context, exc.reason)
        return pb.DepthReply(asks=[pb.Level(price=p, amount=a) for p, a in d["asks"]],
                             bids=[pb.Level(price=p, amount=a) for p, a in d["bids"]],
                             seq=self.core.depth.seqs.get(request.market, 0))

    # ------------------------------------------------------------ operator calls

    async def HaltMarket(self, request: pb.MarketRequest, context: Any) -> pb.MarketReply:
        return market_pb((await self._run(context, "halt_market", {"market": request.market})).value)

    async def ResumeMarket(self, request: pb.MarketRequest, context: Any) -> pb.MarketReply:
        return market_pb((await self._run(context, "resume_market", {"market": request.market})).value)

    async def SetFees(self, request: pb.SetFeesRequest, context: Any) -> pb.MarketReply:
        params: dict[str, Any] = {"market": request.market}
        if request.HasField("maker_fee"):
            params["maker_fee"] = request.maker_fee
        if request.HasField("taker_fee"):
            params["taker_fee"] = request.taker_fee
        if request.HasField("user"):
            params["user"] = request.user
        return market_pb((await self._run(context, "set_fees", params)).value)

    async def LoadAsset(self, request: pb.LoadAssetRequest, context: Any) -> pb.AssetReply:
        row = await self._fetchone("SELECT id, decimals FROM markets_asset WHERE symbol = %s", (request.symbol,))
        if row is None:
            await _abort(context, R.UNKNOWN_ASSET)
        asset_id, decimals = row  # type: ignore[misc]
        self.core.persister.asset_ids[request.symbol] = asset_id
        v = (await self._run(context, "add_asset", {"name": request.symbol, "prec": decimals})).value
        return pb.AssetReply(name=v["name"], prec=v["prec"])

    async def LoadMarket(self, request: pb.MarketRequest, context: Any) -> pb.MarketReply:
        row = await self._fetchone(MARKET_ROW_QUERY + " WHERE m.name = %s", (request.market,))
        if row is None:
            await _abort(context, R.UNKNOWN_MARKET)
        market_id, params, halted = market_row_params(row)  # type: ignore[arg-type]
        self.core.persister.market_ids[request.market] = market_id
        calls = [("add_market", params)] + ([("halt_market", {"market": request.market})] if halted else [])
        try:
            results = await self.core.submit(calls)
        except Unavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        if not results[0].ok:
            await _abort(context, results[0].reason or R.INVALID_ARGUMENT)
        return market_pb(results[-1].value)

    async def ListMarkets(self, request: pb.Empty, context: Any) -> pb.MarketList:
        return pb.MarketList(markets=[market_pb(m) for m in self.engine.list_markets()])

    async def TakeSnapshot(self, request: pb.Empty, context: Any) -> pb.SnapshotReply:
        try:
            results = await self.core.submit([], snapshot=True)
        except Unavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        v = results[-1].value
        return pb.SnapshotReply(id=v["id"], op_seq=v["op_seq"])

    async def DumpState(self, request: pb.Empty, context: Any) -> pb.StateReply:
        # stdlib json: balances in minimal units exceed the 64-bit integers orjson handles
        return pb.StateReply(json=json.dumps(self.engine.snapshot()))


MARKET_ROW_QUERY = (
    "SELECT m.id, m.name, b.symbol, q.symbol, m.price_precision, m.amount_precision, m.min_amount::text,"
    " m.min_notional::text, m.maker_fee::text, m.taker_fee::text, m.status FROM markets_market m"
    " JOIN markets_asset b ON b.id = m.base_id JOIN markets_asset q ON q.id = m.quote_id"
)


def market_row_params(row: tuple[Any, ...]) -> tuple[int, dict[str, Any], bool]:
    mid, name, base, quote, pp, ap, min_amount, min_notional, maker, taker, status = row
    params = {"name": name, "base": base, "quote": quote, "price_prec": pp, "amount_prec": ap,
              "min_amount": min_amount, "min_notional": min_notional, "maker_fee": maker, "taker_fee": taker}
    return mid, params, status == "halted"


#: How far the depth sequence of every market jumps at start-up (see skip_depth_seqs).
DEPTH_SEQ_RESTART_GAP = 1000


def skip_depth_seqs(conn: psycopg.Connection[Any], seqs: dict[str, int]) -> None:
    """Make every depth subscriber resynchronise after a restart.

    Before a crash, ``Depth`` may have answered with a book (and depth_seq) of a batch whose commit
    then failed: that book never existed for Kafka. Restarting the numbering right after the last
    committed diff would let such a subscriber apply the next diffs to that book. Jumping far ahead
    (further than the batches that can be uncommitted at once) shows every subscriber a gap, and a
    gap means "fetch a new snapshot" (contract C).
    """
    for market in seqs:
        seqs[market] += DEPTH_SEQ_RESTART_GAP
    with conn.transaction():
        conn.execute("UPDATE matcher_matcherstate SET depth_seqs = %s::jsonb WHERE id = %s",
                     (json.dumps(seqs), 1))


async def load_listing(core: Core, conn: psycopg.Connection[Any]) -> None:
    """Assets and markets in the tables that the engine does not have yet, as logged commands."""
    engine = core.engine
    calls: list[tuple[str, dict[str, Any]]] = []
    for symbol, decimals in conn.execute("SELECT symbol, decimals FROM markets_asset ORDER BY id").fetchall():
        if symbol not in engine.assets:
            calls.append(("add_asset", {"name": symbol, "prec": decimals}))
    for row in conn.execute(MARKET_ROW_QUERY + " ORDER BY m.id").fetchall():
        _mid, params, halted = market_row_params(row)
        if params["name"] not in engine.markets:
            calls.append(("add_market", params))
            if halted:
                calls.append(("halt_market", {"market": params["name"]}))
    conn.commit()
    if not calls:
        return
    results = await core.submit(calls)
    for (method, params), res in zip(calls, results, strict=True):
        if res.ok:
            log.info("loaded %s %s", method.removeprefix("add_"), params.get("name") or params.get("market"))
        else:
            log.error("could not load %s %s: %s", method, params, res.reason)


async def serve(addr: str, dsn: str, *, kafka: str | None, topic_prefix: str, batch_max: int = 500,
                snapshot_every_ops: int = 0, ready_file: str | None = None, lock_wait: float = 15.0,
                relay_timeout_ms: int = 10000, outbox_keep_seconds: float = 86400.0, profile: str = "",
                switch_interval: float = 0.0005) -> int:
    """Run the matcher until SIGTERM/SIGINT; returns the process exit code."""
    # Threads that still share the GIL with the event loop (a commit with extra statements, the relay
    # when it runs in this process) need it back after each wait on PostgreSQL or Kafka; with the
    # default 5 ms switch interval every wake-up can queue behind the loop's Python work, which made
    # tens of ms per batch when every commit ran in a thread. 0.5 ms keeps the hand-overs short.
    sys.setswitchinterval(switch_interval)
    lock_conn = psycopg.connect(dsn, autocommit=True)
    # A matcher killed a moment ago may still hold the lock until PostgreSQL notices: wait a little.
    deadline = time.monotonic() + lock_wait
    while True:
        row = lock_conn.execute("SELECT pg_try_advisory_lock(%s)", (MATCHER_LOCK,)).fetchone()
        if row and row[0]:
            break
        if time.monotonic() > deadline:
            log.error("another matcher holds the lock on this database; refusing to start")
            lock_conn.close()
            return 2
        await asyncio.sleep(0.2)
    write_conn = psycopg.connect(dsn, autocommit=True)  # a batch is one statement: its own transaction
    read_conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    t0 = time.perf_counter()
    loaded = load_engine(write_conn)
    skip_depth_seqs(write_conn, loaded.depth_seqs)
    persister = Persister(write_conn, topic_prefix)
    log.info("state loaded in %.2fs: op %d, event %d", time.perf_counter() - t0, loaded.op_seq,
             loaded.engine.event_seq)

    relay = OutboxRelay(dsn, kafka, topic_prefix, message_timeout_ms=relay_timeout_ms,
                        keep_seconds=outbox_keep_seconds) if kafka else None
    core = Core(loaded, persister, batch_max=batch_max, snapshot_every_ops=snapshot_every_ops,
                on_commit=relay.wake.set if relay else None)
    main_profiler = None
    if profile:
        # development aid (MATCHER_PROFILE=prefix): cProfile of the event loop thread and of the commits
        import cProfile

        main_profiler, core.profiler = cProfile.Profile(), cProfile.Profile()
        main_profiler.enable()
    loop_task = asyncio.create_task(core.run(), name="batch-loop")
    await load_listing(core, write_conn)
    collector = FrozenSurvivorsGC()
    collector.install()
    full_gc = asyncio.create_task(collector.full_when_quiet(lambda: core.pending_calls == 0), name="full-gc")
    if relay is not None:
        relay_thread = relay.start_thread()

    server = grpc.aio.server(options=[
        ("grpc.so_reuseport", 0),
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ])
    service = MatcherService(core, read_conn, dsn)
    pb_grpc.add_MatcherServicer_to_server(service, server)
    server.add_insecure_port(addr)
    await server.start()
    log.info("matcher serving on %s", addr)
    if ready_file:
        with open(ready_file, "w") as f:
            f.write(addr)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stopper = asyncio.create_task(stop.wait())
    failed = asyncio.create_task(core.failed.wait())
    await asyncio.wait([stopper, failed, loop_task], return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if core.fatal is not None or loop_task.done():
        code = EXIT_COMMIT_FAILED
        await server.stop(0)
    else:
        log.info("stopping: finishing calls in flight")
        await server.stop(5)  # refuses new calls; calls in flight get their answers
        core.stop()
        try:
            await loop_task
        except BaseException:
            code = EXIT_COMMIT_FAILED
    for task in (stopper, failed, full_gc):
        task.cancel()
    log.info("batches done; stopping the outbox relay")
    if relay is not None:
        relay.stopping.set()
        relay.wake.set()
        relay_thread.join(15)
    log.info("matcher stopped: %d batches, %d commands, apply %.1fs, commit %.1fs (rows built in %.1fs, "
             "%d rows written in %.1fs)", core.batches, core.commands, core.apply_seconds, core.commit_seconds,
             persister.build_seconds, persister.rows, persister.db_seconds)
    if main_profiler is not None and core.profiler is not None:
        main_profiler.disable()
        main_profiler.dump_stats(f"{profile}.loop.pstats")
        core.profiler.dump_stats(f"{profile}.commit.pstats")
    log.info("%s", collector.summary())
    log.info("database time by part: %s", ", ".join(f"{k} {v:.2f}s" for k, v in
                                                    sorted(persister.sections.items(), key=lambda kv: -kv[1])))
    await service.read.close()
    write_conn.close()
    lock_conn.close()
    return code
