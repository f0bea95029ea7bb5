"""Events the engine emits: order, deal and balance changes.

Events are NamedTuples holding integers and references to the (immutable
parts of) engine objects. The engine builds each as a plain tuple, its class
first (``RawEvent``); ``view`` makes the NamedTuple of one. At run time each
class is rebuilt without NamedTuple's Python ``__new__`` (``_c_constructed``),
so that a view is built from one tuple of its fields, in C. ``to_dict()``
turns one into the JSON-compatible form with decimal strings that the
persister, the outbox and Kafka consumers see. Every event carries ``seq``,
the engine-wide event sequence number (1, 2, 3, ... with no gaps).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

from matcher.engine.amounts import format_units
from matcher.engine.book import BUY, MARKET, Asset, Market, Order

# order event kinds and done reasons
NEW: Final = "new"
UPDATE: Final = "update"
DONE: Final = "done"
FILLED: Final = "filled"
CANCELLED: Final = "cancelled"
EXPIRED: Final = "expired"
SELF_TRADE: Final = "self_trade"

# balance event businesses the engine itself uses; update_balance may not use them
TRADE: Final = "trade"
FEE: Final = "fee"
FREEZE: Final = "freeze"
UNFREEZE: Final = "unfreeze"
RESERVED_BUSINESSES: Final = frozenset({TRADE, FEE, FREEZE, UNFREEZE})

#: an order dict's ``status`` (contract C) by the done reason (None: the order is still open)
ORDER_STATUS: dict[str | None, str] = {None: "open", FILLED: "filled", CANCELLED: "cancelled", EXPIRED: "expired",
                                       SELF_TRADE: "cancelled"}


def order_dict(
    order: Order, filled: int, filled_quote: int, fee: int, status: str, updated_at: int
) -> dict[str, Any]:
    """The full order state as JSON-compatible dict (what the orders table holds)."""
    m = order.market
    is_buy = order.side == BUY
    fee_asset = m.base if is_buy else m.quote
    is_market_buy = order.type == MARKET and is_buy
    return {
        "id": order.id,
        "user": order.user,
        "market": m.name,
        "side": order.side,
        "type": order.type,
        "tif": order.tif,
        "post_only": order.post_only,
        "stp": order.stp,
        "price": format_units(order.price, m.price_prec) if order.type != MARKET else None,
        "amount": None if is_market_buy else format_units(order.amount, m.amount_prec),
        "quote_amount": format_units(order.quote_amount, m.quote.prec) if is_market_buy else None,
        "filled_amount": format_units(filled, m.amount_prec),
        "filled_quote": format_units(filled_quote, m.quote.prec),
        "fee": format_units(fee, fee_asset.prec),
        "fee_asset": fee_asset.name,
        "status": status,
        "client_order_id": order.client_order_id,
        "created_at": order.created_at,
        "updated_at": updated_at,
    }


class OrderEvent(NamedTuple):
    """An order was accepted (``new``), traded while resting (``update``) or ended (``done``).

    ``filled``, ``filled_quote``, ``fee`` and ``time`` are the order's mutable
    state at the moment of the event; the rest is read from ``order``, whose
    other fields never change.
    """

    seq: int
    event: str
    reason: str | None  # for done: filled / cancelled / expired / self_trade
    order: Order
    filled: int
    filled_quote: int
    fee: int
    time: int

    @property
    def kind(self) -> str:
        return "order"

    @property
    def status(self) -> str:
        return ORDER_STATUS[self.reason]

    def order_dict(self) -> dict[str, Any]:
        return order_dict(self.order, self.filled, self.filled_quote, self.fee, self.status, self.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "order",
            "seq": self.seq,
            "event": self.event,
            "reason": self.reason,
            "time": self.time,
            "order": self.order_dict(),
        }


class DealEvent(NamedTuple):
    """One trade. ``price`` in price ticks, ``amount`` in amount ticks,
    ``quote_amount`` and the fees in minimal units of the asset each side receives."""

    seq: int
    id: int
    market: Market
    price: int
    amount: int
    quote_amount: int
    maker_order_id: int
    taker_order_id: int
    maker_user: int
    taker_user: int
    maker_fee: int
    taker_fee: int
    taker_side: str
    time: int

    @property
    def kind(self) -> str:
        return "deal"

    def to_dict(self) -> dict[str, Any]:
        m = self.market
        taker_buys = self.taker_side == BUY
        maker_fee_asset = m.quote if taker_buys else m.base
        taker_fee_asset = m.base if taker_buys else m.quote
        return {
            "kind": "deal",
            "seq": self.seq,
            "id": self.id,
            "market": m.name,
            "price": format_units(self.price, m.price_prec),
            "amount": format_units(self.amount, m.amount_prec),
            "quote_amount": format_units(self.quote_amount, m.quote.prec),
            "maker_order_id": self.maker_order_id,
            "taker_order_id": self.taker_order_id,
            "maker_user": self.maker_user,
            "taker_user": self.taker_user,
            "maker_fee": format_units(self.maker_fee, maker_fee_asset.prec),
            "maker_fee_asset": maker_fee_asset.name,
            "taker_fee": format_units(self.taker_fee, taker_fee_asset.prec),
            "taker_fee_asset": taker_fee_asset.name,
            "taker_side": self.taker_side,
            "time": self.time,
        }


class BalanceEvent(NamedTuple):
    """A change of a user's available and/or frozen balance of one asset.

    ``change`` is the change of the total (available + frozen); freezes and
    unfreezes have change 0. ``available`` and ``frozen`` are the values after.
    ``business_id`` is a deal id (``trade``; ``fee``, user 0: a deal's two fees are
    in different assets), an order id (``freeze``/``unfreeze``) or the caller's id.
    """

    seq: int
    user: int
    asset: Asset
    business: str
    business_id: int | str
    change: int
    available: int
    frozen: int
    time: int
    detail: dict[str, Any] | None

    @property
    def kind(self) -> str:
        return "balance"

    def to_dict(self) -> dict[str, Any]:
        prec = self.asset.prec
        return {
            "kind": "balance",
            "seq": self.seq,
            "user": self.user,
            "asset": self.asset.name,
            "business": self.business,
            "business_id": str(self.business_id),
            "change": format_units(self.change, prec),
            "available": format_units(self.available, prec),
            "frozen": format_units(self.frozen, prec),
            "time": self.time,
            "detail": self.detail,
        }


def _getnewargs(self: tuple[Any, ...]) -> tuple[tuple[Any, ...]]:
    return (tuple(self),)


def _c_constructed(cls: type[Any]) -> type[Any]:
    """The same class, rebuilt on ``tuple`` without ``NamedTuple``'s Python ``__new__``.

    ``NamedTuple`` gives a class a Python ``__new__(cls, seq, ...)``; calling it,
    or ``tuple.__new__(cls, values)``, costs several times a plain tuple, and
    ``view`` builds one for every event that replay_oplog, the server's rare
    paths and the tests read. A tuple subclass that never had a
    ``__new__`` of its own uses ``tuple``'s constructor in C, the cheapest way
    to make one: ``OrderEvent((seq, event, ...))``, one tuple of all the fields
    in order. Fields, methods, ``_make``, ``_replace``, ``_asdict``, repr and
    equality are those of the NamedTuple; copy and pickle go through
    ``__getnewargs__``. mypy sees the NamedTuple; ``view`` is the typed
    constructor.
    """
    ns = {k: v for k, v in cls.__dict__.items() if k not in ("__new__", "__dict__", "__weakref__")}
    ns["__getnewargs__"] = _getnewargs
    return type(cls.__name__, (tuple,), ns)


if not TYPE_CHECKING:
    OrderEvent = _c_constructed(OrderEvent)
    DealEvent = _c_constructed(DealEvent)
    BalanceEvent = _c_constructed(BalanceEvent)

#: An event as the engine emits it: a plain tuple of its class and then that class's fields in order,
#: ``(OrderEvent, seq, event, reason, order, filled, filled_quote, fee, time)``. Building a tuple
#: subclass costs ~3x a plain tuple, and the hot path builds ~5 events per command (a deal alone 8):
#: ``Result.raw`` and the matcher's persister and depth tracker use this form; ``Result.events``
#: and ``view`` give the NamedTuples.
RawEvent = tuple[Any, ...]

Event = OrderEvent | DealEvent | BalanceEvent


def view(raw: RawEvent) -> Event:
    """The NamedTuple of a raw event (its class built from the fields after the first)."""
    return cast(Event, raw[0](raw[1:]))
