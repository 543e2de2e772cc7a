"""Errors as the relay shows them: OpenAI-shaped HTTP bodies and typed ``event: error`` data.

Every message passes through :class:`Redactor`, so neither the upstream key nor the relay
token can reach a browser or a log line, even when an upstream echoes part of a key back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from ..errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    IncompleteStreamError,
    ProtocolError,
    StreamCancelled,
    StreamError,
)

__all__ = ["Redactor", "error_event", "http_error", "relay_error"]


class Redactor:
    """Masks secrets (and their visible tails, as providers echo ``sk-...abcd``) in text."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
            if len(secret) >= 12:
                text = text.replace(secret[-4:], "****")
        return text


_TYPES: tuple[tuple[type[BaseException], str], ...] = (
    (StreamCancelled, "cancelled"),
    (APITimeoutError, "timeout"),
    (APIConnectionError, "connection_error"),
    (StreamError, "stream_error"),
    (IncompleteStreamError, "incomplete_stream"),
    (ProtocolError, "protocol_error"),
    (APIStatusError, "api_error"),
)


def error_event(error: BaseException, redact: Redactor) -> dict[str, Any]:
    """The typed error object sent as ``event: error``: the SDK error's fields, no secrets.

    ``type`` is the upstream's own error type when it gave one, otherwise the kind of failure
    (``cancelled``, ``timeout``, ``connection_error``, ...); ``error`` names the SDK class.
    """
    kind = next((name for cls, name in _TYPES if isinstance(error, cls)), "internal_error")
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    payload: dict[str, Any] = {
        "type": kind,
        "error": type(error).__name__,
        "message": redact(message),
        "code": None,
        "param": None,
        "status_code": None,
    }
    if isinstance(error, StreamError):
        payload.update(type=error.type or kind, code=error.code, param=error.param)
    elif isinstance(error, APIStatusError):
        payload["status_code"] = error.status_code
        detail = error.body.get("error") if isinstance(error.body, dict) else None
        if isinstance(detail, dict):
            payload.update(
                type=detail.get("type") or kind, code=detail.get("code"), param=detail.get("param")
            )
    elif isinstance(error, APITimeoutError):
        payload["code"] = error.phase
    if isinstance(payload["code"], str):
        payload["code"] = redact(payload["code"])
    return payload


def relay_error(type: str, error: str, message: str) -> str:
    """An ``event: error`` payload the relay itself decides (a stop, a lost generation)."""
    payload = {
        "type": type,
        "error": error,
        "message": message,
        "code": None,
        "param": None,
        "status_code": None,
    }
    return json.dumps(payload)


def http_error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A JSON error response shaped like OpenAI's, which its clients map to typed errors."""
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers=headers,
    )
