"""Wallet fixtures: a real EVM in process (eth-tester + py-evm) or over JSON-RPC (Anvil), a funded hot
wallet, the CGT token deployed from its committed artifact, and the ETH / CGT assets."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from tests.factories import AssetFactory
from wallets import chain as chain_mod
from wallets import hd, signer

#: Test-only mnemonic of the exchange's hot wallet (not Anvil's faucet mnemonic).
TEST_MNEMONIC = ("shaft debris slice loan story jump limit ice soda dance wheat crouch "
                 "mechanic inch web twelve submit stove indoor unhappy collect gold fade fire")
TEST_XPUB = hd.xpub_from_mnemonic(TEST_MNEMONIC)
ETH = 10**18
HOT_ETH = 100 * ETH
HOT_CGT = 1_000_000 * ETH


class Evm:
    """A chain the wallet code talks to, with the few moves tests make on it."""

    def __init__(self, w3: Web3, faucet: Any) -> None:
        self.w3 = w3
        self.faucet = faucet  # an unlocked, well-funded account of the node (eth-tester/Anvil)
        self.token: Any = None

    # chain movement
    def mine(self, n: int = 1) -> None:
        if self.is_anvil:
            self.w3.provider.make_request("anvil_mine", [hex(n)])  # type: ignore[arg-type]
        else:
            self.w3.testing.mine(n)

    def snapshot(self) -> Any:
        if self.is_anvil:
            return self.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        return self.w3.testing.snapshot()

    def revert(self, snap: Any) -> None:
        if self.is_anvil:
            assert self.w3.provider.make_request("evm_revert", [snap])["result"] is True  # type: ignore[arg-type]
        else:
            self.w3.testing.revert(snap)

    @property
    def is_anvil(self) -> bool:
        return isinstance(self.w3.provider, Web3.HTTPProvider)

    @property
    def head(self) -> int:
        return int(self.w3.eth.block_number)

    # money
    def send_eth(self, to: str, wei: int, sender: str | None = None) -> str:
        tx = self.w3.eth.send_transaction({"from": sender or self.faucet, "to": to, "value": wei})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1
        return tx.to_0x_hex()

    def send_token(self, to: str, units: int, sender: str | None = None) -> str:
        tx = self.token.functions.transfer(to, units).transact({"from": sender or self.faucet})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1
        return tx.to_0x_hex()

    def deploy(self, name: str, *args: Any) -> Any:
        art = chain_mod.artifact(name)
        tx = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(*args).transact(
            {"from": self.faucet})
        address = self.w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
        return self.w3.eth.contract(address=address, abi=art["abi"])

    def eth_balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(address))

    def token_balance(self, address: str) -> int:
        return int(self.token.functions.balanceOf(address).call())


@pytest.fixture
def wallet_settings(settings: Any, monkeypatch: Any) -> Iterator[Any]:
    # The signer reads its mnemonic from the environment, as the launcher's Celery worker gets it.
    monkeypatch.delenv("HOT_WALLET_MNEMONIC_FILE", raising=False)
    monkeypatch.setenv("HOT_WALLET_MNEMONIC", TEST_MNEMONIC)
    settings.HOT_WALLET_XPUB = TEST_XPUB
    settings.WALLET_TRACING = "auto"
    signer.reset_signer()
    yield settings
    signer.reset_signer()


def _prepare(w3: Web3, faucet: str, settings: Any) -> Evm:
    evm = Evm(w3, faucet)
    chain_mod.use_web3(w3)
    hot = hd.hot_wallet_address(TEST_XPUB)
    evm.send_eth(hot, HOT_ETH)
    evm.token = evm.deploy("CGToken", "CryptGO Token", "CGT", 18, 10_000_000 * ETH)
    evm.send_token(hot, HOT_CGT)
    settings.WALLET_START_BLOCK = str(evm.head + 1)
    return evm


@pytest.fixture
def evm(wallet_settings: Any) -> Iterator[Evm]:
    """A fresh in-process chain (py-evm) per test: milliseconds to create, no tracing."""
    from eth_tester import EthereumTester, PyEVMBackend
    from web3 import EthereumTesterProvider

    w3 = Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend())))
    yield _prepare(w3, w3.eth.accounts[0], wallet_settings)
    chain_mod.use_web3(None)


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    """One Anvil for the session (the npm package's binary) on a free 127.0.0.1 port."""
    from cryptgo.devservices import node_missing_reason, start_anvil

    reason = node_missing_reason()
    if reason and shutil.which("node") is None:
        pytest.skip(reason)
    assert reason is None, reason  # Node is here but `npm ci` was not run: that is a setup bug, not a skip
    tmp = Path(tempfile.mkdtemp(prefix="cryptgo-anvil-"))
    svc = start_anvil(tmp)
    try:
        yield svc.url
    finally:
        svc.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def anvil(anvil_url: str, wallet_settings: Any) -> Iterator[Evm]:
    """The session's Anvil, reverted to a snapshot after each test; it traces blocks."""
    w3 = Web3(Web3.HTTPProvider(anvil_url))
    snap = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    try:
        yield _prepare(w3, w3.eth.accounts[0], wallet_settings)
    finally:
        chain_mod.use_web3(None)
        w3.provider.make_request("evm_revert", [snap])  # type: ignore[arg-type]


@pytest.fixture
def eth_asset(db: Any) -> Any:
    return AssetFactory(symbol="ETH", name="Ether", decimals=18, contract_address="", deposit_confirmations=3,
                        min_deposit=Decimal("0.01"), withdrawal_fee=Decimal("0.001"), min_withdrawal=Decimal("0.01"))


@pytest.fixture
def cgt_asset(db: Any, evm_any: Evm) -> Any:
    return AssetFactory(symbol="CGT", name="CryptGO Token", decimals=18, contract_address=evm_any.token.address,
                        deposit_confirmations=3, min_deposit=Decimal("1"), withdrawal_fee=Decimal("1"),
                        min_withdrawal=Decimal("2"))


@pytest.fixture
def evm_any(request: Any) -> Evm:
    """Whichever chain fixture the test asked for (evm or anvil)."""
    for name in ("anvil", "evm"):
        if name in request.fixturenames:
            return request.getfixturevalue(name)  # type: ignore[no-any-return]
    return request.getfixturevalue("evm")  # type: ignore[no-any-return]


def new_account() -> Any:
    return Account.create()


@pytest.fixture
def wallet_matcher(matcher_factory: Any, eth_asset: Any, cgt_asset: Any, alice: Any, bob: Any, settings: Any) -> Any:
    """A real matcher (run_matcher) on the test database with ETH and CGT listed and users alice and bob.

    Needs ``transactional_db`` (matcher_factory asks for it): the matcher process reads committed rows.
    """
    from matcher.client import reset_client

    mp = matcher_factory()
    settings.MATCHER_GRPC_ADDR = mp.addr
    reset_client()
    yield mp
    reset_client()


def balance(mp: Any, user: Any, asset: str) -> tuple[Decimal, Decimal]:
    """(available, frozen) of ``user`` in ``asset`` as the matcher holds them."""
    b = mp.client.balances(user.pk).get(asset, {"available": "0", "frozen": "0"})
    return Decimal(b["available"]), Decimal(b["frozen"])


def ledger(user: Any, asset: str) -> list[tuple[str, str, Decimal]]:
    from trading.models import BalanceHistory

    return [(r.business, r.business_id, r.change) for r in
            BalanceHistory.objects.filter(user=user, asset__symbol=asset).order_by("id")]


def concurrent_withdrawals(user: Any, n: int, address: str, amount: str = "1", asset: str = "ETH") -> list[str]:
    """``n`` threads request the same withdrawal at once (a barrier); each one's outcome: "ok" or the
    refusal's code. Each thread closes its own database connection."""
    from django.db import connection

    from cryptgo.api.errors import ApiError
    from wallets import services

    outcomes: list[str] = []
    guard = threading.Lock()
    barrier = threading.Barrier(n)

    def request() -> None:
        try:
            barrier.wait(timeout=30)
            services.withdrawal_request(user=user, asset=asset, address=address, amount=amount)
            outcome = "ok"
        except ApiError as exc:
            outcome = exc.code
        finally:
            connection.close()
        with guard:
            outcomes.append(outcome)

    threads = [threading.Thread(target=request) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes
