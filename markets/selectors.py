"""Market-data reads: listing, depth, recent deals, 24h tickers, klines.

This module is the one boundary the API reads market data through. While the
market-data consumer (``run_marketdata``) runs, its Redis keys are the source
(``markets.marketdata``: cheap reads that scale with web processes); when it
does not (its heartbeat key is absent, e.g. a fresh deployment or a test
without Kafka), the same answers are computed from PostgreSQL deals and depth
comes from the matcher, which is exact but costs a gRPC call. Either way the
functions return plain dicts with plain decimal strings (no exponent, no
trailing zeros) and times in milliseconds.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Max, Min, QuerySet, Sum

from markets.models import Asset, Market
from trading.models import Deal

KLINE_INTERVALS: dict[str, int] = {
    "1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "4h": 14400, "1d": 86400, "1w": 604800,
}
# Weeks start on Monday (as Binance's do); 1970-01-05 was a Monday.
_WEEK_ORIGIN = datetime(1970, 1, 5, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999Z, the largest time the API accepts
_MARKET_CACHE_SECONDS = 2.0
_market_cache: dict[str, tuple[float, Market | None]] = {}
_REDIS_CHECK_SECONDS = 1.0
_redis_state: list[float | bool] = [0.0, False]


def now_ms() -> int:
    return int(time.time() * 1000)


def to_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def plain(value: Decimal | None) -> str:
    """A decimal as a plain string without exponent or trailing zeros."""
    if value is None:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


# ------------------------------------------------------------------ listing


def assets() -> QuerySet[Asset]:
    return Asset.objects.order_by("symbol")


def markets() -> QuerySet[Market]:
    return Market.objects.select_related("base", "quote").order_by("name")


def market_get(name: str) -> Market | None:
    """A market by name, cached for a moment per process: every order and depth read needs it."""
    hit = market_cached(name)
    if hit is not None:
        return hit[0]
    market = markets().filter(name=name).first() if len(name) <= 33 else None
    _market_cache[name] = (time.monotonic(), market)
    return market


def market_cached(key: str) -> tuple[Market | None] | None:
    """``(market or None,)`` if ``market_get(key)`` (or ``market_by_symbol``, key ``"symbol:ETHUSDT"``) would
    answer from the cache now, else None: the ASGI fast path serves a market only when no query is needed."""
    hit = _market_cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < _MARKET_CACHE_SECONDS:
        return (hit[1],)
    return None


def market_by_symbol(symbol: str) -> Market | None:
    """A market by its Binance symbol (ETHUSDT), through the same short cache."""
    hit = market_cached("symbol:" + symbol)
    if hit is not None:
        return hit[0]
    now = time.monotonic()
    found = None
    for m in markets():
        if m.base.symbol + m.quote.symbol == symbol:
            found = m
    _market_cache["symbol:" + symbol[:40]] = (now, found)
    return found


def forget_cache() -> None:
    """Drop cached markets (tests that list markets on the fly)."""
    _market_cache.clear()


# ------------------------------------------------------------------ which source


def _redis() -> Any:
    """One pooled client per process for the market-data keys.

    Not ``marketdata.redis_client()``: that one is per thread, and under ASGI every request runs in a
    new thread, so it would open a Redis connection per request.
    """
    import redis

    url = settings.REDIS_URL
    client = _redis_clients.get(url)
    if client is None:
        client = _redis_clients[url] = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
    return client


_redis_clients: dict[str, Any] = {}


def redis_live() -> bool:
    """Whether to read Redis: ``MARKET_DATA_SOURCE`` "redis" or "database" decide; "auto" (the default)
    reads Redis while the consumer's heartbeat is set, checked once a second."""
    live = redis_live_known()
    if live is not None:
        return live
    from markets import marketdata

    try:
        live = bool(_redis().exists(marketdata.HEARTBEAT_KEY))
    except Exception:  # Redis down: serve from PostgreSQL and the matcher
        live = False
    return redis_live_record(live)


def redis_live_known() -> bool | None:
    """``redis_live()`` if it needs no Redis round trip now (setting, or a fresh heartbeat check), else None."""
    source = settings.MARKET_DATA_SOURCE
    if source != "auto":
        return source == "redis"
    if time.monotonic() - float(_redis_state[0]) < _REDIS_CHECK_SECONDS:
        return bool(_redis_state[1])
    return None


def redis_live_record(live: bool) -> bool:
    """Remember a heartbeat check (``redis_live`` and the ASGI fast path's async check share it)."""
    _redis_state[:] = [time.monotonic(), live]
    return live


def _plain_levels(levels: list[Any]) -> list[list[str]]:
    return [[plain(Decimal(p)), plain(Decimal(a))] for p, a in levels]


# ------------------------------------------------------------------ depth


def depth(market: str, limit: int = 20, interval: str | None = None) -> dict[str, Any]:
    """{"asks", "bids", "seq"}: the consumer's view in Redis when it holds this one, else the matcher's book."""
    if redis_live():
        key = depth_redis_key(market, limit, interval)
        book = depth_from_view(_redis().get(key), limit) if key is not None else None
        if book is not None:
            return book
    return depth_from_matcher(market, limit, interval)


def depth_redis_key(market: str, limit: int, interval: str | None, price_prec: int | None = None) -> str | None:
    """The Redis key holding ``market``'s depth view for this ``interval``, or None when Redis cannot answer
    (more levels than the consumer keeps, an interval it does not keep). ``price_prec`` spares the lookup."""
    from markets import aggregation, marketdata

    if limit > aggregation.DEPTH_MAX_LIMIT:
        return None
    if price_prec is None:
        price_prec = marketdata.market_spec(market).price_prec
    try:
        iv = aggregation.normalize_interval(interval, price_prec)
    except ValueError:
        return None
    return marketdata.depth_key(market, iv)


def depth_from_view(raw: str | None, limit: int) -> dict[str, Any] | None:
    """The first ``limit`` levels of a depth view read from Redis; None if absent or never filled (seq 0)."""
    if raw is None:
        return None
    view = json.loads(raw)
    if not view["seq"]:
        return None
    return {"asks": _plain_levels(view["asks"][:limit]), "bids": _plain_levels(view["bids"][:limit]),
            "seq": view["seq"]}


def depth_from_matcher(market: str, limit: int, interval: str | None) -> dict[str, Any]:
    """The matcher's book over gRPC (exact, but a round trip to the single writer)."""
    from matcher.client import get_client

    book = get_client().depth(market, limit=limit, interval=interval)
    return {"asks": _plain_levels(book["asks"]), "bids": _plain_levels(book["bids"]), "seq": book["seq"]}


# ------------------------------------------------------------------ deals, tickers, klines


def _deal_dict(d: Deal) -> dict[str, Any]:
    return {"id": d.id, "price": plain(d.price), "amount": plain(d.amount), "quote_amount": plain(d.quote_amount),
            "taker_side": d.taker_side, "time": to_ms(d.time)}


def recent_deals(market: Market, limit: int = 50) -> list[dict[str, Any]]:
    """The latest deals of a market, newest first."""
    if redis_live():
        from markets import marketdata

        if limit <= marketdata.RECENT_DEALS:
            rows = [json.loads(raw) for raw in _redis().lrange(marketdata.key(market.name, "deals"), 0, limit - 1)]
            return [{"id": d["id"], "price": plain(Decimal(d["price"])), "amount": plain(Decimal(d["amount"])),
                     "quote_amount": plain(Decimal(d["quote_amount"])), "taker_side": d["side"], "time": d["time"]}
                    for d in rows]
    rows = Deal.objects.filter(market=market).order_by("-id")[:limit]
    return [_deal_dict(d) for d in rows]


def _ticker_from_redis(t: dict[str, Any]) -> dict[str, Any]:
    def p(v: Any) -> str:
        return plain(Decimal(v)) if v is not None else "0"

    return {"market": t["market"], "open": p(t["open"]), "high": p(t["high"]), "low": p(t["low"]),
            "last": p(t["last"]), "volume": p(t["volume"]), "quote_volume": p(t["quote_volume"]),
            "change": p(t["change"]), "change_percent": p(t["change_percent"]), "count": t["count"],
            "first_id": None, "last_id": None, "open_time": t["time"] - 86_400_000, "close_time": t["time"]}


def ticker(market: Market) -> dict[str, Any]:
    """The rolling 24-hour ticker of one market."""
    if redis_live():
        from markets import aggregation, marketdata

        raw = _redis().get(marketdata.key(market.name, "ticker"))
        t = json.loads(raw) if raw is not None else aggregation.ticker(market.name, [], None, now_ms())
        return _ticker_from_redis(t)
    now = datetime.now(UTC)
    since = now - timedelta(hours=24)
    window = Deal.objects.filter(market=market, time__gte=since)
    agg = window.aggregate(high=Max("price"), low=Min("price"), volume=Sum("amount"),
                           quote_volume=Sum("quote_amount"), count=Count("id"), first=Min("id"), last=Max("id"))
    last_deal = Deal.objects.filter(market=market).order_by("-id").only("price", "id").first()
    last_price = last_deal.price if last_deal else None
    open_price = Deal.objects.only("price").get(pk=agg["first"]).price if agg["first"] else last_price
    change = Decimal(0)
    change_percent = Decimal(0)
    with localcontext() as ctx:
        ctx.prec = 100
        if open_price is not None and last_price is not None:
            change = last_price - open_price
            if open_price:
                change_percent = (change * 100 / open_price).quantize(Decimal("0.01"))
    return {
        "market": market.name,
        "open": plain(open_price),
        "high": plain(agg["high"] if agg["count"] else last_price),
        "low": plain(agg["low"] if agg["count"] else last_price),
        "last": plain(last_price),
        "volume": plain(agg["volume"]),
        "quote_volume": plain(agg["quote_volume"]),
        "change": plain(change),
        "change_percent": plain(change_percent),
        "count": agg["count"],
        "first_id": agg["first"],
        "last_id": agg["last"],
        "open_time": to_ms(since),
        "close_time": to_ms(now),
    }


def tickers() -> list[dict[str, Any]]:
    if redis_live():
        from markets import aggregation, marketdata

        names = [m.name for m in markets()]
        raws = _redis().mget([marketdata.key(n, "ticker") for n in names]) if names else []
        return [_ticker_from_redis(json.loads(raw) if raw is not None else aggregation.ticker(n, [], None, now_ms()))
                for n, raw in zip(names, raws, strict=True)]
    return [ticker(m) for m in markets()]


def klines(market: Market, interval: str, start: int | None = None, end: int | None = None,
           limit: int = 500) -> list[dict[str, Any]]:
    """Candles of ``interval`` (a key of KLINE_INTERVALS), oldest first, only periods with deals.

    ``start``/``end`` are ms; with ``start`` the first ``limit`` candles from it,
    otherwise the latest ``limit`` candles up to ``end``.
    """
    seconds = KLINE_INTERVALS[interval]
    if redis_live():
        return _klines_from_redis(market, interval, seconds, start, end, limit)
    origin = _WEEK_ORIGIN if interval == "1w" else _EPOCH
    where = ["market_id = %s"]
    params: list[Any] = [f"{seconds} seconds", origin, market.id]
    # Whole candles whose period overlaps [start, end], as the Redis path returns them.
    origin_ms, period_ms = to_ms(origin), seconds * 1000
    if start is not None:
        where.append("time >= %s")
        floor = start - (start - origin_ms) % period_ms
        params.append(datetime.fromtimestamp(floor / 1000, UTC))
    if end is not None and end < _MAX_MS - period_ms:  # beyond that: no upper bound (and no datetime overflow)
        where.append("time < %s")
        ceiling = end - (end - origin_ms) % period_ms + period_ms
        params.append(datetime.fromtimestamp(ceiling / 1000, UTC))
    order = "ASC" if start is not None else "DESC"
    params.append(limit)
    sql = f"""
        SELECT date_bin(%s::interval, time, %s::timestamptz) AS bucket,
               (array_agg(price ORDER BY id))[1], max(price), min(price),
               (array_agg(price ORDER BY id DESC))[1], sum(amount), sum(quote_amount), count(*)
        FROM {Deal._meta.db_table} WHERE {" AND ".join(where)}
        GROUP BY bucket ORDER BY bucket {order} LIMIT %s"""
    with connection.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    if order == "DESC":
        rows.reverse()
    out = []
    for bucket, o, h, lo, c, vol, qvol, count in rows:
        open_ms = to_ms(bucket)
        out.append({"open_time": open_ms, "close_time": open_ms + seconds * 1000 - 1, "open": plain(o),
                    "high": plain(h), "low": plain(lo), "close": plain(c), "volume": plain(vol),
                    "quote_volume": plain(qvol), "trades": count})
    return out


def _klines_from_redis(market: Market, interval: str, seconds: int, start: int | None, end: int | None,
                       limit: int) -> list[dict[str, Any]]:
    from markets import aggregation, marketdata

    r = _redis()
    k = marketdata.kline_key(market.name, interval)
    # A candle belongs to [start, end] when any of its period does, as in the PostgreSQL query.
    lo = "-inf" if start is None else start - seconds * 1000 + 1
    hi = "+inf" if end is None else end
    if start is not None:
        members = r.zrangebyscore(k, lo, hi, start=0, num=limit)
    else:
        members = list(reversed(r.zrevrangebyscore(k, hi, lo, start=0, num=limit)))
    out = []
    for raw in members:
        c = aggregation.Kline.loads(raw)
        out.append({"open_time": c.time, "close_time": c.time + seconds * 1000 - 1, "open": plain(c.open),
                    "high": plain(c.high), "low": plain(c.low), "close": plain(c.close), "volume": plain(c.volume),
                    "quote_volume": plain(c.quote_volume), "trades": c.count})
    return out


def forget_source() -> None:
    """Re-check the Redis heartbeat on the next read (tests that start or stop the consumer)."""
    _redis_state[:] = [0.0, False]
