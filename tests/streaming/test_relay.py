"""run_stream_relay with contract-(C) messages produced by the test: per-user groups, duplicates, stale events."""

from __future__ import annotations

import time

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from streaming.kafka import Event
from streaming.relay import private_messages


def order_event(seq: int, user: int, order_id: int, event: str = "new", when: int | None = None) -> dict:
    order = {"id": order_id, "user": user, "market": "ETH_USDT", "side": "buy", "type": "limit", "price": "1.00",
             "amount": "1.0000", "status": "open"}
    return {"kind": "order", "seq": seq, "event": event, "reason": None, "time": when or int(time.time() * 1000),
            "order": order}


def test_private_messages_group_by_user_and_skip_stale_events():
    now = int(time.time() * 1000)
    events = [Event("orders", "order", 1, now, order_event(1, 5, 10)),
              Event("balances", "balance", 2, now, {"user": 5, "asset": "USDT", "available": "9.000000",
                                                     "frozen": "1.000000"}),
              Event("orders", "order", 3, now - 120_000, order_event(3, 6, 11)),
              Event("orders", "order", 4, now, {"order": {"market": "ETH_USDT"}})]  # malformed: no user
    msgs = private_messages(events, oldest_ms=now - 60_000)
    assert list(msgs) == [5]
    assert [(i["kind"], i["seq"]) for i in msgs[5]["items"]] == [("order", 1), ("asset", 2)]


@pytest.mark.django_db(transaction=True)
def test_relay_pushes_each_users_events_once_to_that_user(ws_client, events, run_relay, alice, bob, usdt):
    a, b = ws_client(), ws_client()
    for c, user in ((a, alice), (b, bob)):
        c.result("server.auth", str(AccessToken.for_user(user)))
        c.result("order.subscribe")
        c.result("asset.subscribe", "USDT")
    run_relay()
    first = order_event(0, alice.id, 100)
    first["seq"] = events.send("orders", str(alice.id), "order", first)
    events.resend("orders", str(alice.id), "order", first)  # delivered twice by Kafka
    events.send("orders", str(bob.id), "order", order_event(0, bob.id, 101))
    events.send("balances", str(alice.id), "balance", {"kind": "balance", "user": alice.id, "asset": "USDT",
                                                       "available": "5.000000", "frozen": "1.000000"})
    events.send("balances", str(alice.id), "balance", {"kind": "balance", "user": alice.id, "asset": "ETH",
                                                       "available": "1.0", "frozen": "0"})
    events.send("orders", str(alice.id), "order", order_event(0, alice.id, 100, "done"))
    events.flush()
    # Orders and balances are separate topics: only the order within each is guaranteed.
    a.push("order.update", timeout=30, where=lambda m: m["params"][0] == "done")
    assert a.push("asset.update", timeout=30)["params"] == [{"USDT": {"available": "5.000000", "frozen": "1.000000"}}]
    got = a.drain(quiet=0.5)  # what arrived besides those two (including what push() set aside)
    orders = [m["params"] for m in got if m["method"] == "order.update"]
    assert [(event, order["id"]) for event, order in orders] == [("new", 100)]  # the duplicate was dropped
    assert [m for m in got if m["method"] != "order.update"] == []  # no ETH update: not subscribed
    bob_got = b.push("order.update", timeout=30)
    assert bob_got["params"][1]["id"] == 101
    assert b.drain(quiet=0.5) == []
