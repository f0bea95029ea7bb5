"""A lean ASGI layer in front of Django for the API's hot endpoints (docs/adr/0007-asgi-fast-path.md).

Django's ASGI handler costs about 2 ms of CPU per request on the development machine (request
signals, middleware, a thread per request for the sync view): a depth read from Redis then runs at
a few hundred requests per second per worker, while the read itself is a Redis GET. This layer
answers these requests on the event loop instead:

- ``GET /api/v1/markets/{name}/depth`` and ``GET /api/v3/depth`` (Redis with redis.asyncio);
- ``GET /api/v1/markets/{name}/ticker``, ``GET /api/v3/trades`` and ``GET /api/v3/ticker/24hr?symbol=``
  (the views' sync selectors, in a thread: no Django handler, but a thread hand-off);
- ``POST /api/v1/orders`` with a JWT (``native_order``): validation on the loop, the placement through
  the worker's async matcher client, which sends the placements in flight together as one ``PlaceBatch``.

It serves a request only where it follows the view exactly: market data is read from Redis
(``redis_live``), the request is a GET without a body (or the placement's JSON), on an allowed host.
Markets and JWT users come from the views' own per-process caches, or on a miss from the same
lookups run in a thread (they fill the caches). Anything else -- ``MARKET_DATA_SOURCE=database``,
HEAD, a body, API keys, every other path -- falls through to Django unchanged, before anything
was counted.

The answers are the DRF views' own: the same validation (``depth_args``, ``depth_limit``,
``order_place_in``), the same market lookups, selectors and services, the same error rendering
(``error_parts``), the same throttle counters, DRF's JSON renderer and the headers Django's
middleware adds with these settings (``tests/api/test_fastpath.py`` compares both paths).
``API_FAST_PATH=off`` turns it off.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, QueryDict
from rest_framework import exceptions as drf
from rest_framework.renderers import JSONRenderer

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Response = tuple[int, bytes, dict[str, str]]  # status, body, extra headers

_renderer = JSONRenderer()
_NATIVE_MARKET = re.compile(r"/api/v1/markets/([^/]+)/(depth|ticker)")
# Rendered bodies by (kind, Redis key, limit): the Redis value they were rendered from and the bytes.
# A depth view changes only when the book does, so repeated reads of one view render once.
_rendered: dict[tuple[str, str, int], tuple[str, bytes]] = {}
_RENDERED_MAX = 4096


class Request:
    """What the fast path needs of an HTTP request: its query, the client's IP, a few headers."""

    __slots__ = ("query", "ip", "headers")

    def __init__(self, query: QueryDict, ip: str, headers: dict[bytes, bytes]) -> None:
        self.query = query
        self.ip = ip
        self.headers = headers

    @classmethod
    def from_scope(cls, scope: Scope, body: bool = False) -> Request | None:
        """The request, or None when Django must answer it (a body where none is expected, a repeated
        header the fast path reads, a host Django would refuse, a query that is not UTF-8)."""
        if scope.get("root_path"):
            return None
        headers: dict[bytes, bytes] = {}
        forwarded = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                text = value.decode("latin-1")
                forwarded = text if forwarded is None else f"{forwarded},{text}"  # as Django joins them
            elif name in headers:
                return None
            else:
                headers[name] = value
        if not body and (headers.get(b"content-length", b"0").strip() != b"0" or b"transfer-encoding" in headers):
            return None
        host = headers.get(b"host")
        if host is None or not _host_allowed(host.decode("latin-1")):
            return None
        try:
            query = QueryDict(scope.get("query_string", b"").decode())
        except UnicodeDecodeError:
            return None
        from cryptgo.api.authentication import client_ip_of

        client = scope.get("client")
        return cls(query, client_ip_of(client[0] if client else None, forwarded), headers)


def _host_allowed(host: str) -> bool:
    """Django's own ALLOWED_HOSTS check (``HttpRequest.get_host``), remembered per Host value (it costs
    more than the rest of a depth read)."""
    if settings.USE_X_FORWARDED_HOST:
        return False
    known = _hosts.get(host)
    if known is None:
        probe = HttpRequest()
        probe.META = {"HTTP_HOST": host}
        try:
            probe.get_host()
            known = True
        except DisallowedHost:
            known = False
        if len(_hosts) >= 1024:
            _hosts.clear()
        _hosts[host] = known
    return known


_hosts: dict[str, bool] = {}


def _security_headers() -> list[tuple[bytes, bytes]]:
    """The headers SecurityMiddleware and XFrameOptionsMiddleware add to an API response with these settings."""
    out = [(b"X-Frame-Options", settings.X_FRAME_OPTIONS.upper().encode())]
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        out.append((b"X-Content-Type-Options", b"nosniff"))
    policy = settings.SECURE_REFERRER_POLICY
    if policy:
        text = policy if isinstance(policy, str) else ",".join(policy)
        out.append((b"Referrer-Policy", ",".join(v.strip() for v in text.split(",")).encode()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        out.append((b"Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode()))
    return out


def enabled() -> bool:
    """On unless ``API_FAST_PATH`` is off or a setting makes Django's middleware do more than add headers
    (HTTPS redirect, HSTS): then every request goes to Django."""
    return bool(settings.API_FAST_PATH and not settings.SECURE_SSL_REDIRECT and not settings.SECURE_HSTS_SECONDS)


_SECURITY_HEADERS: list[tuple[bytes, bytes]] = []


# ------------------------------------------------------------------ shared steps

_executor: list[ThreadPoolExecutor] = []


def _pool() -> ThreadPoolExecutor:
    """Threads for blocking calls: the sync selectors, and the database on a cache miss (placements use
    the async matcher client on the loop). More than the default executor's handful: these calls
    mostly wait without the GIL."""
    if not _executor:
        _executor.append(ThreadPoolExecutor(max_workers=64, thread_name_prefix="fastpath"))
    return _executor[0]


def _closing(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, then close the database connections it opened in this pool thread (no
    request_finished signal closes them here)."""
    from django.db import connections

    try:
        return fn(*args)
    finally:
        for conn in connections.all(initialized_only=True):
            conn.close()


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(_pool(), _closing, fn, *args)


async def _market(name: str, lookup: Callable[[str], Any], key: str | None = None) -> tuple[Any]:
    """``(market or None,)``: from the market cache, or ``lookup(name)`` in a thread (it queries and fills it)."""
    from markets import selectors

    hit = selectors.market_cached(key or name)
    return hit if hit is not None else (await _in_thread(lookup, name),)



async def _market_data_live() -> bool:
    """``markets.selectors.redis_live`` without blocking the loop: its cached answer, or an async heartbeat check."""
    from markets import marketdata, selectors

    live = selectors.redis_live_known()
    if live is None:
        try:
            live = bool(await _md_redis().exists(marketdata.HEARTBEAT_KEY))
        except Exception:  # Redis down: Django serves from PostgreSQL and the matcher
            live = False
        selectors.redis_live_record(live)
    return live


def _md_redis() -> Any:
    from cryptgo.api import redis_conn

    return redis_conn.get_async(decode_responses=True, socket_timeout=5)


_inflight: dict[str, asyncio.Future[Any]] = {}
_joinable: dict[str, asyncio.Future[Any]] = {}


async def _fresh_get(key: str) -> Any:
    """``GET key``, shared by the requests that arrive together: each answer comes from a GET issued after
    the request arrived (never an older one), but at most one GET per key is in flight and one waits.

    A request finding no GET to join opens one and waits for the GET in flight (if any) to finish; the
    requests arriving meanwhile join it. Under load this turns dozens of round trips into a few, and
    redis.asyncio costs ~0.15 ms of CPU per command.
    """
    joinable = _joinable.get(key)
    if joinable is not None:
        return await asyncio.shield(joinable)
    mine: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    _joinable[key] = mine
    try:
        previous = _inflight.get(key)
        if previous is not None:
            await asyncio.wait([previous])
        del _joinable[key]
        _inflight[key] = mine
        mine.set_result(await _md_redis().get(key))
    except BaseException as exc:
        if _joinable.get(key) is mine:
            del _joinable[key]
        if not mine.done():
            mine.set_exception(exc if isinstance(exc, Exception) else ConnectionError("cancelled"))
            mine.exception()  # retrieved: the joiners re-raise it, no "never retrieved" warning
        raise
    finally:
        if _inflight.get(key) is mine:
            del _inflight[key]
    return mine.result()


async def _depth_body(kind: str, market: str, limit: int, interval: str | None, price_prec: int,
                      render: Callable[[dict[str, Any]], dict[str, Any]]) -> bytes:
    """The rendered depth answer: the view in Redis when it holds this one, else the matcher's book
    (``markets.selectors.depth``, in a thread: the gRPC client blocks)."""
    from markets import selectors
    from trading.services import matcher_call

    key = selectors.depth_redis_key(market, limit, interval, price_prec)
    if key is not None:
        raw = await _fresh_get(key)
        memo = _rendered.get((kind, key, limit))
        if raw is not None and memo is not None and memo[0] == raw:
            return memo[1]
        book = selectors.depth_from_view(raw, limit)
        if book is not None:
            body = _renderer.render(render(book))
            if len(_rendered) >= _RENDERED_MAX:
                _rendered.clear()
            _rendered[(kind, key, limit)] = (raw, body)
            return body
    book = await _in_thread(matcher_call, selectors.depth_from_matcher, market, limit, interval)
    return _renderer.render(render(book))


async def _throttled(req: Request, user: Any = None) -> float | None:
    """``ApiThrottle`` (``IPThrottle`` without a user): seconds to wait, or None to go on."""
    from cryptgo.api.throttling import async_throttle_wait, ip_counters, user_counters

    return await async_throttle_wait(user_counters(user) + ip_counters(req.ip))


# ------------------------------------------------------------------ endpoints


async def _native_market_read(req: Request, name: str,
                              answer: Callable[[Any], Awaitable[bytes]]) -> Response | None:
    """A public read of ``/api/v1/markets/{name}/...`` as ``PublicApi`` views answer it: the per-IP
    throttle, ``market_or_404``, then ``answer(market)``; None (to Django) unless Redis is the source."""
    from markets import selectors
    from markets.api.views import market_or_404

    if not await _market_data_live():
        return None
    hit = await _market(name, selectors.market_get)
    try:
        wait = await _throttled(req)
        if wait is not None:
            raise drf.Throttled(wait)
        return 200, await answer(market_or_404(name, lambda _: hit[0])), {}
    except Exception as exc:
        return _native_error(exc)


def _native_error(exc: Exception) -> Response:
    """The native API's error answer for ``exc`` (``error_parts``); anything else is re-raised (a 500)."""
    from cryptgo.api.exceptions import error_parts

    parts = error_parts(exc)
    if parts is None:
        raise exc
    status, body, headers = parts
    return status, _renderer.render(body), headers


async def native_depth(req: Request, name: str) -> Response | None:
    """``GET /api/v1/markets/{name}/depth`` as ``markets.api.views.DepthApi`` answers it."""
    from markets.api.views import depth_args, depth_out

    async def answer(market: Any) -> bytes:
        limit, interval = depth_args(market, req.query)
        return await _depth_body("v1", market.name, limit, interval, market.price_precision,
                                 lambda book: depth_out(market, book))

    return await _native_market_read(req, name, answer)


async def native_ticker(req: Request, name: str) -> Response | None:
    """``GET /api/v1/markets/{name}/ticker`` as ``markets.api.views.TickerApi`` answers it (the selector,
    which reads Redis with the sync client, in a thread)."""
    from markets import selectors

    async def answer(market: Any) -> bytes:
        return bytes(_renderer.render(await _in_thread(selectors.ticker, market)))

    return await _native_market_read(req, name, answer)


async def _binance_market_read(req: Request,
                               answer: Callable[[dict[str, str], Any], Awaitable[bytes]]) -> Response | None:
    """A public read of ``/api/v3/...?symbol=`` as ``BinanceApi`` views answer it: the per-IP throttle,
    ``market_for``, then ``answer(params, market)``; None (to Django) without a symbol or unless Redis
    is the source. A GET's parameters are its query string (``params_of``: a GET body goes to Django)."""
    from binance import errors as E
    from binance.views import market_for
    from markets import selectors

    p = req.query.dict()
    symbol = p.get("symbol")
    if not symbol or not await _market_data_live():
        return None
    hit = await _market(symbol, selectors.market_by_symbol, "symbol:" + symbol)
    try:
        wait = await _throttled(req)
        if wait is not None:
            raise drf.Throttled(wait)
        return 200, await answer(p, market_for(symbol, lookup=lambda _: hit[0])), {}
    except Exception as exc:
        parts = E.error_parts(exc)
        if parts is None:
            raise
        return parts[0], _renderer.render(parts[1]), {}


async def binance_depth(req: Request) -> Response | None:
    """``GET /api/v3/depth`` as ``binance.views.DepthApi`` answers it."""
    from binance.views import depth_limit, depth_out

    async def answer(p: dict[str, str], market: Any) -> bytes:
        return await _depth_body("v3", market.name, depth_limit(p), None, market.price_precision, depth_out)

    return await _binance_market_read(req, answer)


async def binance_trades(req: Request) -> Response | None:
    """``GET /api/v3/trades`` as ``binance.views.TradesApi`` answers it (in a thread: the sync selector)."""
    from binance.views import trades_out

    async def answer(p: dict[str, str], market: Any) -> bytes:
        return bytes(_renderer.render(await _in_thread(trades_out, p, market)))

    return await _binance_market_read(req, answer)


async def binance_ticker(req: Request) -> Response | None:
    """``GET /api/v3/ticker/24hr?symbol=`` as ``binance.views.Ticker24hrApi`` answers one symbol."""
    from binance.views import _ticker24

    async def answer(p: dict[str, str], market: Any) -> bytes:
        return bytes(_renderer.render(await _in_thread(_ticker24, market)))

    return await _binance_market_read(req, answer)


_ORDER_BODY_MAX = 16 * 1024  # larger placements (never legitimate) go to Django unread


async def native_order(req: Request, body: bytes) -> Response | None:
    """``POST /api/v1/orders`` with a JWT, as ``trading.api.views.OrdersApi.post`` answers it.

    Served when the JWT authenticates (the user row from ``JWTAuthentication``'s cache, or read in a
    thread); API keys, bad tokens, unknown or inactive users, other content types and bodies that
    are not JSON go to Django, before anything was counted.
    """
    from rest_framework.utils.json import strict_constant

    from cryptgo.api.authentication import JWTAuthentication
    from markets import selectors
    from trading import services
    from trading.api.views import order_fields, order_out, order_place_in

    auth, header = JWTAuthentication(), req.headers.get(b"authorization")
    if req.headers.get(b"content-type") != b"application/json" or header is None:
        return None
    try:
        raw = auth.get_raw_token(header)
        token = auth.get_validated_token(raw) if raw is not None else None
        data = json.loads(body.decode(), parse_constant=strict_constant)
    except Exception:
        return None
    if token is None:
        return None
    user = auth.cached_user(token)
    if user is None:
        try:
            user = await _in_thread(auth.get_user, token)  # queries the user row and fills the cache
        except Exception:
            return None  # unknown or inactive: Django answers
    name = data.get("market") if isinstance(data, dict) else None
    hit = await _market(name, selectors.market_get) if isinstance(name, str) and 0 < len(name) <= 33 else (None,)
    try:
        wait = await _throttled(req, user)
        if wait is not None:
            raise drf.Throttled(wait)
        d = order_place_in(data, market_lookup=lambda _: hit[0])
        return 201, _renderer.render(order_out(await _place(services.placement(**order_fields(user, d)), user))), {}
    except Exception as exc:
        return _native_error(exc)


async def _place(request: Any, user: Any) -> dict[str, Any]:
    """``trading.services.order_place`` on the loop: the worker's batched async matcher client
    (``AsyncMatcherClient``: placements in flight together share one ``PlaceBatch``), the same errors."""
    from matcher.client import MatcherRejected, MatcherUnavailable, get_async_client
    from trading import services

    try:
        return await get_async_client().place(request)
    except (MatcherRejected, MatcherUnavailable) as exc:
        if services.placement_needs_database(exc):
            return await _in_thread(services.placement_failed, user, request, exc)  # type: ignore[no-any-return]
        return services.placement_failed(user, request, exc)


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body, and whether the client is still there."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", False
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks), True


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for Django after the fast path read the body: the body once, then the client's messages."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> dict[str, Any]:
        if pending:
            return pending.pop()
        return await receive()

    return replayed


class FastPath:
    """The ASGI app for HTTP: the hot paths above, everything else to ``app`` (Django)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and enabled():
            if scope["method"] == "GET":
                answer = await self._serve(scope)
                if answer is not None:
                    await _respond(send, answer, b"GET, HEAD, OPTIONS")
                    return
            elif scope["method"] == "POST" and scope["path"] == "/api/v1/orders":
                req = Request.from_scope(scope, body=True)
                size = req.headers.get(b"content-length", b"") if req is not None else b""
                if req is not None and size.isdigit() and int(size) <= _ORDER_BODY_MAX:
                    body, connected = await _read_body(receive)
                    if not connected:
                        return
                    answer = await native_order(req, body)
                    if answer is not None:
                        await _respond(send, answer, b"GET, POST, DELETE, HEAD, OPTIONS")
                        return
                    receive = _replay(body, receive)
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope) -> Response | None:
        path = scope["path"]
        handler: Callable[[Request], Awaitable[Response | None]] | None = _BINANCE.get(path)
        if handler is None:
            m = _NATIVE_MARKET.fullmatch(path)
            if m is None:
                return None
            name, read = m.group(1), _NATIVE[m.group(2)]

            def handler(req: Request) -> Awaitable[Response | None]:
                return read(req, name)

        req = Request.from_scope(scope)
        return None if req is None else await handler(req)


_BINANCE = {"/api/v3/depth": binance_depth, "/api/v3/trades": binance_trades, "/api/v3/ticker/24hr": binance_ticker}
_NATIVE = {"depth": native_depth, "ticker": native_ticker}


async def _respond(send: Send, answer: Response, allow: bytes) -> None:
    if not _SECURITY_HEADERS:
        _SECURITY_HEADERS.extend(_security_headers())
    status, body, extra = answer
    headers = [(b"Content-Type", b"application/json"), *[(k.encode(), v.encode()) for k, v in extra.items()],
               (b"Allow", allow), *_SECURITY_HEADERS[:1], (b"Content-Length", str(len(body)).encode()),
               *_SECURITY_HEADERS[1:]]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
