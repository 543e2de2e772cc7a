"""What a Responses stream tells the objects that listen to it.

The hook names are :class:`~openai_sse.ChatListener`'s wherever the meaning is the same, so
one listener class can observe chat and Responses streams alike.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from .events import ResponseStreamEvent
    from .models import Response, ResponseFunctionToolCall, ResponseUsage
    from .stream import ResponseStream

__all__ = ["ResponseListener"]


class ResponseListener:
    """Subclass and override the hooks you need; each may be ``def`` or ``async def``.

    Every event is parsed once and handed to each listener in registration order, awaiting
    each before the next. A listener that raises is logged and skipped, unless it sets
    ``raise_errors = True``, which fails the whole stream with that exception. Each listener
    gets exactly one of :meth:`on_closed` / :meth:`on_failure`; a cancelled stream arrives as
    ``on_failure`` with :class:`~openai_sse.StreamCancelled`, ``stream.snapshot`` holding the
    partial response.
    """

    raise_errors: ClassVar[bool] = False

    def on_open(self, stream: ResponseStream) -> Awaitable[None] | None:
        """The server accepted the request and started streaming; see ``stream.response``.

        Called once per stream, also across retries and background resumes."""
        return None

    def on_event(
        self, stream: ResponseStream, event: ResponseStreamEvent
    ) -> Awaitable[None] | None:
        """Every event (typed, or :class:`~openai_sse.responses.GenericEvent`), before the
        finer-grained hooks below."""
        return None

    def on_content(self, stream: ResponseStream, delta: str, index: int) -> Awaitable[None] | None:
        """A piece of output text of the item at ``index`` (its ``output_index``)."""
        return None

    def on_refusal(self, stream: ResponseStream, delta: str, index: int) -> Awaitable[None] | None:
        """A piece of a refusal of the item at ``index``."""
        return None

    def on_reasoning(
        self, stream: ResponseStream, delta: str, index: int
    ) -> Awaitable[None] | None:
        """A piece of reasoning: summary text or raw reasoning text of the item at ``index``."""
        return None

    def on_tool_call(
        self, stream: ResponseStream, call: ResponseFunctionToolCall, index: int
    ) -> Awaitable[None] | None:
        """A function call whose arguments are complete (``call.name``, ``call.arguments``,
        ``call.call_id``), at output ``index``: on its ``output_item.done``, or when the
        response completes for a server that sends none."""
        return None

    def on_usage(self, stream: ResponseStream, usage: ResponseUsage) -> Awaitable[None] | None:
        """Token usage, reported with the final response."""
        return None

    def on_closed(self, stream: ResponseStream, response: Response) -> Awaitable[None] | None:
        """The stream completed (``response.status`` is ``completed`` or ``incomplete``)."""
        return None

    def on_failure(self, stream: ResponseStream, error: BaseException) -> Awaitable[None] | None:
        """The stream failed or was cancelled; ``stream.snapshot`` has what arrived."""
        return None
