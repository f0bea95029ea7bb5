"""``manage.py replay_oplog``: rebuild the engine from the operation log and compare it with the tables."""

import psycopg
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from matcher.service.replay import replay
from matcher.service.state import conninfo


class Command(BaseCommand):
    help = ("Replay trading_operation (from the beginning or a stored snapshot), compare balances, open orders, "
            "orders, deals and conservation with the tables; exit 1 on any difference.")

    def add_arguments(self, parser):
        parser.add_argument("--from-snapshot", default=None, metavar="latest|ID",
                            help="start from a matcher_snapshot row instead of the beginning")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, from_snapshot, no_progress, **options):
        bar = tqdm(unit="op", disable=no_progress, desc="replaying", dynamic_ncols=True, mininterval=0.5)

        def on_total(n: int) -> None:
            bar.total = n
            bar.refresh()

        try:
            with psycopg.connect(conninfo()) as conn:
                report = replay(conn, snapshot=from_snapshot, progress=bar.update, on_total=on_total)
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        start = f"snapshot {report.snapshot_id} (after op {report.start_op})" if report.snapshot_id else "the beginning"
        self.stdout.write(f"replayed {report.ops} operations from {start}: {report.deals} deals, "
                          f"{report.orders} orders compared")
        if report.ok:
            self.stdout.write("OK: the operation log and the tables agree")
            return
        for line in report.differences:
            self.stdout.write(f"DIFFERENCE: {line}")
        raise CommandError(f"{len(report.differences)} difference(s) between the operation log and the tables")
