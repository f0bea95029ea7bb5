"""Hypothesis stateful test: the engine against a separately written reference model.

The model keeps open orders in a plain list and finds the best maker by a
linear scan (min over price, then id); balances are a dict. It shares no code
with the engine except the conversion of ints to decimal strings for the
commands. After every step we check: same answer (ok/reason), same balances,
same open orders, per-asset conservation, no crossed book, frozen == what open
orders reserve, no negative balance, a contiguous event sequence whose
balance events form a consistent ledger, and a snapshot/restore round trip
that changes nothing.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from engine_helpers import check_ledger
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from matcher.engine import Engine, format_units

DEN = 10**8
USERS = st.integers(min_value=1, max_value=3)
ASSETS = {"ETH": 8, "USDT": 4, "TOKEN": 2}
MARKETS: dict[str, dict[str, Any]] = {
    # price_prec 1, amount_prec 3: base_mul 10**5, quote_mul 10**(4-1-3) = 1
    "ETH_USDT": {"base": "ETH", "quote": "USDT", "pp": 1, "ap": 3, "bmul": 10**5, "qmul": 1,
                 "min_amount": 2, "min_notional": 100, "prices": (990, 1010), "amounts": (1, 40)},
    # price_prec 2, amount_prec 1: base_mul 10, quote_mul 10**(4-2-1) = 10
    "TOKEN_USDT": {"base": "TOKEN", "quote": "USDT", "pp": 2, "ap": 1, "bmul": 10, "qmul": 10,
                   "min_amount": 1, "min_notional": 0, "prices": (95, 105), "amounts": (1, 30)},
}


class Model:
    """Obviously-correct reference: lists and linear scans, no books."""

    def __init__(self) -> None:
        self.bal: dict[tuple[int, str], list[int]] = {}
        self.orders: list[dict[str, Any]] = []  # open orders, in placement order
        self.coids: set[tuple[int, str]] = set()
        self.updates: set[tuple[str, str]] = set()
        self.credits = dict.fromkeys(ASSETS, 0)
        self.next_id = 1
        self.fees = {mk: [100_000, 250_000] for mk in MARKETS}
        self.user_fees: dict[tuple[str, int], tuple[int, int]] = {}
        self.halted = dict.fromkeys(MARKETS, False)

    def acct(self, user: int, asset: str) -> list[int]:
        return self.bal.setdefault((user, asset), [0, 0])

    def avail(self, user: int, asset: str) -> int:
        return self.bal.get((user, asset), [0, 0])[0]

    def rate(self, mk: str, user: int, maker: bool) -> int:
        f = self.user_fees.get((mk, user), tuple(self.fees[mk]))
        return f[0] if maker else f[1]

    def reserve(self, o: dict[str, Any]) -> tuple[str, int]:
        m = MARKETS[o["market"]]
        rem = o["amount"] - o["filled"]
        if o["side"] == "buy":
            return m["quote"], o["price"] * rem * m["qmul"]
        return m["base"], rem * m["bmul"]

    # -- commands; each returns None (accepted) or a reason code

    def update_balance(self, user: int, asset: str, bid: str, change: int) -> str | None:
        if ("deposit", bid) in self.updates:
            return "repeated_update"
        if self.avail(user, asset) + change < 0:
            return "insufficient_balance"
        self.updates.add(("deposit", bid))
        self.acct(user, asset)[0] += change
        self.credits[asset] += change
        return None

    def crossing(self, mk: str, side: str, price: int | None) -> list[dict[str, Any]]:
        return [
            o for o in self.orders
            if o["market"] == mk and o["side"] != side
            and (price is None or (o["price"] <= price if side == "buy" else o["price"] >= price))
        ]

    def place_limit(self, user: int, mk: str, side: str, price: int, amount: int, tif: str,
                    post_only: bool, coid: str | None, stp: str) -> str | None:
        m = MARKETS[mk]
        if self.halted[mk]:
            return "market_halted"
        if post_only and tif != "GTC":
            return "invalid_argument"
        if amount < m["min_amount"]:
            return "below_min_amount"
        if price * amount * m["qmul"] < m["min_notional"]:
            return "below_min_notional"
        if coid is not None and (user, coid) in self.coids:
            return "duplicate_client_order_id"
        if side == "buy":
            if self.avail(user, m["quote"]) < price * amount * m["qmul"]:
                return "insufficient_balance"
        elif self.avail(user, m["base"]) < amount * m["bmul"]:
            return "insufficient_balance"
        if post_only and self.crossing(mk, side, price):
            return "would_take"
        if tif == "FOK":
            trial = copy.deepcopy(self)
            if trial.execute(user, mk, side, price, amount, None, stp)[0]["filled"] < amount:
                return "fok_unfillable"
        if coid is not None:
            self.coids.add((user, coid))
        taker, ended = self.execute(user, mk, side, price, amount, None, stp)
        if ended is None and taker["filled"] < amount and tif == "GTC":
            taker["coid"] = coid
            self.orders.append(taker)
            asset, need = self.reserve(taker)
            a = self.acct(user, asset)
            a[0] -= need
            a[1] += need
        return None

    def place_market(self, user: int, mk: str, side: str, amount: int, coid: str | None, stp: str) -> str | None:
        m = MARKETS[mk]
        if self.halted[mk]:
            return "market_halted"
        if side == "buy":
            if amount < m["min_notional"]:
                return "below_min_notional"
        elif amount < m["min_amount"]:
            return "below_min_amount"
        if coid is not None and (user, coid) in self.coids:
            return "duplicate_client_order_id"
        need = amount if side == "buy" else amount * m["bmul"]
        if self.avail(user, m["quote"] if side == "buy" else m["base"]) < need:
            return "insufficient_balance"
        opp = self.crossing(mk, side, None)
        if not opp:
            return "no_liquidity"
        if side == "buy" and amount < min(o["price"] for o in opp) * m["qmul"]:
            return "below_min_amount"
        if coid is not None:
            self.coids.add((user, coid))
        if side == "buy":
            self.execute(user, mk, side, None, None, amount, stp)
        else:
            self.execute(user, mk, side, None, amount, None, stp)
        return None

    def execute(self, user: int, mk: str, side: str, price: int | None, amount: int | None,
                quote: int | None, stp: str) -> tuple[dict[str, Any], str | None]:
        m = MARKETS[mk]
        taker = {"id": self.next_id, "user": user, "market": mk, "side": side, "price": price,
                 "amount": amount, "filled": 0, "filled_quote": 0}
        self.next_id += 1
        while amount is None or taker["filled"] < amount:
            cands = self.crossing(mk, side, price)
            if not cands:
                return taker, None
            best = min(cands, key=lambda o: (o["price"] if side == "buy" else -o["price"], o["id"]))
            if best["user"] == user:
                if stp == "cancel_incoming":
                    return taker, "self_trade"
                self.cancel_order(best)
                if stp == "cancel_both":
                    return taker, "self_trade"
                continue
            left = best["amount"] - best["filled"]
            if quote is not None:
                take = min(left, (quote - taker["filled_quote"]) // (best["price"] * m["qmul"]))
                if take == 0:
                    return taker, "filled"
            else:
                assert amount is not None
                take = min(left, amount - taker["filled"])
            base_units = take * m["bmul"]
            quote_units = best["price"] * take * m["qmul"]
            buyer, seller = (taker, best) if side == "buy" else (best, taker)
            buyer_fee = base_units * self.rate(mk, buyer["user"], buyer is best) // DEN
            seller_fee = quote_units * self.rate(mk, seller["user"], seller is best) // DEN
            # the buyer pays quote (maker: from frozen, taker: from available)
            self.acct(buyer["user"], m["quote"])[1 if buyer is best else 0] -= quote_units
            self.acct(seller["user"], m["base"])[1 if seller is best else 0] -= base_units
            self.acct(buyer["user"], m["base"])[0] += base_units - buyer_fee
            self.acct(seller["user"], m["quote"])[0] += quote_units - seller_fee
            self.acct(0, m["base"])[0] += buyer_fee
            self.acct(0, m["quote"])[0] += seller_fee
            for o in (taker, best):
                o["filled"] += take
                o["filled_quote"] += quote_units
            if best["filled"] == best["amount"]:
                self.orders.remove(best)
        return taker, None

    def cancel_order(self, o: dict[str, Any]) -> None:
        self.orders.remove(o)
        asset, amount = self.reserve(o)
        a = self.acct(o["user"], asset)
        a[0] += amount
        a[1] -= amount

    def cancel(self, user: int, mk: str, order_id: int | None, coid: str | None) -> str | None:
        if order_id is not None:
            found = [o for o in self.orders if o["id"] == order_id and o["market"] == mk]
            if not found:
                return "unknown_order"
            if found[0]["user"] != user:
                return "not_owner"
        else:
            found = [o for o in self.orders if o["user"] == user and o["coid"] == coid and o["market"] == mk]
            if not found:
                return "unknown_order"
        self.cancel_order(found[0])
        return None

    def cancel_all(self, user: int, mk: str | None) -> str | None:
        for o in [o for o in self.orders if o["user"] == user and (mk is None or o["market"] == mk)]:
            self.cancel_order(o)
        return None


def fmt_fee(rate: int) -> str:
    return format_units(rate, 8)


class EngineVsModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.e = Engine()
        for name, prec in ASSETS.items():
            assert self.e.apply("add_asset", {"name": name, "prec": prec}, 0).ok
        for mk, m in MARKETS.items():
            r = self.e.apply("add_market", {
                "name": mk, "base": m["base"], "quote": m["quote"], "price_prec": m["pp"], "amount_prec": m["ap"],
                "min_amount": format_units(m["min_amount"], m["ap"]),
                "min_notional": format_units(m["min_notional"], ASSETS[m["quote"]]),
                "maker_fee": "0.001", "taker_fee": "0.0025"}, 0)
            assert r.ok, r.reason
        self.model = Model()
        self.time = 1000
        self.seq = 0
        self.ledger: dict[tuple[int, str], int] = {}
        self.coid_n = 0
        initial = {"ETH": 10**8, "USDT": 2 * 10**6, "TOKEN": 10**4}  # 1 ETH, 200 USDT, 100 TOKEN
        for user in (1, 2, 3):
            for asset, units in initial.items():
                bid = f"init-{user}-{asset}"
                expected = self.model.update_balance(user, asset, bid, units)
                self.run("update_balance", {"user": user, "asset": asset, "business": "deposit",
                                            "business_id": bid, "change": format_units(units, ASSETS[asset])},
                         expected)

    def run(self, method: str, params: dict[str, Any], expected: str | None) -> None:
        self.time += 1
        r = self.e.apply(method, params, self.time)
        assert r.reason == expected, (method, params, r.reason, expected)
        assert r.ok == (expected is None)
        event(f"{method}: {expected or 'ok'}")
        if any(ev.kind == "deal" for ev in r.events):
            event(f"{method}: traded")
        if not r.ok:
            assert r.events == []
        for ev in r.events:
            self.seq += 1
            assert ev.seq == self.seq
            json.dumps(ev.to_dict())  # JSON-compatible, as the outbox stores it
        check_ledger(r.events, self.ledger)
        assert self.e.event_seq == self.seq

    # ------------------------------------------------------------ rules

    @rule(user=st.integers(0, 3), asset=st.sampled_from(sorted(ASSETS)), units=st.integers(1, 10**6),
          withdraw=st.booleans(), bid=st.integers(0, 400))
    def update_balance(self, user: int, asset: str, units: int, withdraw: bool, bid: int) -> None:
        change = -units if withdraw else units * 100
        expected = self.model.update_balance(user, asset, str(bid), change)
        self.run("update_balance", {"user": user, "asset": asset, "business": "deposit",
                                    "business_id": str(bid), "change": format_units(change, ASSETS[asset])},
                 expected)

    @rule(data=st.data(), user=USERS, mk=st.sampled_from(sorted(MARKETS)), side=st.sampled_from(["buy", "sell"]),
          tif=st.sampled_from(["GTC", "GTC", "GTC", "IOC", "FOK"]), post_only=st.booleans(),
          stp=st.sampled_from(["cancel_resting", "cancel_incoming", "cancel_both"]), use_coid=st.booleans())
    def place_limit(self, data: st.DataObject, user: int, mk: str, side: str, tif: str, post_only: bool,
                    stp: str, use_coid: bool) -> None:
        m = MARKETS[mk]
        price = data.draw(st.integers(*m["prices"]))
        amount = data.draw(st.integers(*m["amounts"]))
        post_only = post_only and tif == "GTC"
        coid = None
        if use_coid:
            coid = data.draw(st.sampled_from(["a", "b"])) if data.draw(st.booleans()) else f"c{self.coid_n}"
            self.coid_n += 1
        expected = self.model.place_limit(user, mk, side, price, amount, tif, post_only, coid, stp)
        self.run("place_limit", {"user": user, "market": mk, "side": side, "price": format_units(price, m["pp"]),
                                 "amount": format_units(amount, m["ap"]), "tif": tif, "post_only": post_only,
                                 "client_order_id": coid, "stp": stp}, expected)

    def _place_gtc(self, data: st.DataObject, user: int, mk: str, side: str) -> None:
        m = MARKETS[mk]
        price = data.draw(st.integers(*m["prices"]))
        amount = data.draw(st.integers(*m["amounts"]))
        expected = self.model.place_limit(user, mk, side, price, amount, "GTC", False, None, "cancel_resting")
        self.run("place_limit", {"user": user, "market": mk, "side": side, "price": format_units(price, m["pp"]),
                                 "amount": format_units(amount, m["ap"])}, expected)

    # the common case, as two rules so that it is drawn more often and books fill up and trade
    @rule(data=st.data(), user=USERS, mk=st.sampled_from(sorted(MARKETS)), side=st.sampled_from(["buy", "sell"]))
    def place_gtc(self, data: st.DataObject, user: int, mk: str, side: str) -> None:
        self._place_gtc(data, user, mk, side)

    @rule(data=st.data(), user=USERS, mk=st.sampled_from(sorted(MARKETS)), side=st.sampled_from(["buy", "sell"]))
    def place_gtc_too(self, data: st.DataObject, user: int, mk: str, side: str) -> None:
        self._place_gtc(data, user, mk, side)

    @rule(data=st.data(), user=USERS, mk=st.sampled_from(sorted(MARKETS)), side=st.sampled_from(["buy", "sell"]),
          stp=st.sampled_from(["cancel_resting", "cancel_incoming", "cancel_both"]))
    def place_market(self, data: st.DataObject, user: int, mk: str, side: str, stp: str) -> None:
        m = MARKETS[mk]
        if side == "buy":
            amount = data.draw(st.integers(1, 60_000))
            text = format_units(amount, ASSETS[m["quote"]])
        else:
            amount = data.draw(st.integers(*m["amounts"]))
            text = format_units(amount, m["ap"])
        expected = self.model.place_market(user, mk, side, amount, None, stp)
        self.run("place_market", {"user": user, "market": mk, "side": side, "amount": text, "stp": stp}, expected)

    @rule(data=st.data(), user=USERS, mk=st.sampled_from(sorted(MARKETS)), order_id=st.integers(1, 60))
    def cancel(self, data: st.DataObject, user: int, mk: str, order_id: int) -> None:
        if self.model.orders and data.draw(st.booleans()):
            o = data.draw(st.sampled_from(self.model.orders))
            order_id = o["id"]
            if data.draw(st.integers(0, 3)):
                user, mk = o["user"], o["market"]
        expected = self.model.cancel(user, mk, order_id, None)
        self.run("cancel", {"user": user, "market": mk, "order_id": order_id}, expected)

    @rule(user=USERS, mk=st.sampled_from(sorted(MARKETS)), coid=st.sampled_from(["a", "b"]))
    def cancel_by_coid(self, user: int, mk: str, coid: str) -> None:
        expected = self.model.cancel(user, mk, None, coid)
        self.run("cancel", {"user": user, "market": mk, "client_order_id": coid}, expected)

    @rule(user=USERS, mk=st.sampled_from([None, *sorted(MARKETS)]))
    def cancel_all(self, user: int, mk: str | None) -> None:
        expected = self.model.cancel_all(user, mk)
        self.run("cancel_all", {"user": user, "market": mk}, expected)

    @rule(mk=st.sampled_from(sorted(MARKETS)), halt=st.sampled_from([True, False, False, False]))
    def halt_or_resume(self, mk: str, halt: bool) -> None:
        self.model.halted[mk] = halt
        self.run("halt_market" if halt else "resume_market", {"market": mk}, None)

    @rule(mk=st.sampled_from(sorted(MARKETS)), user=st.none() | USERS,
          maker=st.integers(0, 5_000_000), taker=st.integers(0, 5_000_000))
    def set_fees(self, mk: str, user: int | None, maker: int, taker: int) -> None:
        if user is None:
            self.model.fees[mk] = [maker, taker]
        else:
            self.model.user_fees[(mk, user)] = (maker, taker)
        self.run("set_fees", {"market": mk, "user": user, "maker_fee": fmt_fee(maker), "taker_fee": fmt_fee(taker)},
                 None)

    @rule()
    def snapshot_restore(self) -> None:
        """Continue on a restored copy: everything after must be as if nothing happened."""
        self.e = Engine.restore(self.e.snapshot())

    # ------------------------------------------------------------ invariants

    @invariant()
    def same_balances(self) -> None:
        for user in range(4):
            got = self.e.balances(user)
            for asset in ASSETS:
                want = tuple(self.model.bal.get((user, asset), [0, 0]))
                assert got.get(asset, (0, 0)) == want, (user, asset)
                assert want[0] >= 0 and want[1] >= 0
                assert self.ledger.get((user, asset), 0) == want[0] + want[1]

    @invariant()
    def same_open_orders(self) -> None:
        rows = {row[0]: (row[1], row[2], row[3], row[7], row[8], row[9]) for row in self.e.snapshot()["orders"]}
        want = {o["id"]: (o["user"], o["market"], o["side"], o["price"], o["amount"], o["filled"])
                for o in self.model.orders}
        assert rows == want

    @invariant()
    def conservation(self) -> None:
        assert self.e.balance_totals() == self.model.credits

    @invariant()
    def book_not_crossed(self) -> None:
        for mk in MARKETS:
            d = self.e.depth(mk, 1)
            if d["asks"] and d["bids"]:
                assert float(d["bids"][0][0]) < float(d["asks"][0][0])

    @invariant()
    def frozen_is_reserved(self) -> None:
        reserved: dict[tuple[int, str], int] = {}
        for o in self.model.orders:
            asset, amount = self.model.reserve(o)
            reserved[(o["user"], asset)] = reserved.get((o["user"], asset), 0) + amount
        for user in range(4):
            for asset, (_, frozen) in self.e.balances(user).items():
                assert frozen == reserved.get((user, asset), 0)

    @invariant()
    def snapshot_round_trip(self) -> None:
        snap = self.e.snapshot()
        assert Engine.restore(snap).snapshot() == snap


EngineVsModel.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_engine_vs_model = EngineVsModel.TestCase
