"""``manage.py run_outbox_relay``: deliver the outbox to Kafka from a process of its own."""

import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from matcher.service.relay import OutboxRelay
from matcher.service.state import conninfo


class Command(BaseCommand):
    help = "Deliver committed matcher events (matcher_eventoutbox, matcher_depthoutbox) to Kafka until SIGTERM."

    def handle(self, *args, **options):
        relay = OutboxRelay(conninfo(), settings.KAFKA_BOOTSTRAP_SERVERS, settings.KAFKA_TOPIC_PREFIX, idle_wait=0.1,
                            message_timeout_ms=settings.MATCHER_RELAY_TIMEOUT_MS,
                            keep_seconds=settings.MATCHER_OUTBOX_KEEP_SECONDS)

        def stop(signum, frame):
            relay.stopping.set()
            relay.wake.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        relay.run()
        self.stdout.write(f"outbox relay stopped after delivering {relay.delivered} messages")
