"""Kafka outage: the broker stops mid-run, trading goes on, the broker comes back and the backlog arrives.

The development broker (tansu) keeps topics in memory, so the restarted broker is empty: what
was delivered before the stop is gone with the old broker. "Every event arrives" therefore means:
every event not yet delivered when the broker stopped, and every later one, reaches the new broker,
in order per key (duplicates from re-sends skipped).
"""

import time

import pytest
from django.db import connection

from cryptgo.devservices import free_port, start_kafka
from tests.matcher.helpers import read_topics


def _undelivered() -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT (SELECT count(*) FROM matcher_eventoutbox WHERE NOT delivered)"
                    " + (SELECT count(*) FROM matcher_depthoutbox WHERE NOT delivered)")
        return cur.fetchone()[0]


def _wait_delivered(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _undelivered():
        assert time.monotonic() < deadline, f"{_undelivered()} outbox rows still undelivered after {timeout}s"
        time.sleep(0.2)


def _last(sql: str) -> int:
    with connection.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0] or 0


def _trade(c, alice, bob, n, base):
    for i in range(n):
        c.place_limit(alice.id, "ETH_USDT", "buy", f"{base + i % 3}.00", "0.1")
        c.place_limit(bob.id, "ETH_USDT", "sell", f"{base + 1 + i % 2}.00", "0.15")
    c.update_balance(alice.id, "USDT", "deposit", f"top-up-{base}", "5")


@pytest.mark.slow
def test_trading_continues_while_kafka_is_down(matcher_factory, eth_usdt, alice, bob, tmp_path):
    port = free_port()
    kafka = start_kafka(tmp_path / "kafka-1", port)
    try:
        mp = matcher_factory(KAFKA_BOOTSTRAP_SERVERS=kafka.url, MATCHER_RELAY_TIMEOUT_MS="3000")
        c = mp.client
        c.update_balance(alice.id, "USDT", "deposit", "a", "100000")
        c.update_balance(bob.id, "ETH", "deposit", "b", "100")
        _trade(c, alice, bob, 5, 2000)
        _wait_delivered(30)
        delivered_seq = _last("SELECT max(last_seq) FROM matcher_eventoutbox")
        delivered_depth = _last("SELECT max(depth_seq) FROM matcher_depthoutbox")

        kafka.stop()
        _trade(c, alice, bob, 10, 2010)  # every call is acknowledged: commits do not wait for Kafka
        assert _undelivered() > 0
        kafka = start_kafka(tmp_path / "kafka-2", port)  # same address, empty broker
        _trade(c, alice, bob, 5, 2020)

        last_seq = _last("SELECT max(last_seq) FROM matcher_eventoutbox")
        last_depth = _last("SELECT max(depth_seq) FROM matcher_depthoutbox")
        want = set(range(delivered_seq + 1, last_seq + 1))
        want_depth = set(range(delivered_depth + 1, last_depth + 1))
        assert len(want) > 100 and want_depth

        def complete(msgs):
            return (want <= {v["seq"] for t, k, v in msgs if v["type"] != "depth"}
                    and want_depth <= {v["data"]["depth_seq"] for t, k, v in msgs if v["type"] == "depth"})

        messages = read_topics(mp.topic_prefix, ("orders", "deals", "balances", "depth"), until=complete,
                               timeout=90, bootstrap=kafka.url)
        _wait_delivered(30)
    finally:
        kafka.stop()

    seen: set[tuple[str, int]] = set()
    per_key: dict[tuple[str, str], list[int]] = {}
    for topic, key, value in messages:
        n = value["data"]["depth_seq"] if value["type"] == "depth" else value["seq"]
        if (value["type"] == "depth", n) in seen:
            continue  # a re-send of a message that had arrived
        seen.add((value["type"] == "depth", n))
        per_key.setdefault((topic, key), []).append(n)
    for key, ns in per_key.items():
        assert ns == sorted(ns), key
    assert {n for (is_depth, n) in seen if not is_depth} >= want
