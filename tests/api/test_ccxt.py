"""An unmodified ccxt ``binance`` client, its API URLs pointed at our /api/v3/, against the real matcher."""

from __future__ import annotations

import ccxt
import pytest

from accounts import services as account_services

pytestmark = pytest.mark.slow


def binance_client(base_url: str, key: str, secret: str) -> ccxt.binance:
    ex = ccxt.binance({
        "apiKey": key,
        "secret": secret,
        "enableRateLimit": False,
        "timeout": 30_000,
        # spot only: no futures/options exchangeInfo, no sapi currencies or margin pairs
        "options": {"fetchMarkets": ["spot"], "fetchCurrencies": False, "fetchMargins": False},
    })
    api = base_url + "/api/v3"
    ex.urls["api"] = {"public": api, "private": api}
    return ex


def test_ccxt_binance_end_to_end(matcher, live_api, alice, bob):
    matcher.client.update_balance(alice.pk, "USDT", "deposit", "ccxt-a-usdt", "10000")
    matcher.client.update_balance(alice.pk, "ETH", "deposit", "ccxt-a-eth", "2")
    matcher.client.update_balance(bob.pk, "ETH", "deposit", "ccxt-b", "5")
    key = account_services.api_key_create(user=alice, label="ccxt", permissions=["read", "trade"], ip_allowlist=[],
                                          totp_code=None)
    ex = binance_client(live_api.url, key.api_key.key, key.secret)

    markets = ex.load_markets()
    m = markets["ETH/USDT"]
    assert (m["id"], m["base"], m["quote"], m["spot"], m["active"]) == ("ETHUSDT", "ETH", "USDT", True, True)
    assert (m["precision"]["price"], m["precision"]["amount"]) == (0.01, 0.0001)
    assert (m["limits"]["amount"]["min"], m["limits"]["cost"]["min"]) == (0.001, 1.0)

    # bob provides liquidity through the native API's service layer (a second account)
    from markets.models import Market
    from trading import services as trading_services

    eth_usdt = Market.objects.get(name="ETH_USDT")
    trading_services.order_place(user=bob, market=eth_usdt, side="sell", type="limit", price="2100", amount="1")

    book = ex.fetch_order_book("ETH/USDT")
    assert book["asks"][0][:2] == [2100.0, 1.0] and book["bids"] == []

    balance = ex.fetch_balance()
    assert (balance["USDT"]["free"], balance["ETH"]["free"]) == (10000.0, 2.0)

    limit = ex.create_order("ETH/USDT", "limit", "buy", 0.5, 2000)
    assert (limit["status"], limit["amount"], limit["price"], limit["filled"]) == ("open", 0.5, 2000.0, 0.0)
    assert limit["clientOrderId"]  # ccxt sends its own newClientOrderId
    open_orders = ex.fetch_open_orders("ETH/USDT")
    assert [o["id"] for o in open_orders] == [limit["id"]]
    fetched = ex.fetch_order(limit["id"], "ETH/USDT")
    assert (fetched["id"], fetched["status"], fetched["side"], fetched["type"]) == (limit["id"], "open", "buy",
                                                                                    "limit")
    cancelled = ex.cancel_order(limit["id"], "ETH/USDT")
    assert cancelled["status"] == "canceled"
    assert ex.fetch_open_orders("ETH/USDT") == []

    # market buy by cost (quoteOrderQty) and market sell by amount
    bought = ex.create_order("ETH/USDT", "market", "buy", None, params={"quoteOrderQty": "1050"})
    assert (bought["status"], bought["filled"], bought["cost"]) == ("closed", 0.5, 1050.0)
    assert bought["trades"] and bought["trades"][0]["price"] == 2100.0
    trading_services.order_place(user=bob, market=eth_usdt, side="buy", type="limit", price="2050", amount="0.2")
    sold = ex.create_order("ETH/USDT", "market", "sell", 0.2)
    assert (sold["status"], sold["filled"], sold["cost"]) == ("closed", 0.2, 410.0)

    trades = ex.fetch_my_trades("ETH/USDT")
    assert [(t["side"], t["price"], t["amount"], t["takerOrMaker"]) for t in trades] == [
        ("buy", 2100.0, 0.5, "taker"), ("sell", 2050.0, 0.2, "taker")]
    assert trades[0]["fee"]["currency"] == "ETH"
    assert [o["id"] for o in ex.fetch_orders("ETH/USDT")] == [limit["id"], bought["id"], sold["id"]]
    assert [o["status"] for o in ex.fetch_orders("ETH/USDT")] == ["canceled", "closed", "closed"]

    ticker = ex.fetch_ticker("ETH/USDT")
    assert (ticker["last"], ticker["baseVolume"], ticker["ask"]) == (2050.0, 0.7, 2100.0)
    candles = ex.fetch_ohlcv("ETH/USDT", "1m")
    assert sum(c[5] for c in candles) == pytest.approx(0.7)
    assert candles[-1][4] == 2050.0

    # cancel every open order of the symbol (DELETE openOrders)
    ids = {ex.create_order("ETH/USDT", "limit", "buy", 0.01, price)["id"] for price in (1500, 1600)}
    assert {o["id"] for o in ex.fetch_open_orders("ETH/USDT")} == ids
    assert {o["id"] for o in ex.cancel_all_orders("ETH/USDT")} == ids
    assert ex.fetch_open_orders("ETH/USDT") == []

    # errors arrive as ccxt's exception classes
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("ETH/USDT", "limit", "buy", 100, 2000)
    with pytest.raises(ccxt.OrderNotFound):
        ex.fetch_order("999999", "ETH/USDT")
    with pytest.raises(ccxt.AuthenticationError):
        binance_client(live_api.url, key.api_key.key, "wrong-secret").fetch_balance()
