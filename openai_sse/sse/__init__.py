"""Layer 1, the wire format: a pure event-stream decoder and its encoder."""

from .decoder import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEDecoder
from .encoder import encode_comment, encode_event

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "SSEDecoder",
    "ServerSentEvent",
    "encode_comment",
    "encode_event",
]
