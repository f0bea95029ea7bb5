"""Withdrawals: debited at request, approved, signed with a managed nonce, confirmed on chain; rejected,
cancelled and failed ones refunded exactly once; concurrent requests never overdraw."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pyotp
import pytest
from django.utils import timezone

from accounts import services as account_services
from cryptgo.api.errors import ApiError, Conflict
from wallets import services
from wallets.models import AssetPolicy, Withdrawal, WithdrawalEvent, WithdrawalStatus

from .conftest import ETH, balance, concurrent_withdrawals, ledger, new_account

pytestmark = pytest.mark.django_db(transaction=True)


def fund(mp, user, asset: str, amount: str) -> None:
    mp.client.update_balance(user.pk, asset, "test_fund", f"{user.pk}-{asset}-{amount}", amount)


def finish(evm) -> None:
    """What beat does: send approved withdrawals, let blocks pass, follow them."""
    services.withdrawals_send()
    evm.mine(3)
    services.withdrawals_track()


def test_eth_and_token_withdrawals_go_through_to_confirmation(evm, wallet_matcher, alice, operator, cgt_asset):
    fund(wallet_matcher, alice, "ETH", "10")
    fund(wallet_matcher, alice, "CGT", "100")
    AssetPolicy.objects.create(asset=cgt_asset, auto_approve_below=Decimal("50"))
    dest = new_account().address

    w_eth = services.withdrawal_request(user=alice, asset="ETH", address=dest, amount="1.5")
    assert (w_eth.status, w_eth.debited, w_eth.fee) == (WithdrawalStatus.REQUESTED, True, Decimal("0.001"))
    assert balance(wallet_matcher, alice, "ETH") == (Decimal("8.499"), Decimal(0))
    services.withdrawals_send()  # not approved yet: nothing is signed
    assert Withdrawal.objects.get(pk=w_eth.pk).status == WithdrawalStatus.REQUESTED

    assert services.withdrawal_approve(withdrawal_id=w_eth.pk, operator=operator)
    w_cgt = services.withdrawal_request(user=alice, asset="CGT", address=dest, amount="20")
    assert w_cgt.status == WithdrawalStatus.APPROVED  # below auto_approve_below
    sent = services.withdrawals_send()
    assert (sent.signed, sent.broadcast) == (2, 2)
    # Each transaction got its own block: ETH has 2 confirmations of 3, CGT 1.
    assert services.withdrawals_track().confirmed == 0
    evm.mine(1)
    assert services.withdrawals_track().confirmed == 1
    assert Withdrawal.objects.get(pk=w_cgt.pk).status == WithdrawalStatus.BROADCAST
    evm.mine(1)
    assert services.withdrawals_track().confirmed == 1

    assert evm.eth_balance(dest) == 3 * ETH // 2
    assert evm.token_balance(dest) == 20 * ETH
    assert balance(wallet_matcher, alice, "CGT") == (Decimal("79"), Decimal(0))
    assert ledger(alice, "ETH")[1:] == [("withdraw", str(w_eth.pk), Decimal("-1.501"))]
    actions = list(WithdrawalEvent.objects.filter(withdrawal=w_eth).values_list("action", "actor__email"))
    assert actions == [("request", "alice@example.com"), ("debit", None), ("approve", "operator@example.com"),
                       ("sign", None), ("broadcast", None), ("confirm", None)]


def test_rejected_and_cancelled_withdrawals_are_refunded_exactly_once(evm, wallet_matcher, alice, operator):
    fund(wallet_matcher, alice, "ETH", "5")
    dest = new_account().address
    w1 = services.withdrawal_request(user=alice, asset="ETH", address=dest, amount="1")
    w2 = services.withdrawal_request(user=alice, asset="ETH", address=dest, amount="2")
    assert balance(wallet_matcher, alice, "ETH") == (Decimal("1.998"), Decimal(0))

    assert services.withdrawal_reject(withdrawal_id=w1.pk, operator=operator, note="suspicious")
    assert not services.withdrawal_reject(withdrawal_id=w1.pk, operator=operator)  # already final
    cancelled = services.withdrawal_cancel(user=alice, withdrawal_id=w2.pk)
    assert cancelled.status == WithdrawalStatus.CANCELLED
    with pytest.raises(Conflict):
        services.withdrawal_cancel(user=alice, withdrawal_id=w2.pk)
    # A crashed worker would retry: the refund is owed once, and paid once.
    assert services.withdrawal_refund(Withdrawal.objects.get(pk=w1.pk)) is False
    Withdrawal.objects.filter(pk=w1.pk).update(refunded_at=None)  # as if the first answer was lost
    assert services.withdrawals_reconcile()["refunded"] == 1

    assert balance(wallet_matcher, alice, "ETH") == (Decimal("5"), Decimal(0))
    refunds = [row for row in ledger(alice, "ETH") if row[0] == "withdraw_refund"]
    assert refunds == [("withdraw_refund", str(w1.pk), Decimal("1.001")),
                       ("withdraw_refund", str(w2.pk), Decimal("2.001"))]
    finish(evm)
    assert evm.eth_balance(dest) == 0


def test_on_chain_failure_marks_failed_and_refunds_once(evm, wallet_matcher, alice, operator, cgt_asset):
    fund(wallet_matcher, alice, "ETH", "5")
    # Ether sent to the token contract reverts (it has no receive function): a real on-chain failure.
    w = services.withdrawal_request(user=alice, asset="ETH", address=cgt_asset.contract_address, amount="1")
    services.withdrawal_approve(withdrawal_id=w.pk, operator=operator)
    services.withdrawals_send()
    # Signed and broadcast: too late for the user to cancel or for an operator to reject.
    with pytest.raises(Conflict):
        services.withdrawal_cancel(user=alice, withdrawal_id=w.pk)
    assert not services.withdrawal_reject(withdrawal_id=w.pk, operator=operator)
    assert balance(wallet_matcher, alice, "ETH") == (Decimal("3.999"), Decimal(0))
    finish(evm)

    w.refresh_from_db()
    assert (w.status, w.error) == (WithdrawalStatus.FAILED, "transaction reverted on chain")
    assert w.refunded_at is not None
    receipt = evm.w3.eth.get_transaction_receipt(w.tx_hash)
    assert receipt["status"] == 0
    services.withdrawals_track()
    services.withdrawals_reconcile()
    assert balance(wallet_matcher, alice, "ETH") == (Decimal("5"), Decimal(0))
    assert [r for r in ledger(alice, "ETH") if r[0] == "withdraw_refund"] == [
        ("withdraw_refund", str(w.pk), Decimal("1.001"))]


def test_twenty_concurrent_requests_cannot_exceed_the_balance(wallet_matcher, evm, alice):
    fund(wallet_matcher, alice, "ETH", "10")
    outcomes = concurrent_withdrawals(alice, 20, new_account().address)

    # 9 x 1.001 = 9.009 fits in 10; a tenth would need 10.01.
    assert sorted(outcomes) == ["insufficient_balance"] * 11 + ["ok"] * 9
    assert balance(wallet_matcher, alice, "ETH") == (Decimal("0.991"), Decimal(0))
    assert Withdrawal.objects.filter(status=WithdrawalStatus.REQUESTED).count() == 9
    assert Withdrawal.objects.count() == 9
    assert len([r for r in ledger(alice, "ETH") if r[0] == "withdraw"]) == 9


def test_refused_requests_debit_nothing(evm, wallet_matcher, alice, eth_asset):
    fund(wallet_matcher, alice, "ETH", "5")
    AssetPolicy.objects.create(asset=eth_asset, max_withdrawal=Decimal("3"), daily_withdrawal_limit=Decimal("4"))
    good = new_account().address
    enrol = account_services.totp_enrol(user=alice)
    account_services.totp_confirm(user=alice, code=pyotp.TOTP(enrol.secret).now())
    alice.refresh_from_db()
    before = (balance(wallet_matcher, alice, "ETH"), ledger(alice, "ETH"))

    def refused(code: str, **kwargs) -> None:
        args = {"user": alice, "asset": "ETH", "address": good, "amount": "1", "totp_code": "123456", **kwargs}
        with pytest.raises(ApiError) as info:
            services.withdrawal_request(**args)
        assert info.value.code == code, info.value

    refused("totp_required", totp_code=None)
    refused("totp_invalid", totp_code="000000")
    refused("invalid_address_checksum", address=good.lower())  # no checksum at all: refused, not guessed
    refused("invalid_address_checksum", address="0x" + good[2:].swapcase())
    refused("invalid_address", address="0x1234")
    refused("invalid_precision", amount="1.0000000000000000001")
    refused("invalid_amount", amount="1e3")
    refused("invalid_amount", amount="-1")
    refused("below_min_withdrawal", amount="0.001")
    refused("above_max_withdrawal", amount="3.5")
    refused("internal_address", address=services.deposit_address_for(alice).address)
    refused("unknown_asset", asset="DOGE")

    assert Withdrawal.objects.count() == 0
    assert (balance(wallet_matcher, alice, "ETH"), ledger(alice, "ETH")) == before


def test_daily_limit_counts_the_last_24_hours_per_user(evm, wallet_matcher, alice, bob, eth_asset):
    fund(wallet_matcher, alice, "ETH", "10")
    fund(wallet_matcher, bob, "ETH", "10")
    AssetPolicy.objects.create(asset=eth_asset, daily_withdrawal_limit=Decimal("4"))
    dest = new_account().address
    first = services.withdrawal_request(user=alice, asset="ETH", address=dest, amount="2.5")
    with pytest.raises(ApiError) as info:
        services.withdrawal_request(user=alice, asset="ETH", address=dest, amount="2")
    assert (info.value.code, info.value.details) == ("daily_limit_exceeded", {"daily_limit": "4", "used": "2.5"})
    assert balance(wallet_matcher, alice, "ETH") == (Decimal("7.499"), Decimal(0))

    services.withdrawal_cancel(user=alice, withdrawal_id=first.pk)  # a refunded one no longer counts
    services.withdrawal_request(user=alice, asset="ETH", address=dest, amount="4")
    services.withdrawal_request(user=bob, asset="ETH", address=dest, amount="4")  # limits are per user
    Withdrawal.objects.filter(user=alice).update(created_at=timezone.now() - timedelta(hours=25))
    services.withdrawal_request(user=alice, asset="ETH", address=dest, amount="1")  # a day later
    assert balance(wallet_matcher, alice, "ETH") == (Decimal("4.998"), Decimal(0))


def test_a_withdrawal_the_hot_wallet_cannot_pay_waits_without_blocking_the_others(evm, wallet_matcher, alice,
                                                                                   operator, cgt_asset):
    """Signing it would take a nonce the node cannot mine, and every later nonce would queue behind it."""
    from wallets import hd

    fund(wallet_matcher, alice, "ETH", "500")
    fund(wallet_matcher, alice, "CGT", "3000000")
    hot = hd.hot_wallet_address()
    dest = new_account().address
    big = services.withdrawal_request(user=alice, asset="ETH", address=dest, amount="150")  # hot holds 100
    too_many = services.withdrawal_request(user=alice, asset="CGT", address=dest, amount="2000000")  # holds 1M
    small = services.withdrawal_request(user=alice, asset="ETH", address=dest, amount="1")
    for w in (big, too_many, small):
        services.withdrawal_approve(withdrawal_id=w.pk, operator=operator)
    first_nonce = evm.w3.eth.get_transaction_count(hot)

    sent = services.withdrawals_send()
    evm.mine(3)
    services.withdrawals_track()

    assert (sent.signed, len(sent.errors)) == (1, 2)
    rows = {w.pk: w for w in Withdrawal.objects.all()}
    assert (rows[small.pk].status, rows[small.pk].nonce) == (WithdrawalStatus.CONFIRMED, first_nonce)
    assert rows[big.pk].status == WithdrawalStatus.APPROVED and "short of ether" in rows[big.pk].error
    assert rows[too_many.pk].status == WithdrawalStatus.APPROVED and "short of CGT" in rows[too_many.pk].error
    assert rows[big.pk].nonce is None and rows[too_many.pk].nonce is None

    evm.send_eth(hot, 100 * ETH)  # an operator (or a sweep) refills the hot wallet's ether
    assert services.withdrawals_send().signed == 1
    evm.mine(3)
    services.withdrawals_track()
    big.refresh_from_db()
    assert (big.status, big.nonce, big.error) == (WithdrawalStatus.CONFIRMED, first_nonce + 1, "")
    assert evm.eth_balance(dest) == 151 * ETH
    assert Withdrawal.objects.get(pk=too_many.pk).status == WithdrawalStatus.APPROVED
    assert evm.w3.eth.get_transaction_count(hot) == first_nonce + 2  # no nonce burned by the waiting ones
