"""``manage.py run_marketdata``: keep klines, tickers, depth and recent deals in Redis from Kafka.

``--rebuild`` instead recomputes klines, tickers and recent deals from the
deals table (a progress bar on stderr) and fetches each book from the
matcher, then exits; run it while no consumer runs (it refuses otherwise,
unless ``--force``).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from markets import consumer


class Command(BaseCommand):
    help = "Consume deal and depth events from Kafka into Redis market data (or --rebuild it from PostgreSQL)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rebuild", action="store_true",
                            help="recompute market data from the deals table, then exit")
        parser.add_argument("--market", action="append", default=[],
                            help="with --rebuild: only this market (repeatable)")
        parser.add_argument("--force", action="store_true",
                            help="with --rebuild: even though a consumer's heartbeat is in Redis")
        parser.add_argument("--no-progress", action="store_true", help="with --rebuild: no progress bar")
        parser.add_argument("--group", default=None, help="Kafka consumer group (default MARKETDATA_KAFKA_GROUP)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["rebuild"]:
            self.rebuild(options)
            return
        stop = threading.Event()

        def on_signal(signum: int, frame: object) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.stdout.write("run_marketdata: consuming deals and depth", ending="\n")
        self.stdout.flush()
        consumer.run(stop, group_id=options["group"])
        self.stdout.write("run_marketdata: stopped")

    def rebuild(self, options: dict[str, Any]) -> None:
        md = consumer.MarketData()
        holder = consumer.consumer_running(md.r)
        if holder and not options["force"]:
            raise CommandError(f"a run_marketdata consumer is running ({holder}); stop it first or pass --force")
        try:
            result = md.rebuild(options["market"] or None, progress=not options["no_progress"])
        except ValueError as exc:  # unknown market, or a deal the market's precision cannot hold
            raise CommandError(str(exc)) from None
        missing = [m for m, ok in result["depth"].items() if not ok]
        self.stdout.write(f"rebuilt {len(result['markets'])} market(s) from {result['deals']} deal(s)")
        if missing:
            self.stderr.write(f"depth not refreshed (matcher unreachable) for: {', '.join(missing)}; "
                              "it stays as the consumer last wrote it")
