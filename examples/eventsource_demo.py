"""The EventSource layer on its own: a tiny SSE server on 127.0.0.1 and a printing listener.

Run: python examples/eventsource_demo.py   (offline, exits by itself in about a second)
"""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from aiohttp import web

from openai_sse import encode_event
from openai_sse.sse import encode_comment
from openai_sse.transport import (
    EventSource,
    EventSourceListener,
    EventSources,
    Reconnect,
    Request,
)

# -- a small server --------------------------------------------------------------------------


async def events(request: web.Request) -> web.StreamResponse:
    """A normal stream: ids, an event type, multi-line data, a comment, then EOF."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(encode_comment("keep-alive"))
    await response.write(encode_event("hello", id="1"))
    await response.write(encode_event('{"user": "ada"}', event="login", id="2"))
    await response.write(encode_event("line one\nline two"))
    await response.write_eof()
    return response


async def missing(request: web.Request) -> web.Response:
    return web.json_response({"error": {"message": "No such feed", "code": 404}}, status=404)


async def plain(request: web.Request) -> web.Response:
    return web.Response(text="data: not an event stream\n\n")


async def ticks(request: web.Request) -> web.StreamResponse:
    """An endless feed, one event every 50 ms, until the client goes away."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    try:
        for n in range(1000):
            await response.write(encode_event(f"tick {n}"))
            await asyncio.sleep(0.05)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


async def feed(request: web.Request) -> web.StreamResponse:
    """Resumable: honours Last-Event-ID, asks for 100 ms between reconnections, ends with 204."""
    header = request.headers.get("Last-Event-ID")
    last = int(header or "0")
    if last >= 4:
        return web.Response(status=204)  # "do not come back"
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(encode_event(f"Last-Event-ID was {header!r}", retry=100))
    for n in (last + 1, last + 2):
        await response.write(encode_event(f"item {n}", id=str(n)))
    await response.write_eof()
    return response


async def start_server() -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/events", events)
    app.router.add_get("/missing", missing)
    app.router.add_get("/plain", plain)
    app.router.add_get("/ticks", ticks)
    app.router.add_get("/feed", feed)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def closed_port() -> int:
    """A local port nobody listens on, to show a failure before any response."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the listener ------------------------------------------------------------------------------


class PrintingListener(EventSourceListener):
    """Prints every callback. Each method may be a plain ``def`` or an ``async def``."""

    def __init__(self, name: str, cancel_after: int | None = None) -> None:
        self.name = name
        self.cancel_after = cancel_after
        self.events = 0

    def on_open(self, source: EventSource, response: aiohttp.ClientResponse) -> None:
        print(f"  [{self.name}] on_open     {response.status} {response.content_type}")

    async def on_event(
        self, source: EventSource, id: str | None, type: str | None, data: str
    ) -> None:
        # Awaited before the next event is read: a slow listener slows the stream down.
        await asyncio.sleep(0)
        print(f"  [{self.name}] on_event    id={id!r} type={type!r} data={data!r}")
        self.events += 1
        if self.events == self.cancel_after:
            source.cancel()  # no further on_event, even if more bytes are buffered

    def on_closed(self, source: EventSource) -> None:
        print(f"  [{self.name}] on_closed   last_event_id={source.last_event_id!r}")

    async def on_failure(
        self, source: EventSource, error: BaseException, response: aiohttp.ClientResponse | None
    ) -> None:
        status = response.status if response is not None else None
        print(f"  [{self.name}] on_failure  {type(error).__name__}: {error} (response: {status})")
        body = getattr(error, "body", None)
        if body is not None:
            print(f"  [{self.name}]             body: {body}")


# -- the demo ----------------------------------------------------------------------------------


async def main() -> None:
    runner, url = await start_server()
    try:
        async with aiohttp.ClientSession() as session:
            factory = EventSources.create_factory(session, timeout=5.0)

            print("1. A normal stream: on_open, on_event*, on_closed")
            source = factory.new_event_source(Request(f"{url}/events"), PrintingListener("ok"))
            print(f"  returned at once: {source!r}, Accept={source.request.header('Accept')!r}")
            await source.wait()

            print("2. Non-2xx: the body is read into a typed APIStatusError")
            await factory.new_event_source(f"{url}/missing", PrintingListener("404")).wait()

            print("3. 200 with the wrong content type: ProtocolError")
            await factory.new_event_source(f"{url}/plain", PrintingListener("type")).wait()

            print("4. Nothing listening: APIConnectionError, response None")
            bad = f"http://127.0.0.1:{closed_port()}/events"
            await factory.new_event_source(bad, PrintingListener("down")).wait()

            print("5. cancel() from inside on_event")
            listener = PrintingListener("cancel", cancel_after=2)
            await factory.new_event_source(f"{url}/ticks", listener).wait()

            print("6. cancel() from outside, by leaving `async with`")
            async with factory.new_event_source(f"{url}/ticks", PrintingListener("outside")):
                await asyncio.sleep(0.12)

            print("7. Opt-in reconnection (GET only): Last-Event-ID, retry:, stops on 204")
            resuming = EventSources.create_factory(session, reconnect=Reconnect(delay=1.0))
            source = resuming.new_event_source(f"{url}/feed", PrintingListener("feed"))
            await source.wait()
            print(f"  retry={source.retry} ms, ready_state={source.ready_state.name}")
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
