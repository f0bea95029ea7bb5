"""The websocket endpoint ``/ws/``: requests, subscriptions and pushes for one connection.

Every outgoing frame goes through one bounded queue drained by a writer task.
Under an ASGI server with backpressure (uvicorn: ``send`` waits while the
socket buffer is full) a client that stops reading fills the queue; the
connection is then cut (close code 4001) instead of buffering without bound,
and other connections never wait for it: each has its own queue, and the
channel layer delivers group messages to every member independently.

Public data (depth, deals, kline, ticker) is pushed by ``run_marketdata``
after it wrote Redis, so the snapshot a subscription starts from (read from
Redis after joining the group) and the pushes that follow agree; private
data (orders, balances) by ``run_stream_relay``. docs/websocket.md describes
the protocol; streaming/protocol.py holds its codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import redis
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from markets import marketdata
from markets.aggregation import INTERVALS, normalize_interval
from markets.marketdata import MarketDataError
from streaming import groups
from streaming.protocol import (
    CloseCode,
    ErrorCode,
    Request,
    WsError,
    error_reply,
    integer,
    invalid,
    names,
    optional_int,
    param,
    parse_request,
    push,
    push_once,
    reply,
    string,
)

log = logging.getLogger(__name__)

SUCCESS = {"status": "success"}


def in_thread(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Run a blocking read (PostgreSQL, Redis, gRPC) off the event loop, in the shared pool.

    Not thread-sensitive: reads of different connections must not queue
    behind one another on a single thread.
    """
    return database_sync_to_async(fn, thread_sensitive=False)  # type: ignore[no-any-return]


@dataclass
class Subscription:
    kind: str
    group: str
    market: str | None = None  # or asset for "asset"; None means all
    limit: int = 0
    interval: str = ""
    seq: int = 0  # depth: the view's seq the client holds; deals: last deal id sent; private: last event seq


class _Close:
    def __init__(self, code: int) -> None:
        self.code = code


class StreamConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                       send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        """Channels' consumer loop without a new task and an ``asyncio.wait`` for every message.

        ``await_many_dispatch`` starts a task per message and waits on the
        client and the channel layer with ``asyncio.wait``; with 1,000
        subscribers that bookkeeping was a fifth of the web process's time
        per push (bench/ws_fanout.py). Here this task reads the client's
        frames and a second one the group pushes; a lock keeps Channels'
        guarantee that one message is handled at a time, so a subscription's
        join, snapshot and first pushes stay in order.
        """
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.base_send = send
        self._turn = asyncio.Lock()
        pushes = asyncio.ensure_future(self._pump())
        try:
            while True:
                message = await receive()
                async with self._turn:
                    await self.dispatch(message)
        except StopConsumer:
            pass
        finally:
            pushes.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pushes

    async def _pump(self) -> None:
        while True:
            message = await self.channel_layer.receive(self.channel_name)
            async with self._turn:
                try:
                    await self.dispatch(message)
                except Exception:  # one bad push must not end every later push to this client
                    log.exception("websocket push failed")

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its ``close_old_connections`` thread hop before every message.

        Channels 4.2+ runs ``close_old_connections`` in the sync thread before
        each handler: with 1,000 subscribers, every push became 1,000 thread
        round trips and the web process spent most of its time in them
        (bench/ws_fanout.py). This consumer reaches the database only through
        ``database_sync_to_async`` (``in_thread``), which closes stale
        connections itself, so the hop protects nothing here.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message.get('type')!r}")
        await handler(message)

    # ------------------------------------------------------------------ connection life

    async def connect(self) -> None:
        self.user_id: int | None = None
        self.auth_expires: float | None = None
        self.subs: dict[tuple[Any, ...], Subscription] = {}
        self.group_refs: Counter[str] = Counter()
        self.queue: asyncio.Queue[str | _Close] = asyncio.Queue(maxsize=max(1, settings.WS_SEND_QUEUE))
        self.closing = False
        self.last_seen = time.monotonic()
        self.tokens = float(2 * settings.WS_RATE_PER_SECOND)
        self.tokens_at = self.last_seen
        self.error_level = 0.0
        self.error_at = self.last_seen
        self.private_seq: dict[str, int] = {"order": 0, "asset": 0}
        self._after_reply: list[str] = []
        await self.accept()
        self.writer = asyncio.ensure_future(self._write_loop())
        self.watchdog = asyncio.ensure_future(self._watch())

    async def disconnect(self, code: int) -> None:
        self.closing = True
        for task in (self.writer, self.watchdog):
            task.cancel()
        await self._leave_all()

    async def _leave_all(self) -> None:
        for group in list(self.group_refs):
            await self.channel_layer.group_discard(group, self.channel_name)
        self.group_refs.clear()
        self.subs.clear()

    async def _write_loop(self) -> None:
        try:
            while True:
                item = await self.queue.get()
                if isinstance(item, _Close):
                    await self.close(code=item.code)
                    return
                await self.send(text_data=item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the client went away mid-send: disconnect() follows
            log.debug("websocket send failed: %s", exc)

    def _put(self, text: str) -> None:
        if self.closing:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self._cut(CloseCode.SLOW_CONSUMER)

    def _cut(self, code: int) -> None:
        """Stop feeding a client that does not read: drop what waits, leave the groups, close."""
        if self.closing:
            return
        self.closing = True
        self.writer.cancel()
        while not self.queue.empty():
            self.queue.get_nowait()
        log.info("websocket %s closed with %s", self.channel_name, code)
        asyncio.ensure_future(self._close_after_leaving(code))

    async def _close_after_leaving(self, code: int) -> None:
        await self._leave_all()
        await self.close(code=code)

    def _close_gently(self, code: int) -> None:
        """Close after what is queued (the error reply that explains why) has been sent."""
        if self.closing:
            return
        try:
            self.queue.put_nowait(_Close(code))
            self.closing = True
        except asyncio.QueueFull:
            self._cut(code)

    async def _watch(self) -> None:
        """Idle and token-expiry checks, once a second (the pub/sub layer's groups do not expire)."""
        while not self.closing:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            if now - self.last_seen > settings.WS_IDLE_SECONDS:
                self._close_gently(CloseCode.IDLE)
            elif self.auth_expires is not None and time.time() >= self.auth_expires:
                self._close_gently(CloseCode.AUTH_EXPIRED)

    async def _join(self, group: str) -> None:
        if self.group_refs[group] == 0:
            await self.channel_layer.group_add(group, self.channel_name)
        self.group_refs[group] += 1

    async def _leave(self, group: str) -> None:
        self.group_refs[group] -= 1
        if self.group_refs[group] <= 0:
            del self.group_refs[group]
            await self.channel_layer.group_discard(group, self.channel_name)

    # ------------------------------------------------------------------ requests

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        self.last_seen = time.monotonic()
        if text_data is None:
            self._error(None, ErrorCode.INVALID_ARGUMENT, "binary frames are not supported; send JSON text")
            return
        limit = settings.WS_MAX_MESSAGE_BYTES
        if len(text_data) > limit or len(text_data.encode()) > limit:
            self._error(None, ErrorCode.MESSAGE_TOO_LARGE, f"a request may have at most {limit} bytes")
            return
        try:
            request = parse_request(text_data)
        except WsError as exc:
            self._error(getattr(exc, "rid", None), exc.code, exc.message)
            return
        if not self._take_token():
            self._error(request.id, ErrorCode.RATE_LIMITED,
                        f"more than {settings.WS_RATE_PER_SECOND} requests per second")
            return
        handler = METHODS.get(request.method)
        if handler is None:
            self._error(request.id, ErrorCode.METHOD_NOT_FOUND, f"unknown method {request.method!r}")
            return
        try:
            result = await handler(self, request)
        except WsError as exc:
            self._error(request.id, exc.code, exc.message)
            return
        except MarketDataError as exc:
            self._error(request.id, ErrorCode.INVALID_ARGUMENT, exc.message)
            return
        except Exception as exc:
            code, message = _service_error(exc)
            if code == ErrorCode.INTERNAL_ERROR:
                log.exception("websocket %s failed", request.method)
            self._error(request.id, code, message)
            return
        finally:
            after, self._after_reply = self._after_reply, []
        self._put(reply(request.id, result))
        for text in after:
            self._put(text)

    def _then(self, text: str) -> None:
        """A push to send right after the reply of the request being handled (a subscription's snapshot)."""
        self._after_reply.append(text)

    def _take_token(self) -> bool:
        now = time.monotonic()
        rate = settings.WS_RATE_PER_SECOND
        self.tokens = min(2.0 * rate, self.tokens + (now - self.tokens_at) * rate)
        self.tokens_at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def _error(self, rid: int | str | None, code: ErrorCode, message: str) -> None:
        self._put(error_reply(rid, code, message))
        now = time.monotonic()
        self.error_level = max(0.0, self.error_level - (now - self.error_at)) + 1.0
        self.error_at = now
        if self.error_level > settings.WS_MAX_ERRORS:
            self._close_gently(CloseCode.TOO_MANY_ERRORS)

    def _count_subscription(self, key: tuple[Any, ...]) -> None:
        if key not in self.subs and len(self.subs) >= settings.WS_MAX_SUBSCRIPTIONS:
            raise WsError(ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                          f"at most {settings.WS_MAX_SUBSCRIPTIONS} subscriptions per connection")

    async def _subscribe(self, key: tuple[Any, ...], sub: Subscription) -> Subscription:
        existing = self.subs.get(key)
        if existing is not None:
            return existing
        self._count_subscription(key)
        self.subs[key] = sub
        await self._join(sub.group)
        return sub

    async def _unsubscribe(self, match: Callable[[tuple[Any, ...]], bool]) -> int:
        keys = [k for k in self.subs if match(k)]
        for k in keys:
            await self._leave(self.subs.pop(k).group)
        return len(keys)

    def _require_auth(self) -> int:
        if self.user_id is None:
            raise WsError(ErrorCode.REQUIRE_AUTH, "authenticate first with server.auth")
        return self.user_id

    # ------------------------------------------------------------------ pushes from the channel layer

    async def stream_push(self, message: dict[str, Any]) -> None:
        if self.closing:
            return
        kind = message.get("kind")
        if kind == "depth":
            await self._push_depth(message)
        elif kind == "deals":
            await self._push_deals(message)
        elif kind == "kline":
            market = message["market"]
            for interval, candles in message["klines"].items():
                if ("kline", market, interval) in self.subs:
                    for candle in candles:  # each deal changes its candle's count
                        self._put(push_once(("kline", market, interval, candle["time"], candle["count"]),
                                            "kline.update", [market, interval, candle]))
        elif kind == "ticker":
            market = message["market"]
            if message.get("all"):
                if ("ticker", None) in self.subs:
                    self._put(push("ticker.update", [market, message["ticker"]]))
            elif ("ticker", market) in self.subs and ("ticker", None) not in self.subs:
                self._put(push("ticker.update", [market, message["ticker"]]))
        elif kind == "private":
            self._push_private(message)

    async def _push_depth(self, message: dict[str, Any]) -> None:
        market, seq = message["market"], message["seq"]
        for key, sub in list(self.subs.items()):
            if key[0] != "depth" or sub.market != market or seq <= sub.seq:
                continue
            update = message["views"].get(sub.interval, {}).get(str(sub.limit))
            if update is None:
                continue
            if update["prev_seq"] > sub.seq:
                # We missed a change of this view (the channel layer dropped a message): start again.
                await self._send_depth_snapshot(sub)
                continue
            sub.seq = seq
            self._put(push_once(("depth", market, seq, update["prev_seq"], sub.limit, sub.interval), "depth.update",
                                [False, {"asks": update["asks"], "bids": update["bids"], "seq": seq,
                                         "prev_seq": update["prev_seq"]}, market, sub.limit, sub.interval]))

    async def _send_depth_snapshot(self, sub: Subscription, later: bool = False) -> None:
        snap = await in_thread(marketdata.depth)(sub.market, sub.limit, sub.interval)
        sub.seq = snap["seq"]
        text = push("depth.update", [True, {"asks": snap["asks"], "bids": snap["bids"], "seq": snap["seq"]},
                                     sub.market, sub.limit, sub.interval])
        if later:
            self._then(text)
        else:
            self._put(text)

    async def _push_deals(self, message: dict[str, Any]) -> None:
        market = message["market"]
        sub = self.subs.get(("deals", market))
        if sub is None:
            return
        if message["prev_id"] > sub.seq:
            # Deals between what we sent and this batch went past us (a dropped message): Redis already
            # holds this batch, so read everything newer than what the client has.
            fresh = await in_thread(marketdata.recent_deals)(market, marketdata.RECENT_DEALS, sub.seq)
        else:
            fresh = [d for d in message["deals"] if d["id"] > sub.seq]
        if fresh:
            sub.seq = max(d["id"] for d in fresh)
            # a deal's id names it: the same ids are the same frame
            self._put(push_once(("deals", market, fresh[0]["id"], fresh[-1]["id"], fresh[-1]["time"], len(fresh)),
                                "deals.update",
                                [market, fresh]))

    def _push_private(self, message: dict[str, Any]) -> None:
        if message.get("user") != self.user_id:
            return
        for item in message["items"]:
            kind = item["kind"]
            if item["seq"] <= self.private_seq.get(kind, 0):
                continue  # a redelivered event
            self.private_seq[kind] = item["seq"]
            if kind == "order":
                market = item["market"]
                if ("order", market) in self.subs or ("order", None) in self.subs:
                    self._put(push("order.update", [item["event"], item["order"]]))
            elif kind == "asset":
                asset = item["asset"]
                if ("asset", asset) in self.subs or ("asset", None) in self.subs:
                    self._put(push("asset.update", [{asset: {"available": item["available"],
                                                             "frozen": item["frozen"]}}]))

    # ------------------------------------------------------------------ methods: server.*

    async def server_ping(self, req: Request) -> Any:
        return "pong"

    async def server_time(self, req: Request) -> Any:
        return int(time.time() * 1000)

    async def server_auth(self, req: Request) -> Any:
        params = req.params
        if len(params) == 1:
            user_id, expires = await in_thread(_auth_jwt)(string(params[0], "token", 4096))
        elif len(params) == 3:
            user_id, expires = await in_thread(_auth_api_key)(
                string(params[0], "api_key"), string(params[1], "timestamp", 16), string(params[2], "signature", 128),
                self.scope)
        else:
            raise invalid("params are [jwt] or [api_key, timestamp, signature]")
        if self.user_id is not None and self.user_id != user_id:
            raise WsError(ErrorCode.AUTH_FAILED, "this connection is authenticated as another user")
        self.user_id, self.auth_expires = user_id, expires
        return {"status": "success", "user_id": user_id}

    # ------------------------------------------------------------------ methods: depth.*

    async def _depth_params(self, params: list[Any], query: bool) -> tuple[str, int, str]:
        market = string(param(params, 0, "market"), "market", 33)
        spec = await in_thread(marketdata.market_spec)(market)
        limit = param(params, 1, "limit", 20)
        if query:
            limit = integer(limit, "limit", 1, marketdata.DEPTH_MAX_LIMIT)
        else:
            limit = marketdata.depth_limit_allowed(limit)
        try:
            interval = normalize_interval(param(params, 2, "interval", "0"), spec.price_prec)
        except ValueError as exc:
            raise invalid(str(exc)) from None
        return market, limit, interval

    async def depth_query(self, req: Request) -> Any:
        market, limit, interval = await self._depth_params(req.params, query=True)
        return await in_thread(marketdata.depth)(market, limit, interval)

    async def depth_subscribe(self, req: Request) -> Any:
        market, limit, interval = await self._depth_params(req.params, query=False)
        key = ("depth", market, limit, interval)
        sub = await self._subscribe(key, Subscription("depth", groups.depth(market), market, limit, interval))
        await self._send_depth_snapshot(sub, later=True)
        return SUCCESS

    async def depth_unsubscribe(self, req: Request) -> Any:
        if not req.params:
            count = await self._unsubscribe(lambda k: k[0] == "depth")
        else:
            market, limit, interval = (await self._depth_params(req.params, query=False) if len(req.params) > 1
                                       else (string(req.params[0], "market", 33), None, None))
            count = await self._unsubscribe(lambda k: k[0] == "depth" and k[1] == market and (
                limit is None or (k[2], k[3]) == (limit, interval)))
        return {"status": "success", "unsubscribed": count}

    # ------------------------------------------------------------------ methods: deals.*

    async def deals_query(self, req: Request) -> Any:
        market = string(param(req.params, 0, "market"), "market", 33)
        limit = integer(param(req.params, 1, "limit", 100), "limit", 1, marketdata.RECENT_DEALS)
        last_id = optional_int(param(req.params, 2, "last_id", None), "last_id")
        return await in_thread(marketdata.recent_deals)(market, limit, last_id)

    async def deals_subscribe(self, req: Request) -> Any:
        markets = names(req.params, "market", settings.WS_MAX_SUBSCRIPTIONS)
        if not markets:
            raise invalid("list the markets: [market, ...]")
        for market in markets:
            await in_thread(marketdata.market_spec)(market)
        for market in markets:
            self._count_subscription(("deals", market))
        for market in markets:
            if ("deals", market) in self.subs:
                continue
            sub = await self._subscribe(("deals", market), Subscription("deals", groups.deals(market), market))
            recent = await in_thread(marketdata.recent_deals)(market, marketdata.RECENT_DEALS)
            sub.seq = recent[0]["id"] if recent else 0
            self._then(push("deals.update", [market, recent]))
        return SUCCESS

    async def deals_unsubscribe(self, req: Request) -> Any:
        markets = set(names(req.params, "market", settings.WS_MAX_SUBSCRIPTIONS))
        count = await self._unsubscribe(lambda k: k[0] == "deals" and (not markets or k[1] in markets))
        return {"status": "success", "unsubscribed": count}

    # ------------------------------------------------------------------ methods: kline.*

    def _interval(self, value: Any) -> str:
        if value not in INTERVALS:
            raise invalid(f"interval must be one of {', '.join(INTERVALS)}")
        return str(value)

    async def kline_query(self, req: Request) -> Any:
        market = string(param(req.params, 0, "market"), "market", 33)
        interval = self._interval(param(req.params, 1, "interval"))
        start = optional_int(param(req.params, 2, "start", None), "start")
        end = optional_int(param(req.params, 3, "end", None), "end")
        limit = integer(param(req.params, 4, "limit", 500), "limit", 1, marketdata.KLINE_MAX_LIMIT)
        return await in_thread(marketdata.klines)(market, interval, start, end, limit)

    async def kline_subscribe(self, req: Request) -> Any:
        market = string(param(req.params, 0, "market"), "market", 33)
        interval = self._interval(param(req.params, 1, "interval"))
        await in_thread(marketdata.market_spec)(market)
        await self._subscribe(("kline", market, interval), Subscription("kline", groups.kline(market), market,
                                                                        interval=interval))
        latest = await in_thread(marketdata.klines)(market, interval, None, None, 1)
        for candle in latest:
            self._then(push("kline.update", [market, interval, candle]))
        return SUCCESS

    async def kline_unsubscribe(self, req: Request) -> Any:
        market = param(req.params, 0, "market", None)
        interval = param(req.params, 1, "interval", None)
        count = await self._unsubscribe(lambda k: k[0] == "kline" and (market is None or k[1] == market) and (
            interval is None or k[2] == interval))
        return {"status": "success", "unsubscribed": count}

    # ------------------------------------------------------------------ methods: ticker.*

    async def ticker_query(self, req: Request) -> Any:
        if not req.params:
            return await in_thread(marketdata.tickers)()
        return await in_thread(marketdata.ticker)(string(req.params[0], "market", 33))

    async def ticker_subscribe(self, req: Request) -> Any:
        markets = names(req.params, "market", settings.WS_MAX_SUBSCRIPTIONS)
        for market in markets:
            await in_thread(marketdata.market_spec)(market)
        if not markets:
            await self._subscribe(("ticker", None), Subscription("ticker", groups.TICKER_ALL))
            for market, tick in (await in_thread(marketdata.tickers)()).items():
                self._then(push("ticker.update", [market, tick]))
            return SUCCESS
        for market in markets:
            self._count_subscription(("ticker", market))
        for market in markets:
            await self._subscribe(("ticker", market), Subscription("ticker", groups.ticker(market), market))
            self._then(push("ticker.update", [market, await in_thread(marketdata.ticker)(market)]))
        return SUCCESS

    async def ticker_unsubscribe(self, req: Request) -> Any:
        markets = set(names(req.params, "market", settings.WS_MAX_SUBSCRIPTIONS))
        count = await self._unsubscribe(lambda k: k[0] == "ticker" and (not markets or k[1] in markets))
        return {"status": "success", "unsubscribed": count}

    # ------------------------------------------------------------------ methods: order.*, asset.* (private)

    async def order_query(self, req: Request) -> Any:
        user_id = self._require_auth()
        market = param(req.params, 0, "market", None)
        if market is not None:
            await in_thread(marketdata.market_spec)(string(market, "market", 33))
        return await in_thread(_matcher_call)("open_orders", user_id, market)

    async def order_subscribe(self, req: Request) -> Any:
        return await self._private_subscribe("order", req, marketdata.market_spec)

    async def order_unsubscribe(self, req: Request) -> Any:
        return await self._private_unsubscribe("order", req)

    async def asset_query(self, req: Request) -> Any:
        user_id = self._require_auth()
        wanted = set(names(req.params, "asset", 100))
        balances = await in_thread(_matcher_call)("balances", user_id)
        return {a: b for a, b in balances.items() if not wanted or a in wanted}

    async def asset_subscribe(self, req: Request) -> Any:
        return await self._private_subscribe("asset", req, _asset_exists)

    async def asset_unsubscribe(self, req: Request) -> Any:
        return await self._private_unsubscribe("asset", req)

    async def _private_subscribe(self, kind: str, req: Request, check: Callable[[str], Any]) -> Any:
        user_id = self._require_auth()
        what = "market" if kind == "order" else "asset"
        items: list[str | None] = list(names(req.params, what, settings.WS_MAX_SUBSCRIPTIONS)) or [None]
        for item in items:
            if item is not None:
                await in_thread(check)(item)
        for item in items:
            self._count_subscription((kind, item))
        for item in items:
            await self._subscribe((kind, item), Subscription(kind, groups.user(user_id), item))
        return SUCCESS

    async def _private_unsubscribe(self, kind: str, req: Request) -> Any:
        wanted = set(names(req.params, "market" if kind == "order" else "asset", settings.WS_MAX_SUBSCRIPTIONS))
        count = await self._unsubscribe(lambda k: k[0] == kind and (not wanted or k[1] in wanted))
        return {"status": "success", "unsubscribed": count}


METHODS: dict[str, Callable[[StreamConsumer, Request], Awaitable[Any]]] = {
    "server.ping": StreamConsumer.server_ping,
    "server.time": StreamConsumer.server_time,
    "server.auth": StreamConsumer.server_auth,
    "depth.query": StreamConsumer.depth_query,
    "depth.subscribe": StreamConsumer.depth_subscribe,
    "depth.unsubscribe": StreamConsumer.depth_unsubscribe,
    "deals.query": StreamConsumer.deals_query,
    "deals.subscribe": StreamConsumer.deals_subscribe,
    "deals.unsubscribe": StreamConsumer.deals_unsubscribe,
    "kline.query": StreamConsumer.kline_query,
    "kline.subscribe": StreamConsumer.kline_subscribe,
    "kline.unsubscribe": StreamConsumer.kline_unsubscribe,
    "ticker.query": StreamConsumer.ticker_query,
    "ticker.subscribe": StreamConsumer.ticker_subscribe,
    "ticker.unsubscribe": StreamConsumer.ticker_unsubscribe,
    "order.query": StreamConsumer.order_query,
    "order.subscribe": StreamConsumer.order_subscribe,
    "order.unsubscribe": StreamConsumer.order_unsubscribe,
    "asset.query": StreamConsumer.asset_query,
    "asset.subscribe": StreamConsumer.asset_subscribe,
    "asset.unsubscribe": StreamConsumer.asset_unsubscribe,
}


# ---------------------------------------------------------------------- blocking helpers (run in threads)


def _auth_jwt(token: str) -> tuple[int, float]:
    from rest_framework_simplejwt.exceptions import TokenError
    from rest_framework_simplejwt.settings import api_settings
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User

    try:
        access = AccessToken(token)
    except TokenError as exc:
        raise WsError(ErrorCode.AUTH_FAILED, f"invalid token: {exc}") from None
    user_id = access.get(api_settings.USER_ID_CLAIM)
    if not User.objects.filter(pk=user_id, is_active=True).exists():
        raise WsError(ErrorCode.AUTH_FAILED, "unknown or inactive user")
    return int(user_id), float(access["exp"])


def _auth_api_key(key_id: str, timestamp: str, signature: str, scope: dict[str, Any]) -> tuple[int, None]:
    """API-key auth with the Client API's keys: HMAC-SHA256(secret, timestamp + "server.auth"), hex.

    The signed text differs from every REST request's (which start with
    timestamp + HTTP method + "/"), and each signature is accepted once.
    """
    import hmac

    from accounts import selectors as account_selectors
    from cryptgo.api.authentication import check_timestamp, client_ip, hmac_hex, ip_allowed, remember_signature

    window = settings.API_SIGNATURE_WINDOW_MS
    if check_timestamp(timestamp, window) is None:
        raise WsError(ErrorCode.AUTH_FAILED, f"timestamp must be milliseconds within {window} ms of server time")
    found = account_selectors.api_key_for_auth(key_id)
    if found is None:
        raise WsError(ErrorCode.AUTH_FAILED, "unknown or revoked API key")
    key, secret = found
    if not hmac.compare_digest(hmac_hex(secret, f"{timestamp}server.auth".encode()), signature.lower()):
        raise WsError(ErrorCode.AUTH_FAILED, "the signature does not match")
    if not key.can_read:
        raise WsError(ErrorCode.AUTH_FAILED, "this API key may not read")
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    meta = {"REMOTE_ADDR": (scope.get("client") or ["", 0])[0]}
    if "x-forwarded-for" in headers:
        meta["HTTP_X_FORWARDED_FOR"] = headers["x-forwarded-for"]
    if not ip_allowed(key, client_ip(SimpleNamespace(META=meta))):
        raise WsError(ErrorCode.AUTH_FAILED, "this API key may not be used from this address")
    if not remember_signature("ws", signature.lower(), 2 * window):
        raise WsError(ErrorCode.AUTH_FAILED, "this signature was already used")
    account_selectors.api_key_touch(key)
    return key.user_id, None


def _asset_exists(symbol: str) -> None:
    from markets.models import Asset

    if not Asset.objects.filter(symbol=symbol).exists():
        raise invalid(f"unknown asset {symbol!r}")


def _matcher_call(method: str, *args: Any) -> Any:
    from matcher.client import get_client

    return getattr(get_client(), method)(*args)


def _service_error(exc: Exception) -> tuple[ErrorCode, str]:
    try:
        from matcher.client import MatcherRejected, MatcherUnavailable
    except ImportError:  # pragma: no cover - the matcher client ships with the project
        return ErrorCode.INTERNAL_ERROR, "internal error"
    if isinstance(exc, MatcherUnavailable):
        return ErrorCode.SERVICE_UNAVAILABLE, "the matcher is unavailable; retry"
    if isinstance(exc, redis.exceptions.RedisError):
        log.warning("websocket request failed on Redis: %s", exc)
        return ErrorCode.SERVICE_UNAVAILABLE, "market data is unavailable; retry"
    if isinstance(exc, MatcherRejected):
        return ErrorCode.INVALID_ARGUMENT, exc.message
    return ErrorCode.INTERNAL_ERROR, "internal error"
