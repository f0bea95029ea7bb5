"""Durability: concurrent clients trade while the matcher is killed with SIGKILL several times.

Afterwards every acknowledged command is in the database, no deal is lost or duplicated,
per-asset conservation holds exactly, replay_oplog agrees with the tables, the restarted
engine equals the tables, and Kafka holds every event sequence number (at least once, in
order per key).
"""

import random
import threading
import time
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection

from matcher.client import MatcherClient, MatcherRejected, MatcherUnavailable
from matcher.service.state import normalize
from tests.matcher.conftest import make_users
from tests.matcher.helpers import conservation_differences, read_topics, tables_state
from trading.models import BalanceHistory, Deal, Order

WORKERS = 4
KILLS = 3
MAX_OPS_PER_WORKER = 4000


def _worker(wid, addr, users, acked, lock, stop):
    rng = random.Random(wid)
    client = MatcherClient(addr, timeout=5.0, retries=0)
    mine: list[tuple[int, int]] = []  # (user, order id) acknowledged and possibly open
    try:
        for n in range(MAX_OPS_PER_WORKER):
            if stop.is_set():
                return
            user = rng.choice(users)
            op = rng.random()
            try:
                if op < 0.55:
                    side = rng.choice(["buy", "sell"])
                    price = f"{2000 + rng.randint(-8, 8)}.{rng.randint(0, 99):02d}"
                    coid = f"w{wid}-{n}"
                    o = client.place_limit(user, "ETH_USDT", side, price, f"0.{rng.randint(10, 500):04d}",
                                           client_order_id=coid)
                    with lock:
                        acked["orders"][o["id"]] = coid
                    if o["status"] == "open":
                        mine.append((user, o["id"]))
                elif op < 0.75 and mine:
                    u, oid = mine.pop(rng.randrange(len(mine)))
                    client.cancel(u, "ETH_USDT", order_id=oid)
                    with lock:
                        acked["cancels"].add(oid)
                elif op < 0.85:
                    o = client.place_market(user, "ETH_USDT", rng.choice(["buy", "sell"]),
                                            "50" if rng.random() < 0.5 else "0.05")
                    with lock:
                        acked["orders"][o["id"]] = None
                else:
                    key = f"dep-{wid}-{n}"
                    client.update_balance(user, "USDT", "deposit", key, "10.5")
                    with lock:
                        acked["updates"].add(key)
            except MatcherRejected:
                pass  # e.g. cancelling an order that has been filled meanwhile
            except MatcherUnavailable:
                time.sleep(0.05)  # killed: the outcome of that command is unknown, and that is allowed
    finally:
        client.close()


@pytest.mark.slow
def test_acknowledged_commands_survive_sigkill(matcher):
    users = make_users(6)
    c = matcher.client
    for u in users:
        c.update_balance(u, "USDT", "deposit", f"seed-usdt-{u}", "1000000")
        c.update_balance(u, "ETH", "deposit", f"seed-eth-{u}", "500")
    acked = {"orders": {}, "cancels": set(), "updates": set()}
    lock = threading.Lock()
    stop = threading.Event()
    threads = [threading.Thread(target=_worker, args=(w, matcher.addr, users, acked, lock, stop))
               for w in range(WORKERS)]
    for t in threads:
        t.start()
    rng = random.Random(99)
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.7, 1.5))
            matcher.kill()
            time.sleep(rng.uniform(0.0, 0.3))
            matcher.start()
        time.sleep(0.8)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    print(f"acked: {len(acked['orders'])} orders, {len(acked['cancels'])} cancels, {len(acked['updates'])} updates")
    assert len(acked["orders"]) > 50 and acked["updates"] and acked["cancels"]

    # every acknowledged command is in the database
    rows = dict(Order.objects.filter(id__in=list(acked["orders"])).values_list("id", "client_order_id"))
    assert rows == acked["orders"]
    assert set(BalanceHistory.objects.filter(business="deposit", business_id__in=list(acked["updates"]))
               .values_list("business_id", flat=True)) == acked["updates"]
    assert set(Order.objects.filter(id__in=list(acked["cancels"])).values_list("status", flat=True)) <= {"cancelled"}

    # no deal lost or duplicated: each has its two orders and exactly four trade ledger rows
    deal_ids = set(Deal.objects.values_list("id", flat=True))
    assert deal_ids, "the run made no deals"
    per_deal = Counter(int(b) for b in BalanceHistory.objects.filter(business="trade")
                       .values_list("business_id", flat=True))
    assert set(per_deal) == deal_ids and set(per_deal.values()) == {4}
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM trading_deal d LEFT JOIN trading_order m ON m.id = d.maker_order_id"
                    " LEFT JOIN trading_order t ON t.id = d.taker_order_id WHERE m.id IS NULL OR t.id IS NULL")
        assert cur.fetchone()[0] == 0

    assert conservation_differences() == []
    call_command("replay_oplog", "--no-progress")  # raises CommandError on any difference
    assert normalize(matcher.client.dump_state()) == tables_state()

    # Kafka: every event seq at least once, no gap, in order per key (duplicates skipped)
    with connection.cursor() as cur:
        cur.execute("SELECT event_seq FROM matcher_matcherstate")
        last = cur.fetchone()[0]
    want = set(range(1, last + 1))
    messages = read_topics(matcher.topic_prefix,
                           until=lambda msgs: want <= {m[2]["seq"] for m in msgs}, timeout=90)
    assert {m[2]["seq"] for m in messages} >= want
    seen_per_key: dict[tuple[str, str], list[int]] = {}
    seen: set[int] = set()
    for topic, key, value in messages:
        if value["seq"] in seen:
            continue
        seen.add(value["seq"])
        seen_per_key.setdefault((topic, key), []).append(value["seq"])
    for key, seqs in seen_per_key.items():
        assert seqs == sorted(seqs), key
