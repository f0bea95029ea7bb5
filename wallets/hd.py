"""Deposit addresses from the hot wallet's account-level xpub (m/44'/60'/0').

The web tier derives public addresses only: it holds the xpub, never the
mnemonic. Address ``i`` is m/44'/60'/0'/0/i; index 0 is the hot wallet itself,
so deposit addresses start at 1. An xpub plus any one leaked child private key
reveals every key under the account, which is why child private keys exist
only inside ``wallets.signer`` and are never logged or stored.
"""

from __future__ import annotations

from functools import lru_cache

from bip_utils import Bip39SeedGenerator, Bip44, Bip44Changes, Bip44Coins
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

HOT_WALLET_INDEX = 0


@lru_cache(maxsize=4)
def _account(xpub: str) -> Bip44:
    try:
        node = Bip44.FromExtendedKey(xpub, Bip44Coins.ETHEREUM)
    except Exception as exc:  # bip_utils raises several types for a malformed key
        raise ImproperlyConfigured(f"HOT_WALLET_XPUB is not a valid extended public key: {exc}") from None
    if not node.IsPublicOnly():
        # An xprv here would put private keys in the web tier: refuse it outright.
        raise ImproperlyConfigured("HOT_WALLET_XPUB must be an extended PUBLIC key (xpub), not a private one")
    if node.Level().name != "ACCOUNT":
        raise ImproperlyConfigured("HOT_WALLET_XPUB must be the account-level key m/44'/60'/0'")
    return node


def configured_xpub() -> str:
    xpub = settings.HOT_WALLET_XPUB
    if not xpub:
        raise ImproperlyConfigured("HOT_WALLET_XPUB is not set: deposit addresses cannot be derived")
    return str(xpub)


def address_at(index: int, xpub: str | None = None) -> str:
    """The EIP-55 address m/44'/60'/0'/0/index under the account xpub."""
    if index < 0 or index >= 2**31:
        raise ValueError("address index must be in [0, 2**31)")
    node = _account(xpub or configured_xpub())
    return str(node.Change(Bip44Changes.CHAIN_EXT).AddressIndex(index).PublicKey().ToAddress())


def hot_wallet_address(xpub: str | None = None) -> str:
    return address_at(HOT_WALLET_INDEX, xpub)


def xpub_from_mnemonic(mnemonic: str) -> str:
    """The account xpub for a mnemonic; used by the signer's self-check and the dev launcher."""
    seed = Bip39SeedGenerator(mnemonic).Generate()
    account = Bip44.FromSeed(seed, Bip44Coins.ETHEREUM).Purpose().Coin().Account(0)
    return str(account.PublicKey().ToExtended())
