"""factory_boy factories for the models tests create directly (never matcher-owned tables in app code)."""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from markets.models import Asset, Market


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.django.Password("correct horse battery staple")


class AssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Asset
        django_get_or_create = ("symbol",)

    symbol = factory.Sequence(lambda n: f"TK{n}")
    name = factory.LazyAttribute(lambda o: f"Token {o.symbol}")
    decimals = 18
    deposit_confirmations = 3
    min_deposit = Decimal("0.01")
    withdrawal_fee = Decimal("0.001")
    min_withdrawal = Decimal("0.01")


class MarketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Market
        django_get_or_create = ("name",)

    base = factory.SubFactory(AssetFactory)
    quote = factory.SubFactory(AssetFactory)
    name = factory.LazyAttribute(lambda o: f"{o.base.symbol}_{o.quote.symbol}")
    price_precision = 2
    amount_precision = 4
    min_amount = Decimal("0.001")
    min_notional = Decimal("1")
    maker_fee = Decimal("0.001")
    taker_fee = Decimal("0.002")
