"""Shapes of the trading API. Orders render the same whether they come from the matcher's answer
(after a placement) or from PostgreSQL (reads): ``order_from_engine`` / ``order_from_model``."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cryptgo.api.fields import DecimalString, MoneyOut, format_decimal, plain_decimal
from markets import selectors as market_selectors
from markets.models import Asset, Market
from trading.models import Order, OrderStatus

#: a client_order_id, whole (without anchors: ``fullmatch``)
CLIENT_ORDER_ID = r"[A-Za-z0-9._:/-]{1,64}"
SIDES = ("buy", "sell")
TYPES = ("limit", "market")
TIMES_IN_FORCE = ("GTC", "IOC", "FOK")
STP_MODES = ("cancel_resting", "cancel_incoming", "cancel_both")


def _decimals(value: str) -> int:
    return len(value.partition(".")[2].rstrip("0"))


@extend_schema_field({"type": "string", "maxLength": 33, "example": "ETH_USDT"})
class MarketField(serializers.Field):
    """A market name in, the ``Market`` out; an unknown one is a field error ``unknown_market``."""

    default_error_messages = {"unknown_market": "No such market.", "invalid": "Must be a market name."}

    def to_internal_value(self, data: Any) -> Market:
        if not isinstance(data, str) or not 0 < len(data) <= 33:
            self.fail("invalid")
        # the ASGI fast path validates on the event loop and passes the market it found in the cache
        market = self.context.get("market_lookup", market_selectors.market_get)(data)
        if market is None:
            self.fail("unknown_market")
        return market

    def to_representation(self, value: Any) -> str:
        return str(value)


@extend_schema_field({"type": "string", "maxLength": 16, "example": "ETH"})
class AssetField(serializers.Field):
    default_error_messages = {"unknown_asset": "No such asset.", "invalid": "Must be an asset symbol."}

    def to_internal_value(self, data: Any) -> Asset:
        if not isinstance(data, str) or not 0 < len(data) <= 16:
            self.fail("invalid")
        asset = Asset.objects.filter(symbol=data).first()
        if asset is None:
            self.fail("unknown_asset")
        return asset

    def to_representation(self, value: Any) -> str:
        return str(value)


class OrderPlaceIn(serializers.Serializer):
    market = MarketField()
    side = serializers.ChoiceField(choices=SIDES)
    type = serializers.ChoiceField(choices=TYPES)
    price = DecimalString(required=False, help_text="Limit orders: the limit price.")
    amount = DecimalString(required=False, help_text="Base amount: limit orders and market sells.")
    quote_amount = DecimalString(required=False, help_text="Market buys: the quote amount to spend.")
    time_in_force = serializers.ChoiceField(choices=TIMES_IN_FORCE, default="GTC")
    post_only = serializers.BooleanField(default=False)
    client_order_id = serializers.RegexField(f"^{CLIENT_ORDER_ID}$", required=False,
                                             help_text="Your id for the order, unique per account.")
    stp = serializers.ChoiceField(choices=STP_MODES, required=False,
                                  help_text="Self-trade prevention (default cancel_resting).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = placement_errors(attrs, "time_in_force" in self.initial_data)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def placement_errors(attrs: dict[str, Any], tif_given: bool) -> dict[str, list[serializers.ErrorDetail]]:
    """The cross-field rules of a placement whose fields are each valid (``OrderPlaceIn.validate``, and
    ``order_place_fast`` before it accepts): the field errors, empty when the placement is valid."""
    errors: dict[str, list[serializers.ErrorDetail]] = {}

    def err(field: str, code: str, message: str) -> None:
        errors.setdefault(field, []).append(serializers.ErrorDetail(message, code=code))

    market: Market = attrs["market"]
    if attrs["type"] == "limit":
        for field in ("price", "amount"):
            if field not in attrs:
                err(field, "required", "Required for limit orders.")
        if "quote_amount" in attrs:
            err("quote_amount", "not_allowed", "Only for market buys.")
        if attrs["post_only"] and attrs["time_in_force"] != "GTC":
            err("post_only", "not_allowed", "Post-only orders are GTC.")
    else:
        if "price" in attrs:
            err("price", "not_allowed", "Market orders have no price.")
        if attrs["post_only"]:
            err("post_only", "not_allowed", "Market orders cannot be post-only.")
        if attrs["time_in_force"] != "GTC" and tif_given:
            err("time_in_force", "not_allowed", "Market orders are always immediate-or-cancel.")
        need, forbid = ("quote_amount", "amount") if attrs["side"] == "buy" else ("amount", "quote_amount")
        if need not in attrs:
            err(need, "required", f"Required for market {attrs['side']}s.")
        if forbid in attrs:
            err(forbid, "not_allowed", f"Not allowed for market {attrs['side']}s.")
    limits = {"price": market.price_precision, "amount": market.amount_precision,
              "quote_amount": market.quote.decimals}
    for field, places in limits.items():
        if field in attrs and _decimals(attrs[field]) > places:
            err(field, "invalid_precision", f"At most {places} decimals on {market.name}.")
    return errors


_CLIENT_ORDER_ID = re.compile(CLIENT_ORDER_ID)
_CHOICES = {"side": SIDES, "type": TYPES, "time_in_force": TIMES_IN_FORCE, "stp": STP_MODES}
_MONEY = ("price", "amount", "quote_amount")


def order_place_fast(data: Any, market_lookup: Callable[[str], Market | None]) -> dict[str, Any] | None:
    """``OrderPlaceIn(data=data).validated_data`` for a plain, valid placement, or None: then the caller
    runs ``OrderPlaceIn``, which answers (accepts or gives the 400's details) as before.

    Why: DRF deep-copies the serializer's fields for every instance, about half the fast path's CPU per
    placement. This accepts only what ``OrderPlaceIn`` accepts unchanged -- a JSON object (a plain dict,
    not a form's QueryDict) with strings of the exact choices, plain positive decimal strings, a JSON
    boolean ``post_only``, a client_order_id that needs no trimming -- and leaves every other input, valid
    or not, to the serializer, so no error answer has a second implementation. Unknown keys are
    ignored, as the serializer ignores them. ``tests/api/test_order_validation.py`` compares both.
    """
    if type(data) is not dict:
        return None
    name = data.get("market")
    if type(name) is not str or not 0 < len(name) <= 33:
        return None
    market = market_lookup(name)
    if market is None:
        return None
    out: dict[str, Any] = {"market": market}
    for key in ("side", "type"):
        v = data.get(key)
        if type(v) is not str or v not in _CHOICES[key]:
            return None
        out[key] = v
    for key in _MONEY:
        if key in data:
            v = data[key]
            d = plain_decimal(v) if type(v) is str else None
            if d is None or not d > 0:
                return None
            out[key] = v
    tif = data.get("time_in_force", "GTC")
    if type(tif) is not str or tif not in _CHOICES["time_in_force"]:
        return None
    out["time_in_force"] = tif
    post_only = data.get("post_only", False)
    if type(post_only) is not bool:
        return None
    out["post_only"] = post_only
    if "client_order_id" in data:
        v = data["client_order_id"]
        if type(v) is not str or not _CLIENT_ORDER_ID.fullmatch(v):
            return None
        out["client_order_id"] = v
    if "stp" in data:
        v = data["stp"]
        if type(v) is not str or v not in _CHOICES["stp"]:
            return None
        out["stp"] = v
    if placement_errors(out, "time_in_force" in data):
        return None
    return out


class OrderOut(serializers.Serializer):
    id = serializers.IntegerField()
    market = serializers.CharField()
    side = serializers.CharField()
    type = serializers.CharField()
    time_in_force = serializers.CharField()
    post_only = serializers.BooleanField()
    price = MoneyOut(allow_null=True)
    amount = MoneyOut(allow_null=True)
    quote_amount = MoneyOut(allow_null=True)
    filled_amount = MoneyOut()
    filled_quote = MoneyOut()
    fee = MoneyOut()
    fee_asset = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    client_order_id = serializers.CharField(allow_null=True)
    created_at = serializers.IntegerField(help_text="ms")
    updated_at = serializers.IntegerField(help_text="ms")


def _status(status: str, filled: Any) -> str:
    if status == "open" and Decimal(str(filled or 0)) > 0:
        return OrderStatus.PARTIALLY_FILLED.value
    return status


def order_from_engine(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": d["id"], "market": d["market"], "side": d["side"], "type": d["type"], "time_in_force": d["tif"],
        "post_only": d["post_only"], "price": d["price"], "amount": d["amount"], "quote_amount": d["quote_amount"],
        "filled_amount": d["filled_amount"], "filled_quote": d["filled_quote"], "fee": d["fee"],
        "fee_asset": d["fee_asset"], "status": _status(d["status"], d["filled_amount"]),
        "client_order_id": d["client_order_id"], "created_at": d["created_at"], "updated_at": d["updated_at"],
    }


def order_from_model(o: Order) -> dict[str, Any]:
    return {
        "id": o.id, "market": o.market.name, "side": o.side, "type": o.type, "time_in_force": o.time_in_force,
        "post_only": o.post_only, "price": o.price, "amount": o.amount, "quote_amount": o.quote_amount,
        "filled_amount": o.filled_amount, "filled_quote": o.filled_quote, "fee": o.fee,
        "fee_asset": o.fee_asset.symbol if o.fee_asset_id else None,
        "status": _status(o.status, o.filled_amount), "client_order_id": o.client_order_id,
        "created_at": int(o.created_at.timestamp() * 1000), "updated_at": int(o.updated_at.timestamp() * 1000),
    }


_MONEY_KEYS = ("price", "amount", "quote_amount", "filled_amount", "filled_quote", "fee")


def render_order(d: dict[str, Any]) -> dict[str, Any]:
    """What ``OrderOut(d).data`` gives, without building a serializer per order (the hot path)."""
    out = dict(d)
    for k in _MONEY_KEYS:
        v = out[k]
        out[k] = None if v is None else format_decimal(v)
    return out


class BalanceOut(serializers.Serializer):
    asset = serializers.CharField()
    available = MoneyOut()
    frozen = MoneyOut()


_TIME = {"min_value": 0, "max_value": 253402300799999, "required": False, "help_text": "ms since the epoch"}


class OrderHistoryQuery(serializers.Serializer):
    market = MarketField(required=False)
    side = serializers.ChoiceField(choices=["buy", "sell"], required=False)
    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
    start = serializers.IntegerField(**_TIME)
    end = serializers.IntegerField(**_TIME)


class MarketQuery(serializers.Serializer):
    market = MarketField(required=False)


class DealQuery(serializers.Serializer):
    market = MarketField(required=False)
    order_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)
    start = serializers.IntegerField(**_TIME)
    end = serializers.IntegerField(**_TIME)


class MyDealOut(serializers.Serializer):
    id = serializers.IntegerField()
    market = serializers.CharField()
    order_id = serializers.IntegerField()
    side = serializers.CharField()
    role = serializers.ChoiceField(choices=["maker", "taker"])
    price = MoneyOut()
    amount = MoneyOut()
    quote_amount = MoneyOut()
    fee = MoneyOut()
    fee_asset = serializers.CharField()
    time = serializers.IntegerField()


class LedgerQuery(serializers.Serializer):
    asset = AssetField(required=False)
    business = serializers.CharField(required=False, max_length=32)
    start = serializers.IntegerField(**_TIME)
    end = serializers.IntegerField(**_TIME)


class LedgerOut(serializers.Serializer):
    id = serializers.IntegerField()
    asset = serializers.CharField(source="asset.symbol")
    business = serializers.CharField()
    business_id = serializers.CharField()
    change = MoneyOut()
    balance = MoneyOut()
    detail = serializers.JSONField()
    time = serializers.SerializerMethodField()

    def get_time(self, obj: Any) -> int:
        return int(obj.time.timestamp() * 1000)


class CancelAllOut(serializers.Serializer):
    cancelled = OrderOut(many=True)
