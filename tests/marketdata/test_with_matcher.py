"""End to end: orders through the real matcher, events through Kafka, market data in Redis equal to
values computed independently (from the deals table, and the matcher's own depth)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from markets import marketdata
from markets.marketdata import key
from tests.marketdata import expected
from tests.marketdata.activity import fund, trade_randomly
from tests.marketdata.conftest import wait_for
from tests.matcher.conftest import make_users
from trading.models import Deal

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
M = "ETH_USDT"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def deals_from_table() -> list[dict]:
    return [{"id": d.id, "time": (d.time - EPOCH) // timedelta(milliseconds=1), "price": str(d.price),
             "amount": str(d.amount), "quote_amount": str(d.quote_amount), "taker_side": d.taker_side}
            for d in Deal.objects.filter(market__name=M).order_by("id")]


def settled(client, md_redis) -> bool:
    last = Deal.objects.order_by("-id").values_list("id", flat=True).first()
    return (md_redis.get(key(M, "deal_id")) == str(last)
            and md_redis.get(key(M, "depth_seq")) == str(client.depth(M, 1)["seq"]))


def assert_equal_to_truth(client) -> None:
    deals = deals_from_table()
    assert deals, "the script made no deals"
    for iv in expected.INTERVAL_MINUTES:
        got = [expected.as_decimals(k) for k in marketdata.klines(M, iv, limit=1000)]
        assert got == expected.klines(deals, iv), iv
    tick = marketdata.ticker(M)
    assert {k: v for k, v in expected.as_decimals(tick).items() if k not in {"market", "time"}} == \
        expected.ticker(deals, tick["time"])
    recent = marketdata.recent_deals(M, 100)
    assert [d["id"] for d in recent] == [d["id"] for d in reversed(deals)][:100]
    for iv in [None, *marketdata.merge_intervals(M)]:
        mine = marketdata.depth(M, 100, iv)
        truth = client.depth(M, 100, iv)
        assert (mine["asks"], mine["bids"], mine["seq"]) == (truth["asks"], truth["bids"], truth["seq"]), iv


def test_market_data_from_the_matcher_equals_independent_values_and_rebuild(matcher, run_marketdata, md_redis,
                                                                            settings, capsys):
    from django.core.management import call_command

    settings.KAFKA_TOPIC_PREFIX = matcher.topic_prefix
    client = matcher.client
    users = make_users(4)
    fund(client, users, "md")
    running = run_marketdata()
    counts = trade_randomly(client, users, random.Random(61), 250)
    assert counts["placed"] > 100
    wait_for(lambda: settled(client, md_redis), timeout=60, what="market data caught up with the matcher")
    assert_equal_to_truth(client)

    # --rebuild from PostgreSQL (and the matcher's book) gives the same market data.
    running.stop.set()
    running.thread.join(30)
    for k in list(md_redis.scan_iter("md:*")):
        md_redis.delete(k)
    call_command("run_marketdata", rebuild=True)
    assert "rebuilt 1 market(s)" in capsys.readouterr().out
    assert_equal_to_truth(client)
