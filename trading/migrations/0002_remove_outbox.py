# The matcher writes its events to matcher.EventOutbox and matcher.DepthOutbox
# (docs/adr/0006); this table was never written.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("trading", "0001_initial"),
    ]

    operations = [
        migrations.DeleteModel(
            name="Outbox",
        ),
    ]
