"""Input and output shapes of the accounts API (one class per direction; nothing exposed by accident)."""

from __future__ import annotations

import ipaddress
from typing import Any

from rest_framework import serializers

from accounts.services import API_PERMISSIONS


class RegisterIn(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)


class UserOut(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    totp_enabled = serializers.BooleanField()
    date_joined = serializers.DateTimeField()


class LoginIn(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class TokenPairOut(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class RefreshIn(serializers.Serializer):
    refresh = serializers.CharField(max_length=2048)


class TotpEnrolOut(serializers.Serializer):
    secret = serializers.CharField(help_text="Base32 seed for the authenticator app; shown once.")
    otpauth_url = serializers.CharField()


class TotpCodeIn(serializers.Serializer):
    code = serializers.RegexField(r"^[0-9]{6}$", max_length=6)


def _check_network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise serializers.ValidationError("Not an IP address or CIDR network.", code="invalid_ip") from None


class ApiKeyCreateIn(serializers.Serializer):
    label = serializers.CharField(max_length=64)
    permissions = serializers.ListField(child=serializers.ChoiceField(choices=API_PERMISSIONS),
                                        allow_empty=False, max_length=3)
    ip_allowlist = serializers.ListField(child=serializers.CharField(max_length=49, validators=[_check_network]),
                                         required=False, default=list, max_length=50)
    totp_code = serializers.RegexField(r"^[0-9]{6}$", max_length=6, required=False,
                                       help_text="Required once two-factor is enabled.")

    def validate_ip_allowlist(self, value: list[str]) -> list[str]:
        return [_check_network(v) for v in value]


class ApiKeyOut(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField()
    key = serializers.CharField()
    permissions = serializers.ListField(child=serializers.CharField())
    ip_allowlist = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)


class ApiKeyCreatedOut(ApiKeyOut):
    secret = serializers.CharField(help_text="Shown only in this response; store it now.")

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = ApiKeyOut(instance.api_key).data
        data["secret"] = instance.secret
        return data
