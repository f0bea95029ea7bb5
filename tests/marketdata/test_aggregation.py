"""Kline, ticker and depth arithmetic against values computed another way (by hand, datetime, integers)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markets.aggregation import (
    INTERVALS,
    Book,
    Kline,
    Trade,
    apply_view_diff,
    bucket_start,
    fold_klines,
    merge_intervals,
    normalize_interval,
    ticker,
    view_diff,
)

T0 = int(datetime(2024, 5, 15, 10, 0, tzinfo=UTC).timestamp() * 1000)  # a Wednesday


def trade(i: int, t: int, price: str, amount: str, side: str = "buy") -> Trade:
    quote = Decimal(price) * Decimal(amount)
    return Trade(i, t, Decimal(price), Decimal(amount), quote, side)


def test_kline_of_three_deals_by_hand():
    deals = [trade(1, T0 + 1_000, "100.00", "1.0000"), trade(2, T0 + 20_000, "105.50", "0.5000"),
             trade(3, T0 + 59_999, "99.25", "2.0000"), trade(4, T0 + 60_000, "101.00", "1.0000")]
    candles = fold_klines({}, deals, "1m")
    assert [k.to_dict() for k in candles.values()] == [
        {"time": T0, "open": "100.00", "high": "105.50", "low": "99.25", "close": "99.25",
         "volume": "3.5000", "quote_volume": "351.250000", "count": 3},
        {"time": T0 + 60_000, "open": "101.00", "high": "101.00", "low": "101.00", "close": "101.00",
         "volume": "1.0000", "quote_volume": "101.000000", "count": 1},
    ]


def test_folding_into_an_existing_candle_continues_it():
    first = fold_klines({}, [trade(1, T0, "10.00", "1.0000")], "1h")
    existing = {t: Kline.loads(k.dumps()) for t, k in first.items()}  # as read back from Redis
    changed = fold_klines(existing, [trade(2, T0 + 3_599_999, "12.00", "2.0000")], "1h")
    assert changed[T0].to_dict() == {"time": T0, "open": "10.00", "high": "12.00", "low": "10.00", "close": "12.00",
                                     "volume": "3.0000", "quote_volume": "34.000000", "count": 2}


def test_week_buckets_start_on_monday_utc():
    monday = int(datetime(2024, 5, 13, tzinfo=UTC).timestamp() * 1000)
    assert bucket_start(T0, "1w") == monday
    assert bucket_start(monday, "1w") == monday
    assert bucket_start(monday - 1, "1w") == monday - INTERVALS["1w"]
    assert bucket_start(T0 + 123_456, "1d") == int(datetime(2024, 5, 15, tzinfo=UTC).timestamp() * 1000)
    assert bucket_start(T0 + 17 * 60_000 + 5, "15m") == T0 + 15 * 60_000


def _naive_start(t_ms: int, interval: str) -> int:
    """Bucket start from calendar arithmetic, not from the modulo the code uses."""
    dt = datetime.fromtimestamp(t_ms / 1000, UTC).replace(microsecond=0)
    if interval == "1w":
        day = dt.replace(hour=0, minute=0, second=0) - timedelta(days=dt.weekday())
        return int(day.timestamp() * 1000)
    if interval == "1d":
        return int(dt.replace(hour=0, minute=0, second=0).timestamp() * 1000)
    minutes = INTERVALS[interval] // 60_000
    since_midnight = dt.hour * 60 + dt.minute
    floor_min = since_midnight // minutes * minutes
    return int(dt.replace(hour=floor_min // 60, minute=floor_min % 60, second=0).timestamp() * 1000)


deal_lists = st.lists(
    st.tuples(st.integers(0, 9 * 86_400_000), st.integers(1, 99_999), st.integers(1, 50_000)),
    min_size=1, max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(deal_lists, st.sampled_from(list(INTERVALS)))
def test_klines_equal_naive_grouping(raw, interval):
    deals = [trade(i + 1, T0 + t, f"{p // 100}.{p % 100:02d}", f"{a // 10_000}.{a % 10_000:04d}")
             for i, (t, p, a) in enumerate(sorted(raw))]
    got = {t: k.to_dict() for t, k in fold_klines({}, deals, interval).items()}
    groups: dict[int, list[Trade]] = defaultdict(list)
    for d in deals:
        groups[_naive_start(d.time, interval)].append(d)
    expected = {}
    for start, ds in groups.items():
        expected[start] = {"time": start, "open": str(ds[0].price), "high": str(max(d.price for d in ds)),
                           "low": str(min(d.price for d in ds)), "close": str(ds[-1].price),
                           "volume": str(sum(d.amount for d in ds)),
                           "quote_volume": str(sum(d.quote_amount for d in ds)), "count": len(ds)}
    assert got == expected


def test_ticker_rolls_over_24_hours_of_minute_candles():
    old = trade(1, T0 - 86_400_000 - 60_000, "90.00", "5.0000")  # outside the window
    inside = [trade(2, T0 - 86_400_000 + 60_000, "100.00", "1.0000", "sell"),
              trade(3, T0 - 3_600_000, "120.00", "0.5000"), trade(4, T0 + 5_000, "110.00", "2.0000")]
    minutes = list(fold_klines({}, [old, *inside], "1m").values())
    got = ticker("ETH_USDT", minutes, inside[-1], T0 + 10_000)
    assert got == {"market": "ETH_USDT", "time": T0 + 10_000, "last": "110.00", "open": "100.00",
                   "high": "120.00", "low": "100.00", "volume": "3.5000", "quote_volume": "380.000000",
                   "change": "10.00", "change_percent": "10.00", "count": 3}


def test_ticker_of_a_quiet_market_keeps_the_last_price():
    last = trade(7, T0 - 3 * 86_400_000, "2000.00", "1.0000")
    minutes = list(fold_klines({}, [last], "1m").values())
    got = ticker("ETH_USDT", minutes, last, T0)
    assert (got["last"], got["open"], got["high"], got["low"]) == ("2000.00",) * 4
    assert (got["volume"], got["change"], got["change_percent"], got["count"]) == ("0", "0.00", "0.00", 0)
    never = ticker("ETH_USDT", [], None, T0)
    assert never["last"] is None and never["change_percent"] is None and never["volume"] == "0"


def test_change_percent_rounds_half_even_to_two_places():
    a, b = trade(1, T0, "3.00", "1.0000"), trade(2, T0 + 1, "3.01", "1.0000")
    got = ticker("X_Y", fold_klines({}, [a, b], "1m").values(), b, T0 + 2)
    assert got["change"] == "0.01"
    assert got["change_percent"] == "0.33"  # 0.3333...


def test_trade_from_event_refuses_floats_and_keeps_public_fields():
    data = {"kind": "deal", "seq": 9, "id": 5, "market": "ETH_USDT", "price": "1500.50", "amount": "0.1000",
            "quote_amount": "150.050000", "maker_user": 1, "taker_user": 2, "taker_side": "sell", "time": T0}
    t = Trade.from_event(data)
    assert t.to_public() == {"id": 5, "time": T0, "price": "1500.50", "amount": "0.1000",
                             "quote_amount": "150.050000", "side": "sell"}
    with pytest.raises(ValueError):
        Trade.from_event({**data, "price": 1500.5})
    with pytest.raises(ValueError):
        Trade.from_event({**data, "amount": "NaN"})


def test_merge_intervals_and_their_names():
    assert merge_intervals(2) == ["0.01", "0.1", "1", "10"]
    assert normalize_interval(None, 2) == normalize_interval("0", 2) == "0.01"
    assert normalize_interval("1.00", 2) == "1"
    for bad in ("0.05", "-1", "abc", "NaN", 1):
        with pytest.raises(ValueError):
            normalize_interval(bad, 2)


def test_book_view_merges_asks_up_and_bids_down():
    book = Book(price_prec=2)
    book.apply(asks=[["100.01", "1.0"], ["100.10", "2.0"], ["101.00", "3.0"], ["109.99", "4.0"]],
               bids=[["99.99", "1.0"], ["99.90", "2.0"], ["99.00", "3.0"], ["90.01", "4.0"]])
    assert book.view("1") == {
        "asks": [(Decimal("101.00"), Decimal("6.0")), (Decimal("110.00"), Decimal("4.0"))],
        "bids": [(Decimal("99.00"), Decimal("6.0")), (Decimal("90.00"), Decimal("4.0"))],
    }
    assert book.view("10", limit=1)["asks"] == [(Decimal("110.00"), Decimal("10.0"))]
    book.apply(asks=[["100.01", "0"]], bids=[])
    assert book.view("0.01", limit=1)["asks"] == [(Decimal("100.10"), Decimal("2.0"))]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 3000), st.integers(0, 5)), min_size=1, max_size=80),
       st.sampled_from([1, 10, 100, 1000]), st.sampled_from([1, 5, 20, 100]))
def test_view_diffs_replayed_by_a_client_give_the_view(changes, step, limit):
    """A client holding view(t) and applying view_diff(t, t+1) holds view(t+1); checked with integer ticks."""
    book = Book(price_prec=2)
    interval = str(Decimal(step).scaleb(-2))
    ticks: dict[bool, dict[int, int]] = {True: {}, False: {}}
    client: dict[bool, dict[Decimal, Decimal]] = {True: {}, False: {}}
    previous = book.view(interval, limit)
    for is_ask, price, amount in changes:
        side_changes = [[str(Decimal(price).scaleb(-2)), str(amount)]]
        book.apply(asks=side_changes if is_ask else [], bids=[] if is_ask else side_changes)
        if amount:
            ticks[is_ask][price] = amount
        else:
            ticks[is_ask].pop(price, None)
        current = book.view(interval, limit)
        for is_ask_side, name in ((True, "asks"), (False, "bids")):
            apply_view_diff(client[is_ask_side], view_diff(previous[name], current[name]))
        previous = current
        for is_ask_side, name in ((True, "asks"), (False, "bids")):
            buckets: dict[int, int] = defaultdict(int)
            for p, a in ticks[is_ask_side].items():
                buckets[-(-p // step) * step if is_ask_side else p // step * step] += a
            best = sorted(buckets.items(), reverse=not is_ask_side)[:limit]
            expected = {Decimal(p).scaleb(-2): Decimal(a) for p, a in best}
            assert client[is_ask_side] == expected
            assert dict(current[name]) == expected
