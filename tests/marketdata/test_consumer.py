"""run_marketdata against the real broker and Redis: contract-(C) messages in, exact market data out."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from decimal import Decimal

import pytest
from channels.layers import get_channel_layer

from markets import marketdata
from markets.aggregation import DEPTH_LIMITS, INTERVALS, apply_view_diff
from markets.marketdata import key
from streaming import groups
from tests.marketdata import expected
from tests.marketdata.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
M = "ETH_USDT"


def random_deals(events, rng: random.Random, n: int, start_ms: int, span_ms: int) -> list[dict]:
    times = sorted(start_ms + rng.randrange(span_ms) for _ in range(n))
    out = []
    for t in times:
        price = Decimal(rng.randrange(150000, 160000)).scaleb(-2)
        amount = Decimal(rng.randrange(1, 50000)).scaleb(-4)
        quote = (price * amount).quantize(Decimal("0.000001"))
        out.append(events.deal(M, f"{price:f}", f"{amount:f}", f"{quote:f}", rng.choice(["buy", "sell"]), t))
    return out


def assert_market_data_equals(deals: list[dict]) -> None:
    for iv in INTERVALS:
        got = [expected.as_decimals(k) for k in marketdata.klines(M, iv, limit=1000)]
        assert got == expected.klines(deals, iv), iv
    tick = marketdata.ticker(M)
    want = expected.ticker(deals, tick["time"])
    assert {k: v for k, v in expected.as_decimals(tick).items() if k not in {"market", "time"}} == want
    newest = sorted(deals, key=lambda d: -d["id"])[:100]
    assert marketdata.recent_deals(M, 100) == [
        {"id": d["id"], "time": d["time"], "price": d["price"], "amount": d["amount"],
         "quote_amount": d["quote_amount"], "side": d["taker_side"]} for d in newest]


def test_deals_become_klines_ticker_and_recent_deals_once(eth_usdt, events, run_marketdata, md_redis):
    rng = random.Random(6)
    now = int(time.time() * 1000)
    deals = random_deals(events, rng, 150, now - 3 * 86_400_000, 3 * 86_400_000 - 60_000)
    events.flush()
    run_marketdata()
    wait_for(lambda: md_redis.get(key(M, "deal_id")) == str(deals[-1]["id"]), what="deals folded")
    assert_market_data_equals(deals)

    # At-least-once delivery: replays of old deals change nothing; new ones still count.
    for d in deals[-20:]:
        events.resend("deals", M, "deal", d)
    more = random_deals(events, rng, 5, now, 30_000)
    for d in deals[:3]:
        events.resend("deals", M, "deal", d)
    events.flush()
    wait_for(lambda: md_redis.get(key(M, "deal_id")) == str(more[-1]["id"]), what="new deals folded")
    assert_market_data_equals(deals + more)
    assert marketdata.recent_deals(M, 5, last_id=more[1]["id"]) == [
        {"id": d["id"], "time": d["time"], "price": d["price"], "amount": d["amount"],
         "quote_amount": d["quote_amount"], "side": d["taker_side"]} for d in reversed(more[2:])]


def test_readers_refuse_bad_arguments_with_codes(eth_usdt, md_redis):
    cases = [
        (lambda: marketdata.ticker("NOPE_USDT"), "unknown_market"),
        (lambda: marketdata.klines(M, "2m"), "invalid_interval"),
        (lambda: marketdata.klines(M, "1m", limit=0), "invalid_limit"),
        (lambda: marketdata.klines(M, "1m", start=-5), "invalid_argument"),
        (lambda: marketdata.recent_deals(M, 101), "invalid_limit"),
        (lambda: marketdata.depth(M, 20, "0.05"), "invalid_interval"),
        (lambda: marketdata.depth(M, 101), "invalid_limit"),
    ]
    for call, code in cases:
        with pytest.raises(marketdata.MarketDataError) as info:
            call()
        assert info.value.code == code
    assert marketdata.depth(M, 5) == {"asks": [], "bids": [], "seq": 0, "interval": "0.01"}
    assert marketdata.ticker(M)["last"] is None
    assert marketdata.tickers()[M]["volume"] == "0"


class DepthWatcher:
    """A channel-layer member of the market's depth group: what a websocket consumer would receive.

    It lives on one event loop of its own, as a consumer in the web process
    does: the pub/sub layer's subscriptions belong to the loop that made them.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.layer = get_channel_layer()
        self.got: list[dict] = []
        self.channel = self._run(self._join())
        self.reader = asyncio.run_coroutine_threadsafe(self._read(), self.loop)

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def _join(self) -> str:
        channel = await self.layer.new_channel()
        await self.layer.group_add(groups.depth(M), channel)
        return channel

    async def _read(self) -> None:
        while True:
            self.got.append(await self.layer.receive(self.channel))

    def receive_all(self, until_seq: int) -> list[dict]:
        wait_for(lambda: self.got and self.got[-1]["seq"] >= until_seq, what=f"depth pushes up to {until_seq}")
        return list(self.got)

    def close(self) -> None:
        self.reader.cancel()
        self._run(groups.close_layer(self.layer))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def test_depth_diffs_give_the_book_and_pushes_keep_every_view_in_sync(eth_usdt, events, run_marketdata, md_redis):
    rng = random.Random(66)
    run_marketdata()
    watcher = DepthWatcher()
    asks: dict[Decimal, Decimal] = {}
    bids: dict[Decimal, Decimal] = {}
    sent = []
    for i in range(120):
        if i % 8 == 7:  # several batches, so views change over several pushes
            events.flush()
            wait_for(lambda: md_redis.get(key(M, "depth_seq")) == str(sent[-1]["depth_seq"]), what="batch folded")
        change_asks, change_bids = [], []
        for _ in range(rng.randrange(1, 4)):
            is_ask = rng.random() < 0.5
            price = Decimal(rng.randrange(15000, 15300) if is_ask else rng.randrange(14700, 15000)).scaleb(-2)
            book = asks if is_ask else bids
            amount = Decimal(0) if (price in book and rng.random() < 0.4) else Decimal(rng.randrange(1, 900)).scaleb(-4)
            if amount:
                book[price] = amount
            else:
                book.pop(price, None)
            (change_asks if is_ask else change_bids).append([f"{price:f}", f"{amount:f}" if amount else "0"])
        sent.append(events.depth(M, change_asks, change_bids))
    for d in sent[50:60]:  # duplicates from an at-least-once relay
        events.resend("depth", M, "depth", d)
    events.flush()
    last = sent[-1]["depth_seq"]
    wait_for(lambda: md_redis.get(key(M, "depth_seq")) == str(last), what="depth folded")

    for iv in ["0", *marketdata.merge_intervals(M)]:
        step = None if iv == "0" else Decimal(iv)
        snap = marketdata.depth(M, 100, iv)
        assert snap["seq"] == last
        assert [[Decimal(p), Decimal(a)] for p, a in snap["asks"]] == [
            list(x) for x in expected.book_top(asks, True, 100, step)]
        assert [[Decimal(p), Decimal(a)] for p, a in snap["bids"]] == [
            list(x) for x in expected.book_top(bids, False, 100, step)]

    # Every pushed view, replayed from the empty book (seq 0) with the prev_seq rule, ends equal to the snapshot.
    try:
        pushes = watcher.receive_all(last)
    finally:
        watcher.close()
    assert len(pushes) >= 10
    assert [p["seq"] for p in pushes] == sorted({p["seq"] for p in pushes})
    for iv in marketdata.merge_intervals(M):
        for limit in DEPTH_LIMITS:
            client: dict[str, dict[Decimal, Decimal]] = {"asks": {}, "bids": {}}
            seq = 0
            for p in pushes:
                update = p["views"].get(iv, {}).get(str(limit))
                if update is None:
                    continue
                # The chain is exact: each update names the seq of the previous one, so a lost one shows.
                assert update["prev_seq"] == seq < p["seq"], (iv, limit, update["prev_seq"], seq, p["seq"])
                apply_view_diff(client["asks"], update["asks"])
                apply_view_diff(client["bids"], update["bids"])
                seq = p["seq"]
            snap = marketdata.depth(M, limit, iv)
            assert sorted(client["asks"].items()) == [(Decimal(p), Decimal(a)) for p, a in snap["asks"]]
            assert sorted(client["bids"].items(), reverse=True) == [(Decimal(p), Decimal(a)) for p, a in snap["bids"]]


def test_a_gap_with_the_matcher_unreachable_keeps_the_last_good_book(eth_usdt, events, run_marketdata, md_redis,
                                                                    settings, caplog):
    from cryptgo.devservices import free_port
    from matcher.client import reset_client

    settings.MATCHER_GRPC_ADDR = f"127.0.0.1:{free_port()}"
    reset_client()
    run_marketdata()
    events.depth(M, [["1500.00", "1.0000"]], [["1400.00", "2.0000"]], depth_seq=1)
    events.depth(M, [["1501.00", "1.0000"]], [], depth_seq=3)  # depth_seq 2 never arrives
    events.depth(M, [["1502.00", "1.0000"]], [], depth_seq=4)
    events.flush()
    wait_for(lambda: md_redis.get(key(M, "depth_seq")) == "1", what="first diff")
    wait_for(lambda: "cannot fetch the book from the matcher" in caplog.text, what="refetch attempt")
    assert marketdata.depth(M, 10) == {"asks": [["1500.00", "1.0000"]], "bids": [["1400.00", "2.0000"]], "seq": 1,
                                       "interval": "0.01"}
    reset_client()


def _create_deals(market, deals: list[dict]) -> None:
    """Rows as the matcher's persister writes them (tests may create matcher-owned rows directly)."""
    from datetime import UTC, datetime

    from tests.factories import UserFactory
    from trading.models import Deal, Order

    maker, taker = UserFactory(), UserFactory()
    now = datetime.now(UTC)
    sell = Order.objects.create(id=1, user=maker, market=market, side="sell", type="limit", price=Decimal("1"),
                                amount=Decimal("1"), status="open", created_at=now, updated_at=now)
    buy = Order.objects.create(id=2, user=taker, market=market, side="buy", type="limit", price=Decimal("1"),
                               amount=Decimal("1"), status="open", created_at=now, updated_at=now)
    Deal.objects.bulk_create([
        Deal(id=d["id"], market=market, price=Decimal(d["price"]), amount=Decimal(d["amount"]),
             quote_amount=Decimal(d["quote_amount"]), maker_order=sell, taker_order=buy, maker_user=maker,
             taker_user=taker, maker_fee=Decimal(0), taker_fee=Decimal(0), taker_side=d["taker_side"],
             time=datetime.fromtimestamp(d["time"] / 1000, UTC)) for d in deals])


def _stored(md_redis) -> dict:
    """Everything run_marketdata keeps for the market, except the ticker's computation time."""
    out = {iv: md_redis.zrange(key(M, f"kline:{iv}"), 0, -1, withscores=True) for iv in INTERVALS}
    out["deals"] = md_redis.lrange(key(M, "deals"), 0, -1)
    out["deal_id"] = md_redis.get(key(M, "deal_id"))
    out["ticker"] = {k: v for k, v in marketdata.ticker(M).items() if k != "time"}
    return out


def test_rebuild_from_the_deals_table_gives_what_the_stream_gave(eth_usdt, events, run_marketdata, md_redis,
                                                                 settings, capsys):
    from django.core.management import CommandError, call_command

    from cryptgo.devservices import free_port
    from matcher.client import reset_client

    rng = random.Random(606)
    now = int(time.time() * 1000)
    # No deal near the 24h boundary: the two tickers are computed a few seconds apart.
    deals = random_deals(events, rng, 90, now - 2 * 86_400_000, 20 * 3_600_000)
    deals += random_deals(events, rng, 90, now - 20 * 3_600_000, 20 * 3_600_000 - 60_000)
    events.flush()
    _create_deals(eth_usdt, deals)
    running = run_marketdata()
    wait_for(lambda: md_redis.get(key(M, "deal_id")) == str(deals[-1]["id"]), what="deals folded")
    from_stream = _stored(md_redis)
    assert_market_data_equals(deals)

    with pytest.raises(CommandError, match="consumer is running"):
        call_command("run_marketdata", rebuild=True)
    running.stop.set()
    running.thread.join(30)

    for k in list(md_redis.scan_iter("md:*")):
        md_redis.delete(k)
    settings.MATCHER_GRPC_ADDR = f"127.0.0.1:{free_port()}"
    reset_client()
    capsys.readouterr()
    call_command("run_marketdata", rebuild=True)
    out = capsys.readouterr()
    assert "180/180" in out.err  # the progress bar
    assert "rebuilt 1 market(s) from 180 deal(s)" in out.out
    assert "depth not refreshed (matcher unreachable) for: ETH_USDT" in out.err
    assert _stored(md_redis) == from_stream
    assert_market_data_equals(deals)
    reset_client()

    with pytest.raises(CommandError, match="unknown market"):
        call_command("run_marketdata", rebuild=True, market=["DOGE_USDT"])
