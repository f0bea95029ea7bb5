"""One Redis client per process for the API's counters (throttling, replay cache).

Short socket timeouts: these are advisory checks, and a slow Redis must not
hold a request for long (callers fail open).
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from typing import Any

import redis
import redis.asyncio
from django.conf import settings


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def get() -> redis.Redis:
    return _client(settings.REDIS_URL)


_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, bool], Any]] = \
    weakref.WeakKeyDictionary()


def get_async(decode_responses: bool = False, socket_timeout: float = 0.5) -> redis.asyncio.Redis:
    """A redis.asyncio client for the running event loop (the ASGI fast path): one per loop, URL and decoding.

    asyncio connections belong to the loop that opened them, so a client is never shared across loops.
    Its pool blocks (up to ``socket_timeout``) when all its connections are busy: redis-py's default
    pool fails the 101st concurrent command at once instead.
    """
    per_loop = _async_clients.setdefault(asyncio.get_running_loop(), {})
    key = (settings.REDIS_URL, decode_responses)
    client = per_loop.get(key)
    if client is None:
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            settings.REDIS_URL, max_connections=ASYNC_MAX_CONNECTIONS, timeout=socket_timeout,
            decode_responses=decode_responses, socket_timeout=socket_timeout,
            socket_connect_timeout=min(socket_timeout, 0.5))
        client = per_loop[key] = redis.asyncio.Redis(connection_pool=pool)
    return client


ASYNC_MAX_CONNECTIONS = 100
