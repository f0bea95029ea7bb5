"""Trading API: balances, orders (place, cancel, read), my deals, the ledger.

Reads come from PostgreSQL through user-scoped selectors; writes go through
``trading.services`` to the matcher. An order id or client_order_id of
another user is indistinguishable from one that does not exist (404).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from cryptgo.api.errors import NotFound
from cryptgo.api.schema import errors
from cryptgo.api.views import CURSOR_PARAMS, PrivateApi, db_id, page_schema, paginate, query
from markets import selectors as market_selectors
from markets.models import Market
from trading import selectors, services
from trading.api import serializers as s
from trading.models import Order

PRIVATE_READ = (400, 401, 403)


def _order_of(request: Request, order_id: int) -> Order:
    order = selectors.order_get_for(request.user, db_id(order_id))
    if order is None:
        raise NotFound("unknown_order", "No such order.")
    return order


def _order_by_client_id(request: Request, client_order_id: str) -> Order:
    order = selectors.order_by_client_id_for(request.user, client_order_id[:64])
    if order is None:
        raise NotFound("unknown_order", "No such order.")
    return order


def order_place_in(data: Any, market_lookup: Callable[[str], Market | None] | None = None) -> dict[str, Any]:
    """A placement's body validated by ``OrderPlaceIn`` (``market_lookup``: see ``MarketField``); raises the 400s.

    A plain valid body takes ``order_place_fast`` (same result, no serializer built); any other goes
    through the serializer, which gives the answer."""
    fast = s.order_place_fast(data, market_lookup or market_selectors.market_get)
    if fast is not None:
        return fast
    ser = s.OrderPlaceIn(data=data, context={"market_lookup": market_lookup} if market_lookup else {})
    ser.is_valid(raise_exception=True)
    return dict(ser.validated_data)


def order_fields(user: Any, d: dict[str, Any]) -> dict[str, Any]:
    """A validated placement as the keyword arguments of ``services.order_place`` and ``services.placement``."""
    return {"user": user, "market": d["market"], "side": d["side"], "type": d["type"], "price": d.get("price"),
            "amount": d.get("amount"), "quote_amount": d.get("quote_amount"), "time_in_force": d["time_in_force"],
            "post_only": d["post_only"], "client_order_id": d.get("client_order_id"), "stp": d.get("stp")}


def order_out(order: dict[str, Any]) -> dict[str, Any]:
    """The 201 body for the engine's order dict. The view and the ASGI fast path share it."""
    return s.render_order(s.order_from_engine(order))


def order_place(user: Any, d: dict[str, Any]) -> dict[str, Any]:
    """Place a validated order through the matcher; the 201 body."""
    return order_out(services.order_place(**order_fields(user, d)))


class BalancesApi(PrivateApi):
    @extend_schema(tags=["trading"], responses={200: s.BalanceOut(many=True), **errors(401, 403)},
                   summary="Your balances per asset (available and frozen)")
    def get(self, request: Request) -> Response:
        return Response(s.BalanceOut(selectors.balances_for(request.user), many=True).data)


class OrdersApi(PrivateApi):
    @extend_schema(tags=["trading"], parameters=[s.OrderHistoryQuery, *CURSOR_PARAMS],
                   responses={200: page_schema(s.OrderOut, "OrderPage"), **errors(*PRIVATE_READ)},
                   summary="Order history, newest first, with filters and cursor pagination",
                   operation_id="orders_list")
    def get(self, request: Request) -> Response:
        q = query(s.OrderHistoryQuery, request)
        qs = selectors.orders_for(request.user, market=q.get("market"), side=q.get("side"), status=q.get("status"),
                                  start=q.get("start"), end=q.get("end"))
        return paginate(self, request, qs, lambda o: s.render_order(s.order_from_model(o)))

    @extend_schema(tags=["trading"], request=s.OrderPlaceIn,
                   responses={201: s.OrderOut, **errors(400, 401, 403, 409, 503)},
                   summary="Place a limit or market order (answered after the matcher committed it)")
    def post(self, request: Request) -> Response:
        return Response(order_place(request.user, order_place_in(request.data)), status=status.HTTP_201_CREATED)

    @extend_schema(tags=["trading"], parameters=[s.MarketQuery],
                   responses={200: s.CancelAllOut, **errors(400, 401, 403, 503)},
                   summary="Cancel all your open orders (on one market if given)", operation_id="orders_cancel_all")
    def delete(self, request: Request) -> Response:
        q = query(s.MarketQuery, request)
        cancelled = services.order_cancel_all(user=request.user, market=q.get("market"))
        return Response({"cancelled": [s.render_order(s.order_from_engine(o)) for o in cancelled]})


class OpenOrdersApi(PrivateApi):
    @extend_schema(tags=["trading"], parameters=[s.MarketQuery],
                   responses={200: s.OrderOut(many=True), **errors(*PRIVATE_READ)},
                   summary="Your open orders, newest first")
    def get(self, request: Request) -> Response:
        q = query(s.MarketQuery, request)
        orders = selectors.open_orders_for(request.user, q.get("market")).order_by("-id")[:1000]
        return Response([s.render_order(s.order_from_model(o)) for o in orders])


class OrderDetailApi(PrivateApi):
    @extend_schema(tags=["trading"], responses={200: s.OrderOut, **errors(401, 403, 404)}, summary="One order")
    def get(self, request: Request, order_id: int) -> Response:
        return Response(s.render_order(s.order_from_model(_order_of(request, order_id))))

    @extend_schema(tags=["trading"], responses={200: s.OrderOut, **errors(401, 403, 404, 409, 503)},
                   summary="Cancel an order by id", operation_id="orders_cancel")
    def delete(self, request: Request, order_id: int) -> Response:
        cancelled = services.order_cancel(user=request.user, order=_order_of(request, order_id))
        return Response(s.render_order(s.order_from_engine(cancelled)))


class OrderByClientIdApi(PrivateApi):
    @extend_schema(tags=["trading"], responses={200: s.OrderOut, **errors(401, 403, 404)},
                   summary="One order by your client_order_id")
    def get(self, request: Request, client_order_id: str) -> Response:
        return Response(s.render_order(s.order_from_model(_order_by_client_id(request, client_order_id))))

    @extend_schema(tags=["trading"], responses={200: s.OrderOut, **errors(401, 403, 404, 409, 503)},
                   summary="Cancel an order by your client_order_id")
    def delete(self, request: Request, client_order_id: str) -> Response:
        cancelled = services.order_cancel(user=request.user, order=_order_by_client_id(request, client_order_id))
        return Response(s.render_order(s.order_from_engine(cancelled)))


class MyDealsApi(PrivateApi):
    @extend_schema(tags=["trading"], parameters=[s.DealQuery, *CURSOR_PARAMS],
                   responses={200: page_schema(s.MyDealOut, "MyDealPage"), **errors(*PRIVATE_READ)},
                   summary="Your deals (fills), newest first")
    def get(self, request: Request) -> Response:
        q = query(s.DealQuery, request)
        qs = selectors.deals_for(request.user, market=q.get("market"), order_id=q.get("order_id"),
                                 start=q.get("start"), end=q.get("end"))
        user = request.user
        return paginate(self, request, qs, lambda d: s.MyDealOut(selectors.deal_view(d, user)).data)


class LedgerApi(PrivateApi):
    @extend_schema(tags=["trading"], parameters=[s.LedgerQuery, *CURSOR_PARAMS],
                   responses={200: page_schema(s.LedgerOut, "LedgerPage"), **errors(*PRIVATE_READ)},
                   summary="Balance history: every change of your balances, newest first")
    def get(self, request: Request) -> Response:
        q = query(s.LedgerQuery, request)
        qs = selectors.ledger_for(request.user, asset=q.get("asset"), business=q.get("business"),
                                  start=q.get("start"), end=q.get("end"))
        return paginate(self, request, qs, lambda row: s.LedgerOut(row).data)
