"""Registration, JWT login/refresh/logout and the current user."""

from __future__ import annotations

import pytest

from accounts.models import User
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db

STRONG = "violet-Harbor-4417"


def test_register_creates_user_and_hides_password(api):
    r = api.post("/api/v1/auth/register", {"email": "New@Example.com", "password": STRONG}, format="json")
    assert r.status_code == 201
    body = r.json()
    assert body["email"] == "new@example.com"
    assert body["totp_enabled"] is False
    assert "password" not in body
    user = User.objects.get(email="new@example.com")
    assert user.check_password(STRONG)


@pytest.mark.parametrize("payload,field,code", [
    ({"email": "x@example.com", "password": "123"}, "password", "password_too_short"),
    ({"email": "x@example.com", "password": "password123"}, "password", "password_too_common"),
    ({"email": "not-an-email", "password": STRONG}, "email", "invalid"),
    ({"password": STRONG}, "email", "required"),
    ({"email": "x@example.com"}, "password", "required"),
])
def test_register_validation_errors_have_field_codes(api, payload, field, code):
    r = api.post("/api/v1/auth/register", payload, format="json")
    body = assert_error(r, 400, "validation_error")
    assert code in [e["code"] for e in body["details"][field]]
    assert not User.objects.filter(email="x@example.com").exists()


def test_register_duplicate_email_is_409(api, alice):
    r = api.post("/api/v1/auth/register", {"email": "ALICE@example.com", "password": STRONG}, format="json")
    assert_error(r, 409, "email_taken")
    assert User.objects.filter(email="alice@example.com").count() == 1


def test_login_refresh_logout_cycle(api, alice):
    r = api.post("/api/v1/auth/login", {"email": "alice@example.com", "password": "correct horse battery staple"},
                 format="json")
    assert r.status_code == 200
    tokens = r.json()
    me = api.get("/api/v1/account/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert me.status_code == 200 and me.json()["email"] == "alice@example.com"

    r = api.post("/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert r.status_code == 200
    rotated = r.json()
    assert rotated["refresh"] != tokens["refresh"]
    # rotation blacklists the old refresh token
    assert_error(api.post("/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json"),
                 401, "token_not_valid")

    auth = {"HTTP_AUTHORIZATION": f"Bearer {rotated['access']}"}
    assert api.post("/api/v1/auth/logout", {"refresh": rotated["refresh"]}, format="json", **auth).status_code == 204
    assert_error(api.post("/api/v1/auth/refresh", {"refresh": rotated["refresh"]}, format="json"),
                 401, "token_not_valid")


def test_login_wrong_password_is_401(api, alice):
    r = api.post("/api/v1/auth/login", {"email": "alice@example.com", "password": "nope"}, format="json")
    assert_error(r, 401, "invalid_credentials")


def test_login_inactive_user_is_401(api, alice):
    alice.is_active = False
    alice.save()
    r = api.post("/api/v1/auth/login", {"email": "alice@example.com", "password": "correct horse battery staple"},
                 format="json")
    assert_error(r, 401, "invalid_credentials")


def test_logout_cannot_blacklist_another_users_token(as_user, alice, bob, api):
    from rest_framework_simplejwt.tokens import RefreshToken

    bobs = str(RefreshToken.for_user(bob))
    assert_error(as_user(alice).post("/api/v1/auth/logout", {"refresh": bobs}, format="json"), 401, "token_not_valid")
    assert api.post("/api/v1/auth/refresh", {"refresh": bobs}, format="json").status_code == 200


def test_me_requires_authentication(api):
    r = api.get("/api/v1/account/me")
    assert_error(r, 401, "not_authenticated")
    assert r["WWW-Authenticate"].startswith("Bearer")
    assert_error(api.get("/api/v1/account/me", HTTP_AUTHORIZATION="Bearer garbage"), 401, "token_not_valid")


def test_unknown_api_path_is_json_404(api):
    assert_error(api.get("/api/v1/nothing/here"), 404, "not_found")
    assert_error(api.get("/api/v1/orders/by-client-id/a%0Ab"), 404, "not_found")  # a newline in the path


def test_malformed_json_is_400(as_user, alice):
    r = as_user(alice).generic("POST", "/api/v1/auth/logout", b"{not json", content_type="application/json")
    assert_error(r, 400, "parse_error")


def test_refresh_and_logout_validation(api, as_user, alice):
    body = assert_error(api.post("/api/v1/auth/refresh", {}, format="json"), 400, "validation_error")
    assert body["details"]["refresh"][0]["code"] == "required"
    assert_error(api.post("/api/v1/auth/refresh", {"refresh": "not-a-token"}, format="json"), 401, "token_not_valid")
    body = assert_error(as_user(alice).post("/api/v1/auth/logout", {}, format="json"), 400, "validation_error")
    assert body["details"]["refresh"][0]["code"] == "required"
    assert_error(api.post("/api/v1/auth/logout", {"refresh": "x"}, format="json"), 401, "not_authenticated")


def test_deactivated_user_is_refused_once_the_user_cache_lapses(as_user, alice):
    from cryptgo.api.authentication import JWTAuthentication

    client = as_user(alice)
    assert client.get("/api/v1/balances").status_code == 200
    alice.is_active = False
    alice.save()
    JWTAuthentication._cache.clear()  # what USER_CACHE_SECONDS of waiting does
    assert_error(client.get("/api/v1/balances"), 401, "user_inactive")
