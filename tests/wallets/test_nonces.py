"""Managed nonces: concurrent claimers on PostgreSQL never get the same number, and two workers
sending the same approved withdrawals sign each once, with distinct consecutive nonces."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction

from wallets import hd, locks, services
from wallets.models import Nonce, Withdrawal, WithdrawalEvent, WithdrawalStatus

from .conftest import ETH, new_account

pytestmark = pytest.mark.django_db(transaction=True)


def _run_threads(target, n: int) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def wrapped() -> None:
        try:
            barrier.wait(timeout=30)
            target()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=wrapped) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return errors


def test_concurrent_nonce_claims_are_unique_and_gapless():
    address = "0x" + "ab" * 20
    locks.nonce_ensure("ethereum", address, 7)
    claimed: list[int] = []
    guard = threading.Lock()

    def claim_many() -> None:
        for _ in range(25):
            with transaction.atomic():
                n = locks.claim_nonce("ethereum", address)
            with guard:
                claimed.append(n)

    assert _run_threads(claim_many, 4) == []
    assert sorted(claimed) == list(range(7, 107))
    assert Nonce.objects.get(address=address).next_nonce == 107


def test_nonce_row_follows_the_chain_upwards_only():
    address = "0x" + "cd" * 20
    locks.nonce_ensure("ethereum", address, 5)
    locks.nonce_ensure("ethereum", address, 3)  # a node that lags must not hand out 3 and 4 again
    assert Nonce.objects.get(address=address).next_nonce == 5
    locks.nonce_ensure("ethereum", address, 9)  # the key was used elsewhere: skip past those
    assert Nonce.objects.get(address=address).next_nonce == 9


def test_two_workers_never_sign_a_withdrawal_twice_or_reuse_a_nonce(anvil, eth_asset, alice):
    destinations = [new_account().address for _ in range(8)]
    rows = [Withdrawal.objects.create(user=alice, asset=eth_asset, address=d, amount=Decimal("0.5"),
                                      fee=Decimal("0.001"), status=WithdrawalStatus.APPROVED, debited=True)
            for d in destinations]
    hot = hd.hot_wallet_address()
    first_nonce = anvil.w3.eth.get_transaction_count(hot)

    assert _run_threads(services.withdrawals_send, 2) == []

    signed = list(Withdrawal.objects.order_by("nonce").values_list("pk", "nonce", "status", "from_address"))
    assert [n for _, n, _, _ in signed] == list(range(first_nonce, first_nonce + len(rows)))
    assert {s for _, _, s, _ in signed} == {WithdrawalStatus.BROADCAST}
    assert {a for _, _, _, a in signed} == {hot}
    assert WithdrawalEvent.objects.filter(action="sign").count() == len(rows)

    anvil.mine(eth_asset.deposit_confirmations)
    tracked = services.withdrawals_track()
    assert tracked.confirmed == len(rows)
    assert [anvil.eth_balance(d) for d in destinations] == [ETH // 2] * len(rows)
    assert anvil.w3.eth.get_transaction_count(hot) == first_nonce + len(rows)
