"""A streamed Responses API answer: awaitable, iterable, cancellable, observed by listeners.

The lifecycle (await, iteration, cancel, retry before the first event, one outcome, terminal
calls) is :class:`~openai_sse.streaming.BaseStream`; this module adds what only the Responses
API knows: its typed events, its terminal events, errors sent inside the stream, and resuming
a background response after the connection dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import (
    APIConnectionError,
    APITimeoutError,
    IncompleteStreamError,
    ProtocolError,
    StreamError,
)
from ..streaming import DRAIN_TIMEOUT, BaseStream, Connect, RetryDelay
from . import events as ev
from .accumulator import ResponseAccumulator
from .dispatcher import ResponseDispatcher
from .models import Response

if TYPE_CHECKING:
    from ..transport import EventSource

__all__ = ["MAX_RESUMES", "ResponseStream", "Resume"]

Resume = Callable[[str, int], Connect]
"""``(response id, last sequence number) -> Connect`` that follows the stored response after
that event (``GET /responses/{id}?stream=true&starting_after=N``)."""

MAX_RESUMES = 5
"""Reconnections in a row without a new event before a dropped stream is given up."""

_TOKEN_EVENTS = (
    ev.ResponseTextDeltaEvent,
    ev.ResponseRefusalDeltaEvent,
    ev.ResponseReasoningSummaryTextDeltaEvent,
    ev.ResponseReasoningTextDeltaEvent,
    ev.ResponseFunctionCallArgumentsDeltaEvent,
    ev.ResponseCustomToolCallInputDeltaEvent,
    ev.ResponseCodeInterpreterCallCodeDeltaEvent,
    ev.ResponseMcpCallArgumentsDeltaEvent,
)
_COMPLETE = (ev.ResponseCompletedEvent, ev.ResponseIncompleteEvent)


class ResponseStream(BaseStream[ev.ResponseStreamEvent, Response]):
    """One Responses API answer being streamed; it starts as soon as it is created.

    ``await stream`` gives the final :class:`~openai_sse.responses.Response` or raises;
    ``async for event in stream`` yields every typed event. ``response.completed`` and
    ``response.incomplete`` complete the stream (the response's ``status`` says which);
    an ``error`` event or ``response.failed`` fails it with :class:`~openai_sse.StreamError`,
    whose ``snapshot`` is the server's failed response when it sent one; a connection that
    ends without a terminal event is :class:`~openai_sse.IncompleteStreamError`.

    The event type is read from each event's JSON, so servers that send no ``event:`` lines
    work the same; a ``data: [DONE]`` after the terminal event is read and ignored.

    With ``resume`` (a stored background response), a connection that drops before the
    terminal event is followed again after the last ``sequence_number`` seen; events already
    delivered are skipped, so listeners see each event once.
    """

    DISPATCHER = ResponseDispatcher
    ACCUMULATOR = ResponseAccumulator
    _dispatcher: ResponseDispatcher
    _accumulator: ResponseAccumulator

    def __init__(
        self,
        connect: Connect,
        listeners: Iterable[object] = (),
        *,
        retry_delay: RetryDelay | None = None,
        drain_timeout: float = DRAIN_TIMEOUT,
        resume: Resume | None = None,
        resume_delay: float = 0.2,
        starting_after: int | None = None,
    ) -> None:
        self._resume = resume
        self._resume_delay = resume_delay
        self._resumes = 0  # reconnections since the last new event
        self._last_sequence = -1 if starting_after is None else starting_after
        # After a resume, events up to this number were delivered already; -1 once past it.
        # Only then are numbers compared, so a server that numbers oddly (or repeats a number)
        # loses nothing on a connection that never dropped.
        self._skip_through = self._last_sequence
        self._pending_error: StreamError | None = None
        super().__init__(
            connect,
            listeners,
            retry_delay=retry_delay,
            drain_timeout=drain_timeout,
        )

    @property
    def response_id(self) -> str:
        """The id of the response, once ``response.created`` told it ("" before)."""
        return self._accumulator.response_id

    @property
    def last_sequence_number(self) -> int | None:
        """The ``sequence_number`` of the last event delivered, if the server numbers them."""
        return None if self._last_sequence < 0 else self._last_sequence

    def on_event(
        self, source: EventSource, id: str | None, type: str | None, data: str
    ) -> Awaitable[None] | None:
        # BaseStream.on_event's steps, inlined: this runs once per event.
        if self._finished:
            return None  # draining what follows the terminal event
        if data[:1] != "{":
            raise _not_an_object(data)
        event = ev.decode_event(data, type)
        sequence = event.sequence_number
        if sequence is not None:
            if self._skip_through >= 0:
                if sequence <= self._skip_through:
                    return None  # delivered before the resume
                self._skip_through = -1
            self._last_sequence = sequence
        self._resumes = 0
        self._accumulator.add(event)
        first = self._received(event)
        pending = self._dispatcher.dispatch(event, None)
        if first:
            pending = self._hand_off(pending)
        if event.__class__ not in _ENDINGS:
            return pending
        outcome = self._terminal_outcome(event)
        if outcome is None:
            return pending
        if pending is None:
            return self._conclude(source, outcome)
        return self._conclude_after(pending, source, outcome)

    def _terminal_outcome(self, event: ev.ResponseStreamEvent) -> BaseException | bool | None:
        if isinstance(event, _COMPLETE):
            return self._pending_error or True
        if isinstance(event, ev.ResponseFailedEvent):
            return _failed_error(event, self._pending_error)
        if isinstance(event, ev.ResponseErrorEvent):
            # A ``response.failed`` with the server's object usually follows: wait for it
            # briefly, so the error carries it, then fail with what this event said.
            self._pending_error = _error_event_error(event)
            self._drain = self._loop.call_later(self._drain_timeout, self._source.cancel)
        return None

    def _has_token(self, event: ev.ResponseStreamEvent) -> bool:
        return isinstance(event, _TOKEN_EVENTS)

    def _on_eof(self) -> BaseException | None:
        if self._pending_error is not None:
            return self._pending_error
        if not self.metrics.chunks:
            return IncompleteStreamError(
                "The stream ended before any event arrived (the server sent no events)."
            )
        return IncompleteStreamError(
            "The stream ended before a terminal event (response.completed, "
            "response.incomplete or response.failed)."
        )

    def _completion_tokens(self) -> int | None:
        usage = self._accumulator.usage
        return None if usage is None else usage.output_tokens

    def _ended(self, source: EventSource, error: BaseException | None) -> Awaitable[None] | None:
        if not self._finished:
            if self._pending_error is not None and error is not None:
                # The wait for response.failed ran out, or the connection went first: the
                # error event says what happened.
                error = self._pending_error
            elif self._should_resume(error):
                if self._drain is not None:
                    self._drain.cancel()
                    self._drain = None
                self._count_bytes(source)
                self._callback_task = asyncio.current_task()
                self._start_resume()
                return None
        return super()._ended(source, error)

    # -- resuming a background response ---------------------------------------------------

    def _should_resume(self, error: BaseException | None) -> bool:
        if self._resume is None or self._pending_error is not None:
            return False
        if error is not None and not isinstance(error, APIConnectionError):
            return False  # cancelled, a status error, a protocol error: not a drop
        if isinstance(error, APITimeoutError) and error.phase == "total":
            return False  # the call's whole time is spent
        if self._resumes >= MAX_RESUMES:
            return False
        return bool(self.response_id) and self._last_sequence >= 0

    def _start_resume(self) -> None:
        assert self._resume is not None
        delay = self._resume_delay * (2**self._resumes)
        self._resumes += 1
        self.metrics.retries += 1
        self._skip_through = self._last_sequence
        self._connect = self._resume(self.response_id, self._last_sequence)
        self._retry_task = self._loop.create_task(self._retry(delay))


_ENDINGS: frozenset[type[Any]] = frozenset(
    (
        ev.ResponseCompletedEvent,
        ev.ResponseIncompleteEvent,
        ev.ResponseFailedEvent,
        ev.ResponseErrorEvent,
    )
)


def _not_an_object(data: str) -> Exception:
    """Only ``[DONE]`` may be a non-object, and only after the terminal event (then it is
    never read here: the stream has finished)."""
    if data.strip() == "[DONE]":
        return IncompleteStreamError(
            "The stream sent [DONE] before a terminal event (response.completed, "
            "response.incomplete or response.failed)."
        )
    excerpt = data if len(data) <= 200 else data[:200] + "…"
    return ProtocolError(f"Malformed response event: expected a JSON object, got {excerpt!r}")


def _error_event_error(event: ev.ResponseErrorEvent) -> StreamError:
    """``error`` events come flat (``code``/``message``) or nested in ``error``."""
    nested = event.error if isinstance(event.error, dict) else {}
    message = event.message or nested.get("message") or "The server reported an error."
    return StreamError(
        str(message),
        type=nested.get("type") or "error",
        code=event.code or nested.get("code"),
        param=event.param or nested.get("param"),
        body=event.to_dict(),
    )


def _failed_error(event: ev.ResponseFailedEvent, pending: StreamError | None) -> StreamError:
    """``response.failed``: the error it carries (or the ``error`` event before it)."""
    detail = event.response.error
    body: Any = event.to_dict()
    if pending is not None:
        pending.body = {"error_event": pending.body, "response.failed": body}
        error = pending
    elif detail is not None:
        error = StreamError(
            detail.message or "The response failed.",
            type="response.failed",
            code=detail.code,
            body=body,
        )
    else:
        error = StreamError("The response failed.", type="response.failed", body=body)
    error.response = event.response  # the server's own object
    return error
