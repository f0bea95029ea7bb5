"""Wallet API shapes: separate input and output serializers, amounts as decimal strings."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from cryptgo.api.fields import DecimalString, format_decimal


class DepositAddressOut(serializers.Serializer):
    chain = serializers.CharField()
    address = serializers.CharField()


class DepositOut(serializers.Serializer):
    id = serializers.IntegerField()
    asset = serializers.CharField(source="asset.symbol")
    amount = serializers.SerializerMethodField()
    tx_hash = serializers.CharField()
    log_index = serializers.IntegerField()
    block_number = serializers.IntegerField()
    confirmations = serializers.IntegerField()
    required_confirmations = serializers.IntegerField(source="asset.deposit_confirmations")
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    credited_at = serializers.DateTimeField(allow_null=True)

    def get_amount(self, obj: Any) -> str:
        return format_decimal(obj.amount)


class WithdrawalIn(serializers.Serializer):
    asset = serializers.CharField(max_length=16)
    address = serializers.CharField(max_length=64)
    amount = DecimalString()
    totp_code = serializers.CharField(max_length=16, required=False, allow_blank=True)
    client_request_id = serializers.CharField(max_length=64, required=False)


class WithdrawalOut(serializers.Serializer):
    id = serializers.IntegerField()
    asset = serializers.CharField(source="asset.symbol")
    address = serializers.CharField()
    amount = serializers.SerializerMethodField()
    fee = serializers.SerializerMethodField()
    status = serializers.CharField()
    client_request_id = serializers.CharField(allow_null=True)
    tx_hash = serializers.CharField()
    refunded = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_amount(self, obj: Any) -> str:
        return format_decimal(obj.amount)

    def get_fee(self, obj: Any) -> str:
        return format_decimal(obj.fee)

    def get_refunded(self, obj: Any) -> bool:
        return obj.refunded_at is not None
