"""Public market data: assets, markets, depth, recent deals, tickers, klines, server time."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from cryptgo.api.errors import ApiError, NotFound
from cryptgo.api.schema import errors
from cryptgo.api.views import PublicApi, query
from markets import selectors
from markets.api import serializers as s
from markets.models import Market
from trading.services import matcher_call


def market_or_404(name: str) -> Market:
    market = selectors.market_get(name)
    if market is None:
        raise NotFound("unknown_market", "No such market.")
    return market


class AssetListApi(PublicApi):
    @extend_schema(tags=["market"], responses={200: s.AssetOut(many=True), **errors()}, auth=[],
                   summary="Listed assets")
    def get(self, request: Request) -> Response:
        return Response(s.AssetOut(selectors.assets(), many=True).data)


class MarketListApi(PublicApi):
    @extend_schema(tags=["market"], responses={200: s.MarketOut(many=True), **errors()}, auth=[],
                   summary="Markets: precisions, limits, fees, status")
    def get(self, request: Request) -> Response:
        return Response(s.MarketOut(selectors.markets(), many=True).data)


class MarketDetailApi(PublicApi):
    @extend_schema(tags=["market"], responses={200: s.MarketOut, **errors(404)}, auth=[], summary="One market")
    def get(self, request: Request, name: str) -> Response:
        return Response(s.MarketOut(market_or_404(name)).data)


class DepthApi(PublicApi):
    @extend_schema(tags=["market"], parameters=[s.DepthQuery], responses={200: s.DepthOut, **errors(400, 404, 503)},
                   auth=[], summary="Order book depth (optionally merged by a price interval)")
    def get(self, request: Request, name: str) -> Response:
        market = market_or_404(name)
        q = query(s.DepthQuery, request)
        interval = q.get("interval")
        if interval is not None:
            frac = interval.partition(".")[2].rstrip("0")
            if len(frac) > market.price_precision or not any(ch != "0" for ch in interval.replace(".", "")):
                raise ApiError("validation_error", "Some fields are invalid.", details={"interval": [
                    {"code": "invalid_precision", "message": "Must be a positive multiple of the price tick."}]})
        book = matcher_call(selectors.depth, market.name, q["limit"], interval)
        return Response({"market": market.name, "seq": book["seq"], "asks": book["asks"], "bids": book["bids"]})


class RecentDealsApi(PublicApi):
    @extend_schema(tags=["market"], parameters=[s.LimitQuery], responses={200: s.DealOut(many=True),
                   **errors(400, 404)}, auth=[], summary="Latest deals, newest first")
    def get(self, request: Request, name: str) -> Response:
        market = market_or_404(name)
        q = query(s.LimitQuery, request)
        return Response(selectors.recent_deals(market, q["limit"]))


class TickerApi(PublicApi):
    @extend_schema(tags=["market"], responses={200: s.TickerOut, **errors(404)}, auth=[],
                   summary="24-hour rolling ticker of one market")
    def get(self, request: Request, name: str) -> Response:
        return Response(selectors.ticker(market_or_404(name)))


class TickerListApi(PublicApi):
    @extend_schema(tags=["market"], responses={200: s.TickerOut(many=True), **errors()}, auth=[],
                   summary="24-hour rolling tickers of every market")
    def get(self, request: Request) -> Response:
        return Response(selectors.tickers())


class KlinesApi(PublicApi):
    @extend_schema(tags=["market"], parameters=[s.KlineQuery], responses={200: s.KlineOut(many=True),
                   **errors(400, 404)}, auth=[], summary="Candles (periods with deals), oldest first")
    def get(self, request: Request, name: str) -> Response:
        market = market_or_404(name)
        q = query(s.KlineQuery, request)
        return Response(selectors.klines(market, q["interval"], q.get("start"), q.get("end"), q["limit"]))


class TimeApi(PublicApi):
    @extend_schema(tags=["market"], responses={200: s.TimeOut, **errors()}, auth=[], summary="Server time")
    def get(self, request: Request) -> Response:
        return Response({"server_time": selectors.now_ms()})
