"""Build a :class:`Response` from the events of one stream.

:meth:`ResponseAccumulator.add` runs once per event on the hot path, so a delta only appends
its string to a fragment list of the item (and part) it belongs to; strings are joined when a
snapshot is built, which keeps a stream linear in its size however small the deltas are.
Items the server sends whole (``output_item.done``, ``content_part.done``, the ``*.done``
texts) replace what was pieced together, and the object of a terminal event replaces the
whole snapshot: the server's own word is final.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from msgspec.structs import replace

from . import events as ev
from .models import (
    McpCall,
    ReasoningContent,
    ReasoningSummary,
    Response,
    ResponseCodeInterpreterToolCall,
    ResponseContent,
    ResponseCustomToolCall,
    ResponseFunctionToolCall,
    ResponseOutputItem,
    ResponseOutputMessage,
    ResponseOutputRefusal,
    ResponseOutputText,
    ResponseReasoningItem,
    ResponseReasoningText,
    ResponseUsage,
    TextAnnotation,
    annotation_of,
)

__all__ = ["ResponseAccumulator"]


def _joined(fragments: list[str]) -> str:
    """The fragments as one string, collapsed so the next snapshot joins only what is new."""
    if len(fragments) > 1:
        fragments[:] = ["".join(fragments)]
    return fragments[0] if fragments else ""


class _Part:
    """One content part of a message (text or refusal) or of a reasoning item."""

    __slots__ = ("annotations", "base", "final", "text")

    def __init__(self, base: ResponseContent) -> None:
        self.base = base
        self.text: list[str] = []
        self.annotations: list[TextAnnotation] | None = None
        self.final = False

    def build(self) -> ResponseContent:
        base = self.base
        if self.final:
            return base
        if isinstance(base, ResponseOutputText):
            annotations = base.annotations
            if self.annotations is not None:
                annotations = list(self.annotations)
            return replace(base, text=_joined(self.text), annotations=annotations)
        if isinstance(base, ResponseOutputRefusal):
            return replace(base, refusal=_joined(self.text))
        if isinstance(base, ResponseReasoningText):
            return replace(base, text=_joined(self.text))
        return base


class _Item:
    """Everything one output item has received so far."""

    __slots__ = ("base", "built", "final", "parts", "summary", "text")

    def __init__(self, base: ResponseOutputItem) -> None:
        self.base = base
        self.final = False  # the server sent the whole item (output_item.done)
        self.text: list[str] = []  # arguments, custom tool input or code, by item kind
        self.parts: dict[int, _Part] = {}
        self.summary: dict[int, list[str]] = {}
        self.built: ResponseOutputItem | None = None

    def part(self, index: int, make: Callable[[], ResponseContent]) -> _Part:
        part = self.parts.get(index)
        if part is None:
            part = self.parts[index] = _Part(make())
        return part

    def build(self) -> ResponseOutputItem:
        built = self.built
        if built is not None:
            return built
        base = self.base
        if self.final:
            built = base
        elif isinstance(base, ResponseOutputMessage):
            parts = self.parts
            built = replace(base, content=[parts[i].build() for i in sorted(parts)])
        elif isinstance(base, ResponseFunctionToolCall):
            built = replace(base, arguments=_joined(self.text)) if self.text else base
        elif isinstance(base, ResponseReasoningItem):
            built = self._reasoning(base)
        elif isinstance(base, ResponseCustomToolCall):
            built = replace(base, input=_joined(self.text)) if self.text else base
        elif isinstance(base, ResponseCodeInterpreterToolCall):
            built = replace(base, code=_joined(self.text)) if self.text else base
        elif isinstance(base, McpCall):
            built = replace(base, arguments=_joined(self.text)) if self.text else base
        else:
            built = base
        self.built = built
        return built

    def _reasoning(self, base: ResponseReasoningItem) -> ResponseReasoningItem:
        summary = base.summary
        if self.summary:
            summary = list(summary)
            listed = len(summary)
            for index in sorted(self.summary):
                # Parts beyond those the item listed (or at a nonsensical index) are appended
                # in index order rather than padded: an index is the server's word, not a size.
                entry = ReasoningSummary(text=_joined(self.summary[index]))
                if 0 <= index < listed:
                    summary[index] = entry
                else:
                    summary.append(entry)
        content = base.content
        if self.parts:
            parts = self.parts
            content = []
            for index in sorted(parts):
                part = parts[index].build()
                text = part.text if isinstance(part, ResponseReasoningText) else ""
                content.append(ReasoningContent(text=text))
        return replace(base, summary=summary, content=content)


_Handler = Callable[["ResponseAccumulator", Any], None]


class ResponseAccumulator:
    """Feed it every event of one stream; :attr:`snapshot` is the response so far.

    Items are kept by ``output_index`` and parts by ``content_index``, so interleaved items
    (parallel tool calls) merge correctly. A delta for an item or part that was never
    announced (some compatible servers skip ``output_item.added``) creates one of the kind the
    delta implies.
    """

    __slots__ = ("_base", "_final", "_items", "_last", "_snapshot", "_usage")

    def __init__(self) -> None:
        self._base = Response()
        # (output_index, content_index, part, item) of the last text delta: the next one
        # almost always continues it.
        self._last: tuple[int, int, _Part, _Item] | None = None
        self._items: dict[int, _Item] = {}
        self._final: Response | None = None
        self._usage: ResponseUsage | None = None
        self._snapshot: Response | None = None

    @property
    def snapshot(self) -> Response:
        """The response as far as it has streamed; cached until the next :meth:`add`."""
        final = self._final
        if final is not None:
            return final
        snapshot = self._snapshot
        if snapshot is None:
            items = self._items
            snapshot = self._snapshot = replace(
                self._base,
                output=[items[i].build() for i in sorted(items)],
                usage=self._usage or self._base.usage,
            )
        return snapshot

    @property
    def response_id(self) -> str:
        """The response's id, once an event told it."""
        final = self._final
        return final.id if final is not None else self._base.id

    @property
    def usage(self) -> ResponseUsage | None:
        """The usage the stream reported (it arrives with the terminal event)."""
        return self._usage

    @property
    def finished(self) -> bool:
        """True once a terminal event delivered the server's own object."""
        return self._final is not None

    def add(self, event: ev.ResponseStreamEvent) -> None:
        """Merge one event into the response."""
        self._snapshot = None
        cls = event.__class__
        if cls is ev.ResponseTextDeltaEvent:  # the common case first
            last = self._last
            index = event.output_index  # type: ignore[union-attr]
            content = event.content_index  # type: ignore[union-attr]
            if last is not None and last[0] == index and last[1] == content:
                last[2].text.append(event.delta)  # type: ignore[union-attr]
                last[3].built = None
                return
            item = self._item(index, event.item_id, ResponseOutputMessage)  # type: ignore[union-attr]
            part = item.part(content, ResponseOutputText)
            part.text.append(event.delta)  # type: ignore[union-attr]
            self._last = (index, content, part, item)
            return
        handler = _HANDLERS.get(cls)
        if handler is not None:
            handler(self, event)

    # -- the response itself

    def _response(self, event: Any) -> None:
        response: Response = event.response
        self._base = response
        if response.usage is not None:
            self._usage = response.usage

    def _terminal(self, event: Any) -> None:
        """The server's object is final; an empty ``output`` keeps what was streamed."""
        self._response(event)
        response: Response = event.response
        if not response.output and self._items:
            items = self._items
            response = replace(response, output=[items[i].build() for i in sorted(items)])
        self._final = response

    # -- items and parts

    def _item(self, index: int, item_id: str, kind: type[Any]) -> _Item:
        item = self._items.get(index)
        if item is None:
            base = kind(id=item_id) if item_id else kind()
            item = self._items[index] = _Item(base)
        else:
            item.built = None
        return item

    def _item_added(self, event: Any) -> None:
        self._last = None
        if event.item is not None:
            self._items[event.output_index] = _Item(event.item)

    def _item_done(self, event: Any) -> None:
        self._last = None
        if event.item is not None:
            item = self._items[event.output_index] = _Item(event.item)
            item.final = True

    def _part_added(self, event: Any) -> None:
        self._last = None
        if event.part is None:
            return
        item = self._item(event.output_index, event.item_id, ResponseOutputMessage)
        item.parts[event.content_index] = _Part(event.part)

    def _part_done(self, event: Any) -> None:
        self._last = None
        if event.part is None:
            return
        item = self._item(event.output_index, event.item_id, ResponseOutputMessage)
        part = item.parts[event.content_index] = _Part(event.part)
        part.final = True

    def _text(self, event: Any) -> _Part:
        item = self._item(event.output_index, event.item_id, ResponseOutputMessage)
        return item.part(event.content_index, ResponseOutputText)

    def _text_done(self, event: ev.ResponseTextDoneEvent) -> None:
        part = self._text(event)
        part.text[:] = [event.text]

    def _annotation(self, event: ev.ResponseOutputTextAnnotationAddedEvent) -> None:
        part = self._text(event)
        annotations = part.annotations
        if annotations is None:
            base = part.base
            existing = base.annotations if isinstance(base, ResponseOutputText) else []
            annotations = part.annotations = list(existing)
        annotation = annotation_of(event.annotation)
        index = event.annotation_index
        if 0 <= index < len(annotations):
            annotations[index] = annotation
        else:
            annotations.append(annotation)

    def _refusal(self, event: Any) -> _Part:
        item = self._item(event.output_index, event.item_id, ResponseOutputMessage)
        return item.part(event.content_index, ResponseOutputRefusal)

    def _refusal_delta(self, event: ev.ResponseRefusalDeltaEvent) -> None:
        self._refusal(event).text.append(event.delta)

    def _refusal_done(self, event: ev.ResponseRefusalDoneEvent) -> None:
        self._refusal(event).text[:] = [event.refusal]

    # -- tool calls

    def _fragment(self, event: Any, kind: type[Any], text: str, whole: bool = False) -> None:
        item = self._item(event.output_index, event.item_id, kind)
        if whole:
            item.text[:] = [text]
        else:
            item.text.append(text)

    def _arguments_delta(self, event: ev.ResponseFunctionCallArgumentsDeltaEvent) -> None:
        self._fragment(event, ResponseFunctionToolCall, event.delta)

    def _arguments_done(self, event: ev.ResponseFunctionCallArgumentsDoneEvent) -> None:
        self._fragment(event, ResponseFunctionToolCall, event.arguments, whole=True)

    def _custom_delta(self, event: ev.ResponseCustomToolCallInputDeltaEvent) -> None:
        self._fragment(event, ResponseCustomToolCall, event.delta)

    def _custom_done(self, event: ev.ResponseCustomToolCallInputDoneEvent) -> None:
        self._fragment(event, ResponseCustomToolCall, event.input, whole=True)

    def _code_delta(self, event: ev.ResponseCodeInterpreterCallCodeDeltaEvent) -> None:
        self._fragment(event, ResponseCodeInterpreterToolCall, event.delta)

    def _code_done(self, event: ev.ResponseCodeInterpreterCallCodeDoneEvent) -> None:
        self._fragment(event, ResponseCodeInterpreterToolCall, event.code, whole=True)

    def _mcp_delta(self, event: ev.ResponseMcpCallArgumentsDeltaEvent) -> None:
        self._fragment(event, McpCall, event.delta)

    def _mcp_done(self, event: ev.ResponseMcpCallArgumentsDoneEvent) -> None:
        self._fragment(event, McpCall, event.arguments, whole=True)

    def _status(self, event: Any) -> None:
        """``web_search_call.searching`` and the like: the last word of the type is the status."""
        item = self._items.get(event.output_index)
        if item is None or item.final or "status" not in item.base.__struct_fields__:
            return
        status = event.type.rsplit(".", 1)[1]
        item.base = replace(item.base, status=status)
        item.built = None

    # -- reasoning

    def _summary(self, event: Any) -> list[str]:
        item = self._item(event.output_index, event.item_id, ResponseReasoningItem)
        fragments = item.summary.get(event.summary_index)
        if fragments is None:
            fragments = item.summary[event.summary_index] = []
        return fragments

    def _summary_part(self, event: Any) -> None:
        fragments = self._summary(event)
        if event.part.text:
            fragments[:] = [event.part.text]

    def _summary_delta(self, event: ev.ResponseReasoningSummaryTextDeltaEvent) -> None:
        self._summary(event).append(event.delta)

    def _summary_done(self, event: ev.ResponseReasoningSummaryTextDoneEvent) -> None:
        self._summary(event)[:] = [event.text]

    def _reasoning_text(self, event: Any) -> _Part:
        item = self._item(event.output_index, event.item_id, ResponseReasoningItem)
        return item.part(event.content_index, ResponseReasoningText)

    def _reasoning_delta(self, event: ev.ResponseReasoningTextDeltaEvent) -> None:
        self._reasoning_text(event).text.append(event.delta)

    def _reasoning_done(self, event: ev.ResponseReasoningTextDoneEvent) -> None:
        self._reasoning_text(event).text[:] = [event.text]


_A = ResponseAccumulator
_HANDLERS: dict[type[Any], _Handler] = {
    ev.ResponseCreatedEvent: _A._response,
    ev.ResponseInProgressEvent: _A._response,
    ev.ResponseQueuedEvent: _A._response,
    ev.ResponseCompletedEvent: _A._terminal,
    ev.ResponseIncompleteEvent: _A._terminal,
    ev.ResponseFailedEvent: _A._terminal,
    ev.ResponseOutputItemAddedEvent: _A._item_added,
    ev.ResponseOutputItemDoneEvent: _A._item_done,
    ev.ResponseContentPartAddedEvent: _A._part_added,
    ev.ResponseContentPartDoneEvent: _A._part_done,
    ev.ResponseTextDoneEvent: _A._text_done,
    ev.ResponseOutputTextAnnotationAddedEvent: _A._annotation,
    ev.ResponseRefusalDeltaEvent: _A._refusal_delta,
    ev.ResponseRefusalDoneEvent: _A._refusal_done,
    ev.ResponseFunctionCallArgumentsDeltaEvent: _A._arguments_delta,
    ev.ResponseFunctionCallArgumentsDoneEvent: _A._arguments_done,
    ev.ResponseCustomToolCallInputDeltaEvent: _A._custom_delta,
    ev.ResponseCustomToolCallInputDoneEvent: _A._custom_done,
    ev.ResponseCodeInterpreterCallCodeDeltaEvent: _A._code_delta,
    ev.ResponseCodeInterpreterCallCodeDoneEvent: _A._code_done,
    ev.ResponseMcpCallArgumentsDeltaEvent: _A._mcp_delta,
    ev.ResponseMcpCallArgumentsDoneEvent: _A._mcp_done,
    ev.ResponseReasoningSummaryPartAddedEvent: _A._summary_part,
    ev.ResponseReasoningSummaryPartDoneEvent: _A._summary_part,
    ev.ResponseReasoningSummaryTextDeltaEvent: _A._summary_delta,
    ev.ResponseReasoningSummaryTextDoneEvent: _A._summary_done,
    ev.ResponseReasoningTextDeltaEvent: _A._reasoning_delta,
    ev.ResponseReasoningTextDoneEvent: _A._reasoning_done,
}
for _cls in (
    ev.ResponseWebSearchCallInProgressEvent,
    ev.ResponseWebSearchCallSearchingEvent,
    ev.ResponseWebSearchCallCompletedEvent,
    ev.ResponseFileSearchCallInProgressEvent,
    ev.ResponseFileSearchCallSearchingEvent,
    ev.ResponseFileSearchCallCompletedEvent,
    ev.ResponseCodeInterpreterCallInProgressEvent,
    ev.ResponseCodeInterpreterCallInterpretingEvent,
    ev.ResponseCodeInterpreterCallCompletedEvent,
    ev.ResponseMcpCallInProgressEvent,
    ev.ResponseMcpCallCompletedEvent,
    ev.ResponseMcpCallFailedEvent,
    ev.ResponseMcpListToolsInProgressEvent,
    ev.ResponseMcpListToolsCompletedEvent,
    ev.ResponseMcpListToolsFailedEvent,
    ev.ResponseImageGenCallInProgressEvent,
    ev.ResponseImageGenCallGeneratingEvent,
    ev.ResponseImageGenCallCompletedEvent,
):
    _HANDLERS[_cls] = _A._status
