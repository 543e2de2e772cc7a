"""What a chat stream tells the objects that listen to it."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ..listeners.structured import PartialToolCall
    from .models import (
        ChatCompletion,
        ChatCompletionChunk,
        ChatCompletionMessageToolCall,
        ChoiceDeltaToolCall,
        CompletionUsage,
    )
    from .stream import ChatStream

__all__ = ["ChatListener"]


class ChatListener:
    """Subclass and override the hooks you need; each may be ``def`` or ``async def``.

    Every chunk is parsed once and handed to each listener in registration order, awaiting
    each before the next, so a slow listener slows the stream rather than piling up chunks.
    A hook that returns an awaitable from a plain call (a decorated ``async def``) is
    awaited too. A listener that raises is logged and skipped (the traceback of its first
    failure per hook, then a count when the stream ends), unless it sets
    ``raise_errors = True``, which fails the whole stream with that exception. Each listener
    gets exactly one of :meth:`on_closed` / :meth:`on_failure`; a cancelled stream arrives as
    ``on_failure`` with :class:`~openai_sse.StreamCancelled`, ``stream.snapshot`` holding the
    partial answer.
    """

    raise_errors: ClassVar[bool] = False

    def on_open(self, stream: ChatStream) -> Awaitable[None] | None:
        """The server accepted the request and started streaming; see ``stream.response``.

        Called once per stream, also when the request was tried more than once."""
        return None

    def on_chunk(self, stream: ChatStream, chunk: ChatCompletionChunk) -> Awaitable[None] | None:
        """Every chunk, before the finer-grained hooks below."""
        return None

    def on_content(self, stream: ChatStream, delta: str, index: int) -> Awaitable[None] | None:
        """A piece of answer text for choice ``index``."""
        return None

    def on_refusal(self, stream: ChatStream, delta: str, index: int) -> Awaitable[None] | None:
        """A piece of a refusal for choice ``index``."""
        return None

    def on_reasoning(self, stream: ChatStream, delta: str, index: int) -> Awaitable[None] | None:
        """A piece of reasoning text (``reasoning_content`` or ``reasoning`` deltas)."""
        return None

    def on_tool_call_delta(
        self, stream: ChatStream, tool_call: ChoiceDeltaToolCall, index: int
    ) -> Awaitable[None] | None:
        """A fragment of a tool call (name first, then argument pieces) for choice ``index``."""
        return None

    def on_tool_call(
        self, stream: ChatStream, tool_call: ChatCompletionMessageToolCall, index: int
    ) -> Awaitable[None] | None:
        """A tool call whose arguments are complete."""
        return None

    def on_partial_content(
        self, stream: ChatStream, value: Any, index: int
    ) -> Awaitable[None] | None:
        """Structured output: the answer of choice ``index`` parsed as far as it has streamed.

        Called when the value grew; ``value`` is the same dict/list, updated in place (copy it
        to keep a snapshot). Only with ``response_format=`` a model, schema or JSON format."""
        return None

    def on_partial_arguments(
        self, stream: ChatStream, tool_call: PartialToolCall, value: Any, index: int
    ) -> Awaitable[None] | None:
        """Structured output: a tool call's arguments parsed as far as they have streamed."""
        return None

    def on_usage(self, stream: ChatStream, usage: CompletionUsage) -> Awaitable[None] | None:
        """Token usage, when the server reports it."""
        return None

    def on_closed(self, stream: ChatStream, completion: ChatCompletion) -> Awaitable[None] | None:
        """The stream completed; ``completion`` is the final answer."""
        return None

    def on_failure(self, stream: ChatStream, error: BaseException) -> Awaitable[None] | None:
        """The stream failed or was cancelled; ``stream.snapshot`` has what arrived."""
        return None


_PARTIAL_HOOKS = ("on_partial_content", "on_partial_arguments")


def wants_partial(listeners: Iterable[object]) -> bool:
    """Whether a listener overrides a partial-value hook (then structured output parses)."""
    for listener in listeners:
        for name in _PARTIAL_HOOKS:
            method = getattr(listener, name, None)
            if method is None:
                continue
            if getattr(method, "__func__", None) is not getattr(ChatListener, name, None):
                return True
    return False
