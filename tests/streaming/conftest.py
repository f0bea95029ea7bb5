"""Fixtures for the websocket feed: a real ASGI server (uvicorn subprocess on 127.0.0.1), a real
websocket client (the ``websockets`` package), and run_stream_relay's loop in a thread."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connections
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from cryptgo.devservices import free_port
from cryptgo.launcher import web_command
from tests.marketdata import conftest as md_fixtures
from tests.matcher.fixtures import database_url_for_tests

# The market-data fixtures, shared: Redis keyspace, per-test topics, a contract-(C) producer, run_marketdata.
md_redis = md_fixtures.md_redis
topics = md_fixtures.topics
events = md_fixtures.events
run_marketdata = md_fixtures.run_marketdata

ROOT = Path(__file__).resolve().parents[2]


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log
        self.url = f"ws://127.0.0.1:{port}/ws/"

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_server(log_dir: Path, **env: str) -> Server:
    """uvicorn serving cryptgo.asgi on the test database, with the current Redis/Kafka/matcher settings.

    The launcher's web command (one worker).
    """
    port = free_port()
    log = log_dir / f"uvicorn-{port}.log"
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cryptgo.settings_test",
        "DATABASE_URL": database_url_for_tests(),
        "REDIS_URL": django_settings.REDIS_URL,
        "KAFKA_BOOTSTRAP_SERVERS": django_settings.KAFKA_BOOTSTRAP_SERVERS,
        "MATCHER_GRPC_ADDR": django_settings.MATCHER_GRPC_ADDR,
        "LOG_LEVEL": "WARNING",
        **env,
    }
    with open(log, "ab") as out:
        proc = subprocess.Popen(web_command(port, extra=("--log-level", "warning")), cwd=ROOT, env=full_env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Server(proc, port, log)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"uvicorn exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise AssertionError(f"uvicorn did not listen:\n{server.log_tail()}") from None
            time.sleep(0.1)


@pytest.fixture
def ws_server_factory(transactional_db, tmp_path) -> Iterator[Callable[..., Server]]:
    """``start(**env)``: a uvicorn for this test (WS_* limits in ``env``); stopped at the end of the test."""
    servers: list[Server] = []

    def start(**env: str) -> Server:
        server = start_server(tmp_path, **env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def shared_ws_server(django_db_setup, tmp_path_factory) -> Iterator[Server]:
    """One server for the tests that need no special limits and no matcher (starting one takes seconds)."""
    server = start_server(tmp_path_factory.mktemp("ws"))
    yield server
    server.stop()


@pytest.fixture
def ws_server(shared_ws_server, transactional_db) -> Server:
    return shared_ws_server


class Client:
    """A websocket client speaking the protocol: ``call`` waits for its reply and keeps pushes aside."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self._stack = contextlib.ExitStack()
        self.ws: ClientConnection = self._stack.enter_context(connect(url, open_timeout=10, **kwargs))
        self.ids = itertools.count(1)
        self.pushes: list[dict[str, Any]] = []

    def send(self, payload: Any) -> None:
        self.ws.send(payload if isinstance(payload, str | bytes) else json.dumps(payload))

    def recv(self, timeout: float = 15.0) -> dict[str, Any]:
        return json.loads(self.ws.recv(timeout))

    def reply_to(self, rid: Any, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.01, deadline - time.monotonic()))
            if msg.get("method"):
                self.pushes.append(msg)
            elif msg.get("id") == rid:
                return msg

    def call(self, method: str, *params: Any) -> dict[str, Any]:
        rid = next(self.ids)
        self.send({"id": rid, "method": method, "params": list(params)})
        return self.reply_to(rid)

    def result(self, method: str, *params: Any) -> Any:
        msg = self.call(method, *params)
        assert msg["error"] is None, msg
        return msg["result"]

    def push(self, method: str | None = None, timeout: float = 15.0,
             where: Callable[[dict[str, Any]], bool] = lambda m: True) -> dict[str, Any]:
        """The next push (of ``method``), from those set aside first."""
        for i, msg in enumerate(self.pushes):
            if (method is None or msg["method"] == method) and where(msg):
                return self.pushes.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.01, deadline - time.monotonic()))
            if msg.get("method") and (method is None or msg["method"] == method) and where(msg):
                return msg
            self.pushes.append(msg)

    def drain(self, quiet: float = 0.5) -> list[dict[str, Any]]:
        """Everything that arrives until nothing has for ``quiet`` seconds (what must NOT arrive is checked so)."""
        got = list(self.pushes)
        self.pushes.clear()
        while True:
            try:
                got.append(self.recv(quiet))
            except TimeoutError:
                return got

    def close_code(self, timeout: float = 30.0) -> int | None:
        """Read until the server closes; the close code it sent."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.ws.recv(max(0.01, deadline - time.monotonic()))
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None
        except TimeoutError:
            pass
        raise AssertionError("the server did not close the connection")

    def close(self) -> None:
        self._stack.close()


@pytest.fixture
def ws_client(ws_server) -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def make(server=None, **kwargs: Any) -> Client:
        client = Client((server or ws_server).url, **kwargs)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def run_relay(topics) -> Iterator[Callable[[], None]]:
    """Start run_stream_relay's loop in a thread (it reads from the earliest offset, so no waiting needed)."""
    from streaming import relay

    started: list[tuple[threading.Thread, threading.Event, list[BaseException]]] = []

    def start() -> None:
        stop = threading.Event()
        errors: list[BaseException] = []

        def target() -> None:
            try:
                relay.run(stop, group_id=f"relay-{uuid.uuid4().hex[:8]}", poll_seconds=0.1)
            except BaseException as exc:
                errors.append(exc)
            finally:
                connections.close_all()

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        started.append((thread, stop, errors))

    yield start
    for thread, stop, errors in started:
        stop.set()
        thread.join(30)
        assert not errors, errors
