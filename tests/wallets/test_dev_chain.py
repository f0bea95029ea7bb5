"""The launcher's wallet setup: a private hot-wallet mnemonic under var/, and dev_chain on Anvil only."""

from __future__ import annotations

import stat
from io import StringIO
from pathlib import Path

from django.core.management import call_command

from cryptgo.launcher import wallet_processes
from markets.models import Asset
from tests.factories import AssetFactory
from wallets import hd
from wallets.devchain import wallet_env
from wallets.signer import Signer


def test_wallet_env_generates_a_private_mnemonic_once(tmp_path):
    env = wallet_env(tmp_path, {})
    path = tmp_path / "hot_wallet_mnemonic"
    assert env == {"HOT_WALLET_MNEMONIC_FILE": str(path), "HOT_WALLET_XPUB": env["HOT_WALLET_XPUB"]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Signer(path.read_text(), env["HOT_WALLET_XPUB"]).xpub == env["HOT_WALLET_XPUB"]
    assert wallet_env(tmp_path, {}) == env  # kept, not regenerated
    assert wallet_env(tmp_path, {"HOT_WALLET_MNEMONIC": "x", "HOT_WALLET_XPUB": "given"}) == {}


def test_celery_runs_only_with_a_chain():
    assert wallet_processes({}) == []
    assert [p.name for p in wallet_processes({"ETH_RPC_URL": "http://127.0.0.1:8545"})] == [
        "celery-worker", "celery-beat"]


def test_dev_chain_deploys_the_token_and_funds_the_hot_wallet_on_anvil(anvil, db):
    from cryptgo.devservices import ANVIL_CHAIN_ID, ANVIL_MNEMONIC

    # The launcher's Anvil runs on the fixed development mnemonic: its unlocked accounts are m/44'/60'/0'/0/i.
    dev_xpub = hd.xpub_from_mnemonic(ANVIL_MNEMONIC)
    assert anvil.w3.eth.accounts[:3] == [hd.address_at(i, dev_xpub) for i in range(3)]
    assert anvil.w3.eth.chain_id == ANVIL_CHAIN_ID
    cgt = AssetFactory(symbol="CGT", name="CryptGO Token", decimals=18, contract_address="")
    hot = hd.hot_wallet_address()
    out = StringIO()
    call_command("dev_chain", stdout=out)
    cgt.refresh_from_db()
    token = anvil.w3.eth.contract(address=cgt.contract_address, abi=anvil.token.abi)
    assert token.functions.symbol().call() == "CGT"
    assert token.functions.balanceOf(hot).call() == 10_000_000 * 10**18
    assert anvil.eth_balance(hot) >= 100 * 10**18
    again = StringIO()
    call_command("dev_chain", stdout=again)  # idempotent: the token is there, nothing is redeployed
    assert "deployed" not in again.getvalue()
    assert Asset.objects.get(pk=cgt.pk).contract_address == cgt.contract_address


def test_dev_chain_refuses_a_chain_that_is_not_a_development_chain(evm, db):
    cgt = AssetFactory(symbol="CGT", decimals=18, contract_address="")
    out = StringIO()
    call_command("dev_chain", stdout=out)
    assert "not a development chain" in out.getvalue()
    cgt.refresh_from_db()
    assert cgt.contract_address == ""


def test_without_node_the_local_chain_is_skipped_in_one_line(tmp_path, monkeypatch, capsys):
    """What `python3 dev.py run` (or test) prints without Node.js: dev.py's npm step, then the local services."""
    import importlib.util

    from cryptgo.devservices import LocalServices

    spec = importlib.util.spec_from_file_location("dev_script", Path(__file__).resolve().parents[2] / "dev.py")
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no node and no npm on it
    dev.ensure_node_packages()
    given = {"DATABASE_URL": "postgres://x/y", "REDIS_URL": "redis://x:1/0", "KAFKA_BOOTSTRAP_SERVERS": "x:1"}
    env = LocalServices(tmp_path).start_missing(environ=given)  # logs with print, as the launcher does
    assert "ETH_RPC_URL" not in env
    assert capsys.readouterr().out.splitlines() == [
        "Node.js/npm not found: the local Ethereum chain (Anvil) and the wallet tasks are skipped"]
    assert wallet_processes(env) == []
