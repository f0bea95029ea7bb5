"""Operators' view of the wallets: deposits, withdrawals (approve / reject, audited), sweeps, solvency.

Wallet rows change only through ``wallets.services``; the admin never edits a
status by hand. Approve and reject record a ``WithdrawalEvent`` with the
operator and a Django admin log entry.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from wallets import selectors, services
from wallets.models import (
    AssetPolicy,
    Deposit,
    DepositAddress,
    Nonce,
    ScanCursor,
    Sweep,
    Withdrawal,
    WithdrawalEvent,
    WithdrawalStatus,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DepositAddress)
class DepositAddressAdmin(ReadOnlyAdmin):
    list_display = ["address", "user", "chain", "index", "created_at"]
    search_fields = ["address", "user__email"]
    list_select_related = ["user"]


@admin.register(Deposit)
class DepositAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "asset", "amount", "status", "confirmations", "reorged_after_credit",
                    "block_number", "tx_hash", "log_index", "created_at", "credited_at"]
    list_filter = ["status", "asset", "reorged_after_credit"]
    search_fields = ["tx_hash", "user__email", "address__address", "from_address"]
    list_select_related = ["user", "asset"]
    date_hierarchy = "created_at"


@admin.register(Sweep)
class SweepAdmin(ReadOnlyAdmin):
    list_display = ["id", "address", "asset", "amount", "status", "gas_topup_amount", "tx_hash", "nonce", "error",
                    "created_at"]
    list_filter = ["status", "asset"]
    search_fields = ["tx_hash", "address__address"]
    list_select_related = ["address", "asset"]


class WithdrawalEventInline(admin.TabularInline):
    model = WithdrawalEvent
    extra = 0
    can_delete = False
    readonly_fields = ["created_at", "action", "from_status", "to_status", "actor", "note"]
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "asset", "amount", "fee", "address", "status", "approved_by", "tx_hash", "nonce",
                    "refunded_at", "created_at"]
    list_filter = ["status", "asset"]
    search_fields = ["=id", "user__email", "address", "tx_hash"]
    list_select_related = ["user", "asset", "approved_by"]
    date_hierarchy = "created_at"
    inlines = [WithdrawalEventInline]
    actions = ["approve", "reject"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Needed for the actions to show; every field stays read-only.
        return bool(request.user.has_perm("wallets.change_withdrawal"))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def _log(self, request: HttpRequest, w: Withdrawal, message: str) -> None:
        LogEntry.objects.log_actions(user_id=request.user.pk, queryset=[w], action_flag=CHANGE,
                                     change_message=message, single_object=True)

    @admin.action(description="Approve selected withdrawals (requested only)")
    def approve(self, request: HttpRequest, queryset: QuerySet[Withdrawal]) -> None:
        done = 0
        for w in queryset.order_by("id"):
            if services.withdrawal_approve(withdrawal_id=w.pk, operator=request.user):
                self._log(request, w, "approved")
                done += 1
        skipped = queryset.count() - done
        self.message_user(request, f"Approved {done} withdrawal(s); {skipped} skipped (not in state requested).",
                          messages.SUCCESS if done else messages.WARNING)

    @admin.action(description="Reject selected withdrawals and refund them")
    def reject(self, request: HttpRequest, queryset: QuerySet[Withdrawal]) -> None:
        done = 0
        for w in queryset.order_by("id"):
            if services.withdrawal_reject(withdrawal_id=w.pk, operator=request.user, note="rejected in admin"):
                self._log(request, w, "rejected and refunded")
                done += 1
        skipped = queryset.count() - done
        self.message_user(request, f"Rejected {done} withdrawal(s); {skipped} skipped (already signed or final).",
                          messages.SUCCESS if done else messages.WARNING)

    def get_urls(self) -> list[URLPattern]:
        extra = [path("solvency/", self.admin_site.admin_view(self.solvency_view), name="wallets_solvency")]
        return extra + super().get_urls()

    def solvency_view(self, request: HttpRequest) -> HttpResponse:
        rows = selectors.solvency(settings.WALLET_NATIVE_ASSET)
        context = {**self.admin_site.each_context(request), "title": "Solvency per asset", "rows": rows,
                   "pending": Withdrawal.objects.filter(status=WithdrawalStatus.REQUESTED).count(),
                   "reorged": Deposit.objects.filter(reorged_after_credit=True).count()}
        return TemplateResponse(request, "admin/wallets/solvency.html", context)


@admin.register(AssetPolicy)
class AssetPolicyAdmin(admin.ModelAdmin):
    list_display = ["asset", "sweep_threshold", "max_withdrawal", "daily_withdrawal_limit", "auto_approve_below"]


@admin.register(Nonce)
class NonceAdmin(ReadOnlyAdmin):
    list_display = ["address", "chain", "next_nonce", "updated_at"]


@admin.register(ScanCursor)
class ScanCursorAdmin(ReadOnlyAdmin):
    list_display = ["chain", "block_number", "block_hash", "lease_until", "updated_at"]
