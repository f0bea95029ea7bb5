"""Market data reads the same from Redis (the consumer's keys) as from PostgreSQL and the matcher.

Redis is filled by the market-data service's own rebuild (what ``run_marketdata --rebuild`` does)
from the deals the matcher committed, so this checks the two read paths agree on real data.
"""

from __future__ import annotations

import pytest

from markets import selectors
from markets.models import Market
from trading import services

pytestmark = pytest.mark.slow


def snapshot(api) -> dict:
    return {
        "deals": api.get("/api/v1/markets/ETH_USDT/deals", {"limit": 10}).json(),
        "ticker": {k: v for k, v in api.get("/api/v1/markets/ETH_USDT/ticker").json().items()
                   if k not in ("first_id", "last_id", "open_time", "close_time")},
        "klines_1m": api.get("/api/v1/markets/ETH_USDT/klines", {"interval": "1m"}).json(),
        "klines_1h": api.get("/api/v1/markets/ETH_USDT/klines", {"interval": "1h", "limit": 1}).json(),
        "depth": api.get("/api/v1/markets/ETH_USDT/depth", {"limit": 5}).json(),
        "depth_merged": api.get("/api/v1/markets/ETH_USDT/depth", {"limit": 5, "interval": "10"}).json(),
    }


def test_redis_and_database_sources_agree(matcher, alice, bob, api, settings):
    from markets import marketdata
    from markets.consumer import MarketData

    matcher.client.update_balance(alice.pk, "ETH", "deposit", "src-eth", "5")
    matcher.client.update_balance(bob.pk, "USDT", "deposit", "src-usdt", "50000")
    m = Market.objects.get(name="ETH_USDT")
    for price in ("2001.5", "2003", "2010"):
        services.order_place(user=alice, market=m, side="sell", type="limit", price=price, amount="1")
    services.order_place(user=bob, market=m, side="buy", type="market", quote_amount="3000")
    services.order_place(user=bob, market=m, side="buy", type="limit", price="1995.25", amount="0.5")

    settings.MARKET_DATA_SOURCE = "database"
    from_db = snapshot(api)
    assert from_db["ticker"]["count"] == 2 and len(from_db["deals"]) == 2
    assert from_db["depth"]["asks"][0] == ["2003", "0.5015"]

    MarketData(marketdata.redis_client()).rebuild(["ETH_USDT"], progress=False)
    settings.MARKET_DATA_SOURCE = "redis"
    selectors.forget_source()
    from_redis = snapshot(api)
    assert from_redis == from_db
