"""Scripted trading through the real matcher, for end-to-end market-data and websocket tests."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from matcher.client import MatcherClient, MatcherRejected


def fund(client: MatcherClient, user_ids: list[int], tag: str) -> None:
    for uid in user_ids:
        client.update_balance(uid, "USDT", "deposit", f"{tag}-usdt-{uid}", "1000000")
        client.update_balance(uid, "ETH", "deposit", f"{tag}-eth-{uid}", "1000")


def trade_randomly(client: MatcherClient, user_ids: list[int], rng: random.Random, steps: int,
                   market: str = "ETH_USDT", mid: int = 200000) -> dict[str, int]:
    """Limit orders around ``mid`` (price ticks of 0.01), some crossing, some cancels, some market orders."""
    counts = {"placed": 0, "cancelled": 0, "market": 0, "rejected": 0}
    open_orders: list[tuple[int, int]] = []
    for _ in range(steps):
        uid = rng.choice(user_ids)
        roll = rng.random()
        try:
            if roll < 0.15 and open_orders:
                owner, oid = open_orders.pop(rng.randrange(len(open_orders)))
                try:
                    client.cancel(owner, market, order_id=oid)
                    counts["cancelled"] += 1
                except MatcherRejected:
                    pass  # already filled
            elif roll < 0.22:
                side = rng.choice(["buy", "sell"])
                amount = "500.00" if side == "buy" else f"{Decimal(rng.randrange(10, 20000)).scaleb(-4):f}"
                client.place_market(uid, market, side, amount)
                counts["market"] += 1
            else:
                side = rng.choice(["buy", "sell"])
                price = mid + rng.randrange(-400, 400) + (-150 if side == "buy" else 150)
                amount = Decimal(rng.randrange(10, 20000)).scaleb(-4)
                order: dict[str, Any] = client.place_limit(uid, market, side, f"{Decimal(price).scaleb(-2):f}",
                                                           f"{amount:f}")
                counts["placed"] += 1
                if order["status"] == "open":
                    open_orders.append((uid, order["id"]))
        except MatcherRejected:
            counts["rejected"] += 1
    return counts
