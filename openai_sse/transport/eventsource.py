"""The event source: one HTTP request on an aiohttp session, its body decoded into callbacks.

The contract is okhttp-sse 5.x: the factory returns at once and connects in a task;
``on_open`` then ``on_event``* then exactly one of ``on_closed`` / ``on_failure``; ``cancel()``
is synchronous, idempotent and always ends in ``on_failure(StreamCancelled)``.

Interrupting is split in two so that user code is never cancelled under its feet: while the
task waits on the network it is cancelled outright (and the connection closed), while it runs a
listener callback only a flag is set, checked before the next event.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import time
from typing import Any, Final

import aiohttp

from ..errors import (
    APIConnectionError,
    APITimeoutError,
    OpenAISSEError,
    ProtocolError,
    StreamCancelled,
    status_error,
)
from ..sse.decoder import DEFAULT_MAX_EVENT_SIZE, SSEDecoder
from .listener import EventSourceListener
from .reconnect import Reconnect
from .request import Request
from .timeouts import DEFAULT_TIMEOUT, Timeout

__all__ = ["EventSource", "EventSourceFactory", "EventSources", "ReadyState"]

logger = logging.getLogger("openai_sse")

_ERROR_BODY_LIMIT: Final = 64 * 1024
_ERROR_BODY_TIMEOUT: Final = 10.0


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
    ) -> None:
        self._session = session
        self._request = request
        self._listener = listener
        self._timeout = timeout
        self._reconnect = reconnect if request.method == "GET" else None
        self._max_event_size = max_event_size
        self._decoder = SSEDecoder(max_event_size=max_event_size)
        self._loop = asyncio.get_running_loop()
        self._ready_state = ReadyState.CONNECTING
        self._response: aiohttp.ClientResponse | None = None
        # Why the run loop must stop: "cancel", or the name of the timeout phase that fired.
        self._stop_reason: str | None = None
        # True while the task awaits the network (and may be cancelled), False in callbacks.
        self._in_io = False
        self._terminated = False
        self._first_event_timer: asyncio.TimerHandle | None = None
        self._total_timer: asyncio.TimerHandle | None = None
        # One idle watchdog per source, re-armed only when it expires: cheaper than a timer
        # per read. ``_net_since`` is when the current wait on the network began (None when
        # not waiting), so time spent in listener callbacks never counts as idle.
        self._idle_timer: asyncio.TimerHandle | None = None
        self._net_since: float | None = None
        self._idle_fired = False
        self.bytes_received = 0
        self.events_received = 0
        self._task = self._loop.create_task(self._run())

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
            f"<EventSource {self._request.method} {self._request.url} "
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
        if self._in_io:
            self._task.cancel()

    def _on_idle(self) -> None:
        self._idle_timer = None
        idle = self._timeout.idle
        if self._terminated or self._stop_reason is not None or idle is None:
            return
        now = self._loop.time()
        since = self._net_since
        if since is not None and self._in_io and now - since >= idle:
            self._idle_fired = True
            self._task.cancel()
            return
        self._idle_timer = self._loop.call_at(
            (now if since is None else since) + idle, self._on_idle
        )

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
        timeout = self._timeout
        if timeout.total is not None:
            self._total_timer = self._loop.call_later(timeout.total, self._interrupt, "total")
        if timeout.idle is not None:
            self._idle_timer = self._loop.call_later(timeout.idle, self._on_idle)
        try:
            failures = 0
            while (delivered := await self._attempt()) is not None:
                failures = 0 if delivered else failures + 1
                if not await self._wait_to_reconnect(failures):
                    return
        finally:
            self._ready_state = ReadyState.CLOSED
            self._terminated = True
            for timer in (self._first_event_timer, self._total_timer, self._idle_timer):
                if timer is not None:
                    timer.cancel()

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
        logger.info("Reconnecting to %s in %.3f s", self._request.url, delay)
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
            self._first_event_timer = self._loop.call_later(
                timeout.first_event, self._interrupt, "first_event"
            )
        response: aiohttp.ClientResponse | None = None
        delivered = False
        error: BaseException | None = None
        broke_off: APIConnectionError | None = None
        try:
            if self._stop_reason is not None:
                raise _Stop
            response = self._response = await self._connect()
            if not 200 <= response.status < 300:
                body = await _read_error_body(response)
                error = status_error(
                    response.status,
                    body,
                    response=response,
                    request_id=response.headers.get("x-request-id"),
                )
                await self._terminate(error, response)
                return None
            content_type = response.headers.get("Content-Type")
            if not _is_event_stream(content_type):
                if response.status == 204 and self._reconnect is not None:
                    # The spec's way for a server to say "do not come back".
                    await self._terminate(None, response)
                    return None
                error = ProtocolError(
                    f"Invalid content-type: {content_type or 'null'}", response=response
                )
                await self._terminate(error, response)
                return None
            if self._stop_reason is not None:
                raise _Stop
            self._ready_state = ReadyState.OPEN
            result = listener.on_open(self, response)
            if result is not None:
                await result
            if self._stop_reason is not None:
                raise _Stop
            delivered = await self._read_events(response)
        except _Stop:
            error = self._stop_error(response)
        except asyncio.CancelledError:
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
            if self._first_event_timer is not None:
                self._first_event_timer.cancel()
                self._first_event_timer = None
        if broke_off is not None:
            if self._stop_reason is not None:
                error = self._stop_error(response)
            elif self._reconnect is not None:
                logger.info("Stream to %s broke off: %s", self._request.url, broke_off)
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
        logger.debug("Request: %s %s", request.method, request.url)
        started = time.monotonic()
        self._net_since = self._loop.time()
        self._in_io = True
        try:
            response = await self._session.request(
                request.method,
                request.url,
                headers=headers,
                json=request.json,
                data=request.data,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=timeout.connect, sock_read=None
                ),
            )
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise _TransportFailure(_map_transport_error(exc, None)) from exc
        finally:
            self._in_io = False
            self._net_since = None
        logger.debug(
            "Response: %s %s -> %d in %.3f s",
            request.method,
            request.url,
            response.status,
            time.monotonic() - started,
        )
        return response

    async def _read_events(self, response: aiohttp.ClientResponse) -> bool:
        """Read to EOF, delivering events; returns whether any event was delivered."""
        on_event = self._listener.on_event
        readany = response.content.readany
        feed = self._decoder.feed
        clock = self._loop.time
        delivered = False
        while True:
            self._net_since = clock()
            self._in_io = True
            try:
                data = await readany()
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                raise _TransportFailure(_map_transport_error(exc, response)) from exc
            finally:
                self._in_io = False
                self._net_since = None
            if not data:
                self._decoder.end()
                return delivered
            self.bytes_received += len(data)
            events = feed(data)
            if not events:
                continue
            if not delivered:
                delivered = True
                if self._first_event_timer is not None:
                    self._first_event_timer.cancel()
                    self._first_event_timer = None
            for event in events:
                if self._stop_reason is not None:
                    raise _Stop
                self.events_received += 1
                result = on_event(self, event.id, event.type, event.data)
                if result is not None:
                    await result
            if self._stop_reason is not None:
                raise _Stop

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
        self, request: Request | str, listener: EventSourceListener
    ) -> EventSource:
        """Start connecting in a task and return at once; no callback runs before this returns.

        Must be called with a running event loop. Cancel the source when done with it, or use
        it as an async context manager.
        """
        if isinstance(request, str):
            request = Request(request)
        if request.header("Accept") is None:
            request = request.with_header("Accept", "text/event-stream")
        return EventSource(
            self.session,
            request,
            listener,
            timeout=self.timeout,
            reconnect=self.reconnect,
            max_event_size=self.max_event_size,
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
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == "text/event-stream"


def _map_transport_error(
    exc: BaseException, response: aiohttp.ClientResponse | None
) -> APIConnectionError:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return APITimeoutError(f"Connect timed out: {exc}", phase="connect", response=response)
    if isinstance(exc, asyncio.TimeoutError):
        return APITimeoutError(
            f"No data within the idle timeout: {exc}", phase="idle", response=response
        )
    if isinstance(exc, aiohttp.ClientPayloadError):
        return APIConnectionError(f"Stream broke off: {exc}", response=response)
    text = str(exc) or type(exc).__name__
    return APIConnectionError(f"Connection error: {text}", response=response)


async def _read_error_body(response: aiohttp.ClientResponse) -> Any:
    """Read a bounded error body, so a misbehaving server cannot hold the failure open."""
    chunks: list[bytes] = []

    async def read() -> None:
        size = 0
        while size < _ERROR_BODY_LIMIT:
            chunk = await response.content.readany()
            if not chunk:
                return
            chunks.append(chunk)
            size += len(chunk)

    with contextlib.suppress(aiohttp.ClientError, OSError, asyncio.TimeoutError):
        await asyncio.wait_for(read(), _ERROR_BODY_TIMEOUT)
    text = b"".join(chunks)[:_ERROR_BODY_LIMIT].decode("utf-8", "replace")
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text
