"""Serializer fields for money: decimal strings in and out, never floats, never rounded."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

_PLAIN = re.compile(r"[0-9]{1,40}(\.[0-9]{1,30})?")


def plain_decimal(value: Any) -> Decimal | None:
    """``value`` as a Decimal if it is a plain decimal string (up to 40 digits, a point and up to 30
    decimals; no sign, exponent or space), else None. ``DecimalString`` and the order fast check share it."""
    if not isinstance(value, str) or not _PLAIN.fullmatch(value):
        return None
    return Decimal(value)


@extend_schema_field({"type": "string", "pattern": r"^[0-9]{1,40}(\.[0-9]{1,30})?$", "example": "1.25"})
class DecimalString(serializers.Field):
    """A positive plain decimal given as a JSON string ("1.25"); numbers, exponents, NaN are refused.

    JSON numbers are refused because a client's float may already have lost
    digits before we see it. Precision against the market is checked by the
    matcher (``invalid_precision``), which never rounds.
    """

    default_error_messages = {
        "invalid": "Must be a decimal string such as \"1.25\" (no exponent, no sign).",
        "not_positive": "Must be greater than zero.",
    }

    def to_internal_value(self, data: Any) -> str:
        value = plain_decimal(data)
        if value is None:
            self.fail("invalid")
        elif value <= 0:
            self.fail("not_positive")
        return data

    def to_representation(self, value: Any) -> str:
        return format_decimal(value)


def format_decimal(value: Any) -> str:
    """A Decimal or decimal string as a plain string with no exponent and no trailing zeros."""
    if value is None:
        return ""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


@extend_schema_field(OpenApiTypes.STR)
class MoneyOut(serializers.Field):
    """Read-only money: a plain decimal string, trailing zeros removed ("1000", "0.5")."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> str | None:
        return None if value is None else format_decimal(value)
