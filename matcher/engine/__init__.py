"""CryptGO matching engine: exact, deterministic, in memory, no framework.

The engine owns every balance and open order. It takes commands (each with the
time the caller gives it; it never reads a clock and uses no randomness) and
returns events; the same commands in the same order give the same state and
the same events on any machine. It imports nothing from Django, gRPC,
PostgreSQL or Kafka: ``matcher/service`` wraps it.

Entry point: ``Engine.apply(method, params, time) -> Result`` with JSON-style
params (amounts as decimal strings). Typed fast paths (``place_limit_int``,
``place_market_int``, ``cancel_int``, ...) take integers and are what
``apply`` calls after validation.

Units
-----
* Balances, fees, quote amounts: integers in the asset's minimal unit
  (10**-prec of the asset: wei for ETH with prec 18, 10**-6 USDT).
* Order prices: integers in price ticks (10**-price_prec quote per base);
  order amounts: integers in amount ticks (10**-amount_prec base).
* A market is only accepted when base.prec >= amount_prec and
  quote.prec >= price_prec + amount_prec, so ``amount * base_mul`` and
  ``price * amount * quote_mul`` are exact integers of minimal units: a trade
  itself never rounds.
* Fee rates are integers over ``FEE_DENOMINATOR`` (10**8): "0.001" is 100000.

Rounding (the only places the engine rounds, and always towards the exchange
by less than one minimal unit; nothing is ever created or destroyed)
--------------------------------------------------------------------
* Fees: each side pays its fee in the asset it receives,
  ``fee = received * rate // FEE_DENOMINATOR`` rounded DOWN to the receiving
  asset's minimal unit. The user receives ``received - fee`` and the fee
  account (user 0) receives ``fee``: the sum is exactly ``received``. Rounding
  down means the fee is never above the exact fee and below it by less than
  one minimal unit, i.e. it never favours a user by a whole unit or more.
* Market buy by quote amount: at each price level the engine buys
  ``floor(remaining_quote / (price * quote_mul))`` amount ticks (rounded down
  to the market's amount tick). Quote left over that cannot buy one more tick
  stays in the user's available balance; the order ends ``filled``. If the
  book runs dry first the order ends ``expired``.
* Parsing never rounds: more decimals than the precision allows is rejected
  with ``invalid_precision`` (trailing zeros are fine).
* Deals execute at the maker's price; a buyer who crosses at a better price
  than its limit pays less and freezes only what rests, at its own price.

Conservation: for every asset, the sum over users (and the fee account) of
available + frozen equals the sum of accepted ``update_balance`` changes, after
every command. Each user's frozen equals what their open orders reserve:
``price * open_amount * quote_mul`` quote for a buy, ``open_amount * base_mul``
base for a sell.

Commands are atomic: a rejected command returns a reason code (``reasons``),
changes nothing and emits no events.
"""

from matcher.engine import native as _native

#: Whether ``book`` and ``core`` come from the mypyc build (``native``) rather than their source.
#: Decided before either is imported; the two behave alike (the engine tests run on both).
COMPILED = _native.activate(__path__)

from matcher.engine.amounts import (  # noqa: E402 - after the build is chosen
    FEE_DENOMINATOR,
    AmountError,
    format_fee_rate,
    format_units,
    parse_fee_rate,
    parse_units,
)
from matcher.engine.core import FEE_USER, Engine, Result  # noqa: E402
from matcher.engine.events import BalanceEvent, DealEvent, Event, OrderEvent, RawEvent, view  # noqa: E402

__all__ = [
    "COMPILED",
    "FEE_DENOMINATOR",
    "FEE_USER",
    "AmountError",
    "BalanceEvent",
    "DealEvent",
    "Engine",
    "Event",
    "OrderEvent",
    "RawEvent",
    "Result",
    "format_fee_rate",
    "format_units",
    "parse_fee_rate",
    "parse_units",
    "view",
]
