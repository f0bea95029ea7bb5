"""Deposits are credited through the matcher exactly once, after the asset's confirmations and not before."""

from __future__ import annotations

from decimal import Decimal

import pytest

from wallets import services
from wallets.models import Deposit, DepositStatus, ScanCursor

from .conftest import ETH, balance, ledger

pytestmark = pytest.mark.django_db(transaction=True)


def test_eth_and_token_deposits_credit_once_after_n_confirmations(evm, wallet_matcher, alice, bob):
    a = services.deposit_address_for(alice).address
    b = services.deposit_address_for(bob).address
    eth_tx = evm.send_eth(a, 2 * ETH)  # block X
    token_tx = evm.send_token(b, 7 * ETH)  # block X+1

    services.scan_blocks()
    early = services.deposits_confirm()  # 2 and 1 confirmations of 3
    assert (early.confirmed, early.credited) == (0, 0)
    assert balance(wallet_matcher, alice, "ETH") == (Decimal(0), Decimal(0))

    evm.send_eth(a, ETH // 1000)  # block X+2, below the minimum: recorded, never credited
    services.scan_blocks()
    third = services.deposits_confirm()  # ETH has exactly 3 now, the token 2
    assert (third.confirmed, third.credited, third.errors) == (1, 1, [])
    assert balance(wallet_matcher, bob, "CGT") == (Decimal(0), Decimal(0))

    evm.mine(1)
    services.scan_blocks()
    done = services.deposits_confirm()

    assert (done.confirmed, done.credited, done.errors) == (1, 1, [])
    assert balance(wallet_matcher, alice, "ETH") == (Decimal("2"), Decimal(0))
    assert balance(wallet_matcher, bob, "CGT") == (Decimal("7"), Decimal(0))
    token_dep = Deposit.objects.get(tx_hash=token_tx)
    assert ledger(alice, "ETH") == [("deposit", f"{eth_tx}:-1", Decimal("2"))]
    assert ledger(bob, "CGT") == [("deposit", token_dep.business_id, Decimal("7"))]
    assert Deposit.objects.get(tx_hash=eth_tx).status == DepositStatus.CREDITED
    assert Deposit.objects.filter(status=DepositStatus.BELOW_MINIMUM).count() == 1

    # Rescan everything, confirm again, and even push a credited deposit back to "confirmed"
    # (a worker that died after the matcher answered): nothing is credited twice.
    ScanCursor.objects.update(block_number=token_dep.block_number - 2,
                              block_hash=evm.w3.eth.get_block(token_dep.block_number - 2)["hash"].to_0x_hex())
    services.scan_blocks()
    Deposit.objects.filter(tx_hash=eth_tx).update(status=DepositStatus.CONFIRMED)
    again = services.deposits_confirm()
    assert again.errors == []
    assert Deposit.objects.get(tx_hash=eth_tx).status == DepositStatus.CREDITED
    assert balance(wallet_matcher, alice, "ETH") == (Decimal("2"), Decimal(0))
    assert balance(wallet_matcher, bob, "CGT") == (Decimal("7"), Decimal(0))
    assert len(ledger(alice, "ETH")) == 1 and len(ledger(bob, "CGT")) == 1


def test_reorg_after_credit_flags_the_deposit_and_changes_no_balance(evm, wallet_matcher, alice, operator, client):
    a = services.deposit_address_for(alice).address
    snap = evm.snapshot()
    tx = evm.send_eth(a, ETH)
    evm.mine(2)
    services.scan_blocks()
    assert services.deposits_confirm().credited == 1

    evm.revert(snap)
    evm.mine(5)
    scan = services.scan_blocks()
    services.deposits_confirm()

    dep = Deposit.objects.get(tx_hash=tx)
    assert scan.reorgs == 1
    assert (dep.status, dep.reorged_after_credit) == (DepositStatus.CREDITED, True)
    assert balance(wallet_matcher, alice, "ETH") == (Decimal("1"), Decimal(0))  # operators decide, not the code
    # Operators see it on the solvency page, with a link to the flagged deposits.
    client.force_login(operator)
    page = client.get("/admin/wallets/withdrawal/solvency/")
    assert page.status_code == 200 and page.context["reorged"] == 1
    assert b"1 credited deposit(s) left the canonical chain" in page.content
    listed = client.get("/admin/wallets/deposit/?reorged_after_credit__exact=1")
    assert list(listed.context["cl"].result_list) == [dep]
