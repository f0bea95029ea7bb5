"""Withdrawal rules over HTTP and under concurrency: every bad request is refused with a machine-readable
code and changes nothing; the daily limit holds against concurrent requests; the state machine allows
exactly the documented moves, and each refund-giving move refunds once."""

from __future__ import annotations

import time
from decimal import Decimal

import pyotp
import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services as account_services
from cryptgo.api.errors import ApiError
from wallets import services
from wallets.models import AssetPolicy, Withdrawal, WithdrawalEvent, WithdrawalStatus

from .conftest import balance, concurrent_withdrawals, ledger, new_account

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_throttling(settings):
    settings.API_THROTTLE_USER_RATE = "off"
    settings.API_THROTTLE_IP_RATE = "off"


def test_every_bad_request_is_refused_with_a_code_and_debits_nothing(evm, wallet_matcher, alice, eth_asset,
                                                                     cgt_asset):
    wallet_matcher.client.update_balance(alice.pk, "ETH", "test_fund", "rules", "2")
    AssetPolicy.objects.create(asset=eth_asset, max_withdrawal=Decimal("3"))
    cgt_asset.withdrawal_enabled = False
    cgt_asset.save()
    secret = account_services.totp_enrol(user=alice).secret
    account_services.totp_confirm(user=alice, code=pyotp.TOTP(secret).now())
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(alice).access_token}")
    dest = new_account().address
    own = services.deposit_address_for(alice).address
    before = (balance(wallet_matcher, alice, "ETH"), ledger(alice, "ETH"))
    good = {"asset": "ETH", "address": dest, "amount": "1", "totp_code": "000000"}

    cases: list[tuple[dict, int, str]] = [
        ({}, 400, "validation_error"),
        ({"amount": 1.5}, 400, "validation_error"),  # a JSON number may already have lost digits
        ({"amount": "0"}, 400, "validation_error"),
        ({"amount": "-1"}, 400, "validation_error"),
        ({"amount": "1e3"}, 400, "validation_error"),
        ({"amount": " 1"}, 400, "validation_error"),
        ({"amount": "1.0000000000000000001"}, 400, "invalid_precision"),  # 19 decimals; ETH has 18
        ({"amount": "0.001"}, 400, "below_min_withdrawal"),
        ({"amount": "3.5"}, 400, "above_max_withdrawal"),
        ({"address": dest.lower()}, 400, "invalid_address_checksum"),
        ({"address": "0x" + dest[2:].swapcase()}, 400, "invalid_address_checksum"),
        ({"address": "0x1234"}, 400, "invalid_address"),
        ({"address": "0x" + "0" * 40}, 400, "invalid_address"),
        ({"address": ["x"]}, 400, "validation_error"),
        ({"address": own}, 400, "internal_address"),
        ({"asset": "DOGE"}, 400, "unknown_asset"),
        ({"asset": "eth"}, 400, "unknown_asset"),
        ({"asset": "CGT", "amount": "5"}, 400, "withdrawals_disabled"),
        ({"client_request_id": "x" * 65}, 400, "validation_error"),
        # Two-factor refusals are 403 everywhere in the API (accounts.services.totp_check).
        ({"totp_code": ""}, 403, "totp_required"),
        ({"totp_code": "000000"}, 403, "totp_invalid"),
        ({"totp_code": 123456}, 403, "totp_invalid"),
    ]
    seen = []
    for change, _status, _code in cases:
        body = {**good, **change} if change else {}
        r = api.post("/api/v1/wallets/withdrawals", body, format="json")
        seen.append((change, r.status_code, r.json().get("code")))
    assert seen == [(change, status, code) for change, status, code in cases]

    # A valid code (the next step's: confirming used this one), but more than the balance: the matcher
    # refuses the debit, and the row written before it is gone. The code is spent: a replay is refused.
    code = pyotp.TOTP(secret).at(time.time() + 30)
    r = api.post("/api/v1/wallets/withdrawals", {**good, "amount": "2.5", "totp_code": code}, format="json")
    assert (r.status_code, r.json()["code"]) == (400, "insufficient_balance")
    r = api.post("/api/v1/wallets/withdrawals", {**good, "amount": "1", "totp_code": code}, format="json")
    assert (r.status_code, r.json()["code"]) == (403, "totp_invalid")

    assert (Withdrawal.objects.count(), WithdrawalEvent.objects.count()) == (0, 0)
    assert (balance(wallet_matcher, alice, "ETH"), ledger(alice, "ETH")) == before == (
        (Decimal("2"), Decimal(0)), [("test_fund", "rules", Decimal("2"))])


def test_the_daily_limit_holds_against_concurrent_requests(evm, wallet_matcher, alice, eth_asset):
    wallet_matcher.client.update_balance(alice.pk, "ETH", "test_fund", "daily", "100")
    AssetPolicy.objects.create(asset=eth_asset, daily_withdrawal_limit=Decimal("3"))
    outcomes = concurrent_withdrawals(alice, 10, new_account().address)

    assert sorted(outcomes) == ["daily_limit_exceeded"] * 7 + ["ok"] * 3
    assert balance(wallet_matcher, alice, "ETH") == (Decimal("100") - 3 * Decimal("1.001"), Decimal(0))
    assert Withdrawal.objects.filter(status=WithdrawalStatus.REQUESTED).count() == 3


#: (state, action) pairs the state machine allows; every other pair is refused and changes nothing.
ALLOWED = {
    (WithdrawalStatus.REQUESTED, "approve"): WithdrawalStatus.APPROVED,
    (WithdrawalStatus.REQUESTED, "reject"): WithdrawalStatus.REJECTED,
    (WithdrawalStatus.APPROVED, "reject"): WithdrawalStatus.REJECTED,
    (WithdrawalStatus.REQUESTED, "cancel"): WithdrawalStatus.CANCELLED,
    (WithdrawalStatus.APPROVED, "cancel"): WithdrawalStatus.CANCELLED,
}


def test_the_state_machine_allows_only_the_documented_moves(evm, wallet_matcher, alice, operator, eth_asset):
    wallet_matcher.client.update_balance(alice.pk, "ETH", "test_fund", "states", "100")
    actions = {
        "approve": lambda w: services.withdrawal_approve(withdrawal_id=w.pk, operator=operator),
        "reject": lambda w: services.withdrawal_reject(withdrawal_id=w.pk, operator=operator),
        "cancel": lambda w: services.withdrawal_cancel(user=alice, withdrawal_id=w.pk),
    }
    dest = new_account().address
    outcomes = {}
    for status in WithdrawalStatus.values:
        for action, act in actions.items():
            w = services.withdrawal_request(user=alice, asset="ETH", address=dest, amount="1")  # debited 1.001
            Withdrawal.objects.filter(pk=w.pk).update(status=status)
            events = WithdrawalEvent.objects.filter(withdrawal=w).count()
            try:
                done = act(w) is not False
            except ApiError as exc:
                assert exc.status == 409 and exc.code == "withdrawal_not_cancellable"
                done = False
            w.refresh_from_db()
            outcomes[(status, action)] = w.status if done else None
            if not done:
                assert (w.status, WithdrawalEvent.objects.filter(withdrawal=w).count()) == (status, events)
            # Refunded exactly when the move ends in rejected or cancelled.
            assert (w.refunded_at is not None) == (done and action in ("reject", "cancel")), (status, action)

    assert {k: v for k, v in outcomes.items() if v is not None} == ALLOWED
    moves = len(WithdrawalStatus.values) * len(actions)
    refunds = [r for r in ledger(alice, "ETH") if r[0] == "withdraw_refund"]
    assert len(refunds) == 4 and len({r[1] for r in refunds}) == 4
    # Every refund gave back exactly what its request took.
    assert balance(wallet_matcher, alice, "ETH") == (Decimal("100") - (moves - 4) * Decimal("1.001"), Decimal(0))
