"""The persister's ``send``: a batch's statement written from the event loop, without a thread."""

import asyncio
import threading

import psycopg
import pytest

from matcher.service.persist import Batch, Persister
from tests.matcher.fixtures import database_url_for_tests


def _batch(first_seq: int, n: int, note: str) -> Batch:
    batch = Batch(time_ms=1_700_000_000_000)
    batch.ops.extend((seq, "update_balance", {"note": note}) for seq in range(first_seq, first_seq + n))
    return batch


@pytest.mark.django_db(transaction=True)
def test_send_commits_a_batch_larger_than_the_socket_takes_at_once():
    with psycopg.connect(database_url_for_tests(), autocommit=True) as conn:
        persister = Persister(conn, "send.")
        rows = persister.prepare(_batch(1, 20_000, "x" * 1000))  # ~20 MB: flushed as the socket drains
        assert persister.can_send(rows)
        loop_thread = []

        async def commit() -> None:
            loop_thread.append(threading.get_ident())
            await persister.send(rows)

        threads_before = threading.active_count()
        asyncio.run(commit())
        assert threading.active_count() == threads_before  # no worker thread was started for it
        assert conn.execute("SELECT count(*), min(seq), max(seq), min(length(params::text))"
                            " FROM trading_operation").fetchone() == (20_000, 1, 20_000, len('{"note": ""}') + 1000)


@pytest.mark.django_db(transaction=True)
def test_send_raises_the_servers_error_and_leaves_the_connection_usable():
    with psycopg.connect(database_url_for_tests(), autocommit=True) as conn:
        persister = Persister(conn, "send.")
        asyncio.run(persister.send(persister.prepare(_batch(1, 3, "a"))))
        with pytest.raises(psycopg.errors.UniqueViolation):  # op seq 3 is taken: the whole statement fails
            asyncio.run(persister.send(persister.prepare(_batch(3, 3, "b"))))
        assert conn.execute("SELECT seq, params->>'note' FROM trading_operation ORDER BY seq").fetchall() == [
            (1, "a"), (2, "a"), (3, "a")]
        asyncio.run(persister.send(persister.prepare(_batch(4, 2, "c"))))
        assert conn.execute("SELECT count(*) FROM trading_operation").fetchone() == (5,)


def test_a_batch_with_extra_statements_is_not_sent_from_the_loop():
    batch = _batch(1, 1, "a")
    batch.market_rows["ETH_USDT"] = ("halted", "0.001", "0.002")
    persister = Persister.__new__(Persister)
    persister.conn = type("Conn", (), {"autocommit": True})()
    rows = type("Rows", (), {"batch": batch})()
    assert not persister.can_send(rows)  # its statements need a transaction: execute(), in a thread
