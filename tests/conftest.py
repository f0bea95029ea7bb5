"""Shared fixtures: users alice, bob and mallory, an operator, and the demo listing."""

from decimal import Decimal

import pytest

from tests.factories import AssetFactory, MarketFactory, UserFactory
from tests.matcher.fixtures import matcher, matcher_factory  # noqa: F401 - a real run_matcher for any test


@pytest.fixture
def alice(db):
    return UserFactory(email="alice@example.com")


@pytest.fixture
def bob(db):
    return UserFactory(email="bob@example.com")


@pytest.fixture
def mallory(db):
    return UserFactory(email="mallory@example.com")


@pytest.fixture
def operator(db):
    return UserFactory(email="operator@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def eth(db):
    return AssetFactory(symbol="ETH", name="Ether", decimals=18)


@pytest.fixture
def usdt(db):
    return AssetFactory(symbol="USDT", name="Tether USD", decimals=6)


@pytest.fixture
def eth_usdt(eth, usdt):
    return MarketFactory(base=eth, quote=usdt, price_precision=2, amount_precision=4,
                         min_amount=Decimal("0.001"), min_notional=Decimal("1"))
