"""Fixtures for the client-API tests: authenticated clients (JWT, signed API keys) and throttling off.

Throttling is switched off here because its counters live in Redis and span
tests; tests/api/test_throttling.py switches it on with its own rates.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services as account_services


@pytest.fixture(autouse=True)
def _no_throttling(settings):
    settings.API_THROTTLE_USER_RATE = "off"
    settings.API_THROTTLE_IP_RATE = "off"
    settings.API_THROTTLE_LOGIN_RATE = "off"


@pytest.fixture(autouse=True)
def _market_data_from_database(settings):
    """Market data from PostgreSQL and the matcher unless a test opts into Redis: another suite's consumer
    may leave a heartbeat in the shared Redis."""
    settings.MARKET_DATA_SOURCE = "database"


@pytest.fixture(autouse=True)
def _fresh_market_cache():
    """Markets are cached per process for a moment; every test creates its own rows."""
    from markets.selectors import forget_cache

    forget_cache()
    yield
    forget_cache()


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def jwt_client(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def as_user() -> Callable[[Any], APIClient]:
    """``as_user(alice)``: an APIClient carrying alice's JWT."""
    return jwt_client


class SignedClient:
    """Sends requests signed with the native API-key scheme (docs/api.md)."""

    def __init__(self, key: str, secret: str, client: APIClient | None = None) -> None:
        self.key, self.secret = key, secret
        self.client = client or APIClient()

    def headers(self, method: str, path: str, body: bytes = b"", ts: int | None = None) -> dict[str, str]:
        ts_s = str(ts if ts is not None else int(time.time() * 1000))
        sig = hmac.new(self.secret.encode(), f"{ts_s}{method}{path}".encode() + body, hashlib.sha256).hexdigest()
        return {"HTTP_X_API_KEY": self.key, "HTTP_X_API_TIMESTAMP": ts_s, "HTTP_X_API_SIGNATURE": sig}

    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                data: dict[str, Any] | None = None, **extra: Any) -> Any:
        if params:
            path = f"{path}?{urlencode(params)}"
        body = json.dumps(data).encode() if data is not None else b""
        headers = self.headers(method, path, body)
        headers.update(extra)
        return self.client.generic(method, path, body, content_type="application/json", **headers)

    def get(self, path: str, params: dict[str, Any] | None = None, **extra: Any) -> Any:
        return self.request("GET", path, params=params, **extra)

    def post(self, path: str, data: dict[str, Any] | None = None, **extra: Any) -> Any:
        return self.request("POST", path, data=data if data is not None else {}, **extra)

    def delete(self, path: str, params: dict[str, Any] | None = None, **extra: Any) -> Any:
        return self.request("DELETE", path, params=params, **extra)


@pytest.fixture
def api_key_for() -> Callable[..., SignedClient]:
    """``api_key_for(alice, ["read", "trade"], ip_allowlist=[...])``: a SignedClient for a new key."""

    def make(user: Any, permissions: list[str] | None = None, ip_allowlist: list[str] | None = None) -> SignedClient:
        created = account_services.api_key_create(user=user, label="test", permissions=permissions or ["read"],
                                                  ip_allowlist=ip_allowlist or [], totp_code=None)
        return SignedClient(created.api_key.key, created.secret)

    return make


@pytest.fixture
def live_api(matcher, tmp_path):
    """uvicorn serving the API against this test's database and matcher (see tests/api/live.py)."""
    from tests.api.live import LiveApi

    server = LiveApi(tmp_path, matcher.addr).start()
    yield server
    server.stop()


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == code, body
    return body
