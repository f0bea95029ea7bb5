from django.contrib import admin

from markets.models import Asset, Market
from matcher.admin import MARKET_ACTIONS, MATCHER_MARKET_FIELDS


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["symbol", "name", "decimals", "chain", "contract_address", "deposit_confirmations",
                    "min_deposit", "withdrawal_fee", "min_withdrawal", "deposit_enabled", "withdrawal_enabled"]
    list_filter = ["chain", "deposit_enabled", "withdrawal_enabled"]
    search_fields = ["symbol", "name", "contract_address"]
    ordering = ["symbol"]


@admin.register(Market)
class MarketAdmin(admin.ModelAdmin):
    list_display = ["name", "base", "quote", "price_precision", "amount_precision", "min_amount", "min_notional",
                    "maker_fee", "taker_fee", "status"]
    list_filter = ["status", "quote"]
    search_fields = ["name", "base__symbol", "quote__symbol"]
    ordering = ["name"]
    list_select_related = ["base", "quote"]
    actions = MARKET_ACTIONS  # halt / resume / fee change / load: through the matcher, audited

    def get_readonly_fields(self, request, obj=None):
        # once created, what the matcher uses changes only through the actions above
        return MATCHER_MARKET_FIELDS if obj is not None else []
