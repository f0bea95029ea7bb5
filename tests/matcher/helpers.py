"""Helpers for the matcher tests: table snapshots, conservation, Kafka reading."""

from __future__ import annotations

import json
import time
from decimal import Decimal, localcontext
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from django.conf import settings
from django.db import connection

from matcher.service.state import normalize, snapshot_from_tables


def tables_state() -> dict[str, Any]:
    """The engine snapshot the tables describe (what start-up would load), normalized."""
    import psycopg

    from matcher.service.state import conninfo

    with psycopg.connect(conninfo()) as conn, conn.transaction():
        snap, _ = snapshot_from_tables(conn)
    return normalize(snap)


def counts() -> dict[str, int]:
    """Row counts of every table the matcher writes."""
    with connection.cursor() as cur:
        out = {}
        for table in ("trading_operation", "trading_order", "trading_deal", "trading_balance",
                      "trading_balancehistory", "matcher_eventoutbox", "matcher_depthoutbox"):
            cur.execute(f"SELECT count(*) FROM {table}")
            out[table] = cur.fetchone()[0]
    return out


def conservation_differences() -> list[str]:
    """Per asset: sum of balances (available + frozen, every user and the fee account) must equal the
    sum of the ledger's non-trade changes (deposits, withdrawals, adjustments) exactly, and the ledger's
    trade + fee changes must sum to zero."""
    out = []
    with connection.cursor() as cur, localcontext() as ctx:
        ctx.prec = 100
        cur.execute("SELECT a.symbol, COALESCE(SUM(b.available + b.frozen), 0) FROM markets_asset a"
                    " LEFT JOIN trading_balance b ON b.asset_id = a.id GROUP BY a.symbol")
        held = dict(cur.fetchall())
        cur.execute("SELECT a.symbol, h.business IN ('trade', 'fee'), SUM(h.change) FROM trading_balancehistory h"
                    " JOIN markets_asset a ON a.id = h.asset_id GROUP BY 1, 2")
        external: dict[str, Decimal] = {}
        for symbol, internal, total in cur.fetchall():
            if internal:
                if total != 0:
                    out.append(f"{symbol}: trades and fees sum to {total}, not 0")
            else:
                external[symbol] = external.get(symbol, Decimal(0)) + total
        for symbol, total in held.items():
            if total != external.get(symbol, Decimal(0)):
                out.append(f"{symbol}: balances {total} != credits - debits {external.get(symbol, 0)}")
    return out


def outbox_messages() -> list[tuple[str, str, dict[str, Any]]]:
    """Every (topic, key, message) in the event outbox, in order (a row holds a run of events, a line each)."""
    with connection.cursor() as cur:
        cur.execute("SELECT payload FROM matcher_eventoutbox ORDER BY seq")
        rows = [r[0] for r in cur.fetchall()]
    out = []
    for payload in rows:
        for line in payload.split("\n"):
            topic, key, message = line.split("\t", 2)
            out.append((topic, key, json.loads(message)))
    return out


def outbox_seqs() -> list[int]:
    return [m["seq"] for _, _, m in outbox_messages()]


def read_topics(prefix: str, kinds: tuple[str, ...] = ("orders", "deals", "balances"), *,
                until: Any = None, timeout: float = 60.0,
                bootstrap: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """Every message of the given topics as (topic, key, value), partition by partition in offset order.

    Reads until ``until(messages)`` is true (or, without it, until a quiet second), bounded by ``timeout``.
    Partitions are assigned explicitly (no consumer group, no rebalance wait).
    """
    conf = {"bootstrap.servers": bootstrap or settings.KAFKA_BOOTSTRAP_SERVERS, "group.id": "tests-unused",
            "enable.auto.commit": False, "auto.offset.reset": "earliest"}
    consumer = Consumer(conf)
    topics = [prefix + k for k in kinds]
    try:
        assigned: set[tuple[str, int]] = set()
        messages: list[tuple[str, str, dict[str, Any]]] = []
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            md = consumer.list_topics(timeout=5)
            new = [(t, p) for t in topics if t in md.topics for p in md.topics[t].partitions
                   if (t, p) not in assigned]
            if new:
                assigned.update(new)
                consumer.incremental_assign([TopicPartition(t, p, 0) for t, p in sorted(new)])
            batch = consumer.consume(1000, 0.5)
            got = False
            for m in batch:
                if m.error():
                    continue
                got = True
                messages.append((m.topic(), m.key().decode(), json.loads(m.value())))
            if got:
                quiet_since = time.monotonic()
            if until is not None:
                if until(messages):
                    return messages
            elif assigned and time.monotonic() - quiet_since > 1.5:
                return messages
        if until is not None:
            raise AssertionError(f"Kafka: condition not met in {timeout}s ({len(messages)} messages read)")
        return messages
    finally:
        consumer.close()
