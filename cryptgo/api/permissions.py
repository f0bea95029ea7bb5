"""Who may call what: a JWT is the user themselves (every permission); an API key has only what it was given.

Account management (keys, two-factor) needs a JWT: a leaked bot key must not
be able to mint more keys or switch off two-factor.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

from accounts.models import ApiKey


class _KeyPermission(BasePermission):
    needed = ""
    code = "api_key_permission"

    @property
    def message(self) -> str:
        return f"This API key lacks the '{self.needed}' permission."

    def has_permission(self, request: Any, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        key = request.auth
        if isinstance(key, ApiKey):
            return bool(getattr(key, f"can_{self.needed}"))
        return True


class CanRead(_KeyPermission):
    needed = "read"


class CanTrade(_KeyPermission):
    needed = "trade"


class CanWithdraw(_KeyPermission):
    needed = "withdraw"


class JwtOnly(BasePermission):
    message = "This action needs a login token (JWT), not an API key."
    code = "jwt_required"

    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and not isinstance(request.auth, ApiKey))
