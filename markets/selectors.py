"""Market-data reads: listing, depth, recent deals, 24h tickers, klines.

This module is the boundary the API reads through. Depth comes from the
matcher (``client.depth``, always exact); deals, tickers and klines are
computed here from PostgreSQL deals until the market-data service keeps them
in Redis: if ``markets.marketdata`` exists, these functions are the place to
switch to it, and the API does not change. Every function returns plain
dicts with decimal strings and times in milliseconds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

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
_MARKET_CACHE_SECONDS = 2.0
_market_cache: dict[str, tuple[float, Market | None]] = {}


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
    hit = _market_cache.get(name)
    now = time.monotonic()
    if hit is not None and now - hit[0] < _MARKET_CACHE_SECONDS:
        return hit[1]
    market = markets().filter(name=name).first() if len(name) <= 33 else None
    _market_cache[name] = (now, market)
    return market


def market_by_symbol(symbol: str) -> Market | None:
    """A market by its Binance symbol (ETHUSDT), through the same short cache."""
    hit = _market_cache.get("symbol:" + symbol)
    now = time.monotonic()
    if hit is not None and now - hit[0] < _MARKET_CACHE_SECONDS:
        return hit[1]
    found = None
    for m in markets():
        if m.base.symbol + m.quote.symbol == symbol:
            found = m
    _market_cache["symbol:" + symbol[:40]] = (now, found)
    return found


def forget_cache() -> None:
    """Drop cached markets (tests that list markets on the fly)."""
    _market_cache.clear()


# ------------------------------------------------------------------ depth (matcher)


def depth(market: str, limit: int = 20, interval: str | None = None) -> dict[str, Any]:
    """{"asks", "bids", "seq"} straight from the matcher's book (merged by ``interval`` if given)."""
    from matcher.client import get_client

    return get_client().depth(market, limit=limit, interval=interval)


# ------------------------------------------------------------------ deals, tickers, klines (PostgreSQL)


def _deal_dict(d: Deal) -> dict[str, Any]:
    return {"id": d.id, "price": plain(d.price), "amount": plain(d.amount), "quote_amount": plain(d.quote_amount),
            "taker_side": d.taker_side, "time": to_ms(d.time)}


def recent_deals(market: Market, limit: int = 50) -> list[dict[str, Any]]:
    """The latest deals of a market, newest first."""
    rows = Deal.objects.filter(market=market).order_by("-id")[:limit]
    return [_deal_dict(d) for d in rows]


def ticker(market: Market) -> dict[str, Any]:
    """The rolling 24-hour ticker of one market."""
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
    return [ticker(m) for m in markets()]


def klines(market: Market, interval: str, start: int | None = None, end: int | None = None,
           limit: int = 500) -> list[dict[str, Any]]:
    """Candles of ``interval`` (a key of KLINE_INTERVALS), oldest first, only periods with deals.

    ``start``/``end`` are ms; with ``start`` the first ``limit`` candles from it,
    otherwise the latest ``limit`` candles up to ``end``.
    """
    seconds = KLINE_INTERVALS[interval]
    origin = _WEEK_ORIGIN if interval == "1w" else _EPOCH
    where = ["market_id = %s"]
    params: list[Any] = [f"{seconds} seconds", origin, market.id]
    if start is not None:
        where.append("time >= %s")
        params.append(datetime.fromtimestamp(start / 1000, UTC))
    if end is not None:
        where.append("time <= %s")
        params.append(datetime.fromtimestamp(end / 1000, UTC))
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
