"""The event outbox's payload is not compressed by PostgreSQL (migration matcher 0003)."""

import pytest
from django.db import connection


@pytest.mark.django_db
def test_the_outbox_payload_is_stored_uncompressed():
    with connection.cursor() as cur:
        cur.execute("SELECT attstorage FROM pg_attribute WHERE attrelid = 'matcher_eventoutbox'::regclass"
                    " AND attname = 'payload'")
        assert cur.fetchone() == ("e",)  # EXTERNAL: out of line, never pglz
