"""The only place private keys exist: derived from the mnemonic, used to sign, forgotten.

Runs in the Celery worker (sweeps, withdrawals). The mnemonic comes from the
process environment, ``HOT_WALLET_MNEMONIC_FILE`` (a path) or
``HOT_WALLET_MNEMONIC``, read when the first transaction is signed: never from
the database, and never through Django settings, because Django's error reports
print every setting whose name does not look secret (its filter knows KEY, TOKEN,
SECRET, PASS..., not MNEMONIC). Nothing here logs, prints or returns a key;
``repr`` hides the secret, and the functions that hold the mnemonic or a key are
``sensitive_variables``, so an error report shows none of their (or their
callees') local variables. At start the signer checks that its mnemonic yields
the configured xpub, so the addresses users deposit to are ones we can actually
spend from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bip_utils import Bip39MnemonicValidator, Bip39SeedGenerator, Bip44, Bip44Changes, Bip44Coins
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables
from eth_account import Account

from wallets import hd


@dataclass(frozen=True)
class SignedTx:
    raw: str  # 0x-prefixed hex of the signed transaction
    tx_hash: str
    sender: str
    nonce: int


class Signer:
    """Signs transactions for the hot wallet (index 0) and deposit addresses (index >= 1)."""

    @sensitive_variables()
    def __init__(self, mnemonic: str, expected_xpub: str | None = None) -> None:
        mnemonic = " ".join(mnemonic.split())
        if not mnemonic or not Bip39MnemonicValidator().IsValid(mnemonic):
            raise ImproperlyConfigured("HOT_WALLET_MNEMONIC is not a valid BIP-39 mnemonic")
        seed = Bip39SeedGenerator(mnemonic).Generate()
        self._account = Bip44.FromSeed(seed, Bip44Coins.ETHEREUM).Purpose().Coin().Account(0)
        xpub = str(self._account.PublicKey().ToExtended())
        if expected_xpub and xpub != expected_xpub:
            raise ImproperlyConfigured("HOT_WALLET_MNEMONIC does not match HOT_WALLET_XPUB")
        self.xpub = xpub

    def __repr__(self) -> str:
        return f"Signer(xpub={self.xpub[:12]}…)"

    def address(self, index: int) -> str:
        return hd.address_at(index, self.xpub)

    @property
    def hot_address(self) -> str:
        return self.address(hd.HOT_WALLET_INDEX)

    @sensitive_variables()
    def sign(self, index: int, tx: dict[str, Any]) -> SignedTx:
        """Sign ``tx`` (which must carry its nonce, chainId, gas and fees) with key ``index``."""
        key = self._account.Change(Bip44Changes.CHAIN_EXT).AddressIndex(index).PrivateKey().Raw().ToBytes()
        signed = Account.sign_transaction(tx, key)
        del key
        return SignedTx(raw=signed.raw_transaction.to_0x_hex(), tx_hash=signed.hash.to_0x_hex(),
                        sender=self.address(index), nonce=int(tx["nonce"]))


_signer: Signer | None = None


@sensitive_variables()
def configured_mnemonic() -> str:
    """The mnemonic from the environment: the file ``HOT_WALLET_MNEMONIC_FILE`` names, else ``HOT_WALLET_MNEMONIC``.

    Only the Celery worker is given either (the launcher passes them to no other process).
    """
    path = os.environ.get("HOT_WALLET_MNEMONIC_FILE", "")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"HOT_WALLET_MNEMONIC_FILE cannot be read: {exc.strerror}") from None
    mnemonic = os.environ.get("HOT_WALLET_MNEMONIC", "")
    if not mnemonic:
        raise ImproperlyConfigured("HOT_WALLET_MNEMONIC_FILE (or HOT_WALLET_MNEMONIC) is not set: cannot sign")
    return mnemonic


@sensitive_variables()
def get_signer() -> Signer:
    """The process's signer, built on first use (so a process that never signs never reads the mnemonic)."""
    global _signer
    if _signer is None:
        _signer = Signer(configured_mnemonic(), settings.HOT_WALLET_XPUB or None)
    return _signer


def reset_signer() -> None:
    """Forget the cached signer (tests that change the mnemonic setting)."""
    global _signer
    _signer = None
