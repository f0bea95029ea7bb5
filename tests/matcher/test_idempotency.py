"""Idempotency keys: a (business, business_id) credits once, a client_order_id places one order — also under
concurrency and across a restart."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from matcher.client import MatcherClient, MatcherRejected
from trading.models import Balance, BalanceHistory, Order


def test_same_balance_update_twice_credits_once(matcher, alice):
    c = matcher.client
    first = c.update_balance(alice.id, "USDT", "deposit", "0xabc:1", "250.5", detail={"tx": "0xabc"})
    assert first == {"asset": "USDT", "available": "250.500000", "frozen": "0.000000"}
    with pytest.raises(MatcherRejected) as exc:
        c.update_balance(alice.id, "USDT", "deposit", "0xabc:1", "250.5")
    assert exc.value.reason == "repeated_update" and exc.value.code == "FAILED_PRECONDITION"
    with pytest.raises(MatcherRejected):  # the key, not the amount, identifies the change
        c.update_balance(alice.id, "USDT", "deposit", "0xabc:1", "999")
    assert Balance.objects.get(user=alice, asset__symbol="USDT").available == Decimal("250.5")
    row = BalanceHistory.objects.get(business="deposit", business_id="0xabc:1")
    assert (row.change, row.detail) == (Decimal("250.5"), {"tx": "0xabc"})

    matcher.kill()
    matcher.start()
    with pytest.raises(MatcherRejected) as exc:
        matcher.client.update_balance(alice.id, "USDT", "deposit", "0xabc:1", "250.5")
    assert exc.value.reason == "repeated_update"
    assert matcher.client.balances(alice.id)["USDT"]["available"] == "250.500000"


def test_concurrent_copies_of_one_update_apply_once(matcher, alice):
    def send(_):
        with MatcherClient(matcher.addr, retries=0) as c:
            try:
                c.update_balance(alice.id, "ETH", "deposit", "race-1", "1.5")
                return "ok"
            except MatcherRejected as exc:
                return exc.reason

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(send, range(16)))
    assert sorted(outcomes) == ["ok"] + ["repeated_update"] * 15
    assert BalanceHistory.objects.filter(business_id="race-1").count() == 1
    assert matcher.client.balances(alice.id)["ETH"]["available"] == "1.500000000000000000"


def test_same_client_order_id_places_one_order(funded, matcher):
    alice, _ = funded
    c = matcher.client
    order = c.place_limit(alice.id, "ETH_USDT", "buy", "1500.00", "1", client_order_id="bot-7")
    for _ in range(2):
        with pytest.raises(MatcherRejected) as exc:
            c.place_limit(alice.id, "ETH_USDT", "buy", "1500.00", "1", client_order_id="bot-7")
        assert exc.value.reason == "duplicate_client_order_id"
    c.cancel(alice.id, "ETH_USDT", client_order_id="bot-7")
    # still used after the order ended, and after a restart
    matcher.restart()
    with pytest.raises(MatcherRejected) as exc:
        matcher.client.place_market(alice.id, "ETH_USDT", "buy", "10", client_order_id="bot-7")
    assert exc.value.reason == "duplicate_client_order_id"
    assert list(Order.objects.filter(client_order_id="bot-7").values_list("id", "status")) == [
        (order["id"], "cancelled")]
    assert Balance.objects.get(user=alice, asset__symbol="USDT").available == Decimal("100000")
