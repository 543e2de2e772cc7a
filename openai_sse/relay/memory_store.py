"""The in-process store: nothing to install, one relay process.

Everything here is synchronous underneath, so the relay skips the awaits on its hot path:
the generation's writer calls :meth:`MemoryStore.extend_now` from the chunk hook, and each
follower takes ready-made SSE frames with :meth:`MemoryStore.frames_after` when woken.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from ..sse.encoder import encode_event
from .store import CHUNK, TERMINAL_KINDS, InvalidEventId, StreamEvent

__all__ = ["MemoryStore"]

# kind, data (JSON text, or its UTF-8 bytes as the upstream sent them), the event's SSE frame
_Entry = tuple[str, "str | bytes", bytes]
# Called with each new event's frame, its id and whether it ends the stream; False: drop me.
Sink = Callable[[bytes, str, bool], bool]


class _Log:
    __slots__ = (
        "alive_until",
        "ended",
        "entries",
        "expires",
        "first",
        "lease_until",
        "sinks",
        "waiters",
    )

    def __init__(self, lease_until: float, expires: float) -> None:
        self.entries: list[_Entry] = []
        self.first = 1  # sequence number of entries[0]
        self.ended = False
        self.lease_until = lease_until
        self.alive_until = 0.0
        self.expires = expires
        # Futures of blocked readers, made only while somebody waits: appends stay cheap.
        self.waiters: list[asyncio.Future[None]] = []
        self.sinks: list[Sink] = []

    def offset(self, after: str | None) -> int:
        """Index in ``entries`` of the first event after id ``after``."""
        if after is None:
            return 0
        if not after.isdigit():
            raise InvalidEventId(after)
        start = int(after)
        if start > self.first + len(self.entries) - 1:
            raise InvalidEventId(after)  # an id not issued (yet)
        return max(start + 1 - self.first, 0)


class MemoryStore:
    """Streams in a dict: ids are sequence numbers; ``maxlen`` and ``ttl`` bound memory.

    Each event's SSE frame is encoded once, when it is stored, so every follower of a
    stream sends the same bytes without encoding anything.
    """

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
        return self.extend_now(stream_id, events)

    def extend_now(
        self, stream_id: str, events: Sequence[tuple[str, str | bytes]]
    ) -> list[str] | None:
        """:meth:`extend` without an await; ``data`` may also be JSON as UTF-8 bytes."""
        log = self._get(stream_id)
        if log is None or log.ended:
            return None
        ids = []
        entries = log.entries
        for kind, data in events:
            event_id = str(log.first + len(entries))
            frame = _frame(event_id, kind, data)
            entries.append((kind, data, frame))
            ids.append(event_id)
            terminal = kind in TERMINAL_KINDS
            if log.sinks:
                log.sinks = [sink for sink in log.sinks if sink(frame, event_id, terminal)]
            if terminal:
                log.ended = True
                break
        excess = len(entries) - self.maxlen
        if excess > self.maxlen // 10:  # trimmed in batches, so appends stay O(1) amortised
            del entries[:excess]
            log.first += excess
        log.expires = time.monotonic() + self.ttl
        if log.waiters:
            for waiter in log.waiters:
                if not waiter.done():
                    waiter.set_result(None)
            log.waiters.clear()
        return ids

    async def read(self, stream_id: str, after: str | None, *, timeout: float) -> list[StreamEvent]:
        if after is not None and not after.isdigit():
            raise InvalidEventId(after)
        log = self._get(stream_id)
        if log is None:
            return []
        offset = log.offset(after)
        if offset >= len(log.entries) and not log.ended:
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
                self.forget_waiter(stream_id, waiter)
            offset = log.offset(after)
        first = log.first + offset
        return [
            StreamEvent(str(first + i), kind, data if isinstance(data, str) else data.decode())
            for i, (kind, data, _) in enumerate(log.entries[offset:])
        ]

    def frames_after(
        self, stream_id: str, after: str | None
    ) -> tuple[list[bytes], str | None, bool]:
        """The SSE frames of the events after id ``after``, the last id, whether it ended.

        Raises :class:`InvalidEventId` as ``read(..., timeout=0)`` does. A stream that is
        gone (expired) reads as ended with nothing more.
        """
        log = self._get(stream_id)
        if log is None:
            return [], after, True
        offset = log.offset(after)
        entries = log.entries
        if offset >= len(entries):
            return [], after, log.ended
        last = str(log.first + len(entries) - 1)
        return [entry[2] for entry in entries[offset:]], last, log.ended

    def subscribe(self, stream_id: str, sink: Sink) -> bool:
        """Call ``sink`` from :meth:`extend_now` with every event stored from now on, until
        it returns False; False if the stream is gone or ended."""
        log = self._get(stream_id)
        if log is None or log.ended:
            return False
        log.sinks.append(sink)
        return True

    def unsubscribe(self, stream_id: str, sink: Sink) -> None:
        log = self._logs.get(stream_id)
        if log is not None and sink in log.sinks:
            log.sinks.remove(sink)

    def add_waiter(self, stream_id: str, waiter: asyncio.Future[None]) -> None:
        """Resolve ``waiter`` at the next event stored (at once if the stream is gone)."""
        log = self._get(stream_id)
        if log is None:
            _wake(waiter)
        else:
            log.waiters.append(waiter)

    def forget_waiter(self, stream_id: str, waiter: asyncio.Future[None]) -> None:
        """Drop a waiter that was resolved some other way (a timer)."""
        log = self._logs.get(stream_id)
        if log is not None and waiter in log.waiters:
            log.waiters.remove(waiter)

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


def _frame(event_id: str, kind: str, data: str | bytes) -> bytes:
    """The event as the follower sends it; a chunk's one-line JSON bytes are framed as is."""
    if isinstance(data, bytes):
        if kind == CHUNK and b"\n" not in data and b"\r" not in data:
            return b"id: %s\ndata: %s\n\n" % (event_id.encode(), data)
        data = data.decode()
    return encode_event(data, event=None if kind == CHUNK else kind, id=event_id)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
