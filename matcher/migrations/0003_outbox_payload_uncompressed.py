"""The event outbox's payload is stored out of line but not compressed (STORAGE EXTERNAL).

Each batch's payload is one text of about 400 bytes per event; PostgreSQL compressed it with pglz
(this build has no lz4) inside the batch's statement, the single dearest part of a commit: 1-3 ms of
a 5-9 ms statement for ~30-80 commands, measured with auto_explain. Uncompressed it writes ~1.2 KB
more WAL per command (~12 MB/s at 10,000 commands/s), and bench/matcher_e2e.py went from 9,400-10,400
to 12,000-14,600 acknowledged commands/s (PostgreSQL 70 -> 39-51 us of CPU per command). The rows are
deleted a day after delivery (MATCHER_OUTBOX_KEEP_SECONDS), so the table stays small either way.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("matcher", "0002_event_outbox")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE matcher_eventoutbox ALTER COLUMN payload SET STORAGE EXTERNAL",
            "ALTER TABLE matcher_eventoutbox ALTER COLUMN payload SET STORAGE EXTENDED",
        ),
    ]
