"""Sweeping moves credited deposits to the hot wallet, leaving only dust; token sweeps top up gas first."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from wallets import hd, services
from wallets.models import Deposit, Sweep, SweepStatus

from .conftest import ETH

pytestmark = pytest.mark.django_db(transaction=True)


def deposit_and_credit(evm, to: str, eth: int = 0, token: int = 0) -> None:
    if eth:
        evm.send_eth(to, eth)
    if token:
        evm.send_token(to, token)
    evm.mine(3)
    services.scan_blocks()
    result = services.deposits_confirm()
    assert result.errors == [] and result.credited >= 1


def test_eth_and_token_sweeps_leave_only_dust_and_top_up_gas_first(evm, wallet_matcher, alice, bob):
    a = services.deposit_address_for(alice).address
    b = services.deposit_address_for(bob).address
    hot = hd.hot_wallet_address()
    deposit_and_credit(evm, a, eth=3 * ETH)
    deposit_and_credit(evm, b, token=40 * ETH)
    hot_eth, hot_cgt = evm.eth_balance(hot), evm.token_balance(hot)
    gas_price = evm.w3.eth.gas_price

    planned = services.sweeps_plan()
    assert {(s.address.address, s.asset.symbol) for s in planned} == {(a, "ETH"), (b, "CGT")}
    assert services.sweeps_plan() == []  # one sweep in flight per address
    services.sweeps_advance()  # ETH: signed + broadcast; CGT: gas top-up sent
    token_sweep = Sweep.objects.get(asset__symbol="CGT")
    assert token_sweep.status == SweepStatus.GAS_SENT
    topup = evm.w3.eth.get_transaction(token_sweep.gas_topup_tx_hash)
    assert (topup["from"], topup["to"]) == (hot, b)
    assert evm.token_balance(b) == 40 * ETH  # nothing moves before the gas arrives

    services.sweeps_advance()  # CGT: the deposit address now signs its transfer
    evm.mine(3)
    done = services.sweeps_advance()
    assert done.confirmed == 2

    eth_sweep = Sweep.objects.get(asset__symbol="ETH")
    token_sweep.refresh_from_db()
    assert (eth_sweep.status, token_sweep.status) == (SweepStatus.CONFIRMED, SweepStatus.CONFIRMED)
    assert evm.eth_balance(a) == 0  # a legacy-priced sweep pays exactly 21000 * gasPrice: no dust at all
    assert evm.token_balance(b) == 0
    # What is left on b is the unused part of the gas the top-up paid for: dust.
    assert 0 <= evm.eth_balance(b) < 100_000 * gas_price
    assert evm.token_balance(hot) == hot_cgt + 40 * ETH
    assert eth_sweep.amount == Decimal(3) - Decimal(21000 * gas_price) / ETH
    # The hot wallet got alice's ether (less the sweep's gas) and paid the top-up plus the top-up's own gas.
    topup_wei = int(token_sweep.gas_topup_amount * ETH)
    assert topup_wei == 100_000 * gas_price  # b held no ether: the top-up covers the full gas limit
    assert evm.eth_balance(hot) == hot_eth + 3 * ETH - 21000 * gas_price - topup_wei - 21000 * gas_price
    assert set(Deposit.objects.values_list("sweep_id", flat=True)) == {eth_sweep.pk, token_sweep.pk}
    # The top-up is our own money moving: the scanner does not take it for a deposit.
    services.scan_blocks()
    assert Deposit.objects.count() == 2
    assert services.sweeps_plan() == []


def test_below_threshold_is_not_swept_and_the_command_reports(evm, wallet_matcher, alice, eth_asset):
    from wallets.models import AssetPolicy

    AssetPolicy.objects.create(asset=eth_asset, sweep_threshold=Decimal("5"))
    a = services.deposit_address_for(alice).address
    deposit_and_credit(evm, a, eth=2 * ETH)
    out = StringIO()
    call_command("sweep", stdout=out)
    assert "planned 0 sweep(s)" in out.getvalue()
    assert evm.eth_balance(a) == 2 * ETH

    deposit_and_credit(evm, a, eth=4 * ETH)
    out = StringIO()
    call_command("sweep", "--wait", "0", stdout=out)
    assert "planned 1 sweep(s)" in out.getvalue()
    evm.mine(3)
    call_command("sweep", stdout=StringIO())
    assert Sweep.objects.get().status == SweepStatus.CONFIRMED
    assert evm.eth_balance(a) == 0


def test_two_workers_advancing_sweeps_sign_each_once_and_burn_no_nonce(anvil, wallet_matcher, alice, bob):
    import threading

    from django.db import connection

    from wallets.models import Nonce

    addresses = [services.deposit_address_for(u).address for u in (alice, bob)]
    for address in addresses:
        anvil.send_eth(address, 2 * ETH)
        anvil.send_token(address, 10 * ETH)
    anvil.mine(3)
    services.scan_blocks()
    assert services.deposits_confirm().credited == 4

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(3):  # bounded: plan + advance, like two beat-driven workers overlapping
                services.sweep_run()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    for _round in range(3):  # ETH sweeps, then the token sweeps (top-up, then transfer)
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        anvil.mine(3)
    services.sweep_run()

    assert errors == []
    assert sorted(Sweep.objects.values_list("asset__symbol", "status")) == [
        ("CGT", SweepStatus.CONFIRMED), ("CGT", SweepStatus.CONFIRMED),
        ("ETH", SweepStatus.CONFIRMED), ("ETH", SweepStatus.CONFIRMED)]
    # Every nonce we handed out was used by exactly one mined transaction: none burned, none reused.
    for n in Nonce.objects.all():
        assert n.next_nonce == anvil.w3.eth.get_transaction_count(n.address), n.address
    assert [anvil.token_balance(a) for a in addresses] == [0, 0]
