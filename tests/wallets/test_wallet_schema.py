"""The wallet endpoints conform to the served OpenAPI schema under Schemathesis: no 5xx, documented
statuses and shapes only. Run as the CLI against uvicorn with a funded user, a fixed seed, few examples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from .conftest import TEST_XPUB

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ST = Path(sys.executable).with_name("st")
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance")


def test_wallet_api_conforms_to_its_schema(wallet_matcher, alice, tmp_path):
    from tests.api.live import LiveApi

    wallet_matcher.client.update_balance(alice.pk, "ETH", "test_fund", "st-eth", "50")
    server = LiveApi(tmp_path, wallet_matcher.addr, HOT_WALLET_XPUB=TEST_XPUB).start()
    try:
        token = str(RefreshToken.for_user(alice).access_token)
        cmd = [str(ST), "run", f"{server.url}/api/schema/", "--checks", CHECKS, "--max-examples", "10",
               "--seed", "20261124", "--workers", "1", "--phases", "examples,coverage,fuzzing",
               "-H", f"Authorization: Bearer {token}", "--request-timeout", "30",
               "--include-path-regex", "^/api/v1/wallets/", "--suppress-health-check", "all", "--no-color"]
        # cwd: schemathesis keeps its example database in ./.schemathesis; not in the repository
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    finally:
        server.stop()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-12000:] + "\n--- server log ---\n" + server.log_tail()
    assert "Selected: 6/" in output, output[-3000:]  # all six wallet operations ran
