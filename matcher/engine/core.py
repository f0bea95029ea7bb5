"""The engine: balances, order books, matching, fees, events, snapshot.

One ``Engine`` owns every balance and open order. Commands come in through
``apply(method, params, time)`` (decimal strings, validated here) or the typed
``*_int`` methods (integers in ticks/minimal units, for the hot path); each
either is rejected with a reason code and changes nothing, or is applied and
returns the events it caused, in order. See the package docstring for units
and rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import FunctionType
from typing import Any, Final

from matcher.engine import reasons as R
from matcher.engine.amounts import (
    FEE_DENOMINATOR,
    AmountError,
    format_fee_rate,
    format_units,
    parse_fee_rate,
    parse_units,
)
from matcher.engine.book import (
    BUY,
    CANCEL_BOTH,
    CANCEL_INCOMING,
    CANCEL_RESTING,
    EMPTY,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    SELL,
    STPS,
    TIFS,
    Asset,
    BookSide,
    Market,
    Order,
)
from matcher.engine.events import (
    CANCELLED,
    DONE,
    EXPIRED,
    FEE,
    FILLED,
    FREEZE,
    NEW,
    ORDER_STATUS,
    RESERVED_BUSINESSES,
    SELF_TRADE,
    TRADE,
    UNFREEZE,
    UPDATE,
    BalanceEvent,
    DealEvent,
    Event,
    OrderEvent,
    RawEvent,
    order_dict,
    view,
)

#: The engine's fee account. Fees are credited to user 0.
FEE_USER: Final = 0
SNAPSHOT_VERSION: Final = 1
MAX_PREC: Final = 30
_ASSET_CHARS: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

# Events are the hot path's main allocation: each is a plain tuple with its class first (events.RawEvent)
_OE: Final = OrderEvent
_DE: Final = DealEvent
_BE: Final = BalanceEvent


class Result:
    """Outcome of one command. On rejection ``ok`` is False, ``reason`` is a
    code from ``reasons`` and there are no events: nothing changed.

    ``raw`` holds the events as the engine built them (``events.RawEvent``, what
    the matcher consumes); ``events`` gives them as NamedTuples."""

    __slots__ = ("ok", "reason", "value", "raw")

    def __init__(self, ok: bool, reason: str | None, value: Any, raw: Sequence[RawEvent]) -> None:
        self.ok = ok
        self.reason = reason
        self.value = value
        self.raw = raw

    @property
    def events(self) -> list[Event]:
        return [view(ev) for ev in self.raw]

    def __repr__(self) -> str:
        return f"Result(ok={self.ok}, reason={self.reason!r}, value={self.value!r}, events={len(self.raw)})"


class Reject(Exception):
    """Raised while validating ``apply`` parameters; becomes a rejected Result."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


def _reject(reason: str) -> Result:
    return Result(False, reason, None, [])


_onew = object.__new__


def _interpreted() -> bool:
    """Whether this module runs as bytecode: mypyc (``native``) compiles functions into built-in ones."""
    return isinstance(_interpreted, FunctionType)


#: Interpreted, building an ``Order`` or a ``Result`` with ``object.__new__`` and slot stores saves
#: ~5% of the engine's instructions over calling the class; compiled, mypyc refuses that on its
#: native classes and calls the class natively. Hot paths branch on this where it matters.
INTERPRETED: Final = _interpreted()


def _ok(value: Any, events: Sequence[RawEvent]) -> Result:
    """An accepted command's Result, interpreted without going through ``Result.__init__``
    (one Python call instead of two: every command of the hot path ends here)."""
    if INTERPRETED:
        r = _onew(Result)
        r.ok = True
        r.reason = None
        r.value = value
        r.raw = events
        return r
    return Result(True, None, value, events)


class Engine:
    __slots__ = (
        "assets",
        "markets",
        "event_seq",
        "next_order_id",
        "next_deal_id",
        "_bal",
        "_orders",
        "is_open",
        "_user_orders",
        "_coid_used",
        "_coid_open",
        "_updates",
    )

    def __init__(self) -> None:
        self.assets: dict[str, Asset] = {}
        self.markets: dict[str, Market] = {}
        self.event_seq = 0
        self.next_order_id = 1
        self.next_deal_id = 1
        # user -> asset name -> [available, frozen] in minimal units
        self._bal: dict[int, dict[str, list[int]]] = {}
        # open orders only: finished orders live in the database, not here
        self._orders: dict[int, Order] = {}
        #: ``is_open(order_id) -> bool``: whether that order is open. The dict's own
        #: ``__contains__`` (a C call, where a method would add a Python frame to
        #: every check); ``_orders`` is never rebound.
        self.is_open: Callable[[int], bool] = self._orders.__contains__
        # user -> their open orders by id; a user's dict stays when it empties (dropping and making
        # it again for users who place and cancel all day cost ~0.6% of the engine's instructions)
        self._user_orders: dict[int, dict[int, Order]] = {}
        # every client_order_id a user ever used (unique per user, like the DB)
        self._coid_used: dict[int, set[str]] = {}
        self._coid_open: dict[tuple[int, str], Order] = {}
        # (business, business_id) of every accepted update_balance
        self._updates: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ apply

    def apply(self, method: str, params: dict[str, Any], time: int) -> Result:
        """Validate a JSON-style command (amounts as decimal strings) and run it."""
        handler = _HANDLERS.get(method) if isinstance(method, str) else None
        if handler is None:
            return _reject(R.UNKNOWN_METHOD)
        if not isinstance(params, dict) or type(time) is not int or time < 0:
            return _reject(R.INVALID_ARGUMENT)
        try:
            return handler(self, params, time)
        except (Reject, AmountError) as exc:
            return _reject(exc.reason)

    # ------------------------------------------------------------ admin

    def add_asset(self, name: str, prec: int) -> Result:
        if not name or not set(name) <= _ASSET_CHARS or len(name) > 16:
            return _reject(R.INVALID_ARGUMENT)
        if type(prec) is not int or not 0 <= prec <= MAX_PREC:
            return _reject(R.INVALID_ARGUMENT)
        if name in self.assets:
            return _reject(R.DUPLICATE_ASSET)
        self.assets[name] = Asset(name, prec)
        return Result(True, None, {"name": name, "prec": prec}, [])

    def add_market_int(
        self,
        name: str,
        base: str,
        quote: str,
        price_prec: int,
        amount_prec: int,
        min_amount: int,
        min_notional: int,
        maker_fee: int,
        taker_fee: int,
    ) -> Result:
        """Add a market. ``min_amount`` in amount ticks, ``min_notional`` in quote
        minimal units, fees as numerators over ``FEE_DENOMINATOR``."""
        if name in self.markets:
            return _reject(R.DUPLICATE_MARKET)
        b = self.assets.get(base)
        q = self.assets.get(quote)
        if b is None or q is None:
            return _reject(R.UNKNOWN_ASSET)
        if b is q or name != f"{base}_{quote}":
            return _reject(R.INVALID_ARGUMENT)
        for v in (price_prec, amount_prec, min_amount, min_notional, maker_fee, taker_fee):
            if type(v) is not int or v < 0:
                return _reject(R.INVALID_ARGUMENT)
        # Exactness: every amount tick is a whole number of base units and every
        # price tick * amount tick a whole number of quote units.
        if b.prec < amount_prec or q.prec < price_prec + amount_prec:
            return _reject(R.INVALID_PRECISION)
        if maker_fee >= FEE_DENOMINATOR or taker_fee >= FEE_DENOMINATOR:
            return _reject(R.INVALID_AMOUNT)
        m = Market(name, b, q, price_prec, amount_prec, max(min_amount, 1), min_notional, maker_fee, taker_fee)
        self.markets[name] = m
        # the fee account's rows exist from the start: the matching loop indexes them directly
        self._account(FEE_USER, base)
        self._account(FEE_USER, quote)
        return Result(True, None, self._market_dict(m), [])

    def set_market_halted(self, market: str, halted: bool) -> Result:
        m = self.markets.get(market)
        if m is None:
            return _reject(R.UNKNOWN_MARKET)
        m.halted = halted
        return Result(True, None, self._market_dict(m), [])

    def set_fees_int(
        self, market: str, maker_fee: int | None, taker_fee: int | None, user: int | None = None
    ) -> Result:
        """Set a market's fees, or with ``user`` a user's override on that market.

        For a user, ``maker_fee is None and taker_fee is None`` removes the override.
        """
        m = self.markets.get(market)
        if m is None:
            return _reject(R.UNKNOWN_MARKET)
        for v in (maker_fee, taker_fee):
            if v is not None and (type(v) is not int or not 0 <= v < FEE_DENOMINATOR):
                return _reject(R.INVALID_AMOUNT)
        if user is None:
            if maker_fee is None or taker_fee is None:
                return _reject(R.INVALID_ARGUMENT)
            m.maker_fee = maker_fee
            m.taker_fee = taker_fee
        else:
            if type(user) is not int or user < 1:
                return _reject(R.INVALID_ARGUMENT)
            if maker_fee is None and taker_fee is None:
                m.user_fees.pop(user, None)
            elif maker_fee is None or taker_fee is None:
                return _reject(R.INVALID_ARGUMENT)
            else:
                m.user_fees[user] = (maker_fee, taker_fee)
        return Result(True, None, self._market_dict(m), [])

    # ------------------------------------------------------------ balances

    def update_balance_int(
        self,
        user: int,
        asset: str,
        business: str,
        business_id: str,
        change: int,
        time: int,
        detail: dict[str, Any] | None = None,
    ) -> Result:
        """Credit (change > 0) or debit (change < 0) a user's available balance.

        A repeated ``(business, business_id)`` is rejected with ``repeated_update``.
        """
        a = self.assets.get(asset)
        if a is None:
            return _reject(R.UNKNOWN_ASSET)
        if type(user) is not int or user < 0:
            return _reject(R.INVALID_ARGUMENT)
        if not isinstance(business, str) or not business or business in RESERVED_BUSINESSES:
            return _reject(R.INVALID_ARGUMENT)
        if not isinstance(business_id, str) or not business_id:
            return _reject(R.INVALID_ARGUMENT)
        if type(change) is not int or change == 0:
            return _reject(R.INVALID_AMOUNT)
        key = (business, business_id)
        if key in self._updates:
            return _reject(R.REPEATED_UPDATE)
        accts = self._bal.get(user)
        acct = accts.get(asset) if accts is not None else None
        available = acct[0] if acct is not None else 0
        if available + change < 0:
            return _reject(R.INSUFFICIENT_BALANCE)
        if acct is None:
            acct = self._account(user, asset)
        self._updates.add(key)
        acct[0] += change
        seq = self.event_seq = self.event_seq + 1
        ev: RawEvent = (_BE, seq, user, a, business, business_id, change, acct[0], acct[1], time, detail)
        value = {
            "user": user,
            "asset": asset,
            "available": format_units(acct[0], a.prec),
            "frozen": format_units(acct[1], a.prec),
        }
        return Result(True, None, value, [ev])

    def _account(self, user: int, asset: str) -> list[int]:
        accts = self._bal.get(user)
        if accts is None:
            accts = self._bal[user] = {}
        acct = accts.get(asset)
        if acct is None:
            acct = accts[asset] = [0, 0]
        return acct

    # ------------------------------------------------------------ placing

    def place_limit_int(
        self,
        user: int,
        market: str,
        side: str,
        price: int,
        amount: int,
        time: int,
        tif: str = GTC,
        post_only: bool = False,
        client_order_id: str | None = None,
        stp: str = CANCEL_RESTING,
    ) -> Result:
        """Place a limit order: ``price`` in price ticks, ``amount`` in amount ticks.

        ``value`` of the result is the order id.
        """
        m = self.markets.get(market)
        if m is None:
            return _reject(R.UNKNOWN_MARKET)
        if m.halted:
            return _reject(R.MARKET_HALTED)
        if side == BUY:
            is_buy = True
        elif side == SELL:
            is_buy = False
        else:
            return _reject(R.INVALID_ARGUMENT)
        if tif not in TIFS or stp not in STPS or user < 1 or (post_only and tif != GTC):
            return _reject(R.INVALID_ARGUMENT)
        if price <= 0 or amount <= 0:
            return _reject(R.INVALID_AMOUNT)
        if amount < m.min_amount:
            return _reject(R.BELOW_MIN_AMOUNT)
        notional = price * amount * m.quote_mul
        if notional < m.min_notional:
            return _reject(R.BELOW_MIN_NOTIONAL)
        if client_order_id is not None:
            used = self._coid_used.get(user)
            if used is not None and client_order_id in used:
                return _reject(R.DUPLICATE_CLIENT_ORDER_ID)
        accts = self._bal.get(user)
        if accts is None:
            return _reject(R.INSUFFICIENT_BALANCE)
        # what a resting order freezes, where it would rest, and the other side
        if is_buy:
            asset = m.quote
            frozen = notional
            book = m.bids
            key = -price
            opp = m.asks
            crosses = opp.best <= price
        else:
            asset = m.base
            frozen = amount * m.base_mul
            book = m.asks
            key = price
            opp = m.bids
            crosses = -opp.best >= price
        acct = accts.get(asset.name)
        if acct is None or (available := acct[0]) < frozen:
            return _reject(R.INSUFFICIENT_BALANCE)
        if crosses:
            if post_only:
                return _reject(R.WOULD_TAKE)
            if tif == FOK and self._fillable(opp, user, price, amount, stp, is_buy) < amount:
                return _reject(R.FOK_UNFILLABLE)
        elif tif == FOK:
            return _reject(R.FOK_UNFILLABLE)

        # accepted: from here on, state changes
        # Any: boxed once (mypyc would box an int again for every dict key and event holding it)
        oid: Any = self.next_order_id
        now: Any = time
        uid: Any = user
        self.next_order_id = oid + 1
        if INTERPRETED:
            # Order(...) written out: the call through type.__call__ and __init__ costs
            # more than the slot stores themselves (same fields as Order.__init__)
            order = _onew(Order)
            order.id = oid
            order.user = user
            order.market = m
            order.side = side
            order.type = LIMIT
            order.tif = tif
            order.post_only = post_only
            order.stp = stp
            order.price = price
            order.amount = amount
            order.quote_amount = 0
            order.filled = 0
            order.filled_quote = 0
            order.fee = 0
            order.client_order_id = client_order_id
            order.created_at = time
            order.updated_at = time
        else:
            order = Order(oid, user, m, side, LIMIT, tif, post_only, stp, price, amount, 0, client_order_id, time)
        if client_order_id is not None:
            self._coid_used.setdefault(user, set()).add(client_order_id)
        seq = self.event_seq + 1
        new_event: RawEvent = (_OE, seq, NEW, None, order, 0, 0, 0, now)
        if crosses:
            self.event_seq = seq
            events: list[RawEvent] = [new_event]
            ended = self._match(order, m, is_buy, events, time)
            filled = order.filled
            if ended is None and filled < amount and tif == GTC:
                self._rest(order, is_buy, acct, events, time)
                seq = self.event_seq = self.event_seq + 1
                events.append((_OE, seq, UPDATE, None, order, filled, order.filled_quote, order.fee, now))
            else:
                reason = ended or (FILLED if filled == amount else EXPIRED)
                seq = self.event_seq = self.event_seq + 1
                events.append((_OE, seq, DONE, reason, order, filled, order.filled_quote, order.fee, now))
            return _ok(oid, events)
        if tif != GTC:  # an IOC with nothing to trade against (FOK was refused above)
            self.event_seq = seq + 1
            done: RawEvent = (_OE, seq + 1, DONE, EXPIRED, order, 0, 0, 0, now)
            return _ok(oid, (new_event, done))
        # the common case: rest the whole order (inlined _rest and, when its price
        # level exists, BookSide.append)
        level = book.levels.get(key)
        if level is not None and (tail := level.tail) is not None:
            order.prev = tail
            order.next = None
            tail.next = order
            level.tail = order
            level.total += amount
        else:
            book.append(order, amount)
        acct[0] = available = available - frozen
        acct[1] = held = acct[1] + frozen
        self._orders[oid] = order
        uo = self._user_orders.get(uid)
        if uo is None:
            uo = self._user_orders[uid] = {}
        uo[oid] = order
        if client_order_id is not None:
            self._coid_open[(user, client_order_id)] = order
        self.event_seq = seq + 1
        return _ok(oid, (new_event, (_BE, seq + 1, uid, asset, FREEZE, oid, 0, available, held, now, None)))

    def _rest(self, order: Order, is_buy: bool, acct: list[int], events: list[RawEvent], time: int) -> None:
        """Put the open part of a limit order on the book and freeze its funds from ``acct``."""
        m = order.market
        user = order.user
        oid = order.id
        open_amount = order.amount - order.filled
        if is_buy:
            m.bids.append(order, open_amount)
            asset = m.quote
            frozen = order.price * open_amount * m.quote_mul
        else:
            m.asks.append(order, open_amount)
            asset = m.base
            frozen = open_amount * m.base_mul
        acct[0] -= frozen
        acct[1] += frozen
        self._orders[oid] = order
        uo = self._user_orders.get(user)
        if uo is None:
            uo = self._user_orders[user] = {}
        uo[oid] = order
        if order.client_order_id is not None:
            self._coid_open[(user, order.client_order_id)] = order
        seq = self.event_seq = self.event_seq + 1
        events.append((_BE, seq, user, asset, FREEZE, oid, 0, acct[0], acct[1], time, None))

    def place_market_int(
        self,
        user: int,
        market: str,
        side: str,
        amount: int,
        time: int,
        client_order_id: str | None = None,
        stp: str = CANCEL_RESTING,
    ) -> Result:
        """Place a market order: a sell gives ``amount`` in base amount ticks,
        a buy spends up to ``amount`` quote minimal units. ``value`` is the order id."""
        m = self.markets.get(market)
        if m is None:
            return _reject(R.UNKNOWN_MARKET)
        if m.halted:
            return _reject(R.MARKET_HALTED)
        if side == BUY:
            is_buy = True
        elif side == SELL:
            is_buy = False
        else:
            return _reject(R.INVALID_ARGUMENT)
        if stp not in STPS or user < 1:
            return _reject(R.INVALID_ARGUMENT)
        if amount <= 0:
            return _reject(R.INVALID_AMOUNT)
        opp = m.asks if is_buy else m.bids
        if is_buy:
            if amount < m.min_notional:
                return _reject(R.BELOW_MIN_NOTIONAL)
        elif amount < m.min_amount:
            return _reject(R.BELOW_MIN_AMOUNT)
        if client_order_id is not None:
            used = self._coid_used.get(user)
            if used is not None and client_order_id in used:
                return _reject(R.DUPLICATE_CLIENT_ORDER_ID)
        accts = self._bal.get(user)
        acct = accts.get(m.quote.name if is_buy else m.base.name) if accts is not None else None
        need = amount if is_buy else amount * m.base_mul
        if acct is None or acct[0] < need:
            return _reject(R.INSUFFICIENT_BALANCE)
        if opp.best == EMPTY:
            return _reject(R.NO_LIQUIDITY)
        # a market buy must be able to buy at least one amount tick at the best price
        if is_buy and amount < opp.best * m.quote_mul:
            return _reject(R.BELOW_MIN_AMOUNT)

        oid = self.next_order_id
        self.next_order_id = oid + 1
        order = Order(
            oid,
            user,
            m,
            side,
            MARKET,
            IOC,
            False,
            stp,
            0,
            0 if is_buy else amount,
            amount if is_buy else 0,
            client_order_id,
            time,
        )
        if client_order_id is not None:
            self._coid_used.setdefault(user, set()).add(client_order_id)
        seq = self.event_seq = self.event_seq + 1
        events: list[RawEvent] = [(_OE, seq, NEW, None, order, 0, 0, 0, time)]
        ended = self._match(order, m, is_buy, events, time)
        if ended is None:
            # the book ran dry: expired unless everything was used
            done = order.filled_quote if is_buy else order.filled
            ended = FILLED if done == amount else EXPIRED
        seq = self.event_seq = self.event_seq + 1
        events.append((_OE, seq, DONE, ended, order, order.filled, order.filled_quote, order.fee, time))
        return _ok(oid, events)

    def _fillable(self, opp: BookSide, user: int, price: int, amount: int, stp: str, is_buy: bool) -> int:
        """How much of ``amount`` would fill up to ``price``, honouring self-trade prevention."""
        total = 0
        for key in opp.keys:
            level_price = key if is_buy else -key
            if (is_buy and level_price > price) or (not is_buy and level_price < price):
                break
            o = opp.levels[key].head
            while o is not None:
                if o.user == user:
                    if stp != CANCEL_RESTING:
                        return total
                else:
                    total += o.amount - o.filled
                    if total >= amount:
                        return total
                o = o.next
        return total

    def _match(self, taker: Order, m: Market, is_buy: bool, events: list[RawEvent], time: int) -> str | None:
        """Trade ``taker`` against the opposite side. Returns SELF_TRADE if self-trade
        prevention ended the taker, FILLED if a market buy's rest cannot buy one more
        tick, else None. The taker pays from its available balance as it trades.

        Both sides are one code path in terms of what the taker pays (``give``, asset
        ``pay``: quote for a buy, base for a sell) and gets (``get``, asset ``gain``).
        The running figures of the taker, of the fee account and the event and deal
        counters live in locals while matching and are written back on the way out:
        nothing else touches them meanwhile, except ``_cancel`` for self-trade
        prevention (written back and read again around it)."""
        if is_buy:
            opp = m.asks
            pay = m.quote
            gain = m.base
        else:
            opp = m.bids
            pay = m.base
            gain = m.quote
        levels = opp.levels
        qmul = m.quote_mul
        bmul = m.base_mul
        pname = pay.name
        gname = gain.name
        bal = self._bal
        # Any: mypyc keeps ints unboxed and would box these again for every event that holds them
        user: Any = taker.user
        taccts = bal[user]
        tp = taccts[pname]  # what it pays with: its balance was checked
        tg = taccts.get(gname) or self._account(user, gname)
        tpa, tpf = tp
        tga, tgf = tg
        fee_accts = bal[FEE_USER]
        fp = fee_accts[pname]
        fg = fee_accts[gname]
        fpa, fpf = fp
        fga, fgf = fg
        ufees = m.user_fees
        t_rate = ufees[user][1] if user in ufees else m.taker_fee
        maker_fee = m.maker_fee
        market_buy = taker.type == MARKET and is_buy
        limit = taker.price
        # what is left to trade: amount ticks, and quote units for a market buy (a limit
        # order's quote_amount is 0, so rq goes negative: -rq is what it has traded)
        rem = taker.amount
        rq = taker.quote_amount
        t_fee_sum = 0
        stp = taker.stp
        tid: Any = taker.id
        side = taker.side
        seq = self.event_seq
        deal_id: Any = self.next_deal_id - 1
        now: Any = time
        push = events.append
        extend = events.extend
        BE = _BE
        DE = _DE
        OE = _OE
        orders = self._orders
        user_orders = self._user_orders
        ended = None
        while True:
            key = opp.best
            if key == EMPTY:
                break
            level = levels[key]
            price = level.price
            if limit and (price > limit if is_buy else price < limit):
                break
            maker = level.head
            while maker is not None:
                nxt = maker.next
                muser: Any = maker.user
                if muser == user:
                    if stp == CANCEL_INCOMING:
                        ended = SELF_TRADE
                        break
                    tp[0] = tpa
                    tg[0] = tga
                    self.event_seq = seq
                    extend(self._cancel(maker, SELF_TRADE, time))
                    tpa, tpf = tp
                    tga, tgf = tg
                    seq = self.event_seq
                    if stp == CANCEL_BOTH:
                        ended = SELF_TRADE
                        break
                    maker = nxt
                    continue
                mrem = maker.amount - maker.filled
                if market_buy:
                    take = rq // (price * qmul)
                    if take == 0:
                        ended = FILLED
                        break
                    if take > mrem:
                        take = mrem
                else:
                    take = rem if rem < mrem else mrem
                base_units = take * bmul
                quote_units = price * take * qmul
                if is_buy:
                    give = quote_units
                    get = base_units
                else:
                    give = base_units
                    get = quote_units
                t_fee = get * t_rate // FEE_DENOMINATOR
                m_fee = give * (ufees[muser][0] if muser in ufees else maker_fee) // FEE_DENOMINATOR
                # the maker gives from what it froze in ``gain`` and gets ``pay``
                maccts = bal[muser]
                mg = maccts[gname]
                mp = maccts.get(pname) or self._account(muser, pname)
                tpa -= give
                t_net = get - t_fee
                tga += t_net
                mgf = mg[1] = mg[1] - get
                m_net = give - m_fee
                mpa = mp[0] = mp[0] + m_net
                deal_id += 1
                extend((
                    (DE, seq + 1, deal_id, m, price, take, quote_units, maker.id, tid, muser, user, m_fee, t_fee,
                     side, now),
                    (BE, seq + 2, user, pay, TRADE, deal_id, -give, tpa, tpf, now, None),
                    (BE, seq + 3, user, gain, TRADE, deal_id, t_net, tga, tgf, now, None),
                    (BE, seq + 4, muser, gain, TRADE, deal_id, -get, mg[0], mgf, now, None),
                    (BE, seq + 5, muser, pay, TRADE, deal_id, m_net, mpa, mp[1], now, None),
                ))
                seq += 5
                # fees: business_id is the deal id, as for trade: the two fees of a deal are in
                # different assets, so (user, asset, business, business_id) stays unique
                if t_fee:
                    fga += t_fee
                    t_fee_sum += t_fee
                    seq += 1
                    push((BE, seq, FEE_USER, gain, FEE, deal_id, t_fee, fga, fgf, now, None))
                if m_fee:
                    fpa += m_fee
                    seq += 1
                    push((BE, seq, FEE_USER, pay, FEE, deal_id, m_fee, fpa, fpf, now, None))
                rem -= take
                rq -= quote_units
                mfilled = maker.filled = maker.filled + take
                mfq = maker.filled_quote = maker.filled_quote + quote_units
                mfee = maker.fee = maker.fee + m_fee
                maker.updated_at = time
                level.total -= take
                seq += 1
                if mfilled != maker.amount:
                    # the maker still has some: so the taker is done (a market buy's
                    # rest cannot pay for one more tick at this price)
                    push((OE, seq, UPDATE, None, maker, mfilled, mfq, mfee, now))
                    if market_buy:
                        ended = FILLED
                    break
                # the maker is the head of its level (those before it are gone): the next
                # one becomes the head, or the level is dropped; then off the indexes
                if nxt is not None:
                    level.head = nxt
                    nxt.prev = None
                    maker.next = None
                else:
                    opp.drop_level(level)
                mid = maker.id
                del orders[mid]
                del user_orders[muser][mid]
                if maker.client_order_id is not None:
                    del self._coid_open[(muser, maker.client_order_id)]
                push((OE, seq, DONE, FILLED, maker, mfilled, mfq, mfee, now))
                if rem == 0 and not market_buy:
                    break
                maker = nxt
            else:
                continue  # the level is used up: on to the next one
            break
        tp[0] = tpa
        tg[0] = tga
        fp[0] = fpa
        fg[0] = fga
        self.event_seq = seq
        self.next_deal_id = deal_id + 1
        taker.filled = taker.amount - rem
        taker.filled_quote = taker.quote_amount - rq
        taker.fee = t_fee_sum
        return ended

    def _cancel(self, order: Order, reason: str, time: int) -> tuple[RawEvent, RawEvent]:
        """Take a resting order off the book and release its frozen funds. Returns its two events."""
        m = order.market
        open_amount = order.amount - order.filled
        price = order.price
        if order.side == BUY:
            side = m.bids
            level = side.levels[-price]
            asset = m.quote
            amount = price * open_amount * m.quote_mul
        else:
            side = m.asks
            level = side.levels[price]
            asset = m.base
            amount = open_amount * m.base_mul
        level.total -= open_amount
        # unlink it from its level (the links are cleared: events keep the order alive)
        prev = order.prev
        nxt = order.next
        if prev is None:
            level.head = nxt
        else:
            prev.next = nxt
            order.prev = None
        if nxt is None:
            level.tail = prev
        else:
            nxt.prev = prev
            order.next = None
        if level.head is None:
            side.drop_level(level)
        # drop it from the indexes of open orders
        user: Any = order.user  # Any: boxed once, as in _match
        oid: Any = order.id
        del self._orders[oid]
        del self._user_orders[user][oid]
        if order.client_order_id is not None:
            del self._coid_open[(user, order.client_order_id)]
        order.updated_at = time
        acct = self._bal[user][asset.name]
        acct[0] += amount
        acct[1] -= amount
        seq = self.event_seq
        self.event_seq = seq + 2
        now: Any = time
        return (
            (_OE, seq + 1, DONE, reason, order, order.filled, order.filled_quote, order.fee, now),
            (_BE, seq + 2, user, asset, UNFREEZE, oid, 0, acct[0], acct[1], now, None),
        )

    # ------------------------------------------------------------ cancelling

    def cancel_int(
        self,
        user: int,
        market: str,
        order_id: int | None,
        time: int,
        client_order_id: str | None = None,
    ) -> Result:
        """Cancel one open order by id or by client_order_id. ``value`` is the order id."""
        m = self.markets.get(market)
        if m is None:
            return _reject(R.UNKNOWN_MARKET)
        if order_id is not None:
            order = self._orders.get(order_id)
            if order is None or order.market is not m:
                return _reject(R.UNKNOWN_ORDER)
            if order.user != user:
                return _reject(R.NOT_OWNER)
        elif client_order_id is not None:
            order = self._coid_open.get((user, client_order_id))
            if order is None or order.market is not m:
                return _reject(R.UNKNOWN_ORDER)
        else:
            return _reject(R.INVALID_ARGUMENT)
        return _ok(order.id, self._cancel(order, CANCELLED, time))

    def cancel_all_int(self, user: int, market: str | None, time: int) -> Result:
        """Cancel all of a user's open orders (on one market if given), oldest first.
        ``value`` is the list of cancelled order ids."""
        m = None
        if market is not None:
            m = self.markets.get(market)
            if m is None:
                return _reject(R.UNKNOWN_MARKET)
        uo = self._user_orders.get(user)
        targets = [o for o in uo.values() if m is None or o.market is m] if uo else []
        events: list[RawEvent] = []
        for o in targets:
            events.extend(self._cancel(o, CANCELLED, time))
        return Result(True, None, [o.id for o in targets], events)

    # ------------------------------------------------------------ queries

    def get_order(self, order_id: int) -> dict[str, Any] | None:
        """An open order as a dict, or None (finished orders live in the database)."""
        o = self._orders.get(order_id)
        return None if o is None else _open_order_dict(o)

    def open_orders(self, user: int, market: str | None = None) -> list[dict[str, Any]]:
        uo = self._user_orders.get(user)
        if not uo:
            return []
        return [_open_order_dict(o) for o in uo.values() if market is None or o.market.name == market]

    def balances(self, user: int) -> dict[str, tuple[int, int]]:
        """asset -> (available, frozen) in minimal units."""
        return {a: (v[0], v[1]) for a, v in self._bal.get(user, {}).items()}

    def balances_str(self, user: int) -> dict[str, dict[str, str]]:
        """asset -> {"available", "frozen"} as decimal strings."""
        return {
            a: {
                "available": format_units(v[0], self.assets[a].prec),
                "frozen": format_units(v[1], self.assets[a].prec),
            }
            for a, v in self._bal.get(user, {}).items()
        }

    def balance_totals(self) -> dict[str, int]:
        """asset -> sum of available + frozen over every user and the fee account."""
        totals = dict.fromkeys(self.assets, 0)
        for accts in self._bal.values():
            for a, v in accts.items():
                totals[a] += v[0] + v[1]
        return totals

    def users(self) -> list[int]:
        """Every user that has a balance row (including the fee account 0)."""
        return list(self._bal)

    def list_assets(self) -> list[dict[str, Any]]:
        return [{"name": a.name, "prec": a.prec} for a in self.assets.values()]

    def list_markets(self) -> list[dict[str, Any]]:
        return [self._market_dict(m) for m in self.markets.values()]

    def market_info(self, market: str) -> Market | None:
        """The market object (read-only use: precisions, multipliers, fees)."""
        return self.markets.get(market)

    def depth(self, market: str, limit: int, interval: str | None = None) -> dict[str, list[tuple[str, str]]]:
        """Top ``limit`` levels per side as (price, amount) decimal strings.

        With ``interval`` (a decimal string, a multiple of the price tick) levels
        are merged: asks rounded up to the interval, bids rounded down.
        Raises ``KeyError`` for an unknown market and ``AmountError`` for a bad interval.
        """
        m = self.markets.get(market)
        if m is None:
            raise KeyError(market)
        step = 1 if interval is None else parse_units(interval, m.price_prec)
        return {
            "asks": self._depth_side(m, m.asks, limit, step, True),
            "bids": self._depth_side(m, m.bids, limit, step, False),
        }

    @staticmethod
    def _depth_side(m: Market, side: BookSide, limit: int, step: int, up: bool) -> list[tuple[str, str]]:
        merged: list[list[int]] = []
        for key in side.keys:
            level = side.levels[key]
            price = level.price
            bucket = -(-price // step) * step if up else price // step * step
            if merged and merged[-1][0] == bucket:
                merged[-1][1] += level.total
            else:
                if len(merged) == limit:
                    break
                merged.append([bucket, level.total])
        pp = m.price_prec
        ap = m.amount_prec
        return [(format_units(p, pp), format_units(a, ap)) for p, a in merged]

    def reserved(self, user: int) -> dict[str, int]:
        """What the user's open orders reserve, per asset (should equal frozen)."""
        out: dict[str, int] = {}
        for o in self._user_orders.get(user, {}).values():
            m = o.market
            open_amount = o.amount - o.filled
            if o.side == BUY:
                out[m.quote.name] = out.get(m.quote.name, 0) + o.price * open_amount * m.quote_mul
            else:
                out[m.base.name] = out.get(m.base.name, 0) + open_amount * m.base_mul
        return out

    @staticmethod
    def _market_dict(m: Market) -> dict[str, Any]:
        return {
            "name": m.name,
            "base": m.base.name,
            "quote": m.quote.name,
            "price_prec": m.price_prec,
            "amount_prec": m.amount_prec,
            "min_amount": format_units(m.min_amount, m.amount_prec),
            "min_notional": format_units(m.min_notional, m.quote.prec),
            "maker_fee": format_fee_rate(m.maker_fee),
            "taker_fee": format_fee_rate(m.taker_fee),
            "user_fees": {
                str(u): {"maker_fee": format_fee_rate(mk), "taker_fee": format_fee_rate(tk)}
                for u, (mk, tk) in sorted(m.user_fees.items())
            },
            "status": "halted" if m.halted else "trading",
        }

    # ------------------------------------------------------------ snapshot

    def config(self) -> dict[str, Any]:
        """The assets and markets part of ``snapshot()``: cheap, so the matcher stores it with every batch."""
        return {
            "assets": [[a.name, a.prec] for a in self.assets.values()],
            "markets": [
                {
                    "name": m.name,
                    "base": m.base.name,
                    "quote": m.quote.name,
                    "price_prec": m.price_prec,
                    "amount_prec": m.amount_prec,
                    "min_amount": m.min_amount,
                    "min_notional": m.min_notional,
                    "maker_fee": m.maker_fee,
                    "taker_fee": m.taker_fee,
                    "user_fees": [[u, mk, tk] for u, (mk, tk) in m.user_fees.items()],
                    "halted": m.halted,
                }
                for m in self.markets.values()
            ],
        }

    def snapshot(self) -> dict[str, Any]:
        """The whole state as a JSON-compatible dict (amounts as ints in ticks/minimal units)."""
        return {
            "version": SNAPSHOT_VERSION,
            "event_seq": self.event_seq,
            "next_order_id": self.next_order_id,
            "next_deal_id": self.next_deal_id,
            **self.config(),
            "balances": [[u, a, v[0], v[1]] for u, accts in self._bal.items() for a, v in accts.items()],
            # open orders in id order: within a price level that is also time priority
            "orders": [
                [
                    o.id, o.user, o.market.name, o.side, o.tif, o.post_only, o.stp, o.price, o.amount,
                    o.filled, o.filled_quote, o.fee, o.client_order_id, o.created_at, o.updated_at,
                ]
                for o in sorted(self._orders.values(), key=_order_id)
            ],
            "updates": sorted([b, i] for b, i in self._updates),
            "client_order_ids": [[u, sorted(ids)] for u, ids in sorted(self._coid_used.items())],
        }

    @classmethod
    def restore(cls, d: dict[str, Any]) -> Engine:
        """Rebuild an engine from ``snapshot()`` output; checks frozen == reserved."""
        if d.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported snapshot version {d.get('version')!r}")
        e = cls()
        for name, prec in d["assets"]:
            e.assets[name] = Asset(name, prec)
        for md in d["markets"]:
            m = Market(
                md["name"],
                e.assets[md["base"]],
                e.assets[md["quote"]],
                md["price_prec"],
                md["amount_prec"],
                md["min_amount"],
                md["min_notional"],
                md["maker_fee"],
                md["taker_fee"],
            )
            m.user_fees = {u: (mk, tk) for u, mk, tk in md["user_fees"]}
            m.halted = md["halted"]
            e.markets[m.name] = m
        for u, a, available, frozen in d["balances"]:
            e._bal.setdefault(u, {})[a] = [available, frozen]
        for m in e.markets.values():
            e._account(FEE_USER, m.base.name)
            e._account(FEE_USER, m.quote.name)
        for row in d["orders"]:
            oid, user, market, side, tif, post_only, stp, price, amount, filled, fq, fee, coid, ct, ut = row
            m = e.markets[market]
            o = Order(oid, user, m, side, LIMIT, tif, post_only, stp, price, amount, 0, coid, ct)
            o.filled = filled
            o.filled_quote = fq
            o.fee = fee
            o.updated_at = ut
            (m.bids if side == BUY else m.asks).append(o, amount - filled)
            e._orders[oid] = o
            e._user_orders.setdefault(user, {})[oid] = o
            if coid is not None:
                e._coid_open[(user, coid)] = o
        e._updates = {(b, i) for b, i in d["updates"]}
        e._coid_used = {u: set(ids) for u, ids in d["client_order_ids"]}
        e.event_seq = d["event_seq"]
        e.next_order_id = d["next_order_id"]
        e.next_deal_id = d["next_deal_id"]
        for u, accts in e._bal.items():
            reserved = e.reserved(u)
            for a, v in accts.items():
                if v[1] != reserved.get(a, 0):
                    raise ValueError(f"snapshot inconsistent: user {u} {a} frozen {v[1]} != {reserved.get(a, 0)}")
        return e


def _order_id(o: Order) -> int:
    return o.id


def _open_order_dict(o: Order) -> dict[str, Any]:
    return order_dict(o, o.filled, o.filled_quote, o.fee, "open", o.updated_at)


# ---------------------------------------------------------------- apply() params


def _check_keys(p: dict[str, Any], allowed: frozenset[str]) -> None:
    if not p.keys() <= allowed:
        raise Reject(R.INVALID_ARGUMENT, f"unknown parameters {sorted(set(p) - allowed)}")


def _int(p: dict[str, Any], key: str, *, minimum: int = 0) -> int:
    v = p.get(key)
    if type(v) is not int or v < minimum:
        raise Reject(R.INVALID_ARGUMENT, f"{key} must be an int >= {minimum}")
    return v


def _str(p: dict[str, Any], key: str, choices: frozenset[str] | None = None, default: str | None = None) -> str:
    v = p.get(key, default)
    if not isinstance(v, str) or not v or (choices is not None and v not in choices):
        raise Reject(R.INVALID_ARGUMENT, f"bad {key}")
    return v


def _opt_str(p: dict[str, Any], key: str) -> str | None:
    v = p.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or not v or len(v) > 64:
        raise Reject(R.INVALID_ARGUMENT, f"bad {key}")
    return v


def _bool(p: dict[str, Any], key: str, default: bool) -> bool:
    v = p.get(key, default)
    if type(v) is not bool:
        raise Reject(R.INVALID_ARGUMENT, f"{key} must be a bool")
    return v


def _market(e: Engine, p: dict[str, Any]) -> Market:
    name = _str(p, "market")
    m = e.markets.get(name)
    if m is None:
        raise Reject(R.UNKNOWN_MARKET)
    return m


def _order_value(res: Result) -> Result:
    """Replace an order id value by the order dict of its last event."""
    if res.ok:
        oid = res.value
        for ev in reversed(res.raw):
            if ev[0] is OrderEvent and ev[4].id == oid:
                _, _seq, _event, reason, order, filled, filled_quote, fee, time = ev
                res.value = order_dict(order, filled, filled_quote, fee, ORDER_STATUS[reason], time)
                break
    return res


_LIMIT_KEYS = frozenset(
    {"user", "market", "side", "price", "amount", "tif", "post_only", "client_order_id", "stp"}
)


def _h_place_limit(e: Engine, p: dict[str, Any], time: int) -> Result:
    _check_keys(p, _LIMIT_KEYS)
    user = _int(p, "user", minimum=1)
    m = _market(e, p)
    if m.halted:
        raise Reject(R.MARKET_HALTED)
    side = _str(p, "side", frozenset({BUY, SELL}))
    tif = _str(p, "tif", TIFS, GTC)
    stp = _str(p, "stp", STPS, CANCEL_RESTING)
    post_only = _bool(p, "post_only", False)
    coid = _opt_str(p, "client_order_id")
    price = parse_units(p.get("price"), m.price_prec)
    amount = parse_units(p.get("amount"), m.amount_prec)
    return _order_value(e.place_limit_int(user, m.name, side, price, amount, time, tif, post_only, coid, stp))


_MARKET_KEYS = frozenset({"user", "market", "side", "amount", "client_order_id", "stp"})


def _h_place_market(e: Engine, p: dict[str, Any], time: int) -> Result:
    _check_keys(p, _MARKET_KEYS)
    user = _int(p, "user", minimum=1)
    m = _market(e, p)
    if m.halted:
        raise Reject(R.MARKET_HALTED)
    side = _str(p, "side", frozenset({BUY, SELL}))
    stp = _str(p, "stp", STPS, CANCEL_RESTING)
    coid = _opt_str(p, "client_order_id")
    # a buy spends a quote amount (quote asset precision); a sell gives a base amount
    amount = parse_units(p.get("amount"), m.quote.prec if side == BUY else m.amount_prec)
    return _order_value(e.place_market_int(user, m.name, side, amount, time, coid, stp))


def _h_cancel(e: Engine, p: dict[str, Any], time: int) -> Result:
    _check_keys(p, frozenset({"user", "market", "order_id", "client_order_id"}))
    user = _int(p, "user", minimum=1)
    m = _market(e, p)
    order_id = p.get("order_id")
    coid = _opt_str(p, "client_order_id")
    if order_id is not None:
        order_id = _int(p, "order_id", minimum=1)
        if coid is not None:
            raise Reject(R.INVALID_ARGUMENT, "give order_id or client_order_id, not both")
    elif coid is None:
        raise Reject(R.INVALID_ARGUMENT, "order_id or client_order_id required")
    return _order_value(e.cancel_int(user, m.name, order_id, time, coid))


def _h_cancel_all(e: Engine, p: dict[str, Any], time: int) -> Result:
    _check_keys(p, frozenset({"user", "market"}))
    user = _int(p, "user", minimum=1)
    market = None if p.get("market") is None else _market(e, p).name
    return e.cancel_all_int(user, market, time)


def _h_update_balance(e: Engine, p: dict[str, Any], time: int) -> Result:
    _check_keys(p, frozenset({"user", "asset", "business", "business_id", "change", "detail"}))
    user = _int(p, "user")
    asset_name = _str(p, "asset")
    asset = e.assets.get(asset_name)
    if asset is None:
        raise Reject(R.UNKNOWN_ASSET)
    business = _str(p, "business")
    if business in RESERVED_BUSINESSES or len(business) > 64:
        raise Reject(R.INVALID_ARGUMENT, "reserved business")
    business_id = _str(p, "business_id")
    detail = p.get("detail")
    if detail is not None and not isinstance(detail, dict):
        raise Reject(R.INVALID_ARGUMENT, "detail must be a dict")
    change = parse_units(p.get("change"), asset.prec, allow_negative=True)
    return e.update_balance_int(user, asset_name, business, business_id, change, time, detail)


def _h_halt(e: Engine, p: dict[str, Any], time: int) -> Result:
    _check_keys(p, frozenset({"market"}))
    return e.set_market_halted(_market(e, p).name, True)


def _h_resume(e: Engine, p: dict[str, Any], time: int) -> Result:
    _check_keys(p, frozenset({"market"}))
    return e.set_market_halted(_market(e, p).name, False)


def _h_set_fees(e: Engine, p: dict[str, Any], time: int) -> Result:
    _check_keys(p, frozenset({"market", "maker_fee", "taker_fee", "user"}))
    m = _market(e, p)
    user = None if p.get("user") is None else _int(p, "user", minimum=1)
    maker = None if p.get("maker_fee") is None else parse_fee_rate(p["maker_fee"])
    taker = None if p.get("taker_fee") is None else parse_fee_rate(p["taker_fee"])
    return e.set_fees_int(m.name, maker, taker, user)


def _h_add_asset(e: Engine, p: dict[str, Any], time: int) -> Result:
    _check_keys(p, frozenset({"name", "prec"}))
    return e.add_asset(_str(p, "name"), _int(p, "prec"))


_MARKET_ADD_KEYS = frozenset(
    {"name", "base", "quote", "price_prec", "amount_prec", "min_amount", "min_notional", "maker_fee", "taker_fee"}
)


def _h_add_market(e: Engine, p: dict[str, Any], time: int) -> Result:
    _check_keys(p, _MARKET_ADD_KEYS)
    base = e.assets.get(_str(p, "base"))
    quote = e.assets.get(_str(p, "quote"))
    if base is None or quote is None:
        raise Reject(R.UNKNOWN_ASSET)
    price_prec = _int(p, "price_prec")
    amount_prec = _int(p, "amount_prec")
    if base.prec < amount_prec or quote.prec < price_prec + amount_prec:
        raise Reject(R.INVALID_PRECISION, "precision finer than the assets allow")
    min_amount = parse_units(p.get("min_amount", "0"), amount_prec, allow_zero=True)
    min_notional = parse_units(p.get("min_notional", "0"), quote.prec, allow_zero=True)
    maker = parse_fee_rate(p.get("maker_fee", "0"))
    taker = parse_fee_rate(p.get("taker_fee", "0"))
    name = p.get("name", f"{base.name}_{quote.name}")
    if not isinstance(name, str):
        raise Reject(R.INVALID_ARGUMENT)
    return e.add_market_int(
        name, base.name, quote.name, price_prec, amount_prec, min_amount, min_notional, maker, taker
    )


_HANDLERS: dict[str, Callable[[Engine, dict[str, Any], int], Result]] = {
    "place_limit": _h_place_limit,
    "place_market": _h_place_market,
    "cancel": _h_cancel,
    "cancel_all": _h_cancel_all,
    "update_balance": _h_update_balance,
    "halt_market": _h_halt,
    "resume_market": _h_resume,
    "set_fees": _h_set_fees,
    "add_asset": _h_add_asset,
    "add_market": _h_add_market,
}
