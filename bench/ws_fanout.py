"""Websocket fan-out benchmark: N subscribers on one market while orders flow (prints figures; not a test).

Starts, against the configured PostgreSQL, Redis and Kafka (a fresh database
``cryptgo_wsbench_<pid>``, dropped afterwards; its own topic prefix):
``run_matcher --no-relay`` with ``run_outbox_relay``, ``run_marketdata`` and the web process (uvicorn, as the
launcher runs it). Client processes open ``--subscribers`` websocket
connections and send ``deals.subscribe ETH_USDT``; then the benchmark places
crossing orders through the matcher at ``--rate`` deals per second for
``--seconds`` seconds. Every deal pushed to every subscriber is one delivery;
its latency is the client's receipt time minus the deal's time (the engine
time of the matcher batch that made it, which the commit follows), on the
same clock.

    python -m cryptgo.devservices /tmp/wsbench -- .venv/bin/python bench/ws_fanout.py [--subscribers 1000]

Prints ``delivered_per_sec=``, ``p50_ms=`` and ``p99_ms=`` on their own lines,
then details (deliveries missing, CPU seconds per process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import (  # noqa: E402
    MARKET,
    children,
    clear_market_data,
    cpu_of,
    create_database,
    create_market,
    drop_database,
    pct,
)

# ---------------------------------------------------------------- subscriber processes (no Django)


def subscriber_process(url: str, count: int, ready: mp.Event, go: mp.Event, stop_at: mp.Value,
                       results: mp.Queue) -> None:
    import uvloop  # the load generator shares the cores with the server: keep its own cost down

    uvloop.run(_subscribers(url, count, ready, go, stop_at, results))


async def _subscribers(url: str, count: int, ready, go, stop_at, results) -> None:
    import resource

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    latencies: list[float] = []
    deals_seen: list[int] = []
    connected = 0
    sockets: list[Any] = []
    gate = asyncio.Semaphore(50)  # handshakes in flight

    async def one(i: int) -> None:
        nonlocal connected
        async with gate:
            ws = await connect(url, open_timeout=60, ping_interval=None, max_queue=None)
            await ws.send(json.dumps({"id": 1, "method": "deals.subscribe", "params": [MARKET]}))
            while True:  # the reply, then the snapshot
                msg = json.loads(await ws.recv())
                if msg.get("error"):
                    raise RuntimeError(f"deals.subscribe refused: {msg['error']}")
                if msg.get("method") == "deals.update":
                    break
            connected += 1
        while not go.is_set():
            await asyncio.sleep(0.05)

        async def keepalive() -> None:  # as a real client does: the server closes idle connections
            while True:
                await asyncio.sleep(30)
                await ws.send(json.dumps({"id": 2, "method": "server.ping", "params": []}))

        pinger = asyncio.ensure_future(keepalive())
        sockets.append(ws)
        try:
            async for raw in ws:  # until the stopper closes it
                now = time.time() * 1000
                msg = json.loads(raw)
                if msg.get("method") == "deals.update":
                    for deal in msg["params"][1]:
                        latencies.append(now - deal["time"])
                        if i == 0:
                            deals_seen.append(deal["id"])
        except ConnectionClosed:
            pass
        finally:
            pinger.cancel()

    async def stopper() -> None:
        while time.time() < stop_at.value:
            await asyncio.sleep(0.05)
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

    tasks = [asyncio.ensure_future(one(i)) for i in range(count)]
    while connected < count:
        done = [t for t in tasks if t.done() and t.exception()]
        if done:
            raise done[0].exception()
        await asyncio.sleep(0.1)
    ready.set()
    await asyncio.gather(stopper(), *tasks)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results.put({"latencies": latencies, "deals_seen": deals_seen, "cpu": usage.ru_utime + usage.ru_stime})


# ---------------------------------------------------------------- helpers


def start(name: str, argv: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    with open(logs / f"{name}.log", "wb") as log:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def wait_port(port: int, proc: subprocess.Popen[bytes], name: str, timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{name} did not listen on {port}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2, help="subscriber processes")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="uvicorn worker processes (default: one per CPU, as the launcher runs them)")
    parser.add_argument("--rate", type=float, default=10.0, help="deals per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured duration")
    args = parser.parse_args()

    admin_url, dbname = create_database("wsbench")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = Path(f"/tmp/ws-fanout-{os.getpid()}")
    logs.mkdir(parents=True, exist_ok=True)
    try:
        from django.contrib.auth import get_user_model

        from cryptgo.devservices import free_port
        from cryptgo.launcher import web_command

        create_market()
        User = get_user_model()
        maker = User.objects.create(email="maker@example.com", password="!")
        taker = User.objects.create(email="taker@example.com", password="!")

        grpc_addr = f"127.0.0.1:{free_port()}"
        web_port = free_port()
        env = {**os.environ, "MATCHER_GRPC_ADDR": grpc_addr, "KAFKA_TOPIC_PREFIX": f"wsbench{os.getpid()}.",
               "MARKETDATA_KAFKA_GROUP": f"wsbench-md-{os.getpid()}", "LOG_LEVEL": "WARNING"}
        os.environ.update({k: env[k] for k in ("MATCHER_GRPC_ADDR", "KAFKA_TOPIC_PREFIX")})
        py = sys.executable
        from django.conf import settings

        if cleared := clear_market_data(settings.REDIS_URL):
            print(f"setup: {cleared} stale {MARKET} market-data keys deleted from Redis", flush=True)
        procs["matcher"] = start("matcher", [py, "manage.py", "run_matcher", "--no-relay"], env, logs)
        procs["outbox-relay"] = start("outbox-relay", [py, "manage.py", "run_outbox_relay"], env, logs)
        procs["marketdata"] = start("marketdata", [py, "manage.py", "run_marketdata"], env, logs)
        procs["web"] = start("web", web_command(web_port, workers=args.workers, extra=("--log-level", "warning")),
                             env, logs)
        from matcher.client import MatcherClient

        client = MatcherClient(grpc_addr, timeout=60)
        client.wait_ready(60)
        wait_port(web_port, procs["web"], "web")
        client.update_balance(maker.id, "ETH", "deposit", "bench-eth", "1000000")
        client.update_balance(taker.id, "USDT", "deposit", "bench-usdt", "1000000000")

        def deal() -> None:
            client.place_limit(maker.id, MARKET, "sell", "2000.00", "0.0100")
            client.place_limit(taker.id, MARKET, "buy", "2000.00", "0.0100")

        print(f"setup: matcher, run_marketdata and uvicorn started (logs in {logs})", flush=True)
        # Warm up: run_marketdata joins its consumer group and has folded a deal.
        import redis

        from markets.marketdata import key

        r = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
        deal()
        deadline = time.monotonic() + 90
        while r.get(key(MARKET, "deal_id")) is None:
            if time.monotonic() > deadline:
                raise SystemExit("run_marketdata did not fold the warm-up deal within 90 s (see logs in " +
                                 str(logs) + ")")
            time.sleep(0.2)

        ctx = mp.get_context("spawn")
        ready = [ctx.Event() for _ in range(args.clients)]
        go = ctx.Event()
        stop_at = ctx.Value("d", 1e18)
        results = ctx.Queue()
        share = [args.subscribers // args.clients + (1 if i < args.subscribers % args.clients else 0)
                 for i in range(args.clients)]
        url = f"ws://127.0.0.1:{web_port}/ws/"
        workers = [ctx.Process(target=subscriber_process, args=(url, share[i], ready[i], go, stop_at, results))
                   for i in range(args.clients)]
        t0 = time.monotonic()
        for w in workers:
            w.start()
        for ev in ready:
            if not ev.wait(180):
                raise SystemExit("subscribers did not connect within 180 s")
        print(f"setup: {args.subscribers} subscribers connected in {time.monotonic() - t0:.1f}s over "
              f"{args.clients} processes", flush=True)

        cpu0 = {name: cpu_of([p.pid, *children(p.pid)]) for name, p in procs.items()}
        first_id = int(r.get(key(MARKET, "deal_id")))
        go.set()
        time.sleep(0.5)
        start_t = time.time()
        placed = 0
        interval = 1.0 / args.rate
        while time.time() - start_t < args.seconds:
            due = start_t + placed * interval
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            deal()
            placed += 1
        last_id = None
        deadline = time.monotonic() + 30  # let the last pushes arrive
        while time.monotonic() < deadline:
            last_id = int(r.get(key(MARKET, "deal_id")))
            if last_id >= first_id + placed:
                break
            time.sleep(0.1)
        stop_at.value = time.time() + 3.0
        collected = [results.get(timeout=120) for _ in workers]
        for w in workers:
            w.join(30)
        elapsed = time.time() - start_t
        cpu1 = {name: cpu_of([p.pid, *children(p.pid)]) for name, p in procs.items()}

        lat = [x for c in collected for x in c["latencies"]]
        expected = placed * args.subscribers
        print(f"delivered_per_sec={len(lat) / args.seconds:.0f}")
        print(f"p50_ms={pct(lat, 50):.1f}")
        print(f"p99_ms={pct(lat, 99):.1f}")
        print(f"  {placed} deals in {args.seconds:.0f}s ({placed / args.seconds:.1f}/s) to {args.subscribers} "
              f"subscribers: {len(lat)} deliveries of {expected} expected "
              f"({expected - len(lat)} missing), max {max(lat) if lat else 0:.0f} ms; wall {elapsed:.1f}s")
        print("  CPU seconds: " + ", ".join(f"{n} {cpu1[n] - cpu0[n]:.1f}" for n in procs)
              + f", subscribers {sum(c['cpu'] for c in collected):.1f} (whole run)")
    finally:
        for p in reversed(list(procs.values())):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
        drop_database(admin_url, dbname)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
