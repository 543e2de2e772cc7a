"""The event source: one HTTP request on an aiohttp session, its body decoded into callbacks.

The contract is okhttp-sse 5.x: the factory returns at once and connects in a task;
``on_open`` then ``on_event``* then exactly one of ``on_closed`` / ``on_failure``; ``cancel()``
is synchronous, idempotent and always ends in ``on_failure(StreamCancelled)``.

Interrupting: while the task waits on the network (connecting, reading headers, an error body
or events, waiting to reconnect) it is cancelled outright and the connection closed. While it
awaits an async ``on_open`` / ``on_event`` hook, a ``cancel()`` from anywhere else (another
task, a timer such as ``Timeout(total)``) cancels the hook too, so a hook that never returns
cannot hold the stream; ``cancel()`` called by the hook itself (from the source's own task)
only sets a flag, checked before the next event, so a hook is never cancelled under its own
feet. Either way the listener gets exactly one terminal callback, which is never cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import json
import logging
import time
from typing import Any, Final

import aiohttp

from .._redact import mask_text
from ..errors import (
    APIConnectionError,
    APITimeoutError,
    OpenAISSEError,
    ProtocolError,
    StreamCancelled,
    status_error,
)
from ..sse.decoder import DEFAULT_MAX_EVENT_SIZE, SSEDecoder
from .http import send, watch_connection
from .listener import EventSourceListener
from .reconnect import Reconnect
from .request import Request
from .timeouts import DEFAULT_TIMEOUT, Timeout

__all__ = ["EventSource", "EventSourceFactory", "EventSources", "ReadyState"]

logger = logging.getLogger("openai_sse")

_ERROR_BODY_LIMIT: Final = 64 * 1024


class ReadyState(enum.IntEnum):
    """The browser's ``EventSource.readyState`` values."""

    CONNECTING = 0
    OPEN = 1
    CLOSED = 2


class _Stop(Exception):
    """Internal: ``_stop_reason`` was set; unwind to the terminal callback."""


class _TransportFailure(Exception):
    """Internal: carries a transport error, so it is never confused with a listener's."""

    def __init__(self, error: APIConnectionError) -> None:
        super().__init__(str(error))
        self.error = error


@functools.lru_cache(maxsize=64)
def _connect_timeout(connect: float | None) -> aiohttp.ClientTimeout:
    """aiohttp's timeout for one attempt: only the connect phase; the rest is timed here."""
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=None)


class EventSource:
    """One live stream. Made by :meth:`EventSourceFactory.new_event_source`, never directly."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        request: Request,
        listener: EventSourceListener,
        *,
        timeout: Timeout,
        reconnect: Reconnect | None,
        max_event_size: int,
        deadline: float | None = None,
    ) -> None:
        self._session = session
        self._request = request
        self._listener = listener
        self._timeout = timeout
        self._reconnect = reconnect if request.method == "GET" else None
        self._max_event_size = max_event_size
        self._decoder = SSEDecoder(max_event_size=max_event_size)
        self._loop = asyncio.get_running_loop()
        # The loop time by which everything must be over (Timeout.total), or None.
        if deadline is None and timeout.total is not None:
            deadline = self._loop.time() + timeout.total
        self._deadline = deadline
        self._ready_state = ReadyState.CONNECTING
        self._response: aiohttp.ClientResponse | None = None
        # Why the run loop must stop: "cancel", or the name of the timeout phase that fired.
        self._stop_reason: str | None = None
        # True while the task awaits the network (and may be cancelled), False in callbacks.
        self._in_io = False
        # True while the task awaits an async on_open/on_event hook: cancellable from outside.
        self._in_hook = False
        self._hook_cancelled = False
        self._terminated = False
        # One watchdog timer per source checks every phase (total, first event, idle). It
        # fires at the earliest moment one could expire and is re-armed then, never per read:
        # a timer per phase and per read would cost more than the reads themselves.
        self._watchdog: asyncio.Handle | None = None
        self._watchdog_at = 0.0  # the loop time the watchdog was armed for
        self._arming = False  # _watch_soon has an arming on its way
        # The loop time by which the current attempt must deliver an event, or None.
        self._first_event_at: float | None = None
        # When the current wait on the network began (None when not waiting), so time spent
        # in listener callbacks never counts as idle.
        self._net_since: float | None = None
        self._idle_fired = False
        # ``content.total_bytes`` after the last read: more means bytes wait to be read.
        self._read_mark = 0
        # The last byte read: whether the next read starts a line (for comment-only reads).
        self._last_byte = 10
        self.bytes_received = 0
        self.events_received = 0
        self._task = self._loop.create_task(self._run())

    @property
    def _secrets(self) -> tuple[str, ...]:
        """The request's credentials, to mask in error messages: looked up only on an error."""
        return self._request.secrets()

    # -- public surface -------------------------------------------------------------------

    @property
    def request(self) -> Request:
        """The request as sent, with the Accept header that was added to it."""
        return self._request

    @property
    def ready_state(self) -> ReadyState:
        return self._ready_state

    @property
    def response(self) -> aiohttp.ClientResponse | None:
        """The current response, once headers arrived."""
        return self._response

    @property
    def last_event_id(self) -> str:
        """The last committed event id, sent as ``Last-Event-ID`` on reconnection."""
        return self._decoder.last_event_id

    @property
    def retry(self) -> int | None:
        """The server's latest ``retry:`` in milliseconds, or None."""
        return self._decoder.retry

    def cancel(self) -> None:
        """Close the connection now; the listener gets one ``on_failure(StreamCancelled)``.

        Safe to call from anywhere on the loop, any number of times, also from a callback.
        """
        self._interrupt("cancel")

    async def wait(self) -> None:
        """Return once the terminal callback has returned; never raises."""
        await asyncio.wait((self._task,))

    async def __aenter__(self) -> EventSource:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.cancel()
        await self.wait()

    def __repr__(self) -> str:
        return (
            f"<EventSource {self._request.method} {self._request.safe_url} "
            f"{self._ready_state.name.lower()}>"
        )

    # -- interruption ---------------------------------------------------------------------

    def _interrupt(self, reason: str) -> None:
        if self._terminated or self._stop_reason is not None:
            return
        self._stop_reason = reason
        self._ready_state = ReadyState.CLOSED
        if self._response is not None:
            self._response.close()
        if self._in_io or (self._in_hook and asyncio.current_task() is not self._task):
            self._hook_cancelled = self._in_hook
            self._task.cancel()

    def _watch(self, at: float) -> None:
        """Make sure the watchdog fires no later than loop time ``at``."""
        timer = self._watchdog
        if timer is None or at < self._watchdog_at:
            if timer is not None:
                timer.cancel()
            # Its own record of the time: for a time already past, uvloop's call_at returns a
            # plain Handle, which has no when().
            self._watchdog_at = at
            self._watchdog = self._loop.call_at(at, self._on_watchdog)

    def _watch_phases(self, now: float, idle_since: float | None) -> None:
        """Arm the watchdog for the first moment a phase could expire."""
        idle = self._timeout.idle
        if idle is not None:
            self._watch((now if idle_since is None else idle_since) + idle)
        if self._first_event_at is not None:
            self._watch(self._first_event_at)
        if self._deadline is not None:
            self._watch(self._deadline)

    def _watch_soon(self) -> None:
        """:meth:`_watch_phases` two loop turns from now, once aiohttp has written the request.

        Arming a timer pushes it onto the loop's heap, which costs most when the CPU caches
        are cold, and it would delay the request itself. The phases' times are set already,
        so every timeout still counts from the same moment."""
        if not self._arming:
            self._arming = True
            loop = self._loop
            loop.call_soon(loop.call_soon, self._arm)

    def _arm(self) -> None:
        self._arming = False
        if not self._terminated:
            self._watch_phases(self._loop.time(), self._net_since)

    def _on_watchdog(self) -> None:
        self._watchdog = None
        if self._terminated or self._stop_reason is not None:
            return
        now = self._loop.time()
        if self._deadline is not None and now >= self._deadline:
            self._interrupt("total")
            return
        if self._first_event_at is not None and now >= self._first_event_at:
            self._interrupt("first_event")
            return
        idle = self._timeout.idle
        since = self._net_since
        if idle is not None and since is not None and self._in_io and now - since >= idle:
            response = self._response
            if response is None or response.content.total_bytes == self._read_mark:
                self._idle_fired = True
                self._task.cancel()
                return
            since = now  # bytes arrived and wait to be read: the loop was busy, not the peer
        self._watch_phases(now, since)

    def _stop_error(self, response: aiohttp.ClientResponse | None) -> OpenAISSEError:
        reason = self._stop_reason
        if reason == "cancel":
            return StreamCancelled(response=response)
        seconds = getattr(self._timeout, reason or "total")
        return APITimeoutError(
            f"No {_PHASE_TEXT.get(reason or '', reason)} within {seconds} s.",
            phase=reason or "total",
            response=response,
        )

    # -- the run loop ---------------------------------------------------------------------

    async def _run(self) -> None:
        if self._deadline is not None and self._deadline <= self._loop.time():
            self._interrupt("total")
        try:
            failures = 0
            while (delivered := await self._attempt()) is not None:
                failures = 0 if delivered else failures + 1
                if not await self._wait_to_reconnect(failures):
                    return
        finally:
            self._ready_state = ReadyState.CLOSED
            self._terminated = True
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None

    async def _wait_to_reconnect(self, failures: int) -> bool:
        policy = self._reconnect
        assert policy is not None
        if policy.max_attempts is not None and failures >= policy.max_attempts:
            await self._terminate(
                APIConnectionError(f"Gave up after {failures} failed reconnection attempts."),
                None,
            )
            return False
        delay = policy.wait_time(self._decoder.retry, failures)
        logger.info("Reconnecting to %s in %.3f s", self._request.safe_url, delay)
        self._ready_state = ReadyState.CONNECTING
        try:
            if self._stop_reason is None:
                self._in_io = True
                try:
                    await asyncio.sleep(delay)
                finally:
                    self._in_io = False
        except asyncio.CancelledError:
            await self._on_cancelled(None)
            self._uncancel()
        if self._stop_reason is not None:
            await self._terminate(self._stop_error(None), None)
            return False
        previous = self._decoder
        self._decoder = SSEDecoder(previous.last_event_id, max_event_size=self._max_event_size)
        self._decoder.retry = previous.retry
        return True

    async def _on_cancelled(self, response: aiohttp.ClientResponse | None) -> None:
        """Keep the one-terminal-callback promise when the task itself is cancelled.

        Returns for a cancellation this source caused; anyone else's (task cancelled by its
        owner, loop shutting down) is reported as ``StreamCancelled`` and then re-raised.
        """
        if self._stop_reason is None:
            self._stop_reason = "cancel"
            if response is not None:
                response.close()
            await self._terminate(StreamCancelled(response=response), response)
            raise asyncio.CancelledError

    def _uncancel(self) -> None:
        """Undo the task cancellation this source used to interrupt itself (3.11+)."""
        uncancel = getattr(self._task, "uncancel", None)
        if uncancel is not None:
            uncancel()

    async def _attempt(self) -> bool | None:
        """One connection, from request to EOF.

        Returns whether it delivered an event when a reconnection should follow, or None once
        the terminal callback has been delivered.
        """
        listener = self._listener
        timeout = self._timeout
        self._ready_state = ReadyState.CONNECTING
        if timeout.first_event is not None:
            self._first_event_at = self._loop.time() + timeout.first_event
        self._watch_soon()
        response: aiohttp.ClientResponse | None = None
        delivered = False
        error: BaseException | None = None
        broke_off: APIConnectionError | None = None
        try:
            if self._stop_reason is not None:
                raise _Stop
            response = self._response = await self._connect()
            if not 200 <= response.status < 300:
                body = await self._read_error_body(response)
                if self._stop_reason is not None:
                    raise _Stop
                error = status_error(
                    response.status,
                    body,
                    response=response,
                    request_id=response.headers.get("x-request-id"),
                    secrets=self._secrets,
                )
                await self._terminate(error, response)
                return None
            content_type = response.headers.get("Content-Type")
            if not _is_event_stream(content_type):
                if response.status == 204 and self._reconnect is not None:
                    # The spec's way for a server to say "do not come back".
                    await self._terminate(None, response)
                    return None
                error = ProtocolError(_content_type_message(content_type), response=response)
                await self._terminate(error, response)
                return None
            if self._stop_reason is not None:
                raise _Stop
            self._ready_state = ReadyState.OPEN
            result = listener.on_open(self, response)
            if result is not None:
                self._in_hook = True
                try:
                    await result
                finally:
                    self._in_hook = False
            if self._stop_reason is not None:
                raise _Stop
            unwatch = watch_connection(response)
            try:
                delivered = await self._read_events(response)
            finally:
                unwatch()
        except _Stop:
            if self._hook_cancelled:
                # A hook swallowed the cancellation meant to end it; undo it all the same.
                self._hook_cancelled = False
                self._uncancel()
            error = self._stop_error(response)
        except asyncio.CancelledError:
            self._hook_cancelled = False
            if self._idle_fired and self._stop_reason is None:
                self._idle_fired = False
                self._uncancel()
                broke_off = APITimeoutError(
                    f"No data within {timeout.idle} s.", phase="idle", response=response
                )
            else:
                await self._on_cancelled(response)
                self._uncancel()
                error = self._stop_error(response)
        except _TransportFailure as exc:
            broke_off = exc.error
        except Exception as exc:  # the decoder's ProtocolError, or raised by a listener
            error = exc
            if isinstance(exc, OpenAISSEError) and exc.response is None:
                exc.response = response
        finally:
            self._first_event_at = None
        if broke_off is not None:
            if self._stop_reason is not None:
                error = self._stop_error(response)
            elif self._reconnect is not None:
                logger.info("Stream to %s broke off: %s", self._request.safe_url, broke_off)
                if response is not None:
                    response.close()
                self._response = None
                return delivered
            else:
                error = broke_off
        if error is None and self._reconnect is not None and self._stop_reason is None:
            assert response is not None
            response.release()
            self._response = None
            return delivered
        await self._terminate(error, response)
        return None

    async def _connect(self) -> aiohttp.ClientResponse:
        timeout = self._timeout
        request = self._request
        headers = request.headers
        if self._decoder.last_event_id and self._reconnect is not None:
            headers = {**headers, "Last-Event-ID": self._decoder.last_event_id}
        debug = logger.isEnabledFor(logging.DEBUG)  # then the masked URL is worth building
        if debug:
            logger.debug("Request: %s %s", request.method, request.safe_url)
        started = time.monotonic() if debug else 0.0
        self._net_since = self._loop.time()
        self._in_io = True
        try:
            response = await send(
                self._session, request, headers=headers, timeout=_connect_timeout(timeout.connect)
            )
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise _TransportFailure(map_transport_error(exc, None, self._secrets)) from exc
        finally:
            self._in_io = False
            self._net_since = None
        if debug:
            logger.debug(
                "Response: %s %s -> %d in %.3f s",
                request.method,
                request.safe_url,
                response.status,
                time.monotonic() - started,
            )
        self._read_mark = 0
        self._last_byte = 10
        return response

    async def _read_error_body(self, response: aiohttp.ClientResponse) -> Any:
        """The error body, bounded in size and by the idle timeout; cancellable meanwhile."""
        self._in_io = True
        try:
            return await read_error_body(response, self._timeout.idle)
        finally:
            self._in_io = False

    async def _read_events(self, response: aiohttp.ClientResponse) -> bool:
        """Read to EOF, delivering events; returns whether any event was delivered."""
        on_event: Any = self._listener.on_event
        # A listener that parses event data itself declares ``_event_data_bytes = True`` and
        # gets the UTF-8 bytes as read (no text decoding, no event object per event); every
        # other listener gets ``str``, invalid UTF-8 replaced.
        as_bytes = getattr(self._listener, "_event_data_bytes", False)
        content = response.content
        readany = content.readany
        feed = self._decoder.feed_raw
        clock = self._loop.time
        comments_count = self._timeout.idle_counts_comments
        delivered = False
        # When the current idle period began: reset by data, never by a comment-only read.
        idle_since = clock()
        while True:
            self._net_since = idle_since
            self._in_io = True
            try:
                data = await readany()
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError, RuntimeError) as exc:
                # aiohttp raises RuntimeError("Connection closed.") for a read begun after
                # the connection was lost (a broken chunk size, a session closed under us).
                raise _TransportFailure(map_transport_error(exc, response, self._secrets)) from exc
            finally:
                self._in_io = False
                self._net_since = None
            self._read_mark = content.total_bytes
            if not data:
                self._decoder.end()
                return delivered
            self.bytes_received += len(data)
            events = feed(data)
            if not events:
                if comments_count or not _comments_only(data, self._last_byte):
                    idle_since = clock()
                self._last_byte = data[-1]
                continue
            self._last_byte = data[-1]
            if not delivered:
                delivered = True
                self._first_event_at = None
            for event in events:
                if self._stop_reason is not None:
                    raise _Stop
                self.events_received += 1
                if isinstance(event, bytes):
                    event_id = event_type = None
                    payload = event
                else:
                    event_id, event_type, payload = event
                result = on_event(
                    self,
                    event_id,
                    event_type,
                    payload if as_bytes else payload.decode("utf-8", "replace"),
                )
                if result is not None:
                    self._in_hook = True
                    try:
                        await result
                    finally:
                        self._in_hook = False
            if self._stop_reason is not None:
                raise _Stop
            idle_since = clock()

    async def _terminate(
        self, error: BaseException | None, response: aiohttp.ClientResponse | None
    ) -> None:
        """Deliver the one terminal callback, then let the connection go.

        The response stays readable during the callback (as in OkHttp); what the callback
        raises is logged, never propagated.
        """
        if self._terminated:
            return
        self._terminated = True
        self._ready_state = ReadyState.CLOSED
        listener = self._listener
        try:
            if error is None:
                result = listener.on_closed(self)
            else:
                result = listener.on_failure(self, error, response)
            if result is not None:
                await result
        except Exception:
            method = "on_closed" if error is None else "on_failure"
            logger.exception("%s.%s raised", type(listener).__name__, method)
        finally:
            if response is not None:
                # Returns the connection to the pool only when its body was read to the end.
                response.release()


class EventSourceFactory:
    """Makes event sources on one session with shared options (OkHttp's ``Factory``)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout: Timeout | float | None = DEFAULT_TIMEOUT,
        reconnect: Reconnect | bool = False,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    ) -> None:
        self.session = session
        self.timeout = Timeout.of(timeout)
        self.reconnect: Reconnect | None = Reconnect() if reconnect is True else (reconnect or None)
        self.max_event_size = max_event_size

    def new_event_source(
        self,
        request: Request | str,
        listener: EventSourceListener,
        *,
        deadline: float | None = None,
    ) -> EventSource:
        """Start connecting in a task and return at once; no callback runs before this returns.

        Must be called with a running event loop. Cancel the source when done with it, or use
        it as an async context manager. ``deadline`` (event loop time) replaces the one
        ``Timeout.total`` would set, for callers whose total spans several sources (retries).
        """
        if isinstance(request, str):
            request = Request(request)
        if "Accept" not in request.headers and request.header("Accept") is None:
            request = request.with_header("Accept", "text/event-stream")
        return EventSource(
            self.session,
            request,
            listener,
            timeout=self.timeout,
            reconnect=self.reconnect,
            max_event_size=self.max_event_size,
            deadline=deadline,
        )


class EventSources:
    """Entry point, as in okhttp-sse."""

    @staticmethod
    def create_factory(
        session: aiohttp.ClientSession,
        *,
        timeout: Timeout | float | None = DEFAULT_TIMEOUT,
        reconnect: Reconnect | bool = False,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    ) -> EventSourceFactory:
        """A factory on ``session``, which stays the caller's to close."""
        return EventSourceFactory(
            session, timeout=timeout, reconnect=reconnect, max_event_size=max_event_size
        )


_PHASE_TEXT: Final = {
    "first_event": "first event",
    "idle": "data",
    "total": "end of stream",
    "connect": "connection",
}


def _is_event_stream(content_type: str | None) -> bool:
    if content_type == "text/event-stream":
        return True  # as nearly every server spells it
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == "text/event-stream"


def _content_type_message(content_type: str | None) -> str:
    """OkHttp's message, with a hint for the commonest cause: a server ignoring streaming."""
    message = f"Invalid content-type: {content_type or 'null'}"
    if content_type and content_type.split(";", 1)[0].strip().lower() == "application/json":
        message += (
            " (expected text/event-stream): the server answered with one JSON document, so it"
            " may not support streaming or may ignore the request's `stream: true`"
        )
    return message


def _comments_only(data: bytes, previous: int) -> bool:
    """Whether ``data`` holds nothing but comment lines (``: ping``) and blank lines.

    ``previous`` is the byte before ``data``: a read that continues a line is never counted
    as a comment, so a slow event split over many reads is data.
    """
    if previous not in (10, 13):
        return False
    return all(
        not line or line[0] == 58  # ":"
        for line in data.replace(b"\r", b"\n").split(b"\n")
    )


def map_transport_error(
    exc: BaseException,
    response: aiohttp.ClientResponse | None,
    secrets: tuple[str, ...] = (),
) -> APIConnectionError:
    """The typed error for an aiohttp/OS failure, with the request's secrets masked."""
    text = mask_text(str(exc) or type(exc).__name__, secrets)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return APITimeoutError(f"Connect timed out: {text}", phase="connect", response=response)
    if isinstance(exc, asyncio.TimeoutError):
        return APITimeoutError(
            f"No data within the idle timeout: {text}", phase="idle", response=response
        )
    if isinstance(exc, aiohttp.ClientPayloadError):
        if text.startswith("The connection broke"):
            return APIConnectionError(text, response=response)
        # aiohttp's text ("TransferEncodingError: 400, ...") reads like an HTTP 400; it stays
        # reachable as the error's __cause__.
        return APIConnectionError(
            "The connection broke off mid-body: the server closed it before the body ended.",
            response=response,
        )
    if isinstance(exc, RuntimeError):
        return APIConnectionError(
            "The connection broke off: it was closed while the body was read.", response=response
        )
    return APIConnectionError(f"Connection error: {text}", response=response)


async def read_error_body(response: aiohttp.ClientResponse, timeout: float | None) -> Any:
    """Read a bounded error body within ``timeout``, so a server cannot hold a failure open.

    What arrived before the limit or the timeout is kept.
    """
    chunks: list[bytes] = []

    async def read() -> None:
        size = 0
        while size < _ERROR_BODY_LIMIT:
            chunk = await response.content.readany()
            if not chunk:
                return
            chunks.append(chunk)
            size += len(chunk)

    with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError, RuntimeError):
        await asyncio.wait_for(read(), timeout)
    text = b"".join(chunks)[:_ERROR_BODY_LIMIT].decode("utf-8", "replace")
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text
