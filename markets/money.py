"""Column shapes for money, shared by every app so no table is narrower than another.

NUMERIC(78, 18): 18 decimal places hold an ERC-20 token's smallest unit, and 60
integer digits hold any uint256 supply (2**256 < 10**78). See docs/adr/0001.
"""

from django.db import models

MONEY_DIGITS = 78
MONEY_PLACES = 18
RATE_DIGITS = 10
RATE_PLACES = 8


def money_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, **kwargs)


def rate_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=RATE_DIGITS, decimal_places=RATE_PLACES, **kwargs)
