"""TOTP enrolment, confirmation, disabling, and totp_check as the gate for sensitive actions."""

from __future__ import annotations

import time

import pyotp
import pytest

from accounts import crypto
from accounts.models import ApiKey, User
from accounts.services import totp_check
from cryptgo.api.errors import TwoFactorInvalid, TwoFactorRequired
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db


def code_at(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def enable_2fa(client) -> str:
    secret = client.post("/api/v1/account/2fa/enrol").json()["secret"]
    r = client.post("/api/v1/account/2fa/confirm", {"code": code_at(secret)}, format="json")
    assert r.status_code == 200 and r.json()["totp_enabled"] is True
    return secret


def test_enrol_returns_secret_stored_encrypted(as_user, alice):
    r = as_user(alice).post("/api/v1/account/2fa/enrol")
    assert r.status_code == 200
    body = r.json()
    assert body["otpauth_url"].startswith("otpauth://totp/CryptGO:alice%40example.com?secret=")
    alice.refresh_from_db()
    assert alice.totp_enabled is False
    assert body["secret"] not in alice.totp_secret
    assert crypto.decrypt(alice.totp_secret) == body["secret"]


def test_confirm_enables_and_a_code_cannot_be_replayed(as_user, alice):
    client = as_user(alice)
    secret = client.post("/api/v1/account/2fa/enrol").json()["secret"]
    assert_error(client.post("/api/v1/account/2fa/confirm", {"code": "000000" if code_at(secret) != "000000"
                                                             else "111111"}, format="json"), 403, "totp_invalid")
    code = code_at(secret)
    assert client.post("/api/v1/account/2fa/confirm", {"code": code}, format="json").status_code == 200
    alice.refresh_from_db()
    assert alice.totp_enabled
    # the same code again (same step) is refused: replay
    with pytest.raises(TwoFactorInvalid):
        totp_check(alice, code)
    assert_error(client.post("/api/v1/account/2fa/enrol"), 409, "totp_already_enabled")


def test_confirm_validation_and_state_errors(as_user, alice):
    client = as_user(alice)
    body = assert_error(client.post("/api/v1/account/2fa/confirm", {"code": "12ab"}, format="json"),
                        400, "validation_error")
    assert body["details"]["code"][0]["code"] == "invalid"
    assert_error(client.post("/api/v1/account/2fa/confirm", {"code": "123456"}, format="json"),
                 409, "totp_not_enrolled")
    assert_error(client.post("/api/v1/account/2fa/disable", {"code": "123456"}, format="json"),
                 409, "totp_not_enabled")


def test_disable_needs_a_valid_code(as_user, alice):
    client = as_user(alice)
    secret = enable_2fa(client)
    assert_error(client.post("/api/v1/account/2fa/disable", {"code": code_at(secret, -1)}, format="json"),
                 403, "totp_invalid")  # the previous step is older than the one just used
    alice.refresh_from_db()
    assert alice.totp_enabled
    r = client.post("/api/v1/account/2fa/disable", {"code": code_at(secret, 1)}, format="json")
    assert r.status_code == 200 and r.json()["totp_enabled"] is False
    alice.refresh_from_db()
    assert not alice.totp_enabled and alice.totp_secret == ""


def test_totp_check_is_a_noop_without_2fa_and_a_gate_with_it(as_user, alice):
    totp_check(alice, None)  # two-factor off: passes
    secret = enable_2fa(as_user(alice))
    with pytest.raises(TwoFactorRequired):
        totp_check(alice, None)
    with pytest.raises(TwoFactorInvalid):
        totp_check(alice, "12345")
    totp_check(alice, code_at(secret, 1))


def test_api_key_creation_requires_totp_once_enabled(as_user, alice):
    client = as_user(alice)
    secret = enable_2fa(client)
    payload = {"label": "bot", "permissions": ["read"]}
    assert_error(client.post("/api/v1/account/api-keys", payload, format="json"), 403, "totp_required")
    assert_error(client.post("/api/v1/account/api-keys", {**payload, "totp_code": "999999" if code_at(secret, 1)
                                                          != "999999" else "888888"}, format="json"),
                 403, "totp_invalid")
    assert ApiKey.objects.filter(user=alice).count() == 0
    r = client.post("/api/v1/account/api-keys", {**payload, "totp_code": code_at(secret, 1)}, format="json")
    assert r.status_code == 201
    assert ApiKey.objects.filter(user=alice).count() == 1


def test_2fa_endpoints_need_jwt_not_api_key(api_key_for, alice):
    signed = api_key_for(alice, ["read", "trade", "withdraw"])
    assert_error(signed.post("/api/v1/account/2fa/enrol"), 403, "jwt_required")
    assert_error(signed.post("/api/v1/account/api-keys", {"label": "x", "permissions": ["read"]}), 403,
                 "jwt_required")
    assert User.objects.get(pk=alice.pk).totp_secret == ""


def test_2fa_endpoints_need_authentication(api):
    for path in ("/api/v1/account/2fa/enrol", "/api/v1/account/2fa/confirm", "/api/v1/account/2fa/disable"):
        assert_error(api.post(path, {"code": "123456"}, format="json"), 401, "not_authenticated")
