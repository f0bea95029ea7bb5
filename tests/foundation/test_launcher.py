"""The launcher starts its own PostgreSQL, Redis and Kafka, serves /healthz, and leaves nothing behind."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from cryptgo.devservices import free_port

ROOT = Path(__file__).resolve().parents[2]
UNSET = {"DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "CELERY_BROKER_URL", "SECRET_KEY",
         "DJANGO_SETTINGS_MODULE", "MATCHER_GRPC_ADDR"}


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def wait_line(proc: subprocess.Popen, needle: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"launcher never printed {needle!r}; output:\n{''.join(lines)}")


@pytest.mark.slow
def test_launcher_starts_services_and_stops_everything(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    proc = subprocess.Popen([sys.executable, "-m", "cryptgo.launcher", "--var-dir", str(tmp_path), "--port",
                             str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    children: list[psutil.Process] = []
    try:
        lines = wait_line(proc, "CryptGO is up", timeout=180)
        output = "".join(lines)
        for name in ("postgres", "redis", "kafka"):
            assert f"started local {name}" in output
        assert "password:" in output  # the operator's password, printed once
        body, status = None, None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
                    status, body = resp.status, json.loads(resp.read())
                break
            except OSError:
                time.sleep(0.2)
        assert status == 200, body
        assert {k: v["status"] for k, v in body["checks"].items()} == {
            "postgres": "up", "redis": "up", "kafka": "up"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=5) as resp:
            assert resp.status == 200
        children = descendants(proc.pid)
        assert len(children) >= 4  # postgres (and its workers), redis, tansu, the web server
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    gone, alive = psutil.wait_procs(children, timeout=20)
    assert alive == [], f"left running: {[p.pid for p in alive]}"


def test_devservices_stops_its_services_on_sigterm(tmp_path):
    """A CI timeout or a supervisor ends the test command with SIGTERM: the services it started must go too.

    They run in sessions of their own, so only the wrapper can stop them.
    """
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # the rest stays as configured
    redis_pids: list[int] = []
    proc = subprocess.Popen([sys.executable, "-m", "cryptgo.devservices", str(tmp_path), "--", "sleep", "120"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = wait_line(proc, "started local redis", 60)
        assert any("started local redis" in line for line in lines), "".join(lines)
        redis_port = int(lines[-1].split("redis://127.0.0.1:", 1)[1].split("/", 1)[0])
        redis_pids = [c.pid for c in psutil.net_connections("tcp")
                      if c.status == psutil.CONN_LISTEN and c.laddr.port == redis_port and c.pid]
        assert redis_pids
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        deadline = time.monotonic() + 20
        while any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in redis_pids):
            assert time.monotonic() < deadline, "redis-server outlived its devservices wrapper"
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in redis_pids:  # when the test fails: leave nothing behind anyway
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGKILL)
