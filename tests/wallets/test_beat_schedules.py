"""The wallets' beat schedules are django-celery-beat rows: created by migration, each naming a task the
Celery app really has, and editable by an operator in the admin (which beat's DatabaseScheduler follows)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

WALLET_TASKS = {"wallets.scan_blocks", "wallets.confirm_deposits", "wallets.send_withdrawals",
                "wallets.track_withdrawals", "wallets.reconcile_withdrawals", "wallets.sweep"}

pytestmark = pytest.mark.django_db


def test_every_wallet_task_has_an_enabled_schedule_that_celery_can_run():
    from cryptgo.celery import app

    app.loader.import_default_modules()  # what the worker does at start: autodiscover tasks.py
    rows = {t.task: t for t in PeriodicTask.objects.filter(task__startswith="wallets.")}

    assert set(rows) == WALLET_TASKS
    assert all(t.enabled and t.interval is not None and t.interval.every > 0 for t in rows.values())
    assert set(app.tasks) >= WALLET_TASKS
    # Each schedule calls its task with no arguments, as the task bodies expect.
    assert {(t.args, t.kwargs) for t in rows.values()} == {("[]", "{}")}


def test_an_operator_edits_a_schedule_in_the_admin(client, operator):
    client.force_login(operator)
    task = PeriodicTask.objects.get(task="wallets.sweep")
    url = reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])
    page = client.get(url)
    assert page.status_code == 200 and b'name="_save"' in page.content
    form = page.context["adminform"].form
    hourly = IntervalSchedule.objects.create(every=3600, period=IntervalSchedule.SECONDS)
    data = {name: form.initial.get(name, field.initial) for name, field in form.fields.items()}
    data = {k: v for k, v in data.items() if v is not None and v is not False}
    data.update({"interval": hourly.pk, "enabled": "", "_save": "Save"})  # every hour, and paused
    before = PeriodicTasks.last_change()

    response = client.post(url, data)

    assert response.status_code == 302, page.context["adminform"].form.errors or response.content[:2000]
    task.refresh_from_db()
    assert (task.interval_id, task.enabled) == (hourly.pk, False)
    assert PeriodicTasks.last_change() != before  # beat reloads its schedule from this marker
