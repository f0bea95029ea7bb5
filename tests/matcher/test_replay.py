"""replay_oplog rebuilds the engine from the operation log (or a snapshot) and finds any difference."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tests.matcher.fixtures import database_url_for_tests

ROOT = Path(__file__).resolve().parents[2]


def _trade(c, alice, bob, n):
    for i in range(n):
        c.place_limit(alice.id, "ETH_USDT", "buy", f"{1990 + i % 7}.00", "0.3")
        c.place_limit(bob.id, "ETH_USDT", "sell", f"{1992 + i % 5}.00", "0.2")
    c.place_market(bob.id, "ETH_USDT", "sell", "0.5")
    c.cancel_all(alice.id, "ETH_USDT")


def test_replay_agrees_with_the_tables(funded, matcher, capsys):
    alice, bob = funded
    _trade(matcher.client, alice, bob, 10)
    call_command("replay_oplog", "--no-progress")
    out = capsys.readouterr().out
    assert "OK: the operation log and the tables agree" in out
    assert "replayed 27 operations from the beginning" in out


def test_replay_from_a_snapshot(funded, matcher, capsys):
    alice, bob = funded
    c = matcher.client
    _trade(c, alice, bob, 3)
    snap = c.take_snapshot()
    c.place_limit(alice.id, "ETH_USDT", "buy", "1995.00", "0.1")
    _trade(c, alice, bob, 2)
    call_command("replay_oplog", "--no-progress", "--from-snapshot", "latest")
    out = capsys.readouterr().out
    assert f"from snapshot {snap['id']} (after op {snap['op_seq']})" in out
    assert "replayed 7 operations" in out and "OK" in out
    with pytest.raises(CommandError):
        call_command("replay_oplog", "--no-progress", "--from-snapshot", "999999")


def test_replay_reports_a_tampered_table_and_exits_non_zero(funded, matcher):
    alice, bob = funded
    _trade(matcher.client, alice, bob, 4)
    matcher.stop()
    with connection.cursor() as cur:
        cur.execute("UPDATE trading_balance SET available = available + 1 WHERE user_id = %s", [alice.id])
        cur.execute("DELETE FROM trading_deal WHERE id = (SELECT max(id) FROM trading_deal)")
    env = {"DJANGO_SETTINGS_MODULE": "cryptgo.settings_test", "DATABASE_URL": database_url_for_tests(),
           "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, str(ROOT / "manage.py"), "replay_oplog", "--no-progress"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DIFFERENCE: state (replay vs tables): balances" in result.stdout
    assert "produced by the replay is missing from trading_deal" in result.stdout
    assert "conservation: USDT" in result.stdout
