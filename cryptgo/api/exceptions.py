"""The native API's one exception handler: every error is ``{"code", "message", "details"}``.

DRF's own exceptions, simplejwt's token errors, Django's ``Http404`` and
``PermissionDenied`` and our ``ApiError`` all pass through here, so a client
parses one shape and branches on ``code``. Validation errors keep DRF's
per-field codes in ``details``: ``{"price": [{"code": "invalid", "message": "..."}]}``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from cryptgo.api.errors import ApiError


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details or {}}


def _field_details(detail: Any) -> dict[str, Any]:
    """DRF's full details, with a list of non-field errors placed under ``non_field_errors``."""
    if isinstance(detail, dict):
        return {str(k): v for k, v in detail.items()}
    return {"non_field_errors": detail}


def _drf_error(exc: drf.APIException) -> tuple[str, str, dict[str, Any]]:
    if isinstance(exc, drf.ValidationError):
        return "validation_error", "Some fields are invalid.", _field_details(exc.get_full_details())
    detail = exc.detail
    if isinstance(detail, dict):  # simplejwt's InvalidToken: {"detail", "code", "messages"}
        code = str(detail.get("code") or exc.default_code)
        message = str(detail.get("detail") or exc.default_detail)
        return code, message, {}
    details: dict[str, Any] = {}
    if isinstance(exc, drf.Throttled) and exc.wait is not None:
        details["retry_after"] = int(exc.wait) + 1
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else str(exc.default_code)
    return code, str(detail), details


def error_parts(exc: Exception) -> tuple[int, dict[str, Any], dict[str, str]] | None:
    """(status, body, headers) of the error response for ``exc``, or None for an unexpected exception.

    Shared by DRF's exception handler below and the ASGI fast path (``cryptgo.fastpath``), so an
    error answered by either has the same status, body and headers.
    """
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()

    if isinstance(exc, ApiError):
        status, body = exc.status, error_body(exc.code, exc.message, exc.details)
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
    elif isinstance(exc, drf.APIException):
        code, message, details = _drf_error(exc)
        status, body = exc.status_code, error_body(code, message, details)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait) + 1)  # type: ignore[attr-defined]
    else:
        return None  # a bug: let Django log it and answer 500
    return status, body, headers


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    parts = error_parts(exc)
    if parts is None:
        return None
    set_rollback()
    status, body, headers = parts
    return Response(body, status=status, headers=headers)
