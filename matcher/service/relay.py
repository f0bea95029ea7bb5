"""The outbox relay: committed events from PostgreSQL to Kafka, at least once, in order per key.

It reads undelivered rows of ``matcher_eventoutbox`` (in event ``seq`` order;
each row holds the messages of a run of consecutive events) and
``matcher_depthoutbox`` (in id order), produces them with an idempotent
confluent-kafka producer (``acks=all``), waits until every message of the
round is confirmed and marks the round's rows. After any failure (the producer
reports failures only) no row of the round is marked and all are sent again in
a later round; so a message can reach Kafka twice (after a timeout whose
message did arrive, or beside one that failed) but never zero times, and consumers skip
``seq`` values they have seen. When Kafka is down the rows simply wait: the
matcher keeps trading, the backlog drains when the broker is back.

Only one relay works at a time (a PostgreSQL advisory lock), so the relay
inside ``run_matcher`` and a separate ``run_outbox_relay`` can both be started.
The launcher runs it in a process of its own (``run_matcher --no-relay``): in
the matcher's process its rounds held the GIL the batching loop needs (phase 2
of bench/matcher_e2e.py: p99 at 5000/s several times lower without it). Every batch's
COMMIT notifies ``OUTBOX_CHANNEL``, on which the relay waits between rounds,
so it delivers as soon as a batch commits wherever it runs.

Delivered rows are deleted ``keep_seconds`` after their delivery
(``MATCHER_OUTBOX_KEEP_SECONDS``, a day by default; negative keeps them): at
5,000 commands/s the outbox grows by about 8 MB/s, and once Kafka holds the
messages the rows serve only operators looking at recent deliveries. Rows
are deleted by key range (below the last seq delivered long enough ago) and
only if delivered, so an undelivered row is never lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from confluent_kafka import KafkaError, Producer

from matcher.service.persist import OUTBOX_CHANNEL, keyed_plans

log = logging.getLogger("matcher.relay")


#: pg_advisory_lock key of the relay ("cgrelay" in ASCII).
RELAY_LOCK = 0x6367_7265_6C61_79
EVENT_QUERY = ("SELECT seq, payload FROM matcher_eventoutbox WHERE delivered = false ORDER BY seq LIMIT %s")
DEPTH_QUERY = ("SELECT id, %s || 'depth', market, payload::text FROM matcher_depthoutbox WHERE delivered = false"
               " ORDER BY id LIMIT %s")
MARK_EVENTS = "UPDATE matcher_eventoutbox SET delivered = true, delivered_at = now() WHERE seq = ANY(%s)"
MARK_DEPTH = "UPDATE matcher_depthoutbox SET delivered = true, delivered_at = now() WHERE id = ANY(%s)"
#: everything below the first undelivered row was delivered (rounds deliver in order, all or nothing)
DELIVERED_UPTO = ("SELECT coalesce((SELECT min(seq) - 1 FROM matcher_eventoutbox WHERE delivered = false),"
                  " (SELECT max(seq) FROM matcher_eventoutbox), 0),"
                  " coalesce((SELECT min(id) - 1 FROM matcher_depthoutbox WHERE delivered = false),"
                  " (SELECT max(id) FROM matcher_depthoutbox), 0)")
PRUNE_EVENTS = "DELETE FROM matcher_eventoutbox WHERE seq <= %s AND delivered"
PRUNE_DEPTH = "DELETE FROM matcher_depthoutbox WHERE id <= %s AND delivered"


class OutboxRelay:
    def __init__(self, dsn: str, bootstrap: str, topic_prefix: str, *, batch: int = 5000,
                 message_timeout_ms: int = 10000, idle_wait: float = 0.2, min_interval: float = 0.025,
                 keep_seconds: float = 86400.0, prune_every: float = 60.0) -> None:
        self.dsn = dsn
        self.bootstrap = bootstrap
        self.topic_prefix = topic_prefix
        self.batch = batch
        self.batch_rows = max(1, batch // 100)  # event outbox rows hold up to 1000 events each
        self.message_timeout_ms = message_timeout_ms
        self.idle_wait = idle_wait
        #: shortest time between the starts of two rounds without a backlog: a round per commit (each a few
        #: queries, a produce and a wait for the broker) cost more CPU than the messages themselves when
        #: batches are small; this adds at most this much to the delivery time
        self.min_interval = min_interval
        #: how long delivered rows stay (negative: for ever), and how often the old ones are deleted
        self.keep_seconds = keep_seconds
        self.prune_every = min(prune_every, max(keep_seconds, 1.0))
        #: (monotonic time, last event seq, last depth id) delivered by then, oldest first
        self._delivered: deque[tuple[float, int, int]] = deque()
        self._next_prune = 0.0
        self.pruned = 0
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.delivered = 0
        self.more = False
        self._producer: Producer | None = None
        self._fatal = False
        self._failed_messages = 0

    # ------------------------------------------------------------ kafka

    def _make_producer(self) -> Producer:
        def on_error(err: KafkaError) -> None:
            if err.fatal():
                self._fatal = True
            log.warning("kafka: %s", err)

        def on_delivery(err: KafkaError | None, _msg: Any) -> None:
            # called for failed messages only (delivery.report.only.error)
            if err is not None:
                self._failed_messages += 1
                if err.fatal():
                    self._fatal = True

        return Producer({
            "bootstrap.servers": self.bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "delivery.report.only.error": True,
            "on_delivery": on_delivery,
            "message.timeout.ms": self.message_timeout_ms,
            "queue.buffering.max.messages": max(100000, 2 * self.batch),
            "error_cb": on_error,
            "logger": logging.getLogger("matcher.relay.kafka"),
        })

    def _producer_ok(self) -> Producer:
        if self._producer is None or self._fatal:
            # a fatal idempotence error (e.g. a broker restarted empty) needs a new producer id
            if self._producer is not None:
                # drop what the old one still holds, so it cannot deliver late, after the new one's re-sends
                self._producer.purge(in_queue=True, in_flight=True)
                self._producer.flush(0)
            self._producer = self._make_producer()
            self._fatal = False
        return self._producer

    def _send(self, messages: Iterable[Sequence[str]]) -> tuple[int, int]:
        """Produce (topic, key, value) messages and wait for them; returns (delivered, failed).

        The producer reports failed messages only (``delivery.report.only.error``, one callback for
        the producer): a report and a Python callback per delivered message, ~5 per command, was a
        good part of the matcher's CPU. So a round is delivered as a whole or not at all: after any
        failure, or a message still unconfirmed when the wait ends, none of its rows is marked and
        all are sent again later (duplicates at worst, consumers skip them; never a loss).
        """
        producer = self._producer_ok()
        self._failed_messages = 0  # after _producer_ok: purging an old producer reports its messages
        produce = producer.produce
        count = 0
        for topic, key, value in messages:
            count += 1
            while True:
                try:
                    produce(topic, value, key)
                    break
                except BufferError:
                    producer.poll(0.1)
            if count % 10000 == 0:
                producer.poll(0)
        # bounded: every message is delivered or times out within message.timeout.ms; a stop cuts it short
        # (what was not confirmed stays undelivered in the table and is sent again later)
        deadline = time.monotonic() + self.message_timeout_ms / 1000 + 5
        remaining = producer.flush(0.5)
        while remaining and not self.stopping.is_set() and time.monotonic() < deadline:
            remaining = producer.flush(0.5)
        failures = min(count, self._failed_messages + remaining)
        if failures:
            # After timeouts an idempotent producer may be stuck on a producer id the (restarted) broker
            # does not know; a new producer gets a new id. Re-sends can duplicate, never reorder, a key.
            self._fatal = True
        return count - failures, failures

    # ------------------------------------------------------------ loop

    def run_once(self, conn: psycopg.Connection[Any]) -> tuple[int, int]:
        """One round over both outboxes; returns (delivered, failed). ``self.more``: a backlog remains."""
        delivered = failed = 0
        rows = conn.execute(EVENT_QUERY, (self.batch_rows,)).fetchall()
        if rows:
            # each row holds a run of consecutive events, one "topic<TAB>key<TAB>message" per line
            sent, bad = self._send(line.split("\t", 2) for _seq, payload in rows for line in payload.split("\n"))
            if not bad:
                conn.execute(MARK_EVENTS, ([seq for seq, _payload in rows],))
                self.note_delivered(rows[-1][0], 0, time.monotonic())
            delivered += sent
            failed += bad
        depth = conn.execute(DEPTH_QUERY, (self.topic_prefix, self.batch)).fetchall()
        if depth and not failed:
            sent, bad = self._send((topic, market, payload) for _id, topic, market, payload in depth)
            if not bad:
                conn.execute(MARK_DEPTH, ([row[0] for row in depth],))
                self.note_delivered(0, depth[-1][0], time.monotonic())
            delivered += sent
            failed += bad
        self.delivered += delivered
        self.more = len(rows) == self.batch_rows or len(depth) == self.batch
        return delivered, failed

    # ------------------------------------------------------------ pruning

    def note_delivered(self, event_seq: int, depth_id: int, now: float) -> None:
        """Remember that rows up to these keys were delivered at ``now`` (0: no change); rows delivered
        within a second share the first one's time, so they may go up to a second early."""
        delivered = self._delivered
        if delivered:
            t, last_seq, last_id = delivered[-1]
            event_seq, depth_id = max(event_seq, last_seq), max(depth_id, last_id)
            if t > now - 1.0:  # one entry per second, not per round: a day is 86,400 entries
                delivered[-1] = (t, event_seq, depth_id)
                return
        delivered.append((now, event_seq, depth_id))

    def note_delivered_before(self, conn: psycopg.Connection[Any], now: float) -> None:
        """At start-up: what earlier runs delivered counts as delivered now (kept ``keep_seconds`` more)."""
        row = conn.execute(DELIVERED_UPTO).fetchone()
        if row is not None:
            self.note_delivered(row[0], row[1], now)

    def prune(self, conn: psycopg.Connection[Any], now: float) -> int:
        """Delete delivered rows older than ``keep_seconds``; returns how many rows went."""
        if self.keep_seconds < 0 or now < self._next_prune:
            return 0
        self._next_prune = now + self.prune_every
        upto = None
        delivered = self._delivered
        while delivered and delivered[0][0] <= now - self.keep_seconds:
            upto = delivered.popleft()
        if upto is None:
            return 0
        _t, seq, depth_id = upto
        deleted = conn.execute(PRUNE_EVENTS, (seq,)).rowcount + conn.execute(PRUNE_DEPTH, (depth_id,)).rowcount
        self.pruned += deleted
        return deleted

    def run(self) -> None:
        """Deliver until ``stopping`` is set; reconnects to PostgreSQL and Kafka as needed."""
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    keyed_plans(conn)
                    self._hold_lock(conn)
                    conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
                    self.note_delivered_before(conn, time.monotonic())
                    log.info("outbox relay delivering to %s", self.bootstrap)
                    while not self.stopping.is_set():
                        started = time.monotonic()
                        delivered, failed = self.run_once(conn)
                        if failed:
                            log.warning("kafka: %d messages not delivered; retrying in %.1fs", failed, backoff)
                            self.stopping.wait(backoff)
                            backoff = min(backoff * 2, 2.0)
                            continue
                        backoff = 0.5
                        self.prune(conn, time.monotonic())
                        if not self.more:
                            rest = self.min_interval - (time.monotonic() - started)
                            if rest > 0:
                                self.stopping.wait(rest)
                            self._wait_for_work(conn)
            except psycopg.OperationalError as exc:
                log.warning("outbox relay: database error %s; reconnecting", exc)
                self.stopping.wait(1.0)
        if self._producer is not None:
            self._producer.flush(2)

    def _wait_for_work(self, conn: psycopg.Connection[Any]) -> None:
        """Until a batch commits (its NOTIFY, or in the matcher's own process ``wake``) or ``idle_wait`` passes."""
        if not self.wake.is_set():
            for _notify in conn.notifies(timeout=self.idle_wait, stop_after=1):
                pass
        self.wake.clear()

    def _hold_lock(self, conn: psycopg.Connection[Any]) -> None:
        while not self.stopping.is_set():
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LOCK,)).fetchone()
            if row and row[0]:
                return
            self.stopping.wait(1.0)  # another relay is delivering; take over if it stops

    def start_thread(self) -> threading.Thread:
        t = threading.Thread(target=self.run, name="outbox-relay", daemon=True)
        t.start()
        return t
