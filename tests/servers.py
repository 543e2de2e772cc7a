"""A real aiohttp server on 127.0.0.1 for streaming tests, with handlers chosen per test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from openai_sse import Client

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LocalServer:
    """Routes given by the test; records requests; makes client disconnects awaitable.

    ``handler_cancellation`` makes aiohttp cancel a handler when its client goes away, so
    ``disconnected`` is set the moment the server notices, with no polling.
    """

    def __init__(
        self, routes: dict[str, Handler] | None = None, *, host: str = "127.0.0.1"
    ) -> None:
        self.host = host  # another loopback address (127.0.0.2) is "another host"
        self.app = web.Application()
        self.requests: list[web.Request] = []
        self.bodies: list[Any] = []
        self.disconnected = asyncio.Event()
        self.disconnects = 0
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._routes: dict[str, Handler] = dict(routes or {})
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)

    def route(self, path: str, handler: Handler) -> None:
        """Serve ``path`` with ``handler``; may be called after the server started."""
        self._routes[path] = handler

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        handler = self._routes.get(request.path)
        if handler is None:
            raise web.HTTPNotFound()
        self.requests.append(request)
        self.bodies.append(await request.read())
        try:
            return await handler(request)
        except asyncio.CancelledError:
            self.disconnects += 1
            self.disconnected.set()
            raise

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def client(self) -> Client:
        """A client of this server's ``/v1`` API that does not retry."""
        from openai_sse import Client

        return Client("sk-test", base_url=self.url("/v1"), max_retries=0)

    async def __aenter__(self) -> LocalServer:
        self._runner = web.AppRunner(self.app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


async def sse_response(
    request: web.Request,
    *chunks: bytes,
    content_type: str = "text/event-stream",
    status: int = 200,
) -> web.StreamResponse:
    """Send ``chunks`` as separate writes of a streamed body, then end it cleanly."""
    response = web.StreamResponse(status=status, headers={"Content-Type": content_type})
    await response.prepare(request)
    for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


def hang() -> Awaitable[None]:
    """A future nobody completes: the handler waits until the client goes away."""
    return asyncio.get_running_loop().create_future()


def hanging(arrived: asyncio.Event) -> Handler:
    """A handler that sets ``arrived`` and never answers: only the client going away ends it."""

    async def handler(request: web.Request) -> web.StreamResponse:
        arrived.set()
        await hang()
        raise AssertionError("unreachable")

    return handler


def stalling_after(*chunks: bytes) -> Handler:
    """A handler that opens an event stream, writes ``chunks``, then waits for the client to go."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
        await hang()
        return response

    return handler


async def read_partial(resp: aiohttp.ClientResponse) -> tuple[bytes, BaseException | None]:
    """Everything that arrived before the body broke off, and how it broke."""
    received: list[bytes] = []
    try:
        async for piece in resp.content.iter_any():
            received.append(piece)
    except aiohttp.ClientError as exc:
        return b"".join(received), exc
    return b"".join(received), None
