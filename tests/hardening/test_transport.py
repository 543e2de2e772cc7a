"""The event source under hostile conditions: cancel in every phase, hung hooks, broken
framing, pings forever, a loop blocked by another stream, stalled error bodies."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from openai_sse import (
    APIConnectionError,
    APITimeoutError,
    InternalServerError,
    StreamCancelled,
)
from openai_sse.transport import EventSource, EventSources, Request, Timeout

from ..servers import LocalServer, hang, stalling_after
from ..transport.recorder import Recorder, SyncRecorder


async def until(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    """Poll a state no event announces (the client's side of a socket), bounded."""
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


def start(
    session: aiohttp.ClientSession, url: str, listener: Recorder | SyncRecorder, **options: object
) -> EventSource:
    factory = EventSources.create_factory(session, **options)  # type: ignore[arg-type]
    return factory.new_event_source(Request(url), listener)


def stalled_error_body(status: int = 500) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"error": {"message": "half')
        await hang()
        return response

    return handler


# -- cancel() wins in every phase ---------------------------------------------------------------


async def test_cancel_while_an_error_body_stalls(session: aiohttp.ClientSession) -> None:
    async with LocalServer({"/": stalled_error_body()}) as server:
        rec = Recorder()
        source = start(session, server.url("/"), rec)
        await until(lambda: source.response is not None)  # now reading the error body
        started = time.monotonic()
        source.cancel()
        await asyncio.wait_for(source.wait(), 2)
        await asyncio.wait_for(server.disconnected.wait(), 5)
    assert time.monotonic() - started < 1
    assert rec.calls == [("failure", "StreamCancelled")]
    assert rec.failure_response is not None


async def test_error_body_read_obeys_the_idle_timeout(session: aiohttp.ClientSession) -> None:
    async with LocalServer({"/": stalled_error_body()}) as server:
        rec = Recorder()
        started = time.monotonic()
        source = start(session, server.url("/"), rec, timeout=Timeout(idle=0.3))
        await asyncio.wait_for(source.wait(), 5)
    assert time.monotonic() - started < 2  # not a fixed 10 s
    assert isinstance(rec.error, InternalServerError)
    assert rec.error.body == '{"error": {"message": "half'  # what arrived is kept


async def test_total_deadline_ends_an_error_body_read(session: aiohttp.ClientSession) -> None:
    async with LocalServer({"/": stalled_error_body()}) as server:
        rec = Recorder()
        source = start(session, server.url("/"), rec, timeout=Timeout(idle=30, total=0.3))
        await asyncio.wait_for(source.wait(), 5)
    assert isinstance(rec.error, APITimeoutError) and rec.error.phase == "total"


# -- hooks that never return --------------------------------------------------------------------


class HungHook(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.hook_cancelled = False

    async def on_event(
        self, source: EventSource, id: str | None, type: str | None, data: str
    ) -> None:
        await super().on_event(source, id, type, data)
        self.entered.set()
        try:
            await hang()
        except asyncio.CancelledError:
            self.hook_cancelled = True
            raise


async def test_cancel_from_another_task_ends_a_hung_hook(session: aiohttp.ClientSession) -> None:
    async with LocalServer({"/": stalling_after(b"data: 1\n\ndata: 2\n\n")}) as server:
        rec = HungHook()
        source = start(session, server.url("/"), rec)
        await asyncio.wait_for(rec.entered.wait(), 5)
        source.cancel()
        await asyncio.wait_for(source.wait(), 2)
    assert rec.hook_cancelled
    assert rec.calls == [("open", 200), ("event", None, None, "1"), ("failure", "StreamCancelled")]
    assert rec.terminal == 1


async def test_total_timeout_ends_a_hung_hook(session: aiohttp.ClientSession) -> None:
    async with LocalServer({"/": stalling_after(b"data: 1\n\n")}) as server:
        rec = HungHook()
        source = start(session, server.url("/"), rec, timeout=Timeout(total=0.3))
        await asyncio.wait_for(source.wait(), 3)
    assert rec.hook_cancelled
    assert isinstance(rec.error, APITimeoutError) and rec.error.phase == "total"
    assert rec.terminal == 1


async def test_a_hook_swallowing_the_cancellation_still_ends_cleanly(
    session: aiohttp.ClientSession,
) -> None:
    class Swallows(HungHook):
        cancelling_in_failure: int | None = None

        async def on_event(
            self, source: EventSource, id: str | None, type: str | None, data: str
        ) -> None:
            with contextlib.suppress(asyncio.CancelledError):
                await super().on_event(source, id, type, data)

        async def on_failure(
            self,
            source: EventSource,
            error: BaseException,
            response: aiohttp.ClientResponse | None,
        ) -> None:
            await super().on_failure(source, error, response)
            task = asyncio.current_task()
            cancelling = getattr(task, "cancelling", None)
            self.cancelling_in_failure = cancelling() if cancelling else 0

    async with LocalServer({"/": stalling_after(b"data: 1\n\ndata: 2\n\n")}) as server:
        rec = Swallows()
        source = start(session, server.url("/"), rec)
        await asyncio.wait_for(rec.entered.wait(), 5)
        source.cancel()
        await asyncio.wait_for(source.wait(), 2)
    assert rec.hook_cancelled
    assert rec.calls == [("open", 200), ("event", None, None, "1"), ("failure", "StreamCancelled")]
    assert rec.cancelling_in_failure == 0  # the terminal callback runs un-cancelled


async def test_cancel_from_inside_a_hook_does_not_cancel_that_hook(
    session: aiohttp.ClientSession,
) -> None:
    finished: list[str] = []

    class CancelsItself(Recorder):
        async def on_event(
            self, source: EventSource, id: str | None, type: str | None, data: str
        ) -> None:
            await super().on_event(source, id, type, data)
            source.cancel()
            await asyncio.sleep(0.01)  # the hook's own awaits are not interrupted
            finished.append(data)

    async with LocalServer({"/": stalling_after(b"data: 1\n\ndata: 2\n\n")}) as server:
        rec = CancelsItself()
        source = start(session, server.url("/"), rec)
        await asyncio.wait_for(source.wait(), 5)
    assert finished == ["1"]
    assert rec.calls == [("open", 200), ("event", None, None, "1"), ("failure", "StreamCancelled")]


# -- broken chunked framing -----------------------------------------------------------------------

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.mark.parametrize(
    "after_first",
    [b"zz\r\nxx\r\n", chunk(b"data: 2\n\n") + chunk(b"data: 3\n\n") + b"zz\r\nxx\r\n"],
    ids=["alone", "same-read-as-good-events"],
)
async def test_bad_chunk_size_is_reported_at_once_after_good_events(
    session: aiohttp.ClientSession, after_first: bytes
) -> None:
    first = asyncio.Event()

    async def raw(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(HEAD + chunk(b"data: 1\n\n"))
        await first.wait()  # the client has the first event: the rest is a separate read
        writer.write(after_first)
        await reader.read()  # hold the connection open until the client lets go
        writer.close()

    server = await asyncio.start_server(raw, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        rec = Recorder()
        rec.event_hook = lambda source, data: first.set()
        source = start(session, f"http://127.0.0.1:{port}/", rec, timeout=Timeout(idle=30))
        await asyncio.wait_for(source.wait(), 3)
    finally:
        server.close()
        await server.wait_closed()
    good = ["1"] if after_first.startswith(b"zz") else ["1", "2", "3"]
    assert rec.events == good
    assert rec.calls[-1] == ("failure", "APIConnectionError")
    assert isinstance(rec.error, APIConnectionError)
    assert not isinstance(rec.error, APITimeoutError)
    assert "connection broke" in str(rec.error)


# -- the idle timeout ------------------------------------------------------------------------------


def pinging(interval: float) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: 1\n\n")
        while True:
            await asyncio.sleep(interval)
            await response.write(b": ping\n\n")

    return handler


async def test_keepalive_comments_forever_end_in_an_idle_timeout(
    session: aiohttp.ClientSession,
) -> None:
    async with LocalServer({"/": pinging(0.05)}) as server:
        rec = Recorder()
        source = start(session, server.url("/"), rec, timeout=Timeout(idle=0.4))
        await asyncio.wait_for(source.wait(), 5)
    assert rec.events == ["1"]
    assert isinstance(rec.error, APITimeoutError) and rec.error.phase == "idle"


async def test_comments_count_as_traffic_when_asked(session: aiohttp.ClientSession) -> None:
    async with LocalServer({"/": pinging(0.05)}) as server:
        rec = Recorder()
        timeout = Timeout(idle=0.3, total=1.0, idle_counts_comments=True)
        source = start(session, server.url("/"), rec, timeout=timeout)
        await asyncio.wait_for(source.wait(), 5)
    assert isinstance(rec.error, APITimeoutError) and rec.error.phase == "total"


async def test_one_slow_event_over_many_reads_is_not_idle(session: aiohttp.ClientSession) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: ")
        for _ in range(8):
            await asyncio.sleep(0.1)
            await response.write(b"x")
        await response.write(b"\n\n")
        await response.write_eof()
        return response

    async with LocalServer({"/": handler}) as server:
        rec = Recorder()
        source = start(session, server.url("/"), rec, timeout=Timeout(idle=0.35))
        await asyncio.wait_for(source.wait(), 5)
    assert rec.calls == [("open", 200), ("event", None, None, "xxxxxxxx"), ("closed",)]


def paced_server_thread(count: int, interval: float) -> tuple[int, threading.Thread]:
    """A server in its own thread, so its writes go on while the test's loop is blocked."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        with listener:
            connection, _ = listener.accept()
        with connection:
            received = b""
            while b"\r\n\r\n" not in received:
                received += connection.recv(4096)
            connection.sendall(HEAD)
            for n in range(count):
                connection.sendall(chunk(b"data: %d\n\n" % n))
                time.sleep(interval)
            connection.sendall(b"0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread


async def test_a_loop_blocked_by_another_stream_is_not_idle(
    session: aiohttp.ClientSession,
) -> None:
    b_going = asyncio.Event()

    async def blocker(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await b_going.wait()
        await response.write(b"data: block\n\n")
        await response.write_eof()
        return response

    class Blocking(SyncRecorder):
        def on_event(
            self, source: EventSource, id: str | None, type: str | None, data: str
        ) -> None:
            super().on_event(source, id, type, data)
            time.sleep(1.5)  # a careless sync hook holds the whole loop

    port, thread = paced_server_thread(25, 0.1)
    async with LocalServer({"/a": blocker}) as server:
        b = Recorder()
        b.event_hook = lambda source, data: b_going.set() if data == "3" else None
        url = f"http://127.0.0.1:{port}/"
        source_b = start(session, url, b, timeout=Timeout(idle=1.0))
        source_a = start(session, server.url("/a"), Blocking())
        await asyncio.wait_for(asyncio.gather(source_a.wait(), source_b.wait()), 10)
    await asyncio.to_thread(thread.join, 5)
    assert b.calls[-1] == ("closed",), b.error
    assert b.events == [str(n) for n in range(25)]


async def test_cancelled_before_the_first_attempt_even_with_a_deadline_passed(
    session: aiohttp.ClientSession,
) -> None:
    async with LocalServer({"/": stalling_after(b"data: 1\n\n")}) as server:
        rec = Recorder()
        factory = EventSources.create_factory(session)
        loop = asyncio.get_running_loop()
        source = factory.new_event_source(Request(server.url("/")), rec, deadline=loop.time())
        await asyncio.wait_for(source.wait(), 2)
    assert server.requests == []
    assert isinstance(rec.error, APITimeoutError) and rec.error.phase == "total"
    assert not isinstance(rec.error, StreamCancelled)
