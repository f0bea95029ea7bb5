"""Rows in the matcher-owned tables, written directly as the persister would: for read-path tests only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from trading.models import Balance, BalanceHistory, Deal, Order

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def order(id: int, user: Any, market: Any, side: str = "buy", status: str = "open", price: str = "2000",
          amount: str = "1", filled: str = "0", coid: str | None = None, minutes: int = 0, **kw: Any) -> Order:
    at = T0 + timedelta(minutes=minutes)
    return Order.objects.create(id=id, user=user, market=market, side=side, type=kw.pop("type", "limit"),
                                price=Decimal(price), amount=Decimal(amount), filled_amount=Decimal(filled),
                                status=status, client_order_id=coid, created_at=at, updated_at=at,
                                fee_asset=market.base if side == "buy" else market.quote, **kw)


def deal(id: int, market: Any, maker: Order, taker: Order, price: str, amount: str, minutes: int = 0) -> Deal:
    p, a = Decimal(price), Decimal(amount)
    return Deal.objects.create(id=id, market=market, price=p, amount=a, quote_amount=p * a, maker_order=maker,
                               taker_order=taker, maker_user=maker.user, taker_user=taker.user,
                               maker_fee=Decimal("0.1"), taker_fee=Decimal("0.001"), taker_side=taker.side,
                               time=T0 + timedelta(minutes=minutes))


def balance(user: Any, asset: Any, available: str, frozen: str = "0") -> Balance:
    return Balance.objects.create(user=user, asset=asset, available=Decimal(available), frozen=Decimal(frozen),
                                  updated_at=T0)


def ledger(user: Any, asset: Any, business: str, business_id: str, change: str, total: str, seq: int) -> BalanceHistory:
    return BalanceHistory.objects.create(user=user, asset=asset, business=business, business_id=business_id,
                                         change=Decimal(change), balance=Decimal(total), seq=seq, time=T0)
