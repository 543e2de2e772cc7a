"""The life of one stream, the same for every API: start, events, one outcome, awaiters.

:class:`BaseStream` is the event source's listener. Every callback flows one way:

    EventSource -> stream.on_event -> decode -> accumulate -> metrics/iteration buffer
                -> dispatcher.dispatch (hook calls) -> terminal? -> stream outcome

The stream owns the state (response, snapshot, metrics, outcome, retry); its dispatcher (a
:class:`~openai_sse.streaming.Fanout`) only turns a decoded event into hook calls.

An API builds its stream by subclassing :class:`BaseStream`, naming its ``DISPATCHER`` (a
:class:`~openai_sse.streaming.Fanout` subclass) and ``ACCUMULATOR`` (made with no arguments), and
implementing:

* ``_decode_event(id, type, data)``: the typed item, None to skip the event, or
  :data:`END` for an end marker (``data: [DONE]``); raise a typed error to fail the stream;
* ``_terminal_outcome(item)``: None for an ordinary item, True when the item completes the
  stream, or the exception that fails it (after the item's hooks ran);
* ``_has_token(item)``: whether the item carries generated output (time to first token);
* ``_on_eof()``: the connection ended without a terminal item: None completes, or the error;
* ``_completion_tokens()``: generated tokens as the server reported them, if it did.

The accumulator has ``add(item)`` (its return value reaches the dispatcher as ``context``)
and a ``snapshot`` property valid at any moment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from asyncio import current_task
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, Protocol, TypeVar, cast

from ..errors import OpenAISSEError, StreamCancelled
from ..transport.listener import EventSourceListener
from .fanout import Fanout
from .metrics import StreamMetrics

if TYPE_CHECKING:
    import aiohttp

    from ..transport import EventSource, Request

__all__ = ["DRAIN_TIMEOUT", "END", "Accumulator", "BaseStream", "Connect", "RetryDelay"]

logger = logging.getLogger("openai_sse")

Connect = Callable[[EventSourceListener], "EventSource"]
"""Opens one connection whose callbacks go to the given listener (the stream)."""

RetryDelay = Callable[[BaseException, int], "float | None"]
"""``(error, attempt) -> seconds to wait before trying again, or None to give up``."""

DRAIN_TIMEOUT: Final = 1.0

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")
_ItemT_contra = TypeVar("_ItemT_contra", contravariant=True)
_ResultT_co = TypeVar("_ResultT_co", covariant=True)
_S = TypeVar("_S", bound="BaseStream[Any, Any]")


class _End:
    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END: Final[Any] = _End()
"""Returned by ``_decode_event`` for an end marker: the stream completes at once."""


class _OneTurn:
    """Awaiting it gives the loop one turn, as ``asyncio.sleep(0)`` does, with one generator
    made instead of two coroutines and a generator: it is on the way to the first token."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        yield


_ONE_TURN: Final = _OneTurn()


class Accumulator(Protocol[_ItemT_contra, _ResultT_co]):
    """Builds the final object from the items; ``snapshot`` is valid at any moment."""

    def add(self, item: _ItemT_contra) -> Any: ...

    @property
    def snapshot(self) -> _ResultT_co: ...


class BaseStream(EventSourceListener, Generic[ItemT, ResultT]):
    """One streamed answer; it starts as soon as it is created.

    ``await stream`` gives the final object or raises; ``async for item in stream`` yields
    every item (together with listeners, if any). Items are kept for iteration until iteration
    starts or the stream is awaited without it. ``cancel()`` closes the connection at once and
    fails the stream with :class:`~openai_sse.StreamCancelled`, keeping :attr:`snapshot`;
    cancelling a task that awaits or iterates the stream cancels it too. ``async with`` cancels
    an unfinished stream on exit.

    A failure before anything reached a listener (no item delivered) is tried again when
    ``retry_delay`` says so. The outcome is decided once; every listener then gets exactly one
    terminal call. A stream that fails (other than by cancellation) while nobody can learn of
    it (never awaited, never iterated, and no listener with ``on_failure``) logs the error
    once when it is garbage collected, as asyncio does for a task's exception.
    """

    DISPATCHER: ClassVar[type[Fanout]]
    ACCUMULATOR: ClassVar[type[Accumulator[Any, Any]]]

    _dispatcher: Fanout  # made by _build, see __init__

    def __init__(
        self,
        connect: Connect,
        listeners: Iterable[object] = (),
        *,
        retry_delay: RetryDelay | None = None,
        drain_timeout: float = DRAIN_TIMEOUT,
    ) -> None:
        self._listeners = self.DISPATCHER.checked(listeners)  # a bad listener raises here
        self._built = False
        self._loop = loop = asyncio.get_running_loop()
        self._connect = connect
        self._retry_delay = retry_delay
        self._drain_timeout = drain_timeout
        self._accumulator: Accumulator[ItemT, ResultT] = self.ACCUMULATOR()
        self.metrics = StreamMetrics()
        self._response: aiohttp.ClientResponse | None = None
        self._finished = False
        self._result: ResultT | None = None
        self._error: BaseException | None = None
        self._retrieved = False  # awaited or iterated: someone can see the outcome
        self._failure_heard = False  # a listener's on_failure was called
        self._settled = asyncio.Event()
        self._buffer: deque[ItemT] | None = deque()
        self._iterating = False
        # Set only while the iterator waits for items, so feeding it costs nothing otherwise.
        self._waiter: asyncio.Future[None] | None = None
        self._opened_once = False
        self._drain: asyncio.TimerHandle | None = None
        self._retry_task: asyncio.Task[None] | None = None
        self._callback_task: asyncio.Task[Any] | None = None
        self._terminal_task: asyncio.Task[Any] | None = None  # running the terminal calls
        self._attempt = 0
        # metrics.bytes counts every attempt's bytes; the last source counted, and how much
        # of it, so that counting again (at completion, then at the end of the body) adds
        # only what arrived in between.
        self._counted_source: EventSource | None = None
        self._counted = 0
        self._source: EventSource = connect(self)
        # The source's task sends the request at the next loop turn, and aiohttp writes it one
        # turn later, in a task of its own. The listeners' dispatcher is made two turns from
        # now, while the server works, instead of before the request is written: with the CPU
        # caches cold, as an application's other work leaves them, that is a sizeable part of
        # the time to first token. Whatever needs it sooner makes it then (``dispatcher``).
        loop.call_soon(loop.call_soon, self._build)

    def _build(self) -> Fanout:
        if not self._built:
            self._dispatcher = self.DISPATCHER(self, self._listeners)
            self._built = True
        return self._dispatcher

    # -- public surface -------------------------------------------------------------------

    @property
    def snapshot(self) -> ResultT:
        """The answer as far as it has streamed; valid at any moment."""
        return self._accumulator.snapshot

    @property
    def response(self) -> aiohttp.ClientResponse | None:
        """The HTTP response, once its headers arrived."""
        return self._response

    @property
    def request(self) -> Request:
        """The HTTP request this stream sends (URL, headers, JSON body), e.g. for tracing."""
        return self._source.request

    @property
    def done(self) -> bool:
        """True once the outcome is decided (completed, failed or cancelled)."""
        return self._finished

    @property
    def dispatcher(self) -> Fanout:
        """The fan-out to this stream's listeners."""
        return self._dispatcher if self._built else self._build()

    def add_listener(self, listener: object) -> None:
        self.dispatcher.add_listener(listener)

    def remove_listener(self, listener: object) -> None:
        self.dispatcher.remove_listener(listener)

    def cancel(self) -> None:
        """Close the connection now and fail the stream with :class:`StreamCancelled`.

        Once the outcome is decided this only ends the terminal calls still running (a hung
        ``on_closed`` / ``on_failure`` is cancelled; the listeners after it are still called).
        """
        if self._finished:
            task = self._terminal_task
            if not self._settled.is_set() and task is not None and task is not current_task():
                task.cancel()
            return
        if self._retry_task is not None and not self._retry_task.done():
            self._retry_task.cancel()
        else:
            self._source.cancel()

    def __await__(self) -> Generator[Any, None, ResultT]:
        return self._wait().__await__()

    async def _wait(self) -> ResultT:
        self._retrieved = True
        if not self._iterating:
            # Awaited without iterating: stop keeping items now, not at the end, or a long
            # stream holds every item alive (and the garbage collector busy) until it ends.
            self._buffer = None
        try:
            await self._settled.wait()
        except asyncio.CancelledError:
            self.cancel()
            raise
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]  # set when completed

    def __aiter__(self) -> AsyncIterator[ItemT]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ItemT]:
        buffer = self._buffer
        if buffer is None or self._iterating:
            raise RuntimeError(
                f"A {type(self).__name__} can be iterated once, and before it is awaited"
            )
        self._iterating = True
        self._retrieved = True
        while True:
            while buffer:
                yield buffer.popleft()
            if self._finished:
                break
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            except asyncio.CancelledError:
                self.cancel()
                raise
            finally:
                self._waiter = None
        if self._error is not None:
            raise self._error

    async def aclose(self) -> None:
        """Cancel if unfinished, then wait until the connection is released.

        After the end marker this also ends the bounded drain of the body at once. Called
        from inside a listener hook it only cancels: waiting there would wait for itself.
        """
        self.cancel()
        self._source.cancel()
        current = current_task()
        if current is not None and current in (
            self._callback_task,
            self._retry_task,
            self._terminal_task,
        ):
            return
        if self._retry_task is not None:
            await asyncio.wait((self._retry_task,))
        await self._source.wait()
        await self._settled.wait()

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "done" if self._finished else "streaming"
        return f"<{type(self).__name__} {state} chunks={self.metrics.chunks}>"

    def __del__(self) -> None:
        error = getattr(self, "_error", None)
        if error is None or isinstance(error, StreamCancelled):
            return
        if self._retrieved or self._failure_heard:
            return
        logger.error(
            "%s failed and the failure was never retrieved (not awaited, not iterated, "
            "no listener with on_failure): %s: %s",
            type(self).__name__,
            type(error).__name__,
            error,
            exc_info=error,
        )

    # -- EventSourceListener: the one way in ---------------------------------------------

    def on_open(
        self, source: EventSource, response: aiohttp.ClientResponse
    ) -> Awaitable[None] | None:
        self._callback_task = current_task()
        self._response = response
        self.metrics.time_to_headers = time.monotonic() - self.metrics.started
        if self._opened_once:
            return None  # a retry: listeners heard on_open already
        self._opened_once = True
        return self.dispatcher.open()

    def on_event(
        self, source: EventSource, id: str | None, type: str | None, data: str
    ) -> Awaitable[None] | None:
        if self._finished:
            return None  # draining what follows the end marker
        item = self._decode_event(id, type, data)
        if item is None:
            return None
        if item is END:
            return self._end_of_stream(source)
        context = self._accumulator.add(item)
        first = self._received(item)
        pending = self._dispatcher.dispatch(item, context)  # made by on_open
        if first:
            pending = self._hand_off(pending)
        outcome = self._terminal_outcome(item)
        if outcome is None:
            return pending
        if pending is None:
            return self._conclude(source, outcome)
        return self._conclude_after(pending, source, outcome)

    def on_closed(self, source: EventSource) -> Awaitable[None] | None:
        return self._ended(source, None)

    def on_failure(
        self,
        source: EventSource,
        error: BaseException,
        response: aiohttp.ClientResponse | None,
    ) -> Awaitable[None] | None:
        return self._ended(source, error)

    # -- what an API implements -----------------------------------------------------------

    def _decode_event(self, id: str | None, type: str | None, data: str) -> ItemT | None:
        """One event as a typed item; None to skip it; :data:`END` for an end marker.

        Raise a typed error (``StreamError``, ``ProtocolError``) to fail the stream."""
        raise NotImplementedError

    def _terminal_outcome(self, item: ItemT) -> BaseException | bool | None:
        """None: more follows. True: ``item`` completes the stream. An exception: ``item``
        fails the stream with it. Either way the item's hooks run first."""
        return None

    def _has_token(self, item: ItemT) -> bool:
        """Whether ``item`` carries generated output; the first one sets time to first token."""
        return True

    def _on_eof(self) -> BaseException | None:
        """The connection ended without an end marker or terminal item: complete (None) or
        the error to fail with (typically ``IncompleteStreamError``)."""
        raise NotImplementedError

    def _completion_tokens(self) -> int | None:
        """Generated tokens as the server reported them (for ``metrics``), or None."""
        return None

    # -- internals ------------------------------------------------------------------------

    def _received(self, item: ItemT) -> bool:
        """An item was decoded and accumulated: count it, feed the iterator.

        True when ``item`` carries the first token and the stream is being iterated: the
        caller then hands it over at once (:meth:`_hand_off`)."""
        metrics = self.metrics
        metrics.chunks += 1
        first = False
        if metrics.time_to_first_token is None and self._has_token(item):
            metrics.time_to_first_token = time.monotonic() - metrics.started
            first = self._iterating
        buffer = self._buffer
        if buffer is not None:
            buffer.append(item)
            waiter = self._waiter
            if waiter is not None:
                # Wake the iterator once per batch: it takes everything buffered by then, so
                # the items after this one cost no look at the future.
                self._waiter = None
                if not waiter.done():
                    waiter.set_result(None)
        return first

    def _hand_off(self, pending: Awaitable[None] | None) -> Awaitable[None]:
        """Let the iterator take the first token before the rest of the read is
        handled: one read often holds many events, and the first word should show at once.
        Once per stream, so batching stays as it is for every later item."""
        return _ONE_TURN if pending is None else self._hand_off_after(pending)

    async def _hand_off_after(self, pending: Awaitable[None]) -> None:
        await pending
        await _ONE_TURN

    def _end_of_stream(self, source: EventSource) -> Awaitable[None]:
        """The end marker: complete now; read what is left of the body briefly, then let go."""
        response = source.response
        if response is None or not response.content.is_eof():
            # Only a body still arriving needs a bound; the usual one ended with the marker's
            # read, and a timer per stream is a cost of its own.
            self._drain = self._loop.call_later(self._drain_timeout, source.cancel)
        return self._complete(None)

    def _conclude(self, source: EventSource, outcome: BaseException | bool) -> Awaitable[None]:
        if isinstance(outcome, BaseException):
            raise outcome  # the event source turns it into on_failure: one way to fail
        return self._end_of_stream(source)

    async def _conclude_after(
        self, pending: Awaitable[None], source: EventSource, outcome: BaseException | bool
    ) -> None:
        await pending
        await self._conclude(source, outcome)

    def _ended(self, source: EventSource, error: BaseException | None) -> Awaitable[None] | None:
        """The event source's terminal callback."""
        self._callback_task = current_task()
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None
        self._count_bytes(source)
        if self._finished:
            return None
        if error is None:
            error = self._on_eof()
        elif self._can_retry(error):
            return None
        return self._complete(error)

    def _count_bytes(self, source: EventSource) -> None:
        """Add to ``metrics.bytes`` what ``source`` received since it was last counted."""
        counted = self._counted if source is self._counted_source else 0
        received = source.bytes_received
        self.metrics.bytes += received - counted
        self._counted_source, self._counted = source, received

    def _can_retry(self, error: BaseException) -> bool:
        if self._retry_delay is None or isinstance(error, StreamCancelled):
            return False
        if self.metrics.chunks:
            return False  # something reached listeners; never replay it
        delay = self._retry_delay(error, self._attempt)
        if delay is None:
            return False
        self._attempt += 1
        self.metrics.retries += 1
        self._retry_task = self._loop.create_task(self._retry(delay))
        return True

    async def _retry(self, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            await self._complete(StreamCancelled())
            return
        self._source = self._connect(self)

    async def _complete(self, error: BaseException | None) -> None:
        """Decide the outcome once, tell every listener, then release awaiters."""
        if self._finished:
            return
        self._finished = True
        metrics = self.metrics
        metrics.duration = time.monotonic() - metrics.started
        metrics.completion_tokens = self._completion_tokens()
        # The body may still be draining (after an end marker): count what has arrived, so
        # the outcome carries it; the rest is added when the source ends.
        self._count_bytes(self._source)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        dispatcher = self.dispatcher
        self._terminal_task = current_task()
        try:
            if error is None:
                result = self._result = self.snapshot
                await dispatcher.terminal("on_closed", result)
            else:
                if isinstance(error, OpenAISSEError):
                    error.snapshot = cast(Any, self.snapshot)  # any API's final object
                self._error = error
                self._failure_heard = dispatcher.listening("on_failure")
                await dispatcher.terminal("on_failure", error)
        finally:
            self._settled.set()
