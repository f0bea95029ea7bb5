"""Fixtures for market data: a clean Redis keyspace, per-test Kafka topics, a contract-(C) producer,
and run_marketdata's consumer loop in a thread."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from django.conf import settings as django_settings
from django.db import connections

from markets import consumer, marketdata


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy (bounded); returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def md_redis():
    r = marketdata.redis_client()
    for k in r.scan_iter("md:*", count=1000):
        r.delete(k)
    marketdata.forget_specs()
    return r


@pytest.fixture
def topics(settings):
    """A fresh topic prefix per test, so each test's consumer sees only its own events."""
    settings.KAFKA_TOPIC_PREFIX = f"t{uuid.uuid4().hex[:10]}."
    return settings.KAFKA_TOPIC_PREFIX


class EventProducer:
    """Writes contract-(C) messages the way the matcher's outbox relay does."""

    def __init__(self) -> None:
        self.producer = Producer({"bootstrap.servers": django_settings.KAFKA_BOOTSTRAP_SERVERS,
                                  "enable.idempotence": True, "acks": "all"})
        self.seq = 0
        self.depth_seq: dict[str, int] = {}
        self.deal_id = 0

    def send(self, kind: str, key: str, etype: str, data: dict[str, Any], seq: int | None = None) -> int:
        if seq is None:
            self.seq += 1
            seq = self.seq
        data = {**data, "seq": seq} if etype != "depth" else data
        value = {"v": 1, "type": etype, "seq": seq, "time": data.get("time", int(time.time() * 1000)), "data": data}
        self.producer.produce(f"{django_settings.KAFKA_TOPIC_PREFIX}{kind}", key=key, value=json.dumps(value))
        return seq

    def deal(self, market: str, price: str, amount: str, quote_amount: str, side: str = "buy",
             time_ms: int | None = None, deal_id: int | None = None) -> dict[str, Any]:
        if deal_id is None:
            self.deal_id += 1
            deal_id = self.deal_id
        data = {"kind": "deal", "id": deal_id, "market": market, "price": price, "amount": amount,
                "quote_amount": quote_amount, "maker_order_id": 1, "taker_order_id": 2, "maker_user": 11,
                "taker_user": 12, "maker_fee": "0", "maker_fee_asset": "USDT", "taker_fee": "0",
                "taker_fee_asset": "ETH", "taker_side": side, "time": time_ms or int(time.time() * 1000)}
        data["seq"] = self.send("deals", market, "deal", data)
        return data

    def depth(self, market: str, asks: list[list[str]], bids: list[list[str]],
              depth_seq: int | None = None) -> dict[str, Any]:
        if depth_seq is None:
            depth_seq = self.depth_seq.get(market, 0) + 1
        self.depth_seq[market] = max(depth_seq, self.depth_seq.get(market, 0))
        data = {"market": market, "depth_seq": depth_seq, "asks": asks, "bids": bids}
        self.send("depth", market, "depth", data)
        return data

    def resend(self, kind: str, key: str, etype: str, data: dict[str, Any]) -> None:
        """The same message again, as an at-least-once relay may deliver it."""
        self.send(kind, key, etype, data, seq=data.get("seq", 0))

    def flush(self) -> None:
        assert self.producer.flush(30) == 0


@pytest.fixture
def events(topics) -> EventProducer:
    return EventProducer()


class Running:
    def __init__(self, thread: threading.Thread, stop: threading.Event, errors: list[BaseException]) -> None:
        self.thread, self.stop, self.errors = thread, stop, errors


@pytest.fixture
def run_marketdata(md_redis, topics) -> Iterator[Callable[..., Running]]:
    """Start run_marketdata's loop in a thread (its own DB connection; use transactional tests)."""
    started: list[Running] = []

    def start(**kwargs: Any) -> Running:
        stop = threading.Event()
        errors: list[BaseException] = []

        def target() -> None:
            try:
                consumer.run(stop, group_id=f"md-{uuid.uuid4().hex[:8]}", poll_seconds=0.1, **kwargs)
            except BaseException as exc:  # surfaced by the fixture's teardown
                errors.append(exc)
            finally:
                connections.close_all()

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        running = Running(thread, stop, errors)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop.set()
        running.thread.join(30)
        assert not running.thread.is_alive(), "run_marketdata did not stop"
        assert not running.errors, running.errors
