"""A deposit whose block leaves the canonical chain before N confirmations is never credited."""

from __future__ import annotations

from wallets import services
from wallets.models import Deposit, DepositStatus, ScanCursor

from .conftest import ETH


def test_reorg_before_confirmations_orphans_the_deposit_for_good(evm, eth_asset, alice):
    a = services.deposit_address_for(alice).address
    snap = evm.snapshot()
    tx = evm.send_eth(a, ETH)
    services.scan_blocks()
    dep = Deposit.objects.get(tx_hash=tx)
    assert dep.status == DepositStatus.PENDING

    evm.revert(snap)  # the block with the deposit is gone; a longer branch without it wins
    evm.mine(4)
    scan = services.scan_blocks()
    confirm = services.deposits_confirm()
    evm.mine(5)
    services.scan_blocks()
    later = services.deposits_confirm()

    dep.refresh_from_db()
    assert scan.reorgs == 1
    assert dep.status == DepositStatus.ORPHANED
    assert (confirm.credited, later.credited, later.confirmed) == (0, 0, 0)
    cursor = ScanCursor.objects.get()
    assert cursor.block_number == evm.head
    assert cursor.block_hash == evm.w3.eth.get_block(evm.head)["hash"].to_0x_hex()


def test_confirmation_check_alone_orphans_a_deposit_whose_block_vanished(evm, eth_asset, alice):
    """Even before the scanner notices the reorg, the confirmation step compares block hashes."""
    a = services.deposit_address_for(alice).address
    snap = evm.snapshot()
    tx = evm.send_eth(a, ETH)
    services.scan_blocks()
    evm.revert(snap)
    evm.mine(6)

    result = services.deposits_confirm()

    assert (result.orphaned, result.confirmed, result.credited) == (1, 0, 0)
    assert Deposit.objects.get(tx_hash=tx).status == DepositStatus.ORPHANED


def test_a_transfer_mined_again_in_the_new_branch_comes_back(evm, eth_asset, alice):
    from wallets.signer import Signer

    from .conftest import TEST_MNEMONIC

    a = services.deposit_address_for(alice).address
    # A user's own key (index 999 of the test mnemonic is no deposit address) signs once; we replay the bytes.
    user_key = Signer(TEST_MNEMONIC)
    user = user_key.address(999)
    evm.send_eth(user, 2 * ETH)
    snap = evm.snapshot()
    signed = user_key.sign(999, {"to": a, "value": ETH, "gas": 21000, "gasPrice": evm.w3.eth.gas_price,
                                 "chainId": evm.w3.eth.chain_id, "nonce": 0})
    evm.w3.eth.send_raw_transaction(signed.raw)
    services.scan_blocks()
    first_block = Deposit.objects.get().block_number

    evm.revert(snap)
    evm.mine(2)
    evm.w3.eth.send_raw_transaction(signed.raw)  # the same transaction, now in a later block
    evm.mine(1)
    result = services.scan_blocks()

    dep = Deposit.objects.get()
    assert result.reorgs == 1
    assert dep.tx_hash == signed.tx_hash and dep.status == DepositStatus.PENDING
    assert dep.block_number > first_block
    assert dep.block_hash == evm.w3.eth.get_block(dep.block_number)["hash"].to_0x_hex()


def test_anvil_reorg_orphans_the_deposit(anvil, eth_asset, alice):
    a = services.deposit_address_for(alice).address
    tx = anvil.send_eth(a, ETH)
    services.scan_blocks()
    assert Deposit.objects.get(tx_hash=tx).status == DepositStatus.PENDING

    anvil.w3.provider.make_request("anvil_reorg", [1, []])  # re-mine the deposit's block without it
    anvil.mine(3)
    scan = services.scan_blocks()
    confirm = services.deposits_confirm()

    assert scan.reorgs == 1
    assert Deposit.objects.get(tx_hash=tx).status == DepositStatus.ORPHANED
    assert confirm.credited == 0
