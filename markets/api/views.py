"""Public market data: assets, markets, depth, recent deals, tickers, klines, server time."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

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


def market_or_404(name: str, lookup: Callable[[str], Market | None] = selectors.market_get) -> Market:
    """The market named ``name`` (through ``lookup``: the ASGI fast path passes its cached answer) or a 404."""
    market = lookup(name)
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


def depth_args(market: Market, params: Any) -> tuple[int, str | None]:
    """(limit, interval) of a depth request's query (a QueryDict), validated; raises the API's 400s.

    The DRF view and the ASGI fast path (``cryptgo.fastpath``) both validate through here.
    """
    q = fast_depth_query(params)
    if q is None:
        ser = s.DepthQuery(data=params)
        ser.is_valid(raise_exception=True)
        q = dict(ser.validated_data)
    interval = q.get("interval")
    if interval is not None:
        frac = interval.partition(".")[2].rstrip("0")
        if len(frac) > market.price_precision or not any(ch != "0" for ch in interval.replace(".", "")):
            raise ApiError("validation_error", "Some fields are invalid.", details={"interval": [
                {"code": "invalid_precision", "message": "Must be a positive multiple of the price tick."}]})
    return q["limit"], interval


_SHORT_INT = re.compile(r"[0-9]{1,3}")
_INTERVAL = re.compile(s.DEPTH_INTERVAL)


def fast_depth_query(params: Any) -> dict[str, Any] | None:
    """What ``DepthQuery`` validates to, for the usual queries only (no other key, plain digits in range);
    None for anything else, which the serializer then decides (it costs ~0.1 ms per request)."""
    if len(params) > 2 or any(k not in ("limit", "interval") for k in params):
        return None
    q: dict[str, Any] = {"limit": s.DEPTH_LIMIT_DEFAULT}
    limit = params.get("limit")
    if limit is not None:
        if not _SHORT_INT.fullmatch(limit) or not 1 <= int(limit) <= s.DEPTH_LIMIT_MAX:
            return None
        q["limit"] = int(limit)
    interval = params.get("interval")
    if interval is not None:
        if not _INTERVAL.fullmatch(interval):
            return None
        q["interval"] = interval
    return q


def depth_out(market: Market, book: dict[str, Any]) -> dict[str, Any]:
    return {"market": market.name, "seq": book["seq"], "asks": book["asks"], "bids": book["bids"]}


class DepthApi(PublicApi):
    @extend_schema(tags=["market"], parameters=[s.DepthQuery], responses={200: s.DepthOut, **errors(400, 404, 503)},
                   auth=[], summary="Order book depth (optionally merged by a price interval)")
    def get(self, request: Request, name: str) -> Response:
        market = market_or_404(name)
        limit, interval = depth_args(market, request.query_params)
        return Response(depth_out(market, matcher_call(selectors.depth, market.name, limit, interval)))


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
