"""Binance's error shape ``{"code": -1102, "msg": "..."}`` and the mapping from our error codes to theirs."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from cryptgo.api.errors import ApiError


class BinanceError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


UNKNOWN = -1000
DISCONNECTED = -1001
TOO_MANY_REQUESTS = -1003
INVALID_MESSAGE = -1013
INVALID_TIMESTAMP = -1021
INVALID_SIGNATURE = -1022
ILLEGAL_CHARS = -1100
MANDATORY_PARAM = -1102
BAD_PRECISION = -1111
INVALID_ORDER_TYPE = -1116
INVALID_SIDE = -1117
INVALID_INTERVAL = -1120
INVALID_SYMBOL = -1121
INVALID_TIF = -1115
BAD_RECV_WINDOW = -1131
NEW_ORDER_REJECTED = -2010
CANCEL_REJECTED = -2011
NO_SUCH_ORDER = -2013
BAD_API_KEY_FMT = -2014
REJECTED_MBX_KEY = -2015


def mandatory(name: str) -> BinanceError:
    return BinanceError(MANDATORY_PARAM, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def illegal(name: str) -> BinanceError:
    return BinanceError(ILLEGAL_CHARS, f"Illegal characters found in parameter '{name}'; legal range is "
                                       "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")


_ORDER_REJECT_MSG = {
    "insufficient_balance": "Account has insufficient balance for requested action.",
    "duplicate_client_order_id": "Duplicate order sent.",
    "would_take": "Order would immediately match and take.",
    "market_halted": "Market is closed.",
    "fok_unfillable": "Order would not be filled completely (FOK).",
    "no_liquidity": "Order book liquidity is less than LOT_SIZE filter minimum quantity.",
}


def from_api_error(exc: ApiError) -> BinanceError:
    code = exc.code
    if code == "matcher_unavailable":
        return BinanceError(DISCONNECTED, "Internal error; unable to process your request. Please try again.", 503)
    if code in ("unknown_market",):
        return BinanceError(INVALID_SYMBOL, "Invalid symbol.")
    if code == "invalid_precision":
        return BinanceError(BAD_PRECISION, "Precision is over the maximum defined for this asset.")
    if code == "below_min_amount":
        return BinanceError(INVALID_MESSAGE, "Filter failure: LOT_SIZE")
    if code == "below_min_notional":
        return BinanceError(INVALID_MESSAGE, "Filter failure: NOTIONAL")
    if code in ("unknown_order", "not_found"):
        return BinanceError(CANCEL_REJECTED, "Unknown order sent.")
    if code in _ORDER_REJECT_MSG:
        return BinanceError(NEW_ORDER_REJECTED, _ORDER_REJECT_MSG[code])
    if code in ("invalid_amount", "invalid_argument"):
        return BinanceError(NEW_ORDER_REJECTED, exc.message)
    if exc.status == 429:
        return BinanceError(TOO_MANY_REQUESTS, exc.message, 429)
    return BinanceError(UNKNOWN, exc.message, exc.status if exc.status < 500 else 500)


def error_parts(exc: Exception) -> tuple[int, dict[str, Any]] | None:
    """(status, body) of Binance's error response for ``exc``, or None for an unexpected exception.

    Shared by the views' exception handler and the ASGI fast path (``cryptgo.fastpath``).
    """
    if isinstance(exc, ApiError):
        exc = from_api_error(exc)
    elif isinstance(exc, drf.Throttled):
        wait = int(exc.wait or 1) + 1
        exc = BinanceError(TOO_MANY_REQUESTS, f"Too many requests; retry after {wait} seconds.", 429)
    elif isinstance(exc, drf.ParseError):
        exc = BinanceError(ILLEGAL_CHARS, "Malformed request body.")
    elif isinstance(exc, drf.MethodNotAllowed):
        exc = BinanceError(UNKNOWN, "Method not allowed.", 405)
    elif isinstance(exc, drf.UnsupportedMediaType):
        exc = BinanceError(ILLEGAL_CHARS, "Unsupported content type.", 415)
    elif isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed, drf.PermissionDenied)):
        exc = BinanceError(REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.", 401)
    elif isinstance(exc, (drf.NotFound, Http404)):
        exc = BinanceError(UNKNOWN, "Not found.", 404)
    if not isinstance(exc, BinanceError):
        return None
    return exc.status, {"code": exc.code, "msg": exc.msg}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    parts = error_parts(exc)
    if parts is None:
        return None
    set_rollback()
    status, body = parts
    return Response(body, status=status)
