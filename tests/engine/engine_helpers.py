"""Shared helpers for the engine tests (pure Python, no Django)."""

from __future__ import annotations

from typing import Any

from matcher.engine import Engine, Result
from matcher.engine.events import BalanceEvent

T = 1_700_000_000_000  # a fixed time in ms; tests pass times explicitly


def make_engine(maker_fee: str = "0.001", taker_fee: str = "0.002") -> Engine:
    """ETH(18)/USDT(6) with ETH_USDT (price 2 dp, amount 4 dp) and TOKEN(8)/TOKEN_USDT (price 3, amount 2)."""
    e = Engine()
    for name, prec in (("ETH", 18), ("USDT", 6), ("TOKEN", 8)):
        assert e.apply("add_asset", {"name": name, "prec": prec}, 0).ok
    r = e.apply(
        "add_market",
        {
            "name": "ETH_USDT",
            "base": "ETH",
            "quote": "USDT",
            "price_prec": 2,
            "amount_prec": 4,
            "min_amount": "0.001",
            "min_notional": "1",
            "maker_fee": maker_fee,
            "taker_fee": taker_fee,
        },
        0,
    )
    assert r.ok, r.reason
    r = e.apply(
        "add_market",
        {
            "name": "TOKEN_USDT",
            "base": "TOKEN",
            "quote": "USDT",
            "price_prec": 3,
            "amount_prec": 2,
            "min_amount": "0.01",
            "min_notional": "0.001",
            "maker_fee": maker_fee,
            "taker_fee": taker_fee,
        },
        0,
    )
    assert r.ok, r.reason
    return e


_deposit_ids = iter(range(1, 10**9))


def deposit(e: Engine, user: int, asset: str, amount: str) -> Result:
    r = e.apply(
        "update_balance",
        {
            "user": user,
            "asset": asset,
            "business": "deposit",
            "business_id": f"d{next(_deposit_ids)}",
            "change": amount,
        },
        T,
    )
    assert r.ok, r.reason
    return r


def limit(e: Engine, user: int, side: str, price: str, amount: str, market: str = "ETH_USDT", **kw: Any) -> Result:
    params = {"user": user, "market": market, "side": side, "price": price, "amount": amount, **kw}
    return e.apply("place_limit", params, T)


def market_order(e: Engine, user: int, side: str, amount: str, market: str = "ETH_USDT", **kw: Any) -> Result:
    return e.apply("place_market", {"user": user, "market": market, "side": side, "amount": amount, **kw}, T)


def bal(e: Engine, user: int, asset: str) -> tuple[str, str]:
    """(available, frozen) as decimal strings."""
    d = e.balances_str(user).get(asset)
    prec = e.assets[asset].prec
    if d is None:
        zero = "0." + "0" * prec if prec else "0"
        return (zero, zero)
    return (d["available"], d["frozen"])


def assert_rejected(e: Engine, method: str, params: dict[str, Any], reason: str) -> None:
    """The command is refused with ``reason`` and nothing changes, no event, no id consumed."""
    before = e.snapshot()
    r = e.apply(method, params, T)
    assert not r.ok
    assert r.reason == reason
    assert r.events == []
    assert e.snapshot() == before


def kinds(r: Result) -> list[str]:
    out = []
    for ev in r.events:
        d = ev.to_dict()
        out.append(f"{d['kind']}:{d.get('event') or d.get('business') or ''}")
    return out


def check_ledger(events: list[Any], ledger: dict[tuple[int, str], int]) -> None:
    """Every balance event's available+frozen equals the previous total plus change."""
    for ev in events:
        if isinstance(ev, BalanceEvent):
            key = (ev.user, ev.asset.name)
            prev = ledger.get(key, 0)
            assert ev.available + ev.frozen == prev + ev.change, ev
            assert ev.available >= 0 and ev.frozen >= 0
            ledger[key] = ev.available + ev.frozen
