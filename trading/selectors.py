"""Trading reads from PostgreSQL (written by the matcher's persister before it answers a call,
so a client reads its own writes). Every function takes the user: another user's rows are unreachable."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import Q, QuerySet

from accounts.models import User
from markets.models import Asset, Market
from trading.models import Balance, BalanceHistory, Deal, Order, OrderStatus

OPEN_STATUSES = (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def balances_for(user: User) -> list[dict[str, Any]]:
    """Every listed asset with the user's available and frozen amounts (zero where none)."""
    rows = {b.asset_id: b for b in Balance.objects.filter(user=user)}
    out = []
    for asset in Asset.objects.order_by("symbol"):
        b = rows.get(asset.id)
        out.append({"asset": asset.symbol, "available": b.available if b else 0, "frozen": b.frozen if b else 0})
    return out


def _orders(user: User) -> QuerySet[Order]:
    return Order.objects.filter(user=user).select_related("market", "market__base", "market__quote", "fee_asset")


def order_get_for(user: User, order_id: int) -> Order | None:
    return _orders(user).filter(pk=order_id).first()


def order_by_client_id_for(user: User, client_order_id: str) -> Order | None:
    return _orders(user).filter(client_order_id=client_order_id).first()


def open_orders_for(user: User, market: Market | None = None) -> QuerySet[Order]:
    qs = _orders(user).filter(status__in=OPEN_STATUSES)
    return qs.filter(market=market) if market is not None else qs


def orders_for(user: User, *, market: Market | None = None, side: str | None = None, status: str | None = None,
               start: int | None = None, end: int | None = None, from_id: int | None = None) -> QuerySet[Order]:
    """Order history, newest first; filters by market, side, status and creation time (ms)."""
    qs = _orders(user)
    if market is not None:
        qs = qs.filter(market=market)
    if side:
        qs = qs.filter(side=side)
    if status:
        qs = qs.filter(status=status)
    if start is not None:
        qs = qs.filter(created_at__gte=_dt(start))
    if end is not None:
        qs = qs.filter(created_at__lte=_dt(end))
    if from_id is not None:
        qs = qs.filter(id__gte=from_id)
    return qs.order_by("-id")


def deals_for(user: User, *, market: Market | None = None, order_id: int | None = None, start: int | None = None,
              end: int | None = None, from_id: int | None = None) -> QuerySet[Deal]:
    """The user's deals (as maker or taker), newest first."""
    qs = Deal.objects.filter(Q(maker_user=user) | Q(taker_user=user)).select_related(
        "market", "market__base", "market__quote")
    if market is not None:
        qs = qs.filter(market=market)
    if order_id is not None:
        qs = qs.filter(Q(maker_order_id=order_id, maker_user=user) | Q(taker_order_id=order_id, taker_user=user))
    if start is not None:
        qs = qs.filter(time__gte=_dt(start))
    if end is not None:
        qs = qs.filter(time__lte=_dt(end))
    if from_id is not None:
        qs = qs.filter(id__gte=from_id)
    return qs.order_by("-id")


def deal_view(deal: Deal, user: User) -> dict[str, Any]:
    """A deal from one participant's side: their order, side, role, fee and fee asset."""
    m = deal.market
    is_taker = deal.taker_user_id == user.pk
    side = deal.taker_side if is_taker else ("sell" if deal.taker_side == "buy" else "buy")
    return {
        "id": deal.id, "market": m.name, "order_id": deal.taker_order_id if is_taker else deal.maker_order_id,
        "side": side, "role": "taker" if is_taker else "maker", "price": deal.price, "amount": deal.amount,
        "quote_amount": deal.quote_amount, "fee": deal.taker_fee if is_taker else deal.maker_fee,
        "fee_asset": (m.base if side == "buy" else m.quote).symbol, "time": int(deal.time.timestamp() * 1000),
    }


def ledger_for(user: User, *, asset: Asset | None = None, business: str | None = None, start: int | None = None,
               end: int | None = None) -> QuerySet[BalanceHistory]:
    qs = BalanceHistory.objects.filter(user=user).select_related("asset")
    if asset is not None:
        qs = qs.filter(asset=asset)
    if business:
        qs = qs.filter(business=business)
    if start is not None:
        qs = qs.filter(time__gte=_dt(start))
    if end is not None:
        qs = qs.filter(time__lte=_dt(end))
    return qs.order_by("-id")
