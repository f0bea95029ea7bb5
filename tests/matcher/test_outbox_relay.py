"""run_outbox_relay delivers from a process of its own when the matcher does not relay."""

import signal
import subprocess
import sys
from pathlib import Path

from django.db import connection

from tests.matcher.fixtures import database_url_for_tests
from tests.matcher.helpers import read_topics

ROOT = Path(__file__).resolve().parents[2]


def test_separate_relay_delivers_the_backlog(matcher_factory, eth_usdt, alice, bob, tmp_path):
    mp = matcher_factory(MATCHER_OUTBOX_RELAY="false")
    c = mp.client
    c.update_balance(alice.id, "USDT", "deposit", "a", "10000")
    c.update_balance(bob.id, "ETH", "deposit", "b", "10")
    c.place_limit(alice.id, "ETH_USDT", "buy", "2000.00", "1")
    c.place_limit(bob.id, "ETH_USDT", "sell", "1999.00", "0.4")
    with connection.cursor() as cur:
        cur.execute("SELECT max(last_seq), bool_and(NOT delivered) FROM matcher_eventoutbox")
        last, none_delivered = cur.fetchone()
    assert none_delivered  # the matcher itself did not relay

    env = {**mp.env}
    with open(tmp_path / "relay.log", "wb") as log:
        relay = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "run_outbox_relay"], cwd=ROOT, env=env,
                                 stdout=log, stderr=subprocess.STDOUT)
    try:
        messages = read_topics(mp.topic_prefix, ("orders", "deals", "balances", "depth"),
                               until=lambda ms: {v["seq"] for _, _, v in ms if v["type"] != "depth"}
                               >= set(range(1, last + 1)) and any(v["type"] == "depth" for _, _, v in ms))
    finally:
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(30) == 0, (tmp_path / "relay.log").read_text()
    deals = [v["data"] for t, _, v in messages if v["type"] == "deal"]
    assert [(d["price"], d["amount"], d["taker_side"]) for d in deals] == [("2000.00", "0.4000", "sell")]
    assert env["DATABASE_URL"] == database_url_for_tests()


def test_a_relay_in_another_process_wakes_on_the_commit(matcher_factory, eth_usdt, alice, bob):
    """Between rounds the relay waits on the batches' NOTIFY, not for its poll interval (here 60 s)."""
    import threading
    import time

    import psycopg
    from django.conf import settings

    from matcher.service.persist import OUTBOX_CHANNEL
    from matcher.service.relay import OutboxRelay

    mp = matcher_factory(MATCHER_OUTBOX_RELAY="false")
    relay = OutboxRelay(database_url_for_tests(), settings.KAFKA_BOOTSTRAP_SERVERS, mp.topic_prefix,
                        idle_wait=60, min_interval=0)
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    try:
        mp.client.update_balance(alice.id, "USDT", "deposit", "wake-1", "10")
        deadline = time.monotonic() + 20
        while relay.delivered == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert relay.delivered == 1  # the balance event (it may have come by the first round or the NOTIFY)
        time.sleep(0.5)  # the relay is now waiting

        mp.client.update_balance(bob.id, "ETH", "deposit", "wake-2", "1")
        deadline = time.monotonic() + 10
        while relay.delivered == 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert relay.delivered == 2  # woken by the commit, 50 s before its poll was due
    finally:
        relay.stopping.set()
        with psycopg.connect(database_url_for_tests(), autocommit=True) as conn:
            conn.execute(f"NOTIFY {OUTBOX_CHANNEL}")  # ends its wait
        thread.join(30)
    assert not thread.is_alive()
