"""HD derivation: the web tier's xpub and the signer's mnemonic agree; private keys are refused where an
xpub belongs, and a mnemonic that does not match the configured xpub is refused."""

from __future__ import annotations

import pytest
from bip_utils import Bip39SeedGenerator, Bip44, Bip44Coins
from django.core.exceptions import ImproperlyConfigured
from eth_account import Account

from wallets import hd
from wallets.signer import Signer

from .conftest import TEST_MNEMONIC, TEST_XPUB

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"


def test_addresses_follow_bip44_and_match_the_signer():
    # Anvil's well-known accounts are m/44'/60'/0'/0/i of its mnemonic: an independent reference.
    xpub = hd.xpub_from_mnemonic(ANVIL_MNEMONIC)
    assert hd.address_at(0, xpub) == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert hd.address_at(1, xpub) == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    signer = Signer(TEST_MNEMONIC, TEST_XPUB)
    for index in (0, 1, 7, 2**31 - 1):
        assert signer.address(index) == hd.address_at(index, TEST_XPUB)
    signed = signer.sign(5, {"to": hd.address_at(1, TEST_XPUB), "value": 1, "gas": 21000, "gasPrice": 10**9,
                             "chainId": 31337, "nonce": 0})
    assert Account.recover_transaction(signed.raw) == hd.address_at(5, TEST_XPUB) == signed.sender


def test_a_private_key_or_wrong_level_is_refused_as_xpub():
    account = Bip44.FromSeed(Bip39SeedGenerator(TEST_MNEMONIC).Generate(), Bip44Coins.ETHEREUM).Purpose().Coin()
    xprv = account.Account(0).PrivateKey().ToExtended()
    coin_level_xpub = account.PublicKey().ToExtended()
    for bad in (xprv, coin_level_xpub, "xpub-nonsense"):
        hd._account.cache_clear()
        with pytest.raises(ImproperlyConfigured):
            hd.address_at(1, bad)
    with pytest.raises(ValueError):
        hd.address_at(-1, TEST_XPUB)


def test_signer_refuses_a_mnemonic_that_does_not_give_the_xpub_and_hides_it():
    with pytest.raises(ImproperlyConfigured, match="does not match"):
        Signer(ANVIL_MNEMONIC, TEST_XPUB)
    with pytest.raises(ImproperlyConfigured, match="not a valid"):
        Signer("correct horse battery staple", None)
    signer = Signer(TEST_MNEMONIC, TEST_XPUB)
    assert "shaft" not in repr(signer) and TEST_MNEMONIC not in str(vars(signer))
