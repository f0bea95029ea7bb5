"""Benchmark of the client API over HTTP (prints figures; not a test).

Starts everything the way production runs it: ``manage.py run_matcher`` and
``uvicorn cryptgo.asgi:application --workers N`` as subprocesses on free
127.0.0.1 ports, against the PostgreSQL, Redis and Kafka given by the
environment (run it under the local services wrapper). It migrates, seeds the
demo listing, funds bench users through the matcher client, then drives
``--concurrency`` keep-alive HTTP clients (aiohttp) for two bounded phases:

1. placing limit orders on ETH_USDT (JWT auth; random buy/sell around 2000,
   so some cross and trade), ``POST /api/v1/orders``;
2. reading the book, ``GET /api/v1/markets/ETH_USDT/depth?limit=20`` (from Redis, kept by
   ``run_marketdata`` which the bench also starts, unless ``--no-marketdata``).

    python -m cryptgo.devservices /tmp/bench-svc -- python bench/api.py [--seconds 10] [--concurrency 64]
        [--workers 2] [--users 16]

Prints, each on its own line: ``orders_per_sec=``, ``orders_p99_ms=``,
``depth_reads_per_sec=``, ``depth_p99_ms=`` (and the refused/failed counts), then
the CPU microseconds per request of each phase spent in the web workers, the
matcher, ``run_marketdata`` and the load generator (load-independent, unlike the
rates on a shared machine).
Throttling is switched off for the bench server; the load generator, the web
workers and the matcher share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptgo.settings_test")


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


async def run_phase(name: str, seconds: float, concurrency: int, make_request: Any) -> dict[str, Any]:
    """Run ``concurrency`` workers for ``seconds``; each loops ``make_request(session, i)`` (bounded by time)."""
    import aiohttp

    latencies: list[float] = []
    counts = {"ok": 0, "refused": 0, "failed": 0}
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker(w: int) -> None:
            i = 0
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                try:
                    status = await make_request(session, w, i)
                except (TimeoutError, aiohttp.ClientError):
                    counts["failed"] += 1
                    continue
                finally:
                    i += 1
                elapsed = time.perf_counter() - t0
                if status < 300:
                    counts["ok"] += 1
                    latencies.append(elapsed)
                elif status < 500:
                    counts["refused"] += 1
                else:
                    counts["failed"] += 1

        t0 = time.monotonic()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        elapsed = time.monotonic() - t0
    return {"name": name, "elapsed": elapsed, "latencies": latencies, **counts}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each phase")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent HTTP clients")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--users", type=int, default=16, help="bench accounts placing orders")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-marketdata", action="store_true",
                        help="do not run run_marketdata: depth is then read from the matcher over gRPC")
    args = parser.parse_args()
    if not 0 < args.seconds <= 120 or not 0 < args.concurrency <= 512:
        parser.error("--seconds must be in (0, 120] and --concurrency in (0, 512]")

    from cryptgo.devservices import free_port, wait_for_port

    workdir = Path(tempfile.mkdtemp(prefix="cryptgo-bench-api-"))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"],
           "API_THROTTLE_USER_RATE": "off", "API_THROTTLE_IP_RATE": "off", "LOG_LEVEL": "WARNING",
           "MARKET_DATA_SOURCE": os.environ.get("MARKET_DATA_SOURCE", "auto"),
           # production runs the web tier with a connection pool (README: DB_POOL_MAX_SIZE)
           "DB_POOL_MAX_SIZE": os.environ.get("DB_POOL_MAX_SIZE", "16")}
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([py, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)

    matcher_addr = f"127.0.0.1:{free_port()}"
    env["MATCHER_GRPC_ADDR"] = matcher_addr
    os.environ["MATCHER_GRPC_ADDR"] = matcher_addr
    ready = workdir / "matcher.ready"
    matcher = start([py, "manage.py", "run_matcher", "--ready-file", str(ready)], env, workdir / "matcher.log")
    web_port = free_port()
    web = None
    marketdata = None
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            if matcher.poll() is not None or time.monotonic() > deadline:
                print((workdir / "matcher.log").read_text()[-3000:], file=sys.stderr)
                raise SystemExit("matcher did not start")
            time.sleep(0.1)
        if not args.no_marketdata:
            marketdata = start([py, "manage.py", "run_marketdata"], env, workdir / "marketdata.log")
        web = start([py, "-m", "uvicorn", "cryptgo.asgi:application", "--host", "127.0.0.1", "--port",
                     str(web_port), "--workers", str(args.workers), "--no-access-log", "--log-level", "warning"],
                    env, workdir / "web.log")
        wait_for_port(web_port, web, "uvicorn", timeout=120)

        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from rest_framework_simplejwt.tokens import RefreshToken

        from matcher.client import get_client

        client = get_client()
        run_id = f"{int(time.time())}-{os.getpid()}"
        tokens = []
        for n in range(args.users):
            user, _ = get_user_model().objects.get_or_create(email=f"bench{n}@bench.invalid")
            client.update_balance(user.pk, "USDT", "bench", f"usdt-{run_id}-{n}", "1000000000")
            client.update_balance(user.pk, "ETH", "bench", f"eth-{run_id}-{n}", "1000000")
            tokens.append(str(RefreshToken.for_user(user).access_token))

        if marketdata is not None:
            from markets import marketdata as md

            deadline = time.monotonic() + 60
            while not md.redis_client().exists(md.HEARTBEAT_KEY):
                if marketdata.poll() is not None or time.monotonic() > deadline:
                    log = (workdir / "marketdata.log").read_text()[-2000:]
                    raise SystemExit(f"run_marketdata did not start: {log}")
                time.sleep(0.2)
        base = f"http://127.0.0.1:{web_port}"
        rng = random.Random(args.seed)
        orders = [{"market": "ETH_USDT", "side": rng.choice(("buy", "sell")), "type": "limit",
                   "price": f"{rng.randint(195000, 205000) / 100:.2f}", "amount": f"{rng.randint(1, 500) / 1000:.3f}"}
                  for _ in range(4096)]

        async def place(session: Any, w: int, i: int) -> int:
            headers = {"Authorization": f"Bearer {tokens[w % len(tokens)]}"}
            async with session.post(f"{base}/api/v1/orders", json=orders[(w * 7919 + i) % len(orders)],
                                    headers=headers) as r:
                await r.read()
                return r.status

        async def read_depth(session: Any, w: int, i: int) -> int:
            async with session.get(f"{base}/api/v1/markets/ETH_USDT/depth?limit=20") as r:
                await r.read()
                return r.status

        from bench.scratch import children, cpu_of, pct

        def cpu() -> dict[str, float]:
            """CPU seconds so far of the web workers, the matcher, run_marketdata and this load generator."""
            workers = [web.pid, *children(web.pid)]
            return {"web": cpu_of(workers), "matcher": cpu_of([matcher.pid]),
                    "marketdata": cpu_of([marketdata.pid]) if marketdata is not None else 0.0,
                    "client": time.process_time()}

        async def phases() -> list[dict[str, Any]]:
            warm = await run_phase("warmup", 1.0, 8, read_depth)
            del warm
            out = []
            for name, request in (("orders", place), ("depth", read_depth)):
                before = cpu()
                phase = await run_phase(name, args.seconds, args.concurrency, request)
                after = cpu()
                phase["cpu"] = {k: after[k] - before[k] for k in before}
                phase["load"] = os.getloadavg()[0]
                out.append(phase)
            return out

        placed, depth = asyncio.run(phases())
        print(f"orders_per_sec={placed['ok'] / placed['elapsed']:.1f}")
        print(f"orders_p99_ms={pct(placed['latencies'], 99) * 1000:.1f}")
        print(f"depth_reads_per_sec={depth['ok'] / depth['elapsed']:.1f}")
        print(f"depth_p99_ms={pct(depth['latencies'], 99) * 1000:.1f}")
        for phase in (placed, depth):
            n = max(phase["ok"], 1)
            print(f"{phase['name']}_cpu_us_per_request: " + ", ".join(
                f"{k} {v / n * 1e6:.0f}" for k, v in phase["cpu"].items())
                + f" (load average {phase['load']:.1f} at the end of the phase, {os.cpu_count()} CPUs)")
        print(f"orders_refused={placed['refused']} orders_failed={placed['failed']} "
              f"depth_failed={depth['failed'] + depth['refused']} concurrency={args.concurrency} "
              f"web_workers={args.workers} seconds={args.seconds} "
              f"depth_source={'redis' if marketdata is not None else 'matcher'}")
        return 0
    finally:
        for proc in (web, marketdata):
            if proc is not None:
                stop(proc)
        stop(matcher)


if __name__ == "__main__":
    raise SystemExit(main())
