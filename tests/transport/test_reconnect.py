"""Opt-in browser-style reconnection, over a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from openai_sse import InternalServerError
from openai_sse.transport import EventSources, Reconnect, Request, Timeout

from ..servers import LocalServer, hang, sse_response, stalling_after
from .recorder import Recorder

FAST = Reconnect(delay=0.01, max_delay=0.05, jitter=0.0)


async def test_reconnects_after_eof_with_last_event_id_until_204(
    session: aiohttp.ClientSession,
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        count = len(server.requests)
        if count == 1:
            return await sse_response(request, b"retry: 10\nid: a\ndata: one\n\n")
        if count == 2:
            # An id that is buffered but never committed must not be sent next time.
            return await sse_response(request, b"data: two\n\nid: uncommitted\ndata: x")
        return web.Response(status=204)

    server = LocalServer({"/": handler})
    async with server:
        rec = Recorder()
        factory = EventSources.create_factory(session, reconnect=FAST)
        source = factory.new_event_source(Request(server.url("/")), rec)
        await asyncio.wait_for(source.wait(), 10)
    assert rec.calls == [
        ("open", 200),
        ("event", "a", None, "one"),
        ("open", 200),
        ("event", "a", None, "two"),  # the new stream is seeded with the committed id
        ("closed",),
    ]
    sent = [r.headers.get("Last-Event-ID") for r in server.requests]
    assert sent == [None, "a", "a"]
    assert source.retry == 10


async def test_reconnects_after_drop_and_stops_on_error_status(
    session: aiohttp.ClientSession,
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if len(server.requests) == 1:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(b"id: 1\ndata: one\n\ndata: cut")
            assert request.transport is not None
            request.transport.abort()
            return response
        return web.json_response({"error": {"message": "down"}}, status=503)

    server = LocalServer({"/": handler})
    async with server:
        rec = Recorder()
        factory = EventSources.create_factory(session, reconnect=FAST)
        await asyncio.wait_for(factory.new_event_source(server.url("/"), rec).wait(), 10)
    assert rec.calls == [
        ("open", 200),
        ("event", "1", None, "one"),
        ("failure", "InternalServerError"),
    ]
    assert isinstance(rec.error, InternalServerError)
    assert server.requests[1].headers["Last-Event-ID"] == "1"


async def test_wrong_content_type_stops_reconnection(session: aiohttp.ClientSession) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if len(server.requests) == 1:
            return await sse_response(request, b"data: one\n\n")
        return web.Response(text="not a stream")

    server = LocalServer({"/": handler})
    async with server:
        rec = Recorder()
        factory = EventSources.create_factory(session, reconnect=FAST)
        await asyncio.wait_for(factory.new_event_source(server.url("/"), rec).wait(), 10)
    assert rec.calls[-1] == ("failure", "ProtocolError")
    assert len(server.requests) == 2


async def test_post_is_never_replayed(session: aiohttp.ClientSession) -> None:
    server = LocalServer({"/": lambda r: sse_response(r, b"data: one\n\n")})
    async with server:
        rec = Recorder()
        factory = EventSources.create_factory(session, reconnect=FAST)
        request = Request(server.url("/"), "POST", json={"q": 1})
        await asyncio.wait_for(factory.new_event_source(request, rec).wait(), 10)
    assert rec.calls == [("open", 200), ("event", None, None, "one"), ("closed",)]
    assert len(server.requests) == 1


async def test_gives_up_after_max_fruitless_attempts(session: aiohttp.ClientSession) -> None:
    server = LocalServer({"/": lambda r: sse_response(r, b": nothing\n\n")})
    async with server:
        rec = Recorder()
        policy = Reconnect(delay=0.01, max_delay=0.02, jitter=0.0, max_attempts=3)
        factory = EventSources.create_factory(session, reconnect=policy)
        await asyncio.wait_for(factory.new_event_source(server.url("/"), rec).wait(), 10)
    assert rec.calls == [("open", 200)] * 3 + [("failure", "APIConnectionError")]
    assert len(server.requests) == 3


async def test_cancel_during_reconnect_wait(session: aiohttp.ClientSession) -> None:
    opened = asyncio.Event()
    server = LocalServer({"/": lambda r: sse_response(r, b"data: one\n\n")})
    async with server:
        rec = Recorder()
        rec.event_hook = lambda source, data: opened.set()
        slow = Reconnect(delay=30.0, jitter=0.0)
        factory = EventSources.create_factory(session, reconnect=slow)
        source = factory.new_event_source(server.url("/"), rec)
        await asyncio.wait_for(opened.wait(), 5)
        source.cancel()
        await asyncio.wait_for(source.wait(), 5)
    assert rec.calls == [
        ("open", 200),
        ("event", None, None, "one"),
        ("failure", "StreamCancelled"),
    ]
    assert len(server.requests) == 1


async def test_cancel_while_connected_in_reconnect_mode(session: aiohttp.ClientSession) -> None:
    opened = asyncio.Event()

    handler = stalling_after(b"data: one\n\n")

    server = LocalServer({"/": handler})
    async with server:
        rec = Recorder()
        rec.event_hook = lambda source, data: opened.set()
        factory = EventSources.create_factory(session, reconnect=FAST)
        source = factory.new_event_source(server.url("/"), rec)
        await asyncio.wait_for(opened.wait(), 5)
        source.cancel()
        await asyncio.wait_for(server.disconnected.wait(), 5)
        await source.wait()
    assert rec.calls[-1] == ("failure", "StreamCancelled")
    assert len(server.requests) == 1


def test_backoff_grows_caps_and_jitters() -> None:
    policy = Reconnect(delay=1.0, max_delay=5.0, backoff=2.0, jitter=0.0)
    assert [policy.wait_time(None, n) for n in (0, 1, 2, 3, 4)] == [1.0, 1.0, 2.0, 4.0, 5.0]
    assert policy.wait_time(250, 0) == 0.25
    jittery = Reconnect(delay=1.0, jitter=0.5)
    samples = {jittery.wait_time(None, 0) for _ in range(50)}
    assert all(0.5 <= s <= 1.5 for s in samples)
    assert len(samples) > 1


async def test_idle_timeout_reconnects(session: aiohttp.ClientSession) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if len(server.requests) == 1:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(b"id: 5\ndata: one\n\n")
            await hang()
        return web.Response(status=204)

    server = LocalServer({"/": handler})
    async with server:
        rec = Recorder()
        factory = EventSources.create_factory(session, reconnect=FAST, timeout=Timeout(idle=0.2))
        await asyncio.wait_for(factory.new_event_source(server.url("/"), rec).wait(), 10)
        await asyncio.wait_for(server.disconnected.wait(), 5)
    assert rec.calls == [("open", 200), ("event", "5", None, "one"), ("closed",)]
    assert server.requests[1].headers["Last-Event-ID"] == "5"


async def test_first_event_timeout_applies_to_each_attempt(session: aiohttp.ClientSession) -> None:
    # The second attempt opens but sends nothing: its own first-event bound ends it, long
    # before the idle bound would.
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if len(server.requests) == 1:
            await response.write(b"id: 1\ndata: one\n\n")
            return response
        await hang()
        raise AssertionError

    server = LocalServer({"/": handler})
    async with server:
        rec = Recorder()
        timeout = Timeout(first_event=0.3, idle=30)
        factory = EventSources.create_factory(session, reconnect=FAST, timeout=timeout)
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(factory.new_event_source(server.url("/"), rec).wait(), 10)
        elapsed = asyncio.get_running_loop().time() - started
    assert rec.calls == [
        ("open", 200),
        ("event", "1", None, "one"),
        ("open", 200),
        ("failure", "APITimeoutError"),
    ]
    assert rec.error.phase == "first_event"  # type: ignore[union-attr]
    assert elapsed < 5
