"""run_stream_relay's work: the matcher's order and balance events to each user's channel-layer group.

One group message per user per Kafka batch (``kind="private"``, a list of
items), so a burst of fills costs one channel-layer send per user, not one
per event. Items carry the event ``seq``; the websocket consumer drops one it
has already pushed, since Kafka delivery is at least once. Public market data
is pushed by ``run_marketdata`` after it updated Redis (docs/adr), not here.

The consumer group starts at the earliest offsets (so the first events after
a fresh install are not lost while the group forms) but skips events older
than ``STREAM_RELAY_MAX_AGE_SECONDS``: a live feed has no use for them, and a
new group name does not replay history into users' sockets. After a restart
it resumes from its committed offsets, so a short outage is caught up.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings

from streaming import groups
from streaming.kafka import Event, consume_available, decode, make_consumer, topic

log = logging.getLogger(__name__)


def private_messages(events: Iterable[Event], oldest_ms: int = 0) -> dict[int, dict[str, Any]]:
    """Group message per user id for a batch of order and balance events (in event order).

    Events with a time before ``oldest_ms`` are left out.
    """
    items: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for ev in events:
        if ev.time < oldest_ms:
            continue
        data = ev.data
        try:
            if ev.kind == "orders":
                order = data["order"]
                items[int(order["user"])].append({"kind": "order", "seq": ev.seq, "market": order["market"],
                                                  "event": data["event"], "order": order})
            elif ev.kind == "balances":
                items[int(data["user"])].append({"kind": "asset", "seq": ev.seq, "asset": data["asset"],
                                                 "available": data["available"], "frozen": data["frozen"]})
        except (KeyError, TypeError, ValueError) as exc:
            log.error("malformed %s event seq %s skipped: %s", ev.type, ev.seq, exc)
    return {user: groups.message("private", user=user, items=its) for user, its in items.items()}


async def _send_all(layer: Any, messages: dict[int, dict[str, Any]]) -> None:
    await asyncio.gather(*(layer.group_send(groups.user(user), msg) for user, msg in messages.items()))


def run(stop: threading.Event, *, group_id: str | None = None, batch_size: int = 1000, poll_seconds: float = 0.2,
        on_assign: Callable[[], None] | None = None) -> None:
    """Relay until ``stop`` is set. ``on_assign`` is called once partitions are assigned (tests, readiness)."""
    from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)  # our own: its pools live on our loop
    consumer = make_consumer(group_id or settings.STREAM_RELAY_KAFKA_GROUP, "earliest",
                             **{"enable.auto.commit": True, "auto.commit.interval.ms": 1000})

    def assigned(c: Any, partitions: list[Any]) -> None:
        if on_assign is not None and partitions:
            on_assign()

    consumer.subscribe([topic("orders"), topic("balances")], on_assign=assigned)
    loop = asyncio.new_event_loop()
    try:
        while not stop.is_set():
            messages = consume_available(consumer, batch_size, poll_seconds)
            events = [e for e in map(decode, messages) if e is not None]
            if events:
                oldest = int(time.time() * 1000) - settings.STREAM_RELAY_MAX_AGE_SECONDS * 1000
                loop.run_until_complete(_send_all(layer, private_messages(events, oldest)))
    finally:
        consumer.close()
        loop.run_until_complete(groups.close_layer(layer))
        loop.close()
