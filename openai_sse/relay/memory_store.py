"""The in-process store: nothing to install, one relay process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from .store import TERMINAL_KINDS, InvalidEventId, StreamEvent

__all__ = ["MemoryStore"]


class _Log:
    __slots__ = ("alive_until", "ended", "events", "expires", "first", "lease_until", "waiters")

    def __init__(self, lease_until: float, expires: float) -> None:
        self.events: list[StreamEvent] = []
        self.first = 1  # sequence number of events[0]
        self.ended = False
        self.lease_until = lease_until
        self.alive_until = 0.0
        self.expires = expires
        # Futures of blocked readers, made only while somebody waits: appends stay cheap.
        self.waiters: list[asyncio.Future[None]] = []


class MemoryStore:
    """Streams in a dict: ids are sequence numbers; ``maxlen`` and ``ttl`` bound memory."""

    def __init__(self, *, ttl: float = 3600.0, maxlen: int = 100_000) -> None:
        self.ttl = ttl
        self.maxlen = maxlen
        self._logs: dict[str, _Log] = {}
        self._stop_handlers: list[Callable[[str], None]] = []

    def _get(self, stream_id: str) -> _Log | None:
        log = self._logs.get(stream_id)
        if log is not None and log.expires < time.monotonic():
            del self._logs[stream_id]
            return None
        return log

    def _sweep(self, now: float) -> None:
        for key in [k for k, log in self._logs.items() if log.expires < now]:
            del self._logs[key]

    async def create(self, stream_id: str, *, lease: float) -> None:
        now = time.monotonic()
        self._sweep(now)
        self._logs[stream_id] = _Log(now + lease, now + self.ttl)

    async def exists(self, stream_id: str) -> bool:
        return self._get(stream_id) is not None

    async def extend(self, stream_id: str, events: Sequence[tuple[str, str]]) -> list[str] | None:
        log = self._get(stream_id)
        if log is None or log.ended:
            return None
        ids = []
        for kind, data in events:
            event_id = str(log.first + len(log.events))
            log.events.append(StreamEvent(event_id, kind, data))
            ids.append(event_id)
            if kind in TERMINAL_KINDS:
                log.ended = True
                break
        excess = len(log.events) - self.maxlen
        if excess > self.maxlen // 10:  # trimmed in batches, so appends stay O(1) amortised
            del log.events[:excess]
            log.first += excess
        log.expires = time.monotonic() + self.ttl
        if log.waiters:
            for waiter in log.waiters:
                if not waiter.done():
                    waiter.set_result(None)
            log.waiters.clear()
        return ids

    async def read(self, stream_id: str, after: str | None, *, timeout: float) -> list[StreamEvent]:
        start = 0
        if after is not None:
            if not after.isdigit():
                raise InvalidEventId(after)
            start = int(after)
        log = self._get(stream_id)
        if log is None:
            return []
        if start > log.first + len(log.events) - 1:
            raise InvalidEventId(after or "")  # an id not issued (yet)
        offset = max(start + 1 - log.first, 0)
        if offset >= len(log.events) and not log.ended:
            if timeout <= 0:
                return []
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            log.waiters.append(waiter)
            timer = loop.call_later(timeout, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                if waiter in log.waiters:
                    log.waiters.remove(waiter)
            offset = max(start + 1 - log.first, 0)
        return log.events[offset:]

    async def renew_lease(self, stream_id: str, lease: float) -> None:
        log = self._get(stream_id)
        if log is not None:
            log.lease_until = max(log.lease_until, time.monotonic() + lease)

    async def wanted(self, stream_id: str) -> bool:
        log = self._get(stream_id)
        return log is not None and not log.ended and log.lease_until > time.monotonic()

    async def heartbeat(self, stream_id: str, ttl: float) -> None:
        log = self._get(stream_id)
        if log is not None:
            log.alive_until = time.monotonic() + ttl

    async def alive(self, stream_id: str) -> bool:
        log = self._get(stream_id)
        return log is not None and log.alive_until > time.monotonic()

    async def request_stop(self, stream_id: str) -> None:
        for handler in list(self._stop_handlers):
            handler(stream_id)

    async def listen_stops(self, on_stop: Callable[[str], None]) -> None:
        self._stop_handlers.append(on_stop)
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            self._stop_handlers.remove(on_stop)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"<MemoryStore streams={len(self._logs)}>"


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
