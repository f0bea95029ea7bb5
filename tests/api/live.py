"""The API served the production way for tests: a uvicorn (ASGI) subprocess on a free 127.0.0.1 port.

It uses the test database (so tests must use ``transactional_db``; the
``matcher`` fixture does), the test's matcher and Redis, and is stopped when
the test ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings

from cryptgo.devservices import free_port, wait_for_port
from tests.matcher.fixtures import database_url_for_tests

ROOT = Path(__file__).resolve().parents[2]


class LiveApi:
    def __init__(self, workdir: Path, matcher_addr: str, workers: int = 1, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"uvicorn-{self.port}.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "cryptgo.settings_test",
            "DATABASE_URL": database_url_for_tests(),
            "REDIS_URL": settings.REDIS_URL,
            "MATCHER_GRPC_ADDR": matcher_addr,
            "API_THROTTLE_USER_RATE": "off",
            "API_THROTTLE_IP_RATE": "off",
            "API_THROTTLE_LOGIN_RATE": "off",
            "LOG_LEVEL": "WARNING",
            **env,
        }
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LiveApi:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "cryptgo.asgi:application", "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", str(self.workers), "--no-access-log",
                 "--log-level", "warning"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_for_port(self.port, self.proc, "uvicorn", timeout=60)  # type: ignore[arg-type]
        except Exception as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None
        return self

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def wait_until(predicate: Any, timeout: float = 10.0) -> Any:
    """Poll ``predicate`` (bounded) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)
