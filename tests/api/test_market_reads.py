"""Public market data from PostgreSQL: assets, markets, recent deals, tickers, klines, server time."""

from __future__ import annotations

import time

import pytest

from tests.api import rows
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def traded(alice, bob, eth_usdt):
    m = eth_usdt
    maker = rows.order(1, alice, m, side="sell", status="filled", price="2000", amount="3", filled="3")
    for i, (price, amount, minute) in enumerate([("2000", "1", 0), ("2010", "0.5", 0), ("1990", "1.5", 2)], start=1):
        taker = rows.order(10 + i, bob, m, side="buy", status="filled", price=price, amount=amount, filled=amount)
        rows.deal(i, m, maker, taker, price, amount, minutes=minute)
    return m


def test_assets_and_markets(api, eth_usdt):
    assets = api.get("/api/v1/assets").json()
    assert [a["symbol"] for a in assets] == ["ETH", "USDT"]
    assert assets[1]["decimals"] == 6 and assets[1]["withdrawal_fee"] == "0.001"
    markets = api.get("/api/v1/markets").json()
    assert markets == [{"name": "ETH_USDT", "base": "ETH", "quote": "USDT", "price_precision": 2,
                        "amount_precision": 4, "min_amount": "0.001", "min_notional": "1", "maker_fee": "0.001",
                        "taker_fee": "0.002", "status": "trading"}]
    assert api.get("/api/v1/markets/ETH_USDT").json() == markets[0]
    assert_error(api.get("/api/v1/markets/DOGE_USDT"), 404, "unknown_market")


def test_public_endpoints_ignore_bad_tokens(api, eth_usdt):
    assert api.get("/api/v1/markets", HTTP_AUTHORIZATION="Bearer nonsense").status_code == 200


def test_recent_deals_newest_first(api, traded):
    deals = api.get("/api/v1/markets/ETH_USDT/deals", {"limit": 2}).json()
    assert [(d["id"], d["price"], d["amount"], d["quote_amount"], d["taker_side"]) for d in deals] == [
        (3, "1990", "1.5", "2985", "buy"), (2, "2010", "0.5", "1005", "buy")]
    body = assert_error(api.get("/api/v1/markets/ETH_USDT/deals", {"limit": 0}), 400, "validation_error")
    assert body["details"]["limit"][0]["code"] == "min_value"


def test_ticker_over_24h(api, traded):
    t = api.get("/api/v1/markets/ETH_USDT/ticker").json()
    assert {k: t[k] for k in ("open", "high", "low", "last", "volume", "quote_volume", "change", "change_percent",
                              "count")} == {
        "open": "2000", "high": "2010", "low": "1990", "last": "1990", "volume": "3", "quote_volume": "5990",
        "change": "-10", "change_percent": "-0.5", "count": 3}
    all_tickers = api.get("/api/v1/tickers").json()
    assert [x["market"] for x in all_tickers] == ["ETH_USDT"]
    assert all_tickers[0]["last"] == "1990"


def test_ticker_of_market_without_deals(api, eth_usdt):
    t = api.get("/api/v1/markets/ETH_USDT/ticker").json()
    assert (t["last"], t["volume"], t["count"]) == ("0", "0", 0)


def test_klines(api, traded):
    ks = api.get("/api/v1/markets/ETH_USDT/klines", {"interval": "1m"}).json()
    assert [(k["open"], k["high"], k["low"], k["close"], k["volume"], k["quote_volume"], k["trades"]) for k in ks] \
        == [("2000", "2010", "2000", "2010", "1.5", "3005", 2), ("1990", "1990", "1990", "1990", "1.5", "2985", 1)]
    assert ks[1]["open_time"] - ks[0]["open_time"] == 120_000
    assert ks[0]["close_time"] == ks[0]["open_time"] + 59_999
    hourly = api.get("/api/v1/markets/ETH_USDT/klines", {"interval": "1h"}).json()
    assert sum(k["trades"] for k in hourly) == 3
    latest = api.get("/api/v1/markets/ETH_USDT/klines", {"interval": "1m", "limit": 1}).json()
    assert [k["open"] for k in latest] == ["1990"]
    first = api.get("/api/v1/markets/ETH_USDT/klines", {"interval": "1m", "limit": 1,
                                                         "start": ks[0]["open_time"]}).json()
    assert [k["open"] for k in first] == ["2000"]


@pytest.mark.parametrize("params,field,code", [
    ({}, "interval", "required"),
    ({"interval": "2m"}, "interval", "invalid_choice"),
    ({"interval": "1m", "limit": 5000}, "limit", "max_value"),
    ({"interval": "1m", "start": 10, "end": 5}, "end", "invalid"),
])
def test_klines_validation(api, eth_usdt, params, field, code):
    body = assert_error(api.get("/api/v1/markets/ETH_USDT/klines", params), 400, "validation_error")
    assert body["details"][field][0]["code"] == code


def test_server_time(api):
    before = int(time.time() * 1000)
    t = api.get("/api/v1/time").json()["server_time"]
    assert before <= t <= int(time.time() * 1000)
