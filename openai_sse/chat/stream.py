"""A streamed chat completion: awaitable, iterable, cancellable, observed by listeners.

The lifecycle (await, iteration, cancel, retry, one outcome, terminal calls) is
:class:`~openai_sse.streaming.BaseStream`; this module adds what only chat knows: decoding a
chunk, ``data: [DONE]``, errors sent inside the stream, and the accumulated completion.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import IncompleteStreamError, ProtocolError, StreamError
from ..streaming import DRAIN_TIMEOUT, BaseStream, Connect, RetryDelay, StreamMetrics
from .accumulator import ChatCompletionAccumulator
from .dispatcher import ChatDispatcher
from .models import ChatCompletion, ChatCompletionChunk, decode_chunk

if TYPE_CHECKING:
    from ..transport import EventSource

__all__ = ["ChatStream", "StreamMetrics"]


class ChatStream(BaseStream[ChatCompletionChunk, ChatCompletion]):
    """One chat completion being streamed; it starts as soon as it is created.

    ``await stream`` gives the final :class:`ChatCompletion` or raises; ``async for chunk in
    stream`` yields every chunk (together with listeners, if any). Chunks are kept for
    iteration until iteration starts or the stream is awaited without it. ``cancel()`` closes
    the connection at once and fails the stream with :class:`StreamCancelled`, keeping
    :attr:`snapshot`; cancelling a task that awaits or iterates the stream cancels it too.

    ``data: [DONE]`` completes the stream at once; ``data: {"error": ...}`` or ``event: error``
    fails it with :class:`~openai_sse.StreamError`; a body that ends without ``[DONE]``
    completes when every choice has its finish reason, otherwise it is
    :class:`~openai_sse.IncompleteStreamError`.
    """

    DISPATCHER = ChatDispatcher
    ACCUMULATOR = ChatCompletionAccumulator
    _dispatcher: ChatDispatcher
    _accumulator: ChatCompletionAccumulator

    def __init__(
        self,
        connect: Connect,
        listeners: Iterable[object] = (),
        *,
        retry_delay: RetryDelay | None = None,
        drain_timeout: float = DRAIN_TIMEOUT,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        # Called at ``data: [DONE]`` before the stream completes; what it raises fails the
        # stream instead (structured output validates answers that had no finish reason).
        self._on_done = on_done
        super().__init__(
            connect,
            listeners,
            retry_delay=retry_delay,
            drain_timeout=drain_timeout,
        )

    # The event source hands each event's data over as the UTF-8 bytes it read: msgspec
    # decodes them directly, without a detour through ``str`` (which costs most for CJK text).
    _event_data_bytes = True

    def on_event(
        self, source: EventSource, id: str | None, type: str | None, data: str | bytes
    ) -> Awaitable[None] | None:
        # BaseStream.on_event's steps, inlined: this runs once per chunk.
        if self._finished:
            return None  # draining what follows [DONE]
        if data.__class__ is str:
            data = data.encode()
        if type is not None and type != "message":
            if type == "error":
                raise _stream_error(_text(data), type)
            return None  # other event types are not chat chunks (as the official SDK does)
        if data[:1] != b"{":
            stripped = data.strip()
            if stripped == b"[DONE]":
                if self._on_done is not None:
                    self._on_done()
                return self._end_of_stream(source)
            if stripped[:1] != b"{":
                raise _stream_error(_text(data), type)
        chunk = decode_chunk(data)
        if chunk.error is not None:
            raise _error_from_payload(chunk.to_dict())
        completed = self._accumulator.add(chunk)
        if self._received(chunk):
            return self._hand_off(self._dispatcher.dispatch(chunk, completed))
        return self._dispatcher.dispatch(chunk, completed)

    def _has_token(self, chunk: ChatCompletionChunk) -> bool:
        for choice in chunk.choices:
            delta = choice.delta
            if (
                delta.content
                or delta.refusal
                or delta.tool_calls
                or delta.reasoning_content
                or delta.reasoning
                or delta.function_call
            ):
                return True
        return False

    def _on_eof(self) -> BaseException | None:
        if self._accumulator.finished:
            return None
        if not self.metrics.chunks:
            return IncompleteStreamError(
                "The stream ended before any chunk arrived (the server sent no events)."
            )
        return IncompleteStreamError(
            "The stream ended before [DONE] and before every choice finished."
        )

    def _completion_tokens(self) -> int | None:
        usage = self._accumulator.usage
        return None if usage is None else usage.completion_tokens


def _error_from_payload(payload: dict[str, Any]) -> StreamError:
    error = payload.get("error")
    if isinstance(error, dict):
        message = error.get("message") or "The server reported an error in the stream."
        return StreamError(
            str(message),
            type=error.get("type"),
            code=error.get("code"),
            param=error.get("param"),
            body=payload,
        )
    message = str(error or payload.get("message") or "The server reported an error.")
    return StreamError(message, body=payload)


def _text(data: str | bytes) -> str:
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


def _stream_error(data: str, type: str | None) -> Exception:
    """``event: error`` with any payload, or a payload that is not a JSON object."""
    if type == "error":
        try:
            payload = json.loads(data)
        except ValueError:
            return StreamError(data.strip() or "The server reported an error.", body=data)
        if isinstance(payload, dict):
            return _error_from_payload(payload if "error" in payload else {"error": payload})
        return StreamError(str(payload), body=payload)
    excerpt = data if len(data) <= 200 else data[:200] + "…"
    return ProtocolError(f"Malformed chunk: expected a JSON object, got {excerpt!r}")
