"""JWTAuthentication remembers a validated access token until its expiry, and nothing else."""

from __future__ import annotations

import time

import pytest
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.tokens import AccessToken

from cryptgo.api.authentication import JWTAuthentication


@pytest.fixture(autouse=True)
def _empty_token_cache():
    JWTAuthentication._tokens.clear()
    yield
    JWTAuthentication._tokens.clear()


def test_a_valid_token_is_remembered_and_each_caller_gets_a_copy(alice):
    raw = str(AccessToken.for_user(alice)).encode()
    auth = JWTAuthentication()
    first = auth.get_validated_token(raw)
    assert raw in JWTAuthentication._tokens
    second = auth.get_validated_token(raw)
    assert second is not first and second.payload == first.payload
    second.payload["user_id"] = "changed"
    assert auth.get_validated_token(raw)["user_id"] == first["user_id"] == str(alice.pk)


def test_a_remembered_token_is_refused_after_its_expiry(alice, monkeypatch):
    token = AccessToken.for_user(alice)
    raw = str(token).encode()
    auth = JWTAuthentication()
    auth.get_validated_token(raw)
    later = token["exp"] + 1
    monkeypatch.setattr(time, "time", lambda: later)
    from rest_framework_simplejwt import tokens, utils

    monkeypatch.setattr(tokens, "aware_utcnow", lambda: utils.datetime_from_epoch(later))
    monkeypatch.setattr("jwt.api_jwt.datetime", _frozen_datetime(later))
    with pytest.raises(InvalidToken):
        auth.get_validated_token(raw)


def test_refused_tokens_are_not_remembered(alice):
    raw = str(AccessToken.for_user(alice)).encode()
    forged = raw[:-2] + (b"AA" if raw[-2:] != b"AA" else b"BB")
    auth = JWTAuthentication()
    for _ in range(2):
        with pytest.raises(InvalidToken):
            auth.get_validated_token(forged)
    assert forged not in JWTAuthentication._tokens


def _frozen_datetime(epoch: float) -> type:
    import datetime as dt

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
            return dt.datetime.fromtimestamp(epoch, tz)

    return Frozen
