"""The matcher's connections keep their statements' plans for life: a plan made while the tables were
empty (a new exchange, a matcher started early) must still find rows by key once they are large."""

import psycopg
import pytest

from matcher.service import relay
from matcher.service.persist import STATEMENT, Persister, dollar_placeholders, keyed_plans
from tests.matcher.fixtures import database_url_for_tests


def generic_plan(conn: psycopg.Connection, sql: str) -> str:
    """The plan PostgreSQL keeps for ``sql`` (as a prepared statement) in this session."""
    return "\n".join(row[0] for row in conn.execute("EXPLAIN (GENERIC_PLAN) " + dollar_placeholders(sql)))


@pytest.mark.django_db(transaction=True)
def test_plans_made_on_empty_tables_use_the_keys():
    with psycopg.connect(database_url_for_tests(), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM trading_order").fetchone() == (0,)
        conn.execute("ANALYZE trading_order, matcher_eventoutbox, matcher_depthoutbox")
        # what the statement's plan was: the order updates joined by reading the whole order table
        assert "Seq Scan on trading_order" in generic_plan(conn, STATEMENT)

        Persister(conn, "plans.")  # the writer's session, as the matcher opens it
        plan = generic_plan(conn, STATEMENT)
        assert "Seq Scan" not in plan
        assert "Index Scan using trading_order_pkey on trading_order" in plan

    with psycopg.connect(database_url_for_tests(), autocommit=True) as conn:
        keyed_plans(conn)  # the relay's session
        for sql in (relay.EVENT_QUERY, relay.MARK_EVENTS, relay.DEPTH_QUERY, relay.MARK_DEPTH):
            assert "Seq Scan" not in generic_plan(conn, sql), sql
