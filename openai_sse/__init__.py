"""Streaming OpenAI-compatible Chat Completions over Server-Sent Events, for asyncio."""

from typing import TYPE_CHECKING

from ._lazy import lazy_attributes
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
    RedirectError,
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

if TYPE_CHECKING:
    from .listeners import StructuredOutputError
    from .responses import (
        Response,
        ResponseDispatcher,
        ResponseListener,
        ResponseStream,
        ResponseStreamEvent,
    )

# Imported on first use: a chat-only program never loads the Responses API (its typed
# events are the largest import of the package) or the ready-made listeners.
_LAZY = {
    "Response": "responses",
    "ResponseDispatcher": "responses",
    "ResponseListener": "responses",
    "ResponseStream": "responses",
    "ResponseStreamEvent": "responses",
    "StructuredOutputError": "listeners",
}


__getattr__ = lazy_attributes(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
    "RedirectError",
    "Request",
    "Response",
    "ResponseDispatcher",
    "ResponseListener",
    "ResponseStream",
    "ResponseStreamEvent",
    "RetryPolicy",
    "SSEDecoder",
    "ServerSentEvent",
    "StreamCancelled",
    "StreamError",
    "StreamMetrics",
    "StructuredOutputError",
    "Timeout",
    "UnprocessableEntityError",
    "__version__",
    "encode_event",
]
