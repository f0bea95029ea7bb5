"""One Redis client per process for the API's counters (throttling, replay cache).

Short socket timeouts: these are advisory checks, and a slow Redis must not
hold a request for long (callers fail open).
"""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def get() -> redis.Redis:
    return _client(settings.REDIS_URL)
