"""Matcher tests: the fixtures live in tests/matcher/fixtures.py (imported by tests/conftest.py)."""

import pytest

from tests.factories import UserFactory


@pytest.fixture
def funded(matcher, alice, bob):
    """alice holds 100000 USDT, bob 100 ETH, credited through the matcher."""
    c = matcher.client
    c.update_balance(alice.id, "USDT", "deposit", "alice-usdt", "100000")
    c.update_balance(bob.id, "ETH", "deposit", "bob-eth", "100")
    return alice, bob


def make_users(n: int, prefix: str = "trader") -> list[int]:
    return [UserFactory(email=f"{prefix}{i}@example.com").id for i in range(n)]
