"""Development-only wallet setup for the launcher: the hot wallet's keys under var/.

The launcher calls ``wallet_env`` before it starts any process: unless
``HOT_WALLET_MNEMONIC``/``HOT_WALLET_MNEMONIC_FILE`` is configured, a random
BIP-39 mnemonic is generated once into ``var/hot_wallet_mnemonic`` (mode 0600)
and its account xpub is derived, so a laptop gets a hot wallet of its own that
no one else knows. Production configures both variables and never runs this.
"""

from __future__ import annotations

from pathlib import Path

DEV_CHAIN_IDS = frozenset({31337})  # Anvil's default: dev_chain refuses to touch any other chain


def wallet_env(var_dir: Path, env: dict[str, str]) -> dict[str, str]:
    """HOT_WALLET_MNEMONIC_FILE and HOT_WALLET_XPUB for the launcher's processes (never the mnemonic itself)."""
    from bip_utils import Bip39MnemonicGenerator, Bip39WordsNum

    from wallets.hd import xpub_from_mnemonic

    out: dict[str, str] = {}
    if env.get("HOT_WALLET_MNEMONIC"):
        mnemonic = env["HOT_WALLET_MNEMONIC"]
    else:
        path = Path(env.get("HOT_WALLET_MNEMONIC_FILE") or var_dir / "hot_wallet_mnemonic")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(str(Bip39MnemonicGenerator().FromWordsNumber(Bip39WordsNum.WORDS_NUM_24)) + "\n")
        out["HOT_WALLET_MNEMONIC_FILE"] = str(path)
        mnemonic = path.read_text().strip()
    if not env.get("HOT_WALLET_XPUB"):
        out["HOT_WALLET_XPUB"] = xpub_from_mnemonic(mnemonic)
    return out
