"""End-to-end benchmark of the matcher service (prints figures; not a test).

Starts ``run_matcher`` and, as the launcher does, ``run_outbox_relay`` beside it
(``--relay``) against the configured PostgreSQL and Kafka (a fresh
database ``cryptgo_bench_<pid>`` on the configured server, dropped afterwards),
funds users and builds a book through the matcher, then drives it with
concurrent gRPC client processes using the batch call (``PlaceBatch``, which
carries placements and cancels) on a realistic mix: GTC limit orders around
the mid price (a part of them crossing, with partial fills), IOC limits, market
buys by quote and sells by base, and cancels of the client's own open orders.
Every figure counts only commands acknowledged after their commit.

    python -m cryptgo.devservices /tmp/bench -- .venv/bin/python bench/matcher_e2e.py [--seconds 10]

Prints ``acked_orders_per_sec=`` (phase 1: closed loop, as fast as it goes;
placements + cancels acknowledged per second), then ``p50_ms=`` and ``p99_ms=``
(phase 2: open loop at ``--rate`` commands/s, each client sending its due
commands every ``--tick`` as one request on its ``PlaceStream``; latency of each
command from the moment it was due to its acknowledgement, client-side batching
wait included; the requests' round trips, without that wait, are printed beside),
and where the CPU time went (matcher apply vs commit, PostgreSQL, clients), the matcher's garbage
collections, and the machine's speed before and after (`bench/engine.py`'s workload, per CPU second).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import MARKET, cpu_of, create_database, create_market, create_users, drop_database, pct  # noqa: E402

MID = 200_000  # price ticks (2000.00)


# ---------------------------------------------------------------- client processes (no Django)


class Mix:
    """The command mix of one client: its users, its open orders, a seeded RNG."""

    def __init__(self, users: list[int], seed: int) -> None:
        self.users = users
        self.rng = random.Random(seed)
        self.open: list[tuple[int, int]] = []

    def command(self):  # -> pb.PlaceOne
        from matcher.proto import matcher_pb2 as pb

        rng = self.rng
        r = rng.random()
        if r < 0.30 and self.open:
            user, oid = self.open.pop(rng.randrange(len(self.open)))
            return pb.PlaceOne(cancel=pb.CancelRequest(user=user, market=MARKET, order_id=oid))
        user = rng.choice(self.users)
        side = "buy" if rng.random() < 0.5 else "sell"
        if r < 0.35:
            amount = f"{rng.randint(50, 1000)}.00" if side == "buy" else f"0.{rng.randint(100, 5000):04d}"
            return pb.PlaceOne(market=pb.PlaceMarketRequest(user=user, market=MARKET, side=side, amount=amount))
        # limits around the mid: about one in six crosses the spread
        offset = rng.randint(-40, 400)
        ticks = MID - offset if side == "buy" else MID + offset
        tif = "IOC" if r < 0.42 else "GTC"
        price = f"{ticks // 100}.{ticks % 100:02d}"
        return pb.PlaceOne(limit=pb.PlaceLimitRequest(user=user, market=MARKET, side=side, price=price,
                                                      amount=f"0.{rng.randint(100, 9999):04d}", tif=tif))

    def note(self, results, items) -> tuple[int, int]:
        """Remember open orders for later cancels; returns (acked, refused)."""
        acked = refused = 0
        for res, item in zip(results, items, strict=True):
            if res.reason:
                refused += 1
                continue
            acked += 1
            if not item.HasField("cancel") and res.order.status == "open":
                self.open.append((res.order.user, res.order.id))
        if len(self.open) > 5000:
            del self.open[:1000]
        return acked, refused


def _channel(addr: str):
    import grpc

    from matcher.client import CHANNEL_OPTIONS

    return grpc.insecure_channel(addr, options=CHANNEL_OPTIONS)


def closed_loop_worker(addr: str, users: list[int], seed: int, batch: int, inflight: int, seconds: float,
                       out: mp.Queue) -> None:
    """As fast as it goes: ``inflight`` batch calls of ``batch`` commands kept in flight."""
    from matcher.proto import matcher_pb2 as pb
    from matcher.proto import matcher_pb2_grpc as pb_grpc

    stub = pb_grpc.MatcherStub(_channel(addr))
    mix = Mix(users, seed)
    lock = threading.Lock()
    done = threading.Semaphore(0)
    stats = {"acked": 0, "refused": 0, "rtt": []}
    deadline = time.monotonic() + seconds

    def send() -> None:
        items = [mix.command() for _ in range(batch)]
        t0 = time.monotonic()
        fut = stub.PlaceBatch.future(pb.PlaceBatchRequest(orders=items), timeout=60)

        def on_done(f) -> None:
            rtt = time.monotonic() - t0
            with lock:
                a, r = mix.note(f.result().results, items)
                stats["acked"] += a
                stats["refused"] += r
                stats["rtt"].append(rtt)
            done.release()

        fut.add_done_callback(on_done)

    t_start = time.monotonic()
    for _ in range(inflight):
        with lock:
            send()
    while time.monotonic() < deadline:
        done.acquire()
        with lock:
            send()
    for _ in range(inflight):
        done.acquire()
    elapsed = time.monotonic() - t_start
    out.put({"acked": stats["acked"], "refused": stats["refused"], "rtt": stats["rtt"], "elapsed": elapsed,
             "cpu": time.process_time()})


def open_loop_worker(addr: str, users: list[int], seed: int, rate: float, seconds: float, tick: float,
                     unary: bool, out: mp.Queue) -> None:
    """Commands fall due at ``rate``/s; every ``tick`` the due ones go out as one batch (not waiting for
    earlier ones): a request on one ``PlaceStream`` (or, with ``unary``, a ``PlaceBatch`` call each).
    Latency = acknowledgement time - due time."""
    from collections import deque

    from matcher.proto import matcher_pb2 as pb
    from matcher.proto import matcher_pb2_grpc as pb_grpc

    stub = pb_grpc.MatcherStub(_channel(addr))
    mix = Mix(users, seed)
    lock = threading.Lock()
    latencies: list[float] = []
    round_trips: list[float] = []  # request sent -> its reply, once per request
    pending = [0]
    counts = {"acked": 0, "refused": 0}

    def answered(results, items, due_times, sent_at) -> None:
        t = time.monotonic()
        with lock:
            round_trips.append(t - sent_at)
            a, r = mix.note(results, items)
            counts["acked"] += a
            counts["refused"] += r
            latencies.extend(t - d for d in due_times)
            pending[0] -= 1

    requests: queue.SimpleQueue = queue.SimpleQueue()
    in_flight: deque = deque()  # (items, due times, sent at) of the stream's requests, in order
    if not unary:
        replies = stub.PlaceStream(iter(requests.get, None), timeout=seconds + 120)

        def receive() -> None:
            for reply in replies:
                answered(reply.results, *in_flight.popleft())

        threading.Thread(target=receive, daemon=True).start()

    t0 = time.monotonic() + 0.2
    n_total = int(rate * seconds)
    sent = 0
    while sent < n_total:
        now = time.monotonic()
        due = min(n_total, int((now - t0) * rate) + 1) if now >= t0 else 0
        if due > sent:
            with lock:
                items = [mix.command() for _ in range(due - sent)]
                pending[0] += 1
            due_times = [t0 + (sent + i) / rate for i in range(due - sent)]
            sent = due
            request = pb.PlaceBatchRequest(orders=items)
            if unary:
                stub.PlaceBatch.future(request, timeout=60).add_done_callback(
                    lambda f, items=items, due_times=due_times, at=time.monotonic():
                        answered(f.result().results, items, due_times, at))
            else:
                in_flight.append((items, due_times, time.monotonic()))
                requests.put(request)
        time.sleep(tick)
    for _ in range(6000):  # bounded wait for the last answers (60 s)
        with lock:
            if pending[0] == 0:
                break
        time.sleep(0.01)
    requests.put(None)  # ends the stream
    out.put({"latencies": latencies, "round_trips": round_trips, "elapsed": time.monotonic() - t0,
             "cpu": time.process_time(), **counts})


# ---------------------------------------------------------------- orchestration


def pids_named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def wait_outbox_drained(dsn: str, timeout: float) -> float:
    """Seconds until no outbox row is undelivered (at most ``timeout``)."""
    import psycopg

    t0 = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() - t0 < timeout:
            if not conn.execute("SELECT EXISTS (SELECT FROM matcher_eventoutbox WHERE NOT delivered)"
                                " OR EXISTS (SELECT FROM matcher_depthoutbox WHERE NOT delivered)").fetchone()[0]:
                break
            time.sleep(0.1)
    return time.monotonic() - t0


def run_workers(target, args_list) -> list[dict]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, q)) for args in args_list]
    for p in procs:
        p.start()
    results = [q.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(30)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="phase 1 duration")
    parser.add_argument("--clients", type=int, default=3, help="client processes")
    parser.add_argument("--batch", type=int, default=1000, help="commands per PlaceBatch call (phase 1)")
    parser.add_argument("--inflight", type=int, default=3, help="calls in flight per client (phase 1)")
    parser.add_argument("--rate", type=float, default=5000.0, help="phase 2 commands/s (all clients)")
    parser.add_argument("--latency-seconds", type=float, default=8.0, help="phase 2 duration")
    parser.add_argument("--tick", type=float, default=0.005, help="phase 2 client batching interval (s)")
    parser.add_argument("--latency-clients", type=int, default=2, help="phase 2 client processes")
    parser.add_argument("--unary", action="store_true",
                        help="phase 2: a PlaceBatch call per batch instead of requests on one PlaceStream each")
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--book", type=int, default=2000, help="resting orders placed before the run")
    parser.add_argument("--relay", choices=("process", "inside", "off"), default="process",
                        help="the outbox relay: in its own process as the launcher runs it (default), inside the "
                             "matcher's process, or off (not a configuration to run: nothing reaches Kafka)")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    from bench.engine import probe
    from matcher.engine import COMPILED

    speed_before = probe()
    admin_url, dbname = create_database("bench")
    matcher = relay = None
    try:
        import psycopg

        from cryptgo.devservices import free_port

        create_market()
        users = create_users(args.users, "bench")

        addr = f"127.0.0.1:{free_port()}"
        log_path = Path(f"/tmp/matcher-bench-{os.getpid()}.log")
        env = {**os.environ, "MATCHER_GRPC_ADDR": addr, "KAFKA_TOPIC_PREFIX": f"bench{os.getpid()}.",
               "MATCHER_OUTBOX_RELAY": "true" if args.relay == "inside" else "false", "LOG_LEVEL": "INFO"}
        with open(log_path, "wb") as log:
            matcher = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "run_matcher"], cwd=ROOT, env=env,
                                       stdout=log, stderr=subprocess.STDOUT)
            if args.relay == "process":
                relay = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "run_outbox_relay"], cwd=ROOT,
                                         env=env, stdout=log, stderr=subprocess.STDOUT)
        from matcher.client import MatcherClient, limit_request

        client = MatcherClient(addr, timeout=60)
        client.wait_ready(60)
        for u in users:
            client.update_balance(u, "USDT", "deposit", f"bench-usdt-{u}", "1000000000")
            client.update_balance(u, "ETH", "deposit", f"bench-eth-{u}", "1000000")
        rng = random.Random(1)
        book = []
        for i in range(args.book):
            side = "buy" if i % 2 else "sell"
            ticks = MID - rng.randint(50, 4000) if side == "buy" else MID + rng.randint(50, 4000)
            book.append(limit_request(rng.choice(users), MARKET, side, f"{ticks // 100}.{ticks % 100:02d}",
                                      f"0.{rng.randint(100, 9999):04d}"))
        for i in range(0, len(book), 500):
            client.place_batch(book[i:i + 500])
        print(f"setup: {len(users)} users funded, {args.book} resting orders; matcher at {addr}", flush=True)
        share = [users[i::args.clients] for i in range(args.clients)]

        # phase 1: throughput
        pg = pids_named("postgres")
        kafka = pids_named("tansu")

        def cpu_now() -> dict[str, float]:
            return {"matcher": cpu_of([matcher.pid]), "relay": cpu_of([relay.pid]) if relay else 0.0,
                    "postgres": cpu_of(pg), "kafka": cpu_of(kafka)}

        cpu0 = cpu_now()
        t0 = time.monotonic()
        res = run_workers(closed_loop_worker, [(addr, share[i], 100 + i, args.batch, args.inflight, args.seconds)
                                               for i in range(args.clients)])
        wall = time.monotonic() - t0
        acked = sum(r["acked"] for r in res)
        refused = sum(r["refused"] for r in res)
        elapsed = max(r["elapsed"] for r in res)
        rtts = [x for r in res for x in r["rtt"]]
        cpu1 = cpu_now()
        print(f"acked_orders_per_sec={acked / elapsed:.0f}", flush=True)
        print(f"  phase 1: {acked} commands acknowledged ({refused} refused) in {elapsed:.1f}s by {args.clients} "
              f"clients, batches of {args.batch}, {args.inflight} in flight each; batch round trip "
              f"p50 {pct(rtts, 50) * 1000:.0f} ms, p99 {pct(rtts, 99) * 1000:.0f} ms")
        m_cpu, pg_cpu = cpu1["matcher"] - cpu0["matcher"], cpu1["postgres"] - cpu0["postgres"]
        print(f"  phase 1 CPU seconds over {wall:.1f}s wall: matcher {m_cpu:.1f}, outbox relay "
              f"{cpu1['relay'] - cpu0['relay']:.1f}, postgres {pg_cpu:.1f}, "
              f"clients {sum(r['cpu'] for r in res):.1f}; per acknowledged command: matcher "
              f"{m_cpu / max(acked, 1) * 1e6:.0f} us, postgres {pg_cpu / max(acked, 1) * 1e6:.0f} us; Kafka broker "
              f"{cpu1['kafka'] - cpu0['kafka']:.1f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

        # phase 2: latency at a fixed rate, once the relay has delivered phase 1's backlog (bounded wait):
        # the figure is the steady state at that rate, not the recovery from the overload of phase 1
        if args.relay != "off":
            waited = wait_outbox_drained(os.environ["DATABASE_URL"], timeout=120)
            print(f"  outbox relay caught up with phase 1 in {waited:.1f}s", flush=True)
        cpu0 = cpu_now()
        n2 = args.latency_clients
        share2 = [users[i::n2] for i in range(n2)]
        res = run_workers(open_loop_worker, [(addr, share2[i], 200 + i, args.rate / n2, args.latency_seconds,
                                              args.tick, args.unary) for i in range(n2)])
        lat = [x for r in res for x in r["latencies"]]
        acked2 = sum(r["acked"] for r in res)
        elapsed2 = max(r["elapsed"] for r in res)
        cpu1 = cpu_now()
        print(f"p50_ms={pct(lat, 50) * 1000:.1f}")
        print(f"p99_ms={pct(lat, 99) * 1000:.1f}")
        print(f"  phase 2: {len(lat)} commands due at {args.rate:.0f}/s, {acked2} acknowledged in {elapsed2:.1f}s "
              f"({acked2 / elapsed2:.0f}/s) by {n2} clients; max {max(lat) * 1000 if lat else 0:.0f} ms; client "
              f"batching every {args.tick * 1000:.0f} ms, a "
              f"{'PlaceBatch call' if args.unary else 'PlaceStream request'} per batch")
        trips = [x for r in res for x in r["round_trips"]]
        print(f"  phase 2 round trip of a request (sent to answered, the client's batching wait left out): p50 "
              f"{pct(trips, 50) * 1000:.1f} ms, p99 {pct(trips, 99) * 1000:.1f} ms")
        print(f"  phase 2 CPU seconds: matcher {cpu1['matcher'] - cpu0['matcher']:.1f}, outbox relay "
              f"{cpu1['relay'] - cpu0['relay']:.1f}, "
              f"postgres {cpu1['postgres'] - cpu0['postgres']:.1f}, clients {sum(r['cpu'] for r in res):.1f}",
              flush=True)
        with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
            row = conn.execute("SELECT (SELECT count(*) FROM trading_order), (SELECT count(*) FROM trading_deal),"
                               " (SELECT coalesce(sum(last_seq - seq + 1), 0) FROM matcher_eventoutbox),"
                               " (SELECT coalesce(sum(last_seq - seq + 1), 0) FROM matcher_eventoutbox"
                               " WHERE NOT delivered)").fetchone()
        print(f"  tables: {row[0]} orders, {row[1]} deals, {row[2]} events in the outbox ({row[3]} not yet "
              f"delivered to Kafka)")
    finally:
        for proc in (matcher, relay):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if matcher is not None:
            for line in log_path.read_text().splitlines():
                if any(part in line for part in ("matcher stopped", "database time by part", "garbage collections")):
                    print("  matcher: " + line.split("matcher: ", 1)[-1])
        if not args.keep_db:
            drop_database(admin_url, dbname)
    # the machine's speed at the start and at the end: the shared machine's varies by a third within a day
    print(f"  machine speed: bench/engine.py workload {speed_before} commands per CPU second before the run, "
          f"{probe()} after ({'compiled' if COMPILED else 'interpreted'} engine, as in the matcher)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
