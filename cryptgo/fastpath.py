"""A lean ASGI layer in front of Django for the hot public market-data reads (docs/adr/0007).

Django's ASGI handler costs about 2 ms of CPU per request on the development machine (request
signals, middleware, a thread per request for the sync view): a depth read from Redis then runs at
a few hundred requests per second per worker, while the read itself is a Redis GET. This layer
answers these GETs on the event loop with redis.asyncio instead:

- ``/api/v1/markets/{name}/depth`` and ``/api/v3/depth``.

It serves a request only when it can do so without touching the database: the market is in the
per-process market cache (``markets.selectors.market_cached``), market data is read from Redis
(``redis_live``), the request is a GET without a body, on an allowed host. Anything else -- the
first request for a market after the cache lapsed, ``MARKET_DATA_SOURCE=database``, HEAD, a body,
every other path -- falls through to Django unchanged, before anything was counted or read.

The answers are the DRF views' own: the same validation (``depth_args``, ``depth_limit``), the same
market lookups, the same selectors pieces, the same error rendering (``error_parts``), the same
per-IP throttle counters, DRF's JSON renderer and the headers Django's middleware adds with these
settings (``tests/api/test_fastpath.py`` compares both paths). ``API_FAST_PATH=off`` turns it off.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, QueryDict
from rest_framework import exceptions as drf
from rest_framework.renderers import JSONRenderer

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Response = tuple[int, bytes, dict[str, str]]  # status, body, extra headers

_renderer = JSONRenderer()
_NATIVE_DEPTH = re.compile(r"/api/v1/markets/([^/]+)/depth")
# Rendered bodies by (kind, Redis key, limit): the Redis value they were rendered from and the bytes.
# A depth view changes only when the book does, so repeated reads of one view render once.
_rendered: dict[tuple[str, str, int], tuple[str, bytes]] = {}
_RENDERED_MAX = 4096


class Request:
    """What the fast path needs of an HTTP request: its query, the client's IP."""

    __slots__ = ("query", "ip")

    def __init__(self, query: QueryDict, ip: str) -> None:
        self.query = query
        self.ip = ip

    @classmethod
    def from_scope(cls, scope: Scope) -> Request | None:
        """The request, or None when Django must answer it (a body, a host it would refuse, odd encoding)."""
        if scope.get("root_path"):
            return None
        host = forwarded = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.strip() != b"0":
                    return None
            elif name == b"transfer-encoding":
                return None
            elif name == b"host":
                host = value.decode("latin-1")
            elif name == b"x-forwarded-for":
                text = value.decode("latin-1")
                forwarded = text if forwarded is None else f"{forwarded},{text}"  # as Django joins them
        if host is None or not _host_allowed(host):
            return None
        try:
            query = QueryDict(scope.get("query_string", b"").decode())
        except UnicodeDecodeError:
            return None
        from cryptgo.api.authentication import client_ip_of

        client = scope.get("client")
        return cls(query, client_ip_of(client[0] if client else None, forwarded))


def _host_allowed(host: str) -> bool:
    """Django's own ALLOWED_HOSTS check (``HttpRequest.get_host``), without building a full request."""
    if settings.USE_X_FORWARDED_HOST:
        return False
    probe = HttpRequest()
    probe.META = {"HTTP_HOST": host}
    try:
        probe.get_host()
    except DisallowedHost:
        return False
    return True


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


async def _depth_body(kind: str, market: str, limit: int, interval: str | None, price_prec: int,
                      render: Callable[[dict[str, Any]], dict[str, Any]]) -> bytes:
    """The rendered depth answer: the view in Redis when it holds this one, else the matcher's book
    (``markets.selectors.depth``, in a thread: the gRPC client blocks)."""
    from markets import selectors
    from trading.services import matcher_call

    key = selectors.depth_redis_key(market, limit, interval, price_prec)
    if key is not None:
        raw = await _md_redis().get(key)
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
    book = await asyncio.to_thread(matcher_call, selectors.depth_from_matcher, market, limit, interval)
    return _renderer.render(render(book))


async def _throttled(req: Request) -> float | None:
    from cryptgo.api.throttling import ip_throttle_wait

    return await ip_throttle_wait(req.ip)


# ------------------------------------------------------------------ endpoints


async def native_depth(req: Request, name: str) -> Response | None:
    """``GET /api/v1/markets/{name}/depth`` as ``markets.api.views.DepthApi`` answers it."""
    from cryptgo.api.exceptions import error_parts
    from markets import selectors
    from markets.api.views import depth_args, depth_out, market_or_404

    hit = selectors.market_cached(name)
    if hit is None or not await _market_data_live():
        return None
    try:
        wait = await _throttled(req)
        if wait is not None:
            raise drf.Throttled(wait)
        market = market_or_404(name, lambda _: hit[0])
        limit, interval = depth_args(market, req.query)
        return 200, await _depth_body("v1", market.name, limit, interval, market.price_precision,
                                      lambda book: depth_out(market, book)), {}
    except Exception as exc:
        parts = error_parts(exc)
        if parts is None:
            raise
        status, body, headers = parts
        return status, _renderer.render(body), headers


async def binance_depth(req: Request) -> Response | None:
    """``GET /api/v3/depth`` as ``binance.views.DepthApi`` answers it."""
    from binance import errors as E
    from binance.views import depth_limit, depth_out, market_for
    from markets import selectors

    p = req.query.dict()
    symbol = p.get("symbol")
    hit = selectors.market_cached("symbol:" + symbol) if symbol else None
    if hit is None or not await _market_data_live():
        return None
    try:
        wait = await _throttled(req)
        if wait is not None:
            raise drf.Throttled(wait)
        market = market_for(symbol, lookup=lambda _: hit[0])
        assert market is not None
        body = await _depth_body("v3", market.name, depth_limit(p), None, market.price_precision, depth_out)
        return 200, body, {}
    except Exception as exc:
        parts = E.error_parts(exc)
        if parts is None:
            raise
        return parts[0], _renderer.render(parts[1]), {}


class FastPath:
    """The ASGI app for HTTP: the hot paths above, everything else to ``app`` (Django)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and enabled():
            answer = await self._serve(scope)
            if answer is not None:
                await _respond(send, answer)
                return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope) -> Response | None:
        path = scope["path"]
        if path == "/api/v3/depth":
            handler: Callable[[Request], Awaitable[Response | None]] = binance_depth
        elif (m := _NATIVE_DEPTH.fullmatch(path)) is not None:
            name = m.group(1)

            def handler(req: Request) -> Awaitable[Response | None]:
                return native_depth(req, name)
        else:
            return None
        req = Request.from_scope(scope)
        return None if req is None else await handler(req)


async def _respond(send: Send, answer: Response) -> None:
    if not _SECURITY_HEADERS:
        _SECURITY_HEADERS.extend(_security_headers())
    status, body, extra = answer
    headers = [(b"Content-Type", b"application/json"), *[(k.encode(), v.encode()) for k, v in extra.items()],
               (b"Allow", b"GET, HEAD, OPTIONS"), *_SECURITY_HEADERS[:1], (b"Content-Length", str(len(body)).encode()),
               *_SECURITY_HEADERS[1:]]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
