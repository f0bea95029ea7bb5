"""A real matcher process for tests: ``python manage.py run_matcher`` on the test database.

Fixtures (imported by tests/conftest.py, so every test directory can use them):

* ``matcher_factory`` — ``start(**env) -> MatcherProcess``; requires ``transactional_db`` (the
  subprocess must see committed rows). Create assets/markets/users first, then start: the matcher
  loads the listing at start-up (or call ``client.load_asset``/``load_market`` afterwards).
* ``matcher`` — ETH_USDT listed (the ``eth_usdt`` fixture), a matcher running, and
  ``settings.MATCHER_GRPC_ADDR`` pointing at it so ``matcher.client.get_client()`` talks to it.

Each matcher gets its own Kafka topic prefix (``MatcherProcess.topic_prefix``) so tests never
see each other's events. The process is stopped (SIGTERM, then SIGKILL) at the end of the test,
before the test database is flushed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from cryptgo.devservices import free_port

ROOT = Path(__file__).resolve().parents[2]


def database_url_for_tests() -> str:
    """DATABASE_URL of the database the tests use (pytest-django's ``test_<name>``)."""
    from django.db import connection

    sd = connection.settings_dict
    auth = quote(sd.get("USER") or "postgres", safe="")
    if sd.get("PASSWORD"):
        auth += ":" + quote(sd["PASSWORD"], safe="")
    return f"postgres://{auth}@{sd.get('HOST') or '127.0.0.1'}:{sd.get('PORT') or 5432}/{sd['NAME']}"


def ensure_fee_account() -> None:
    """User 0 comes from a data migration; a flush after a transactional test removes it."""
    from django.contrib.auth import get_user_model

    get_user_model().objects.get_or_create(
        id=0, defaults={"email": "fee-account@cryptgo.invalid", "is_active": False, "password": "!"})


class MatcherProcess:
    """One ``run_matcher`` subprocess; ``client`` is a ``MatcherClient`` bound to it."""

    def __init__(self, workdir: Path, extra_env: dict[str, str] | None = None) -> None:
        from matcher.client import MatcherClient

        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.topic_prefix = f"t{uuid.uuid4().hex[:10]}."
        self.workdir = workdir
        self.log_path = workdir / f"matcher-{self.port}.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "cryptgo.settings_test",
            "DATABASE_URL": database_url_for_tests(),
            "MATCHER_GRPC_ADDR": self.addr,
            "KAFKA_TOPIC_PREFIX": self.topic_prefix,
            "LOG_LEVEL": "INFO",
            **(extra_env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.client = MatcherClient(self.addr, timeout=20.0, retries=0)

    def start(self, timeout: float = 60.0) -> MatcherProcess:
        ready = self.workdir / f"ready-{self.port}-{self.starts}"
        self.starts += 1
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), "run_matcher", "--ready-file", str(ready)],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self.proc.poll() is not None:
                raise AssertionError(f"matcher exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"matcher not ready in {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, like a power cut of the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def restart(self) -> MatcherProcess:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        self.client.close()


@pytest.fixture
def matcher_factory(transactional_db, tmp_path) -> Iterator[Callable[..., MatcherProcess]]:
    started: list[MatcherProcess] = []

    def start(**extra_env: str) -> MatcherProcess:
        ensure_fee_account()
        mp = MatcherProcess(tmp_path, extra_env)
        started.append(mp)
        return mp.start()

    yield start
    for mp in started:
        mp.close()


@pytest.fixture
def matcher(matcher_factory, eth_usdt, settings) -> Iterator[MatcherProcess]:
    from matcher.client import reset_client

    mp = matcher_factory()
    settings.MATCHER_GRPC_ADDR = mp.addr
    reset_client()
    yield mp
    reset_client()
