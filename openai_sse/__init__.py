"""Streaming OpenAI-compatible Chat Completions over Server-Sent Events, for asyncio."""

from ._version import __version__
from .chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatDispatcher,
    ChatListener,
    ChatStream,
    StreamMetrics,
)
from .client import Client
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
from .retries import RetryPolicy
from .sse import ServerSentEvent, SSEDecoder, encode_event
from .transport import (
    EventSource,
    EventSourceListener,
    EventSources,
    ReadyState,
    Reconnect,
    Request,
    Timeout,
)

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatDispatcher",
    "ChatListener",
    "ChatStream",
    "Client",
    "ConflictError",
    "EventSource",
    "EventSourceListener",
    "EventSources",
    "IncompleteStreamError",
    "InternalServerError",
    "NotFoundError",
    "OpenAISSEError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "ReadyState",
    "Reconnect",
    "Request",
    "RetryPolicy",
    "SSEDecoder",
    "ServerSentEvent",
    "StreamCancelled",
    "StreamError",
    "StreamMetrics",
    "Timeout",
    "UnprocessableEntityError",
    "__version__",
    "encode_event",
]
