"""The /api/v3/ endpoints: ping, time, exchangeInfo, depth, trades, klines, ticker/24hr, ticker/price,
account, order (POST/GET/DELETE), openOrders (GET/DELETE), allOrders, myTrades."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from rest_framework.parsers import FormParser, JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey
from binance import errors as E
from binance.auth import BinanceSignature
from cryptgo.api.throttling import ApiThrottle, IPThrottle
from markets import selectors as market_selectors
from markets.models import Market
from trading import selectors, services
from trading.models import Deal, Order
from trading.services import matcher_call

DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._:/-]{1,64}$")
KLINE_INTERVALS = market_selectors.KLINE_INTERVALS
STATUS = {"open": "NEW", "partially_filled": "PARTIALLY_FILLED", "filled": "FILLED", "cancelled": "CANCELED",
          "expired": "EXPIRED", "self_trade": "EXPIRED_IN_MATCH"}
STP = {"EXPIRE_MAKER": "cancel_resting", "EXPIRE_TAKER": "cancel_incoming", "EXPIRE_BOTH": "cancel_both",
       "NONE": None}
STP_OUT = {"cancel_resting": "EXPIRE_MAKER", "cancel_incoming": "EXPIRE_TAKER", "cancel_both": "EXPIRE_BOTH"}
MAX_PRICE = "1000000000"
MAX_MS = 253402300799999  # the largest time (ms) a datetime can hold; larger is a malformed parameter


def now_ms() -> int:
    return int(time.time() * 1000)


def fmt(value: Any, places: int = 8) -> str:
    """Binance prints fixed decimals ("0.01000000"); more places are kept, never rounded away."""
    if value is None:
        value = 0
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    text = format(d.normalize(), "f")
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    return f"{whole}.{frac.ljust(places, '0')}" if places or frac else whole


def unit(places: int) -> str:
    return fmt(Decimal(1).scaleb(-places), max(places, 8))


def symbol_of(market: Market) -> str:
    return f"{market.base.symbol}{market.quote.symbol}"


def market_for(symbol: str | None, required: bool = True,
               lookup: Callable[[str], Market | None] = market_selectors.market_by_symbol) -> Market | None:
    """The market of a Binance symbol (through ``lookup``: the ASGI fast path passes its cached answer)."""
    if not symbol:
        if required:
            raise E.mandatory("symbol")
        return None
    market = lookup(symbol)
    if market is None:
        raise E.BinanceError(E.INVALID_SYMBOL, "Invalid symbol.")
    return market


def params_of(request: Request) -> dict[str, str]:
    """Query string and form body merged; the query string wins, as on Binance."""
    data = request.data.dict() if hasattr(request.data, "dict") else {}
    return {**{k: str(v) for k, v in data.items()}, **request.query_params.dict()}


def int_param(p: dict[str, str], name: str, default: int | None = None, lo: int = 0,
              hi: int = 2**63 - 1) -> int | None:
    raw = p.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise E.mandatory(name)
    return int(raw)


def decimal_param(p: dict[str, str], name: str) -> str | None:
    raw = p.get(name)
    if raw is None or raw == "":
        return None
    if not DECIMAL_RE.fullmatch(raw):
        raise E.illegal(name)
    if Decimal(raw) <= 0:
        raise E.BinanceError(E.NEW_ORDER_REJECTED, f"Parameter '{name}' must be greater than zero.")
    return raw


class BinanceApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes = [IPThrottle]
    parser_classes = [FormParser, JSONParser]
    schema = None  # documented by Binance; not part of the native OpenAPI schema

    def get_exception_handler(self):
        return E.exception_handler


class _KeyCan(BasePermission):
    needed = "read"

    def has_permission(self, request: Any, view: Any) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey) or not getattr(key, f"can_{self.needed}"):
            raise E.BinanceError(E.REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.", 401)
        return True


class KeyCanRead(_KeyCan):
    needed = "read"


class KeyCanTrade(_KeyCan):
    needed = "trade"


class SignedApi(BinanceApi):
    authentication_classes = [BinanceSignature]
    throttle_classes = [ApiThrottle]

    def get_permissions(self) -> list[Any]:
        if self.request is not None and self.request.method == "GET":
            return [KeyCanRead()]
        return [KeyCanTrade()]


# ------------------------------------------------------------------ general and market data


class PingApi(BinanceApi):
    def get(self, request: Request) -> Response:
        return Response({})


class TimeApi(BinanceApi):
    def get(self, request: Request) -> Response:
        return Response({"serverTime": now_ms()})


def _symbol_info(m: Market) -> dict[str, Any]:
    base_prec = min(m.base.decimals, 8) if m.base.decimals else 0
    return {
        "symbol": symbol_of(m),
        "status": "TRADING" if m.status == "trading" else "HALT",
        "baseAsset": m.base.symbol,
        "baseAssetPrecision": max(base_prec, m.amount_precision),
        "quoteAsset": m.quote.symbol,
        "quotePrecision": m.quote.decimals,
        "quoteAssetPrecision": m.quote.decimals,
        "baseCommissionPrecision": m.base.decimals,
        "quoteCommissionPrecision": m.quote.decimals,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "amendAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": unit(m.price_precision), "maxPrice": fmt(MAX_PRICE),
             "tickSize": unit(m.price_precision)},
            {"filterType": "LOT_SIZE", "minQty": fmt(m.min_amount), "maxQty": fmt(MAX_PRICE),
             "stepSize": unit(m.amount_precision)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": fmt(m.min_amount), "maxQty": fmt(MAX_PRICE),
             "stepSize": unit(m.amount_precision)},
            {"filterType": "NOTIONAL", "minNotional": fmt(m.min_notional), "applyMinToMarket": True,
             "maxNotional": fmt("9000000000"), "applyMaxToMarket": False, "avgPriceMins": 0},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


class ExchangeInfoApi(BinanceApi):
    def get(self, request: Request) -> Response:
        p = params_of(request)
        markets = list(market_selectors.markets())
        wanted = p.get("symbol")
        if wanted:
            market_for(wanted)
            markets = [m for m in markets if symbol_of(m) == wanted]
        return Response({
            "timezone": "UTC",
            "serverTime": now_ms(),
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [_symbol_info(m) for m in markets],
        })


def depth_limit(p: dict[str, str]) -> int:
    """The ``limit`` of a depth request (1-5000, default 100); the view and the ASGI fast path share it."""
    limit = int_param(p, "limit", 100, 1, 5000)
    assert limit is not None
    return limit


def depth_out(book: dict[str, Any]) -> dict[str, Any]:
    return {"lastUpdateId": book["seq"], "bids": book["bids"], "asks": book["asks"]}


class DepthApi(BinanceApi):
    def get(self, request: Request) -> Response:
        p = params_of(request)
        market = market_for(p.get("symbol"))
        assert market is not None
        return Response(depth_out(matcher_call(market_selectors.depth, market.name, depth_limit(p))))


def trades_out(p: dict[str, str], market: Market) -> list[dict[str, Any]]:
    """The answer of ``trades`` for a market (the view and the ASGI fast path share it)."""
    limit = int_param(p, "limit", 500, 1, 1000)
    deals = market_selectors.recent_deals(market, limit or 500)
    return [{"id": d["id"], "price": d["price"], "qty": d["amount"], "quoteQty": d["quote_amount"],
             "time": d["time"], "isBuyerMaker": d["taker_side"] == "sell", "isBestMatch": True}
            for d in reversed(deals)]


class TradesApi(BinanceApi):
    def get(self, request: Request) -> Response:
        p = params_of(request)
        market = market_for(p.get("symbol"))
        assert market is not None
        return Response(trades_out(p, market))


class KlinesApi(BinanceApi):
    def get(self, request: Request) -> Response:
        p = params_of(request)
        market = market_for(p.get("symbol"))
        assert market is not None
        interval = p.get("interval")
        if not interval:
            raise E.mandatory("interval")
        if interval not in KLINE_INTERVALS:
            raise E.BinanceError(E.INVALID_INTERVAL, "Invalid interval.")
        start = int_param(p, "startTime", hi=MAX_MS)
        end = int_param(p, "endTime", hi=MAX_MS)
        limit = int_param(p, "limit", 500, 1, 1000)
        rows = market_selectors.klines(market, interval, start, end, limit or 500)
        return Response([[k["open_time"], k["open"], k["high"], k["low"], k["close"], k["volume"],
                          k["close_time"], k["quote_volume"], k["trades"], "0", "0", "0"] for k in rows])


def _ticker24(market: Market) -> dict[str, Any]:
    t = market_selectors.ticker(market)
    book = matcher_call(market_selectors.depth, market.name, 1)
    bid = book["bids"][0] if book["bids"] else ["0", "0"]
    ask = book["asks"][0] if book["asks"] else ["0", "0"]
    volume = Decimal(t["volume"])
    wavg = Decimal(t["quote_volume"]) / volume if volume else Decimal(0)
    return {
        "symbol": symbol_of(market), "priceChange": fmt(t["change"]), "priceChangePercent": t["change_percent"],
        "weightedAvgPrice": fmt(wavg.quantize(Decimal(1).scaleb(-market.price_precision)) if volume else 0),
        "prevClosePrice": fmt(t["open"]), "lastPrice": fmt(t["last"]), "lastQty": fmt(0),
        "bidPrice": fmt(bid[0]), "bidQty": fmt(bid[1]), "askPrice": fmt(ask[0]), "askQty": fmt(ask[1]),
        "openPrice": fmt(t["open"]), "highPrice": fmt(t["high"]), "lowPrice": fmt(t["low"]),
        "volume": fmt(t["volume"]), "quoteVolume": fmt(t["quote_volume"]), "openTime": t["open_time"],
        "closeTime": t["close_time"], "firstId": t["first_id"] or -1, "lastId": t["last_id"] or -1,
        "count": t["count"],
    }


def _markets_param(p: dict[str, str]) -> list[Market] | None:
    """``symbol=ETHUSDT`` -> [market]; ``symbols=["ETHUSDT",...]`` -> markets; neither -> None (all)."""
    if p.get("symbol"):
        m = market_for(p["symbol"])
        return [m] if m is not None else []
    if p.get("symbols"):
        names = re.findall(r"[A-Z0-9]+", p["symbols"])
        return [m for m in (market_for(n) for n in names) if m is not None]
    return None


class Ticker24hrApi(BinanceApi):
    def get(self, request: Request) -> Response:
        p = params_of(request)
        chosen = _markets_param(p)
        if chosen is not None and "symbol" in p:
            return Response(_ticker24(chosen[0]))
        return Response([_ticker24(m) for m in (chosen or market_selectors.markets())])


class TickerPriceApi(BinanceApi):
    def get(self, request: Request) -> Response:
        p = params_of(request)
        chosen = _markets_param(p)
        out = []
        for m in chosen if chosen is not None else market_selectors.markets():
            last = Deal.objects.filter(market=m).order_by("-id").values_list("price", flat=True).first()
            out.append({"symbol": symbol_of(m), "price": fmt(last or 0)})
        return Response(out[0] if "symbol" in p else out)


# ------------------------------------------------------------------ account and orders (SIGNED)


def order_out(o: dict[str, Any], market: Market) -> dict[str, Any]:
    """A native order dict (``trading.api.serializers.order_from_*``) in Binance's shape."""
    is_market = o["type"] == "market"
    btype = "MARKET" if is_market else ("LIMIT_MAKER" if o["post_only"] else "LIMIT")
    working = o["status"] in ("open", "partially_filled")
    return {
        "symbol": symbol_of(market), "orderId": o["id"], "orderListId": -1,
        "clientOrderId": o["client_order_id"] or "", "price": fmt(o["price"] or 0),
        "origQty": fmt(o["amount"] or 0), "executedQty": fmt(o["filled_amount"]),
        "cummulativeQuoteQty": fmt(o["filled_quote"]), "status": STATUS.get(o["status"], "EXPIRED"),
        "timeInForce": "IOC" if is_market else o["time_in_force"], "type": btype, "side": o["side"].upper(),
        "stopPrice": fmt(0), "icebergQty": fmt(0), "time": o["created_at"], "updateTime": o["updated_at"],
        "isWorking": working, "workingTime": o["created_at"], "origQuoteOrderQty": fmt(o["quote_amount"] or 0),
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def _fills(user: Any, order_id: int) -> list[dict[str, Any]]:
    deals = Deal.objects.filter(taker_order_id=order_id, taker_user=user).select_related(
        "market__base", "market__quote").order_by("id")
    out = []
    for d in deals:
        fee_asset = d.market.base if d.taker_side == "buy" else d.market.quote
        out.append({"price": fmt(d.price), "qty": fmt(d.amount), "commission": fmt(d.taker_fee),
                    "commissionAsset": fee_asset.symbol, "tradeId": d.id})
    return out


def _find_order(user: Any, market: Market, p: dict[str, str], missing: E.BinanceError) -> Order:
    order_id = int_param(p, "orderId", None, 1)
    coid = p.get("origClientOrderId")
    if order_id is None and not coid:
        raise E.BinanceError(E.MANDATORY_PARAM, "Param 'origClientOrderId' or 'orderId' must be sent, "
                                                "but both were empty/null!")
    order = selectors.order_get_for(user, order_id) if order_id is not None else \
        selectors.order_by_client_id_for(user, coid[:64] if coid else "")
    if order is None or order.market_id != market.id:
        raise missing
    return order


class AccountApi(SignedApi):
    def get(self, request: Request) -> Response:
        key: ApiKey = request.auth
        first = market_selectors.markets().first()
        maker = (first.maker_fee if first else Decimal(0))
        taker = (first.taker_fee if first else Decimal(0))
        balances = [{"asset": b["asset"], "free": fmt(b["available"]), "locked": fmt(b["frozen"])}
                    for b in selectors.balances_for(request.user)]
        return Response({
            "makerCommission": int(maker * 10000), "takerCommission": int(taker * 10000),
            "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": fmt(maker), "taker": fmt(taker), "buyer": fmt(0), "seller": fmt(0)},
            "canTrade": key.can_trade, "canWithdraw": key.can_withdraw, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": now_ms(),
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": request.user.pk,
        })


class OrderApi(SignedApi):
    def post(self, request: Request) -> Response:
        from trading.api.serializers import order_from_engine

        p = params_of(request)
        market = market_for(p.get("symbol"))
        assert market is not None
        side = p.get("side", "")
        if not side:
            raise E.mandatory("side")
        if side not in ("BUY", "SELL"):
            raise E.BinanceError(E.INVALID_SIDE, "Invalid side.")
        otype = p.get("type", "")
        if not otype:
            raise E.mandatory("type")
        if otype not in ("LIMIT", "LIMIT_MAKER", "MARKET"):
            raise E.BinanceError(E.INVALID_ORDER_TYPE, "Invalid orderType.")
        coid = p.get("newClientOrderId") or None
        if coid is not None and not CLIENT_ID_RE.fullmatch(coid):
            raise E.illegal("newClientOrderId")
        stp_raw = p.get("selfTradePreventionMode", "EXPIRE_MAKER")
        if stp_raw not in STP:
            raise E.mandatory("selfTradePreventionMode")
        resp_type = p.get("newOrderRespType", "FULL")
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise E.mandatory("newOrderRespType")
        quantity = decimal_param(p, "quantity")
        common = {"user": request.user, "market": market, "side": side.lower(), "client_order_id": coid,
                  "stp": STP[stp_raw]}
        if otype in ("LIMIT", "LIMIT_MAKER"):
            price = decimal_param(p, "price")
            if price is None:
                raise E.mandatory("price")
            if quantity is None:
                raise E.mandatory("quantity")
            tif = p.get("timeInForce") or ("GTC" if otype == "LIMIT_MAKER" else "")
            if not tif:
                raise E.mandatory("timeInForce")
            if tif not in ("GTC", "IOC", "FOK"):
                raise E.BinanceError(E.INVALID_TIF, "Invalid timeInForce.")
            placed = services.order_place(type="limit", price=price, amount=quantity, time_in_force=tif,
                                          post_only=otype == "LIMIT_MAKER", **common)
        else:
            quote = decimal_param(p, "quoteOrderQty")
            if side == "BUY":
                if quote is None:
                    # The engine buys by quote amount only; a base-quantity market buy cannot be
                    # expressed exactly, so it is refused rather than approximated.
                    raise E.BinanceError(E.MANDATORY_PARAM, "MARKET BUY orders need 'quoteOrderQty' here.")
                placed = services.order_place(type="market", quote_amount=quote, **common)
            else:
                if quantity is None:
                    raise E.mandatory("quantity")
                placed = services.order_place(type="market", amount=quantity, **common)
        o = order_from_engine(placed)
        out = order_out(o, market)
        transact = o["updated_at"]
        if resp_type == "ACK":
            return Response({"symbol": out["symbol"], "orderId": out["orderId"], "orderListId": -1,
                             "clientOrderId": out["clientOrderId"], "transactTime": transact})
        result = {k: out[k] for k in ("symbol", "orderId", "orderListId", "clientOrderId")}
        result["transactTime"] = transact
        result.update({k: out[k] for k in ("price", "origQty", "executedQty", "cummulativeQuoteQty", "status",
                                           "timeInForce", "type", "side", "workingTime", "origQuoteOrderQty",
                                           "selfTradePreventionMode")})
        if resp_type == "FULL":
            result["fills"] = _fills(request.user, o["id"])
        return Response(result)

    def get(self, request: Request) -> Response:
        from trading.api.serializers import order_from_model

        p = params_of(request)
        market = market_for(p.get("symbol"))
        assert market is not None
        order = _find_order(request.user, market, p, E.BinanceError(E.NO_SUCH_ORDER, "Order does not exist."))
        return Response(order_out(order_from_model(order), market))

    def delete(self, request: Request) -> Response:
        from trading.api.serializers import order_from_engine

        p = params_of(request)
        market = market_for(p.get("symbol"))
        assert market is not None
        order = _find_order(request.user, market, p, E.BinanceError(E.CANCEL_REJECTED, "Unknown order sent."))
        cancelled = services.order_cancel(user=request.user, order=order)
        out = order_out(order_from_engine(cancelled), market)
        out["origClientOrderId"] = out["clientOrderId"]
        out["transactTime"] = cancelled["updated_at"]
        return Response(out)


class OpenOrdersApi(SignedApi):
    def get(self, request: Request) -> Response:
        from trading.api.serializers import order_from_model

        p = params_of(request)
        market = market_for(p.get("symbol"), required=False)
        orders = selectors.open_orders_for(request.user, market).order_by("id")[:1000]
        return Response([order_out(order_from_model(o), o.market) for o in orders])

    def delete(self, request: Request) -> Response:
        from trading.api.serializers import order_from_engine

        p = params_of(request)
        market = market_for(p.get("symbol"))
        assert market is not None
        cancelled = services.order_cancel_all(user=request.user, market=market)
        out = []
        for c in cancelled:
            o = order_out(order_from_engine(c), market)
            o["origClientOrderId"] = o["clientOrderId"]
            out.append(o)
        return Response(out)


class AllOrdersApi(SignedApi):
    def get(self, request: Request) -> Response:
        from trading.api.serializers import order_from_model

        p = params_of(request)
        market = market_for(p.get("symbol"))
        assert market is not None
        limit = int_param(p, "limit", 500, 1, 1000) or 500
        from_id = int_param(p, "orderId", None, 1)
        qs = selectors.orders_for(request.user, market=market, start=int_param(p, "startTime", hi=MAX_MS),
                                  end=int_param(p, "endTime", hi=MAX_MS), from_id=from_id)
        rows = list(qs.order_by("id")[:limit]) if from_id is not None else list(qs[:limit])[::-1]
        return Response([order_out(order_from_model(o), market) for o in rows])


class MyTradesApi(SignedApi):
    def get(self, request: Request) -> Response:
        p = params_of(request)
        market = market_for(p.get("symbol"))
        assert market is not None
        limit = int_param(p, "limit", 500, 1, 1000) or 500
        from_id = int_param(p, "fromId", None, 0)
        order_id = int_param(p, "orderId", None, 1)
        qs = selectors.deals_for(request.user, market=market, order_id=order_id,
                                 start=int_param(p, "startTime", hi=MAX_MS), end=int_param(p, "endTime", hi=MAX_MS),
                                 from_id=from_id)
        rows = list(qs.order_by("id")[:limit]) if from_id is not None else list(qs[:limit])[::-1]
        user = request.user
        out = []
        for d in rows:
            v = selectors.deal_view(d, user)
            out.append({"symbol": symbol_of(market), "id": d.id, "orderId": v["order_id"], "orderListId": -1,
                        "price": fmt(d.price), "qty": fmt(d.amount), "quoteQty": fmt(d.quote_amount),
                        "commission": fmt(v["fee"]), "commissionAsset": v["fee_asset"], "time": v["time"],
                        "isBuyer": v["side"] == "buy", "isMaker": v["role"] == "maker", "isBestMatch": True})
        return Response(out)


