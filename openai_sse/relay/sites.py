"""The relay's listening sockets: every waiting connection accepted at once.

uvloop (libuv 1.45 and later) accepts one connection per turn of its loop. On a relay busy
with a thousand streams a turn takes milliseconds, so a burst of browsers arriving together
waited seconds to be accepted, and each late stream started seconds behind its generation.
This site takes over the accepting: when a listening socket is readable it accepts every
waiting connection, then hands each to the loop as an accepted socket, on any event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from aiohttp import web
from yarl import URL

__all__ = ["AcceptingSite"]

logger = logging.getLogger("openai_sse.relay")


class AcceptingSite(web.BaseSite):
    """An aiohttp site on ``host:port`` that accepts a whole burst per readiness event."""

    __slots__ = ("_host", "_port")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, backlog: int) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port

    @property
    def name(self) -> str:
        return str(URL.build(scheme="http", host=self._host, port=self._port))

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(
            self._host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        sockets: list[socket.socket] = []
        try:
            for family, kind, proto, _, address in dict.fromkeys(infos):
                sock = socket.socket(family, kind, proto)
                sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind((address[0], self._port, *address[2:]))
                self._port = sock.getsockname()[1]  # port 0: the same free port on every address
                sock.listen(self._backlog)
                sock.setblocking(False)
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        server = self._runner.server
        assert server is not None
        self._server = _Listening(loop, sockets, server, self._backlog)


class _Listening(asyncio.AbstractServer):
    """What aiohttp's runner needs of a server: its sockets, and closing them."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sockets: list[socket.socket],
        protocol: Any,
        burst: int,
    ) -> None:
        self._loop = loop
        self._sockets = sockets
        self._protocol = protocol
        self._burst = burst
        self._opening: set[asyncio.Task[Any]] = set()
        for sock in sockets:
            loop.add_reader(sock.fileno(), self._accept, sock)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._sockets)

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(self._burst):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors, say: the next event retries
                logger.warning("Could not accept a connection: %s", exc)
                return
            conn.setblocking(False)
            if conn.family in (socket.AF_INET, socket.AF_INET6):  # SSE events are small writes
                with contextlib.suppress(OSError):  # reset already: opening it will say so
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = self._loop.create_task(self._open(conn))
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)

    async def _open(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._protocol, conn)
        except Exception as exc:  # the client left at once, say
            conn.close()
            logger.debug("Could not open an accepted connection: %s", exc)

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets = []

    async def wait_closed(self) -> None:
        if self._opening:
            await asyncio.wait(set(self._opening))

    def is_serving(self) -> bool:
        return bool(self._sockets)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    async def start_serving(self) -> None:
        return None  # serving since it was made

    async def serve_forever(self) -> None:
        raise NotImplementedError("the runner that made it serves")
