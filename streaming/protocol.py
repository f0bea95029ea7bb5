"""The websocket protocol's vocabulary: error codes, close codes, request parsing, reply and push rendering.

In the style of ViaBTC's accessws: a request is ``{"id", "method", "params"}``
with positional ``params``; the reply is ``{"id", "result", "error"}``; a push
is ``{"id": null, "method": "<kind>.update", "params": [...]}``. docs/websocket.md
is the user-facing description; keep the two in step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class ErrorCode(IntEnum):
    """``error.code`` of a reply (ViaBTC's numbers for the first six); ``error.reason`` is the name in lower case."""

    INVALID_ARGUMENT = 1
    INTERNAL_ERROR = 2
    SERVICE_UNAVAILABLE = 3
    METHOD_NOT_FOUND = 4
    SERVICE_TIMEOUT = 5
    REQUIRE_AUTH = 6
    TOO_MANY_SUBSCRIPTIONS = 7
    MESSAGE_TOO_LARGE = 8
    RATE_LIMITED = 9
    AUTH_FAILED = 10


class CloseCode(IntEnum):
    """Close codes the server uses (4000-4999 are the application's own)."""

    TOO_MANY_ERRORS = 4000  # malformed or refused requests faster than WS_MAX_ERRORS (decaying 1/s)
    SLOW_CONSUMER = 4001  # the client does not read: WS_SEND_QUEUE pushes are waiting
    IDLE = 4002  # nothing received from the client for WS_IDLE_SECONDS
    AUTH_EXPIRED = 4003  # the JWT used by server.auth expired: reconnect with a fresh one


class WsError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> WsError:
    return WsError(ErrorCode.INVALID_ARGUMENT, message)


@dataclass(frozen=True)
class Request:
    id: int | str | None
    method: str
    params: list[Any]


def parse_request(text: str) -> Request:
    """A request, or ``WsError`` (with the id when it could be read, via ``request_id``)."""
    try:
        body = json.loads(text)
    except ValueError:
        raise invalid("malformed JSON") from None
    if not isinstance(body, dict):
        raise invalid("a request is a JSON object {id, method, params}")
    rid = body.get("id")
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, int | str) or len(str(rid)) > 64):
        raise invalid("id must be an integer, a string of at most 64 characters, or null")
    method = body.get("method")
    if not isinstance(method, str) or not method or len(method) > 64:
        raise RequestError(rid, invalid("method must be a non-empty string"))
    params = body.get("params", [])
    if not isinstance(params, list):
        raise RequestError(rid, invalid("params must be a list"))
    return Request(rid, method, params)


class RequestError(WsError):
    """A ``WsError`` raised after the request's id was read, so the reply can carry it."""

    def __init__(self, rid: int | str | None, error: WsError) -> None:
        super().__init__(error.code, error.message)
        self.rid = rid


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def reply(rid: int | str | None, result: Any) -> str:
    return dumps({"id": rid, "result": result, "error": None})


def error_reply(rid: int | str | None, code: ErrorCode, message: str) -> str:
    return dumps({"id": rid, "result": None, "error": {"code": int(code), "reason": code.name.lower(),
                                                        "message": message}})


def push(method: str, params: list[Any]) -> str:
    return dumps({"id": None, "method": method, "params": params})


_rendered: dict[tuple[Any, ...], str] = {}


def push_once(key: tuple[Any, ...], method: str, params: list[Any]) -> str:
    """``push()``, rendered once per web process for every subscriber it goes to.

    A group message reaches each member as its own copy, and most members
    send exactly the same frame: ``key`` names that frame's content (for
    example market, deal ids), so the first member renders it and the rest
    reuse the text. Only recent frames are kept.
    """
    text = _rendered.get(key)
    if text is None:
        if len(_rendered) >= 1024:
            _rendered.clear()
        text = _rendered[key] = push(method, params)
    return text


# ---------------------------------------------------------------------- parameter helpers


def param(params: list[Any], index: int, name: str, default: Any = ...) -> Any:
    if index < len(params):
        return params[index]
    if default is ...:
        raise invalid(f"missing parameter {index + 1} ({name})")
    return default


def string(value: Any, name: str, max_len: int = 64) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise invalid(f"{name} must be a non-empty string")
    return value


def integer(value: Any, name: str, minimum: int = 0, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (
            maximum is not None and value > maximum):
        bound = f" from {minimum} to {maximum}" if maximum is not None else f" >= {minimum}"
        raise invalid(f"{name} must be an integer{bound}")
    return value


def optional_int(value: Any, name: str, minimum: int = 0, maximum: int | None = None) -> int | None:
    return None if value is None else integer(value, name, minimum, maximum)


def names(params: list[Any], what: str, max_count: int) -> list[str]:
    """A list of market or asset names (possibly empty, meaning all)."""
    if len(params) > max_count:
        raise invalid(f"at most {max_count} {what}s")
    out = [string(p, what, 33) for p in params]
    if len(set(out)) != len(out):
        raise invalid(f"a {what} is listed twice")
    return out
