"""The block scanner records transfers to deposit addresses once, and only real ones."""

from __future__ import annotations

from decimal import Decimal

from wallets import hd, services
from wallets.models import Deposit, DepositStatus, ScanCursor

from .conftest import ETH


def test_eth_and_token_deposits_are_recorded_once_even_when_rescanned(evm, eth_asset, cgt_asset, alice, bob):
    a = services.deposit_address_for(alice).address
    b = services.deposit_address_for(bob).address
    eth_tx = evm.send_eth(a, 2 * ETH)
    token_tx = evm.send_token(b, 5 * ETH)

    result = services.scan_blocks()

    assert result.deposits == 2 and result.reorgs == 0
    eth_dep = Deposit.objects.get(tx_hash=eth_tx)
    assert (eth_dep.user, eth_dep.asset.symbol, eth_dep.amount, eth_dep.log_index, eth_dep.status) == (
        alice, "ETH", Decimal("2"), -1, DepositStatus.PENDING)
    token_dep = Deposit.objects.get(tx_hash=token_tx)
    assert (token_dep.user, token_dep.asset.symbol, token_dep.amount, token_dep.status) == (
        bob, "CGT", Decimal("5"), DepositStatus.PENDING)
    assert token_dep.log_index >= 0
    assert token_dep.business_id == f"{token_tx}:{token_dep.log_index}"

    # Rescan the same blocks from the start: nothing new.
    ScanCursor.objects.update(block_number=eth_dep.block_number - 1,
                              block_hash=evm.w3.eth.get_block(eth_dep.block_number - 1)["hash"].to_0x_hex())
    again = services.scan_blocks()
    assert again.scanned >= 2 and again.deposits == 0
    assert Deposit.objects.count() == 2


def test_below_minimum_is_recorded_not_pending_and_strangers_are_ignored(evm, eth_asset, cgt_asset, alice):
    a = services.deposit_address_for(alice).address
    small = evm.send_eth(a, ETH // 1000)  # 0.001 < min 0.01
    evm.send_eth("0x000000000000000000000000000000000000dEaD", ETH)  # not ours
    evm.send_token("0x000000000000000000000000000000000000dEaD", ETH)

    services.scan_blocks()

    dep = Deposit.objects.get()
    assert (dep.tx_hash, dep.amount, dep.status) == (small, Decimal("0.001"), DepositStatus.BELOW_MINIMUM)


def test_transfers_from_the_hot_wallet_are_not_deposits(evm, eth_asset, alice):
    """A sweep's gas top-up goes hot wallet -> deposit address: our own money, never credited."""
    a = services.deposit_address_for(alice).address
    evm.send_eth(a, ETH, sender=evm.faucet)
    evm.w3.eth.send_transaction({"from": evm.faucet, "to": a, "value": ETH})
    hot = hd.hot_wallet_address()
    from wallets.signer import get_signer

    signer = get_signer()
    tx = {"to": a, "value": ETH, "gas": 21000, "gasPrice": evm.w3.eth.gas_price, "chainId": evm.w3.eth.chain_id,
          "nonce": evm.w3.eth.get_transaction_count(hot)}
    evm.w3.eth.send_raw_transaction(signer.sign(0, tx).raw)

    services.scan_blocks()

    assert Deposit.objects.count() == 2
    assert not Deposit.objects.filter(from_address=hot).exists()


def test_scan_is_bounded_per_run_and_resumes_from_the_cursor(evm, eth_asset, alice, settings):
    a = services.deposit_address_for(alice).address
    evm.send_eth(a, ETH)
    evm.mine(5)
    start = int(settings.WALLET_START_BLOCK)

    first = services.scan_blocks(max_blocks=2)
    assert (first.scanned, first.cursor) == (2, start + 1)
    second = services.scan_blocks(max_blocks=100)
    assert second.cursor == evm.head
    assert Deposit.objects.count() == 1
