"""The wallet API over HTTP (JWT), the admin's audited approve/reject actions, and the solvency view."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from wallets import hd, services
from wallets.models import Withdrawal, WithdrawalEvent, WithdrawalStatus

from .conftest import ETH, balance, new_account

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(user) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return c


@pytest.fixture(autouse=True)
def _no_throttling(settings):
    settings.API_THROTTLE_USER_RATE = "off"
    settings.API_THROTTLE_IP_RATE = "off"


def test_deposit_address_is_derived_from_the_xpub_and_stable(evm, eth_asset, alice, bob):
    api = client_for(alice)
    first = api.get("/api/v1/wallets/deposit-address")
    again = api.get("/api/v1/wallets/deposit-address")
    other = client_for(bob).get("/api/v1/wallets/deposit-address").json()

    assert first.status_code == 200
    assert first.json() == again.json() == {"chain": "ethereum", "address": hd.address_at(alice.pk)}
    assert other["address"] == hd.address_at(bob.pk) != first.json()["address"]
    assert APIClient().get("/api/v1/wallets/deposit-address").status_code == 401


def test_withdrawal_request_list_and_cancel_over_http(evm, wallet_matcher, alice, bob):
    wallet_matcher.client.update_balance(alice.pk, "ETH", "test_fund", "a", "3")
    api = client_for(alice)
    dest = new_account().address

    created = api.post("/api/v1/wallets/withdrawals", {"asset": "ETH", "address": dest, "amount": "1.25",
                                                      "client_request_id": "w-1"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert {k: body[k] for k in ("asset", "address", "amount", "fee", "status", "refunded")} == {
        "asset": "ETH", "address": dest, "amount": "1.25", "fee": "0.001", "status": "requested", "refunded": False}
    repeat = api.post("/api/v1/wallets/withdrawals", {"asset": "ETH", "address": dest, "amount": "1.25",
                                                     "client_request_id": "w-1"}, format="json")
    assert repeat.json()["id"] == body["id"]  # idempotent by client_request_id: debited once
    assert balance(wallet_matcher, alice, "ETH") == (Decimal("1.749"), Decimal(0))

    bad = api.post("/api/v1/wallets/withdrawals", {"asset": "ETH", "address": dest.lower(), "amount": "1"},
                   format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_address_checksum"
    decimals = api.post("/api/v1/wallets/withdrawals", {"asset": "ETH", "address": dest,
                                                       "amount": "0.0000000000000000001"}, format="json")
    assert decimals.status_code == 400 and decimals.json()["code"] == "invalid_precision"
    number = api.post("/api/v1/wallets/withdrawals", {"asset": "ETH", "address": dest, "amount": 1.5}, format="json")
    assert number.status_code == 400 and number.json()["code"] == "validation_error"

    listed = api.get("/api/v1/wallets/withdrawals").json()
    assert [w["id"] for w in listed] == [body["id"]]
    assert client_for(bob).get("/api/v1/wallets/withdrawals").json() == []
    assert client_for(bob).post(f"/api/v1/wallets/withdrawals/{body['id']}/cancel").status_code == 404

    cancelled = api.post(f"/api/v1/wallets/withdrawals/{body['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["refunded"] is True
    again = api.post(f"/api/v1/wallets/withdrawals/{body['id']}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "withdrawal_not_cancellable"
    assert balance(wallet_matcher, alice, "ETH") == (Decimal("3"), Decimal(0))


def test_admin_approve_and_reject_are_audited_and_solvency_adds_up(evm, wallet_matcher, alice, operator, client):
    wallet_matcher.client.update_balance(alice.pk, "ETH", "test_fund", "a", "4")
    dest = new_account().address
    w1 = services.withdrawal_request(user=alice, asset="ETH", address=dest, amount="1")
    w2 = services.withdrawal_request(user=alice, asset="ETH", address=dest, amount="2")
    client.force_login(operator)
    url = "/admin/wallets/withdrawal/"

    r1 = client.post(url, {"action": "approve", "_selected_action": [w1.pk]}, follow=True)
    r2 = client.post(url, {"action": "reject", "_selected_action": [w2.pk]}, follow=True)

    assert r1.status_code == r2.status_code == 200
    assert b"Solvency per asset" in r1.content
    w1.refresh_from_db()
    w2.refresh_from_db()
    assert (w1.status, w1.approved_by) == (WithdrawalStatus.APPROVED, operator)
    assert (w2.status, w2.refunded_at is not None) == (WithdrawalStatus.REJECTED, True)
    audit = list(WithdrawalEvent.objects.filter(actor=operator).order_by("id").values_list("withdrawal_id", "action"))
    assert audit == [(w1.pk, "approve"), (w2.pk, "reject")]
    assert set(LogEntry.objects.filter(user=operator).values_list("object_id", "change_message")) == {
        (str(w1.pk), "approved"), (str(w2.pk), "rejected and refunded")}
    assert balance(wallet_matcher, alice, "ETH") == (Decimal("2.999"), Decimal(0))

    # On chain: the hot wallet's 100 ETH, nothing on deposit addresses. Owed: alice's 2.999, plus
    # the 1 ETH withdrawal that is debited but not yet sent.
    page = client.get("/admin/wallets/withdrawal/solvency/")
    assert page.status_code == 200
    rows = {r.asset: r for r in page.context["rows"]}
    eth = rows["ETH"]
    assert (eth.hot_wallet, eth.deposit_addresses) == (Decimal(evm.eth_balance(hd.hot_wallet_address())) / ETH,
                                                        Decimal(0))
    assert (eth.user_balances, eth.in_flight_withdrawals) == (Decimal("2.999"), Decimal("1"))
    assert eth.surplus == eth.on_chain - Decimal("3.999")
    assert rows["CGT"].hot_wallet == Decimal(1_000_000)
    assert Withdrawal.objects.count() == 2
    change = client.get(f"/admin/wallets/withdrawal/{w2.pk}/change/")
    assert change.status_code == 200 and b"rejected in admin" in change.content  # the audit trail inline


def test_without_an_xpub_the_wallet_api_says_so(settings, alice):
    settings.HOT_WALLET_XPUB = ""
    r = client_for(alice).get("/api/v1/wallets/deposit-address")
    assert r.status_code == 503 and r.json()["code"] == "wallet_not_configured"
