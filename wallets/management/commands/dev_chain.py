"""``python manage.py dev_chain``: make the local Anvil chain ready for the wallets (development only).

Funds the hot wallet with ether, deploys the CGT token from its committed
artifact (contracts/build/CGToken.json) when the listed CGT has no contract on
this chain, mints CGT to the hot wallet and to Anvil's first developer
accounts, and resets the scanner if the chain was recreated from scratch.
Refuses to do anything on a chain that is not a development chain.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from web3 import Web3

from markets.models import Asset
from wallets import hd
from wallets.chain import artifact, get_chain
from wallets.devchain import DEV_CHAIN_IDS
from wallets.models import Nonce, ScanCursor, ScannedBlock

ETH = 10**18
HOT_ETH = 1_000 * ETH
HOT_CGT = 10_000_000 * ETH
DEV_ACCOUNT_CGT = 100_000 * ETH


class Command(BaseCommand):
    help = "Prepare the local development chain: fund the hot wallet, deploy and list the CGT token."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--symbol", default="CGT", help="the listed asset the token backs (default CGT)")

    def handle(self, *args: Any, symbol: str, **options: Any) -> None:
        client = get_chain()
        w3 = client.w3
        try:
            chain_id = client.chain_id
        except Exception as exc:
            raise CommandError(f"no Ethereum node at ETH_RPC_URL: {exc}") from exc
        if chain_id not in DEV_CHAIN_IDS:
            self.stdout.write(f"chain id {chain_id} is not a development chain: dev_chain changes nothing")
            return
        self._reset_if_recreated(client.block_hash(0) or "")
        hot = hd.hot_wallet_address()
        if w3.eth.get_balance(hot) < HOT_ETH // 2:
            w3.provider.make_request("anvil_setBalance", [hot, hex(HOT_ETH)])  # type: ignore[arg-type]
        asset = Asset.objects.filter(symbol=symbol).first()
        if asset is None:
            raise CommandError(f"asset {symbol} is not listed (run seed_demo first)")
        if not asset.contract_address or not client.has_code(asset.contract_address):
            address = self._deploy(w3, asset, hot)
            Asset.objects.filter(pk=asset.pk).update(contract_address=address)
            self.stdout.write(f"deployed {symbol} at {address}; minted to the hot wallet {hot}")
        self.stdout.write(f"dev chain ready: chain id {chain_id}, hot wallet {hot}, "
                          f"{symbol} at {Asset.objects.get(pk=asset.pk).contract_address}")

    def _deploy(self, w3: Web3, asset: Asset, hot: str) -> str:
        art = artifact("CGToken")
        deployer = w3.eth.accounts[0]
        tx = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(
            asset.name, asset.symbol, asset.decimals, HOT_CGT).transact({"from": deployer})
        address = str(w3.eth.wait_for_transaction_receipt(tx, timeout=30)["contractAddress"])
        token = w3.eth.contract(address=address, abi=art["abi"])
        w3.eth.wait_for_transaction_receipt(token.functions.transfer(hot, HOT_CGT).transact({"from": deployer}),
                                            timeout=30)
        for dev in w3.eth.accounts[1:4]:  # developer faucets: deposit CGT from these
            token.functions.mint(dev, DEV_ACCOUNT_CGT).transact({"from": deployer})
        return address

    def _reset_if_recreated(self, genesis: str) -> None:
        """A fresh Anvil (its state file lost) is a new chain: the old cursor and nonces mean nothing there."""
        cursor = ScanCursor.objects.filter(chain="ethereum").first()
        if cursor is None or not cursor.genesis_hash or cursor.genesis_hash == genesis:
            return
        with transaction.atomic():
            ScanCursor.objects.filter(pk=cursor.pk).delete()
            ScannedBlock.objects.all().delete()
            Nonce.objects.all().delete()
        self.stdout.write("the development chain was recreated: scanner cursor and nonces reset")
