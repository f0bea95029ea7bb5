"""The developer launcher: local services, migrations, demo data, and every process.

``python -m cryptgo.launcher`` (what ``python3 dev.py run`` ends in) starts a
local PostgreSQL, Redis and Kafka-protocol broker for each URL that is not set,
migrates, seeds the demo once, then runs the exchange's processes and restarts
any that dies, until Ctrl-C or SIGTERM, which stop everything it started.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cryptgo.devservices import HOST, LocalServices, free_port

BASE_DIR = Path(__file__).resolve().parent.parent
PREFERRED_PORTS = {"postgres": 54329, "redis": 63799, "kafka": 19092, "anvil": 8545}
#: Where the hot wallet's mnemonic comes from: given to the signing Celery worker and to no other process.
SIGNER_ENV = ("HOT_WALLET_MNEMONIC", "HOT_WALLET_MNEMONIC_FILE")


def without_signer_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` less the mnemonic's variables: what every process but the signer gets (web holds the xpub only)."""
    return {k: v for k, v in env.items() if k not in SIGNER_ENV}


@dataclass
class Proc:
    """One supervised process of the exchange."""

    name: str
    argv: list[str]
    signer: bool = False  # True only for the Celery worker, which signs and so reads the mnemonic
    popen: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        return dict(env) if self.signer else without_signer_env(env)

    def start(self, env: dict[str, str], log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"{self.name}.log", "ab") as log:
            self.popen = subprocess.Popen(self.argv, env=self.environment(env), cwd=BASE_DIR, stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True)

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


def web_command(port: int | str, *, host: str = HOST, workers: int = 1, extra: tuple[str, ...] = ()) -> list[str]:
    """The web server's command line, one for the launcher, the tests and the benchmarks.

    uvicorn, not daphne: its websocket send waits while a client does not read,
    which is how the feed notices a slow client and cuts it off (ADR 0005). The
    launcher runs one worker per CPU: the API's hot paths run on each worker's
    event loop (cryptgo/fastpath.py), so one process uses one core at most (ADR 0007).
    No per-message deflate: compressing each small push for each subscriber was
    the largest single cost of a fan-out to 1,000 subscribers (ADR 0005).
    """
    return [sys.executable, "-m", "uvicorn", "cryptgo.asgi:application", "--host", host, "--port", str(port),
            "--workers", str(workers), "--ws", "websockets-sansio", "--ws-max-size", "65536",
            "--ws-per-message-deflate", "false", "--lifespan", "off", *extra]


def exchange_processes(env: dict[str, str]) -> list[Proc]:
    """The processes of the exchange, in start order. Each later capability adds its own here."""
    py = sys.executable
    web_port = env["WEB_PORT"]
    return [
        # the matcher first: the web tier's writes go through it; its outbox relay runs beside it (in the
        # matcher's process the relay's rounds held the GIL the batching loop needs: docs/matcher.md)
        Proc("matcher", [py, str(BASE_DIR / "manage.py"), "run_matcher", "--no-relay"]),
        Proc("outbox-relay", [py, str(BASE_DIR / "manage.py"), "run_outbox_relay"]),
        Proc("web", web_command(web_port, workers=int(env.get("WEB_WORKERS") or os.cpu_count() or 1))),
        # market data into Redis (and public websocket pushes); private pushes per user
        Proc("marketdata", [py, str(BASE_DIR / "manage.py"), "run_marketdata"]),
        Proc("stream-relay", [py, str(BASE_DIR / "manage.py"), "run_stream_relay"]),
    ] + wallet_processes(env)


def wallet_processes(env: dict[str, str]) -> list[Proc]:
    """Celery worker and beat for the wallets, only when there is a chain to talk to."""
    if not env.get("ETH_RPC_URL"):
        return []
    celery = [sys.executable, "-m", "celery", "-A", "cryptgo"]
    return [
        Proc("celery-worker", [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2"], signer=True),
        Proc("celery-beat", [*celery, "beat", "--loglevel", "INFO",
                             "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"]),
    ]


def secret_key(var_dir: Path) -> str:
    """A stable random key kept under var/, so sessions survive restarts of the launcher."""
    path = var_dir / "secret_key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *args], env=without_signer_env(env), cwd=BASE_DIR,
                   check=True)


class Stop(Exception):
    pass


def _raise_stop(signum, frame):
    raise Stop()


def run(var_dir: Path, web_port: int | None = None) -> int:
    var_dir = var_dir.resolve()
    # Anvil mines a block every 2 s so confirmations advance, and keeps its chain under var/anvil/.
    services = LocalServices(var_dir, anvil_options={"block_time": 2, "persist": True})
    procs: list[Proc] = []
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        env = {**os.environ, **services.start_missing(preferred_ports=PREFERRED_PORTS)}
        env.setdefault("DJANGO_SETTINGS_MODULE", "cryptgo.settings")
        if not env.get("SECRET_KEY") and not env.get("SECRET_KEY_FILE"):
            env["SECRET_KEY"] = secret_key(var_dir)
        port = web_port or free_port(int(env.get("WEB_PORT") or 8000))
        env["WEB_PORT"] = str(port)
        if not env.get("MATCHER_GRPC_ADDR"):
            env["MATCHER_GRPC_ADDR"] = f"{HOST}:{free_port(50051)}"
        manage(env, "migrate", "--noinput", "-v", "0")
        manage(env, "collectstatic", "--noinput", "-v", "0")
        manage(env, "seed_demo")
        if env.get("ETH_RPC_URL"):
            from wallets.devchain import wallet_env

            env.update(wallet_env(var_dir, env))
            manage(env, "dev_chain")
        procs = exchange_processes(env)
        for proc in procs:
            proc.start(env, var_dir / "logs")
        print(f"CryptGO is up: admin at http://{HOST}:{port}/admin/  health at http://{HOST}:{port}/healthz",
              flush=True)
        print(f"logs under {var_dir / 'logs'}; press Ctrl-C to stop everything", flush=True)
        while True:
            time.sleep(0.5)
            for proc in procs:
                _supervise(proc, env, var_dir / "logs")
    except Stop:
        print("stopping…", flush=True)
        return 0
    except subprocess.CalledProcessError as exc:
        print(f"launcher: {' '.join(map(str, exc.cmd))} failed with exit code {exc.returncode}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for proc in reversed(procs):
            proc.stop()
        services.stop()


def _supervise(proc: Proc, env: dict[str, str], log_dir: Path) -> None:
    """Restart a process that died, backing off so a crash loop does not spin."""
    if proc.popen is None or proc.popen.poll() is None:
        return
    now = time.monotonic()
    if proc.next_start == 0.0:
        delay = min(30.0, 2.0 ** min(proc.restarts, 5))
        proc.next_start = now + delay
        print(f"{proc.name} exited with code {proc.popen.returncode}; restarting in {delay:.0f}s "
              f"(see {log_dir / (proc.name + '.log')})", flush=True)
    elif now >= proc.next_start:
        proc.restarts += 1
        proc.next_start = 0.0
        proc.start(env, log_dir)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--var-dir", type=Path, default=BASE_DIR / "var", help="data and logs (default: var/)")
    parser.add_argument("--port", type=int, default=None, help="web port (default 8000, or a free one)")
    args = parser.parse_args(argv)
    return run(args.var_dir, args.port)


if __name__ == "__main__":
    raise SystemExit(main())
