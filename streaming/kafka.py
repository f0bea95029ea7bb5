"""Reading the matcher's events (contract C) from Kafka: topic names, consumer settings, decoding.

Shared by ``run_marketdata`` and ``run_stream_relay``. Consumers let librdkafka
create missing topics and refresh metadata every few seconds, so a consumer
started before the matcher's first event still finds its topics quickly.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message
from django.conf import settings

log = logging.getLogger(__name__)

KINDS = ("orders", "deals", "balances", "depth")
TYPES = {"orders": "order", "deals": "deal", "balances": "balance", "depth": "depth"}


def topic(kind: str) -> str:
    """The topic of one event kind (``orders``, ``deals``, ``balances``, ``depth``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown topic kind {kind!r}")
    return f"{settings.KAFKA_TOPIC_PREFIX}{kind}"


def make_consumer(group_id: str, offset_reset: str, **extra: Any) -> Consumer:
    """A consumer in ``group_id`` (offsets committed by the caller unless ``enable.auto.commit`` is passed)."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
        "group.id": group_id,
        "auto.offset.reset": offset_reset,
        "enable.auto.commit": False,
        "session.timeout.ms": settings.KAFKA_SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": max(500, settings.KAFKA_SESSION_TIMEOUT_MS // 3),
        "allow.auto.create.topics": True,
        "topic.metadata.refresh.interval.ms": 5000,
        "enable.partition.eof": False,
        "fetch.wait.max.ms": settings.KAFKA_FETCH_WAIT_MS,
    }
    config.update(extra)
    return Consumer(config)


def consume_available(consumer: Consumer, max_messages: int, timeout: float) -> list[Message]:
    """Up to ``max_messages``: waits at most ``timeout`` for the first, then takes only what is already here.

    ``Consumer.consume(n, timeout)`` waits until it has ``n`` messages or the
    timeout passes, so at a trickle of events every push was delayed by up to
    the whole timeout; a live feed must pass on each message as it arrives.
    """
    first = consumer.poll(timeout)
    if first is None:
        return []
    return [first, *consumer.consume(max_messages - 1, 0)] if max_messages > 1 else [first]


@dataclass(frozen=True)
class Event:
    """One contract-(C) message: ``kind`` is the topic kind, the rest is the envelope."""

    kind: str
    type: str
    seq: int
    time: int
    data: dict[str, Any]


def decode(msg: Message) -> Event | None:
    """The event in a Kafka message, or ``None`` (logged) for an error, an unknown topic or a malformed value.

    A malformed message is skipped rather than retried forever: one bad
    record must not stop the feed for every market.
    """
    err = msg.error()
    if err is not None:
        if err.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._PARTITION_EOF):
            log.debug("kafka: %s", err)
        else:
            log.warning("kafka: %s", err)
        return None
    prefix = settings.KAFKA_TOPIC_PREFIX
    name = msg.topic() or ""
    kind = name[len(prefix):] if name.startswith(prefix) else ""
    if kind not in KINDS:
        log.warning("kafka: message from unexpected topic %r skipped", name)
        return None
    try:
        env = json.loads(msg.value() or b"")
        if not isinstance(env, dict) or env.get("v") != 1:
            raise ValueError(f"unsupported envelope version {env.get('v') if isinstance(env, dict) else env!r}")
        etype, seq, time, data = env["type"], env["seq"], env["time"], env["data"]
        if etype != TYPES[kind] or not isinstance(data, dict):
            raise ValueError(f"type {etype!r} on topic {name!r}")
        if isinstance(seq, bool) or not isinstance(seq, int) or isinstance(time, bool) or not isinstance(time, int):
            raise ValueError("seq and time must be integers")
    except (ValueError, KeyError, TypeError) as exc:
        log.error("kafka: malformed message at %s[%s]@%s skipped: %s", name, msg.partition(), msg.offset(), exc)
        return None
    return Event(kind, etype, seq, time, data)
