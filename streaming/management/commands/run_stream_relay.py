"""``manage.py run_stream_relay``: order and balance events from Kafka to each user's websocket group."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from streaming import relay


class Command(BaseCommand):
    help = "Relay the matcher's order and balance events from Kafka to the websocket feed's per-user groups."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--group", default=None, help="Kafka consumer group (default STREAM_RELAY_KAFKA_GROUP)")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()

        def on_signal(signum: int, frame: object) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

        def ready() -> None:
            self.stdout.write("run_stream_relay: partitions assigned, relaying")
            self.stdout.flush()

        self.stdout.write("run_stream_relay: starting")
        self.stdout.flush()
        relay.run(stop, group_id=options["group"], on_assign=ready)
        self.stdout.write("run_stream_relay: stopped")
