"""Trading write paths: every order placement and cancellation goes through the matcher client.

The matcher is the only writer of balances and orders; these functions only
translate between the API and the client, and turn the matcher's refusals
into ``ApiError``s once, here: the reason code becomes the error code
(``insufficient_balance``, ``duplicate_client_order_id``, ...), a duplicate or
a state conflict is 409, anything else 400, and an unreachable matcher 503.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from accounts.models import User
from cryptgo.api.errors import ApiError, NotFound, ServiceUnavailable
from markets.models import Market
from trading.models import Order

if TYPE_CHECKING:
    from matcher.client import MatcherError, PlaceRequest

T = TypeVar("T")

#: Reasons that mean "conflicts with the current state" (409); all others are a bad request (400).
CONFLICT_REASONS = frozenset({"duplicate_client_order_id", "repeated_update", "unknown_order", "market_halted"})
MESSAGES = {
    "insufficient_balance": "Not enough available balance for this order.",
    "invalid_precision": "A price or amount has more decimals than the market allows.",
    "invalid_amount": "A price or amount is not a valid positive number.",
    "invalid_argument": "The order parameters are inconsistent.",
    "below_min_amount": "The amount is below the market's minimum.",
    "below_min_notional": "The order's value (price × amount) is below the market's minimum.",
    "would_take": "A post-only order would have traded immediately.",
    "fok_unfillable": "A fill-or-kill order cannot be filled completely.",
    "no_liquidity": "There is nothing on the other side of the book to trade with.",
    "market_halted": "Trading on this market is halted.",
    "unknown_market": "No such market.",
    "unknown_order": "The order is not open (already filled, cancelled or expired).",
    "duplicate_client_order_id": "This client_order_id was already used.",
}


def matcher_call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call the matcher client, mapping its errors to API errors."""
    from matcher.client import MatcherRejected, MatcherUnavailable

    try:
        return fn(*args, **kwargs)
    except (MatcherRejected, MatcherUnavailable) as exc:
        raise api_error(exc) from None


def api_error(exc: MatcherError) -> Exception:
    """The API error for a matcher client error (``MatcherRejected`` or ``MatcherUnavailable``)."""
    from matcher.client import MatcherRejected

    if isinstance(exc, MatcherRejected):
        if exc.reason == "not_owner":  # never reveal another user's order
            return NotFound()
        status = 409 if exc.reason in CONFLICT_REASONS else 400
        return ApiError(exc.reason, MESSAGES.get(exc.reason, exc.message), status=status)
    return ServiceUnavailable("matcher_unavailable", f"The matching engine is unavailable ({exc.code}); "
                              "the order may or may not have been placed: check it by client_order_id.")


def _client() -> Any:
    from matcher.client import get_client

    return get_client()


def placement(*, user: User, market: Market, side: str, type: str, price: str | None = None,
              amount: str | None = None, quote_amount: str | None = None, time_in_force: str = "GTC",
              post_only: bool = False, client_order_id: str | None = None, stp: str | None = None) -> PlaceRequest:
    """The matcher request for a limit order (price, amount) or a market order (buy: quote_amount; sell: amount)."""
    from matcher.client import limit_request, market_request

    if type == "limit":
        assert price is not None and amount is not None
        return limit_request(user.pk, market.name, side, price, amount, tif=time_in_force, post_only=post_only,
                             client_order_id=client_order_id, stp=stp)
    spend = quote_amount if side == "buy" else amount
    assert spend is not None
    return market_request(user.pk, market.name, side, spend, client_order_id=client_order_id, stp=stp)


def order_place(*, user: User, market: Market, side: str, type: str, price: str | None = None,
                amount: str | None = None, quote_amount: str | None = None, time_in_force: str = "GTC",
                post_only: bool = False, client_order_id: str | None = None,
                stp: str | None = None) -> dict[str, Any]:
    """Place a limit order (price, amount) or a market order (buy: quote_amount; sell: amount).

    Returns the engine's order dict after the matcher committed the order and any trades.
    """
    from matcher.client import MatcherRejected, MatcherUnavailable

    request = placement(user=user, market=market, side=side, type=type, price=price, amount=amount,
                        quote_amount=quote_amount, time_in_force=time_in_force, post_only=post_only,
                        client_order_id=client_order_id, stp=stp)
    try:
        return _client().place(request)  # type: ignore[no-any-return]
    except (MatcherRejected, MatcherUnavailable) as exc:
        return placement_failed(user, request, exc)


def placement_failed(user: User, request: PlaceRequest, exc: MatcherError) -> dict[str, Any]:
    """What a placement the matcher client failed answers: raises its API error, except when the client's
    own retry (after an unanswered first attempt) met ``duplicate_client_order_id``. The first attempt
    was then committed: answer with that order (read from the database) instead of a false refusal.
    Needs the database only in that case (``placement_needs_database``)."""
    if not placement_needs_database(exc):
        raise api_error(exc) from None
    order = Order.objects.filter(user=user, client_order_id=request.client_order_id).select_related(
        "market", "fee_asset").first()
    if order is None:
        raise api_error(exc) from None
    return engine_dict(order)


def placement_needs_database(exc: MatcherError) -> bool:
    from matcher.client import MatcherRejected

    return isinstance(exc, MatcherRejected) and exc.retried and exc.reason == "duplicate_client_order_id"


def engine_dict(o: Order) -> dict[str, Any]:
    """A persisted order in the shape of the matcher's order dict (what the API renders)."""

    def s(v: Any) -> str | None:
        return None if v is None else format(v, "f")

    return {"id": o.id, "user": o.user_id, "market": o.market.name, "side": o.side, "type": o.type,
            "tif": o.time_in_force, "post_only": o.post_only, "stp": None, "price": s(o.price), "amount": s(o.amount),
            "quote_amount": s(o.quote_amount), "filled_amount": s(o.filled_amount), "filled_quote": s(o.filled_quote),
            "fee": s(o.fee), "fee_asset": o.fee_asset.symbol if o.fee_asset_id else None,
            "status": "open" if o.status == "partially_filled" else o.status, "client_order_id": o.client_order_id,
            "created_at": int(o.created_at.timestamp() * 1000), "updated_at": int(o.updated_at.timestamp() * 1000)}


def order_cancel(*, user: User, order: Order) -> dict[str, Any]:
    """Cancel one of the user's orders (the caller fetched it through a user-scoped selector)."""
    if order.user_id != user.pk:
        raise NotFound()
    return matcher_call(_client().cancel, user.pk, order.market.name, order_id=order.id)


def order_cancel_all(*, user: User, market: Market | None = None) -> list[dict[str, Any]]:
    return matcher_call(_client().cancel_all, user.pk, market.name if market is not None else None)
