"""Deposit, sweep and withdraw on Anvil over JSON-RPC with a real matcher, driven by the Celery task bodies
(what beat runs), the way the launcher's worker does."""

from __future__ import annotations

from decimal import Decimal

import pytest

from wallets import hd, services, tasks
from wallets.models import Deposit, DepositStatus, Sweep, SweepStatus, WithdrawalStatus

from .conftest import ETH, balance, new_account

pytestmark = pytest.mark.django_db(transaction=True)


def beat(anvil, blocks: int = 0) -> None:
    if blocks:
        anvil.mine(blocks)
    tasks.scan_blocks()
    tasks.confirm_deposits()
    tasks.sweep()
    tasks.send_withdrawals()
    tasks.track_withdrawals()
    tasks.reconcile_withdrawals()


def test_deposit_sweep_and_withdraw_on_anvil(anvil, wallet_matcher, alice, operator):
    address = services.deposit_address_for(alice).address
    hot = hd.hot_wallet_address()
    anvil.send_eth(address, 5 * ETH)
    anvil.send_token(address, 300 * ETH)

    beat(anvil)
    assert balance(wallet_matcher, alice, "ETH") == (Decimal(0), Decimal(0))  # not yet confirmed
    beat(anvil, blocks=3)
    assert balance(wallet_matcher, alice, "ETH") == (Decimal(5), Decimal(0))
    assert balance(wallet_matcher, alice, "CGT") == (Decimal(300), Decimal(0))
    assert set(Deposit.objects.values_list("status", flat=True)) == {DepositStatus.CREDITED}

    dest = new_account().address
    hot_cgt = anvil.token_balance(hot)
    w = services.withdrawal_request(user=alice, asset="CGT", address=dest, amount="120")
    services.withdrawal_approve(withdrawal_id=w.pk, operator=operator)
    # One sweep per address at a time: ETH (sign, confirm), then CGT (top-up, sign, confirm). Bounded.
    for _ in range(6):
        beat(anvil, blocks=3)

    w.refresh_from_db()
    assert (w.status, w.from_address) == (WithdrawalStatus.CONFIRMED, hot)
    assert anvil.token_balance(dest) == 120 * ETH
    assert balance(wallet_matcher, alice, "CGT") == (Decimal(179), Decimal(0))
    assert sorted(Sweep.objects.values_list("asset__symbol", "status")) == [
        ("CGT", SweepStatus.CONFIRMED), ("ETH", SweepStatus.CONFIRMED)]
    assert anvil.token_balance(address) == 0
    token_sweep = Sweep.objects.get(asset__symbol="CGT")
    assert anvil.eth_balance(address) < 100_000 * int(token_sweep.gas_price)  # unused gas of the token sweep
    assert anvil.token_balance(hot) == hot_cgt + 300 * ETH - 120 * ETH
