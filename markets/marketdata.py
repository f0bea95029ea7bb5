"""Market data in Redis: the key layout and the readers the API and the websocket feed use.

``run_marketdata`` (``markets/consumer.py``) is the only writer; everything
here reads. Values are what ``markets/aggregation.py`` computes: decimal
strings, times in milliseconds since the epoch. Every key of a market carries
the market in a hash tag (``md:{ETH_USDT}:...``) so one market's keys live in
one Redis Cluster slot and the writer updates them in one MULTI.

Layout, per market ``M``:

=============================  ======  =====================================================
key                            type    content
=============================  ======  =====================================================
``md:{M}:deal_id``             string  id of the last deal folded in (idempotency key)
``md:{M}:deals``               list    last 100 public deals, newest first (JSON)
``md:{M}:kline:<interval>``    zset    one member per bucket, score = bucket start (ms)
``md:{M}:ticker``              string  rolling 24h ticker (JSON), refreshed as time passes
``md:{M}:book:asks`` / ``bids``  hash    the whole book: price -> total amount
``md:{M}:depth_seq``           string  last applied ``depth_seq``
``md:{M}:depth:<interval>``    string  top 100 levels merged by interval, with ``seq`` (JSON)
``md:heartbeat``               string  set (with a TTL) while a consumer runs
=============================  ======  =====================================================

Readers raise ``MarketDataError`` (a ``ValueError`` with a machine-readable
``code``) for an unknown market or a bad argument; callers map it to an HTTP
400 or a websocket error reply.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings

from markets import aggregation
from markets.aggregation import DEPTH_LIMITS, DEPTH_MAX_LIMIT, INTERVALS

RECENT_DEALS = 100
KLINE_MAX_LIMIT = 1000
SPEC_TTL_SECONDS = 30.0


class MarketDataError(ValueError):
    """A refused market-data request; ``code`` is one of unknown_market, invalid_interval,
    invalid_limit, invalid_argument."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class MarketSpec:
    name: str
    price_prec: int
    amount_prec: int
    quote_prec: int

    @property
    def merge_intervals(self) -> list[str]:
        return aggregation.merge_intervals(self.price_prec)


# --------------------------------------------------------------------------- keys


def key(market: str, name: str) -> str:
    return f"md:{{{market}}}:{name}"


def kline_key(market: str, interval: str) -> str:
    return key(market, f"kline:{interval}")


def depth_key(market: str, interval: str) -> str:
    return key(market, f"depth:{interval}")


HEARTBEAT_KEY = "md:heartbeat"


# --------------------------------------------------------------------------- connections and specs

_local = threading.local()
_specs: dict[str, tuple[float, MarketSpec]] = {}
_specs_lock = threading.Lock()


def redis_client() -> redis.Redis:
    """One client per process and thread (redis-py clients are pooled; forked children get their own)."""
    pid = os.getpid()
    client = getattr(_local, "client", None)
    if client is None or getattr(_local, "pid", None) != pid or getattr(_local, "url", None) != settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True, socket_timeout=5,
                                      health_check_interval=30)
        _local.client, _local.pid, _local.url = client, pid, settings.REDIS_URL
    return client


def market_spec(market: object) -> MarketSpec:
    """The market's precisions from the listing (cached briefly: precisions of a listed market never change)."""
    if not isinstance(market, str) or not market or len(market) > 33:
        raise MarketDataError("unknown_market", f"unknown market {market!r}")
    now = time.monotonic()
    cached = _specs.get(market)
    if cached is not None and cached[0] > now:
        return cached[1]
    from markets.models import Market

    row = (Market.objects.filter(name=market)
           .values_list("price_precision", "amount_precision", "quote__decimals").first())
    if row is None:
        raise MarketDataError("unknown_market", f"unknown market {market!r}")
    spec = MarketSpec(market, *row)
    with _specs_lock:
        _specs[market] = (now + SPEC_TTL_SECONDS, spec)
    return spec


def market_specs() -> dict[str, MarketSpec]:
    """Every listed market (not cached: callers are the consumer's periodic refresh and ``tickers()``)."""
    from markets.models import Market

    rows = Market.objects.values_list("name", "price_precision", "amount_precision", "quote__decimals")
    return {row[0]: MarketSpec(*row) for row in rows}


def forget_specs() -> None:
    """Drop the cache (tests that list markets on the fly)."""
    with _specs_lock:
        _specs.clear()


# --------------------------------------------------------------------------- readers


def ticker(market: str) -> dict[str, Any]:
    """The rolling 24h ticker: last, open, high, low, volume, quote_volume, change, change_percent, count, time.

    Prices are ``None`` while the market has never traded; ``time`` is when
    the window was computed (the consumer refreshes it as time passes).
    """
    market_spec(market)
    raw = redis_client().get(key(market, "ticker"))
    if raw is None:
        return aggregation.ticker(market, [], None, int(time.time() * 1000))
    result: dict[str, Any] = json.loads(raw)
    return result


def tickers() -> dict[str, dict[str, Any]]:
    """Every listed market's ticker, by market name."""
    names = sorted(market_specs())
    if not names:
        return {}
    raws = redis_client().mget([key(m, "ticker") for m in names])
    now = int(time.time() * 1000)
    return {m: json.loads(raw) if raw is not None else aggregation.ticker(m, [], None, now)
            for m, raw in zip(names, raws, strict=True)}


def klines(market: str, interval: str, start: int | None = None, end: int | None = None,
           limit: int = 500) -> list[dict[str, Any]]:
    """Candles of ``interval`` whose bucket starts in [start, end] (ms), oldest first, at most the newest ``limit``.

    Only buckets with deals exist (no filler candles for quiet minutes).
    """
    market_spec(market)
    if interval not in INTERVALS:
        raise MarketDataError("invalid_interval", f"interval must be one of {', '.join(INTERVALS)}")
    limit = _limit(limit, KLINE_MAX_LIMIT)
    lo = "-inf" if start is None else _time(start, "start")
    hi = "+inf" if end is None else _time(end, "end")
    members = redis_client().zrevrangebyscore(kline_key(market, interval), hi, lo, start=0, num=limit)
    return [aggregation.Kline.loads(m).to_dict() for m in reversed(members)]


def recent_deals(market: str, limit: int = RECENT_DEALS, last_id: int | None = None) -> list[dict[str, Any]]:
    """The market's latest public deals, newest first: id, time, price, amount, quote_amount, side (taker's).

    With ``last_id``, only deals newer than it (what a client polling for news wants).
    """
    market_spec(market)
    limit = _limit(limit, RECENT_DEALS)
    if last_id is not None and (isinstance(last_id, bool) or not isinstance(last_id, int) or last_id < 0):
        raise MarketDataError("invalid_argument", "last_id must be a non-negative integer")
    deals = [json.loads(raw) for raw in redis_client().lrange(key(market, "deals"), 0, limit - 1)]
    if last_id is not None:
        deals = [d for d in deals if d["id"] > last_id]
    return deals


def depth(market: str, limit: int = 20, interval: str | None = None) -> dict[str, Any]:
    """Top ``limit`` levels per side, merged by ``interval``, with the ``seq`` (depth_seq) they reflect.

    ``{"asks": [[price, amount], ...], "bids": [...], "seq": n, "interval": "0.01"}``.
    ``interval`` ``None`` or "0" means the price tick (no merging); the others
    are ``merge_intervals(market)``. A client applying ``depth.update`` pushes
    with a later seq to this snapshot reproduces the matcher's book.
    """
    spec = market_spec(market)
    try:
        iv = aggregation.normalize_interval(interval, spec.price_prec)
    except ValueError as exc:
        raise MarketDataError("invalid_interval", str(exc)) from None
    limit = _limit(limit, DEPTH_MAX_LIMIT)
    raw = redis_client().get(depth_key(market, iv))
    if raw is None:
        return {"asks": [], "bids": [], "seq": 0, "interval": iv}
    view = json.loads(raw)
    return {"asks": view["asks"][:limit], "bids": view["bids"][:limit], "seq": view["seq"], "interval": iv}


def merge_intervals(market: str) -> list[str]:
    """The merge intervals ``depth()`` accepts for this market (besides "0")."""
    return market_spec(market).merge_intervals


def depth_limit_allowed(limit: object) -> int:
    """A websocket depth subscription's limit must be one of ``DEPTH_LIMITS`` (each is a pushed view)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit not in DEPTH_LIMITS:
        raise MarketDataError("invalid_limit", f"limit must be one of {', '.join(map(str, DEPTH_LIMITS))}")
    return limit


def _limit(limit: object, maximum: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise MarketDataError("invalid_limit", f"limit must be an integer from 1 to {maximum}")
    return limit


def _time(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MarketDataError("invalid_argument", f"{name} must be a non-negative integer (ms since the epoch)")
    return value
