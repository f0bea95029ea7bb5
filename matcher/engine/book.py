"""State objects: assets, markets, orders and the two sides of an order book.

An order book side keeps its price levels in a ``dict`` keyed by a sort key
(the price for asks, minus the price for bids) plus a ``SortedList`` of those
keys, so ``keys[0]`` is always the best level on either side. A level is a
doubly linked list threaded through the orders themselves (``prev``/``next``
slots): appending, removing any order and taking the head are O(1) and cost
no container entry per order, which keeps resting orders small.

Units: an order's ``price`` is in price ticks (10**-price_prec quote per base),
``amount`` and ``filled`` in amount ticks (10**-amount_prec base);
``filled_quote``, ``fee`` and ``quote_amount`` are in the minimal units of the
asset concerned. ``Market.base_mul``/``quote_mul`` convert ticks to minimal
units exactly (checked when the market is added).

``@mypyc_attr(serializable=True)``: where mypyc compiles this module (``native``),
its classes still pickle, and so do the events that hold them; interpreted it does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, Protocol

from mypy_extensions import mypyc_attr
from sortedcontainers import SortedList  # type: ignore[import-untyped]

BUY: Final = "buy"
SELL: Final = "sell"
LIMIT: Final = "limit"
MARKET: Final = "market"
GTC: Final = "GTC"
IOC: Final = "IOC"
FOK: Final = "FOK"
CANCEL_RESTING: Final = "cancel_resting"
CANCEL_INCOMING: Final = "cancel_incoming"
CANCEL_BOTH: Final = "cancel_both"

SIDES: Final = frozenset({BUY, SELL})
#: ``BookSide.best`` of an empty side: above every possible key.
EMPTY: Final = 10**60
TIFS: Final = frozenset({GTC, IOC, FOK})
STPS: Final = frozenset({CANCEL_RESTING, CANCEL_INCOMING, CANCEL_BOTH})


class SortedInts(Protocol):
    """The part of ``sortedcontainers.SortedList`` the engine uses."""

    def add(self, value: int) -> None: ...
    def remove(self, value: int) -> None: ...
    def __getitem__(self, index: int) -> int: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[int]: ...


def new_sorted_ints() -> SortedInts:
    result: SortedInts = SortedList()
    return result


@mypyc_attr(serializable=True)
class Asset:
    __slots__ = ("name", "prec")

    def __init__(self, name: str, prec: int) -> None:
        self.name = name
        self.prec = prec


@mypyc_attr(serializable=True)
class Order:
    prev: Order | None
    next: Order | None

    __slots__ = (
        "id",
        "user",
        "market",
        "side",
        "type",
        "tif",
        "post_only",
        "stp",
        "price",
        "amount",
        "quote_amount",
        "filled",
        "filled_quote",
        "fee",
        "client_order_id",
        "created_at",
        "updated_at",
        "prev",
        "next",
    )

    def __init__(
        self,
        id: int,
        user: int,
        market: Market,
        side: str,
        type: str,
        tif: str,
        post_only: bool,
        stp: str,
        price: int,
        amount: int,
        quote_amount: int,
        client_order_id: str | None,
        time: int,
    ) -> None:
        self.id = id
        self.user = user
        self.market = market
        self.side = side
        self.type = type
        self.tif = tif
        self.post_only = post_only
        self.stp = stp
        self.price = price  # price ticks; 0 for market orders
        self.amount = amount  # amount ticks; 0 for a market buy (by quote)
        self.quote_amount = quote_amount  # quote units asked by a market buy, else 0
        self.filled = 0
        self.filled_quote = 0
        self.fee = 0
        self.client_order_id = client_order_id
        self.created_at = time
        self.updated_at = time
        # prev/next are set by BookSide.append when (and only if) the order rests


@mypyc_attr(serializable=True)
class Level:
    __slots__ = ("price", "head", "tail", "total")

    def __init__(self, price: int) -> None:
        self.price = price
        self.head: Order | None = None
        self.tail: Order | None = None
        self.total = 0  # open amount ticks at this price


@mypyc_attr(serializable=True)
class BookSide:
    """One side of a book. ``best`` caches ``keys[0]`` (``EMPTY`` when there is
    none): the crossing check on every placement is then one attribute read."""

    __slots__ = ("is_ask", "keys", "levels", "best")

    def __init__(self, is_ask: bool) -> None:
        self.is_ask = is_ask
        self.keys = new_sorted_ints()
        self.levels: dict[int, Level] = {}
        self.best = EMPTY

    def append(self, order: Order, open_amount: int) -> None:
        """Put an order at the back of its price level."""
        price = order.price
        key = price if self.is_ask else -price
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = Level(price)
            self.keys.add(key)
            if key < self.best:
                self.best = key
        tail = level.tail
        order.prev = tail
        order.next = None
        if tail is None:
            level.head = order
        else:
            tail.next = order
        level.tail = order
        level.total += open_amount

    def drop_level(self, level: Level) -> None:
        """Forget a price level its last order has left."""
        key = level.price if self.is_ask else -level.price
        del self.levels[key]
        keys = self.keys
        keys.remove(key)
        if key == self.best:
            self.best = keys[0] if keys else EMPTY

    def orders(self) -> Iterator[Order]:
        """Every order on this side, best price first, time priority within a price."""
        for key in self.keys:
            order = self.levels[key].head
            while order is not None:
                yield order
                order = order.next


@mypyc_attr(serializable=True)
class Market:
    __slots__ = (
        "name",
        "base",
        "quote",
        "price_prec",
        "amount_prec",
        "base_mul",
        "quote_mul",
        "min_amount",
        "min_notional",
        "maker_fee",
        "taker_fee",
        "user_fees",
        "halted",
        "asks",
        "bids",
    )

    def __init__(
        self,
        name: str,
        base: Asset,
        quote: Asset,
        price_prec: int,
        amount_prec: int,
        min_amount: int,
        min_notional: int,
        maker_fee: int,
        taker_fee: int,
    ) -> None:
        self.name = name
        self.base = base
        self.quote = quote
        self.price_prec = price_prec
        self.amount_prec = amount_prec
        # amount ticks -> base minimal units
        self.base_mul = int(10 ** (base.prec - amount_prec))
        # price ticks * amount ticks -> quote minimal units
        self.quote_mul = int(10 ** (quote.prec - price_prec - amount_prec))
        self.min_amount = min_amount  # amount ticks
        self.min_notional = min_notional  # quote minimal units
        self.maker_fee = maker_fee  # numerator over FEE_DENOMINATOR
        self.taker_fee = taker_fee
        # per-user override: user -> (maker, taker)
        self.user_fees: dict[int, tuple[int, int]] = {}
        self.halted = False
        self.asks = BookSide(True)
        self.bids = BookSide(False)
