"""The relay's site accepts a whole burst of connections at once, on any loop.

uvloop accepts one connection per loop turn; a relay busy with many streams then kept a
burst of new browsers waiting for seconds. These tests pin the burst down: every
connection waiting in the listen queue is taken by one readiness event.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from openai_sse.relay import Relay
from openai_sse.relay.sites import AcceptingSite

BURST = 50


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


@contextlib.asynccontextmanager
async def _serving(host: str, backlog: int) -> AsyncIterator[Any]:
    """A started site of a one-route app; its listening sockets' owner (closed after)."""
    app = web.Application()
    app.router.add_get("/", _hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = AcceptingSite(runner, host, 0, backlog=backlog)
    try:
        await site.start()
        yield site._server
    finally:
        await runner.cleanup()


async def test_one_readiness_event_accepts_every_waiting_connection() -> None:
    async with _serving("127.0.0.1", backlog=128) as listening:
        (sock,) = listening.sockets
        port = sock.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(BURST)]
        try:
            # The kernel completed every handshake; nothing was accepted yet: the loop
            # has not run. One call, as for one readiness event, takes them all.
            listening._accept(sock)
            assert len(listening._opening) == BURST
            loop = asyncio.get_running_loop()
            replies = await asyncio.gather(*(_get(loop, client) for client in clients))
            assert all(reply.startswith(b"HTTP/1.1 200") for reply in replies)
        finally:
            for client in clients:
                client.close()
    with pytest.raises(OSError):  # closed with the runner: nothing listens any more
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


async def _get(loop: asyncio.AbstractEventLoop, client: socket.socket) -> bytes:
    client.setblocking(False)
    await loop.sock_sendall(client, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    reply = b""
    while chunk := await loop.sock_recv(client, 4096):
        reply += chunk
    return reply


async def test_every_address_of_a_name_on_one_free_port() -> None:
    async with _serving("localhost", backlog=16) as listening:
        ports = {sock.getsockname()[1] for sock in listening.sockets}
        assert len(ports) == 1 and 0 not in ports
        (port,) = ports
        for family in {sock.family for sock in listening.sockets}:
            host = "127.0.0.1" if family == socket.AF_INET else "[::1]"
            async with aiohttp.ClientSession() as http, http.get(f"http://{host}:{port}/") as reply:
                assert await reply.text() == "hello"


async def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        relay = Relay(upstream="http://127.0.0.1:9/v1")
        with pytest.raises(OSError):
            await relay.start("127.0.0.1", port)
        await relay.close()
