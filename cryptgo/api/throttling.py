"""Throttling per user and per IP: fixed one-window counters in Redis (INCR + EXPIRE, one round trip).

Counting in Redis makes the limit hold across every web process; INCR is
atomic, so concurrent requests cannot slip past it as they can with a
read-modify-write history list. If Redis is unreachable the request is let
through (logged): throttling protects capacity and must not take trading down.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from cryptgo.api import redis_conn
from cryptgo.api.authentication import client_ip

log = logging.getLogger(__name__)

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
          "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int] | None:
    """"100/min" -> (100, 60); "off" or empty -> None. A malformed rate is a configuration error."""
    if not rate or rate.strip().lower() == "off":
        return None
    count, _, unit = rate.partition("/")
    if unit not in _UNITS or not count.isdigit():
        raise ValueError(f"throttle rate must look like 100/min or be 'off', got {rate!r}")
    return int(count), _UNITS[unit]


Counter = tuple[str, str, int, int]  # (scope, ident, limit, period)


def user_counters(user: Any) -> list[Counter]:
    """The per-user limit of an authenticated request (none when it is off)."""
    user_rate = parse_rate(settings.API_THROTTLE_USER_RATE)
    if user_rate is not None and user is not None and user.is_authenticated:
        return [("user", str(user.pk), *user_rate)]
    return []


def ip_counters(ip: str) -> list[Counter]:
    """The per-IP limit of a request from ``ip`` (none when it is off or the address unknown)."""
    ip_rate = parse_rate(settings.API_THROTTLE_IP_RATE)
    return [("ip", ip, *ip_rate)] if ip_rate is not None and ip else []


def counter_keys(counters: list[Counter], now: float) -> list[tuple[str, int]]:
    """(Redis key, expiry in seconds) of the current fixed window of each counter."""
    return [(f"throttle:{scope}:{ident}:{int(now // period)}", period + 1) for scope, ident, _, period in counters]


def throttle_wait(counters: list[Counter], counts: list[int], now: float) -> float | None:
    """Seconds until the request would be let through, given each counter after INCR; None if it is now."""
    waits = [(int(now // period) + 1) * period - now
             for (_, _, limit, period), count in zip(counters, counts, strict=True) if count > limit]
    return max(waits) if waits else None


async def async_throttle_wait(counters: list[Counter]) -> float | None:
    """The throttles' check for the ASGI fast path: the same counters and windows, counted with redis.asyncio."""
    if not counters:
        return None
    now = time.time()
    try:
        replies = await _counting(redis_conn.get_async().pipeline(transaction=False), counters, now).execute()
    except Exception:
        _letting_through()
        return None
    return throttle_wait(counters, replies[::2], now)


def _counting(pipe: Any, counters: list[Counter], now: float) -> Any:
    """``pipe`` (sync or asyncio) with INCR and EXPIRE of each counter's current window queued."""
    for key, expiry in counter_keys(counters, now):
        pipe.incr(key)
        pipe.expire(key, expiry)
    return pipe


def _letting_through() -> None:
    log.warning("throttle counter unavailable; letting the request through", exc_info=True)


class ApiThrottle(BaseThrottle):
    """Both limits, per user (authenticated requests) and per client IP, in one Redis round trip."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def counters(self, request: Any) -> list[Counter]:
        """(scope, ident, limit, period) of every limit that applies to this request."""
        return user_counters(getattr(request, "user", None)) + ip_counters(client_ip(request))

    def allow_request(self, request: Any, view: Any) -> bool:
        counters = self.counters(request)
        if not counters:
            return True
        now = time.time()
        try:
            replies = _counting(redis_conn.get().pipeline(transaction=False), counters, now).execute()
        except Exception:
            _letting_through()
            return True
        self._wait = throttle_wait(counters, replies[::2], now)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class IPThrottle(ApiThrottle):
    """Only the per-IP limit (unauthenticated endpoints)."""

    def counters(self, request: Any) -> list[Counter]:
        return ip_counters(client_ip(request))


class LoginThrottle(ApiThrottle):
    """Password and token endpoints: a tight per-IP limit against guessing (``API_THROTTLE_LOGIN_RATE``)."""

    def counters(self, request: Any) -> list[Counter]:
        rate = parse_rate(settings.API_THROTTLE_LOGIN_RATE)
        ip = client_ip(request)
        out = ip_counters(ip)
        if rate is not None and ip:
            out.append(("login", ip, *rate))
        return out
