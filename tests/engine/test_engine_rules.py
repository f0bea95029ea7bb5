"""One test per engine rule and reason code, with exact values."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import T, assert_rejected, bal, check_ledger, deposit, kinds, limit, make_engine, market_order

from matcher.engine import BalanceEvent, DealEvent, Engine, OrderEvent
from matcher.engine.reasons import ALL_REASONS


@pytest.fixture
def e() -> Engine:
    return make_engine()


def funded() -> Engine:
    e = make_engine()
    deposit(e, 1, "USDT", "100000")
    deposit(e, 2, "ETH", "100")
    deposit(e, 3, "USDT", "100000")
    deposit(e, 3, "ETH", "100")
    return e


def lp(user: int, side: str, price: str, amount: str, **kw: Any) -> dict[str, Any]:
    return {"user": user, "market": "ETH_USDT", "side": side, "price": price, "amount": amount, **kw}


# ---------------------------------------------------------------- admin


def test_add_asset_and_market_rules(e: Engine) -> None:
    assert_rejected(e, "add_asset", {"name": "ETH", "prec": 8}, "duplicate_asset")
    assert_rejected(e, "add_asset", {"name": "eth!", "prec": 8}, "invalid_argument")
    assert_rejected(e, "add_asset", {"name": "X", "prec": -1}, "invalid_argument")
    base = {"name": "ETH_USDT", "base": "ETH", "quote": "USDT", "price_prec": 2, "amount_prec": 4}
    assert_rejected(e, "add_market", base, "duplicate_market")
    assert_rejected(e, "add_market", {**base, "name": "ETH_DAI", "quote": "DAI"}, "unknown_asset")
    # quote.prec (6) must cover price_prec + amount_prec (3 + 4)
    assert_rejected(e, "add_market", {**base, "name": "TOKEN_USDT", "base": "TOKEN", "price_prec": 3, "amount_prec": 4},
                    "invalid_precision")
    # base.prec must cover amount_prec
    assert e.apply("add_asset", {"name": "BTC", "prec": 2}, T).ok
    assert_rejected(e, "add_market", {**base, "name": "BTC_USDT", "base": "BTC", "amount_prec": 3, "price_prec": 1},
                    "invalid_precision")
    assert [m["name"] for m in e.list_markets()] == ["ETH_USDT", "TOKEN_USDT"]
    assert [a["name"] for a in e.list_assets()] == ["ETH", "USDT", "TOKEN", "BTC"]


def test_unknown_method_and_bad_params(e: Engine) -> None:
    assert_rejected(e, "place_order", {}, "unknown_method")
    deposit(e, 1, "USDT", "1000")
    assert_rejected(e, "place_limit", {"market": "ETH_USDT", "side": "buy", "price": "1", "amount": "1"},
                    "invalid_argument")
    assert_rejected(e, "place_limit", lp(1, "bid", "2000", "1"), "invalid_argument")
    assert_rejected(e, "place_limit", lp("1", "buy", "2000", "1"), "invalid_argument")
    assert_rejected(e, "place_limit", lp(True, "buy", "2000", "1"), "invalid_argument")
    assert_rejected(e, "place_limit", lp(1, "buy", "2000", "1", tif="GTD"), "invalid_argument")
    assert_rejected(e, "place_limit", lp(1, "buy", "2000", "1", stp="nope"), "invalid_argument")
    assert_rejected(e, "place_limit", lp(1, "buy", "2000", "1", post_only="yes"), "invalid_argument")
    assert_rejected(e, "place_limit", lp(1, "buy", "2000", "1", post_only=True, tif="IOC"), "invalid_argument")
    assert_rejected(e, "place_limit", lp(1, "buy", "2000", "1", colour="red"), "invalid_argument")
    assert_rejected(e, "place_limit", lp(1, "buy", 2000.0, "1"), "invalid_argument")
    assert_rejected(e, "place_limit", lp(0, "buy", "2000", "0.01"), "invalid_argument")  # the fee account
    r = e.apply("place_limit", lp(1, "buy", "2000", "0.01"), -5)
    assert r.reason == "invalid_argument"


def test_precision_and_amount_reasons(e: Engine) -> None:
    deposit(e, 1, "USDT", "100000")
    assert_rejected(e, "place_limit", lp(1, "buy", "2000.001", "1"), "invalid_precision")
    assert_rejected(e, "place_limit", lp(1, "buy", "2000", "1.00001"), "invalid_precision")
    assert_rejected(e, "place_limit", lp(1, "buy", "NaN", "1"), "invalid_amount")
    assert_rejected(e, "place_limit", lp(1, "buy", "2000", "1e1"), "invalid_amount")
    assert_rejected(e, "place_limit", lp(1, "buy", "0", "1"), "invalid_amount")
    assert_rejected(e, "place_limit", lp(1, "buy", "-2000", "1"), "invalid_amount")
    assert_rejected(e, "place_limit", lp(1, "buy", "2000", "0"), "invalid_amount")
    assert_rejected(e, "place_limit", lp(1, "buy", "1" * 45, "1"), "invalid_amount")


def test_min_amount_and_min_notional(e: Engine) -> None:
    deposit(e, 1, "USDT", "100000")
    assert_rejected(e, "place_limit", lp(1, "buy", "2000", "0.0009"), "below_min_amount")
    # 0.001 ETH at 999.99 USDT is 0.99999 USDT < min notional 1
    assert_rejected(e, "place_limit", lp(1, "buy", "999.99", "0.001"), "below_min_notional")
    assert e.apply("place_limit", lp(1, "buy", "1000", "0.001"), T).ok


def test_insufficient_balance(e: Engine) -> None:
    deposit(e, 1, "USDT", "2000")
    deposit(e, 2, "ETH", "1")
    assert_rejected(e, "place_limit", lp(1, "buy", "2000", "1.0001"), "insufficient_balance")
    assert_rejected(e, "place_limit", lp(2, "sell", "2000", "1.0001"), "insufficient_balance")
    assert_rejected(e, "place_limit", lp(3, "sell", "2000", "1"), "insufficient_balance")  # no account at all
    assert e.apply("place_limit", lp(1, "buy", "2000", "1"), T).ok
    assert bal(e, 1, "USDT") == ("0.000000", "2000.000000")
    # frozen funds cannot be used twice
    assert_rejected(e, "place_limit", lp(1, "buy", "2000", "0.001"), "insufficient_balance")


# ---------------------------------------------------------------- update_balance


def test_update_balance(e: Engine) -> None:
    p = {"user": 1, "asset": "USDT", "business": "deposit", "business_id": "tx1", "change": "10.5",
         "detail": {"tx": "0xabc"}}
    r = e.apply("update_balance", p, T)
    assert r.ok
    assert r.value == {"user": 1, "asset": "USDT", "available": "10.500000", "frozen": "0.000000"}
    (ev,) = r.events
    assert ev.to_dict() == {"kind": "balance", "seq": 1, "user": 1, "asset": "USDT", "business": "deposit",
                            "business_id": "tx1", "change": "10.500000", "available": "10.500000",
                            "frozen": "0.000000", "time": T, "detail": {"tx": "0xabc"}}
    assert_rejected(e, "update_balance", p, "repeated_update")
    assert_rejected(e, "update_balance", {**p, "change": "-5", "business_id": "tx1"}, "repeated_update")
    w = {**p, "business": "withdraw", "business_id": "w1", "change": "-10.500001"}
    assert_rejected(e, "update_balance", w, "insufficient_balance")
    assert e.apply("update_balance", {**w, "change": "-10.5"}, T).ok
    assert bal(e, 1, "USDT") == ("0.000000", "0.000000")
    assert_rejected(e, "update_balance", {**p, "business_id": "x", "asset": "DOGE"}, "unknown_asset")
    assert_rejected(e, "update_balance", {**p, "business_id": "x", "change": "0"}, "invalid_amount")
    assert_rejected(e, "update_balance", {**p, "business_id": "x", "change": "0.0000001"}, "invalid_precision")
    assert_rejected(e, "update_balance", {**p, "business_id": "x", "business": "trade"}, "invalid_argument")
    assert_rejected(e, "update_balance", {**p, "business_id": 7}, "invalid_argument")
    assert_rejected(e, "update_balance", {**p, "business_id": "x", "detail": "no"}, "invalid_argument")


def test_withdraw_cannot_touch_frozen(e: Engine) -> None:
    deposit(e, 1, "USDT", "100")
    assert limit(e, 1, "buy", "1000", "0.05").ok  # freezes 50
    w = {"user": 1, "asset": "USDT", "business": "withdraw", "business_id": "w", "change": "-50.000001"}
    assert_rejected(e, "update_balance", w, "insufficient_balance")


# ---------------------------------------------------------------- matching


def test_resting_order_events_and_value(e: Engine) -> None:
    deposit(e, 1, "USDT", "10000")
    r = limit(e, 1, "buy", "2000", "1.5", client_order_id="my-1")
    assert r.ok and r.reason is None
    assert kinds(r) == ["order:new", "balance:freeze"]
    assert r.value == {
        "id": 1, "user": 1, "market": "ETH_USDT", "side": "buy", "type": "limit", "tif": "GTC",
        "post_only": False, "stp": "cancel_resting", "price": "2000.00", "amount": "1.5000", "quote_amount": None,
        "filled_amount": "0.0000", "filled_quote": "0.000000", "fee": "0.000000000000000000", "fee_asset": "ETH",
        "status": "open", "client_order_id": "my-1", "created_at": T, "updated_at": T,
    }
    freeze = r.events[1].to_dict()
    assert (freeze["change"], freeze["available"], freeze["frozen"]) == ("0.000000", "7000.000000", "3000.000000")
    assert e.get_order(1) == r.value
    assert e.open_orders(1) == [r.value]
    assert e.open_orders(1, "TOKEN_USDT") == []
    assert e.next_order_id == 2


def test_partial_fills_across_levels_exact_balances_and_fees() -> None:
    e = funded()
    for price in ("2000", "2001", "2002"):
        assert limit(e, 2, "sell", price, "1").ok
    r = limit(e, 1, "buy", "2002", "2.5")
    assert r.ok
    deals = [ev.to_dict() for ev in r.events if isinstance(ev, DealEvent)]
    assert [(d["price"], d["amount"], d["quote_amount"]) for d in deals] == [
        ("2000.00", "1.0000", "2000.000000"),
        ("2001.00", "1.0000", "2001.000000"),
        ("2002.00", "0.5000", "1001.000000"),
    ]
    assert deals[0]["maker_fee"] == "2.000000" and deals[0]["maker_fee_asset"] == "USDT"
    assert deals[0]["taker_fee"] == "0.002000000000000000" and deals[0]["taker_fee_asset"] == "ETH"
    assert deals[2]["maker_order_id"] == 3 and deals[2]["taker_order_id"] == 4 and deals[2]["taker_side"] == "buy"
    assert r.value["status"] == "filled" and r.value["filled_quote"] == "5002.000000"
    assert r.value["fee"] == "0.005000000000000000"
    assert bal(e, 1, "USDT") == ("94998.000000", "0.000000")
    assert bal(e, 1, "ETH") == ("2.495000000000000000", "0.000000000000000000")
    assert bal(e, 2, "USDT") == ("4996.998000", "0.000000")  # 5002 - 0.1%
    assert bal(e, 2, "ETH") == ("97.000000000000000000", "0.500000000000000000")
    assert bal(e, 0, "USDT") == ("5.002000", "0.000000")
    assert bal(e, 0, "ETH") == ("0.005000000000000000", "0.000000000000000000")
    assert e.depth("ETH_USDT", 5) == {"asks": [("2002.00", "0.5000")], "bids": []}
    # maker events: done filled for 1 and 2, update for 3
    makers = [(ev.order.id, ev.event, ev.reason) for ev in r.events if isinstance(ev, OrderEvent)]
    assert makers == [(4, "new", None), (1, "done", "filled"), (2, "done", "filled"), (3, "update", None),
                      (4, "done", "filled")]
    assert e.next_deal_id == 4


def test_deal_at_maker_price_and_buyer_freezes_rest_at_own_price() -> None:
    e = funded()
    assert limit(e, 2, "sell", "2000", "1").ok
    r = limit(e, 1, "buy", "2100", "2")
    assert r.ok and r.value["status"] == "open" and r.value["filled_amount"] == "1.0000"
    assert kinds(r)[-2:] == ["balance:freeze", "order:update"]
    # paid 2000 for the first ETH, froze 2100 for the rest
    assert bal(e, 1, "USDT") == ("95900.000000", "2100.000000")


def test_sell_taker_pays_fee_in_quote() -> None:
    e = funded()
    assert limit(e, 1, "buy", "2000", "1").ok
    r = limit(e, 2, "sell", "1999", "1")
    assert r.ok and r.value["fee"] == "4.000000" and r.value["fee_asset"] == "USDT"
    assert bal(e, 2, "USDT") == ("1996.000000", "0.000000")
    assert bal(e, 1, "ETH") == ("0.999000000000000000", "0.000000000000000000")
    assert bal(e, 1, "USDT") == ("98000.000000", "0.000000")


def test_fee_rounds_down_at_smallest_unit() -> None:
    e = make_engine()
    deposit(e, 1, "USDT", "100")
    deposit(e, 2, "TOKEN", "100")
    # 1.23 TOKEN at 0.123 = 0.15129 USDT; maker fee 0.1% = 0.00015129 -> 0.000151 (down)
    assert limit(e, 2, "sell", "0.123", "1.23", market="TOKEN_USDT").ok
    r = limit(e, 1, "buy", "0.123", "1.23", market="TOKEN_USDT")
    (deal,) = [ev.to_dict() for ev in r.events if isinstance(ev, DealEvent)]
    assert deal["quote_amount"] == "0.151290"
    assert deal["maker_fee"] == "0.000151"
    assert deal["taker_fee"] == "0.00246000"  # 0.2% of 1.23 TOKEN, exact
    assert bal(e, 2, "USDT") == ("0.151139", "0.000000")
    assert bal(e, 0, "USDT") == ("0.000151", "0.000000")
    assert e.balance_totals() == {"ETH": 0, "USDT": 100 * 10**6, "TOKEN": 100 * 10**8}


def test_fee_below_one_unit_is_zero_and_not_emitted() -> None:
    e = make_engine()
    deposit(e, 1, "USDT", "100")
    deposit(e, 2, "TOKEN", "100")
    assert limit(e, 2, "sell", "0.1", "0.01", market="TOKEN_USDT").ok  # notional 0.001 USDT = 1000 units
    r = limit(e, 1, "buy", "0.1", "0.01", market="TOKEN_USDT")
    (deal,) = [ev for ev in r.events if isinstance(ev, DealEvent)]
    assert deal.maker_fee == 1  # 1000 units * 0.1% = 1 unit exactly
    assert deal.taker_fee == 2000  # 10**6 TOKEN units * 0.2%
    e.apply("set_fees", {"market": "TOKEN_USDT", "maker_fee": "0.0009", "taker_fee": "0"}, T)
    assert limit(e, 2, "sell", "0.1", "0.01", market="TOKEN_USDT").ok
    r = limit(e, 1, "buy", "0.1", "0.01", market="TOKEN_USDT")
    (deal,) = [ev for ev in r.events if isinstance(ev, DealEvent)]
    assert (deal.maker_fee, deal.taker_fee) == (0, 0)  # 0.9 unit rounds down to 0
    assert not [ev for ev in r.events if isinstance(ev, BalanceEvent) and ev.business == "fee"]


def test_user_fee_override() -> None:
    e = funded()
    r = e.apply("set_fees", {"market": "ETH_USDT", "user": 2, "maker_fee": "0", "taker_fee": "0.0005"}, T)
    assert r.ok and r.value["user_fees"] == {"2": {"maker_fee": "0.0", "taker_fee": "0.0005"}}
    assert limit(e, 2, "sell", "2000", "1").ok
    r = limit(e, 1, "buy", "2000", "1")
    (deal,) = [ev.to_dict() for ev in r.events if isinstance(ev, DealEvent)]
    assert deal["maker_fee"] == "0.000000"
    assert deal["taker_fee"] == "0.002000000000000000"
    # removing the override
    assert e.apply("set_fees", {"market": "ETH_USDT", "user": 2}, T).ok
    assert e.list_markets()[0]["user_fees"] == {}
    assert_rejected(e, "set_fees", {"market": "ETH_USDT", "maker_fee": "0.001"}, "invalid_argument")
    assert_rejected(e, "set_fees", {"market": "ETH_USDT", "maker_fee": "1", "taker_fee": "0"}, "invalid_amount")
    assert_rejected(e, "set_fees", {"market": "XX_USDT", "maker_fee": "0", "taker_fee": "0"}, "unknown_market")


# ---------------------------------------------------------------- time in force, post-only


def test_ioc_partial_fill_expires_rest() -> None:
    e = funded()
    assert limit(e, 2, "sell", "2000", "0.4").ok
    r = limit(e, 1, "buy", "2000", "1", tif="IOC")
    assert r.ok and r.value["status"] == "expired" and r.value["filled_amount"] == "0.4000"
    assert r.events[-1].reason == "expired"
    assert bal(e, 1, "USDT")[1] == "0.000000" and e.open_orders(1) == []
    r = limit(e, 1, "buy", "1000", "1", tif="IOC")  # nothing to trade with: expires at once
    assert r.ok and kinds(r) == ["order:new", "order:done"] and r.value["status"] == "expired"


def test_fok() -> None:
    e = funded()
    assert limit(e, 2, "sell", "2000", "0.5").ok
    assert limit(e, 2, "sell", "2001", "0.5").ok
    assert_rejected(e, "place_limit", lp(1, "buy", "2001", "1.0001", tif="FOK"), "fok_unfillable")
    assert_rejected(e, "place_limit", lp(1, "buy", "2000", "0.6", tif="FOK"), "fok_unfillable")
    assert_rejected(e, "place_limit", lp(1, "sell", "1000", "0.01", tif="FOK"), "insufficient_balance")
    r = limit(e, 1, "buy", "2001", "1", tif="FOK")
    assert r.ok and r.value["status"] == "filled"


def test_fok_against_empty_book(e: Engine) -> None:
    deposit(e, 1, "USDT", "10000")
    assert_rejected(e, "place_limit", lp(1, "buy", "2000", "1", tif="FOK"), "fok_unfillable")


def test_post_only() -> None:
    e = funded()
    assert limit(e, 2, "sell", "2000", "1").ok
    assert_rejected(e, "place_limit", lp(1, "buy", "2000", "1", post_only=True), "would_take")
    r = limit(e, 1, "buy", "1999.99", "1", post_only=True)
    assert r.ok and r.value["post_only"] is True and r.value["status"] == "open"


# ---------------------------------------------------------------- self-trade prevention


def stp_book() -> Engine:
    e = funded()
    assert limit(e, 3, "sell", "2000", "1").ok  # id 1: user 3's own order, best price
    assert limit(e, 2, "sell", "2001", "1").ok  # id 2
    return e


def test_stp_cancel_resting_is_default() -> None:
    e = stp_book()
    r = limit(e, 3, "buy", "2001", "2")
    assert r.ok
    done = [(ev.order.id, ev.reason) for ev in r.events if isinstance(ev, OrderEvent) and ev.event == "done"]
    assert done[0] == (1, "self_trade")
    deals = [ev for ev in r.events if isinstance(ev, DealEvent)]
    assert [(d.maker_order_id, d.amount) for d in deals] == [(2, 10_000)]
    assert r.value["status"] == "open" and r.value["filled_amount"] == "1.0000"
    assert bal(e, 3, "ETH")[1] == "0.000000000000000000"  # the cancelled sell released its ETH


def test_stp_cancel_incoming() -> None:
    e = stp_book()
    r = limit(e, 3, "buy", "2001", "2", stp="cancel_incoming")
    assert r.ok and r.value["status"] == "cancelled" and r.events[-1].reason == "self_trade"
    assert not [ev for ev in r.events if isinstance(ev, DealEvent)]
    assert e.get_order(1) is not None and bal(e, 3, "USDT") == ("100000.000000", "0.000000")


def test_stp_cancel_both() -> None:
    e = stp_book()
    r = limit(e, 3, "buy", "2001", "2", stp="cancel_both")
    assert r.ok
    done = [(ev.order.id, ev.reason) for ev in r.events if isinstance(ev, OrderEvent) and ev.event == "done"]
    assert done == [(1, "self_trade"), (3, "self_trade")]
    assert e.get_order(1) is None and e.get_order(2) is not None


def test_stp_with_fok_counts_only_reachable_liquidity() -> None:
    e = stp_book()
    assert_rejected(e, "place_limit", lp(3, "buy", "2001", "1", tif="FOK", stp="cancel_incoming"), "fok_unfillable")
    r = limit(e, 3, "buy", "2001", "1", tif="FOK")  # cancel_resting: own order skipped, user 2's fills it
    assert r.ok and r.value["status"] == "filled"


# ---------------------------------------------------------------- market orders


def test_market_order_against_empty_book(e: Engine) -> None:
    deposit(e, 1, "USDT", "10000")
    assert_rejected(e, "place_market", {"user": 1, "market": "ETH_USDT", "side": "buy", "amount": "100"},
                    "no_liquidity")


def test_market_buy_thin_book_expires() -> None:
    e = funded()
    assert limit(e, 2, "sell", "2000", "1").ok
    r = market_order(e, 1, "buy", "5000")
    assert r.ok
    assert r.value["type"] == "market" and r.value["status"] == "expired"
    assert r.value["quote_amount"] == "5000.000000" and r.value["amount"] is None and r.value["price"] is None
    assert r.value["filled_amount"] == "1.0000" and r.value["filled_quote"] == "2000.000000"
    assert bal(e, 1, "USDT") == ("98000.000000", "0.000000")


def test_market_buy_rounds_base_down_and_keeps_dust() -> None:
    e = funded()
    assert limit(e, 2, "sell", "2000", "1").ok
    assert limit(e, 2, "sell", "3000", "1").ok
    r = market_order(e, 1, "buy", "2500")
    # 1 ETH for 2000, then floor(500 / 3000 per ETH) at 0.0001 ETH ticks = 0.1666 ETH for 499.8
    assert r.value["status"] == "filled"
    assert r.value["filled_amount"] == "1.1666" and r.value["filled_quote"] == "2499.800000"
    assert bal(e, 1, "USDT") == ("97500.200000", "0.000000")


def test_market_buy_below_one_tick(e: Engine) -> None:
    deposit(e, 1, "USDT", "1000")
    deposit(e, 2, "ETH", "1")
    assert limit(e, 2, "sell", "20000", "0.001").ok  # one tick (0.0001 ETH) costs 2 USDT
    mp = {"user": 1, "market": "ETH_USDT", "side": "buy"}
    assert_rejected(e, "place_market", {**mp, "amount": "1.5"}, "below_min_amount")
    assert_rejected(e, "place_market", {**mp, "amount": "0.5"}, "below_min_notional")
    assert_rejected(e, "place_market", {**mp, "amount": "1000.000001"}, "insufficient_balance")
    assert_rejected(e, "place_market", {**mp, "amount": "1.0000001"}, "invalid_precision")


def test_market_sell() -> None:
    e = funded()
    assert limit(e, 1, "buy", "2000", "1").ok
    assert limit(e, 1, "buy", "1990", "1").ok
    r = market_order(e, 2, "sell", "1.5")
    assert r.value["status"] == "filled" and r.value["filled_quote"] == "2995.000000"
    assert r.value["fee"] == "5.990000"
    mp = {"user": 2, "market": "ETH_USDT", "side": "sell"}
    assert_rejected(e, "place_market", {**mp, "amount": "0.0009"}, "below_min_amount")
    assert_rejected(e, "place_market", {**mp, "amount": "1000"}, "insufficient_balance")
    r = market_order(e, 2, "sell", "1")  # only 0.5 left in the book
    assert r.value["status"] == "expired" and r.value["filled_amount"] == "0.5000"


# ---------------------------------------------------------------- halts, cancels, client order ids


def test_halted_market() -> None:
    e = funded()
    assert limit(e, 1, "buy", "2000", "1").ok
    assert e.apply("halt_market", {"market": "ETH_USDT"}, T).value["status"] == "halted"
    assert_rejected(e, "place_limit", lp(1, "buy", "2000", "1"), "market_halted")
    assert_rejected(e, "place_market", {"user": 2, "market": "ETH_USDT", "side": "sell", "amount": "1"},
                    "market_halted")
    assert e.apply("cancel", {"user": 1, "market": "ETH_USDT", "order_id": 1}, T).ok  # cancels still allowed
    assert e.apply("resume_market", {"market": "ETH_USDT"}, T).ok
    assert limit(e, 1, "buy", "2000", "1").ok
    assert_rejected(e, "halt_market", {"market": "NOPE"}, "unknown_market")


def test_unknown_market(e: Engine) -> None:
    assert_rejected(e, "place_limit", {**lp(1, "buy", "1", "1"), "market": "BTC_USDT"}, "unknown_market")
    assert_rejected(e, "cancel", {"user": 1, "market": "BTC_USDT", "order_id": 1}, "unknown_market")
    assert_rejected(e, "cancel_all", {"user": 1, "market": "BTC_USDT"}, "unknown_market")


def test_cancel() -> None:
    e = funded()
    assert limit(e, 1, "buy", "2000", "1", client_order_id="abc").ok
    assert_rejected(e, "cancel", {"user": 1, "market": "ETH_USDT", "order_id": 99}, "unknown_order")
    assert_rejected(e, "cancel", {"user": 2, "market": "ETH_USDT", "order_id": 1}, "not_owner")
    assert_rejected(e, "cancel", {"user": 1, "market": "TOKEN_USDT", "order_id": 1}, "unknown_order")
    assert_rejected(e, "cancel", {"user": 2, "market": "ETH_USDT", "client_order_id": "abc"}, "unknown_order")
    assert_rejected(e, "cancel", {"user": 1, "market": "ETH_USDT"}, "invalid_argument")
    assert_rejected(e, "cancel", {"user": 1, "market": "ETH_USDT", "order_id": 1, "client_order_id": "abc"},
                    "invalid_argument")
    r = e.apply("cancel", {"user": 1, "market": "ETH_USDT", "client_order_id": "abc"}, T + 5)
    assert r.ok and kinds(r) == ["order:done", "balance:unfreeze"]
    assert r.value["status"] == "cancelled" and r.value["updated_at"] == T + 5
    assert r.events[0].reason == "cancelled"
    assert bal(e, 1, "USDT") == ("100000.000000", "0.000000")
    assert_rejected(e, "cancel", {"user": 1, "market": "ETH_USDT", "order_id": 1}, "unknown_order")


def test_client_order_id_unique_per_user_forever() -> None:
    e = funded()
    assert limit(e, 1, "buy", "2000", "1", client_order_id="x").ok
    assert_rejected(e, "place_limit", lp(1, "buy", "1999", "1", client_order_id="x"), "duplicate_client_order_id")
    assert e.apply("cancel", {"user": 1, "market": "ETH_USDT", "order_id": 1}, T).ok
    assert_rejected(e, "place_limit", lp(1, "buy", "1999", "1", client_order_id="x"), "duplicate_client_order_id")
    assert_rejected(e, "place_market", {"user": 1, "market": "ETH_USDT", "side": "buy", "amount": "10",
                                        "client_order_id": "x"}, "duplicate_client_order_id")
    assert limit(e, 3, "buy", "1999", "1", client_order_id="x").ok  # another user may use it


def test_cancel_all() -> None:
    e = funded()
    deposit(e, 1, "USDT", "1")
    deposit(e, 3, "TOKEN", "100")
    assert limit(e, 3, "buy", "2000", "1").ok
    assert limit(e, 3, "sell", "2100", "1").ok
    assert limit(e, 3, "sell", "1", "10", market="TOKEN_USDT").ok
    r = e.apply("cancel_all", {"user": 3, "market": "ETH_USDT"}, T)
    assert r.ok and r.value == [1, 2] and len(r.events) == 4
    r = e.apply("cancel_all", {"user": 3}, T)
    assert r.value == [3]
    r = e.apply("cancel_all", {"user": 3}, T)
    assert r.ok and r.value == [] and r.events == []
    assert e.balances(3)["USDT"][1] == 0 and e.balances(3)["ETH"][1] == 0 and e.balances(3)["TOKEN"][1] == 0


# ---------------------------------------------------------------- queries and events


def test_depth_merged_by_interval() -> None:
    e = funded()
    for price in ("1990.10", "1990.55", "1991.00"):
        assert limit(e, 1, "buy", price, "1").ok
    for price in ("2000.01", "2000.40", "2001.00", "2003.00"):
        assert limit(e, 2, "sell", price, "0.5").ok
    assert e.depth("ETH_USDT", 2) == {
        "asks": [("2000.01", "0.5000"), ("2000.40", "0.5000")],
        "bids": [("1991.00", "1.0000"), ("1990.55", "1.0000")],
    }
    assert e.depth("ETH_USDT", 10, "1") == {
        "asks": [("2001.00", "1.5000"), ("2003.00", "0.5000")],
        "bids": [("1991.00", "1.0000"), ("1990.00", "2.0000")],
    }
    assert e.depth("ETH_USDT", 1, "10") == {"asks": [("2010.00", "2.0000")], "bids": [("1990.00", "3.0000")]}


def test_event_sequence_and_ledger() -> None:
    e = funded()
    ledger = {(u, a): v[0] + v[1] for u in e.users() for a, v in e.balances(u).items()}
    seq = 4  # four deposits so far
    for r in (
        limit(e, 2, "sell", "2000", "1"),
        limit(e, 2, "sell", "2001", "1"),
        limit(e, 1, "buy", "2001", "1.5"),
        market_order(e, 3, "buy", "100"),
        e.apply("cancel_all", {"user": 2}, T),
    ):
        assert r.ok
        for ev in r.events:
            seq += 1
            assert ev.seq == seq
            d = ev.to_dict()
            assert d["kind"] == ev.kind and d["seq"] == seq
        check_ledger(r.events, ledger)
    assert e.event_seq == seq
    assert ledger == {(u, a): v[0] + v[1] for u in e.users() for a, v in e.balances(u).items()}


def test_rejections_list_only_known_codes() -> None:
    assert {"insufficient_balance", "invalid_precision", "below_min_amount", "below_min_notional", "would_take",
            "fok_unfillable", "no_liquidity", "market_halted", "unknown_market", "unknown_order", "not_owner",
            "duplicate_client_order_id", "repeated_update", "invalid_amount", "unknown_method",
            "invalid_argument"} <= ALL_REASONS
