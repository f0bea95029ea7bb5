"""Operator actions in the admin go through the matcher and are recorded in the audit trail."""

from decimal import Decimal

from django.urls import reverse

from markets.models import Market
from matcher.models import OperatorAction
from trading.models import Balance, BalanceHistory


def test_balance_adjustment_needs_a_reason_applies_once_and_is_audited(client, operator, alice, matcher):
    client.force_login(operator)
    url = reverse("admin:matcher_adjust_balance")
    assert client.get(url).status_code == 200
    form = {"user": alice.email, "asset": "USDT", "change": "125.5", "reason": "", "adjustment_id": "adj-1"}
    response = client.post(url, form)
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert not OperatorAction.objects.exists()
    assert matcher.client.balances(alice.id) == {}

    form["reason"] = "goodwill credit, ticket 42"
    assert client.post(url, form).status_code == 302
    assert client.post(url, form).status_code == 302  # a double submit of the same form
    assert matcher.client.balances(alice.id)["USDT"]["available"] == "125.500000"
    row = BalanceHistory.objects.get(user=alice)
    assert (row.business, row.business_id, row.change) == ("adjustment", f"op{operator.id}:adj-1", Decimal("125.5"))
    assert row.detail == {"operator": operator.id, "reason": "goodwill credit, ticket 42"}
    assert list(OperatorAction.objects.order_by("id").values_list("action", "target", "outcome", "reason")) == [
        ("balance_adjust", f"{alice.id}:USDT", "ok", "goodwill credit, ticket 42"),
        ("balance_adjust", f"{alice.id}:USDT", "repeated_update", "goodwill credit, ticket 42")]

    debit = {**form, "change": "-1000", "adjustment_id": "adj-2", "reason": "clawback"}
    client.post(url, debit)
    assert OperatorAction.objects.latest("id").outcome == "insufficient_balance"
    assert Balance.objects.get(user=alice).available == Decimal("125.5")
    page = client.get(reverse("admin:matcher_operatoraction_changelist")).content.decode()
    assert "clawback" in page and "insufficient_balance" in page


def test_market_halt_resume_and_fees_from_the_market_list(client, operator, matcher, eth_usdt):
    client.force_login(operator)
    changelist = reverse("admin:markets_market_changelist")
    response = client.post(changelist, {"action": "matcher_halt", "_selected_action": [eth_usdt.pk]})
    assert response.status_code == 302
    op_url = response["Location"]
    assert client.post(op_url, {"reason": "incident 7"}).status_code == 302
    assert Market.objects.get(pk=eth_usdt.pk).status == "halted"  # written by the matcher's persister
    assert [m["status"] for m in matcher.client.markets()] == ["halted"]

    fees_url = reverse("admin:matcher_market_operation", args=["fees"]) + f"?ids={eth_usdt.pk}"
    client.post(fees_url, {"reason": "promo", "maker_fee": "0", "taker_fee": "0.0015"})
    client.post(fees_url, {"reason": "typo", "maker_fee": "2", "taker_fee": "0.0015"})
    m = Market.objects.get(pk=eth_usdt.pk)
    assert (m.maker_fee, m.taker_fee) == (Decimal("0"), Decimal("0.0015"))
    client.post(reverse("admin:matcher_market_operation", args=["resume"]) + f"?ids={eth_usdt.pk}",
                {"reason": "incident 7 resolved"})
    assert Market.objects.get(pk=eth_usdt.pk).status == "trading"
    assert list(OperatorAction.objects.order_by("id").values_list("action", "outcome")) == [
        ("halt", "ok"), ("set_fees", "ok"), ("set_fees", "invalid_amount"), ("resume", "ok")]
    # the matcher's fields are read-only on the change page
    page = client.get(reverse("admin:markets_market_change", args=[eth_usdt.pk])).content.decode()
    assert 'name="taker_fee"' not in page


def test_a_market_added_later_is_loaded_without_restart(client, operator, matcher, eth_usdt):
    from tests.factories import AssetFactory, MarketFactory

    cgt_usdt = MarketFactory(base=AssetFactory(symbol="CGT", decimals=18), quote=eth_usdt.quote)
    client.force_login(operator)
    url = reverse("admin:matcher_market_operation", args=["load"]) + f"?ids={cgt_usdt.pk}"
    client.post(url, {"reason": "listing CGT"})
    assert OperatorAction.objects.get().outcome == "ok"
    assert sorted(m["name"] for m in matcher.client.markets()) == ["CGT_USDT", "ETH_USDT"]
    matcher.client.update_balance(operator.id, "CGT", "deposit", "cgt-1", "10")
    order = matcher.client.place_limit(operator.id, "CGT_USDT", "sell", "1.50", "2")
    assert order["status"] == "open"
    matcher.kill()
    matcher.start()  # the load is in the operation log and the state: it survives a restart
    assert matcher.client.open_orders(operator.id, "CGT_USDT")[0]["id"] == order["id"]
