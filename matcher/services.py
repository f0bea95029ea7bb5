"""Operator write paths: each calls the matcher through the client and records an ``OperatorAction``.

The audit row is written whatever the outcome ("ok", the matcher's reason code,
or "unavailable" when the matcher did not answer, in which case the outcome is
unknown), so the trail shows every attempt. A balance adjustment carries its
own idempotency key (``business_id = "op<operator id>:<adjustment id>"``): the
admin form generates the adjustment id once, so a double submit or a retry
after "unavailable" cannot apply it twice.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from matcher.client import MatcherError, MatcherRejected, get_client
from matcher.models import OperatorAction

ADJUSTMENT_BUSINESS = "adjustment"


class OperatorActionFailed(Exception):
    """The matcher refused or did not answer; ``action`` is the recorded audit row."""

    def __init__(self, action: OperatorAction) -> None:
        super().__init__(action.outcome)
        self.action = action


def _record(operator: AbstractBaseUser, action: str, target: str, params: dict[str, Any], reason: str,
            call: Any) -> OperatorAction:
    if not reason or not reason.strip():
        raise ValueError("a reason is required")
    try:
        result = call()
        outcome = "ok"
    except MatcherRejected as exc:
        result, outcome = {"message": exc.message}, exc.reason
    except MatcherError as exc:
        result, outcome = {"message": exc.message}, "unavailable"
    row = OperatorAction.objects.create(operator=operator, action=action, target=target, params=params,
                                        reason=reason.strip(), outcome=outcome,
                                        result=result if isinstance(result, dict) else {"value": result})
    if outcome != "ok":
        raise OperatorActionFailed(row)
    return row


def balance_adjust(*, operator: AbstractBaseUser, user_id: int, asset: str, change: str, reason: str,
                   adjustment_id: str) -> OperatorAction:
    """Credit or debit a user's available balance (ledger business "adjustment")."""
    business_id = f"op{operator.pk}:{adjustment_id}"
    params = {"user": user_id, "asset": asset, "change": change, "business_id": business_id}
    return _record(operator, OperatorAction.Action.BALANCE_ADJUST, f"{user_id}:{asset}", params, reason,
                   lambda: get_client().update_balance(user_id, asset, ADJUSTMENT_BUSINESS, business_id, change,
                                                       detail={"operator": operator.pk, "reason": reason.strip()}))


def market_halt(*, operator: AbstractBaseUser, market: str, reason: str) -> OperatorAction:
    return _record(operator, OperatorAction.Action.HALT, market, {}, reason,
                   lambda: get_client().halt_market(market))


def market_resume(*, operator: AbstractBaseUser, market: str, reason: str) -> OperatorAction:
    return _record(operator, OperatorAction.Action.RESUME, market, {}, reason,
                   lambda: get_client().resume_market(market))


def market_fees_set(*, operator: AbstractBaseUser, market: str, maker_fee: str, taker_fee: str,
                    reason: str) -> OperatorAction:
    params = {"maker_fee": maker_fee, "taker_fee": taker_fee}
    return _record(operator, OperatorAction.Action.SET_FEES, market, params, reason,
                   lambda: get_client().set_fees(market, maker_fee, taker_fee))


def market_load(*, operator: AbstractBaseUser, market: str, reason: str) -> OperatorAction:
    """Load a market (and first its assets, if the matcher lacks them) added since the matcher started."""
    from markets.models import Market

    m = Market.objects.select_related("base", "quote").get(name=market)
    client = get_client()

    def call() -> dict[str, Any]:
        loaded = {a["base"] for a in client.markets()} | {a["quote"] for a in client.markets()}
        for symbol in (m.base.symbol, m.quote.symbol):
            if symbol not in loaded:
                try:
                    client.load_asset(symbol)
                except MatcherRejected as exc:
                    if exc.reason != "duplicate_asset":
                        raise
        return client.load_market(market)

    return _record(operator, OperatorAction.Action.LOAD_MARKET, market, {}, reason, call)
