"""Operators see every table the matcher owns, read-only: changes go through the matcher."""

from django.contrib import admin

from cryptgo.admin import MatcherOwnedAdmin
from trading.models import Balance, BalanceHistory, Deal, Operation, Order


@admin.register(Balance)
class BalanceAdmin(MatcherOwnedAdmin):
    list_display = ["user", "asset", "available", "frozen", "updated_at"]
    list_filter = ["asset"]
    search_fields = ["user__email"]
    ordering = ["user_id", "asset__symbol"]
    list_select_related = ["user", "asset"]


@admin.register(Order)
class OrderAdmin(MatcherOwnedAdmin):
    list_display = ["id", "user", "market", "side", "type", "time_in_force", "price", "amount", "filled_amount",
                    "status", "client_order_id", "created_at"]
    list_filter = ["status", "market", "side", "type", "time_in_force", "post_only"]
    search_fields = ["=id", "user__email", "client_order_id"]
    ordering = ["-id"]
    date_hierarchy = "created_at"
    list_select_related = ["user", "market"]


@admin.register(Deal)
class DealAdmin(MatcherOwnedAdmin):
    list_display = ["id", "market", "price", "amount", "quote_amount", "taker_side", "maker_user", "taker_user",
                    "maker_fee", "taker_fee", "time"]
    list_filter = ["market", "taker_side"]
    search_fields = ["=id", "=maker_order__id", "=taker_order__id", "maker_user__email", "taker_user__email"]
    ordering = ["-id"]
    date_hierarchy = "time"
    list_select_related = ["market", "maker_user", "taker_user"]


@admin.register(BalanceHistory)
class BalanceHistoryAdmin(MatcherOwnedAdmin):
    list_display = ["id", "time", "user", "asset", "business", "business_id", "change", "balance"]
    list_filter = ["business", "asset"]
    search_fields = ["user__email", "business_id"]
    ordering = ["-id"]
    date_hierarchy = "time"
    list_select_related = ["user", "asset"]


@admin.register(Operation)
class OperationAdmin(MatcherOwnedAdmin):
    list_display = ["seq", "time", "method"]
    list_filter = ["method"]
    search_fields = ["=seq"]
    ordering = ["-seq"]
    date_hierarchy = "time"
