"""Placing and cancelling orders through the real matcher, and reading the results back.

Balances are funded through the matcher client (update_balance), never by
writing the Balance table. Each refusal is checked to change nothing.
"""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_error, jwt_client
from trading.models import BalanceHistory, Deal, Order

pytestmark = pytest.mark.slow


def fund(matcher, user, asset: str, amount: str, ref: str) -> None:
    matcher.client.update_balance(user.pk, asset, "deposit", f"{ref}-{user.pk}-{asset}", amount)


def balances(client) -> dict[str, tuple[str, str]]:
    return {b["asset"]: (b["available"], b["frozen"]) for b in client.get("/api/v1/balances").json()}


def state() -> tuple[int, int, int]:
    return Order.objects.count(), Deal.objects.count(), BalanceHistory.objects.count()


LIMIT_BUY = {"market": "ETH_USDT", "side": "buy", "type": "limit", "price": "2000", "amount": "0.5"}


def test_limit_order_lifecycle(matcher, alice, mallory):
    fund(matcher, alice, "USDT", "5000", "dep")
    client = jwt_client(alice)
    r = client.post("/api/v1/orders", {**LIMIT_BUY, "client_order_id": "my-1"}, format="json")
    assert r.status_code == 201, r.content
    placed = r.json()
    assert {k: placed[k] for k in ("market", "side", "type", "time_in_force", "price", "amount", "filled_amount",
                                   "status", "client_order_id", "fee_asset")} == {
        "market": "ETH_USDT", "side": "buy", "type": "limit", "time_in_force": "GTC", "price": "2000",
        "amount": "0.5", "filled_amount": "0", "status": "open", "client_order_id": "my-1", "fee_asset": "ETH"}
    # read-your-writes: the order is in PostgreSQL when the placement answers
    assert client.get(f"/api/v1/orders/{placed['id']}").json() == placed
    assert client.get("/api/v1/orders/by-client-id/my-1").json()["id"] == placed["id"]
    assert [o["id"] for o in client.get("/api/v1/orders/open").json()] == [placed["id"]]
    assert balances(client)["USDT"] == ("4000", "1000")

    # duplicate client_order_id: 409, nothing changes
    before = state()
    assert_error(client.post("/api/v1/orders", {**LIMIT_BUY, "client_order_id": "my-1"}, format="json"),
                 409, "duplicate_client_order_id")
    assert state() == before

    # mallory can neither see nor cancel it
    evil = jwt_client(mallory)
    assert_error(evil.delete(f"/api/v1/orders/{placed['id']}"), 404, "unknown_order")
    assert_error(evil.delete("/api/v1/orders/by-client-id/my-1"), 404, "unknown_order")
    assert evil.delete("/api/v1/orders").json() == {"cancelled": []}
    assert Order.objects.get(pk=placed["id"]).status == "open"

    r = client.delete(f"/api/v1/orders/{placed['id']}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert balances(client)["USDT"] == ("5000", "0")
    assert client.get(f"/api/v1/orders/{placed['id']}").json()["status"] == "cancelled"
    before = state()
    assert_error(client.delete(f"/api/v1/orders/{placed['id']}"), 409, "unknown_order")
    assert state() == before


def test_cancel_by_client_id_and_cancel_all(matcher, alice):
    fund(matcher, alice, "USDT", "5000", "dep")
    client = jwt_client(alice)
    ids = [client.post("/api/v1/orders", {**LIMIT_BUY, "price": str(1000 + i), "client_order_id": f"c{i}"},
                       format="json").json()["id"] for i in range(3)]
    slashed = client.post("/api/v1/orders", {**LIMIT_BUY, "price": "900", "client_order_id": "grid/7:a"},
                          format="json").json()
    assert client.get("/api/v1/orders/by-client-id/grid/7:a").json()["id"] == slashed["id"]
    assert client.delete("/api/v1/orders/by-client-id/grid/7:a").json()["status"] == "cancelled"
    r = client.delete("/api/v1/orders/by-client-id/c0")
    assert r.status_code == 200 and r.json()["id"] == ids[0] and r.json()["status"] == "cancelled"
    assert_error(client.delete("/api/v1/orders?market=NOPE"), 400, "validation_error")
    r = client.delete("/api/v1/orders?market=ETH_USDT")
    assert sorted(o["id"] for o in r.json()["cancelled"]) == ids[1:]
    assert client.get("/api/v1/orders/open").json() == []
    assert balances(client)["USDT"] == ("5000", "0")


@pytest.mark.parametrize("payload,field,code", [
    ({"market": "ETH_USDT", "side": "buy", "type": "limit", "amount": "1"}, "price", "required"),
    ({**LIMIT_BUY, "price": "2000.001"}, "price", "invalid_precision"),
    ({**LIMIT_BUY, "amount": "0.00001"}, "amount", "invalid_precision"),
    ({**LIMIT_BUY, "price": 2000}, "price", "invalid"),
    ({**LIMIT_BUY, "price": "1e3"}, "price", "invalid"),
    ({**LIMIT_BUY, "price": "NaN"}, "price", "invalid"),
    ({**LIMIT_BUY, "price": "-1"}, "price", "invalid"),
    ({**LIMIT_BUY, "amount": "0"}, "amount", "not_positive"),
    ({**LIMIT_BUY, "side": "long"}, "side", "invalid_choice"),
    ({**LIMIT_BUY, "market": "DOGE_USDT"}, "market", "unknown_market"),
    ({**LIMIT_BUY, "time_in_force": "IOC", "post_only": True}, "post_only", "not_allowed"),
    ({**LIMIT_BUY, "client_order_id": "has space"}, "client_order_id", "invalid"),
    ({"market": "ETH_USDT", "side": "buy", "type": "market", "amount": "1"}, "quote_amount", "required"),
    ({"market": "ETH_USDT", "side": "buy", "type": "market", "quote_amount": "10", "amount": "1"}, "amount",
     "not_allowed"),
    ({"market": "ETH_USDT", "side": "sell", "type": "market", "quote_amount": "10"}, "amount", "required"),
    ({"market": "ETH_USDT", "side": "sell", "type": "market", "amount": "1", "price": "1"}, "price", "not_allowed"),
])
def test_place_validation_errors_change_nothing(as_user, alice, eth_usdt, payload, field, code):
    before = state()
    body = assert_error(as_user(alice).post("/api/v1/orders", payload, format="json"), 400, "validation_error")
    assert code in [e["code"] for e in body["details"][field]], body
    assert state() == before


def test_matcher_refusals_map_to_codes_and_change_nothing(matcher, alice, bob):
    client = jwt_client(alice)
    before = state()
    assert_error(client.post("/api/v1/orders", LIMIT_BUY, format="json"), 400, "insufficient_balance")
    assert_error(client.post("/api/v1/orders", {**LIMIT_BUY, "amount": "0.0001"}, format="json"),
                 400, "below_min_amount")
    assert_error(client.post("/api/v1/orders", {**LIMIT_BUY, "price": "1", "amount": "0.5"}, format="json"),
                 400, "below_min_notional")
    assert_error(client.post("/api/v1/orders", {"market": "ETH_USDT", "side": "sell", "type": "market",
                                                "amount": "0.5"}, format="json"), 400, "insufficient_balance")
    fund(matcher, alice, "ETH", "1", "dep")
    assert_error(client.post("/api/v1/orders", {"market": "ETH_USDT", "side": "sell", "type": "market",
                                                "amount": "0.5"}, format="json"), 400, "no_liquidity")
    assert state()[0] == before[0] and state()[1] == before[1]
    # post-only that would take
    fund(matcher, bob, "USDT", "5000", "dep")
    jwt_client(bob).post("/api/v1/orders", LIMIT_BUY, format="json")
    orders = Order.objects.count()
    assert_error(client.post("/api/v1/orders", {"market": "ETH_USDT", "side": "sell", "type": "limit",
                                                "price": "1900", "amount": "0.5", "post_only": True}, format="json"),
                 400, "would_take")
    assert_error(client.post("/api/v1/orders", {"market": "ETH_USDT", "side": "sell", "type": "limit",
                                                "price": "2000", "amount": "1", "time_in_force": "FOK"},
                             format="json"), 400, "fok_unfillable")
    assert Order.objects.count() == orders
    assert balances(client)["ETH"] == ("1", "0")


def test_trade_then_deals_ledger_and_market_data(matcher, alice, bob):
    fund(matcher, alice, "ETH", "2", "dep")
    fund(matcher, bob, "USDT", "10000", "dep")
    a, b = jwt_client(alice), jwt_client(bob)
    sell = a.post("/api/v1/orders", {"market": "ETH_USDT", "side": "sell", "type": "limit", "price": "2000",
                                     "amount": "1.5"}, format="json").json()
    assert sell["status"] == "open"
    depth = b.get("/api/v1/markets/ETH_USDT/depth").json()
    assert depth["asks"] == [["2000", "1.5"]] and depth["bids"] == []
    assert depth["seq"] >= 1
    buy = b.post("/api/v1/orders", {"market": "ETH_USDT", "side": "buy", "type": "market", "quote_amount": "1000"},
                 format="json").json()
    assert (buy["status"], buy["filled_amount"], buy["filled_quote"], buy["fee"]) == ("filled", "0.5", "1000", "0.001")
    assert a.get(f"/api/v1/orders/{sell['id']}").json()["status"] == "partially_filled"
    # the fills from each side
    (mine,) = b.get("/api/v1/deals").json()["results"]
    assert (mine["order_id"], mine["side"], mine["role"], mine["amount"], mine["fee"], mine["fee_asset"]) == (
        buy["id"], "buy", "taker", "0.5", "0.001", "ETH")
    (theirs,) = a.get("/api/v1/deals").json()["results"]
    assert (theirs["order_id"], theirs["role"], theirs["fee"], theirs["fee_asset"]) == (sell["id"], "maker", "1",
                                                                                        "USDT")
    assert balances(b)["ETH"] == ("0.499", "0")
    assert balances(a)["USDT"] == ("999", "0")
    ledger = b.get("/api/v1/ledger", {"asset": "USDT"}).json()["results"]
    assert [(r["business"], r["change"]) for r in ledger] == [("trade", "-1000"), ("deposit", "10000")]
    # market sell into a resting bid
    b.post("/api/v1/orders", {**LIMIT_BUY, "price": "1990", "amount": "0.25"}, format="json")
    sold = a.post("/api/v1/orders", {"market": "ETH_USDT", "side": "sell", "type": "market", "amount": "0.25"},
                  format="json").json()
    assert (sold["status"], sold["filled_quote"]) == ("filled", "497.5")
    deals = b.get("/api/v1/markets/ETH_USDT/deals").json()
    assert [(d["price"], d["amount"], d["taker_side"]) for d in deals] == [("1990", "0.25", "sell"),
                                                                           ("2000", "0.5", "buy")]
    ticker = b.get("/api/v1/markets/ETH_USDT/ticker").json()
    assert (ticker["last"], ticker["volume"], ticker["count"]) == ("1990", "0.75", 2)
    merged = b.get("/api/v1/markets/ETH_USDT/depth", {"interval": "10", "limit": 5}).json()
    assert merged["asks"] == [["2000", "1"]]


def test_depth_validation(matcher, alice):
    client = jwt_client(alice)
    assert_error(client.get("/api/v1/markets/ETH_USDT/depth", {"limit": 0}), 400, "validation_error")
    assert_error(client.get("/api/v1/markets/ETH_USDT/depth", {"interval": "0.001"}), 400, "validation_error")
    assert_error(client.get("/api/v1/markets/NOPE/depth"), 404, "unknown_market")


def test_matcher_down_is_503(db, alice, eth_usdt, settings):
    from cryptgo.devservices import free_port
    from matcher.client import reset_client

    settings.MATCHER_GRPC_ADDR = f"127.0.0.1:{free_port()}"
    settings.MATCHER_TIMEOUT_SECONDS = 2
    reset_client()
    try:
        before = state()
        assert_error(jwt_client(alice).post("/api/v1/orders", LIMIT_BUY, format="json"), 503, "matcher_unavailable")
        assert state() == before
    finally:
        reset_client()
