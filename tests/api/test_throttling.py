"""Throttling per user and per IP, counted in Redis; it fails open when Redis is unreachable."""

from __future__ import annotations

import pytest

from cryptgo.api import redis_conn
from cryptgo.api.throttling import parse_rate
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_counters():
    r = redis_conn.get()
    keys = list(r.scan_iter("throttle:*", count=1000))
    if keys:
        r.delete(*keys)


def test_user_rate(as_user, alice, bob, settings):
    settings.API_THROTTLE_USER_RATE = "3/min"
    client = as_user(alice)
    for _ in range(3):
        assert client.get("/api/v1/account/me").status_code == 200
    r = client.get("/api/v1/account/me")
    body = assert_error(r, 429, "throttled")
    assert 1 <= body["details"]["retry_after"] <= 61
    assert int(r["Retry-After"]) == body["details"]["retry_after"]
    assert as_user(bob).get("/api/v1/account/me").status_code == 200  # per user


def test_ip_rate_applies_to_anonymous_and_binance(client, db, settings):
    settings.API_THROTTLE_IP_RATE = "2/min"
    assert client.get("/api/v1/time").status_code == 200
    assert client.get("/api/v3/ping").status_code == 200
    assert_error(client.get("/api/v1/time"), 429, "throttled")
    r = client.get("/api/v3/ping")
    assert r.status_code == 429 and r.json()["code"] == -1003


def test_login_rate_per_ip(api, alice, settings):
    settings.API_THROTTLE_LOGIN_RATE = "3/min"
    wrong = {"email": "alice@example.com", "password": "guess"}
    for _ in range(3):
        assert_error(api.post("/api/v1/auth/login", wrong, format="json"), 401, "invalid_credentials")
    assert_error(api.post("/api/v1/auth/login", {**wrong, "password": "correct horse battery staple"},
                          format="json"), 429, "throttled")
    assert api.get("/api/v1/time").status_code == 200  # only the password endpoints


def test_fails_open_without_redis(as_user, alice, settings):
    from cryptgo.devservices import free_port

    settings.API_THROTTLE_USER_RATE = "1/min"
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    client = as_user(alice)
    assert [client.get("/api/v1/account/me").status_code for _ in range(3)] == [200, 200, 200]


def test_parse_rate():
    assert parse_rate("100/min") == (100, 60)
    assert parse_rate("5/s") == (5, 1)
    assert parse_rate("off") is None
    with pytest.raises(ValueError):
        parse_rate("lots/min")
