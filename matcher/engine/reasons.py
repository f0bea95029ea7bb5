"""Reason codes: the only ways the engine says no.

Every rejected command returns exactly one of these codes and changes
nothing. The service maps them to API errors once, at the edge.
"""

from __future__ import annotations

from typing import Final

INSUFFICIENT_BALANCE: Final = "insufficient_balance"
INVALID_PRECISION: Final = "invalid_precision"
INVALID_AMOUNT: Final = "invalid_amount"
INVALID_ARGUMENT: Final = "invalid_argument"
BELOW_MIN_AMOUNT: Final = "below_min_amount"
BELOW_MIN_NOTIONAL: Final = "below_min_notional"
WOULD_TAKE: Final = "would_take"
FOK_UNFILLABLE: Final = "fok_unfillable"
NO_LIQUIDITY: Final = "no_liquidity"
MARKET_HALTED: Final = "market_halted"
UNKNOWN_MARKET: Final = "unknown_market"
UNKNOWN_ASSET: Final = "unknown_asset"
UNKNOWN_ORDER: Final = "unknown_order"
UNKNOWN_METHOD: Final = "unknown_method"
NOT_OWNER: Final = "not_owner"
DUPLICATE_CLIENT_ORDER_ID: Final = "duplicate_client_order_id"
DUPLICATE_ASSET: Final = "duplicate_asset"
DUPLICATE_MARKET: Final = "duplicate_market"
REPEATED_UPDATE: Final = "repeated_update"

ALL_REASONS: Final = frozenset(
    {
        INSUFFICIENT_BALANCE,
        INVALID_PRECISION,
        INVALID_AMOUNT,
        INVALID_ARGUMENT,
        BELOW_MIN_AMOUNT,
        BELOW_MIN_NOTIONAL,
        WOULD_TAKE,
        FOK_UNFILLABLE,
        NO_LIQUIDITY,
        MARKET_HALTED,
        UNKNOWN_MARKET,
        UNKNOWN_ASSET,
        UNKNOWN_ORDER,
        UNKNOWN_METHOD,
        NOT_OWNER,
        DUPLICATE_CLIENT_ORDER_ID,
        DUPLICATE_ASSET,
        DUPLICATE_MARKET,
        REPEATED_UPDATE,
    }
)
