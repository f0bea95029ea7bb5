"""Conversion between decimal amounts and integers in minimal units.

This is the only place where the engine turns text (or ``decimal.Decimal``)
into integers and back. Parsing is exact: a value with more decimals than the
precision allows is refused with ``invalid_precision`` and never rounded;
NaN, Infinity, exponent notation in strings, signs where none are allowed,
zero where it is not allowed and absurdly large values are refused with
``invalid_amount``; a value of the wrong type is refused with
``invalid_argument``. Formatting always prints exactly ``prec`` decimals and
never uses exponent notation (``format_units(1500000, 6) == "1.500000"``).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

from matcher.engine.reasons import INVALID_AMOUNT, INVALID_ARGUMENT, INVALID_PRECISION

#: Largest absolute value accepted, in minimal units.
MAX_UNITS: Final = 10**30
#: Most significant digits (integer part + fraction) accepted in a string.
MAX_DIGITS: Final = 40
#: Fee rates are integers over this denominator (8 decimals: "0.00075" -> 75000).
FEE_DENOMINATOR: Final = 10**8
FEE_PREC: Final = 8

# Plain decimal notation only: optional minus, digits, optional fraction.
# No exponent, no leading '+', no '.5', no '5.', no whitespace, no '_'.
# ASCII only: \d would also accept other Unicode digits.
_DECIMAL_RE = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


class AmountError(ValueError):
    """A value that cannot be converted; ``reason`` is an engine reason code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def parse_units(
    value: object,
    prec: int,
    *,
    allow_zero: bool = False,
    allow_negative: bool = False,
) -> int:
    """Convert a decimal string, ``Decimal`` or ``int`` to minimal units.

    ``prec`` is the number of decimals the unit has (18 for wei of ETH,
    6 for USDT, a market's price precision for prices). Raises
    ``AmountError`` with a reason code; never rounds.
    """
    if isinstance(value, str):
        units = _parse_str(value, prec)
    elif isinstance(value, Decimal):
        units = _parse_decimal(value, prec)
    elif isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > MAX_UNITS:
            raise AmountError(INVALID_AMOUNT, "amount too large")
        units = value * int(10**prec)
    else:
        raise AmountError(INVALID_ARGUMENT, f"expected a decimal string, got {type(value).__name__}")
    if abs(units) > MAX_UNITS:
        raise AmountError(INVALID_AMOUNT, "amount too large")
    if units == 0 and not allow_zero:
        raise AmountError(INVALID_AMOUNT, "amount must not be zero")
    if units < 0 and not allow_negative:
        raise AmountError(INVALID_AMOUNT, "amount must be positive")
    return units


def _parse_str(text: str, prec: int) -> int:
    # Length check first: cheap, and keeps int() far from its digit limit.
    if len(text) > MAX_DIGITS + 2:
        raise AmountError(INVALID_AMOUNT, "too many digits")
    m = _DECIMAL_RE.fullmatch(text)
    if m is None:
        raise AmountError(INVALID_AMOUNT, f"not a plain decimal number: {text!r}")
    sign, whole, frac = m.groups()
    if frac is None:
        frac = ""
    if len(whole) + len(frac) > MAX_DIGITS:
        raise AmountError(INVALID_AMOUNT, "too many digits")
    if len(frac) > prec:
        # Trailing zeros beyond the precision change nothing: accept them.
        if frac[prec:].strip("0"):
            raise AmountError(INVALID_PRECISION, f"more than {prec} decimals")
        frac = frac[:prec]
    units = int(whole + frac.ljust(prec, "0"))
    return -units if sign else units


def _parse_decimal(value: Decimal, prec: int) -> int:
    if not value.is_finite():
        raise AmountError(INVALID_AMOUNT, "NaN or Infinity")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    # Strip trailing zeros so that Decimal("1.500") and Decimal("15E-1") agree.
    while len(digits) > 1 and digits[-1] == 0 and exponent < 0:
        digits = digits[:-1]
        exponent += 1
    if len(digits) > MAX_DIGITS or exponent > MAX_DIGITS:
        raise AmountError(INVALID_AMOUNT, "too many digits")
    if -exponent > prec:
        if any(digits):
            raise AmountError(INVALID_PRECISION, f"more than {prec} decimals")
        return 0
    coefficient = 0
    for d in digits:
        coefficient = coefficient * 10 + d
    units = coefficient * int(10 ** (exponent + prec))
    return -units if sign else units


_ZEROS: dict[int, str] = {}


def format_units(units: int, prec: int) -> str:
    """Format minimal units as a plain decimal string with exactly ``prec`` decimals.

    The matcher formats ~20 amounts per command (replies, Kafka messages, rows), most of them
    positive or zero: those take the short paths.
    """
    if units > 0 and prec:
        digits = str(units)
        if len(digits) > prec:
            return f"{digits[:-prec]}.{digits[-prec:]}"
        return "0." + digits.rjust(prec, "0")
    if not units:
        zero = _ZEROS.get(prec)
        if zero is None:
            zero = _ZEROS[prec] = "0." + "0" * prec if prec else "0"
        return zero
    if prec == 0:
        return str(units)
    digits = str(-units).rjust(prec + 1, "0")
    return f"-{digits[:-prec]}.{digits[-prec:]}"


def to_decimal(units: int, prec: int) -> Decimal:
    """Exact ``Decimal`` for minimal units (``Decimal(150, -2)`` style, no context rounding)."""
    return Decimal(format_units(units, prec))


def parse_fee_rate(value: object) -> int:
    """Parse a fee rate such as ``"0.001"`` into a numerator over ``FEE_DENOMINATOR``.

    Accepted range is 0 <= rate < 1 with at most 8 decimals.
    """
    rate = parse_units(value, FEE_PREC, allow_zero=True)
    if rate >= FEE_DENOMINATOR:
        raise AmountError(INVALID_AMOUNT, "fee rate must be below 1")
    return rate


def format_fee_rate(rate: int) -> str:
    """Format a fee numerator back to a decimal string, trailing zeros trimmed."""
    text = format_units(rate, FEE_PREC).rstrip("0")
    return text + "0" if text.endswith(".") else text
