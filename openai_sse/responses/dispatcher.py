"""Turns one decoded Responses event into hook calls on the Responses listeners.

Decoding, accumulation and the outcome belong to :class:`~openai_sse.responses.ResponseStream`;
tables, ordering, isolation and terminal calls to :class:`~openai_sse.streaming.Fanout`. What
is specific here is which hooks an event calls, and a direct path for the most common event
(an output text delta) when only plain ``on_content`` hooks listen.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Final

from ..streaming import Emission, Fanout
from . import events as ev
from .listener import ResponseListener
from .models import ResponseFunctionToolCall

if TYPE_CHECKING:
    from .stream import ResponseStream

__all__ = ["ResponseDispatcher"]

# Hooks a text delta can never call besides on_content: while only these have listeners,
# a text delta takes the direct path.
_TEXT_DELTA_SAFE: Final = frozenset(
    (
        "on_open",
        "on_content",
        "on_refusal",
        "on_reasoning",
        "on_tool_call",
        "on_usage",
        "on_closed",
        "on_failure",
    )
)
_REASONING_DELTAS: Final = (
    ev.ResponseReasoningSummaryTextDeltaEvent,
    ev.ResponseReasoningTextDeltaEvent,
)
_COMPLETE: Final = (ev.ResponseCompletedEvent, ev.ResponseIncompleteEvent)
_WITH_RESPONSE: Final = (
    ev.ResponseCompletedEvent,
    ev.ResponseIncompleteEvent,
    ev.ResponseFailedEvent,
    ev.ResponseCreatedEvent,
    ev.ResponseInProgressEvent,
    ev.ResponseQueuedEvent,
)


class ResponseDispatcher(Fanout):
    """Fans Responses events out to :class:`ResponseListener` objects (or any object with
    some of the hooks). See :class:`~openai_sse.streaming.Fanout` for isolation,
    ``raise_errors`` and terminal calls."""

    HOOKS: ClassVar[tuple[str, ...]] = (
        "on_open",
        "on_event",
        "on_content",
        "on_refusal",
        "on_reasoning",
        "on_tool_call",
        "on_usage",
        "on_closed",
        "on_failure",
    )
    LISTENER: ClassVar[type] = ResponseListener

    stream: ResponseStream
    _direct_text: bool

    def __init__(self, stream: object, listeners: Iterable[object] = ()) -> None:
        self._calls_reported: set[int] = set()  # output indexes whose call was reported
        super().__init__(stream, listeners)

    def _rebuilt(self) -> None:
        self._direct_text = not self._any_async and self._wanted <= _TEXT_DELTA_SAFE

    def dispatch(self, event: ev.ResponseStreamEvent, context: Any) -> Awaitable[None] | None:
        if self._direct_text and type(event) is ev.ResponseTextDeltaEvent:
            text = event.delta
            if text:
                stream = self.stream
                index = event.output_index
                for listener, method in self._hooks["on_content"]:
                    try:
                        result = method(stream, text, index)
                    except Exception as exc:
                        self._listener_failed(listener, "on_content", exc)
                        continue
                    if result is not None and inspect.isawaitable(result):
                        return self._resume(result, listener, "on_content", (text, index), [])
            return None
        return self.emit(self._emissions(event, context))

    def _emissions(self, event: ev.ResponseStreamEvent, context: Any) -> list[Emission]:
        hooks = self._hooks
        out: list[Emission] = []
        if hooks["on_event"]:
            out.append(("on_event", (event,)))
        if isinstance(event, ev.ResponseTextDeltaEvent):
            if event.delta and hooks["on_content"]:
                out.append(("on_content", (event.delta, event.output_index)))
        elif isinstance(event, ev.ResponseRefusalDeltaEvent):
            if event.delta and hooks["on_refusal"]:
                out.append(("on_refusal", (event.delta, event.output_index)))
        elif isinstance(event, _REASONING_DELTAS):
            if event.delta and hooks["on_reasoning"]:
                out.append(("on_reasoning", (event.delta, event.output_index)))
        elif isinstance(event, ev.ResponseOutputItemDoneEvent):
            item = event.item
            if isinstance(item, ResponseFunctionToolCall) and hooks["on_tool_call"]:
                self._calls_reported.add(event.output_index)
                out.append(("on_tool_call", (item, event.output_index)))
        elif isinstance(event, _WITH_RESPONSE):
            if hooks["on_tool_call"] and isinstance(event, _COMPLETE):
                # Servers that never sent output_item.done for a call: report it now.
                reported = self._calls_reported
                out.extend(
                    ("on_tool_call", (item, index))
                    for index, item in enumerate(event.response.output)
                    if isinstance(item, ResponseFunctionToolCall) and index not in reported
                )
            usage = event.response.usage
            if usage is not None and hooks["on_usage"]:
                out.append(("on_usage", (usage,)))
        return out
