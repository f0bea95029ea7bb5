"""Assets and markets: the listing an operator edits, which the matcher loads."""

from django.db import models
from django.db.models import F, Q

from markets.money import money_field, rate_field


class Chain(models.TextChoices):
    ETHEREUM = "ethereum", "Ethereum"


class Asset(models.Model):
    symbol = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=64)
    decimals = models.PositiveSmallIntegerField(help_text="On-chain decimals; also the engine's precision.")
    chain = models.CharField(max_length=16, choices=Chain.choices, default=Chain.ETHEREUM)
    contract_address = models.CharField(max_length=42, blank=True, default="",
                                        help_text="ERC-20 contract; empty for the chain's native coin.")
    deposit_confirmations = models.PositiveIntegerField(default=12)
    min_deposit = money_field(default=0)
    withdrawal_fee = money_field(default=0)
    min_withdrawal = money_field(default=0)
    deposit_enabled = models.BooleanField(default=True)
    withdrawal_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(condition=Q(decimals__lte=18), name="asset_decimals_max_18"),
            models.CheckConstraint(condition=Q(min_deposit__gte=0) & Q(withdrawal_fee__gte=0)
                                   & Q(min_withdrawal__gte=0), name="asset_limits_non_negative"),
            models.UniqueConstraint(fields=["chain", "contract_address"], condition=~Q(contract_address=""),
                                    name="asset_unique_contract_per_chain"),
        ]

    def __str__(self) -> str:
        return self.symbol


class MarketStatus(models.TextChoices):
    TRADING = "trading", "Trading"
    HALTED = "halted", "Halted"


class Market(models.Model):
    name = models.CharField(max_length=33, unique=True, help_text="BASE_QUOTE, e.g. ETH_USDT.")
    base = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="base_markets")
    quote = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="quote_markets")
    price_precision = models.PositiveSmallIntegerField()
    amount_precision = models.PositiveSmallIntegerField()
    min_amount = money_field()
    min_notional = money_field()
    maker_fee = rate_field(default=0)
    taker_fee = rate_field(default=0)
    status = models.CharField(max_length=8, choices=MarketStatus.choices, default=MarketStatus.TRADING)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~Q(base=F("quote")), name="market_base_differs_from_quote"),
            models.UniqueConstraint(fields=["base", "quote"], name="market_unique_pair"),
            models.CheckConstraint(condition=Q(maker_fee__gte=0) & Q(maker_fee__lt=1)
                                   & Q(taker_fee__gte=0) & Q(taker_fee__lt=1), name="market_fee_range"),
            models.CheckConstraint(condition=Q(min_amount__gte=0) & Q(min_notional__gte=0),
                                   name="market_minimums_non_negative"),
        ]

    def __str__(self) -> str:
        return self.name
