"""The /api/v3/ subset without ccxt: Binance's error shape and codes, signatures, permissions, isolation."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

import pytest

from accounts import services as account_services
from tests.api import rows

pytestmark = pytest.mark.django_db


class Binance:
    def __init__(self, client, key: str = "", secret: str = "") -> None:
        self.client, self.key, self.secret = client, key, secret

    def signed(self, method: str, path: str, params: dict | None = None, ts: int | None = None,
               secret: str | None = None, in_body: bool = False):
        q = urlencode({**(params or {}), "timestamp": ts if ts is not None else int(time.time() * 1000)})
        sig = hmac.new((secret or self.secret).encode(), q.encode(), hashlib.sha256).hexdigest()
        q += f"&signature={sig}"
        headers = {"HTTP_X_MBX_APIKEY": self.key}
        if in_body:
            return self.client.generic(method, f"/api/v3/{path}", q, content_type="application/x-www-form-urlencoded",
                                       **headers)
        return self.client.generic(method, f"/api/v3/{path}?{q}", **headers)


def err(response, status: int, code: int) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "msg"} and body["code"] == code, body
    return body["msg"]


@pytest.fixture
def alice_key(client, alice, eth_usdt):
    created = account_services.api_key_create(user=alice, label="b", permissions=["read", "trade"], ip_allowlist=[],
                                              totp_code=None)
    return Binance(client, created.api_key.key, created.secret)


def test_public_general_endpoints(client, eth_usdt):
    assert client.get("/api/v3/ping").json() == {}
    assert abs(client.get("/api/v3/time").json()["serverTime"] - time.time() * 1000) < 60_000
    info = client.get("/api/v3/exchangeInfo").json()
    (sym,) = info["symbols"]
    assert (sym["symbol"], sym["baseAsset"], sym["quoteAsset"], sym["status"]) == ("ETHUSDT", "ETH", "USDT", "TRADING")
    filters = {f["filterType"]: f for f in sym["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert (filters["LOT_SIZE"]["stepSize"], filters["LOT_SIZE"]["minQty"]) == ("0.00010000", "0.00100000")
    assert filters["NOTIONAL"]["minNotional"] == "1.00000000"
    err(client.get("/api/v3/exchangeInfo", {"symbol": "DOGEUSDT"}), 400, -1121)


def test_public_market_data_from_deals(client, alice, bob, eth_usdt):
    maker = rows.order(1, alice, eth_usdt, side="sell", status="filled", amount="1", filled="1")
    taker = rows.order(2, bob, eth_usdt, side="buy", status="filled", amount="1", filled="1")
    rows.deal(1, eth_usdt, maker, taker, "2000", "1")
    trades = client.get("/api/v3/trades", {"symbol": "ETHUSDT"}).json()
    assert trades == [{"id": 1, "price": "2000", "qty": "1", "quoteQty": "2000", "time": trades[0]["time"],
                       "isBuyerMaker": False, "isBestMatch": True}]
    (k,) = client.get("/api/v3/klines", {"symbol": "ETHUSDT", "interval": "1h"}).json()
    assert k[1:6] == ["2000", "2000", "2000", "2000", "1"] and k[8] == 1
    assert client.get("/api/v3/ticker/price", {"symbol": "ETHUSDT"}).json() == {"symbol": "ETHUSDT",
                                                                                 "price": "2000.00000000"}
    err(client.get("/api/v3/klines", {"symbol": "ETHUSDT", "interval": "7m"}), 400, -1120)
    err(client.get("/api/v3/klines", {"symbol": "ETHUSDT"}), 400, -1102)
    err(client.get("/api/v3/trades"), 400, -1102)
    err(client.get("/api/v3/trades", {"symbol": "ETHUSDT", "limit": "x"}), 400, -1102)
    err(client.get("/api/v3/klines", {"symbol": "ETHUSDT", "interval": "1m", "startTime": "9" * 18}), 400, -1102)


def test_signed_endpoint_errors(client, alice_key):
    err(client.get("/api/v3/account"), 401, -2014)
    err(alice_key.signed("GET", "account", secret="wrong"), 400, -1022)
    err(alice_key.signed("GET", "account", ts=int(time.time() * 1000) - 120_000), 400, -1021)
    err(alice_key.signed("GET", "account", {"recvWindow": 70000}), 400, -1131)
    err(Binance(client, "f" * 64, "x").signed("GET", "account"), 401, -2015)
    r = client.get("/api/v3/account", {"timestamp": int(time.time() * 1000)}, HTTP_X_MBX_APIKEY=alice_key.key)
    err(r, 400, -1102)


def test_account_balances(alice_key, alice, eth_usdt):
    rows.balance(alice, eth_usdt.quote, "1500.5", "250")
    account = alice_key.signed("GET", "account").json()
    assert {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]} == {
        "ETH": ("0.00000000", "0.00000000"), "USDT": ("1500.50000000", "250.00000000")}
    assert account["canTrade"] is True and account["canWithdraw"] is False


def test_read_only_key_cannot_trade(client, alice, eth_usdt):
    created = account_services.api_key_create(user=alice, label="ro", permissions=["read"], ip_allowlist=[],
                                              totp_code=None)
    ro = Binance(client, created.api_key.key, created.secret)
    assert ro.signed("GET", "openOrders").status_code == 200
    err(ro.signed("POST", "order", {"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                    "quantity": "1", "price": "1"}, in_body=True), 401, -2015)
    err(ro.signed("DELETE", "openOrders", {"symbol": "ETHUSDT"}), 401, -2015)


@pytest.mark.parametrize("params,code", [
    ({"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "1"}, -1102),  # no symbol
    ({"symbol": "DOGEUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "1"},
     -1121),
    ({"symbol": "ETHUSDT", "side": "UP", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "1"},
     -1117),
    ({"symbol": "ETHUSDT", "side": "BUY", "type": "STOP_LOSS", "quantity": "1"}, -1116),
    ({"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "1"}, -1102),  # no tif
    ({"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTD", "quantity": "1", "price": "1"},
     -1115),
    ({"symbol": "ETHUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1e3", "price": "1"},
     -1100),
    ({"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}, -1102),  # market buy needs quote
])
def test_order_parameter_errors(alice_key, params, code):
    from trading.models import Order

    err(alice_key.signed("POST", "order", params, in_body=True), 400, code)
    assert Order.objects.count() == 0


def test_other_users_orders_and_trades_are_invisible(client, alice_key, bob, alice, eth_usdt):
    mine = rows.order(1, alice, eth_usdt, side="sell", status="open", coid="mine")
    theirs = rows.order(2, bob, eth_usdt, side="buy", status="open", coid="theirs")
    rows.deal(1, eth_usdt, mine, theirs, "2000", "0.1")
    assert [o["orderId"] for o in alice_key.signed("GET", "openOrders").json()] == [1]
    assert [o["orderId"] for o in alice_key.signed("GET", "allOrders", {"symbol": "ETHUSDT"}).json()] == [1]
    err(alice_key.signed("GET", "order", {"symbol": "ETHUSDT", "orderId": 2}), 400, -2013)
    err(alice_key.signed("GET", "order", {"symbol": "ETHUSDT", "origClientOrderId": "theirs"}), 400, -2013)
    err(alice_key.signed("DELETE", "order", {"symbol": "ETHUSDT", "orderId": 2}), 400, -2011)
    got = alice_key.signed("GET", "order", {"symbol": "ETHUSDT", "origClientOrderId": "mine"}).json()
    assert (got["orderId"], got["status"], got["side"], got["type"]) == (1, "NEW", "SELL", "LIMIT")
    trades = alice_key.signed("GET", "myTrades", {"symbol": "ETHUSDT"}).json()
    assert [(t["orderId"], t["isBuyer"], t["isMaker"], t["commission"], t["commissionAsset"]) for t in trades] == [
        (1, False, True, "0.10000000", "USDT")]
    assert alice_key.signed("GET", "myTrades", {"symbol": "ETHUSDT", "orderId": 2}).json() == []
