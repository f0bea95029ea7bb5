"""Delivered outbox rows are deleted once they are ``keep_seconds`` old; undelivered ones never are."""

from datetime import UTC, datetime

import psycopg
import pytest

from matcher.models import DepthOutbox, EventOutbox
from matcher.service.relay import OutboxRelay
from tests.matcher.fixtures import database_url_for_tests

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def events(seqs_delivered: dict[int, bool]) -> None:
    EventOutbox.objects.bulk_create(
        EventOutbox(seq=seq, last_seq=seq + 9, payload="t\tk\t{}", delivered=done, created_at=NOW,
                    delivered_at=NOW if done else None) for seq, done in seqs_delivered.items())


def depth(ids_delivered: dict[int, bool]) -> None:
    DepthOutbox.objects.bulk_create(
        DepthOutbox(id=i, market="ETH_USDT", depth_seq=i, payload={}, delivered=done, created_at=NOW,
                    delivered_at=NOW if done else None) for i, done in ids_delivered.items())


def left() -> tuple[list[int], list[int]]:
    return (sorted(EventOutbox.objects.values_list("seq", flat=True)),
            sorted(DepthOutbox.objects.values_list("id", flat=True)))


@pytest.mark.django_db(transaction=True)
def test_rows_go_keep_seconds_after_delivery_and_undelivered_rows_stay():
    events({1: True, 11: True, 21: True, 31: False})
    depth({1: True, 2: True, 3: False})
    relay = OutboxRelay(database_url_for_tests(), "127.0.0.1:9", "t.", keep_seconds=10, prune_every=1)
    with psycopg.connect(database_url_for_tests(), autocommit=True) as conn:
        relay.note_delivered_before(conn, now=100.0)  # start-up: rows 1-21 and ids 1-2 were delivered before
        assert relay.prune(conn, now=105.0) == 0  # not old enough yet
        assert left() == ([1, 11, 21, 31], [1, 2, 3])

        # later rounds deliver 31 and depth 3 (marked as the relay marks them)
        conn.execute("UPDATE matcher_eventoutbox SET delivered = true WHERE seq = 31")
        relay.note_delivered(31, 0, now=107.0)
        events({41: False})
        assert relay.prune(conn, now=111.0) == 5  # what was delivered by 100
        assert left() == ([31, 41], [3])

        relay.note_delivered(0, 3, now=107.5)  # within a second of 107: shares its entry
        assert relay.prune(conn, now=111.5) == 0  # pruned at most every prune_every
        assert relay.prune(conn, now=117.0) == 1  # event 31 went; depth 3 is undelivered: it stays
        assert left() == ([41], [3])
        assert relay.pruned == 6


@pytest.mark.django_db(transaction=True)
def test_negative_keep_seconds_keeps_every_row():
    events({1: True})
    relay = OutboxRelay(database_url_for_tests(), "127.0.0.1:9", "t.", keep_seconds=-1)
    with psycopg.connect(database_url_for_tests(), autocommit=True) as conn:
        relay.note_delivered_before(conn, now=0.0)
        assert relay.prune(conn, now=10.0 ** 9) == 0
    assert left() == ([1], [])
