"""Turns one decoded chat chunk into hook calls on the chat listeners.

Decoding, accumulation and the stream's outcome belong to :class:`~openai_sse.chat.ChatStream`;
the tables, ordering, isolation and terminal calls to :class:`~openai_sse.streaming.Fanout`.
What is chat-specific here is which hooks a chunk calls, and a direct path for the shape of
nearly every chunk (one choice, a content delta, nothing else).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import TYPE_CHECKING, ClassVar, Final

from ..streaming import Emission, Fanout
from .listener import ChatListener
from .models import ChatCompletionChunk, ChatCompletionMessageToolCall

if TYPE_CHECKING:
    from .stream import ChatStream

__all__ = ["ChatDispatcher"]

# Hooks a chunk with nothing but a content delta can never call, besides on_content: while
# only these (and on_content) have listeners, that chunk takes the direct path. A hook added
# to HOOKS and not here keeps such chunks on the general path, which is always correct.
_PLAIN_CONTENT_SAFE: Final = frozenset(
    (
        "on_open",
        "on_content",
        "on_refusal",
        "on_reasoning",
        "on_tool_call_delta",
        "on_tool_call",
        "on_partial_content",
        "on_partial_arguments",
        "on_usage",
        "on_closed",
        "on_failure",
    )
)
_DELTA_HOOKS: Final = ("on_content", "on_refusal", "on_reasoning", "on_tool_call_delta")
_STREAM_HOOKS: Final = frozenset(("on_open", "on_closed", "on_failure"))


class ChatDispatcher(Fanout):
    """Fans chat chunks out to :class:`ChatListener` objects (or any object with some hooks).

    Each chunk is parsed once by the stream; listeners are called in registration order and
    awaited before the next chunk. See :class:`~openai_sse.streaming.Fanout` for isolation,
    ``raise_errors`` and terminal calls.
    """

    HOOKS: ClassVar[tuple[str, ...]] = (
        "on_open",
        "on_chunk",
        "on_content",
        "on_refusal",
        "on_reasoning",
        "on_tool_call_delta",
        "on_tool_call",
        "on_partial_content",
        "on_partial_arguments",
        "on_usage",
        "on_closed",
        "on_failure",
    )
    LISTENER: ClassVar[type] = ChatListener

    stream: ChatStream
    _no_chunk_hooks: bool
    _wants_deltas: bool
    _plain_content: bool

    def _rebuilt(self) -> None:
        wanted = self._wanted
        # No listener wants any per-chunk hook (``async for`` alone): dispatching is a no-op.
        self._no_chunk_hooks = wanted <= _STREAM_HOOKS
        self._wants_deltas = not wanted.isdisjoint(_DELTA_HOOKS)
        self._plain_content = not self._any_async and wanted <= _PLAIN_CONTENT_SAFE

    def dispatch(
        self, chunk: ChatCompletionChunk, completed: list[tuple[int, ChatCompletionMessageToolCall]]
    ) -> Awaitable[None] | None:
        if self._no_chunk_hooks:
            return None
        if self._plain_content and not completed and chunk.usage is None:
            # The shape of nearly every chunk: one choice with a content delta and nothing
            # else, and only plain hooks that want content. Skip building emissions for it.
            choices = chunk.choices
            if len(choices) == 1:
                delta = choices[0].delta
                if (
                    delta.tool_calls is None
                    and delta.refusal is None
                    and delta.reasoning_content is None
                    and delta.reasoning is None
                ):
                    text = delta.content
                    if text:
                        stream = self.stream
                        index = choices[0].index
                        for listener, method in self._hooks["on_content"]:
                            try:
                                result = method(stream, text, index)
                            except Exception as exc:
                                self._listener_failed(listener, "on_content", exc)
                                continue
                            if result is not None and inspect.isawaitable(result):
                                return self._resume(
                                    result, listener, "on_content", (text, index), []
                                )
                    return None
        return self.emit(self._emissions(chunk, completed))

    def _emissions(
        self, chunk: ChatCompletionChunk, completed: list[tuple[int, ChatCompletionMessageToolCall]]
    ) -> list[Emission]:
        hooks = self._hooks
        out: list[Emission] = []
        if hooks["on_chunk"]:
            out.append(("on_chunk", (chunk,)))
        if self._wants_deltas:
            for choice in chunk.choices:
                delta = choice.delta
                index = choice.index
                if delta.content and hooks["on_content"]:
                    out.append(("on_content", (delta.content, index)))
                reasoning = delta.reasoning_content or delta.reasoning
                if reasoning and hooks["on_reasoning"]:
                    out.append(("on_reasoning", (reasoning, index)))
                if delta.refusal and hooks["on_refusal"]:
                    out.append(("on_refusal", (delta.refusal, index)))
                if delta.tool_calls and hooks["on_tool_call_delta"]:
                    out.extend(("on_tool_call_delta", (call, index)) for call in delta.tool_calls)
        if completed and hooks["on_tool_call"]:
            out.extend(("on_tool_call", (call, index)) for index, call in completed)
        if chunk.usage is not None and hooks["on_usage"]:
            out.append(("on_usage", (chunk.usage,)))
        return out
