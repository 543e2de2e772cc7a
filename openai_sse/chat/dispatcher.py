"""Turns one event source's callbacks into typed chunks, fanned out to chat listeners.

Each event is decoded once. Per hook the dispatcher keeps only the listeners that override it,
so a listener interested in content costs nothing for the hooks it ignores; when no registered
hook is ``async def`` the whole fan-out runs without creating a coroutine per chunk.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any, Final

import aiohttp

from ..errors import ProtocolError, StreamError
from ..transport import EventSource, EventSourceListener
from .listener import ChatListener
from .models import ChatCompletionChunk, decode_chunk

if TYPE_CHECKING:
    from .stream import ChatStream

__all__ = ["ChatDispatcher"]

logger = logging.getLogger("openai_sse")

_HOOKS: Final = (
    "on_open",
    "on_chunk",
    "on_content",
    "on_refusal",
    "on_reasoning",
    "on_tool_call_delta",
    "on_tool_call",
    "on_usage",
    "on_closed",
    "on_failure",
)
_Call = tuple[Any, Any]  # (listener, bound hook)
_Emission = tuple[str, tuple[Any, ...]]


class ChatDispatcher(EventSourceListener):
    """An :class:`~openai_sse.transport.EventSourceListener` that speaks chat completions.

    It feeds one :class:`~openai_sse.chat.ChatStream` (state, result, iteration) and its
    listeners. ``[DONE]`` completes the stream at once; ``data: {"error": ...}`` or
    ``event: error`` fails it with :class:`~openai_sse.StreamError`.
    """

    def __init__(self, stream: ChatStream, listeners: Iterable[object] = ()) -> None:
        self.stream = stream
        self._listeners: list[object] = []
        self._hooks: dict[str, list[_Call]] = {name: [] for name in _HOOKS}
        self._any_async = False
        self._wants_deltas = False
        self._plain_content = True
        for listener in listeners:
            self.add_listener(listener)

    # -- registration ---------------------------------------------------------------------

    @property
    def listeners(self) -> tuple[object, ...]:
        return tuple(self._listeners)

    def add_listener(self, listener: object) -> None:
        """Register ``listener`` (a :class:`ChatListener` or any object with some hooks).

        Safe while streaming: it receives chunks from the next one on.
        """
        if listener in self._listeners:
            return
        self._listeners.append(listener)
        self._rebuild()

    def remove_listener(self, listener: object) -> None:
        """Unregister ``listener``; it receives nothing more, not even a terminal call."""
        if listener in self._listeners:
            self._listeners.remove(listener)
            self._rebuild()

    def _rebuild(self) -> None:
        hooks: dict[str, list[_Call]] = {name: [] for name in _HOOKS}
        any_async = False
        for listener in self._listeners:
            for name in _HOOKS:
                method = getattr(listener, name, None)
                if method is None:
                    continue
                if getattr(method, "__func__", None) is getattr(ChatListener, name):
                    continue  # the inherited no-op
                hooks[name].append((listener, method))
                any_async = any_async or inspect.iscoroutinefunction(method)
        self._hooks = hooks
        self._any_async = any_async
        self._wants_deltas = any(
            hooks[n] for n in ("on_content", "on_refusal", "on_reasoning", "on_tool_call_delta")
        )
        self._plain_content = not any_async and not hooks["on_chunk"]

    # -- EventSourceListener ----------------------------------------------------------------

    def on_open(
        self, source: EventSource, response: aiohttp.ClientResponse
    ) -> Awaitable[None] | None:
        if not self.stream._opened(source, response):
            return None
        return self._emit([("on_open", (response,))])

    def on_event(
        self, source: EventSource, id: str | None, type: str | None, data: str
    ) -> Awaitable[None] | None:
        stream = self.stream
        if stream._finished:
            return None  # draining what follows [DONE]
        if type is not None and type != "message":
            if type == "error":
                raise _stream_error(data, type)
            return None  # other event types are not chat chunks (as the official SDK does)
        if data[:1] != "{":
            stripped = data.strip()
            if stripped == "[DONE]":
                return stream._done(source)
            if stripped[:1] != "{":
                raise _stream_error(data, type)
        chunk = decode_chunk(data)
        if chunk.error is not None:
            raise _error_from_payload(chunk.to_dict())
        completed = stream._accumulator.add(chunk)
        stream._received(chunk)
        if self._plain_content and not completed and chunk.usage is None:
            # The shape of nearly every chunk: one choice with a content delta and nothing
            # else, and only sync hooks that want content. Skip building emissions for it.
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
                        index = choices[0].index
                        for listener, method in self._hooks["on_content"]:
                            try:
                                method(stream, text, index)
                            except Exception as exc:
                                self._listener_failed(listener, "on_content", exc)
                    return None
        return self._emit(self._emissions(chunk, completed))

    def on_closed(self, source: EventSource) -> Awaitable[None] | None:
        return self.stream._ended(source, None)

    def on_failure(
        self,
        source: EventSource,
        error: BaseException,
        response: aiohttp.ClientResponse | None,
    ) -> Awaitable[None] | None:
        return self.stream._ended(source, error)

    # -- fan-out ----------------------------------------------------------------------------

    def _emissions(self, chunk: ChatCompletionChunk, completed: list[Any]) -> list[_Emission]:
        hooks = self._hooks
        out: list[_Emission] = []
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

    def _emit(self, emissions: list[_Emission]) -> Awaitable[None] | None:
        if not emissions:
            return None
        if self._any_async:
            return self._emit_async(emissions)
        stream = self.stream
        hooks = self._hooks
        for name, args in emissions:
            for listener, method in hooks[name]:
                try:
                    method(stream, *args)
                except Exception as exc:
                    self._listener_failed(listener, name, exc)
        return None

    async def _emit_async(self, emissions: list[_Emission]) -> None:
        stream = self.stream
        hooks = self._hooks
        for name, args in emissions:
            for listener, method in hooks[name]:
                try:
                    result = method(stream, *args)
                    if result is not None:
                        await result
                except Exception as exc:
                    self._listener_failed(listener, name, exc)

    async def _terminal(self, name: str, arg: Any) -> None:
        """Exactly one terminal call per listener; failures here are only logged."""
        stream = self.stream
        for listener, method in list(self._hooks[name]):
            try:
                result = method(stream, arg)
                if result is not None:
                    await result
            except Exception:
                logger.exception("%s.%s raised", type(listener).__name__, name)

    def _listener_failed(self, listener: object, hook: str, exc: Exception) -> None:
        if getattr(listener, "raise_errors", False):
            raise exc
        logger.error(
            "Listener %s.%s raised %s: %s; the stream goes on",
            type(listener).__name__,
            hook,
            type(exc).__name__,
            exc,
            exc_info=exc,
        )


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
