"""Streaming OpenAI-compatible Chat Completions over Server-Sent Events, for asyncio."""

from ._version import __version__
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    IncompleteStreamError,
    InternalServerError,
    NotFoundError,
    OpenAISSEError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    StreamCancelled,
    StreamError,
    UnprocessableEntityError,
)
from .sse import ServerSentEvent, SSEDecoder, encode_event

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
    "SSEDecoder",
    "ServerSentEvent",
    "StreamCancelled",
    "StreamError",
    "UnprocessableEntityError",
    "__version__",
    "encode_event",
]
