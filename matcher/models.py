"""Tables of the matcher service itself (the engine's persisted side lives in ``trading``).

Only the matcher writes ``MatcherState``, ``Snapshot``, ``EventOutbox``, ``DepthOutbox`` and
``OrderStp``, in the same transaction as the batch they describe; the admin
writes ``OperatorAction`` (the audit trail of operator calls to the matcher).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class MatcherState(models.Model):
    """One row (id 1): the counters and the market configuration as of the last committed batch.

    Start-up restores the engine from this row plus the balances and open orders in ``trading``.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    op_seq = models.BigIntegerField(default=0, help_text="Last operation log seq.")
    event_seq = models.BigIntegerField(default=0, help_text="Last engine event seq.")
    next_order_id = models.BigIntegerField(default=1)
    next_deal_id = models.BigIntegerField(default=1)
    last_time = models.BigIntegerField(default=0, help_text="Time (ms) of the last batch.")
    config = models.JSONField(default=dict, help_text="Engine assets and markets (Engine.snapshot() form).")
    depth_seqs = models.JSONField(default=dict, help_text="market -> last depth_seq.")
    updated_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="matcherstate_single_row")]

    def __str__(self) -> str:
        return f"op {self.op_seq} / event {self.event_seq}"


class Snapshot(models.Model):
    """The whole engine state after operation ``op_seq``; ``replay_oplog`` may start from one."""

    op_seq = models.BigIntegerField(db_index=True)
    event_seq = models.BigIntegerField()
    created_at = models.DateTimeField()
    state = models.JSONField()

    class Meta:
        ordering = ["-op_seq"]

    def __str__(self) -> str:
        return f"snapshot after op {self.op_seq}"


class EventOutbox(models.Model):
    """The Kafka messages of the engine's events, committed with their batch, delivered by the outbox relay.

    One row holds a run of consecutive events (``seq`` .. ``last_seq``), one message per line:
    ``topic<TAB>key<TAB>message JSON``. Text, not jsonb, and a row per run rather than per event:
    PostgreSQL neither parses nor indexes each message, which made the outbox the cheapest part of
    a commit instead of the dearest (docs/adr/0006).
    """

    seq = models.BigIntegerField(primary_key=True, help_text="Event seq of the first message.")
    last_seq = models.BigIntegerField(help_text="Event seq of the last message.")
    payload = models.TextField()
    delivered = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-seq"]
        verbose_name_plural = "event outbox"
        indexes = [models.Index(fields=["seq"], name="eventoutbox_undelivered", condition=Q(delivered=False))]

    def __str__(self) -> str:
        return f"events {self.seq}-{self.last_seq}"


class DepthOutbox(models.Model):
    """Depth diff messages, committed with their batch and delivered to Kafka like the event outbox.

    A table of their own because the event outbox is keyed by the engine's event sequence,
    which depth messages (one per market per batch) are not part of (docs/adr/0006).
    """

    id = models.BigAutoField(primary_key=True)
    market = models.CharField(max_length=33)
    depth_seq = models.BigIntegerField()
    payload = models.JSONField()
    delivered = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "depth outbox"
        indexes = [models.Index(fields=["id"], name="depthoutbox_undelivered", condition=Q(delivered=False))]
        constraints = [models.UniqueConstraint(fields=["market", "depth_seq"], name="depthoutbox_unique_seq")]

    def __str__(self) -> str:
        return f"{self.market} #{self.depth_seq}"


class OrderStp(models.Model):
    """Self-trade prevention mode of orders placed with a non-default one (``trading.Order`` has no column)."""

    order_id = models.BigIntegerField(primary_key=True)
    stp = models.CharField(max_length=16)

    def __str__(self) -> str:
        return f"#{self.order_id} {self.stp}"


class OperatorAction(models.Model):
    """Audit trail: every operator call to the matcher made from the admin, refused or not."""

    class Action(models.TextChoices):
        BALANCE_ADJUST = "balance_adjust", "Balance adjustment"
        HALT = "halt", "Halt market"
        RESUME = "resume", "Resume market"
        SET_FEES = "set_fees", "Fee change"
        LOAD_ASSET = "load_asset", "Load asset"
        LOAD_MARKET = "load_market", "Load market"

    time = models.DateTimeField(auto_now_add=True, db_index=True)
    operator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=16, choices=Action.choices)
    target = models.CharField(max_length=64, help_text="Market, asset, or user:asset.")
    params = models.JSONField(default=dict)
    reason = models.TextField()
    outcome = models.CharField(max_length=64, help_text='"ok" or the matcher\'s reason code.')
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.target}: {self.outcome}"
