"""One error type with a machine-readable code, raised by services and rendered once at the edge.

Services (accounts, trading, wallets) raise ``ApiError`` subclasses; they know
the HTTP status their refusal deserves because a refusal's meaning does not
change between callers (Zulip's ``JsonableError`` does the same). The native
API's exception handler (``cryptgo.api.exceptions``) renders every error as
``{"code", "message", "details"}``; the Binance-compatible API maps the same
codes to Binance's numeric codes.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A refusal with a stable ``code`` clients can branch on."""

    status: int = 400
    code: str = "invalid_request"
    message: str = "The request is invalid."

    def __init__(self, code: str | None = None, message: str | None = None,
                 details: dict[str, Any] | None = None, status: int | None = None) -> None:
        if code is not None:
            self.code = code
        if message is not None:
            self.message = message
        if status is not None:
            self.status = status
        self.details: dict[str, Any] = details or {}
        super().__init__(f"{self.code}: {self.message}")


class ValidationFailed(ApiError):
    status = 400
    code = "validation_error"
    message = "Some fields are invalid."


class NotAuthenticated(ApiError):
    status = 401
    code = "not_authenticated"
    message = "Authentication credentials were not provided or are invalid."


class Forbidden(ApiError):
    status = 403
    code = "permission_denied"
    message = "You do not have permission to perform this action."


class NotFound(ApiError):
    status = 404
    code = "not_found"
    message = "Not found."


class Conflict(ApiError):
    status = 409
    code = "conflict"
    message = "The request conflicts with the current state."


class ServiceUnavailable(ApiError):
    status = 503
    code = "service_unavailable"
    message = "A backend service is unavailable; retry later."


class TwoFactorRequired(ApiError):
    status = 403
    code = "totp_required"
    message = "A two-factor code (totp_code) is required for this action."


class TwoFactorInvalid(ApiError):
    status = 403
    code = "totp_invalid"
    message = "The two-factor code is wrong, expired or already used."
