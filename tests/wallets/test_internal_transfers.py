"""Ether sent to a deposit address by a contract is found by block tracing (Anvil); reverted frames are not."""

from __future__ import annotations

from decimal import Decimal

from wallets import chain, services
from wallets.models import Deposit

from .conftest import ETH


def test_internal_transfers_are_found_and_reverted_ones_ignored(anvil, eth_asset, alice, bob):
    a = services.deposit_address_for(alice).address
    b = services.deposit_address_for(bob).address
    forwarder = anvil.deploy("Forwarder")
    start = anvil.head
    tx = forwarder.functions.forward(a).transact({"from": anvil.faucet, "value": 3 * ETH})
    anvil.w3.eth.wait_for_transaction_receipt(tx)
    # split: alice gets half in a successful inner call; bob's share is sent inside a frame that reverts.
    tx2 = forwarder.functions.split([a, b], True).transact({"from": anvil.faucet, "value": 2 * ETH})
    assert anvil.w3.eth.wait_for_transaction_receipt(tx2)["status"] == 1

    services.scan_blocks()

    assert chain.get_chain().tracing == "debug"
    deposits = list(Deposit.objects.order_by("block_number").values_list("user__email", "amount", "tx_hash",
                                                                         "log_index"))
    assert deposits == [
        ("alice@example.com", Decimal("3"), tx.to_0x_hex(), -2),  # frame 1 (the inner CALL) of the transaction
        ("alice@example.com", Decimal("1"), tx2.to_0x_hex(), -2),
    ]
    assert anvil.eth_balance(b) == 0
    assert all(d.block_number > start for d in Deposit.objects.all())


def test_parity_trace_block_finds_the_same_transfers(anvil, eth_asset, alice, bob):
    a = services.deposit_address_for(alice).address
    b = services.deposit_address_for(bob).address
    forwarder = anvil.deploy("Forwarder")
    tx = forwarder.functions.split([a, b], True).transact({"from": anvil.faucet, "value": 2 * ETH})
    block = anvil.w3.eth.get_block(anvil.w3.eth.wait_for_transaction_receipt(tx)["blockNumber"],
                                   full_transactions=True)

    debug = chain.ChainClient(anvil.w3, "debug").native_transfers(dict(block))
    parity = chain.ChainClient(anvil.w3, "trace").native_transfers(dict(block))

    assert debug == parity
    assert [(t.to, t.value, t.index) for t in debug if t.to in (a, b)] == [(a, ETH, -2)]


def test_without_tracing_only_top_level_transfers_are_seen(evm, eth_asset, alice):
    """eth-tester offers no tracing: the client says so and falls back to the transaction's own value."""
    a = services.deposit_address_for(alice).address
    forwarder = evm.deploy("Forwarder")
    forwarder.functions.forward(a).transact({"from": evm.faucet, "value": ETH})
    direct = evm.send_eth(a, 2 * ETH)

    services.scan_blocks()

    assert chain.get_chain().tracing == "off"
    assert list(Deposit.objects.values_list("tx_hash", "amount", "log_index")) == [(direct, Decimal("2"), -1)]
