"""matcher.engine.amounts: exact parsing and formatting of decimal amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from matcher.engine.amounts import (
    AmountError,
    format_fee_rate,
    format_units,
    parse_fee_rate,
    parse_units,
)


@pytest.mark.parametrize(
    ("text", "prec", "units"),
    [
        ("1", 6, 1_000_000),
        ("1.5", 6, 1_500_000),
        ("0.000001", 6, 1),
        ("1.500000000", 6, 1_500_000),  # trailing zeros beyond the precision are harmless
        ("2000", 0, 2000),
        ("0.000000000000000001", 18, 1),
        (Decimal("1.25"), 2, 125),
        (Decimal("15E-1"), 1, 15),
        (Decimal("1.500"), 1, 15),
        (Decimal("1E+2"), 0, 100),
        (7, 3, 7000),
    ],
)
def test_parse_units(text: object, prec: int, units: int) -> None:
    assert parse_units(text, prec) == units


@pytest.mark.parametrize(
    ("value", "prec", "reason"),
    [
        ("1.0000001", 6, "invalid_precision"),
        ("0.5", 0, "invalid_precision"),
        (Decimal("0.0000001"), 6, "invalid_precision"),
        ("NaN", 6, "invalid_amount"),
        ("Infinity", 6, "invalid_amount"),
        ("-inf", 6, "invalid_amount"),
        (Decimal("NaN"), 6, "invalid_amount"),
        (Decimal("Infinity"), 6, "invalid_amount"),
        (Decimal("1E+100"), 6, "invalid_amount"),
        (Decimal("1E-1000000"), 6, "invalid_precision"),
        ("1e5", 6, "invalid_amount"),
        ("1E5", 6, "invalid_amount"),
        ("abc", 6, "invalid_amount"),
        ("", 6, "invalid_amount"),
        (" 1", 6, "invalid_amount"),
        ("1 ", 6, "invalid_amount"),
        ("+1", 6, "invalid_amount"),
        (".5", 6, "invalid_amount"),
        ("5.", 6, "invalid_amount"),
        ("1_000", 6, "invalid_amount"),
        ("١", 0, "invalid_amount"),  # Arabic-Indic digit one
        ("0x10", 6, "invalid_amount"),
        ("0", 6, "invalid_amount"),
        ("0.000", 6, "invalid_amount"),
        ("-1", 6, "invalid_amount"),
        ("9" * 41, 0, "invalid_amount"),
        ("1" + "0" * 25, 6, "invalid_amount"),  # > 10**30 minimal units
        ("1" * 10000, 0, "invalid_amount"),
        (1.5, 6, "invalid_argument"),
        (None, 6, "invalid_argument"),
        (True, 6, "invalid_argument"),
        (["1"], 6, "invalid_argument"),
    ],
)
def test_parse_units_rejects(value: object, prec: int, reason: str) -> None:
    with pytest.raises(AmountError) as info:
        parse_units(value, prec)
    assert info.value.reason == reason


def test_zero_and_negative_only_where_allowed() -> None:
    assert parse_units("0", 6, allow_zero=True) == 0
    assert parse_units("-1.5", 6, allow_negative=True) == -1_500_000
    with pytest.raises(AmountError):
        parse_units("0", 6, allow_negative=True)


@pytest.mark.parametrize(
    ("units", "prec", "text"),
    [
        (1_500_000, 6, "1.500000"),
        (1, 6, "0.000001"),
        (0, 6, "0.000000"),
        (-1_500_000, 6, "-1.500000"),
        (-1, 2, "-0.01"),
        (42, 0, "42"),
        (10**30, 18, "1000000000000.000000000000000000"),
    ],
)
def test_format_units(units: int, prec: int, text: str) -> None:
    assert format_units(units, prec) == text
    assert parse_units(text, prec, allow_zero=True, allow_negative=True) == units


def test_fee_rates_are_exact() -> None:
    assert parse_fee_rate("0.001") == 100_000
    assert parse_fee_rate("0.00075") == 75_000
    assert parse_fee_rate("0") == 0
    assert format_fee_rate(75_000) == "0.00075"
    assert format_fee_rate(0) == "0.0"
    for bad, reason in (("1", "invalid_amount"), ("-0.001", "invalid_amount"), ("0.000000001", "invalid_precision")):
        with pytest.raises(AmountError) as info:
            parse_fee_rate(bad)
        assert info.value.reason == reason
