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


class _WindowThrottle(BaseThrottle):
    scope = ""
    setting = ""

    def __init__(self) -> None:
        self._wait: float | None = None

    def ident(self, request: Any) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Any, view: Any) -> bool:
        parsed = parse_rate(getattr(settings, self.setting))
        ident = self.ident(request)
        if parsed is None or ident is None:
            return True
        limit, period = parsed
        now = time.time()
        window = int(now // period)
        key = f"throttle:{self.scope}:{ident}:{window}"
        try:
            pipe = redis_conn.get().pipeline(transaction=False)
            pipe.incr(key)
            pipe.expire(key, period + 1)
            count = pipe.execute()[0]
        except Exception:
            log.warning("throttle counter unavailable; letting the request through", exc_info=True)
            return True
        if count > limit:
            self._wait = (window + 1) * period - now
            return False
        return True

    def wait(self) -> float | None:
        return self._wait


class UserThrottle(_WindowThrottle):
    scope = "user"
    setting = "API_THROTTLE_USER_RATE"

    def ident(self, request: Any) -> str | None:
        user = getattr(request, "user", None)
        return str(user.pk) if user is not None and user.is_authenticated else None


class IPThrottle(_WindowThrottle):
    scope = "ip"
    setting = "API_THROTTLE_IP_RATE"

    def ident(self, request: Any) -> str | None:
        return client_ip(request) or None
