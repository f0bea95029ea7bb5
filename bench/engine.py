"""Benchmark of the matching engine core (prints figures; not a test).

Seeded workload on one market (ETH_USDT) with pre-funded users: about 60%
limit orders around a drifting mid price (roughly one in ten crosses, with
partial fills across levels), 30% cancels of live orders, 10% market orders
(half buys by quote amount, half sells by base amount). Uses the typed
``*_int`` methods with balances, fees and events all on, as the matcher's hot
path does; the random draws are made before the clock starts, picking a live
order to cancel is inside the timed loop (and so counted against the engine).

    python bench/engine.py [--commands 500000] [--seed 1] [--resting 1000000] [--profile]

It runs the engine as the matcher does: its mypyc build where ``dev.py`` made one
(matcher/engine/native.py), else the source; ``CRYPTGO_ENGINE=python`` runs the source.

Prints ``commands_per_sec=``, ``deals_per_sec=`` and, with ``--resting N``,
``bytes_per_resting_order=`` (RSS growth / N while N non-crossing orders are
placed before the timed run).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matcher.engine import COMPILED, Engine

MARKET = "ETH_USDT"
USERS = 1000
MID = 200_000  # 2000.00 USDT in price ticks (price_prec 2)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def setup() -> Engine:
    e = Engine()
    e.add_asset("ETH", 18)
    e.add_asset("USDT", 6)
    # amount_prec 4: amount ticks of 0.0001 ETH; fees 0.1% maker / 0.2% taker
    r = e.add_market_int(MARKET, "ETH", "USDT", 2, 4, 10, 1_000_000, 100_000, 200_000)
    assert r.ok, r.reason
    for u in range(1, USERS + 1):
        e.update_balance_int(u, "ETH", "deposit", f"eth-{u}", 10**12 * 10**18, 0)
        e.update_balance_int(u, "USDT", "deposit", f"usdt-{u}", 10**15 * 10**6, 0)
    return e


def place_resting(e: Engine, n: int, rng: random.Random) -> int:
    """n GTC orders far from the trading zone: bids below MID/2, asks above 2*MID."""
    before = rss_bytes()
    t = 1
    for i in range(n):
        user = rng.randint(1, USERS)
        if i & 1:
            r = e.place_limit_int(user, MARKET, "buy", MID // 2 - rng.randint(0, 2000), rng.randint(20, 10_000), t)
        else:
            r = e.place_limit_int(user, MARKET, "sell", MID * 2 + rng.randint(0, 2000), rng.randint(20, 10_000), t)
        assert r.ok, r.reason
        del r
    gc.collect()
    return rss_bytes() - before


def workload(n: int, rng: random.Random) -> list[tuple[Any, ...]]:
    """Pre-drawn commands: (0, user, side, price, amount, time) limit, (1, pick, time) cancel,
    (2, user, side, amount, time) market; time advances 1 ms every 128 commands."""
    cmds: list[tuple[Any, ...]] = []
    mid = MID
    for i in range(n):
        now = 1_700_000_000_000 + (i >> 7)
        mid += rng.choice((-1, 0, 0, 1))
        x = rng.random()
        user = rng.randint(1, USERS)
        is_buy = rng.random() < 0.5
        if x < 0.6:
            off = rng.randint(-5, 50)  # negative offset crosses the spread
            price = mid - off if is_buy else mid + off
            cmds.append((0, user, "buy" if is_buy else "sell", price, rng.randint(10, 5000), now))
        elif x < 0.9:
            cmds.append((1, rng.randint(0, 1 << 30), now))
        elif is_buy:
            # quote units: amount ticks * price ticks * quote_mul (1 on this market)
            cmds.append((2, user, "buy", rng.randint(10, 5000) * mid, now))
        else:
            cmds.append((2, user, "sell", rng.randint(10, 5000), now))
    return cmds


def run(e: Engine, cmds: list[tuple[Any, ...]]) -> tuple[float, float, int, int]:
    live: list[tuple[int, int]] = []
    first_deal = e.next_deal_id
    rejected = 0
    place_limit = e.place_limit_int
    place_market = e.place_market_int
    cancel = e.cancel_int
    is_open = e.is_open
    t0 = time.perf_counter()
    c0 = time.process_time()
    for c in cmds:
        op = c[0]
        if op == 0:
            r = place_limit(c[1], MARKET, c[2], c[3], c[4], c[5])
            if r.ok:
                live.append((r.value, c[1]))  # may be filled already: checked when picked
        elif op == 1:
            # cancel a random live order (lazily dropping those filled meanwhile)
            r = None
            while live:
                j = c[1] % len(live)
                oid, user = live[j]
                live[j] = live[-1]
                live.pop()
                if is_open(oid):
                    r = cancel(user, MARKET, oid, c[2])
                    break
            if r is None:
                continue
        else:
            r = place_market(c[1], MARKET, c[2], c[3], c[4])
        if not r.ok:
            rejected += 1
    return time.perf_counter() - t0, time.process_time() - c0, e.next_deal_id - first_deal, rejected


def probe(commands: int = 100_000, seed: int = 1) -> int:
    """Commands per CPU second of this workload, as a measure of how fast the machine runs right now.

    The shared 2-core machine's speed per core has varied by a third within a day; other benchmarks
    print this beside their figures so that runs can be compared."""
    rng = random.Random(seed)
    e = setup()
    cmds = workload(commands, rng)
    gc.collect()
    _elapsed, cpu, _deals, _rejected = run(e, cmds)
    return round(commands / cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--commands", type=int, default=500_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--resting", type=int, default=0)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    e = setup()
    grown = place_resting(e, args.resting, rng) if args.resting else 0
    cmds = workload(args.commands, rng)
    gc.collect()
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        elapsed, cpu, deals, rejected = run(e, cmds)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    else:
        elapsed, cpu, deals, rejected = run(e, cmds)
    print(f"commands_per_sec={len(cmds) / elapsed:.0f}")
    print(f"deals_per_sec={deals / elapsed:.0f}")
    if args.resting:
        print(f"bytes_per_resting_order={grown / args.resting:.0f}")
    print(
        f"# commands={len(cmds)} deals={deals} rejected={rejected} seconds={elapsed:.3f} cpu_seconds={cpu:.3f}"
        f" (commands per cpu second {len(cmds) / cpu:.0f})",
        file=sys.stderr,
    )
    print(f"# engine={'compiled (mypyc)' if COMPILED else 'interpreted'}", file=sys.stderr)
    totals = e.balance_totals()
    assert totals == {"ETH": USERS * 10**30, "USDT": USERS * 10**21}, totals


if __name__ == "__main__":
    main()
