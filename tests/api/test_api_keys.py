"""API keys: create (secret once, stored encrypted), list, revoke, HMAC signatures, permissions, IP allow-list."""

from __future__ import annotations

import time

import pytest

from accounts import crypto
from accounts.models import ApiKey
from tests.api.conftest import SignedClient, assert_error

pytestmark = pytest.mark.django_db


def test_create_shows_secret_once_and_stores_it_encrypted(as_user, alice):
    client = as_user(alice)
    r = client.post("/api/v1/account/api-keys", {"label": "bot", "permissions": ["read", "trade"],
                                                 "ip_allowlist": ["10.0.0.1", "192.168.0.0/24"]}, format="json")
    assert r.status_code == 201
    body = r.json()
    assert body["permissions"] == ["read", "trade"]
    assert body["ip_allowlist"] == ["10.0.0.1/32", "192.168.0.0/24"]
    key = ApiKey.objects.get(pk=body["id"])
    assert body["secret"] not in key.secret_encrypted
    assert crypto.decrypt(key.secret_encrypted) == body["secret"]
    listed = client.get("/api/v1/account/api-keys").json()
    assert [k["id"] for k in listed] == [body["id"]]
    assert "secret" not in listed[0]
    one = client.get(f"/api/v1/account/api-keys/{body['id']}").json()
    assert "secret" not in one and one["key"] == body["key"]


@pytest.mark.parametrize("payload,field,code", [
    ({"label": "x", "permissions": ["fly"]}, "permissions", "invalid_choice"),
    ({"label": "x", "permissions": []}, "permissions", "empty"),
    ({"permissions": ["read"]}, "label", "required"),
    ({"label": "x", "permissions": ["read"], "ip_allowlist": ["not-an-ip"]}, "ip_allowlist", "invalid_ip"),
])
def test_create_validation(as_user, alice, payload, field, code):
    r = as_user(alice).post("/api/v1/account/api-keys", payload, format="json")
    body = assert_error(r, 400, "validation_error")
    flat = body["details"][field]
    codes = [e["code"] for e in (flat.values() if isinstance(flat, dict) else flat) for e in
             (e if isinstance(e, list) else [e])]
    assert code in codes, body
    assert not ApiKey.objects.filter(user=alice).exists()


def test_key_management_needs_authentication(api):
    assert_error(api.get("/api/v1/account/api-keys"), 401, "not_authenticated")
    assert_error(api.post("/api/v1/account/api-keys", {}, format="json"), 401, "not_authenticated")
    assert_error(api.delete("/api/v1/account/api-keys/1"), 401, "not_authenticated")


def test_other_users_keys_are_invisible_and_unrevocable(as_user, api_key_for, alice, mallory):
    signed = api_key_for(alice, ["read"])
    key = ApiKey.objects.get(key=signed.key)
    evil = as_user(mallory)
    assert evil.get("/api/v1/account/api-keys").json() == []
    assert_error(evil.get(f"/api/v1/account/api-keys/{key.pk}"), 404, "not_found")
    assert_error(evil.delete(f"/api/v1/account/api-keys/{key.pk}"), 404, "not_found")
    key.refresh_from_db()
    assert key.revoked_at is None
    assert signed.get("/api/v1/account/me").status_code == 200


def test_revoked_key_stops_working(as_user, api_key_for, alice):
    signed = api_key_for(alice, ["read"])
    assert signed.get("/api/v1/account/me").json()["email"] == "alice@example.com"
    key = ApiKey.objects.get(key=signed.key)
    assert as_user(alice).delete(f"/api/v1/account/api-keys/{key.pk}").status_code == 204
    assert_error(signed.get("/api/v1/account/me"), 401, "invalid_api_key")
    assert_error(as_user(alice).delete(f"/api/v1/account/api-keys/{key.pk}"), 404, "not_found")
    assert as_user(alice).get("/api/v1/account/api-keys").json() == []


def test_signature_covers_method_path_query_and_body(api_key_for, alice):
    signed = api_key_for(alice, ["read"])
    ok = signed.get("/api/v1/balances")
    assert ok.status_code == 200
    # a signature made for one path does not work for another
    headers = signed.headers("GET", "/api/v1/balances")
    assert_error(signed.client.get("/api/v1/orders", **headers), 401, "invalid_signature")
    # nor with a changed query string
    headers = signed.headers("GET", "/api/v1/orders?side=buy")
    assert_error(signed.client.get("/api/v1/orders?side=sell", **headers), 401, "invalid_signature")
    # wrong secret
    assert_error(SignedClient(signed.key, "wrong").get("/api/v1/balances"), 401, "invalid_signature")
    # unknown key
    assert_error(SignedClient("f" * 64, "x").get("/api/v1/balances"), 401, "invalid_api_key")


def test_timestamp_must_be_fresh(api_key_for, alice):
    signed = api_key_for(alice, ["read"])
    stale = int(time.time() * 1000) - 60_000
    headers = signed.headers("GET", "/api/v1/balances", ts=stale)
    assert_error(signed.client.get("/api/v1/balances", **headers), 401, "timestamp_out_of_window")
    headers = signed.headers("GET", "/api/v1/balances")
    del headers["HTTP_X_API_SIGNATURE"]
    assert_error(signed.client.get("/api/v1/balances", **headers), 401, "signature_required")


def test_signed_write_cannot_be_replayed(api_key_for, alice):
    signed = api_key_for(alice, ["read", "trade"])
    headers = signed.headers("DELETE", "/api/v1/orders/123")
    first = signed.client.delete("/api/v1/orders/123", **headers)
    assert_error(first, 404, "unknown_order")
    assert_error(signed.client.delete("/api/v1/orders/123", **headers), 401, "replayed_request")


def test_permissions_are_enforced(api_key_for, alice):
    read_only = api_key_for(alice, ["read"])
    assert read_only.get("/api/v1/orders").status_code == 200
    body = {"market": "ETH_USDT", "side": "buy", "type": "limit", "price": "1", "amount": "1"}
    assert_error(read_only.post("/api/v1/orders", body), 403, "api_key_permission")
    assert_error(read_only.delete("/api/v1/orders"), 403, "api_key_permission")
    trade_only = api_key_for(alice, ["trade"])
    assert_error(trade_only.get("/api/v1/balances"), 403, "api_key_permission")


def test_ip_allowlist(api_key_for, alice):
    inside = api_key_for(alice, ["read"], ip_allowlist=["127.0.0.0/8"])
    assert inside.get("/api/v1/balances").status_code == 200
    outside = api_key_for(alice, ["read"], ip_allowlist=["10.1.2.3"])
    assert_error(outside.get("/api/v1/balances"), 403, "ip_not_allowed")


def test_too_many_keys_is_409(as_user, api_key_for, alice):
    for _ in range(20):
        api_key_for(alice, ["read"])
    r = as_user(alice).post("/api/v1/account/api-keys", {"label": "one more", "permissions": ["read"]}, format="json")
    assert_error(r, 409, "too_many_api_keys")
    assert ApiKey.objects.filter(user=alice).count() == 20


def test_operator_can_revoke_a_key_in_the_admin(client, operator, api_key_for, alice):
    signed = api_key_for(alice, ["read"])
    key = ApiKey.objects.get(key=signed.key)
    client.force_login(operator)
    page = client.get(f"/admin/accounts/apikey/{key.pk}/change/")
    assert page.status_code == 200 and signed.secret.encode() not in page.content
    r = client.post("/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    assert r.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert_error(signed.get("/api/v1/balances"), 401, "invalid_api_key")
