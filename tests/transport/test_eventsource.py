"""The OkHttp 5.x EventSource contract, over a real aiohttp server on 127.0.0.1.

Row names (H1...) refer to the HTTP scenario table of the OkHttp notes.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import aiohttp
import pytest
from aiohttp import web

from openai_sse import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    InternalServerError,
    ProtocolError,
    RateLimitError,
    StreamCancelled,
)
from openai_sse.transport import (
    EventSource,
    EventSourceListener,
    EventSources,
    ReadyState,
    Request,
    Timeout,
)

from ..servers import LocalServer, hang, hanging, sse_response, stalling_after
from .recorder import Recorder, SyncRecorder


def hey(request: web.Request) -> asyncio.Future[web.StreamResponse]:
    return asyncio.ensure_future(sse_response(request, b"data: hey\n\n"))


async def run(
    session: aiohttp.ClientSession,
    url: str,
    listener: EventSourceListener | None = None,
    **options: object,
) -> tuple[Recorder, EventSource]:
    recorder = listener if listener is not None else Recorder()
    factory = EventSources.create_factory(session, **options)  # type: ignore[arg-type]
    source = factory.new_event_source(Request(url), recorder)
    await asyncio.wait_for(source.wait(), 10)
    assert isinstance(recorder, Recorder | SyncRecorder)
    return recorder, source  # type: ignore[return-value]


# -- H1-H3, H15: successful streams ----------------------------------------------------------


async def test_event_then_closed(session: aiohttp.ClientSession) -> None:
    async with LocalServer({"/": hey}) as server:
        rec, source = await run(session, server.url("/"))
    assert rec.calls == [("open", 200), ("event", None, None, "hey"), ("closed",)]
    assert source.ready_state is ReadyState.CLOSED
    assert source.request.url == server.url("/")
    assert server.requests[0].method == "GET"


async def test_factory_returns_before_any_callback(session: aiohttp.ClientSession) -> None:
    async with LocalServer({"/": hey}) as server:
        rec = Recorder()
        source = EventSources.create_factory(session).new_event_source(
            Request(server.url("/")), rec
        )
        assert rec.calls == []
        assert source.ready_state is ReadyState.CONNECTING
        await source.wait()
    assert rec.calls[-1] == ("closed",)


async def test_empty_body_opens_and_closes(session: aiohttp.ClientSession) -> None:
    async with LocalServer({"/": lambda r: sse_response(r)}) as server:
        rec, _ = await run(session, server.url("/"))
    assert rec.calls == [("open", 200), ("closed",)]


@pytest.mark.parametrize(
    "content_type", ["text/event-stream; charset=utf-8", "TEXT/Event-Stream", "text/event-stream;"]
)
async def test_content_type_parameters_and_case_accepted(
    session: aiohttp.ClientSession, content_type: str
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, b"data: hey\n\n", content_type=content_type)

    async with LocalServer({"/": handler}) as server:
        rec, _ = await run(session, server.url("/"))
    assert rec.calls == [("open", 200), ("event", None, None, "hey"), ("closed",)]


async def test_sync_listener(session: aiohttp.ClientSession) -> None:
    async with LocalServer({"/": hey}) as server:
        listener = SyncRecorder()
        factory = EventSources.create_factory(session)
        await factory.new_event_source(Request(server.url("/")), listener).wait()
    assert listener.calls == [("open", 200), ("event", None, None, "hey"), ("closed",)]


async def test_events_split_across_writes_keep_ids_and_types(
    session: aiohttp.ClientSession,
) -> None:
    body = b"id: 1\nevent: add\ndata: a\n\ndata: b\r\n\r\nevent: x\rdata: c\r\r"
    parts = [body[i : i + 3] for i in range(0, len(body), 3)]

    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, *parts)

    async with LocalServer({"/": handler}) as server:
        rec, source = await run(session, server.url("/"))
    assert rec.calls[1:-1] == [
        ("event", "1", "add", "a"),
        ("event", "1", None, "b"),
        ("event", "1", "x", "c"),
    ]
    assert source.last_event_id == "1"


async def test_unterminated_last_block_dropped_and_cr_at_eof_dispatches(
    session: aiohttp.ClientSession,
) -> None:
    # H17: OkHttp 4/5 fails here; the spec drops the block. H18: CR-only stream ending in CR.
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, b"data: one\r\rdata: two\r\rdata: three")

    async with LocalServer({"/": handler}) as server:
        rec, _ = await run(session, server.url("/"))
    assert rec.events == ["one", "two"]
    assert rec.calls[-1] == ("closed",)


async def test_close_delimited_body(session: aiohttp.ClientSession) -> None:
    # H15 without chunked encoding or length: the body ends when the server closes.
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        response.force_close()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"data: one\n\n")
        await response.write_eof()
        return response

    async with LocalServer({"/": handler}) as server:
        rec, _ = await run(session, server.url("/"))
    assert rec.calls == [("open", 200), ("event", None, None, "one"), ("closed",)]


async def test_retry_and_last_event_id_exposed(session: aiohttp.ClientSession) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, b"retry: 2500\nid: 7\n\n")

    async with LocalServer({"/": handler}) as server:
        rec, source = await run(session, server.url("/"))
    assert source.retry == 2500
    assert source.last_event_id == "7"
    assert rec.calls == [("open", 200), ("closed",)]


# -- H22, H23: the Accept header ----------------------------------------------------------------


async def test_sets_missing_accept(session: aiohttp.ClientSession) -> None:
    async with LocalServer({"/": hey}) as server:
        _, source = await run(session, server.url("/"))
    assert server.requests[0].headers["Accept"] == "text/event-stream"
    assert source.request.header("accept") == "text/event-stream"


async def test_retains_accept(session: aiohttp.ClientSession) -> None:
    async with LocalServer({"/": hey}) as server:
        rec = Recorder()
        factory = EventSources.create_factory(session)
        req = Request(server.url("/"), headers={"accept": "text/plain"})
        source = factory.new_event_source(req, rec)
        await source.wait()
    assert server.requests[0].headers.getall("Accept") == ["text/plain"]
    assert rec.calls[-1] == ("closed",)


async def test_post_with_json_body(session: aiohttp.ClientSession) -> None:
    async with LocalServer({"/": hey}) as server:
        rec = Recorder()
        req = Request(server.url("/"), "post", headers={"X-Test": "1"}, json={"a": [1, "é"]})
        await EventSources.create_factory(session).new_event_source(req, rec).wait()
    seen = server.requests[0]
    assert seen.method == "POST"
    assert seen.headers["X-Test"] == "1"
    assert seen.headers["Content-Type"].startswith("application/json")
    assert server.bodies[0] == b'{"a": [1, "\\u00e9"]}'
    assert rec.events == ["hey"]


# -- H4-H7, H10: failures before open -----------------------------------------------------------


async def test_bad_content_type(session: aiohttp.ClientSession) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, b"data: hey\n\n", content_type="text/plain")

    async with LocalServer({"/": handler}) as server:
        rec, _ = await run(session, server.url("/"))
    assert rec.calls == [("failure", "ProtocolError")]
    assert str(rec.error) == "Invalid content-type: text/plain"
    assert rec.failure_response is not None and rec.failure_response.status == 200
    assert rec.failure_body == "data: hey\n\n"  # readable inside on_failure, as in OkHttp


async def test_missing_content_type(session: aiohttp.ClientSession) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"data: hey\n\n")
        return response

    async with LocalServer({"/": handler}) as server:
        rec, _ = await run(session, server.url("/"))
    assert rec.calls == [("failure", "ProtocolError")]
    assert "Invalid content-type" in str(rec.error)


async def test_204_without_reconnection_is_a_content_type_failure(
    session: aiohttp.ClientSession,
) -> None:
    async with LocalServer({"/": lambda r: asyncio.sleep(0, web.Response(status=204))}) as server:
        rec, _ = await run(session, server.url("/"))
    assert rec.calls == [("failure", "ProtocolError")]
    assert str(rec.error) == "Invalid content-type: null"


async def test_401_event_stream_is_a_typed_status_error(session: aiohttp.ClientSession) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, b"data: hey\n\n", status=401)

    async with LocalServer({"/": handler}) as server:
        rec, _ = await run(session, server.url("/"))
    assert rec.calls == [("failure", "AuthenticationError")]
    assert isinstance(rec.error, AuthenticationError)
    assert rec.error.status_code == 401
    assert rec.error.body == "data: hey\n\n"
    assert rec.failure_response is not None and rec.failure_response.status == 401


async def test_401_json_body_read_into_error(session: aiohttp.ClientSession) -> None:
    body = {"error": {"message": "No auth credentials found", "code": 401}}

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=401, headers={"x-request-id": "req_1"})

    async with LocalServer({"/": handler}) as server:
        rec, _ = await run(session, server.url("/"))
    assert isinstance(rec.error, AuthenticationError)
    assert rec.error.body == body
    assert rec.error.request_id == "req_1"
    assert "No auth credentials found" in str(rec.error)


@pytest.mark.parametrize(
    ("status", "error_type"), [(429, RateLimitError), (500, InternalServerError)]
)
async def test_status_codes_map_to_classes(
    session: aiohttp.ClientSession, status: int, error_type: type[Exception]
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, text="nope")

    async with LocalServer({"/": handler}) as server:
        rec, _ = await run(session, server.url("/"))
    assert isinstance(rec.error, error_type)
    assert rec.calls == [("failure", error_type.__name__)]


async def test_connect_failure_has_no_response(session: aiohttp.ClientSession) -> None:
    # H11: a port nobody listens on.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rec, _ = await run(session, f"http://127.0.0.1:{port}/")
    assert rec.calls == [("failure", "APIConnectionError")]
    assert isinstance(rec.error, APIConnectionError)
    assert rec.error.response is None
    assert rec.failure_response is None


# -- timeouts: H12-H14 --------------------------------------------------------------------------


async def test_first_event_timeout_before_headers(session: aiohttp.ClientSession) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        await hang()
        raise AssertionError

    async with LocalServer({"/": handler}) as server:
        rec, _ = await run(session, server.url("/"), timeout=Timeout(first_event=0.2))
        await asyncio.wait_for(server.disconnected.wait(), 5)
    assert rec.calls == [("failure", "APITimeoutError")]
    assert isinstance(rec.error, APITimeoutError) and rec.error.phase == "first_event"
    assert rec.failure_response is None


async def test_watchdog_is_armed_once_the_request_is_out_and_never_after_the_end(
    session: aiohttp.ClientSession,
) -> None:
    reached = asyncio.Event()
    async with LocalServer({"/": hanging(reached)}) as server:
        factory = EventSources.create_factory(session, timeout=Timeout(first_event=30, idle=None))
        loop = asyncio.get_running_loop()
        started = loop.time()
        source = factory.new_event_source(Request(server.url("/")), Recorder())
        await asyncio.wait_for(reached.wait(), 5)
        timer = source._watchdog
        assert timer is not None and started + 30 <= timer.when() <= loop.time() + 30
        source.cancel()
        await source.wait()
        assert source._watchdog is None and timer.cancelled()

        # Over before the deferred arming runs: no timer is left behind for 30 s.
        # The default timeouts: the idle one is armed whatever phase the source is in.
        early = EventSources.create_factory(session).new_event_source(
            Request(server.url("/")), Recorder()
        )
        early.cancel()
        await early.wait()
        for _ in range(3):
            await asyncio.sleep(0)  # the turns the arming waits for
        assert early._watchdog is None


async def test_keepalive_comments_do_not_defeat_first_event_timeout(
    session: aiohttp.ClientSession,
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(200):
            await response.write(b": keep-alive\n\n")
            await asyncio.sleep(0.01)
        return response

    async with LocalServer({"/": handler}) as server:
        # Comments counted as traffic (the option), so only first_event can end it.
        timeout = Timeout(first_event=0.3, idle=0.2, idle_counts_comments=True)
        rec, _ = await run(session, server.url("/"), timeout=timeout)
    assert rec.calls == [("open", 200), ("failure", "APITimeoutError")]
    assert isinstance(rec.error, APITimeoutError) and rec.error.phase == "first_event"


async def test_body_delay_within_limits_is_not_a_timeout(session: aiohttp.ClientSession) -> None:
    # H13: the time to the first event may exceed the connect timeout.
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await asyncio.sleep(0.3)
        await response.write(b"data: hey\n\n")
        return response

    async with LocalServer({"/": handler}) as server:
        rec, _ = await run(session, server.url("/"), timeout=Timeout(connect=0.1))
    assert rec.calls == [("open", 200), ("event", None, None, "hey"), ("closed",)]


async def test_idle_timeout_after_an_event(session: aiohttp.ClientSession) -> None:
    # H14
    handler = stalling_after(b"data: hey\n\n")

    async with LocalServer({"/": handler}) as server:
        rec, _ = await run(session, server.url("/"), timeout=Timeout(idle=0.2))
        await asyncio.wait_for(server.disconnected.wait(), 5)
    assert rec.calls == [
        ("open", 200),
        ("event", None, None, "hey"),
        ("failure", "APITimeoutError"),
    ]
    assert isinstance(rec.error, APITimeoutError) and rec.error.phase == "idle"
    assert rec.error.response is not None


async def test_total_deadline(session: aiohttp.ClientSession) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(1000):
            await response.write(f"data: {i}\n\n".encode())
            await asyncio.sleep(0.01)
        return response

    async with LocalServer({"/": handler}) as server:
        rec, _ = await run(session, server.url("/"), timeout=Timeout(total=0.3))
    assert rec.calls[-1] == ("failure", "APITimeoutError")
    assert isinstance(rec.error, APITimeoutError) and rec.error.phase == "total"
    assert 1 <= len(rec.events) < 1000


async def test_aiohttp_session_total_timeout_is_not_applied(
    session: aiohttp.ClientSession,
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(4):
            await asyncio.sleep(0.15)
            await response.write(f"data: {i}\n\n".encode())
        return response

    async with (
        LocalServer({"/": handler}) as server,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as short,
    ):
        rec, _ = await run(short, server.url("/"))
    assert rec.events == ["0", "1", "2", "3"]
    assert rec.calls[-1] == ("closed",)


# -- H16, oversized events ----------------------------------------------------------------------


async def test_drop_mid_body_is_a_connection_error(session: aiohttp.ClientSession) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: one\n\ndata: tw")
        assert request.transport is not None
        request.transport.abort()
        return response

    async with LocalServer({"/": handler}) as server:
        rec, _ = await run(session, server.url("/"))
    assert rec.calls == [
        ("open", 200),
        ("event", None, None, "one"),
        ("failure", "APIConnectionError"),
    ]
    assert rec.failure_response is not None


async def test_oversized_event_is_a_protocol_error(session: aiohttp.ClientSession) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, b"data: ok\n\n", b"data: " + b"x" * 5000 + b"\n\n")

    async with LocalServer({"/": handler}) as server:
        rec, _ = await run(session, server.url("/"), max_event_size=1000)
    assert rec.calls == [("open", 200), ("event", None, None, "ok"), ("failure", "ProtocolError")]
    assert isinstance(rec.error, ProtocolError)
    assert rec.error.response is not None


# -- cancellation -------------------------------------------------------------------------------


async def test_cancel_in_on_open_short_circuits(session: aiohttp.ClientSession) -> None:
    # H21 / cancelInEventShortCircuits
    async with LocalServer({"/": hey}) as server:
        rec = Recorder()
        rec.open_hook = lambda source: source.cancel()
        _, source = await run(session, server.url("/"), rec)
    assert rec.calls == [("open", 200), ("failure", "StreamCancelled")]
    assert isinstance(rec.error, StreamCancelled)
    assert source.ready_state is ReadyState.CLOSED


async def test_cancel_in_on_event_stops_buffered_events(session: aiohttp.ClientSession) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, b"data: 1\n\ndata: 2\n\ndata: 3\n\n")

    async with LocalServer({"/": handler}) as server:
        rec = Recorder()
        rec.event_hook = lambda source, data: source.cancel()
        await run(session, server.url("/"), rec)
    assert rec.calls == [("open", 200), ("event", None, None, "1"), ("failure", "StreamCancelled")]
    assert rec.terminal == 1


async def test_cancel_from_other_task_while_read_blocks(session: aiohttp.ClientSession) -> None:
    first = asyncio.Event()

    handler = stalling_after(b"data: hey\n\n")

    async with LocalServer({"/": handler}) as server:
        rec = Recorder()
        rec.event_hook = lambda source, data: first.set()
        source = EventSources.create_factory(session).new_event_source(
            Request(server.url("/")), rec
        )
        await asyncio.wait_for(first.wait(), 5)
        source.cancel()
        source.cancel()  # idempotent
        assert source.ready_state is ReadyState.CLOSED
        await asyncio.wait_for(server.disconnected.wait(), 5)
        await source.wait()
    assert rec.calls == [
        ("open", 200),
        ("event", None, None, "hey"),
        ("failure", "StreamCancelled"),
    ]
    assert rec.failure_response is not None


async def test_cancel_before_response(session: aiohttp.ClientSession) -> None:
    arrived = asyncio.Event()
    async with LocalServer({"/": hanging(arrived)}) as server:
        rec = Recorder()
        source = EventSources.create_factory(session).new_event_source(
            Request(server.url("/")), rec
        )
        await asyncio.wait_for(arrived.wait(), 5)
        source.cancel()
        await source.wait()
        await asyncio.wait_for(server.disconnected.wait(), 5)
    assert rec.calls == [("failure", "StreamCancelled")]
    assert rec.failure_response is None


async def test_cancel_immediately_after_creation(session: aiohttp.ClientSession) -> None:
    async with LocalServer({"/": hey}) as server:
        rec = Recorder()
        source = EventSources.create_factory(session).new_event_source(
            Request(server.url("/")), rec
        )
        source.cancel()
        await source.wait()
    assert rec.calls == [("failure", "StreamCancelled")]
    assert server.requests == []


async def test_cancel_after_close_is_a_no_op(session: aiohttp.ClientSession) -> None:
    async with LocalServer({"/": hey}) as server:
        rec, source = await run(session, server.url("/"))
        source.cancel()
        await source.wait()
    assert rec.calls[-1] == ("closed",)
    assert rec.terminal == 1


async def test_async_with_cancels_on_exit(session: aiohttp.ClientSession) -> None:
    opened = asyncio.Event()

    handler = stalling_after()

    async with LocalServer({"/": handler}) as server:
        rec = Recorder()
        rec.open_hook = lambda source: opened.set()
        factory = EventSources.create_factory(session)
        async with factory.new_event_source(Request(server.url("/")), rec):
            await asyncio.wait_for(opened.wait(), 5)
        await asyncio.wait_for(server.disconnected.wait(), 5)
    assert rec.calls == [("open", 200), ("failure", "StreamCancelled")]


async def test_cancelling_a_waiter_does_not_cancel_the_source(
    session: aiohttp.ClientSession,
) -> None:
    async with LocalServer({"/": hey}) as server:
        rec = Recorder()
        source = EventSources.create_factory(session).new_event_source(
            Request(server.url("/")), rec
        )
        waiter = asyncio.ensure_future(source.wait())
        waiter.cancel()
        await source.wait()
    assert rec.calls[-1] == ("closed",)


# -- listener exceptions ------------------------------------------------------------------------


async def test_exception_in_on_event_ends_stream_through_on_failure(
    session: aiohttp.ClientSession,
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, b"data: 1\n\ndata: 2\n\n")

    def boom(source: EventSource, data: str) -> None:
        raise KeyError(data)

    async with LocalServer({"/": handler}) as server:
        rec = Recorder()
        rec.event_hook = boom
        await run(session, server.url("/"), rec)
    assert rec.calls == [("open", 200), ("event", None, None, "1"), ("failure", "KeyError")]


async def test_exception_in_on_open_ends_stream(session: aiohttp.ClientSession) -> None:
    class Broken(Recorder):
        async def on_open(self, source: EventSource, response: aiohttp.ClientResponse) -> None:
            raise RuntimeError("open")

    async with LocalServer({"/": hey}) as server:
        rec, _ = await run(session, server.url("/"), Broken())
    assert rec.calls == [("failure", "RuntimeError")]
    assert str(rec.error) == "open"


async def test_exception_in_terminal_callback_is_logged(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Recorder):
        async def on_closed(self, source: EventSource) -> None:
            await super().on_closed(source)
            raise RuntimeError("closing")

    async with LocalServer({"/": hey}) as server:
        with caplog.at_level(logging.ERROR, logger="openai_sse"):
            rec, _ = await run(session, server.url("/"), Broken())
    assert rec.calls[-1] == ("closed",)
    assert "Broken.on_closed raised" in caplog.text


async def test_caller_session_left_open(session: aiohttp.ClientSession) -> None:
    async with LocalServer({"/": hey}) as server:
        await run(session, server.url("/"))
    assert not session.closed


async def test_time_spent_in_listeners_is_not_idle(session: aiohttp.ClientSession) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n")

    class Slow(Recorder):
        async def on_event(
            self, source: EventSource, id: str | None, type: str | None, data: str
        ) -> None:
            await super().on_event(source, id, type, data)
            await asyncio.sleep(0.15)  # a slow consumer, longer than the idle bound overall

    async with LocalServer({"/": handler}) as server:
        rec, _ = await run(session, server.url("/"), Slow(), timeout=Timeout(idle=0.1))
    assert rec.events == ["1", "2", "3"]
    assert rec.calls[-1] == ("closed",)


async def test_earliest_phase_ends_the_stream(session: aiohttp.ClientSession) -> None:
    # One watchdog watches every phase: whichever bound comes first ends the stream, with
    # its own phase, however the others are set.
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: hey\n\n")
        await hang()
        raise AssertionError

    cases = [
        (Timeout(first_event=20, idle=0.2, total=30), "idle"),
        (Timeout(first_event=20, idle=30, total=0.2), "total"),
    ]
    async with LocalServer({"/": handler}) as server:
        for timeout, phase in cases:
            rec, _ = await run(session, server.url("/"), timeout=timeout)
            assert isinstance(rec.error, APITimeoutError) and rec.error.phase == phase
            assert rec.events == ["hey"]
