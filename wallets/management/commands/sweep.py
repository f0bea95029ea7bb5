"""``python manage.py sweep``: move deposit-address balances above the threshold to the hot wallet, now."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from wallets import services
from wallets.models import SWEEP_ACTIVE, Sweep


class Command(BaseCommand):
    help = "Plan sweeps for deposit addresses above each asset's threshold and push them forward."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--wait", type=int, default=0, metavar="SECONDS",
                            help="keep advancing until every sweep is confirmed or failed, at most this long")

    def handle(self, *args: Any, wait: int, **options: Any) -> None:
        if wait < 0:
            raise CommandError("--wait must be zero or more seconds")
        try:
            result = services.sweep_run()
        except Exception as exc:
            raise CommandError(f"sweep failed: {exc}") from exc
        deadline = time.monotonic() + wait
        while wait and Sweep.objects.filter(status__in=SWEEP_ACTIVE).exists() and time.monotonic() < deadline:
            time.sleep(1)
            step = services.sweeps_advance()
            result.confirmed += step.confirmed
            result.failed += step.failed
            result.errors += step.errors
        self.stdout.write(f"planned {len(result.planned)} sweep(s), confirmed {result.confirmed}, "
                          f"failed {result.failed}")
        for sweep in Sweep.objects.filter(pk__in=result.planned).select_related("asset", "address"):
            self.stdout.write(f"  #{sweep.pk} {sweep.amount} {sweep.asset.symbol} from {sweep.address.address}: "
                              f"{sweep.status} {sweep.tx_hash}")
        for error in result.errors:
            self.stderr.write(f"  error: {error}")
