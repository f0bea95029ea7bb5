"""Wallet tables: deposit addresses, deposits, the block-scan cursor, sweeps,
withdrawals and the nonce of every sending address.

Balances are not here: the matcher owns them. These tables record what
happened on chain and where each deposit or withdrawal stands, so that every
credit, debit and refund sent to the matcher has exactly one row (and one
business id) behind it. No private key and no mnemonic is ever stored.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from markets.models import Chain
from markets.money import money_field


class DepositAddress(models.Model):
    """A user's address on a chain: m/44'/60'/0'/0/<index>, derived from the account xpub.

    The index is the user's id (see docs/wallets.md): stable, unique and race-free,
    and index 0 stays the hot wallet's, which is user 0 (the fee account) anyway.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deposit_addresses")
    chain = models.CharField(max_length=16, choices=Chain.choices, default=Chain.ETHEREUM)
    index = models.PositiveIntegerField(help_text="BIP-44 address index under m/44'/60'/0'/0.")
    address = models.CharField(max_length=42, help_text="EIP-55 checksummed.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "deposit addresses"
        constraints = [
            models.UniqueConstraint(fields=["user", "chain"], name="depositaddress_unique_user_chain"),
            models.UniqueConstraint(fields=["chain", "index"], name="depositaddress_unique_chain_index"),
            models.UniqueConstraint(fields=["chain", "address"], name="depositaddress_unique_chain_address"),
            models.CheckConstraint(condition=Q(index__gte=1), name="depositaddress_index_not_hot_wallet"),
        ]

    def __str__(self) -> str:
        return self.address


class DepositStatus(models.TextChoices):
    PENDING = "pending", "Waiting for confirmations"
    CONFIRMED = "confirmed", "Confirmed, credit in flight"
    CREDITED = "credited", "Credited"
    ORPHANED = "orphaned", "Orphaned by a reorg (never credited)"
    BELOW_MINIMUM = "below_minimum", "Below the minimum (recorded, not credited)"


class Deposit(models.Model):
    """One transfer into a deposit address.

    ``log_index`` is the ERC-20 ``Transfer`` log's index in its block; native
    ether has no log, so its transfers use negative numbers: -1 for the value
    of the transaction itself and -(k+1) for the k-th call frame (depth-first)
    of the transaction's trace. The pair (tx_hash, log_index) is also the
    matcher's business id, so a transfer is credited at most once.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deposits")
    asset = models.ForeignKey("markets.Asset", on_delete=models.PROTECT, related_name="deposits")
    address = models.ForeignKey(DepositAddress, on_delete=models.PROTECT, related_name="deposits")
    tx_hash = models.CharField(max_length=66)
    log_index = models.IntegerField()
    block_number = models.BigIntegerField()
    block_hash = models.CharField(max_length=66)
    from_address = models.CharField(max_length=42)
    amount = money_field()
    status = models.CharField(max_length=16, choices=DepositStatus.choices, default=DepositStatus.PENDING,
                              db_index=True)
    confirmations = models.PositiveIntegerField(default=0)
    reorged_after_credit = models.BooleanField(
        default=False, help_text="Its block left the canonical chain after it was credited: an operator must act.")
    sweep = models.ForeignKey("Sweep", on_delete=models.SET_NULL, null=True, blank=True, related_name="deposits")
    credited_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["tx_hash", "log_index"], name="deposit_unique_tx_log"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="deposit_amount_positive"),
        ]
        indexes = [models.Index(fields=["user", "-id"], name="deposit_user_id")]

    @property
    def business_id(self) -> str:
        return f"{self.tx_hash}:{self.log_index}"

    def __str__(self) -> str:
        return f"{self.amount} {self.asset_id} {self.business_id}"


class ScanCursor(models.Model):
    """How far the block scanner got on a chain, and a lease so only one scanner runs."""

    chain = models.CharField(max_length=16, choices=Chain.choices, unique=True)
    block_number = models.BigIntegerField(help_text="Last block fully scanned.")
    block_hash = models.CharField(max_length=66)
    genesis_hash = models.CharField(max_length=66, blank=True, default="")
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.chain}@{self.block_number}"


class ScannedBlock(models.Model):
    """Recent blocks as the scanner saw them; a parent hash that no longer matches means a reorg."""

    chain = models.CharField(max_length=16, choices=Chain.choices)
    number = models.BigIntegerField()
    hash = models.CharField(max_length=66)
    parent_hash = models.CharField(max_length=66)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["chain", "number"], name="scannedblock_unique_chain_number")]

    def __str__(self) -> str:
        return f"{self.number} {self.hash[:10]}"


class AssetPolicy(models.Model):
    """Wallet limits per asset that the listing (markets.Asset) does not carry. Empty means no limit."""

    asset = models.OneToOneField("markets.Asset", on_delete=models.CASCADE, related_name="wallet_policy")
    sweep_threshold = money_field(default=0, help_text="Sweep a deposit address once it holds at least this.")
    max_withdrawal = money_field(null=True, blank=True, help_text="Largest single withdrawal; empty: no maximum.")
    daily_withdrawal_limit = money_field(null=True, blank=True,
                                         help_text="Per user, last 24 hours, amounts without fee; empty: none.")
    auto_approve_below = money_field(default=0, help_text="Withdrawals below this are approved without an operator.")

    class Meta:
        verbose_name_plural = "asset policies"
        constraints = [
            models.CheckConstraint(condition=Q(sweep_threshold__gte=0) & Q(auto_approve_below__gte=0),
                                   name="assetpolicy_non_negative"),
        ]

    def __str__(self) -> str:
        return f"policy {self.asset_id}"


class SweepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    GAS_SENT = "gas_sent", "Gas top-up sent"
    SIGNED = "signed", "Signed"
    BROADCAST = "broadcast", "Broadcast"
    CONFIRMED = "confirmed", "Confirmed"
    FAILED = "failed", "Failed"


SWEEP_ACTIVE = [SweepStatus.PENDING, SweepStatus.GAS_SENT, SweepStatus.SIGNED, SweepStatus.BROADCAST]


class Sweep(models.Model):
    """Moving one asset's balance from a deposit address to the hot wallet."""

    address = models.ForeignKey(DepositAddress, on_delete=models.PROTECT, related_name="sweeps")
    asset = models.ForeignKey("markets.Asset", on_delete=models.PROTECT, related_name="sweeps")
    amount = money_field(default=0)
    status = models.CharField(max_length=16, choices=SweepStatus.choices, default=SweepStatus.PENDING,
                              db_index=True)
    gas_topup_amount = money_field(default=0, help_text="ETH the hot wallet sent first to pay a token sweep's gas.")
    gas_topup_tx_hash = models.CharField(max_length=66, blank=True, default="")
    gas_topup_raw_tx = models.TextField(blank=True, default="")
    gas_price = models.DecimalField(max_digits=78, decimal_places=0, null=True, blank=True,
                                    help_text="Wei per gas, fixed when the sweep is planned (the top-up pays for it).")
    nonce = models.BigIntegerField(null=True, blank=True)
    raw_tx = models.TextField(blank=True, default="")
    tx_hash = models.CharField(max_length=66, blank=True, default="")
    block_number = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # One sweep in flight per address: a token sweep and an ether sweep from the same
            # address would race for its nonce and for the gas the top-up paid for.
            models.UniqueConstraint(fields=["address"], condition=Q(status__in=SWEEP_ACTIVE),
                                    name="sweep_one_active_per_address"),
        ]

    def __str__(self) -> str:
        return f"sweep #{self.pk} {self.amount} {self.asset_id}"


class WithdrawalStatus(models.TextChoices):
    PENDING_DEBIT = "pending_debit", "Debit in flight"
    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved"
    SIGNED = "signed", "Signed"
    BROADCAST = "broadcast", "Broadcast"
    CONFIRMED = "confirmed", "Confirmed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


#: Withdrawals whose debit stands and whose money has not left (or has, but is not final).
WITHDRAWAL_IN_FLIGHT = [WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED, WithdrawalStatus.SIGNED,
                        WithdrawalStatus.BROADCAST]
#: Ends that give the money back: the refund is owed exactly once.
WITHDRAWAL_REFUNDABLE = [WithdrawalStatus.REJECTED, WithdrawalStatus.CANCELLED, WithdrawalStatus.FAILED]


class Withdrawal(models.Model):
    """A user's withdrawal; amount + fee is debited in the matcher with business ("withdraw", str(id))."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="withdrawals")
    asset = models.ForeignKey("markets.Asset", on_delete=models.PROTECT, related_name="withdrawals")
    address = models.CharField(max_length=42, help_text="Destination, EIP-55 checksummed.")
    amount = money_field(help_text="What the destination receives.")
    fee = money_field(default=0, help_text="The asset's withdrawal fee at request time, kept by the exchange.")
    status = models.CharField(max_length=16, choices=WithdrawalStatus.choices, db_index=True)
    client_request_id = models.CharField(max_length=64, null=True, blank=True)
    debited = models.BooleanField(default=False)
    refunded_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    from_address = models.CharField(max_length=42, blank=True, default="")
    nonce = models.BigIntegerField(null=True, blank=True)
    raw_tx = models.TextField(blank=True, default="")
    tx_hash = models.CharField(max_length=66, blank=True, default="")
    block_number = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "-id"], name="withdrawal_user_id")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0) & Q(fee__gte=0), name="withdrawal_amounts_valid"),
            models.UniqueConstraint(fields=["user", "client_request_id"], condition=Q(client_request_id__isnull=False),
                                    name="withdrawal_unique_client_request_id"),
            models.UniqueConstraint(fields=["from_address", "nonce"], condition=Q(nonce__isnull=False),
                                    name="withdrawal_unique_sender_nonce"),
        ]

    @property
    def business_id(self) -> str:
        return str(self.pk)

    def __str__(self) -> str:
        return f"withdrawal #{self.pk} {self.amount} {self.asset_id}"


class WithdrawalEvent(models.Model):
    """The audit trail: every state change of a withdrawal, who made it, and why."""

    withdrawal = models.ForeignKey(Withdrawal, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                              related_name="+", help_text="Empty for the system (Celery).")
    action = models.CharField(max_length=32)
    from_status = models.CharField(max_length=16, blank=True, default="")
    to_status = models.CharField(max_length=16, blank=True, default="")
    note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.action} {self.from_status}->{self.to_status}"


class Nonce(models.Model):
    """The next nonce of an address we send from. Claimed with one conditional UPDATE, never reused."""

    chain = models.CharField(max_length=16, choices=Chain.choices, default=Chain.ETHEREUM)
    address = models.CharField(max_length=42)
    next_nonce = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain", "address"], name="nonce_unique_chain_address"),
            models.CheckConstraint(condition=Q(next_nonce__gte=0), name="nonce_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.address}#{self.next_nonce}"
