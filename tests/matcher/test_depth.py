"""Depth diffs on Kafka: a client.depth() snapshot plus the later diffs reproduces the matcher's book exactly."""

import random
from decimal import Decimal

from matcher.client import limit_request
from tests.matcher.helpers import read_topics


def _apply(book, diffs):
    asks, bids = dict(book["asks"]), dict(book["bids"])
    for d in diffs:
        for side, levels in ((asks, d["asks"]), (bids, d["bids"])):
            for price, amount in levels:
                if amount == "0":
                    del side[price]  # a removed level must have been there
                else:
                    side[price] = amount
    return asks, bids


def test_snapshot_plus_diffs_reproduce_the_book(funded, matcher):
    alice, bob = funded
    c = matcher.client
    rng = random.Random(7)
    start = c.depth("ETH_USDT", limit=1000)
    assert start == {"asks": [], "bids": [], "seq": 0}

    def churn(n):
        for _ in range(n):
            r = rng.random()
            if r < 0.6:
                user, side = (alice, "buy") if rng.random() < 0.5 else (bob, "sell")
                c.place_limit(user.id, "ETH_USDT", side, f"{2000 + rng.randint(-5, 5)}.00", f"0.{rng.randint(1, 9)}")
            elif r < 0.8:
                mine = c.open_orders(alice.id) + c.open_orders(bob.id)
                if mine:
                    o = rng.choice(mine)
                    c.cancel(o["user"], "ETH_USDT", order_id=o["id"])
            else:
                # several orders in one batch: one diff message carries all their levels
                c.place_batch([limit_request(bob.id, "ETH_USDT", "sell", f"{2001 + i}.00", "0.2") for i in range(3)]
                              + [limit_request(alice.id, "ETH_USDT", "buy", "2003.00", "0.5")])

    churn(30)
    middle = c.depth("ETH_USDT", limit=1000)
    churn(30)
    c.place_market(alice.id, "ETH_USDT", "buy", "500")
    final = c.depth("ETH_USDT", limit=1000)
    assert final["seq"] > middle["seq"] > 0

    messages = read_topics(matcher.topic_prefix, ("depth",),
                           until=lambda ms: any(v["data"]["depth_seq"] == final["seq"] for _, _, v in ms))
    diffs = [v["data"] for _, key, v in messages if key == "ETH_USDT"]
    assert [d["depth_seq"] for d in diffs] == list(range(1, final["seq"] + 1))  # no gap, in order
    assert all(v["v"] == 1 and v["type"] == "depth" for _, _, v in messages)
    for snap in (start, middle):
        asks, bids = _apply(snap, [d for d in diffs if d["depth_seq"] > snap["seq"]])
        assert sorted(asks.items(), key=lambda kv: Decimal(kv[0])) == [tuple(lv) for lv in final["asks"]]
        assert sorted(bids.items(), key=lambda kv: -Decimal(kv[0])) == [tuple(lv) for lv in final["bids"]]

    # after a restart the numbering jumps: every subscriber sees a gap and fetches a new snapshot
    matcher.kill()
    matcher.start()
    again = matcher.client.depth("ETH_USDT", limit=1000)
    assert again == {**final, "seq": final["seq"] + 1000}
    matcher.client.place_limit(alice.id, "ETH_USDT", "buy", "1000.00", "0.1")
    more = read_topics(matcher.topic_prefix, ("depth",),
                       until=lambda ms: any(v["data"]["depth_seq"] > final["seq"] for _, _, v in ms))
    assert [v["data"]["depth_seq"] for _, _, v in more][-1] == final["seq"] + 1001
