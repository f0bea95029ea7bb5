"""A placement's validation: ``order_place_in`` (the view's and the ASGI fast path's) answers exactly as the
``OrderPlaceIn`` serializer does for every input, and takes the serializer-free ``order_place_fast`` for
plain valid bodies. The HTTP answers of the edges are checked once more through the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import QueryDict
from rest_framework.exceptions import ValidationError

from trading.api import serializers as s
from trading.api.views import order_place_in

LIMIT = {"market": "ETH_USDT", "side": "buy", "type": "limit", "price": "2000.5", "amount": "0.25"}
M_BUY = {"market": "ETH_USDT", "side": "buy", "type": "market", "quote_amount": "10.123456"}
M_SELL = {"market": "ETH_USDT", "side": "sell", "type": "market", "amount": "1.5"}

VALID: list[dict[str, Any]] = [
    LIMIT, M_BUY, M_SELL,
    {**LIMIT, "side": "sell", "time_in_force": "IOC"},
    {**LIMIT, "time_in_force": "FOK", "post_only": False},
    {**LIMIT, "post_only": True, "time_in_force": "GTC", "stp": "cancel_both", "client_order_id": "a.b_c:d/e-1"},
    {**LIMIT, "client_order_id": "x" * 64, "stp": "cancel_incoming"},
    {**LIMIT, "price": "2000.50", "amount": "0.2500000000"},  # trailing zeros beyond the precision are fine
    {**LIMIT, "price": "9" * 40, "amount": "1"},  # huge but plain: the matcher judges it
    {**LIMIT, "price": "0002000", "amount": "000.1"},
    {**LIMIT, "unknown": "ignored", "leverage": 100},  # unknown keys were always ignored
    {**M_BUY, "time_in_force": "GTC"},
    {**M_SELL, "post_only": False, "stp": "cancel_resting"},
]

INVALID: list[Any] = [
    None, [], [LIMIT], "text", 1, {},
    {k: v for k, v in LIMIT.items() if k != "market"},
    {k: v for k, v in LIMIT.items() if k != "side"},
    {k: v for k, v in LIMIT.items() if k != "type"},
    {k: v for k, v in LIMIT.items() if k != "price"},
    {k: v for k, v in LIMIT.items() if k != "amount"},
    {**LIMIT, "market": None}, {**LIMIT, "market": ""}, {**LIMIT, "market": "X" * 34}, {**LIMIT, "market": 7},
    {**LIMIT, "market": "NOPE_USDT"}, {**LIMIT, "market": ["ETH_USDT"]},
    {**LIMIT, "side": "BUY"}, {**LIMIT, "side": None}, {**LIMIT, "side": ""}, {**LIMIT, "side": 1},
    {**LIMIT, "type": "stop"}, {**LIMIT, "type": True},
    {**LIMIT, "price": "2000.501"}, {**LIMIT, "amount": "0.00001"},  # too many decimals for the market
    {**LIMIT, "price": "1." + "1" * 31}, {**LIMIT, "price": "1" * 41},  # beyond the plain pattern
    {**LIMIT, "price": "-1"}, {**LIMIT, "price": "+1"}, {**LIMIT, "price": "0"}, {**LIMIT, "amount": "0.0000"},
    {**LIMIT, "price": "1e3"}, {**LIMIT, "price": "1E3"}, {**LIMIT, "price": "NaN"}, {**LIMIT, "price": "Infinity"},
    {**LIMIT, "price": ".5"}, {**LIMIT, "price": "5."}, {**LIMIT, "price": " 5"}, {**LIMIT, "price": "5\n"},
    {**LIMIT, "price": "1,5"}, {**LIMIT, "price": "١٢"}, {**LIMIT, "price": ""},
    {**LIMIT, "price": 2000}, {**LIMIT, "price": 2000.5}, {**LIMIT, "price": None}, {**LIMIT, "price": True},
    {**LIMIT, "price": ["1"]}, {**LIMIT, "amount": {"v": "1"}},
    {**LIMIT, "quote_amount": "10"}, {**LIMIT, "quote_amount": "bad"},
    {**LIMIT, "time_in_force": "gtc"}, {**LIMIT, "time_in_force": None}, {**LIMIT, "time_in_force": "IOC",
                                                                          "post_only": True},
    {**LIMIT, "post_only": None}, {**LIMIT, "post_only": "maybe"}, {**LIMIT, "post_only": [True]},
    {**LIMIT, "client_order_id": "has space"}, {**LIMIT, "client_order_id": "x" * 65},
    {**LIMIT, "client_order_id": ""}, {**LIMIT, "client_order_id": None}, {**LIMIT, "client_order_id": ["a"]},
    {**LIMIT, "stp": "none"}, {**LIMIT, "stp": None},
    {**M_BUY, "price": "1"}, {**M_BUY, "amount": "1"}, {**M_BUY, "post_only": True},
    {**M_BUY, "time_in_force": "IOC"}, {**M_BUY, "quote_amount": "1.1234567"},
    {k: v for k, v in M_BUY.items() if k != "quote_amount"},
    {**M_SELL, "quote_amount": "1"}, {k: v for k, v in M_SELL.items() if k != "amount"},
    {**M_SELL, "amount": "1.12345"},
]

# valid inputs the fast validator leaves to the serializer (which accepts them, as before)
LEFT_TO_THE_SERIALIZER: list[Any] = [
    {**LIMIT, "post_only": "true"}, {**LIMIT, "post_only": 0}, {**LIMIT, "post_only": 1.0},
    {**LIMIT, "client_order_id": " padded "}, {**LIMIT, "client_order_id": 12345},
]


def by_serializer(data: Any) -> tuple[str, Any]:
    ser = s.OrderPlaceIn(data=data)
    if ser.is_valid():
        return "ok", dict(ser.validated_data)
    return "error", ser.errors


def by_view(data: Any) -> tuple[str, Any]:
    try:
        return "ok", order_place_in(data)
    except ValidationError as exc:
        return "error", exc.detail


def codes(detail: Any) -> Any:
    """The error detail with each message's code (ErrorDetail compares by text only)."""
    if isinstance(detail, dict):
        return {k: codes(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [codes(v) for v in detail]
    return (str(detail), detail.code)


@pytest.mark.parametrize("data", VALID + INVALID + LEFT_TO_THE_SERIALIZER)
def test_order_place_in_answers_as_the_serializer(eth_usdt, data):
    want, got = by_serializer(data), by_view(data)
    assert got[0] == want[0], (data, got, want)
    if want[0] == "ok":
        assert got[1] == want[1] and list(got[1]) == list(want[1])
        assert {type(v) for k, v in got[1].items() if k != "market"} <= {str, bool}  # decimal strings, never floats
    else:
        assert codes(got[1]) == codes(want[1])


@pytest.mark.parametrize("data", VALID)
def test_plain_valid_placements_skip_the_serializer(eth_usdt, data):
    from markets import selectors

    fast = s.order_place_fast(data, selectors.market_get)
    assert fast is not None and fast == by_serializer(data)[1]


@pytest.mark.parametrize("data", INVALID + LEFT_TO_THE_SERIALIZER)
def test_anything_else_goes_to_the_serializer(eth_usdt, data):
    from markets import selectors

    assert s.order_place_fast(data, selectors.market_get) is None


def test_a_form_body_goes_to_the_serializer(eth_usdt):
    from markets import selectors

    form = QueryDict(mutable=True)
    form.update(LIMIT)
    assert s.order_place_fast(form, selectors.market_get) is None
    assert by_view(form) == by_serializer(form)


@pytest.mark.parametrize("payload,field,code", [
    ({**LIMIT, "price": "1." + "1" * 31}, "price", "invalid"),
    ({**LIMIT, "price": "1" * 41}, "price", "invalid"),
    ({**LIMIT, "price": "1E3"}, "price", "invalid"),
    ({**LIMIT, "price": 2000.5}, "price", "invalid"),
    ({**LIMIT, "price": None}, "price", "null"),
    ({**LIMIT, "amount": "0.0000"}, "amount", "not_positive"),
    ({**LIMIT, "side": None}, "side", "null"),
    ({k: v for k, v in LIMIT.items() if k != "side"}, "side", "required"),
    ({k: v for k, v in LIMIT.items() if k != "market"}, "market", "required"),
    ({**LIMIT, "market": 7}, "market", "invalid"),
    ({**LIMIT, "post_only": "maybe"}, "post_only", "invalid"),
    ({**LIMIT, "client_order_id": "x" * 65}, "client_order_id", "invalid"),
    ({**LIMIT, "quote_amount": "10"}, "quote_amount", "not_allowed"),
    ({**M_BUY, "quote_amount": "1.1234567"}, "quote_amount", "invalid_precision"),
    ({**M_BUY, "time_in_force": "IOC"}, "time_in_force", "not_allowed"),
])
def test_validation_edges_over_http(as_user, alice, eth_usdt, payload, field, code):
    r = as_user(alice).post("/api/v1/orders", payload, format="json")
    assert r.status_code == 400, r.content
    body = r.json()
    assert body["code"] == "validation_error"
    assert code in [e["code"] for e in body["details"][field]], body
