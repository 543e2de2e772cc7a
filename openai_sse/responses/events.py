"""Typed Responses API stream events: one msgspec tagged union on ``type``.

Class names and attribute paths are the official ``openai`` package's
(``ResponseTextDeltaEvent.delta``, ``ResponseCompletedEvent.response``, ...). Decoding is the
hot path of a stream: one strict decoder for the whole union reads every documented event in a
single pass. Only a payload it rejects takes the repairing path, where an event type this
module does not know becomes a :class:`GenericEvent` holding the raw payload: never an error,
because the API adds event types often. ``sequence_number`` is optional, as older streams
did not send it.

Annotations use ``Optional``/``Union`` because msgspec evaluates them at class creation.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import msgspec

from .._payload import Payload, load_object, malformed, normalise
from .models import (
    Logprob,
    Response,
    ResponseContent,
    ResponseOutputItem,
    convert,
    repair_item,
    repair_part,
    repair_response,
    tags,
)

__all__ = [
    "GenericEvent",
    "ResponseAudioDeltaEvent",
    "ResponseAudioDoneEvent",
    "ResponseAudioTranscriptDeltaEvent",
    "ResponseAudioTranscriptDoneEvent",
    "ResponseCodeInterpreterCallCodeDeltaEvent",
    "ResponseCodeInterpreterCallCodeDoneEvent",
    "ResponseCodeInterpreterCallCompletedEvent",
    "ResponseCodeInterpreterCallInProgressEvent",
    "ResponseCodeInterpreterCallInterpretingEvent",
    "ResponseCompactionCompactingEvent",
    "ResponseCompletedEvent",
    "ResponseContentPartAddedEvent",
    "ResponseContentPartDoneEvent",
    "ResponseCreatedEvent",
    "ResponseCustomToolCallInputDeltaEvent",
    "ResponseCustomToolCallInputDoneEvent",
    "ResponseErrorEvent",
    "ResponseFailedEvent",
    "ResponseFileSearchCallCompletedEvent",
    "ResponseFileSearchCallInProgressEvent",
    "ResponseFileSearchCallSearchingEvent",
    "ResponseFunctionCallArgumentsDeltaEvent",
    "ResponseFunctionCallArgumentsDoneEvent",
    "ResponseImageGenCallCompletedEvent",
    "ResponseImageGenCallGeneratingEvent",
    "ResponseImageGenCallInProgressEvent",
    "ResponseImageGenCallPartialImageEvent",
    "ResponseInProgressEvent",
    "ResponseIncompleteEvent",
    "ResponseMcpCallArgumentsDeltaEvent",
    "ResponseMcpCallArgumentsDoneEvent",
    "ResponseMcpCallCompletedEvent",
    "ResponseMcpCallFailedEvent",
    "ResponseMcpCallInProgressEvent",
    "ResponseMcpListToolsCompletedEvent",
    "ResponseMcpListToolsFailedEvent",
    "ResponseMcpListToolsInProgressEvent",
    "ResponseOutputItemAddedEvent",
    "ResponseOutputItemDoneEvent",
    "ResponseOutputTextAnnotationAddedEvent",
    "ResponseQueuedEvent",
    "ResponseReasoningSummaryPartAddedEvent",
    "ResponseReasoningSummaryPartDoneEvent",
    "ResponseReasoningSummaryTextDeltaEvent",
    "ResponseReasoningSummaryTextDoneEvent",
    "ResponseReasoningTextDeltaEvent",
    "ResponseReasoningTextDoneEvent",
    "ResponseRefusalDeltaEvent",
    "ResponseRefusalDoneEvent",
    "ResponseStreamEvent",
    "ResponseTextDeltaEvent",
    "ResponseTextDoneEvent",
    "ResponseWebSearchCallCompletedEvent",
    "ResponseWebSearchCallInProgressEvent",
    "ResponseWebSearchCallSearchingEvent",
    "SummaryPart",
    "decode_event",
]


class _Event(Payload, tag_field="type"):
    """Base of every typed event; ``.type`` reads the tag like the official models."""

    sequence_number: Optional[int] = None

    @property
    def type(self) -> str:
        tag: str = self.__struct_config__.tag  # type: ignore[assignment]
        return tag


class _ResponseEvent(_Event):
    response: Response = msgspec.field(default_factory=Response)


class _ItemEvent(_Event):
    item_id: str = ""
    output_index: int = 0


class _PartEvent(_ItemEvent):
    content_index: int = 0


class _SummaryEvent(_ItemEvent):
    summary_index: int = 0


# -- lifecycle of the response


class ResponseCreatedEvent(_ResponseEvent, tag="response.created"):
    pass


class ResponseInProgressEvent(_ResponseEvent, tag="response.in_progress"):
    pass


class ResponseQueuedEvent(_ResponseEvent, tag="response.queued"):
    pass


class ResponseCompletedEvent(_ResponseEvent, tag="response.completed"):
    pass


class ResponseIncompleteEvent(_ResponseEvent, tag="response.incomplete"):
    pass


class ResponseFailedEvent(_ResponseEvent, tag="response.failed"):
    pass


class ResponseErrorEvent(_Event, tag="error"):
    """An error inside the stream.

    The documented shape has ``code``/``message``/``param`` at the top; OpenAI has also been
    seen nesting them in ``error`` (``{"type": "error", "error": {...}}``), which is kept.
    """

    code: Optional[str] = None
    message: str = ""
    param: Optional[str] = None
    error: Any = None


# -- output items and content parts


class ResponseOutputItemAddedEvent(_Event, tag="response.output_item.added"):
    output_index: int = 0
    item: Optional[ResponseOutputItem] = None


class ResponseOutputItemDoneEvent(_Event, tag="response.output_item.done"):
    output_index: int = 0
    item: Optional[ResponseOutputItem] = None


class ResponseContentPartAddedEvent(_PartEvent, tag="response.content_part.added"):
    part: Optional[ResponseContent] = None


class ResponseContentPartDoneEvent(_PartEvent, tag="response.content_part.done"):
    part: Optional[ResponseContent] = None


# -- text, refusal, annotations


class ResponseTextDeltaEvent(_PartEvent, tag="response.output_text.delta"):
    delta: str = ""
    logprobs: list[Logprob] = msgspec.field(default_factory=list)
    obfuscation: Optional[str] = None


class ResponseTextDoneEvent(_PartEvent, tag="response.output_text.done"):
    text: str = ""
    logprobs: list[Logprob] = msgspec.field(default_factory=list)


class ResponseOutputTextAnnotationAddedEvent(
    _PartEvent, tag="response.output_text.annotation.added"
):
    """``annotation`` is a plain object, as in the official package."""

    annotation_index: int = 0
    annotation: Any = None


class ResponseRefusalDeltaEvent(_PartEvent, tag="response.refusal.delta"):
    delta: str = ""
    obfuscation: Optional[str] = None


class ResponseRefusalDoneEvent(_PartEvent, tag="response.refusal.done"):
    refusal: str = ""


# -- function calls and custom tools


class ResponseFunctionCallArgumentsDeltaEvent(
    _ItemEvent, tag="response.function_call_arguments.delta"
):
    delta: str = ""
    obfuscation: Optional[str] = None


class ResponseFunctionCallArgumentsDoneEvent(
    _ItemEvent, tag="response.function_call_arguments.done"
):
    arguments: str = ""
    name: Optional[str] = None


class ResponseCustomToolCallInputDeltaEvent(
    _ItemEvent, tag="response.custom_tool_call_input.delta"
):
    delta: str = ""
    obfuscation: Optional[str] = None


class ResponseCustomToolCallInputDoneEvent(_ItemEvent, tag="response.custom_tool_call_input.done"):
    input: str = ""


# -- reasoning


class SummaryPart(msgspec.Struct):
    text: str = ""
    type: str = "summary_text"


class ResponseReasoningSummaryPartAddedEvent(
    _SummaryEvent, tag="response.reasoning_summary_part.added"
):
    part: SummaryPart = msgspec.field(default_factory=SummaryPart)


class ResponseReasoningSummaryPartDoneEvent(
    _SummaryEvent, tag="response.reasoning_summary_part.done"
):
    part: SummaryPart = msgspec.field(default_factory=SummaryPart)
    status: Optional[str] = None


class ResponseReasoningSummaryTextDeltaEvent(
    _SummaryEvent, tag="response.reasoning_summary_text.delta"
):
    delta: str = ""
    obfuscation: Optional[str] = None


class ResponseReasoningSummaryTextDoneEvent(
    _SummaryEvent, tag="response.reasoning_summary_text.done"
):
    text: str = ""


class ResponseReasoningTextDeltaEvent(_PartEvent, tag="response.reasoning_text.delta"):
    delta: str = ""
    obfuscation: Optional[str] = None


class ResponseReasoningTextDoneEvent(_PartEvent, tag="response.reasoning_text.done"):
    text: str = ""


# -- built-in tools: progress of the item at ``output_index``


class ResponseWebSearchCallInProgressEvent(_ItemEvent, tag="response.web_search_call.in_progress"):
    pass


class ResponseWebSearchCallSearchingEvent(_ItemEvent, tag="response.web_search_call.searching"):
    pass


class ResponseWebSearchCallCompletedEvent(_ItemEvent, tag="response.web_search_call.completed"):
    pass


class ResponseFileSearchCallInProgressEvent(
    _ItemEvent, tag="response.file_search_call.in_progress"
):
    pass


class ResponseFileSearchCallSearchingEvent(_ItemEvent, tag="response.file_search_call.searching"):
    pass


class ResponseFileSearchCallCompletedEvent(_ItemEvent, tag="response.file_search_call.completed"):
    pass


class ResponseCodeInterpreterCallInProgressEvent(
    _ItemEvent, tag="response.code_interpreter_call.in_progress"
):
    pass


class ResponseCodeInterpreterCallInterpretingEvent(
    _ItemEvent, tag="response.code_interpreter_call.interpreting"
):
    pass


class ResponseCodeInterpreterCallCompletedEvent(
    _ItemEvent, tag="response.code_interpreter_call.completed"
):
    pass


class ResponseCodeInterpreterCallCodeDeltaEvent(
    _ItemEvent, tag="response.code_interpreter_call_code.delta"
):
    delta: str = ""
    obfuscation: Optional[str] = None


class ResponseCodeInterpreterCallCodeDoneEvent(
    _ItemEvent, tag="response.code_interpreter_call_code.done"
):
    code: str = ""


class ResponseMcpCallInProgressEvent(_ItemEvent, tag="response.mcp_call.in_progress"):
    pass


class ResponseMcpCallCompletedEvent(_ItemEvent, tag="response.mcp_call.completed"):
    pass


class ResponseMcpCallFailedEvent(_ItemEvent, tag="response.mcp_call.failed"):
    pass


class ResponseMcpCallArgumentsDeltaEvent(_ItemEvent, tag="response.mcp_call_arguments.delta"):
    delta: str = ""
    obfuscation: Optional[str] = None


class ResponseMcpCallArgumentsDoneEvent(_ItemEvent, tag="response.mcp_call_arguments.done"):
    arguments: str = ""


class ResponseMcpListToolsInProgressEvent(_ItemEvent, tag="response.mcp_list_tools.in_progress"):
    pass


class ResponseMcpListToolsCompletedEvent(_ItemEvent, tag="response.mcp_list_tools.completed"):
    pass


class ResponseMcpListToolsFailedEvent(_ItemEvent, tag="response.mcp_list_tools.failed"):
    pass


class ResponseImageGenCallInProgressEvent(
    _ItemEvent, tag="response.image_generation_call.in_progress"
):
    pass


class ResponseImageGenCallGeneratingEvent(
    _ItemEvent, tag="response.image_generation_call.generating"
):
    pass


class ResponseImageGenCallCompletedEvent(
    _ItemEvent, tag="response.image_generation_call.completed"
):
    pass


class ResponseImageGenCallPartialImageEvent(
    _ItemEvent, tag="response.image_generation_call.partial_image"
):
    partial_image_b64: str = ""
    partial_image_index: int = 0


class ResponseCompactionCompactingEvent(_ItemEvent, tag="response.compaction.compacting"):
    pass


# -- audio


class ResponseAudioDeltaEvent(_Event, tag="response.audio.delta"):
    delta: str = ""


class ResponseAudioDoneEvent(_Event, tag="response.audio.done"):
    pass


class ResponseAudioTranscriptDeltaEvent(_Event, tag="response.audio.transcript.delta"):
    delta: str = ""


class ResponseAudioTranscriptDoneEvent(_Event, tag="response.audio.transcript.done"):
    pass


class GenericEvent(Payload):
    """An event type this package does not know yet; ``data`` is its whole payload."""

    type: str = ""
    sequence_number: Optional[int] = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)


_TypedEvent = Union[
    ResponseCreatedEvent,
    ResponseInProgressEvent,
    ResponseQueuedEvent,
    ResponseCompletedEvent,
    ResponseIncompleteEvent,
    ResponseFailedEvent,
    ResponseErrorEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseOutputTextAnnotationAddedEvent,
    ResponseRefusalDeltaEvent,
    ResponseRefusalDoneEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseCustomToolCallInputDeltaEvent,
    ResponseCustomToolCallInputDoneEvent,
    ResponseReasoningSummaryPartAddedEvent,
    ResponseReasoningSummaryPartDoneEvent,
    ResponseReasoningSummaryTextDeltaEvent,
    ResponseReasoningSummaryTextDoneEvent,
    ResponseReasoningTextDeltaEvent,
    ResponseReasoningTextDoneEvent,
    ResponseWebSearchCallInProgressEvent,
    ResponseWebSearchCallSearchingEvent,
    ResponseWebSearchCallCompletedEvent,
    ResponseFileSearchCallInProgressEvent,
    ResponseFileSearchCallSearchingEvent,
    ResponseFileSearchCallCompletedEvent,
    ResponseCodeInterpreterCallInProgressEvent,
    ResponseCodeInterpreterCallInterpretingEvent,
    ResponseCodeInterpreterCallCompletedEvent,
    ResponseCodeInterpreterCallCodeDeltaEvent,
    ResponseCodeInterpreterCallCodeDoneEvent,
    ResponseMcpCallInProgressEvent,
    ResponseMcpCallCompletedEvent,
    ResponseMcpCallFailedEvent,
    ResponseMcpCallArgumentsDeltaEvent,
    ResponseMcpCallArgumentsDoneEvent,
    ResponseMcpListToolsInProgressEvent,
    ResponseMcpListToolsCompletedEvent,
    ResponseMcpListToolsFailedEvent,
    ResponseImageGenCallInProgressEvent,
    ResponseImageGenCallGeneratingEvent,
    ResponseImageGenCallCompletedEvent,
    ResponseImageGenCallPartialImageEvent,
    ResponseCompactionCompactingEvent,
    ResponseAudioDeltaEvent,
    ResponseAudioDoneEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
]

ResponseStreamEvent = Union[_TypedEvent, GenericEvent]
"""Any event a Responses stream delivers: a typed event, or a :class:`GenericEvent`."""

EVENT_TYPES = tags(_TypedEvent)

_event_decoder = msgspec.json.Decoder(_TypedEvent)
_SUMMARY_PART_EVENTS = (
    ResponseReasoningSummaryPartAddedEvent,
    ResponseReasoningSummaryPartDoneEvent,
)


def decode_event(data: str | bytes, event_type: str | None = None) -> ResponseStreamEvent:
    """Decode one event's data; :class:`~openai_sse.ProtocolError` if it is not an event.

    The type is read from the JSON ``type`` field, so servers that send no ``event:`` lines
    decode the same; ``event_type`` (the SSE ``event:`` field) is used only for a payload
    without a ``type``.
    """
    try:
        event: ResponseStreamEvent = _event_decoder.decode(data)
    except msgspec.ValidationError:
        event = _decode_repaired(data, event_type)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise malformed("response event", data, f"invalid JSON ({exc})") from None
    event._raw_json = data
    if isinstance(event, _ResponseEvent):
        # The response inside keeps its own JSON too, so the final object's to_dict() and
        # model_extra show every field the server sent. These events are few per stream.
        inner = msgspec.json.decode(data).get("response")
        if isinstance(inner, dict):
            event.response._raw_json = msgspec.json.encode(inner)
    return event


def _decode_repaired(data: str | bytes, event_type: str | None) -> ResponseStreamEvent:
    payload = load_object(data, "response event")
    kind = payload.get("type")
    if kind is None and event_type and event_type != "message":
        kind = payload["type"] = event_type
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        sequence = payload.get("sequence_number")
        return GenericEvent(
            type=kind if isinstance(kind, str) else "",
            sequence_number=sequence if isinstance(sequence, int) else None,
            data=payload,
        )
    if "item" in payload:
        payload["item"] = repair_item(payload["item"])
    if "part" in payload and cls not in _SUMMARY_PART_EVENTS:
        payload["part"] = repair_part(payload["part"])
    if "response" in payload:
        repair_response(payload["response"])
    normalise(payload, cls)
    event: ResponseStreamEvent = convert(payload, cls, data, "response event")
    return event
