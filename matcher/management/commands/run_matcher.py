"""``manage.py run_matcher``: the single writer of balances, orders and deals (see docs/matcher.md)."""

import asyncio
import os

from django.conf import settings
from django.core.management.base import BaseCommand

from matcher.service.server import serve
from matcher.service.state import conninfo


class Command(BaseCommand):
    help = "Serve the matcher over gRPC on MATCHER_GRPC_ADDR until SIGTERM (also runs the outbox relay)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default=settings.MATCHER_GRPC_ADDR, help="host:port to serve on")
        parser.add_argument("--no-relay", action="store_true",
                            help="do not deliver the outbox to Kafka here (run_outbox_relay does it)")
        parser.add_argument("--ready-file", default=None, help="write the address here once serving")

    def handle(self, *args, addr: str, no_relay: bool, ready_file: str | None, **options):
        relay = settings.MATCHER_OUTBOX_RELAY and not no_relay
        code = asyncio.run(serve(
            addr, conninfo(),
            kafka=settings.KAFKA_BOOTSTRAP_SERVERS if relay else None,
            topic_prefix=settings.KAFKA_TOPIC_PREFIX,
            batch_max=settings.MATCHER_BATCH_MAX,
            snapshot_every_ops=settings.MATCHER_SNAPSHOT_EVERY_OPS,
            ready_file=ready_file,
            relay_timeout_ms=settings.MATCHER_RELAY_TIMEOUT_MS,
            outbox_keep_seconds=settings.MATCHER_OUTBOX_KEEP_SECONDS,
            profile=os.environ.get("MATCHER_PROFILE", ""),  # development aid: cProfile output prefix
        ))
        if code:
            raise SystemExit(code)
