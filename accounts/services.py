"""Write paths of accounts: registration, logout, two-factor (TOTP), API keys.

``totp_check(user, code)`` is the one gate every sensitive action calls
(API-key creation here, withdrawals in wallets): a no-op for users without
two-factor, otherwise the code must be right and not used before.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import pyotp
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import crypto
from accounts.models import ApiKey, User
from cryptgo.api.errors import ApiError, Conflict, NotFound, TwoFactorInvalid, TwoFactorRequired, ValidationFailed

TOTP_ISSUER = "CryptGO"
MAX_API_KEYS = 20
API_PERMISSIONS = ("read", "trade", "withdraw")


# ------------------------------------------------------------------ registration and tokens


def user_register(*, email: str, password: str) -> User:
    email = User.objects.normalize_email(email).lower()
    candidate = User(email=email)
    try:
        password_validation.validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise ValidationFailed(details={"password": [{"code": e.code or "invalid", "message": str(e.message % (
            e.params or {}))} for e in exc.error_list]}) from None
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password)
    except IntegrityError:
        raise Conflict("email_taken", "An account with this email already exists.") from None


def user_logout(*, user: User, refresh: str) -> None:
    """Blacklist the refresh token so it can mint no more access tokens."""
    try:
        token = RefreshToken(refresh)  # type: ignore[arg-type]
    except TokenError:
        raise ApiError("token_not_valid", "The refresh token is invalid or expired.", status=401) from None
    if str(token.get("user_id")) != str(user.pk):
        raise ApiError("token_not_valid", "The refresh token belongs to another user.", status=401)
    token.blacklist()


# ------------------------------------------------------------------ two-factor


def _totp(user: User) -> pyotp.TOTP:
    return pyotp.TOTP(crypto.decrypt(user.totp_secret))


def _accept_code(user: User, code: str) -> bool:
    """Verify ``code`` in the current step ±1 and burn its step; the caller holds the user row lock."""
    code = (code or "").strip()
    if not (code.isdigit() and len(code) == 6) or not user.totp_secret:
        return False
    totp = _totp(user)
    step = totp.timecode(time.time())
    for offset in (0, -1, 1):
        if secrets.compare_digest(totp.generate_otp(step + offset), code):
            if step + offset <= user.totp_last_step:
                return False  # replayed
            user.totp_last_step = step + offset
            user.save(update_fields=["totp_last_step"])
            return True
    return False


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str
    otpauth_url: str


def totp_enrol(*, user: User) -> TotpEnrolment:
    """Start (or restart) enrolment: a new secret, inactive until ``totp_confirm``."""
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.totp_enabled:
            raise Conflict("totp_already_enabled", "Two-factor authentication is already enabled.")
        secret = pyotp.random_base32()
        locked.totp_secret = crypto.encrypt(secret)
        locked.totp_last_step = 0
        locked.save(update_fields=["totp_secret", "totp_last_step"])
    user.totp_secret, user.totp_enabled = locked.totp_secret, False
    url = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)
    return TotpEnrolment(secret=secret, otpauth_url=url)


def totp_confirm(*, user: User, code: str) -> None:
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.totp_enabled:
            raise Conflict("totp_already_enabled", "Two-factor authentication is already enabled.")
        if not locked.totp_secret:
            raise Conflict("totp_not_enrolled", "Start enrolment first.")
        if not _accept_code(locked, code):
            raise TwoFactorInvalid()
        locked.totp_enabled = True
        locked.save(update_fields=["totp_enabled"])
    user.totp_enabled = True


def totp_disable(*, user: User, code: str) -> None:
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if not locked.totp_enabled:
            raise Conflict("totp_not_enabled", "Two-factor authentication is not enabled.")
        if not _accept_code(locked, code):
            raise TwoFactorInvalid()
        locked.totp_enabled = False
        locked.totp_secret = ""
        locked.save(update_fields=["totp_enabled", "totp_secret"])
    user.totp_enabled = False


def totp_check(user: User, code: str | None) -> None:
    """Gate a sensitive action: passes when two-factor is off, else needs a fresh valid code.

    Raises ``TwoFactorRequired`` (no code) or ``TwoFactorInvalid`` (403 either way).
    Opens its own transaction to lock the user row, so two requests cannot spend one code.
    """
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if not locked.totp_enabled:
            return
        if not code:
            raise TwoFactorRequired()
        if not _accept_code(locked, code):
            raise TwoFactorInvalid()


# ------------------------------------------------------------------ API keys


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    secret: str


def api_key_create(*, user: User, label: str, permissions: list[str], ip_allowlist: list[str],
                   totp_code: str | None) -> CreatedApiKey:
    """Create a key; the plain secret is returned here once and stored only encrypted."""
    unknown = sorted(set(permissions) - set(API_PERMISSIONS))
    if unknown:
        raise ValidationFailed(details={"permissions": [{"code": "invalid_choice",
                                                         "message": f"unknown permissions {unknown}"}]})
    totp_check(user, totp_code)
    with transaction.atomic():
        User.objects.select_for_update().get(pk=user.pk)  # serialise the count check per user
        if ApiKey.objects.filter(user=user, revoked_at__isnull=True).count() >= MAX_API_KEYS:
            raise Conflict("too_many_api_keys", f"At most {MAX_API_KEYS} active API keys per account.")
        secret = secrets.token_urlsafe(48)
        key = ApiKey.objects.create(
            user=user, label=label, key=secrets.token_hex(32), secret_encrypted=crypto.encrypt(secret),
            can_read="read" in permissions, can_trade="trade" in permissions,
            can_withdraw="withdraw" in permissions, ip_allowlist=list(ip_allowlist),
        )
    return CreatedApiKey(api_key=key, secret=secret)


def api_key_revoke(*, user: User, key_id: int) -> None:
    updated = ApiKey.objects.filter(user=user, pk=key_id, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if not updated:
        raise NotFound()
