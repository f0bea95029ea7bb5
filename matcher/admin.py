"""Operator tools in the admin: balance adjustments and market operations through the matcher, and their audit trail.

Every action here goes through ``matcher.services`` (the client plus an
``OperatorAction`` row); nothing writes the matcher's tables directly. The
market actions (halt, resume, fee change, load) are offered on the Market
change list (``markets/admin.py``) and lead to a form here that asks for the
reason.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from cryptgo.admin import MatcherOwnedAdmin
from markets.models import Asset, Market
from matcher import services
from matcher.models import DepthOutbox, EventOutbox, MatcherState, OperatorAction, Snapshot

PERMISSION = "matcher.add_operatoraction"


class BalanceAdjustForm(forms.Form):
    user = forms.CharField(help_text="User id or email.")
    asset = forms.ChoiceField(choices=())
    change = forms.CharField(help_text='Signed decimal, e.g. "12.5" to credit or "-3" to debit.')
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Required; kept in the audit trail.")
    adjustment_id = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["asset"].choices = [(a, a) for a in Asset.objects.values_list("symbol", flat=True)]

    def clean_user(self) -> int:
        raw = self.cleaned_data["user"].strip()
        users = get_user_model().objects
        user = users.filter(pk=int(raw)).first() if raw.isdigit() else users.filter(email__iexact=raw).first()
        if user is None:
            raise forms.ValidationError("No such user.")
        return int(user.pk)

    def clean_change(self) -> str:
        raw = self.cleaned_data["change"].strip()
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise forms.ValidationError("Not a decimal number.") from None
        if not value.is_finite() or value == 0 or "e" in raw.lower():
            raise forms.ValidationError("A non-zero plain decimal number.")
        return raw


class MarketOperationForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Required; kept in the audit trail.")
    maker_fee = forms.CharField(required=False, help_text='Fee change only, e.g. "0.001".')
    taker_fee = forms.CharField(required=False, help_text='Fee change only, e.g. "0.002".')


MARKET_OPERATIONS = {
    "halt": ("Halt trading", services.market_halt),
    "resume": ("Resume trading", services.market_resume),
    "fees": ("Change fees", services.market_fees_set),
    "load": ("Load into the matcher", services.market_load),
}


@admin.register(OperatorAction)
class OperatorActionAdmin(admin.ModelAdmin):
    """The audit trail (read-only) and the entry points of the operator tools."""

    list_display = ["time", "operator", "action", "target", "outcome", "reason"]
    list_filter = ["action", "outcome"]
    search_fields = ["target", "reason", "operator__email"]
    ordering = ["-id"]
    date_hierarchy = "time"
    list_select_related = ["operator"]
    change_list_template = "admin/matcher/operatoraction/change_list.html"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("adjust-balance/", wrap(self.adjust_balance_view), name="matcher_adjust_balance"),
            path("market-operation/<str:op>/", wrap(self.market_operation_view), name="matcher_market_operation"),
            *super().get_urls(),
        ]

    def _check(self, request: HttpRequest) -> None:
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied

    def _render(self, request: HttpRequest, title: str, form: forms.Form, extra: dict[str, Any]) -> HttpResponse:
        context = {**self.admin_site.each_context(request), "title": title, "form": form,
                   "opts": self.model._meta, **extra}
        return TemplateResponse(request, "admin/matcher/operator_form.html", context)

    def adjust_balance_view(self, request: HttpRequest) -> HttpResponse:
        self._check(request)
        if request.method == "POST":
            form = BalanceAdjustForm(request.POST)
            if form.is_valid():
                d = form.cleaned_data
                try:
                    row = services.balance_adjust(operator=request.user, user_id=d["user"], asset=d["asset"],
                                                  change=d["change"], reason=d["reason"],
                                                  adjustment_id=d["adjustment_id"])
                    messages.success(request, f"Adjusted {row.target} by {d['change']}: {row.result}")
                except services.OperatorActionFailed as exc:
                    messages.error(request, f"The matcher refused: {exc.action.outcome} "
                                            f"({exc.action.result.get('message', '')})")
                return HttpResponseRedirect(reverse("admin:matcher_operatoraction_changelist"))
        else:
            form = BalanceAdjustForm(initial={"adjustment_id": uuid.uuid4().hex})
        return self._render(request, "Adjust a balance", form, {})

    def market_operation_view(self, request: HttpRequest, op: str) -> HttpResponse:
        self._check(request)
        if op not in MARKET_OPERATIONS:
            raise PermissionDenied
        title, action = MARKET_OPERATIONS[op]
        ids = request.GET.get("ids", "")
        markets = list(Market.objects.filter(pk__in=[int(i) for i in ids.split(",") if i.isdigit()]))
        if request.method == "POST":
            form = MarketOperationForm(request.POST)
            if form.is_valid():
                d = form.cleaned_data
                for m in markets:
                    kwargs: dict[str, Any] = {"operator": request.user, "market": m.name, "reason": d["reason"]}
                    if op == "fees":
                        kwargs.update(maker_fee=d["maker_fee"], taker_fee=d["taker_fee"])
                    try:
                        action(**kwargs)
                        messages.success(request, f"{title}: {m.name} done")
                    except services.OperatorActionFailed as exc:
                        messages.error(request, f"{title}: {m.name} refused: {exc.action.outcome} "
                                                f"({exc.action.result.get('message', '')})")
                return HttpResponseRedirect(reverse("admin:markets_market_changelist"))
        else:
            form = MarketOperationForm()
        return self._render(request, f"{title}: {', '.join(m.name for m in markets) or 'no market selected'}",
                            form, {"fees": op == "fees"})


def _market_action(op: str, description: str) -> Any:
    def action(modeladmin: admin.ModelAdmin[Market], request: HttpRequest, queryset: Any) -> HttpResponse:
        ids = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True))
        return HttpResponseRedirect(reverse("admin:matcher_market_operation", args=[op]) + f"?ids={ids}")

    action.__name__ = f"matcher_{op}"
    action.short_description = description  # type: ignore[attr-defined]
    return action


#: Admin actions for markets.admin.MarketAdmin (each asks for a reason on the next page).
MARKET_ACTIONS = [_market_action(op, f"{title} (matcher)") for op, (title, _) in MARKET_OPERATIONS.items()]
#: Market fields the matcher owns once the market is loaded: change them through the actions above.
MATCHER_MARKET_FIELDS = ["base", "quote", "price_precision", "amount_precision", "min_amount", "min_notional",
                         "maker_fee", "taker_fee", "status"]


@admin.register(MatcherState)
class MatcherStateAdmin(MatcherOwnedAdmin):
    list_display = ["id", "op_seq", "event_seq", "next_order_id", "next_deal_id", "updated_at"]


@admin.register(Snapshot)
class SnapshotAdmin(MatcherOwnedAdmin):
    list_display = ["id", "op_seq", "event_seq", "created_at"]
    exclude = ["state"]  # can be large


@admin.register(EventOutbox)
class EventOutboxAdmin(MatcherOwnedAdmin):
    list_display = ["seq", "last_seq", "delivered", "created_at", "delivered_at"]
    list_filter = ["delivered"]
    search_fields = ["=seq"]


@admin.register(DepthOutbox)
class DepthOutboxAdmin(MatcherOwnedAdmin):
    list_display = ["id", "market", "depth_seq", "delivered", "created_at", "delivered_at"]
    list_filter = ["delivered", "market"]
