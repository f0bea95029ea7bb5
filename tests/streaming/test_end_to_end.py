"""End to end over the websocket: orders through the real matcher, events through Kafka, run_marketdata
and run_stream_relay, uvicorn, and a real websocket client."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from markets import marketdata
from markets.aggregation import apply_view_diff
from markets.marketdata import key
from streaming.protocol import ErrorCode
from tests.factories import AssetFactory, MarketFactory
from tests.marketdata.activity import fund, trade_randomly
from tests.marketdata.conftest import wait_for
from tests.matcher.conftest import make_users
from trading.models import Deal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
M, OTHER = "ETH_USDT", "BTC_USDT"


@pytest.fixture
def exchange(matcher_factory, eth_usdt, usdt, settings, run_marketdata, run_relay, ws_server_factory):
    """Two markets, a matcher, run_marketdata, run_stream_relay and a websocket server, all on this test's topics."""
    from matcher.client import reset_client

    btc = AssetFactory(symbol="BTC", name="Bitcoin", decimals=8)
    MarketFactory(base=btc, quote=usdt, price_precision=2, amount_precision=4)
    mp = matcher_factory()
    settings.MATCHER_GRPC_ADDR = mp.addr
    settings.KAFKA_TOPIC_PREFIX = mp.topic_prefix
    reset_client()
    run_marketdata()
    run_relay()
    server = ws_server_factory(MATCHER_GRPC_ADDR=mp.addr)
    yield mp, server
    reset_client()


def settled(client, md_redis, market: str = M) -> bool:
    last = Deal.objects.filter(market__name=market).order_by("-id").values_list("id", flat=True).first()
    return (md_redis.get(key(market, "deal_id")) == (str(last) if last else None)
            and (md_redis.get(key(market, "depth_seq")) or "0") == str(client.depth(market, 1)["seq"]))


def test_public_pushes_reach_subscribers_of_their_market_only(exchange, ws_client, md_redis):
    mp, server = exchange
    client = mp.client
    users = make_users(3)
    fund(client, users, "pub")
    subscribers = {}
    for market in (M, OTHER):
        c = ws_client(server)
        assert c.result("depth.subscribe", market, 20, "0") == {"status": "success"}
        assert c.result("deals.subscribe", market) == {"status": "success"}
        assert c.result("kline.subscribe", market, "1m") == {"status": "success"}
        assert c.result("ticker.subscribe", market) == {"status": "success"}
        subscribers[market] = c
    for c in subscribers.values():  # the snapshots each subscription starts with
        assert c.push("depth.update")["params"][0] is True
        assert c.push("deals.update")["params"][1] == []
        assert c.push("ticker.update")["params"][1]["last"] is None

    trade_randomly(client, users, random.Random(7), 40)
    wait_for(lambda: settled(client, md_redis), timeout=60, what="market data caught up")
    deal_ids = list(Deal.objects.filter(market__name=M).order_by("id").values_list("id", flat=True))
    assert deal_ids

    eth = subscribers[M]
    got = eth.drain(quiet=1.0)
    methods = {m["method"] for m in got}
    assert {"depth.update", "deals.update", "kline.update", "ticker.update"} <= methods
    for m in got:
        market = m["params"][2] if m["method"] == "depth.update" else m["params"][0]
        assert market == M, m
    pushed_deals = [d["id"] for m in got if m["method"] == "deals.update" for d in m["params"][1]]
    assert sorted(pushed_deals) == deal_ids  # each deal exactly once
    last_ticker = [m for m in got if m["method"] == "ticker.update"][-1]["params"][1]
    assert {k: v for k, v in last_ticker.items() if k != "time"} == \
        {k: v for k, v in marketdata.ticker(M).items() if k != "time"}
    last_kline = [m for m in got if m["method"] == "kline.update"][-1]["params"]
    assert last_kline[:2] == [M, "1m"] and last_kline[2] == marketdata.klines(M, "1m", limit=1)[0]
    assert subscribers[OTHER].drain(quiet=0.5) == []


def test_private_pushes_go_to_their_user_only(exchange, ws_client, md_redis, alice, bob, mallory):
    mp, server = exchange
    client = mp.client
    fund(client, [alice.id, bob.id], "priv")
    conns = {}
    for user in (alice, bob):
        c = ws_client(server)
        assert c.result("server.auth", str(AccessToken.for_user(user)))["user_id"] == user.id
        assert c.result("order.subscribe") == {"status": "success"}
        assert c.result("asset.subscribe") == {"status": "success"}
        conns[user.id] = c
    anonymous = ws_client(server)
    assert anonymous.call("order.subscribe")["error"]["code"] == ErrorCode.REQUIRE_AUTH
    snooper = ws_client(server)
    snooper.result("server.auth", str(AccessToken.for_user(mallory)))
    snooper.result("order.subscribe", M)
    snooper.result("asset.subscribe", "USDT", "ETH")

    a_order = client.place_limit(alice.id, M, "buy", "2000.00", "1.5")
    b_order = client.place_limit(bob.id, M, "sell", "2000.00", "1.0")
    client.cancel(alice.id, M, order_id=a_order["id"])

    def updates_of(user_id: int, until_order_done: int) -> list[dict]:
        c = conns[user_id]
        done = c.push("order.update", where=lambda m: m["params"][1]["id"] == until_order_done
                      and m["params"][0] == "done", timeout=30)
        before, c.pushes = c.pushes, []
        return [*before, done, *c.drain(quiet=1.0)]

    alice_got = updates_of(alice.id, a_order["id"])
    bob_got = updates_of(bob.id, b_order["id"])
    for user_id, got in ((alice.id, alice_got), (bob.id, bob_got)):
        for m in got:
            if m["method"] == "order.update":
                assert m["params"][1]["user"] == user_id, m
        final = {}
        for m in got:
            if m["method"] == "asset.update":
                final.update(m["params"][0])
        assert final, got
        balances = client.balances(user_id)
        for asset, value in final.items():
            assert value == balances[asset], (user_id, asset)
    assert [m["params"][0] for m in alice_got if m["method"] == "order.update"] == ["new", "update", "done"]
    assert [m["params"][0] for m in bob_got if m["method"] == "order.update"] == ["new", "done"]
    assert snooper.drain(quiet=0.5) == [] and anonymous.drain(quiet=0.2) == []
    assert conns[alice.id].result("order.query", M) == []
    assert conns[bob.id].result("asset.query", "ETH") == {"ETH": client.balances(bob.id)["ETH"]}


def test_depth_sync_snapshot_plus_updates_equals_the_matchers_book(exchange, ws_client, md_redis):
    mp, server = exchange
    client = mp.client
    users = make_users(4, "depth")
    fund(client, users, "depth")
    trade_randomly(client, users, random.Random(1), 30)  # a book exists before the client subscribes
    views = [(100, "0"), (20, "1"), (5, "10")]
    c = ws_client(server)
    books = {}
    for limit, interval in views:
        assert c.result("depth.subscribe", M, limit, interval) == {"status": "success"}
    trade_randomly(client, users, random.Random(2), 200)
    wait_for(lambda: settled(client, md_redis), timeout=60, what="market data caught up")
    last_seq = client.depth(M, 1)["seq"]

    seqs = {}
    for msg in c.drain(quiet=1.0):
        assert msg["method"] == "depth.update", msg
        clean, depth, market, limit, interval = msg["params"]
        assert market == M
        view = (limit, interval)
        if clean:
            books[view] = {"asks": {}, "bids": {}}
        else:
            # the client's own gap check: this update continues exactly what it holds
            assert depth["prev_seq"] <= seqs[view] < depth["seq"]
        apply_view_diff(books[view]["asks"], depth["asks"])
        apply_view_diff(books[view]["bids"], depth["bids"])
        seqs[view] = depth["seq"]
    for limit, interval in views:
        canonical = "0.01" if interval == "0" else interval
        truth = client.depth(M, limit, None if interval == "0" else interval)
        book = books[(limit, canonical)]
        assert seqs[(limit, canonical)] <= last_seq
        assert sorted(book["asks"].items()) == [(Decimal(p), Decimal(a)) for p, a in truth["asks"]]
        assert sorted(book["bids"].items(), reverse=True) == [(Decimal(p), Decimal(a)) for p, a in truth["bids"]]
