"""PlaceStream: batches on one stream, each answered after its commit, in request order."""

import queue
import threading

import grpc

from matcher.client import MatcherRejected, cancel_request, limit_request
from trading.models import Order


def test_batches_on_one_stream_are_answered_in_order_after_their_commit(funded, matcher):
    alice, bob = funded
    c = matcher.client
    batches: queue.SimpleQueue = queue.SimpleQueue()
    batches.put([limit_request(alice.id, "ETH_USDT", "buy", "2000.00", "1", client_order_id="s-1"),
                 limit_request(alice.id, "ETH_USDT", "buy", "2000.00", "abc")])
    batches.put([limit_request(bob.id, "ETH_USDT", "sell", "2000.00", "0.4")])
    replies = c.place_stream(iter(batches.get, None), timeout=30)

    first = next(replies)
    assert first[0]["status"] == "open" and first[0]["client_order_id"] == "s-1"
    assert isinstance(first[1], MatcherRejected) and first[1].reason == "invalid_amount"
    assert first[1].code == grpc.StatusCode.INVALID_ARGUMENT.name
    (sell,) = next(replies)
    assert (sell["status"], sell["filled_amount"]) == ("filled", "0.4000")
    # answered after the commit: the rows are there
    assert Order.objects.get(id=sell["id"]).status == "filled"

    # the stream stays open for later batches, fed while it runs
    batches.put([cancel_request(alice.id, "ETH_USDT", order_id=first[0]["id"]),
                 cancel_request(alice.id, "ETH_USDT", order_id=first[0]["id"])])
    cancelled, again = next(replies)
    assert (cancelled["id"], cancelled["status"], cancelled["filled_amount"]) == (
        first[0]["id"], "cancelled", "0.4000")
    assert isinstance(again, MatcherRejected) and again.reason == "unknown_order"
    batches.put(None)
    assert list(replies) == []
    assert c.open_orders(alice.id) == []


def test_many_batches_in_flight_keep_their_order(funded, matcher):
    alice, _bob = funded
    c = matcher.client
    batches = [[limit_request(alice.id, "ETH_USDT", "buy", f"{1000 + i}.00", "0.01", client_order_id=f"m-{i}-{j}")
                for j in range(5)] for i in range(40)]
    answers: list = []
    reader = threading.Thread(target=lambda: answers.extend(c.place_stream(batches, timeout=60)))
    reader.start()
    reader.join(60)
    assert [[o["client_order_id"] for o in batch] for batch in answers] == [
        [f"m-{i}-{j}" for j in range(5)] for i in range(40)]
    ids = [o["id"] for batch in answers for o in batch]
    assert ids == sorted(ids)  # applied in stream order
    assert Order.objects.filter(user=alice, status="open").count() == 200
