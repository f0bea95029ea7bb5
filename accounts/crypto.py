"""Encryption of server-side secrets (API-key secrets, TOTP seeds) with Fernet.

Both must be readable by the server (an HMAC or a TOTP code is verified by
recomputing it), so hashing is not an option; they are encrypted at rest with
the keys in ``settings.API_SECRET_KEYS``. The first key encrypts, every key
decrypts, so keys rotate by prepending a new one. See docs/adr/0003.
"""

from __future__ import annotations

import base64
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


@functools.cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        # Development fallback: a key derived from SECRET_KEY. Production sets API_SECRET_KEYS
        # so that rotating SECRET_KEY does not make every API key and TOTP seed unreadable.
        digest = hashlib.sha256(b"cryptgo-api-secrets:" + settings.SECRET_KEY.encode()).digest()
        keys = (base64.urlsafe_b64encode(digest).decode(),)
    return MultiFernet([Fernet(k.encode()) for k in keys])


def encrypt(plain: str) -> str:
    return _fernet(tuple(settings.API_SECRET_KEYS)).encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    """Raises ``InvalidToken`` when no configured key opens it (a misconfiguration, not user input)."""
    return _fernet(tuple(settings.API_SECRET_KEYS)).decrypt(token.encode()).decode()


__all__ = ["InvalidToken", "decrypt", "encrypt"]
