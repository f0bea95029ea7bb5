"""Shapes of the public market-data API."""

from __future__ import annotations

from rest_framework import serializers

from cryptgo.api.fields import MoneyOut
from markets.selectors import KLINE_INTERVALS


class AssetOut(serializers.Serializer):
    symbol = serializers.CharField()
    name = serializers.CharField()
    decimals = serializers.IntegerField()
    chain = serializers.CharField()
    contract_address = serializers.CharField()
    deposit_confirmations = serializers.IntegerField()
    min_deposit = MoneyOut()
    withdrawal_fee = MoneyOut()
    min_withdrawal = MoneyOut()
    deposit_enabled = serializers.BooleanField()
    withdrawal_enabled = serializers.BooleanField()


class MarketOut(serializers.Serializer):
    name = serializers.CharField()
    base = serializers.CharField(source="base.symbol")
    quote = serializers.CharField(source="quote.symbol")
    price_precision = serializers.IntegerField()
    amount_precision = serializers.IntegerField()
    min_amount = MoneyOut()
    min_notional = MoneyOut()
    maker_fee = MoneyOut()
    taker_fee = MoneyOut()
    status = serializers.CharField()


#: a depth request's bounds, shared with the plain-query check of ``markets.api.views.fast_depth_query``
DEPTH_LIMIT_MAX = 500
DEPTH_LIMIT_DEFAULT = 20
DEPTH_INTERVAL = r"[0-9]{1,20}(\.[0-9]{1,18})?"  # whole (``fullmatch``)


class DepthQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=DEPTH_LIMIT_MAX, default=DEPTH_LIMIT_DEFAULT)
    interval = serializers.RegexField(f"^{DEPTH_INTERVAL}$", required=False,
                                      help_text="Merge levels into buckets of this price step, e.g. \"10\".")


class DepthOut(serializers.Serializer):
    market = serializers.CharField()
    seq = serializers.IntegerField(help_text="Depth sequence: apply websocket diffs with a higher depth_seq.")
    asks = serializers.ListField(child=serializers.ListField(child=serializers.CharField(), min_length=2,
                                                             max_length=2))
    bids = serializers.ListField(child=serializers.ListField(child=serializers.CharField(), min_length=2,
                                                             max_length=2))


class LimitQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=50)


class DealOut(serializers.Serializer):
    id = serializers.IntegerField()
    price = serializers.CharField()
    amount = serializers.CharField()
    quote_amount = serializers.CharField()
    taker_side = serializers.CharField()
    time = serializers.IntegerField()


class TickerOut(serializers.Serializer):
    market = serializers.CharField()
    open = serializers.CharField()
    high = serializers.CharField()
    low = serializers.CharField()
    last = serializers.CharField()
    volume = serializers.CharField()
    quote_volume = serializers.CharField()
    change = serializers.CharField()
    change_percent = serializers.CharField()
    count = serializers.IntegerField()
    first_id = serializers.IntegerField(allow_null=True)
    last_id = serializers.IntegerField(allow_null=True)
    open_time = serializers.IntegerField()
    close_time = serializers.IntegerField()


class KlineQuery(serializers.Serializer):
    interval = serializers.ChoiceField(choices=list(KLINE_INTERVALS))
    start = serializers.IntegerField(min_value=0, max_value=253402300799999, required=False, help_text="ms")
    end = serializers.IntegerField(min_value=0, max_value=253402300799999, required=False, help_text="ms")
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=500)

    def validate(self, attrs: dict) -> dict:
        if "start" in attrs and "end" in attrs and attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"end": ["Must not be before start."]}, code="invalid")
        return attrs


class KlineOut(serializers.Serializer):
    open_time = serializers.IntegerField()
    close_time = serializers.IntegerField()
    open = serializers.CharField()
    high = serializers.CharField()
    low = serializers.CharField()
    close = serializers.CharField()
    volume = serializers.CharField()
    quote_volume = serializers.CharField()
    trades = serializers.IntegerField()


class TimeOut(serializers.Serializer):
    server_time = serializers.IntegerField(help_text="Milliseconds since the epoch.")
