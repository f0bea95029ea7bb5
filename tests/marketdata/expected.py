"""Market data computed the slow, obvious way, to check what run_marketdata keeps in Redis.

Nothing here imports markets.aggregation: buckets come from calendar
arithmetic, sums from plain Decimal addition over the raw deal dicts.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

INTERVAL_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440, "1w": 10080}


def naive_start(t_ms: int, interval: str) -> int:
    dt = datetime.fromtimestamp(t_ms // 1000, UTC)
    if interval == "1w":
        day = dt.replace(hour=0, minute=0, second=0) - timedelta(days=dt.weekday())
        return int(day.timestamp()) * 1000
    if interval == "1d":
        return int(dt.replace(hour=0, minute=0, second=0).timestamp()) * 1000
    minutes = INTERVAL_MINUTES[interval]
    since_midnight = dt.hour * 60 + dt.minute
    floor_min = since_midnight // minutes * minutes
    return int(dt.replace(hour=floor_min // 60, minute=floor_min % 60, second=0).timestamp()) * 1000


def klines(deals: list[dict[str, Any]], interval: str) -> list[dict[str, Any]]:
    """Candles from deal dicts (``id, time, price, amount, quote_amount``), oldest first, as Decimals."""
    groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for d in sorted(deals, key=lambda d: d["id"]):
        groups[naive_start(d["time"], interval)].append(d)
    out = []
    with localcontext() as ctx:
        ctx.prec = 100
        for start in sorted(groups):
            ds = groups[start]
            prices = [Decimal(d["price"]) for d in ds]
            out.append({"time": start, "open": prices[0], "high": max(prices), "low": min(prices), "close": prices[-1],
                        "volume": sum(Decimal(d["amount"]) for d in ds),
                        "quote_volume": sum(Decimal(d["quote_amount"]) for d in ds), "count": len(ds)})
    return out


def ticker(deals: list[dict[str, Any]], now_ms: int) -> dict[str, Any]:
    """24h ticker: deals whose minute started after now - 24h; last = the newest deal ever."""
    ordered = sorted(deals, key=lambda d: d["id"])
    window = [d for d in ordered if naive_start(d["time"], "1m") > now_ms - 86_400_000]
    last = Decimal(ordered[-1]["price"]) if ordered else None
    with localcontext() as ctx:
        ctx.prec = 100
        if window:
            prices = [Decimal(d["price"]) for d in window]
            open_, high, low = prices[0], max(prices), min(prices)
        else:
            open_ = high = low = last
        change = None if last is None else last - open_
        return {"last": last, "open": open_, "high": high, "low": low,
                "volume": sum((Decimal(d["amount"]) for d in window), Decimal(0)),
                "quote_volume": sum((Decimal(d["quote_amount"]) for d in window), Decimal(0)),
                "change": change, "count": len(window),
                "change_percent": None if change is None else (change * 100 / open_).quantize(Decimal("0.01"))}


def as_decimals(d: dict[str, Any]) -> dict[str, Any]:
    """A reader's dict with decimal strings turned into Decimals (so "3.50" == Decimal("3.5"))."""
    out = {}
    for k, v in d.items():
        out[k] = Decimal(v) if isinstance(v, str) and k not in {"market", "side", "interval"} else v
    return out


def book_top(levels: dict[Decimal, Decimal], asks: bool, limit: int, interval: Decimal | None = None) -> list:
    """Top ``limit`` merged levels of a side given as price -> amount (asks round up, bids down)."""
    buckets: dict[Decimal, Decimal] = defaultdict(Decimal)
    for p, a in levels.items():
        if interval is None:
            b = p
        else:
            n = p / interval
            whole = int(n) if n == int(n) else (int(n) + 1 if asks else int(n))
            b = whole * interval
        buckets[b] += a
    return sorted(buckets.items(), reverse=not asks)[:limit]
