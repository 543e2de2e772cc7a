"""Injected faults (status codes, stalls, drops, broken events) and OpenAI's error body.

Faults are API-neutral: the same ``Fault`` misbehaves on a chat stream and on a Responses
stream; each API's renderer decides what its own in-stream error looks like.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Fault", "FaultAction", "error_body"]

_STATUS_DEFAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to sample from this model.", "permission_error", None),
    404: (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    409: ("The request conflicts with another request.", "invalid_request_error", None),
    422: ("Unprocessable request.", "invalid_request_error", None),
    429: (
        "Rate limit reached for requests. Please try again later.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


def error_body(
    message: str,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """The error object OpenAI returns, field for field."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


FaultAction = Literal["drop", "stall", "malformed", "error", "oversized"]


@dataclass(frozen=True)
class Fault:
    """One request's misbehaviour; build it with the class methods and combine with ``+``.

    Header-level parts (``status_code``, ``headers_delay``, ``content_type``) and one in-stream
    ``action`` can be combined, e.g. ``Fault.delay_headers(0.5) + Fault.drop_after(3)``.
    ``after`` counts data chunks already sent; a count past the end of the reply fires just
    before ``[DONE]``.
    """

    status_code: int | None = None
    error: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    headers_delay: float = 0.0
    content_type: str | None = None
    body: bytes | None = None
    action: FaultAction | None = None
    after: int = 0
    seconds: float | None = None
    size: int = 0
    data: str | None = None
    send_done: bool = True

    @classmethod
    def status(
        cls,
        status: int,
        message: str | None = None,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        retry_after_ms: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """Answer with ``status`` and an OpenAI error body instead of a reply."""
        d_message, d_type, d_code = _STATUS_DEFAULTS.get(
            status,
            _STATUS_DEFAULTS[500] if status >= 500 else _STATUS_DEFAULTS[400],
        )
        extra = dict(headers or {})
        if retry_after is not None:
            extra["retry-after"] = _number(retry_after)
        if retry_after_ms is not None:
            extra["retry-after-ms"] = str(int(retry_after_ms))
        return cls(
            status_code=status,
            error=error_body(message or d_message, type or d_type, code or d_code, param),
            headers=extra,
        )

    @classmethod
    def delay_headers(cls, seconds: float) -> Fault:
        """Hold the response headers back, to exercise connect / first-byte timeouts."""
        return cls(headers_delay=seconds)

    @classmethod
    def stall_after(cls, after: int, seconds: float | None = None) -> Fault:
        """Go silent after ``after`` chunks for ``seconds`` (None: until the client leaves)."""
        return cls(action="stall", after=after, seconds=seconds)

    @classmethod
    def drop_after(cls, after: int) -> Fault:
        """Abort the connection after ``after`` chunks, with no chunked-encoding terminator."""
        return cls(action="drop", after=after)

    @classmethod
    def malformed_after(cls, after: int, data: str | None = None) -> Fault:
        """Insert one event whose data is not valid JSON, then carry on with the reply."""
        return cls(action="malformed", after=after, data=data)

    @classmethod
    def error_after(
        cls,
        after: int,
        message: str = "The server had an error while processing your request.",
        *,
        type: str = "server_error",
        code: str | None = None,
        param: str | None = None,
        done: bool = False,
    ) -> Fault:
        """Send ``data: {"error": ...}`` mid-stream and end there (with ``[DONE]`` if ``done``)."""
        return cls(
            action="error",
            after=after,
            error=error_body(message, type, code, param),
            send_done=done,
        )

    @classmethod
    def oversized_after(cls, after: int, size: int) -> Fault:
        """Insert one valid chunk whose ``data`` is ``size`` bytes, to exercise size caps."""
        return cls(action="oversized", after=after, size=size)

    @classmethod
    def no_done(cls) -> Fault:
        """End the stream cleanly but without ``data: [DONE]``."""
        return cls(send_done=False)

    @classmethod
    def wrong_content_type(
        cls, content_type: str = "text/plain", body: bytes | str | None = None
    ) -> Fault:
        """Answer 200 with another content type.

        Without ``body`` a JSON type gets the non-streaming completion and any other type
        the event stream bytes, which is what misconfigured proxies do.
        """
        raw = body.encode() if isinstance(body, str) else body
        return cls(content_type=content_type, body=raw)

    def __add__(self, other: Fault) -> Fault:
        if not isinstance(other, Fault):
            return NotImplemented
        if self.action is not None and other.action is not None:
            raise ValueError("a Fault can hold only one in-stream action")
        changes: dict[str, Any] = {}
        default = Fault()
        for f in dataclasses.fields(self):
            value = getattr(other, f.name)
            if value != getattr(default, f.name):
                changes[f.name] = value
        if other.headers:
            changes["headers"] = {**self.headers, **other.headers}
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | Sequence[Mapping[str, Any]] | str) -> Fault:
        """Build from script form: ``{"fault": "drop_after", "after": 3}``, a name, or a list."""
        if isinstance(spec, str):
            spec = {"fault": spec}
        if not isinstance(spec, Mapping):
            combined = cls()
            for part in spec:
                combined = combined + cls.from_dict(part)
            return combined
        kwargs = dict(spec)
        name = kwargs.pop("fault", None)
        if name not in _FAULT_BUILDERS:
            raise ValueError(f"unknown fault {name!r}; expected one of {sorted(_FAULT_BUILDERS)}")
        builder = getattr(cls, name)
        result: Fault = builder(**kwargs)
        return result


_FAULT_BUILDERS = frozenset(
    {
        "status",
        "delay_headers",
        "stall_after",
        "drop_after",
        "malformed_after",
        "error_after",
        "oversized_after",
        "no_done",
        "wrong_content_type",
    }
)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
