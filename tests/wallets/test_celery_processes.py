"""The wallets run by real Celery processes, as the launcher starts them: beat reads the schedules from the
database (an operator sped them up in the admin's table), the worker runs the tasks against Anvil and the
matcher. A deposit is credited and an auto-approved withdrawal is confirmed without the test calling a task."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from decimal import Decimal
from importlib import import_module
from pathlib import Path

import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from cryptgo.launcher import wallet_processes
from tests.matcher.fixtures import database_url_for_tests
from wallets import services
from wallets.models import AssetPolicy, Withdrawal, WithdrawalStatus

from .conftest import ETH, TEST_MNEMONIC, TEST_XPUB, balance, new_account

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def _wait(predicate, anvil, timeout: float = 90.0) -> bool:
    """Mine a block a second (the test's Anvil only mines on transactions) until ``predicate`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        anvil.mine(1)
        time.sleep(1)
    return False


def test_celery_worker_and_beat_credit_a_deposit_and_send_a_withdrawal(anvil, wallet_matcher, alice, eth_asset,
                                                                        tmp_path):
    # the migration's schedule rows: gone if an earlier transactional test flushed the tables
    import_module("wallets.migrations.0002_beat_schedules").create(django_apps, None)
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(task__startswith="wallets.").update(interval=every_second)
    AssetPolicy.objects.create(asset=eth_asset, auto_approve_below=Decimal("10"))
    address = services.deposit_address_for(alice).address
    redis = settings.REDIS_URL.rsplit("/", 1)[0] + "/7"  # a database of its own: no other test's keys
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "cryptgo.settings_test", "DATABASE_URL": database_url_for_tests(),
           "CELERY_BROKER_URL": redis, "REDIS_URL": settings.REDIS_URL, "ETH_RPC_URL": anvil.w3.provider.endpoint_uri,
           "HOT_WALLET_XPUB": TEST_XPUB, "HOT_WALLET_MNEMONIC": TEST_MNEMONIC, "MATCHER_GRPC_ADDR": wallet_matcher.addr,
           "WALLET_START_BLOCK": settings.WALLET_START_BLOCK, "LOG_LEVEL": "INFO"}
    env.pop("HOT_WALLET_MNEMONIC_FILE", None)
    procs = wallet_processes(env)
    assert [p.name for p in procs] == ["celery-worker", "celery-beat"]
    running: list[tuple[str, subprocess.Popen[bytes], Path]] = []
    try:
        for proc in procs:
            argv = [*proc.argv, "--pool", "solo"] if proc.name == "celery-worker" else proc.argv
            log = tmp_path / f"{proc.name}.log"
            with open(log, "wb") as out:
                popen = subprocess.Popen(argv, env=proc.environment(env), cwd=ROOT, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            running.append((proc.name, popen, log))

        anvil.send_eth(address, 3 * ETH)
        credited = _wait(lambda: balance(wallet_matcher, alice, "ETH") == (Decimal(3), Decimal(0)), anvil)
        assert credited, "\n".join(f"--- {n}\n{p.read_text()[-3000:]}" for n, _, p in running)

        dest = new_account().address
        w = services.withdrawal_request(user=alice, asset="ETH", address=dest, amount="1")
        assert w.status == WithdrawalStatus.APPROVED  # below auto_approve_below: no operator needed
        confirmed = _wait(lambda: Withdrawal.objects.get(pk=w.pk).status == WithdrawalStatus.CONFIRMED, anvil)
        assert confirmed, "\n".join(f"--- {n}\n{p.read_text()[-3000:]}" for n, _, p in running)
        assert anvil.eth_balance(dest) == ETH
        assert balance(wallet_matcher, alice, "ETH") == (Decimal("1.999"), Decimal(0))
    finally:
        for _, popen, _ in running:
            if popen.poll() is None:
                os.killpg(popen.pid, signal.SIGTERM)
        for _, popen, _ in running:
            try:
                popen.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(popen.pid, signal.SIGKILL)
                popen.wait(5)
