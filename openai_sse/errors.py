"""One error hierarchy for every layer, so callers catch one base class.

The names mirror the official ``openai`` package where they overlap, which lets code written
against it keep its ``except`` clauses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._redact import mask_body

if TYPE_CHECKING:
    import aiohttp

    from .chat.models import ChatCompletion
    from .responses.models import Response

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "IncompleteStreamError",
    "InternalServerError",
    "NotFoundError",
    "OpenAISSEError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "RedirectError",
    "StreamCancelled",
    "StreamError",
    "UnprocessableEntityError",
    "status_error",
]


class OpenAISSEError(Exception):
    """Base of every error this package raises or hands to a listener.

    ``snapshot`` holds the partial answer when the error ends a stream, so an interrupted
    answer is never lost: a ``ChatCompletion`` for chat, a ``Response`` for the Responses API,
    ``None`` below those layers (narrow it with ``isinstance``).
    """

    response: aiohttp.ClientResponse | None
    snapshot: ChatCompletion | Response | None

    def __init__(self, message: str, *, response: aiohttp.ClientResponse | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.response = response
        self.snapshot = None


class APIConnectionError(OpenAISSEError):
    """The transport failed: DNS, connect, TLS, reset, or the body broke off mid-stream."""

    def __init__(
        self,
        message: str = "Connection error.",
        *,
        response: aiohttp.ClientResponse | None = None,
    ) -> None:
        super().__init__(message, response=response)


class APITimeoutError(APIConnectionError):
    """A configured timeout fired; ``phase`` says which one (connect, first_event, idle, total)."""

    def __init__(
        self,
        message: str = "Request timed out.",
        *,
        phase: str = "total",
        response: aiohttp.ClientResponse | None = None,
    ) -> None:
        super().__init__(message, response=response)
        self.phase = phase


class APIStatusError(OpenAISSEError):
    """The server answered with a non-2xx status; the body was read before this was raised."""

    status_code: int

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        response: aiohttp.ClientResponse | None = None,
        body: Any = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, response=response)
        self.status_code = status_code
        self.body = body
        self.request_id = request_id


class BadRequestError(APIStatusError):
    """400."""


class AuthenticationError(APIStatusError):
    """401."""


class PermissionDeniedError(APIStatusError):
    """403."""


class NotFoundError(APIStatusError):
    """404."""


class ConflictError(APIStatusError):
    """409."""


class UnprocessableEntityError(APIStatusError):
    """422."""


class RateLimitError(APIStatusError):
    """429."""


class InternalServerError(APIStatusError):
    """Any status of 500 or above."""


class ProtocolError(OpenAISSEError):
    """The peer broke the protocol: wrong content type, malformed chunk, or an oversized event."""


class RedirectError(ProtocolError):
    """A redirect this package will not follow: to another origin, invalid, or too many.

    Same-origin redirects are followed (at most five); one to another scheme, host or port is
    refused before anything is sent there, so no credential header and no request body (the
    prompt) can leak. ``location`` is where it pointed, with any secret in it masked. It is
    not retried: a redirect answers the same way each time. Point ``base_url`` at the final
    address instead.
    """

    def __init__(
        self,
        message: str,
        *,
        location: str,
        status_code: int,
        response: aiohttp.ClientResponse | None = None,
    ) -> None:
        super().__init__(message, response=response)
        self.location = location
        self.status_code = status_code


class StreamError(OpenAISSEError):
    """The server reported an error inside an otherwise healthy stream.

    ``response`` is the HTTP response, except when a Responses API stream ends in
    ``response.failed``: then it is the server's own failed ``Response`` object (with
    ``.status``, ``.error``, ``.output``), as the server sent it.
    """

    response: Any

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,
        code: str | int | None = None,
        param: str | None = None,
        body: Any = None,
        response: aiohttp.ClientResponse | None = None,
    ) -> None:
        super().__init__(message, response=response)
        self.type = type
        self.code = code
        self.param = param
        self.body = body


class IncompleteStreamError(OpenAISSEError):
    """The stream ended before ``[DONE]`` while some choice was still unfinished."""


class StreamCancelled(OpenAISSEError):
    """The stream was cancelled by the caller; never a server or network fault."""

    def __init__(
        self,
        message: str = "Stream cancelled.",
        *,
        response: aiohttp.ClientResponse | None = None,
    ) -> None:
        super().__init__(message, response=response)


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error(
    status: int,
    body: Any,
    *,
    response: aiohttp.ClientResponse | None = None,
    request_id: str | None = None,
    secrets: tuple[str, ...] = (),
) -> APIStatusError:
    """Build the typed error for ``status``, taking the message from an OpenAI error body.

    Each of ``secrets`` (the request's credentials) is masked in the body and the message, as
    servers echo a wrong key back ("Incorrect API key provided: sk-...").
    """
    if secrets:
        body = mask_body(body, secrets)
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = InternalServerError if status >= 500 else APIStatusError
    message = _error_message(body) or f"HTTP {status}"
    return cls(
        f"Error code: {status} - {message}",
        status_code=status,
        response=response,
        body=body,
        request_id=request_id,
    )


def _error_message(body: Any) -> str | None:
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            msg = err.get("message")
            if isinstance(msg, str) and msg:
                return msg
        elif isinstance(err, str) and err:
            return err
        msg = body.get("message")
        if isinstance(msg, str) and msg:
            return msg
        return None
    if isinstance(body, str) and body.strip():
        text = body.strip()
        return text if len(text) <= 500 else text[:500] + "…"
    return None
