"""The mnemonic and the keys derived from it: only the signing Celery worker is given the mnemonic, no
Django setting holds it, an error report of a failed signature shows no key, and neither the logs nor any
database column ever contain one after deposits, sweeps and withdrawals."""

from __future__ import annotations

import logging
import runpy
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bip_utils import Bip39SeedGenerator, Bip44, Bip44Changes, Bip44Coins
from django.apps import apps
from django.db import models
from django.views.debug import ExceptionReporter

from cryptgo import launcher
from wallets import services
from wallets.models import Deposit, DepositStatus, Sweep, SweepStatus, Withdrawal, WithdrawalStatus
from wallets.signer import Signer, get_signer

from .conftest import ETH, TEST_MNEMONIC, TEST_XPUB, new_account

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "cryptgo" / "settings.py"


def private_key_hex(index: int) -> str:
    """The child key m/44'/60'/0'/0/index of the test mnemonic, as hex without 0x (what a leak would show)."""
    account = Bip44.FromSeed(Bip39SeedGenerator(TEST_MNEMONIC).Generate(), Bip44Coins.ETHEREUM)
    key = account.Purpose().Coin().Account(0).Change(Bip44Changes.CHAIN_EXT).AddressIndex(index).PrivateKey()
    return str(key.Raw().ToHex()).lower()


def secrets_for(*indexes: int) -> list[str]:
    # The whole phrase, a run of its words, and each child key (with and without 0x, any case).
    words = TEST_MNEMONIC.split()
    return [TEST_MNEMONIC, " ".join(words[3:9])] + [private_key_hex(i) for i in (0, *indexes)]


def test_only_the_celery_worker_is_given_the_mnemonic(tmp_path, monkeypatch):
    secret_file = tmp_path / "mnemonic"
    env = {"ETH_RPC_URL": "http://127.0.0.1:8545", "WEB_PORT": "8000", "HOT_WALLET_XPUB": TEST_XPUB,
           "HOT_WALLET_MNEMONIC_FILE": str(secret_file), "HOT_WALLET_MNEMONIC": TEST_MNEMONIC, "PATH": "/bin"}

    given = {p.name: p.environment(env) for p in launcher.exchange_processes(env)}

    assert {"web", "matcher", "celery-worker", "celery-beat"} <= set(given)
    for name, proc_env in given.items():
        assert proc_env["HOT_WALLET_XPUB"] == TEST_XPUB  # every process may derive addresses
        has_secret = {k for k in launcher.SIGNER_ENV if k in proc_env}
        assert has_secret == (set(launcher.SIGNER_ENV) if name == "celery-worker" else set()), name

    # manage.py steps (migrate, seed_demo, dev_chain) do not get it either.
    seen: list[dict[str, str]] = []
    monkeypatch.setattr(launcher.subprocess, "run", lambda *a, env, **k: seen.append(env))
    launcher.manage(env, "dev_chain")
    assert seen and not any(k in seen[0] for k in launcher.SIGNER_ENV)


def test_no_django_setting_holds_the_mnemonic(tmp_path, monkeypatch):
    """Django's error reports print every setting whose name does not look secret: MNEMONIC does not."""
    secret_file = tmp_path / "mnemonic"
    secret_file.write_text(TEST_MNEMONIC + "\n")
    monkeypatch.setenv("SECRET_KEY", "test-only")
    for via_file in (True, False):
        if via_file:
            monkeypatch.setenv("HOT_WALLET_MNEMONIC_FILE", str(secret_file))
            monkeypatch.delenv("HOT_WALLET_MNEMONIC", raising=False)
        else:
            monkeypatch.delenv("HOT_WALLET_MNEMONIC_FILE", raising=False)
            monkeypatch.setenv("HOT_WALLET_MNEMONIC", TEST_MNEMONIC)
        values = runpy.run_path(str(SETTINGS_FILE))
        leaked = [name for name, value in values.items() if name.isupper() and TEST_MNEMONIC in repr(value)]
        assert leaked == [], leaked


def test_the_signer_reads_the_mnemonic_from_its_file(tmp_path, monkeypatch, wallet_settings):
    from wallets import signer as signer_mod

    secret_file = tmp_path / "mnemonic"
    secret_file.write_text(TEST_MNEMONIC + "\n")
    monkeypatch.delenv("HOT_WALLET_MNEMONIC")
    monkeypatch.setenv("HOT_WALLET_MNEMONIC_FILE", str(secret_file))
    signer_mod.reset_signer()
    assert get_signer().xpub == TEST_XPUB

    monkeypatch.setenv("HOT_WALLET_MNEMONIC_FILE", str(tmp_path / "missing"))
    signer_mod.reset_signer()
    with pytest.raises(Exception, match="cannot be read") as info:
        get_signer()
    assert TEST_MNEMONIC not in str(info.value)


def test_an_error_report_of_a_failed_signature_shows_no_key(settings):
    settings.DEBUG = False  # production: Django's reporter hides sensitive_variables' frames then
    signer = Signer(TEST_MNEMONIC, TEST_XPUB)
    try:
        signer.sign(3, {"to": "not an address", "value": 1, "gas": 21000, "gasPrice": 1, "chainId": 1, "nonce": 0})
    except Exception:
        report = ExceptionReporter(None, *sys.exc_info()).get_traceback_data()
    else:
        pytest.fail("signing a transaction to a malformed address must fail")

    key = bytes.fromhex(private_key_hex(3))
    frames = {f["function"]: dict(f["vars"]) for f in report["frames"]}
    assert {"sign", "sign_transaction"} <= set(frames)  # the signer's frame and eth-account's, which got the key
    shown = [(fn, name) for fn, variables in frames.items() for name, value in variables.items()
             if any(s in str(value).lower() for s in [*secrets_for(3), repr(key).lower()])]
    assert shown == []
    assert TEST_MNEMONIC not in str(report["settings"])


def _text_columns() -> list[tuple[type[models.Model], str]]:
    out = []
    for model in apps.get_models():
        if model._meta.managed and not model._meta.proxy:
            for f in model._meta.concrete_fields:
                if isinstance(f, (models.CharField, models.TextField, models.JSONField)):
                    out.append((model, f.name))
    return out


@pytest.mark.django_db(transaction=True)
def test_neither_logs_nor_database_ever_contain_the_mnemonic_or_a_key(evm, eth_asset, cgt_asset, alice, caplog):
    caplog.set_level(logging.DEBUG)  # everything, web3's request logging included
    address = services.deposit_address_for(alice)
    evm.send_eth(address.address, 2 * ETH)
    evm.send_token(address.address, 50 * ETH)
    evm.mine(3)
    services.scan_blocks()
    # Credit without a matcher: the sweep only needs credited deposits.
    Deposit.objects.update(status=DepositStatus.CREDITED)
    w = Withdrawal.objects.create(user=alice, asset=eth_asset, address=new_account().address, amount=Decimal("1"),
                                  fee=Decimal("0.001"), status=WithdrawalStatus.APPROVED, debited=True)
    for _ in range(4):  # ether sweep, token top-up, token transfer; the withdrawal
        services.sweep_run()
        services.withdrawals_send()
        evm.mine(3)
        services.withdrawals_track()
    services.sweep_run()

    assert sorted(Sweep.objects.values_list("asset__symbol", "status")) == [
        ("CGT", SweepStatus.CONFIRMED), ("ETH", SweepStatus.CONFIRMED)]
    assert Withdrawal.objects.get(pk=w.pk).status == WithdrawalStatus.CONFIRMED
    secrets = secrets_for(address.index)
    logged = caplog.text.lower()
    assert len(caplog.records) > 10 and [s for s in secrets if s.lower() in logged] == []
    stored: list[Any] = []
    for model, name in _text_columns():
        for s in secrets:
            if model._default_manager.filter(**{f"{name}__icontains": s}).exists():
                stored.append((model._meta.label, name))
    assert stored == []
