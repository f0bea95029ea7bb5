"""Market-data arithmetic: klines, the rolling 24h ticker, depth views with merge intervals.

Pure functions over ``decimal.Decimal`` (no Django, no Redis), so the same code
serves the Kafka consumer, ``run_marketdata --rebuild`` and the tests'
independent checks can be written against it without sharing its shortcuts.
Every sum runs in ``EXACT``, a decimal context that traps ``Inexact``: a
volume that would need rounding raises instead of drifting. Values keep the
exponent of the engine's strings (``"1.5000"`` + ``"2.2500"`` = ``"3.7500"``),
and are printed with ``fmt`` (never exponent notation).

Time is in milliseconds since the epoch (the engine's unit). Kline buckets are
aligned to the epoch, except ``1w``, which starts on Monday 00:00 UTC.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation

from sortedcontainers import SortedDict

#: Sums and products of market data never round: a rounding would raise ``Inexact``.
EXACT = Context(prec=120, rounding=ROUND_HALF_EVEN, traps=[Inexact, InvalidOperation])
#: Only the change percent is rounded (to ``PERCENT_PLACES`` decimals, half-even): it is a ratio, not money.
PERCENT_PLACES = 2
_PERCENT_CONTEXT = Context(prec=120, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])

MINUTE_MS = 60_000
INTERVALS: dict[str, int] = {
    "1m": MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "1d": 1440 * MINUTE_MS,
    "1w": 7 * 1440 * MINUTE_MS,
}
#: 1970-01-01 was a Thursday; weeks start on Monday 1970-01-05 like most exchanges' weekly candles.
WEEK_ORIGIN_MS = 4 * 1440 * MINUTE_MS
TICKER_WINDOW_MS = 24 * 60 * MINUTE_MS

#: Depth views are kept (and pushed) for the top ``DEPTH_MAX_LIMIT`` levels at most.
DEPTH_MAX_LIMIT = 100
#: Limits a client may ask for, as ViaBTC's accessws offers.
DEPTH_LIMITS = (1, 5, 10, 20, 30, 50, 100)
#: Merge intervals per market: the price tick times 10**k for k in range(DEPTH_MERGE_STEPS).
DEPTH_MERGE_STEPS = 4


def fmt(value: Decimal) -> str:
    """Plain decimal notation (``str(Decimal("0E-8"))`` would print an exponent)."""
    return format(value, "f")


def dec(text: object) -> Decimal:
    """Parse an engine amount; refuses NaN, infinities and floats (money is never a float)."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ValueError(f"expected a decimal string, got {type(text).__name__}")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    return value


def bucket_start(time_ms: int, interval: str) -> int:
    """Start (ms) of the ``interval`` bucket holding ``time_ms``."""
    size = INTERVALS[interval]
    origin = WEEK_ORIGIN_MS if interval == "1w" else 0
    return (time_ms - origin) // size * size + origin


@dataclass(frozen=True)
class Trade:
    """What market data needs from a deal (public fields only: no users, no fees)."""

    id: int
    time: int
    price: Decimal
    amount: Decimal
    quote_amount: Decimal
    side: str  # the taker's side: "buy" means the price was lifted

    @classmethod
    def from_event(cls, data: dict[str, object]) -> Trade:
        """From a contract-(C) deal event's ``data`` (the engine's ``DealEvent.to_dict()``)."""
        side = _str(data, "taker_side")
        if side not in ("buy", "sell"):
            raise ValueError(f"bad taker_side {side!r}")
        return cls(id=_int(data["id"]), time=_int(data["time"]), price=dec(_str(data, "price")),
                   amount=dec(_str(data, "amount")), quote_amount=dec(_str(data, "quote_amount")), side=side)

    def to_public(self) -> dict[str, object]:
        return {"id": self.id, "time": self.time, "price": fmt(self.price), "amount": fmt(self.amount),
                "quote_amount": fmt(self.quote_amount), "side": self.side}

    @classmethod
    def from_public(cls, d: dict[str, object]) -> Trade:
        return cls(id=_int(d["id"]), time=_int(d["time"]), price=dec(_str(d, "price")),
                   amount=dec(_str(d, "amount")), quote_amount=dec(_str(d, "quote_amount")), side=_str(d, "side"))


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _str(d: dict[str, object], key: str) -> str:
    value = d[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string, got {value!r}")
    return value


# --------------------------------------------------------------------------- klines


@dataclass
class Kline:
    """One candle. ``time`` is the bucket start in ms; ``count`` the number of deals."""

    time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    count: int

    @classmethod
    def first(cls, start: int, t: Trade) -> Kline:
        return cls(start, t.price, t.price, t.price, t.price, t.amount, t.quote_amount, 1)

    def add(self, t: Trade) -> None:
        """Fold a later deal in (callers feed deals in id order, so the last one closes)."""
        self.high = max(self.high, t.price)
        self.low = min(self.low, t.price)
        self.close = t.price
        self.volume = EXACT.add(self.volume, t.amount)
        self.quote_volume = EXACT.add(self.quote_volume, t.quote_amount)
        self.count += 1

    def to_dict(self) -> dict[str, object]:
        return {"time": self.time, "open": fmt(self.open), "high": fmt(self.high), "low": fmt(self.low),
                "close": fmt(self.close), "volume": fmt(self.volume), "quote_volume": fmt(self.quote_volume),
                "count": self.count}

    def dumps(self) -> str:
        """The Redis member: compact and unambiguous; the score next to it is ``time``."""
        return json.dumps([self.time, fmt(self.open), fmt(self.high), fmt(self.low), fmt(self.close),
                           fmt(self.volume), fmt(self.quote_volume), self.count], separators=(",", ":"))

    @classmethod
    def loads(cls, raw: str | bytes) -> Kline:
        t, o, h, lo, c, v, q, n = json.loads(raw)
        return cls(int(t), dec(o), dec(h), dec(lo), dec(c), dec(v), dec(q), int(n))


def fold_klines(existing: dict[int, Kline], trades: Iterable[Trade], interval: str) -> dict[int, Kline]:
    """Fold ``trades`` into the ``existing`` candles of one interval; return the candles that changed.

    ``existing`` must hold every bucket the trades fall into that already has
    deals (the caller reads them from Redis); it is updated in place.
    """
    changed: dict[int, Kline] = {}
    for t in trades:
        start = bucket_start(t.time, interval)
        k = existing.get(start)
        if k is None:
            k = existing[start] = Kline.first(start, t)
        else:
            k.add(t)
        changed[start] = k
    return changed


# --------------------------------------------------------------------------- ticker


def ticker(market: str, minute_klines: Iterable[Kline], last: Trade | None, now_ms: int) -> dict[str, object]:
    """The rolling 24h ticker at ``now_ms``, from one-minute candles (as ViaBTC's marketprice does).

    The window is every 1m bucket starting after ``now_ms - 24h``: the current
    minute and the 1439 before it. ``last`` is the market's latest deal, however
    old: with no deal in the window, open/high/low/last are its price and the
    volumes are zero. With no deal ever, prices are ``None``.
    """
    window = sorted((k for k in minute_klines if k.time > now_ms - TICKER_WINDOW_MS), key=lambda k: k.time)
    last_price = last.price if last is not None else None
    volume = quote_volume = Decimal(0)
    count = 0
    for k in window:
        volume = EXACT.add(volume, k.volume)
        quote_volume = EXACT.add(quote_volume, k.quote_volume)
        count += k.count
    if window:
        open_, high, low = window[0].open, max(k.high for k in window), min(k.low for k in window)
    elif last_price is not None:
        open_ = high = low = last_price
    if last_price is None:
        return {"market": market, "time": now_ms, "last": None, "open": None, "high": None, "low": None,
                "volume": "0", "quote_volume": "0", "change": None, "change_percent": None, "count": 0}
    change = EXACT.subtract(last_price, open_)
    percent = _PERCENT_CONTEXT.multiply(_PERCENT_CONTEXT.divide(change, open_), Decimal(100))
    percent = percent.quantize(Decimal(1).scaleb(-PERCENT_PLACES), context=_PERCENT_CONTEXT)
    return {"market": market, "time": now_ms, "last": fmt(last_price), "open": fmt(open_), "high": fmt(high),
            "low": fmt(low), "volume": fmt(volume), "quote_volume": fmt(quote_volume), "change": fmt(change),
            "change_percent": fmt(percent), "count": count}


# --------------------------------------------------------------------------- depth


def merge_intervals(price_prec: int) -> list[str]:
    """The merge intervals offered for a market whose price tick is ``10**-price_prec``."""
    return [fmt(Decimal(1).scaleb(k - price_prec)) for k in range(DEPTH_MERGE_STEPS)]


def normalize_interval(interval: object, price_prec: int) -> str:
    """The canonical string of an allowed merge interval; ``None``/"0" mean the tick (no merging).

    Raises ``ValueError`` for anything else, so a request names only a view we keep.
    """
    allowed = merge_intervals(price_prec)
    if interval is None or interval == "" or interval == "0" or interval == 0:
        return allowed[0]
    if not isinstance(interval, str):
        raise ValueError("interval must be a decimal string")
    try:
        value = Decimal(interval)
    except InvalidOperation:
        raise ValueError(f"interval is not a decimal number: {interval!r}") from None
    if value.is_finite():
        for text in allowed:
            if Decimal(text) == value:
                return text
    raise ValueError(f"interval must be one of {', '.join(['0', *allowed])}")


Level = tuple[Decimal, Decimal]


@dataclass
class Book:
    """A market's whole aggregated book: price -> total amount per side, best first on iteration."""

    price_prec: int
    seq: int = 0
    asks: SortedDict = field(default_factory=SortedDict)
    bids: SortedDict = field(default_factory=lambda: SortedDict(lambda p: -p))

    def apply(self, asks: Sequence[Sequence[str]], bids: Sequence[Sequence[str]]) -> None:
        """Apply one contract-(C) depth diff: set each listed level's total, "0" removes it.

        All levels are parsed before any is applied: a malformed diff raises
        ``ValueError`` and leaves the book as it was.
        """
        parsed = [(side, parse_level(level)) for side, changes in ((self.asks, asks), (self.bids, bids))
                  for level in changes]
        for side, (price, amount) in parsed:
            if amount == 0:
                side.pop(price, None)
            else:
                side[price] = amount

    def view(self, interval: str, limit: int = DEPTH_MAX_LIMIT) -> dict[str, list[Level]]:
        return {"asks": merged(self.asks.items(), Decimal(interval), True, limit, self.price_prec),
                "bids": merged(self.bids.items(), Decimal(interval), False, limit, self.price_prec)}


def parse_level(level: object) -> Level:
    """A ``[price, amount]`` pair of decimal strings: price positive, amount not negative."""
    if not isinstance(level, list | tuple) or len(level) != 2:
        raise ValueError(f"a depth level is [price, amount], got {level!r}")
    price, amount = dec(level[0]), dec(level[1])
    if price <= 0 or amount < 0:
        raise ValueError(f"bad depth level {level!r}")
    return price, amount


def merged(levels: Iterable[tuple[Decimal, Decimal]], interval: Decimal, up: bool, limit: int,
           price_prec: int) -> list[Level]:
    """Group best-first ``levels`` into buckets of ``interval``: asks round up, bids down (as the engine does).

    Rounding outward means a merged ask never shows a price below a real ask,
    nor a merged bid above a real bid. Stops after ``limit`` buckets.
    """
    tick = Decimal(1).scaleb(-price_prec)
    rounding = ROUND_CEILING if up else ROUND_FLOOR
    out: list[list[Decimal]] = []
    for price, amount in levels:
        units = EXACT.divide(price, interval).to_integral_value(rounding=rounding)
        bucket = EXACT.multiply(units, interval).quantize(tick, context=EXACT)
        if out and out[-1][0] == bucket:
            out[-1][1] = EXACT.add(out[-1][1], amount)
        else:
            if len(out) == limit:
                break
            out.append([bucket, amount])
    return [(p, a) for p, a in out]


def view_diff(old: Sequence[Level], new: Sequence[Level]) -> list[list[str]]:
    """The levels a client must set to turn ``old`` into ``new`` ("0": remove), best-first order of ``new``."""
    before = dict(old)
    after = dict(new)
    diff = [[fmt(p), fmt(a)] for p, a in new if before.get(p) != a]
    diff += [[fmt(p), "0"] for p, _ in old if p not in after]
    return diff


def levels_out(levels: Sequence[Level]) -> list[list[str]]:
    return [[fmt(p), fmt(a)] for p, a in levels]


def levels_in(levels: Iterable[Sequence[str]]) -> list[Level]:
    return [parse_level(level) for level in levels]


def apply_view_diff(view: dict[Decimal, Decimal], diff: Iterable[Sequence[str]]) -> None:
    """The client's side of a depth update (used by the docs' example and the tests' client)."""
    for price_text, amount_text in diff:
        price, amount = dec(price_text), dec(amount_text)
        if amount == 0:
            view.pop(price, None)
        else:
            view[price] = amount
