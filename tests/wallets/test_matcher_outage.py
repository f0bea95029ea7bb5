"""When the matcher is down, nothing is lost and nothing is applied twice: deposits wait in "confirmed",
a withdrawal's debit waits in "pending_debit" (the client gets 503), a refund waits; all finish once it is back."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from cryptgo.api.errors import ServiceUnavailable
from wallets import services
from wallets.models import Deposit, DepositStatus, Withdrawal, WithdrawalStatus

from .conftest import ETH, balance, ledger, new_account

pytestmark = pytest.mark.django_db(transaction=True)


def test_work_in_flight_survives_a_matcher_outage(evm, wallet_matcher, alice, operator, settings):
    settings.MATCHER_TIMEOUT_SECONDS = 2
    from matcher.client import reset_client

    reset_client()
    wallet_matcher.client.update_balance(alice.pk, "ETH", "test_fund", "outage", "5")
    dest = new_account().address
    to_reject = services.withdrawal_request(user=alice, asset="ETH", address=dest, amount="1")
    services.withdrawal_approve(withdrawal_id=to_reject.pk, operator=operator)
    tx = evm.send_eth(services.deposit_address_for(alice).address, 2 * ETH)
    evm.mine(3)
    services.scan_blocks()

    wallet_matcher.stop()
    confirm = services.deposits_confirm()
    with pytest.raises(ServiceUnavailable) as info:
        services.withdrawal_request(user=alice, asset="ETH", address=dest, amount="1.5")
    assert services.withdrawal_reject(withdrawal_id=to_reject.pk, operator=operator)  # refund deferred

    assert (confirm.confirmed, confirm.credited, len(confirm.errors)) == (1, 0, 1)
    assert Deposit.objects.get(tx_hash=tx).status == DepositStatus.CONFIRMED
    pending = Withdrawal.objects.get(pk=info.value.details["withdrawal_id"])
    assert (pending.status, pending.debited) == (WithdrawalStatus.PENDING_DEBIT, False)
    to_reject.refresh_from_db()
    assert (to_reject.status, to_reject.refunded_at) == (WithdrawalStatus.REJECTED, None)

    wallet_matcher.start()
    reset_client()
    Withdrawal.objects.filter(pk=pending.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    assert services.deposits_confirm().credited == 1
    assert services.withdrawals_reconcile() == {"debited": 1, "dropped": 0, "refunded": 1}
    assert services.withdrawals_reconcile() == {"debited": 0, "dropped": 0, "refunded": 0}

    pending.refresh_from_db()
    assert (pending.status, pending.debited) == (WithdrawalStatus.REQUESTED, True)
    # 5 - 1.001 (rejected, refunded) + 2 (deposit) - 1.501 (the request made during the outage)
    assert balance(wallet_matcher, alice, "ETH") == (Decimal("5.499"), Decimal(0))
    assert [(b, c) for b, _, c in ledger(alice, "ETH")] == [
        ("test_fund", Decimal("5")), ("withdraw", Decimal("-1.001")), ("deposit", Decimal("2")),
        ("withdraw", Decimal("-1.501")), ("withdraw_refund", Decimal("1.001"))]
