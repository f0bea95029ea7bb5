"""What a batch costs apart from its commands: CPU of the matcher and of PostgreSQL by batch size (prints figures).

``bench/matcher_e2e.py`` measures the whole service, and its latency moves with everything else on the
machine (its clients, the relay, the broker). This one leaves all of that out: requests of the same
mix go straight into the batching loop (``Core``, the persister's one-statement commit, requests
parsed and replies built as the server does it), one batch at a time, so the CPU seconds per
command hardly depend on the machine's load. Comparing the sizes says what a batch costs apart from
its commands, and so what fewer, bigger batches would save (and cost in waiting).

    python -m cryptgo.devservices /tmp/cc -- .venv/bin/python bench/commit_cost.py [--sizes 1 5 20 50 200 500]

Prints one line per batch size: ``batch=``, ``matcher_us_per_cmd=`` (the matcher's process: requests
parsed, applied, rows built, committed, replies built; the mix's own work left out),
``postgres_us_per_cmd=`` (the writer's backend, read from /proc: PostgreSQL must run on this machine),
``matcher_ms_per_batch=``, ``postgres_ms_per_batch=`` and ``wall_ms_per_batch=`` (one batch at a time, no
overlap), then the garbage collector's summary.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.matcher_e2e import Mix  # noqa: E402
from bench.scratch import cpu_of, create_database, create_market, create_users, drop_database  # noqa: E402


async def measure(sizes: list[int], commands: int, users: list[int]) -> None:
    import psycopg

    from matcher.proto import matcher_pb2 as pb
    from matcher.service.core import Core
    from matcher.service.gcpolicy import FrozenSurvivorsGC
    from matcher.service.persist import Persister
    from matcher.service.server import batch_calls, batch_reply, load_listing
    from matcher.service.state import load_engine

    conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    loaded = load_engine(conn)
    persister = Persister(conn, "commit_cost.")
    core = Core(loaded, persister, batch_max=max(sizes))
    loop_task = asyncio.create_task(core.run())
    await load_listing(core, conn)
    persister.refresh_ids()
    funding = [("update_balance", {"user": u, "asset": asset, "business": "deposit", "business_id": f"{asset}-{u}",
                                   "change": change})
               for u in users for asset, change in (("USDT", "1000000000"), ("ETH", "1000000"))]
    assert all(res.ok for res in await core.submit(funding))
    collector = FrozenSurvivorsGC()
    collector.install()  # as run_matcher does
    backend = [conn.info.backend_pid]
    mix = Mix(users, 1)
    try:
        for size in sizes:
            batches = max(20, commands // size)
            client = 0.0  # the mix's own CPU (making commands, noting open orders): not the matcher's
            pg0, cpu0, t0 = cpu_of(backend), time.process_time(), time.perf_counter()
            for _ in range(batches):
                c0 = time.process_time()
                items = [mix.command() for _ in range(size)]
                request = pb.PlaceBatchRequest(orders=items)
                client += time.process_time() - c0
                calls, refused = batch_calls(request)
                reply = batch_reply(await core.submit(calls), refused)
                c0 = time.process_time()
                mix.note(reply.results, items)
                client += time.process_time() - c0
            pg, wall = cpu_of(backend) - pg0, time.perf_counter() - t0
            cpu = time.process_time() - cpu0 - client
            n = batches * size
            print(f"batch={size} matcher_us_per_cmd={cpu / n * 1e6:.1f} postgres_us_per_cmd={pg / n * 1e6:.1f} "
                  f"matcher_ms_per_batch={cpu / batches * 1000:.2f} postgres_ms_per_batch={pg / batches * 1000:.2f} "
                  f"wall_ms_per_batch={wall / batches * 1000:.2f}  ({batches} batches)", flush=True)
    finally:
        collector.uninstall()
        core.stop()
        await loop_task
        conn.close()
    print(f"# {collector.summary()}; load average {os.getloadavg()[0]:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 5, 20, 50, 200, 500])
    parser.add_argument("--commands", type=int, default=20_000, help="commands per batch size (at least 20 batches)")
    parser.add_argument("--users", type=int, default=400)
    args = parser.parse_args()
    admin_url, dbname = create_database("commit_cost")
    try:
        create_market()
        asyncio.run(measure(args.sizes, args.commands, create_users(args.users, "commit_cost")))
    finally:
        drop_database(admin_url, dbname)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
