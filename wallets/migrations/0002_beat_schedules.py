"""The wallets' Celery beat schedules, as rows operators can edit in the admin (django-celery-beat)."""

from django.db import migrations

SCHEDULES = [
    # (task name, every N seconds, description)
    ("wallets.scan_blocks", 5, "Scan new blocks for deposits (ETH, internal transfers, ERC-20 logs)"),
    ("wallets.confirm_deposits", 5, "Count confirmations, orphan reorged deposits, credit through the matcher"),
    ("wallets.send_withdrawals", 5, "Sign approved withdrawals with managed nonces and broadcast"),
    ("wallets.track_withdrawals", 10, "Follow withdrawals to N confirmations; refund failed ones"),
    ("wallets.reconcile_withdrawals", 60, "Retry debits in doubt and refunds owed after a matcher outage"),
    ("wallets.sweep", 60, "Sweep deposit addresses above the threshold to the hot wallet"),
]


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for task, seconds, description in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.get_or_create(name=task, defaults={"task": task, "interval": interval,
                                                                "description": description, "enabled": True,
                                                                "expire_seconds": seconds * 2})


def remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[s[0] for s in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("wallets", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
