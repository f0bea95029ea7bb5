"""Same commands, same events and state; a snapshot/restore in the middle changes nothing."""

from __future__ import annotations

import json
import random
from typing import Any

from engine_helpers import make_engine

from matcher.engine import Engine


def commands(seed: int, n: int) -> list[tuple[str, dict[str, Any], int]]:
    rng = random.Random(seed)
    out: list[tuple[str, dict[str, Any], int]] = []
    for user in (1, 2, 3, 4):
        for asset, amount in (("USDT", "1000000"), ("ETH", "500")):
            out.append(("update_balance", {"user": user, "asset": asset, "business": "deposit",
                                           "business_id": f"{user}{asset}", "change": amount}, 1))
    for i in range(n):
        t = 1000 + i
        user = rng.randint(1, 4)
        x = rng.random()
        side = rng.choice(["buy", "sell"])
        if x < 0.6:
            out.append(("place_limit", {"user": user, "market": "ETH_USDT", "side": side,
                                        "price": f"{rng.randint(1990, 2010)}.{rng.randint(0, 99):02d}",
                                        "amount": f"0.{rng.randint(10, 9999):04d}",
                                        "tif": rng.choice(["GTC", "GTC", "IOC", "FOK"]),
                                        "stp": rng.choice(["cancel_resting", "cancel_incoming", "cancel_both"])}, t))
        elif x < 0.85:
            out.append(("cancel", {"user": user, "market": "ETH_USDT", "order_id": rng.randint(1, i + 1)}, t))
        else:
            amount = f"{rng.randint(10, 3000)}" if side == "buy" else f"0.{rng.randint(10, 9999):04d}"
            out.append(("place_market", {"user": user, "market": "ETH_USDT", "side": side, "amount": amount}, t))
    return out


def run(e: Engine, cmds: list[tuple[str, dict[str, Any], int]]) -> list[Any]:
    out = []
    for method, params, t in cmds:
        r = e.apply(method, params, t)
        out.append((r.ok, r.reason, json.dumps(r.value, sort_keys=True), [ev.to_dict() for ev in r.events]))
    return out


def test_same_commands_same_events_and_state() -> None:
    cmds = commands(7, 1500)
    a, b = make_engine(), make_engine()
    ra, rb = run(a, cmds), run(b, cmds)
    assert ra == rb
    assert a.snapshot() == b.snapshot()
    assert sum(1 for r in ra for ev in r[3] if ev["kind"] == "deal") > 100  # the workload really trades


def test_snapshot_restore_then_continue_is_identical() -> None:
    cmds = commands(11, 1200)
    straight = make_engine()
    expected = run(straight, cmds)
    e = make_engine()
    got = run(e, cmds[:600])
    snap = json.loads(json.dumps(e.snapshot()))  # through JSON, as it will be stored
    restored = Engine.restore(snap)
    got += run(restored, cmds[600:])
    assert got == expected
    assert restored.snapshot() == straight.snapshot()
