"""Layer 2, the transport: an OkHttp-style event source on an aiohttp session."""

from .eventsource import EventSource, EventSourceFactory, EventSources, ReadyState
from .listener import EventSourceListener
from .reconnect import Reconnect
from .request import Request
from .timeouts import Timeout

__all__ = [
    "EventSource",
    "EventSourceFactory",
    "EventSourceListener",
    "EventSources",
    "ReadyState",
    "Reconnect",
    "Request",
    "Timeout",
]
