"""Reads of accounts data. A user's API keys are only ever fetched through a selector that takes the user."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from accounts import crypto
from accounts.models import ApiKey, User

# last_used_at is informational: write it at most this often, not on every signed request.
TOUCH_EVERY = timedelta(seconds=60)


def api_keys_for(user: User) -> QuerySet[ApiKey]:
    """The user's active keys, newest first."""
    return ApiKey.objects.filter(user=user, revoked_at__isnull=True).order_by("-id")


def api_key_get_for(user: User, key_id: int) -> ApiKey | None:
    return api_keys_for(user).filter(pk=key_id).first()


def api_key_for_auth(public_key: str) -> tuple[ApiKey, str] | None:
    """An active key of an active user and its decrypted secret, or None."""
    if len(public_key) > 64:
        return None
    key = (ApiKey.objects.select_related("user")
           .filter(key=public_key, revoked_at__isnull=True, user__is_active=True).first())
    if key is None:
        return None
    return key, crypto.decrypt(key.secret_encrypted)


def api_key_touch(key: ApiKey) -> None:
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > TOUCH_EVERY:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
