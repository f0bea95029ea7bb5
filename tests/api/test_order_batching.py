"""Placements of the ASGI fast path go through the worker's batching async matcher client
(``matcher.client.AsyncMatcherClient``, docs/adr/0007-asgi-fast-path.md): the placements in flight
together share one ``PlaceBatch``, and each caller still gets exactly its own answer: its order, its
own refusal, the duplicate ``client_order_id`` rules, the 503 of an unreachable matcher.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import grpc
import pytest
import requests

from matcher.client import AsyncMatcherClient, MatcherRejected, MatcherUnavailable, limit_request, market_request

pytestmark = pytest.mark.slow


@pytest.fixture
def funded(matcher, alice, bob, mallory):
    """Three users with quote and base to trade with."""
    for u in (alice, bob, mallory):
        matcher.client.update_balance(u.pk, "USDT", "deposit", f"ob-usdt-{u.pk}", "100000")
        matcher.client.update_balance(u.pk, "ETH", "deposit", f"ob-eth-{u.pk}", "10")
    return [alice, bob, mallory]


def test_placements_in_flight_together_share_a_batch_and_get_their_own_answers(matcher, funded):
    """40 placements from three users at once: a few PlaceBatch calls; each caller gets its own order or
    its own refusal, and a refused order changes nothing for the others."""
    users = [u.pk for u in funded]

    def request(i: int) -> Any:
        user = users[i % 3]
        if i == 7:
            return limit_request(user, "ETH_USDT", "buy", "1000000", "5")  # more than the user holds
        if i == 11:
            return limit_request(user, "ETH_USDT", "buy", "1000.001", "1")  # too many decimals
        if i == 13:
            return market_request(user, "NOPE_USDT", "buy", "10")
        if i in (17, 18):  # one user's client_order_id twice in one batch: the second is refused
            return limit_request(users[0], "ETH_USDT", "sell", "2500", "0.1", client_order_id="ob-dup")
        side = "buy" if i % 2 else "sell"
        return limit_request(user, "ETH_USDT", side, "1900" if side == "buy" else "2100", f"0.0{i % 9 + 1}",
                             client_order_id=f"ob-{i}" if i % 4 == 0 else None)

    async def run() -> tuple[AsyncMatcherClient, list[Any]]:
        client = AsyncMatcherClient(matcher.addr)
        try:
            out = await asyncio.gather(*(client.place(request(i)) for i in range(40)), return_exceptions=True)
        finally:
            await client.close()
        return client, out

    client, out = asyncio.run(run())
    assert client.sent == 40 and client.calls < 10  # everything queued while a call is in flight rides together
    refused = {i: r for i, r in enumerate(out) if isinstance(r, Exception)}
    assert {i: (type(r), getattr(r, "reason", None)) for i, r in refused.items()} == {
        7: (MatcherRejected, "insufficient_balance"), 11: (MatcherRejected, "invalid_precision"),
        13: (MatcherRejected, "unknown_market"), 18: (MatcherRejected, "duplicate_client_order_id")}
    assert refused[18].code == "FAILED_PRECONDITION" and refused[11].code == "INVALID_ARGUMENT"
    assert not any(r.retried for r in refused.values())
    for i, order in enumerate(out):
        if i in refused:
            continue
        want = request(i)
        assert (order["user"], order["side"], Decimal(order["price"]), Decimal(order["amount"]), order["status"]) == (
            want.user, want.side, Decimal(want.price), Decimal(want.amount), "open"), i
        assert order["client_order_id"] == (want.client_order_id if want.HasField("client_order_id") else None)
    open_ids = {o["id"] for u in users for o in matcher.client.open_orders(u)}
    assert open_ids == {o["id"] for i, o in enumerate(out) if i not in refused}


class LosesReplies:
    """The matcher's stub, but the first ``lose`` PlaceBatch calls are applied and their replies lost
    (UNAVAILABLE after the commit), as when the connection drops while the matcher answers."""

    def __init__(self, stub: Any, lose: int) -> None:
        self.stub, self.lose, self.seen = stub, lose, []

    async def PlaceBatch(self, request: Any, timeout: float) -> Any:
        self.seen.append([one.limit.client_order_id or None for one in request.orders])
        reply = await self.stub.PlaceBatch(request, timeout=timeout)
        if self.lose:
            self.lose -= 1
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       details="connection lost")
        return reply


def test_a_lost_batch_reply_is_retried_only_for_orders_with_a_client_order_id(matcher, funded, alice):
    """The retry meets duplicate_client_order_id (flagged ``retried``): the order was committed, and the
    fast path answers with it from the database; an order without an id gets the 503, never a second copy."""
    from cryptgo.fastpath import _place
    from trading.api.views import order_out
    from trading.models import Order
    from trading.services import engine_dict

    async def run() -> tuple[list[Any], list[Any], list[Any]]:
        client = AsyncMatcherClient(matcher.addr, retry_backoff=0.01)
        client._stub = lossy = LosesReplies(client._stub, lose=1)
        try:
            requests_ = [limit_request(alice.pk, "ETH_USDT", "buy", "1800", "0.5", client_order_id="ob-lost"),
                         limit_request(alice.pk, "ETH_USDT", "buy", "1800", "0.25")]
            out = await asyncio.gather(*(client.place(r) for r in requests_), return_exceptions=True)
            from matcher import client as module

            module._async_clients[asyncio.get_running_loop()] = client  # the fast path's client on this loop
            lossy.lose = 1
            again = limit_request(alice.pk, "ETH_USDT", "buy", "1800", "0.75", client_order_id="ob-lost-2")
            answered = [await _place(again, alice)]
        finally:
            await client.close()
        return out, lossy.seen, answered

    out, seen, answered = asyncio.run(run())
    assert isinstance(out[0], MatcherRejected) and out[0].reason == "duplicate_client_order_id" and out[0].retried
    assert isinstance(out[1], MatcherUnavailable) and out[1].code == "UNAVAILABLE"
    assert seen[:2] == [["ob-lost", None], ["ob-lost"]]  # the retry carried only the order with an id
    assert Order.objects.filter(user=alice, client_order_id="ob-lost").count() == 1
    assert Order.objects.filter(user=alice, amount=Decimal("0.25")).count() == 1  # applied, answered 503
    placed = Order.objects.get(user=alice, client_order_id="ob-lost-2")
    assert answered[0] == engine_dict(placed)  # the committed order, read from the database
    assert order_out(answered[0])["amount"] == "0.75" and answered[0]["status"] == "open"


def test_live_server_answers_each_concurrent_placement(matcher, funded, tmp_path, as_user):
    """uvicorn as production runs it: concurrent placements of several users, with refusals and a
    duplicate among them, each answered as the DRF view answers it alone."""
    from rest_framework_simplejwt.tokens import RefreshToken

    from tests.api.live import LiveApi
    from trading.models import Order

    tokens = {u.pk: str(RefreshToken.for_user(u).access_token) for u in funded}
    order = {"market": "ETH_USDT", "side": "buy", "type": "limit", "price": "1500", "amount": "0.5"}
    jobs: list[tuple[Any, dict[str, Any]]] = []
    for i in range(60):
        user = funded[i % 3]
        body = {**order, "client_order_id": f"lv-{user.pk}-{i}", "amount": f"0.{i % 9 + 1}"}
        if i % 10 == 4:
            body = {**order, "amount": "1000"}  # insufficient_balance
        elif i % 10 == 6:
            body = {**order, "price": "1500.001"}  # invalid_precision
        jobs.append((user, body))
    jobs.append((funded[0], {**order, "client_order_id": "lv-dup"}))
    jobs.append((funded[0], {**order, "client_order_id": "lv-dup"}))

    server = LiveApi(tmp_path, matcher.addr, workers=1).start()
    try:
        def post(job: tuple[Any, dict[str, Any]]) -> requests.Response:
            user, body = job
            return requests.post(f"{server.url}/api/v1/orders", json=body, timeout=30,
                                 headers={"Authorization": f"Bearer {tokens[user.pk]}"})

        with ThreadPoolExecutor(max_workers=24) as pool:
            answers = list(pool.map(post, jobs))
        dup = sorted((r.status_code, r.json().get("code")) for r in answers[-2:])
        assert dup == [(201, None), (409, "duplicate_client_order_id")], server.log_tail()
        for (user, body), r in zip(jobs[:-2], answers[:-2], strict=True):
            assert r.headers["Content-Type"] == "application/json"
            if "client_order_id" not in body:
                want = as_user(user).post("/api/v1/orders", body, format="json")  # the view, alone
                assert (r.status_code, r.json()) == (want.status_code, want.json()), body
                assert r.status_code == 400
                continue
            assert r.status_code == 201, (body, r.text)
            placed = r.json()
            assert (placed["client_order_id"], placed["amount"], placed["status"]) == (
                body["client_order_id"], body["amount"], "open")
            assert Order.objects.get(pk=placed["id"]).user_id == user.pk
        # a repeated client_order_id afterwards: the 409, as the view answers it
        again = post((funded[0], {**order, "client_order_id": "lv-dup"}))
        want = as_user(funded[0]).post("/api/v1/orders", {**order, "client_order_id": "lv-dup"}, format="json")
        assert (again.status_code, again.json()) == (want.status_code, want.json())
        assert again.status_code == 409
    finally:
        server.stop()
    assert Order.objects.filter(client_order_id__startswith="lv-").count() == 48 + 1


def test_live_server_with_the_matcher_down_answers_503(matcher, alice, tmp_path):
    """Nothing listens at the matcher's address: every placement gets the documented 503, with or without
    a client_order_id (those are retried first, then given up)."""
    from rest_framework_simplejwt.tokens import RefreshToken

    from cryptgo.devservices import free_port
    from tests.api.live import LiveApi

    token = str(RefreshToken.for_user(alice).access_token)
    order = {"market": "ETH_USDT", "side": "buy", "type": "limit", "price": "1500", "amount": "0.5"}
    server = LiveApi(tmp_path, f"127.0.0.1:{free_port()}", workers=1, MATCHER_TIMEOUT_SECONDS="2").start()
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(
                lambda body: requests.post(f"{server.url}/api/v1/orders", json=body, timeout=60,
                                           headers={"Authorization": f"Bearer {token}"}),
                [order, {**order, "client_order_id": "down-1"}, order, {**order, "client_order_id": "down-2"}]))
    finally:
        server.stop()
    for r in answers:
        assert r.status_code == 503, r.text
        assert json.loads(r.content) == {
            "code": "matcher_unavailable",
            "message": "The matching engine is unavailable (UNAVAILABLE); the order may or may not have been "
                       "placed: check it by client_order_id.",
            "details": {}}
