"""Binance's SIGNED request check: X-MBX-APIKEY, ``timestamp``, ``recvWindow``, ``signature``.

The signature is HMAC-SHA256 (hex) with the key's secret over the query
string concatenated with the request body, exactly as sent, minus the
``signature`` parameter itself (Binance's "totalParams").
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from django.conf import settings
from rest_framework.authentication import BaseAuthentication

from accounts import selectors as account_selectors
from accounts.models import ApiKey
from binance import errors as E
from cryptgo.api.authentication import client_ip, hmac_hex, ip_allowed

MAX_RECV_WINDOW = 60_000


def _strip_signature(raw: str) -> tuple[str, str | None]:
    """(raw without its signature=... part, the signature) keeping every other byte as sent."""
    if not raw:
        return "", None
    parts = raw.split("&")
    kept = [p for p in parts if not p.startswith("signature=")]
    sigs = [p.partition("=")[2] for p in parts if p.startswith("signature=")]
    return "&".join(kept), (sigs[-1] if sigs else None)


class BinanceSignature(BaseAuthentication):
    """Authenticates SIGNED endpoints; raises ``BinanceError`` with Binance's codes."""

    def authenticate(self, request: Any) -> tuple[Any, ApiKey]:
        public = request.META.get("HTTP_X_MBX_APIKEY", "")
        if not public or len(public) > 64:
            raise E.BinanceError(E.BAD_API_KEY_FMT, "API-key format invalid.", 401)
        query, qsig = _strip_signature(request.META.get("QUERY_STRING", ""))
        body_raw = request.body.decode("utf-8", "replace") if request.body else ""
        body, bsig = _strip_signature(body_raw)
        signature = qsig or bsig
        params = {**request.data.dict(), **request.query_params.dict()} if hasattr(request.data, "dict") \
            else dict(request.query_params.dict())
        ts_raw = params.get("timestamp", "")
        if not ts_raw.isdigit() or len(ts_raw) > 15:
            raise E.mandatory("timestamp")
        window_raw = params.get("recvWindow", str(settings.API_SIGNATURE_WINDOW_MS))
        if not window_raw.isdigit() or len(window_raw) > 10:
            raise E.mandatory("recvWindow")
        window = int(window_raw)
        if window > MAX_RECV_WINDOW:
            raise E.BinanceError(E.BAD_RECV_WINDOW, "recvWindow must be less than 60000")
        now = int(time.time() * 1000)
        ts = int(ts_raw)
        if ts >= now + 1000 or now - ts > window:
            raise E.BinanceError(E.INVALID_TIMESTAMP, "Timestamp for this request is outside of the recvWindow.")
        if not signature:
            raise E.mandatory("signature")
        found = account_selectors.api_key_for_auth(public)
        if found is None:
            raise E.BinanceError(E.REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.", 401)
        key, secret = found
        expected = hmac_hex(secret, (query + body).encode())
        if not hmac.compare_digest(expected, signature.lower()):
            raise E.BinanceError(E.INVALID_SIGNATURE, "Signature for this request is not valid.")
        if not ip_allowed(key, client_ip(request)):
            raise E.BinanceError(E.REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.", 401)
        account_selectors.api_key_touch(key)
        return key.user, key
