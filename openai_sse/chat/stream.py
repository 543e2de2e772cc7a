"""A streamed chat completion: awaitable, iterable, cancellable, observed by listeners."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import IncompleteStreamError, OpenAISSEError, StreamCancelled
from .accumulator import ChatCompletionAccumulator
from .dispatcher import ChatDispatcher
from .models import ChatCompletion, ChatCompletionChunk

if TYPE_CHECKING:
    import aiohttp

    from ..transport import EventSource

__all__ = ["ChatStream", "StreamMetrics"]

Connect = Callable[[ChatDispatcher], "EventSource"]
RetryDelay = Callable[[BaseException, int], "float | None"]

DRAIN_TIMEOUT = 1.0


class StreamMetrics:
    """Timings in seconds from the start of the stream, and counts; updated live."""

    __slots__ = (
        "bytes",
        "chunks",
        "completion_tokens",
        "duration",
        "retries",
        "started",
        "time_to_first_token",
        "time_to_headers",
    )

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.time_to_headers: float | None = None
        self.time_to_first_token: float | None = None
        self.duration: float | None = None
        self.chunks = 0
        self.bytes = 0
        self.completion_tokens: int | None = None
        self.retries = 0

    @property
    def tokens_per_second(self) -> float | None:
        """Completion tokens over the time from first token to end, when usage is known."""
        if self.completion_tokens is None or self.duration is None:
            return None
        span = self.duration - (self.time_to_first_token or 0.0)
        return self.completion_tokens / span if span > 0 else None

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"StreamMetrics({fields}, tokens_per_second={self.tokens_per_second!r})"


class ChatStream:
    """One chat completion being streamed; it starts as soon as it is created.

    ``await stream`` gives the final :class:`ChatCompletion` or raises; ``async for chunk in
    stream`` yields every chunk (together with listeners, if any). Chunks are kept for
    iteration until iteration starts or the stream is awaited without it. ``cancel()`` closes
    the connection at once and fails the stream with :class:`StreamCancelled`, keeping
    :attr:`snapshot`; cancelling a task that awaits or iterates the stream cancels it too.
    """

    def __init__(
        self,
        connect: Connect,
        listeners: Iterable[object] = (),
        *,
        retry_delay: RetryDelay | None = None,
        drain_timeout: float = DRAIN_TIMEOUT,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._connect = connect
        self._retry_delay = retry_delay
        self._drain_timeout = drain_timeout
        self._accumulator = ChatCompletionAccumulator()
        self.metrics = StreamMetrics()
        self._response: aiohttp.ClientResponse | None = None
        self._finished = False
        self._result: ChatCompletion | None = None
        self._error: BaseException | None = None
        self._settled = asyncio.Event()
        self._buffer: deque[ChatCompletionChunk] | None = deque()
        self._iterating = False
        # Set only while the iterator waits for chunks, so feeding it costs nothing otherwise.
        self._waiter: asyncio.Future[None] | None = None
        self._opened_once = False
        self._drain: asyncio.TimerHandle | None = None
        self._retry_task: asyncio.Task[None] | None = None
        self._attempt = 0
        self.dispatcher = ChatDispatcher(self, listeners)
        self._source: EventSource = connect(self.dispatcher)

    # -- public surface -------------------------------------------------------------------

    @property
    def snapshot(self) -> ChatCompletion:
        """The completion as far as it has streamed; valid at any moment."""
        return self._accumulator.snapshot

    @property
    def response(self) -> aiohttp.ClientResponse | None:
        """The HTTP response, once its headers arrived."""
        return self._response

    @property
    def done(self) -> bool:
        """True once the outcome is decided (completed, failed or cancelled)."""
        return self._finished

    def add_listener(self, listener: object) -> None:
        self.dispatcher.add_listener(listener)

    def remove_listener(self, listener: object) -> None:
        self.dispatcher.remove_listener(listener)

    def cancel(self) -> None:
        """Close the connection now and fail the stream with :class:`StreamCancelled`."""
        if self._finished:
            return
        if self._retry_task is not None and not self._retry_task.done():
            self._retry_task.cancel()
        else:
            self._source.cancel()

    def __await__(self) -> Generator[Any, None, ChatCompletion]:
        return self._wait().__await__()

    async def _wait(self) -> ChatCompletion:
        if not self._iterating:
            # Awaited without iterating: stop keeping chunks now, not at the end, or a long
            # stream holds every chunk alive (and the garbage collector busy) until it ends.
            self._buffer = None
        try:
            await self._settled.wait()
        except asyncio.CancelledError:
            self.cancel()
            raise
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ChatCompletionChunk]:
        buffer = self._buffer
        if buffer is None or self._iterating:
            raise RuntimeError("A ChatStream can be iterated once, and before it is awaited")
        self._iterating = True
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

        After ``[DONE]`` this also ends the bounded drain of the body at once.
        """
        self.cancel()
        self._source.cancel()
        if self._retry_task is not None:
            await asyncio.wait((self._retry_task,))
        await self._source.wait()
        await self._settled.wait()

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "done" if self._finished else "streaming"
        return f"<ChatStream {state} chunks={self.metrics.chunks}>"

    # -- called by the dispatcher ---------------------------------------------------------

    def _opened(self, source: EventSource, response: aiohttp.ClientResponse) -> bool:
        self._response = response
        self.metrics.time_to_headers = time.monotonic() - self.metrics.started
        first = not self._opened_once
        self._opened_once = True
        return first

    def _received(self, chunk: ChatCompletionChunk) -> None:
        metrics = self.metrics
        metrics.chunks += 1
        if metrics.time_to_first_token is None:
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
                    metrics.time_to_first_token = time.monotonic() - metrics.started
                    break
        buffer = self._buffer
        if buffer is not None:
            buffer.append(chunk)
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _done(self, source: EventSource) -> Awaitable[None]:
        """``[DONE]``: complete now; read what is left of the body briefly, then let go."""
        self._drain = self._loop.call_later(self._drain_timeout, source.cancel)
        return self._complete(None)

    def _ended(self, source: EventSource, error: BaseException | None) -> Awaitable[None] | None:
        """The event source's terminal callback."""
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None
        self.metrics.bytes += source.bytes_received
        if self._finished:
            return None
        if error is None:
            if self._accumulator.finished:
                return self._complete(None)
            error = IncompleteStreamError(
                "The stream ended before [DONE] and before every choice finished."
            )
        elif self._can_retry(error):
            return None
        return self._complete(error)

    # -- internals ------------------------------------------------------------------------

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
        self._source = self._connect(self.dispatcher)

    async def _complete(self, error: BaseException | None) -> None:
        """Decide the outcome once, tell every listener, then release awaiters."""
        if self._finished:
            return
        self._finished = True
        metrics = self.metrics
        metrics.duration = time.monotonic() - metrics.started
        usage = self._accumulator.usage
        if usage is not None:
            metrics.completion_tokens = usage.completion_tokens
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        try:
            if error is None:
                self._result = self.snapshot
                await self.dispatcher._terminal("on_closed", self._result)
            else:
                if isinstance(error, OpenAISSEError):
                    error.snapshot = self.snapshot
                self._error = error
                await self.dispatcher._terminal("on_failure", error)
        finally:
            self._settled.set()
