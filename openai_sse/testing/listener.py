"""The mock server's listening socket, with a deadline for each connection's first request.

aiohttp's own ``keepalive_timeout`` closes a connection that idles (or trickles in its next
request) after a response, but only some versions also start it before the first request;
this wrapper closes a connection whose first request headers are not complete in time, on
every version, so a client sending one byte a second cannot hold a connection forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["listen"]

_END_OF_HEADERS = b"\r\n\r\n"


class _HeaderDeadline(asyncio.Protocol):
    """Passes everything to aiohttp's protocol; closes the connection at the deadline unless
    the first request's headers (up to the blank line) have arrived."""

    def __init__(self, inner: asyncio.Protocol, timeout: float) -> None:
        self._inner = inner
        self._timeout = timeout
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._timer = asyncio.get_running_loop().call_later(self._timeout, transport.close)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            seen = self._tail + data
            if _END_OF_HEADERS in seen:
                self._timer.cancel()
                self._timer = None
                self._tail = b""
            else:
                self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


async def listen(
    factory: Callable[[], asyncio.Protocol], host: str, port: int, header_timeout: float
) -> asyncio.Server:
    """Serve ``factory``'s protocol on ``host:port`` with the first-request deadline."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _HeaderDeadline(factory(), header_timeout), host, port)
