"""Tables the matcher owns. Only the matcher's persister writes them (one transaction
per batch); everything else reads. Ids of orders and deals are the engine's ids."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from markets.money import money_field


class Side(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


class OrderType(models.TextChoices):
    LIMIT = "limit", "Limit"
    MARKET = "market", "Market"


class TimeInForce(models.TextChoices):
    GTC = "GTC", "Good till cancelled"
    IOC = "IOC", "Immediate or cancel"
    FOK = "FOK", "Fill or kill"


class OrderStatus(models.TextChoices):
    OPEN = "open", "Open"
    PARTIALLY_FILLED = "partially_filled", "Partially filled"
    FILLED = "filled", "Filled"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"
    SELF_TRADE = "self_trade", "Cancelled by self-trade prevention"


class Balance(models.Model):
    # no single-column indexes: balance_unique_user_asset serves every lookup (docs/matcher.md, indexes)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="balances",
                             db_index=False)
    asset = models.ForeignKey("markets.Asset", on_delete=models.PROTECT, related_name="balances", db_index=False)
    available = money_field(default=0)
    frozen = money_field(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["user_id", "asset_id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "asset"], name="balance_unique_user_asset"),
            models.CheckConstraint(condition=Q(available__gte=0), name="balance_available_non_negative"),
            models.CheckConstraint(condition=Q(frozen__gte=0), name="balance_frozen_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.asset_id}"


class Order(models.Model):
    # The matcher's tables (orders, deals, ledger) have foreign keys without database constraints and only
    # the indexes a query uses: they take thousands of rows per second from one writer, the matcher, whose
    # ids come from its own engine and from tables it loaded (ADR 0006, "Foreign keys and indexes").
    id = models.BigIntegerField(primary_key=True, help_text="The engine's order id.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders",
                             db_constraint=False, db_index=False)
    market = models.ForeignKey("markets.Market", on_delete=models.PROTECT, related_name="orders",
                               db_constraint=False, db_index=False)
    side = models.CharField(max_length=4, choices=Side.choices)
    type = models.CharField(max_length=6, choices=OrderType.choices)
    time_in_force = models.CharField(max_length=3, choices=TimeInForce.choices, default=TimeInForce.GTC)
    post_only = models.BooleanField(default=False)
    price = money_field(null=True, blank=True, help_text="Empty for market orders.")
    amount = money_field(null=True, blank=True, help_text="Base amount; empty for a market buy by quote.")
    quote_amount = money_field(null=True, blank=True, help_text="Quote budget of a market buy.")
    filled_amount = money_field(default=0)
    filled_quote = money_field(default=0)
    fee = money_field(default=0)
    fee_asset = models.ForeignKey("markets.Asset", on_delete=models.PROTECT, related_name="+", null=True,
                                  db_constraint=False, db_index=False)
    status = models.CharField(max_length=16, choices=OrderStatus.choices)
    client_order_id = models.CharField(max_length=64, null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["user", "market", "-id"], name="order_user_market_id"),
            models.Index(fields=["market", "status"], name="order_market_status",
                         condition=Q(status__in=["open", "partially_filled"])),
        ]
        constraints = [
            models.UniqueConstraint(fields=["user", "client_order_id"], condition=Q(client_order_id__isnull=False),
                                    name="order_unique_client_order_id"),
            models.CheckConstraint(condition=Q(filled_amount__gte=0) & Q(filled_quote__gte=0) & Q(fee__gte=0),
                                   name="order_fills_non_negative"),
        ]

    def __str__(self) -> str:
        return f"#{self.id}"


class Deal(models.Model):
    id = models.BigIntegerField(primary_key=True, help_text="The engine's deal id.")
    market = models.ForeignKey("markets.Market", on_delete=models.PROTECT, related_name="deals",
                               db_constraint=False, db_index=False)
    price = money_field()
    amount = money_field()
    quote_amount = money_field()
    maker_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="maker_deals", db_constraint=False)
    taker_order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="taker_deals", db_constraint=False)
    maker_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="maker_deals",
                                   db_constraint=False, db_index=False)
    taker_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="taker_deals",
                                   db_constraint=False, db_index=False)
    maker_fee = money_field()
    taker_fee = money_field()
    taker_side = models.CharField(max_length=4, choices=Side.choices)
    time = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["market", "-id"], name="deal_market_id"),
            models.Index(fields=["maker_user", "-id"], name="deal_maker_user_id"),
            models.Index(fields=["taker_user", "-id"], name="deal_taker_user_id"),
        ]

    def __str__(self) -> str:
        return f"deal #{self.id}"


class BalanceHistory(models.Model):
    """The ledger: one row per change of a user's total (available + frozen) in an asset."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ledger",
                             db_constraint=False, db_index=False)
    asset = models.ForeignKey("markets.Asset", on_delete=models.PROTECT, related_name="ledger",
                              db_constraint=False, db_index=False)
    business = models.CharField(max_length=32)
    business_id = models.CharField(max_length=128)
    change = money_field()
    balance = money_field(help_text="Total (available + frozen) after the change.")
    detail = models.JSONField(default=dict, blank=True)
    seq = models.BigIntegerField(help_text="The engine event sequence number.")
    time = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "balance history"
        indexes = [models.Index(fields=["user", "asset", "-id"], name="ledger_user_asset_id")]
        constraints = [
            models.UniqueConstraint(fields=["user", "asset", "business", "business_id"],
                                    name="ledger_unique_business_id"),
        ]

    def __str__(self) -> str:
        return f"{self.business}:{self.business_id}"


class Operation(models.Model):
    """The operation log: every accepted command, in order; replaying it rebuilds the engine."""

    seq = models.BigIntegerField(primary_key=True)
    time = models.DateTimeField()
    method = models.CharField(max_length=32)
    params = models.JSONField()

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"
