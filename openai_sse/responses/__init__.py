"""Layer 3b, the Responses API (``/v1/responses``): typed events, the final object, its
accumulation, listeners, the dispatcher, the stream and the ``client.responses`` namespace."""

from . import events
from .accumulator import ResponseAccumulator
from .dispatcher import ResponseDispatcher
from .events import GenericEvent, ResponseStreamEvent, decode_event
from .listener import ResponseListener
from .models import (
    GenericItem,
    GenericPart,
    Response,
    ResponseFunctionToolCall,
    ResponseOutputItem,
    ResponseOutputMessage,
    ResponseOutputRefusal,
    ResponseOutputText,
    ResponseReasoningItem,
    ResponseUsage,
    decode_response,
)
from .params import EasyInputMessageParam, ReasoningParam, ResponseParams
from .stream import ResponseStream

__all__ = [
    "EasyInputMessageParam",
    "GenericEvent",
    "GenericItem",
    "GenericPart",
    "ReasoningParam",
    "Response",
    "ResponseAccumulator",
    "ResponseDispatcher",
    "ResponseFunctionToolCall",
    "ResponseListener",
    "ResponseOutputItem",
    "ResponseOutputMessage",
    "ResponseOutputRefusal",
    "ResponseOutputText",
    "ResponseParams",
    "ResponseReasoningItem",
    "ResponseStream",
    "ResponseStreamEvent",
    "ResponseUsage",
    "decode_event",
    "decode_response",
    "events",
]
