"""Celery tasks for the wallets: thin wrappers that call a service and return a summary.

Beat runs them on the schedules in the admin (django-celery-beat; created by
migration 0002). Each service claims its rows with conditional UPDATEs, so two
workers running the same task at once never do the same step twice.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from celery import shared_task

from wallets import services


@shared_task(name="wallets.scan_blocks", ignore_result=True)
def scan_blocks() -> dict[str, Any]:
    return asdict(services.scan_blocks())


@shared_task(name="wallets.confirm_deposits", ignore_result=True)
def confirm_deposits() -> dict[str, Any]:
    return asdict(services.deposits_confirm())


@shared_task(name="wallets.sweep", ignore_result=True)
def sweep() -> dict[str, Any]:
    return asdict(services.sweep_run())


@shared_task(name="wallets.send_withdrawals", ignore_result=True)
def send_withdrawals() -> dict[str, Any]:
    return asdict(services.withdrawals_send())


@shared_task(name="wallets.track_withdrawals", ignore_result=True)
def track_withdrawals() -> dict[str, Any]:
    return asdict(services.withdrawals_track())


@shared_task(name="wallets.reconcile_withdrawals", ignore_result=True)
def reconcile_withdrawals() -> dict[str, int]:
    return services.withdrawals_reconcile()
