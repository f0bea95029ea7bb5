"""``/healthz``: each dependency up or down, 200 when all are up, 503 otherwise.

Each probe has a short timeout so a dead dependency makes the check slow by at
most that much, not hang the load balancer's request.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from urllib.parse import urlparse

from django.conf import settings
from django.db import connection
from django.http import JsonResponse


def _postgres() -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT 1")


def _redis() -> None:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=settings.HEALTHZ_TIMEOUT_SECONDS,
                                  socket_connect_timeout=settings.HEALTHZ_TIMEOUT_SECONDS)
    try:
        client.ping()
    finally:
        client.close()


def _kafka() -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "socket.timeout.ms": 1000,
                         "logger": _quiet_logger()})
    admin.list_topics(timeout=settings.HEALTHZ_TIMEOUT_SECONDS)


def _quiet_logger():
    import logging

    logger = logging.getLogger("cryptgo.healthz.kafka")
    logger.setLevel(logging.CRITICAL)
    return logger


def tcp_probe(addr: str) -> Callable[[], None]:
    """A dependency is up when its port accepts a connection (used for gRPC and JSON-RPC)."""

    def probe() -> None:
        parsed = urlparse(addr if "://" in addr else f"tcp://{addr}")
        with socket.create_connection((parsed.hostname, parsed.port), timeout=settings.HEALTHZ_TIMEOUT_SECONDS):
            pass

    return probe


CHECKS: dict[str, Callable[[], None]] = {"postgres": _postgres, "redis": _redis, "kafka": _kafka}


def healthz(request):
    report: dict[str, dict[str, str]] = {}
    for name, probe in CHECKS.items():
        try:
            probe()
            report[name] = {"status": "up"}
        except Exception as exc:  # any failure means down; the reason helps the operator
            report[name] = {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    ok = all(item["status"] == "up" for item in report.values())
    return JsonResponse({"status": "up" if ok else "down", "checks": report}, status=200 if ok else 503)
