"""Balances, order reads, my deals and the ledger: exact values, filters, pagination, and no leaks across users."""

from __future__ import annotations

import pytest

from tests.api import rows
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(alice, bob, eth_usdt):
    """alice: a resting sell partly filled by bob's buy; an old cancelled buy; bob: one open buy."""
    m = eth_usdt
    sell = rows.order(1, alice, m, side="sell", status="partially_filled", price="2000", amount="2", filled="0.5",
                      coid="a-sell", minutes=1)
    take = rows.order(2, bob, m, side="buy", status="filled", price="2000", amount="0.5", filled="0.5", minutes=2)
    rows.order(3, alice, m, side="buy", status="cancelled", price="1500", amount="1", minutes=3)
    rows.order(4, bob, m, side="buy", status="open", price="1900", amount="1", coid="b-buy", minutes=4)
    rows.deal(1, m, sell, take, "2000", "0.5", minutes=2)
    rows.balance(alice, m.base, "1.5", "1.5")
    rows.balance(alice, m.quote, "999.9")
    rows.balance(bob, m.quote, "100", "1900")
    rows.ledger(alice, m.base, "deposit", "0xab:0", "3.5", "3.5", 1)
    rows.ledger(alice, m.quote, "trade", "1", "999.9", "999.9", 5)
    rows.ledger(bob, m.quote, "deposit", "0xcd:0", "2000", "2000", 2)
    return m


def test_balances_lists_every_asset_with_exact_strings(as_user, alice, book):
    r = as_user(alice).get("/api/v1/balances")
    assert r.status_code == 200
    assert r.json() == [{"asset": "ETH", "available": "1.5", "frozen": "1.5"},
                        {"asset": "USDT", "available": "999.9", "frozen": "0"}]


def test_balances_of_user_without_rows_are_zero(as_user, mallory, book):
    assert as_user(mallory).get("/api/v1/balances").json() == [
        {"asset": "ETH", "available": "0", "frozen": "0"}, {"asset": "USDT", "available": "0", "frozen": "0"}]


def test_order_history_is_own_newest_first_with_filters(as_user, alice, book):
    client = as_user(alice)
    body = client.get("/api/v1/orders").json()
    assert [o["id"] for o in body["results"]] == [3, 1]
    first = body["results"][1]
    assert first == {"id": 1, "market": "ETH_USDT", "side": "sell", "type": "limit", "time_in_force": "GTC",
                     "post_only": False, "price": "2000", "amount": "2", "quote_amount": None,
                     "filled_amount": "0.5", "filled_quote": "0", "fee": "0", "fee_asset": "USDT",
                     "status": "partially_filled", "client_order_id": "a-sell",
                     "created_at": first["created_at"], "updated_at": first["updated_at"]}
    assert [o["id"] for o in client.get("/api/v1/orders", {"side": "sell"}).json()["results"]] == [1]
    assert [o["id"] for o in client.get("/api/v1/orders", {"status": "cancelled"}).json()["results"]] == [3]
    assert [o["id"] for o in client.get("/api/v1/orders", {"market": "ETH_USDT", "start": first["created_at"] + 1}
                                        ).json()["results"]] == [3]
    assert client.get("/api/v1/orders", {"end": first["created_at"] - 1}).json()["results"] == []


def test_order_history_cursor_pagination(as_user, alice, eth_usdt):
    for i in range(1, 8):
        rows.order(i, alice, eth_usdt, status="cancelled", minutes=i)
    client = as_user(alice)
    page = client.get("/api/v1/orders", {"limit": 3}).json()
    seen = [o["id"] for o in page["results"]]
    assert page["previous"] is None
    while page["next"]:
        page = client.get(page["next"]).json()
        seen += [o["id"] for o in page["results"]]
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    assert_error(client.get("/api/v1/orders", {"cursor": "garbage"}), 400, "invalid_cursor")


@pytest.mark.parametrize("params,field,code", [
    ({"market": "NOPE_USDT"}, "market", "unknown_market"),
    ({"side": "up"}, "side", "invalid_choice"),
    ({"status": "lost"}, "status", "invalid_choice"),
    ({"start": "yesterday"}, "start", "invalid"),
    ({"end": "-5"}, "end", "min_value"),
])
def test_order_history_filter_validation(as_user, alice, book, params, field, code):
    body = assert_error(as_user(alice).get("/api/v1/orders", params), 400, "validation_error")
    assert body["details"][field][0]["code"] == code


def test_open_orders_are_own_and_open(as_user, alice, bob, book):
    assert [o["id"] for o in as_user(alice).get("/api/v1/orders/open").json()] == [1]
    assert [o["id"] for o in as_user(bob).get("/api/v1/orders/open", {"market": "ETH_USDT"}).json()] == [4]
    assert_error(as_user(bob).get("/api/v1/orders/open", {"market": "X"}), 400, "validation_error")


def test_get_one_order_by_id_and_client_id(as_user, alice, book):
    client = as_user(alice)
    assert client.get("/api/v1/orders/1").json()["client_order_id"] == "a-sell"
    assert client.get("/api/v1/orders/by-client-id/a-sell").json()["id"] == 1


def test_another_users_order_is_not_found_for_read_or_cancel(as_user, mallory, alice, book):
    from trading.models import Order

    evil = as_user(mallory)
    for path in ("/api/v1/orders/1", "/api/v1/orders/4", "/api/v1/orders/by-client-id/a-sell",
                 "/api/v1/orders/by-client-id/b-buy", "/api/v1/orders/99999999999999999999"):
        assert_error(evil.get(path), 404, "unknown_order" if "9999" not in path else "not_found")
        assert_error(evil.delete(path), 404, "unknown_order" if "9999" not in path else "not_found")
    assert Order.objects.get(pk=1).status == "partially_filled"
    assert evil.get("/api/v1/orders").json()["results"] == []
    assert evil.get("/api/v1/orders/open").json() == []


def test_my_deals_show_my_side_role_and_fee(as_user, alice, bob, mallory, book):
    a = as_user(alice).get("/api/v1/deals").json()["results"]
    b = as_user(bob).get("/api/v1/deals", {"market": "ETH_USDT", "order_id": 2}).json()["results"]
    assert a == [{"id": 1, "market": "ETH_USDT", "order_id": 1, "side": "sell", "role": "maker", "price": "2000",
                  "amount": "0.5", "quote_amount": "1000", "fee": "0.1", "fee_asset": "USDT", "time": a[0]["time"]}]
    assert b == [{"id": 1, "market": "ETH_USDT", "order_id": 2, "side": "buy", "role": "taker", "price": "2000",
                  "amount": "0.5", "quote_amount": "1000", "fee": "0.001", "fee_asset": "ETH", "time": a[0]["time"]}]
    # bob cannot find alice's fills by naming her order
    assert as_user(bob).get("/api/v1/deals", {"order_id": 1}).json()["results"] == []
    assert as_user(mallory).get("/api/v1/deals").json()["results"] == []


def test_ledger_is_own_with_filters(as_user, alice, mallory, book):
    client = as_user(alice)
    body = client.get("/api/v1/ledger").json()["results"]
    assert [(r["asset"], r["business"], r["change"], r["balance"]) for r in body] == [
        ("USDT", "trade", "999.9", "999.9"), ("ETH", "deposit", "3.5", "3.5")]
    assert [r["business_id"] for r in client.get("/api/v1/ledger", {"asset": "ETH"}).json()["results"]] == ["0xab:0"]
    assert [r["asset"] for r in client.get("/api/v1/ledger", {"business": "trade"}).json()["results"]] == ["USDT"]
    assert_error(client.get("/api/v1/ledger", {"asset": "DOGE"}), 400, "validation_error")
    assert as_user(mallory).get("/api/v1/ledger").json()["results"] == []


@pytest.mark.parametrize("method,path", [
    ("get", "/api/v1/balances"), ("get", "/api/v1/orders"), ("post", "/api/v1/orders"),
    ("delete", "/api/v1/orders"), ("get", "/api/v1/orders/open"), ("get", "/api/v1/orders/1"),
    ("delete", "/api/v1/orders/1"), ("get", "/api/v1/orders/by-client-id/x"),
    ("delete", "/api/v1/orders/by-client-id/x"), ("get", "/api/v1/deals"), ("get", "/api/v1/ledger"),
])
def test_private_endpoints_need_authentication(api, method, path):
    assert_error(getattr(api, method)(path), 401, "not_authenticated")


def test_persisted_order_renders_like_the_matchers_answer(book):
    """A placement whose answer was lost is answered from the row (trading.services.engine_dict)."""
    from trading.api.serializers import OrderOut, order_from_engine, order_from_model, render_order
    from trading.models import Order
    from trading.services import engine_dict

    for order in Order.objects.select_related("market", "fee_asset"):
        expected = OrderOut(order_from_model(order)).data
        assert OrderOut(order_from_engine(engine_dict(order))).data == expected
        assert render_order(order_from_model(order)) == expected  # the views' fast renderer
        assert render_order(order_from_engine(engine_dict(order))) == expected
