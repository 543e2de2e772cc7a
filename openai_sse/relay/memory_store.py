"""The in-process store: nothing to install, one relay process.

Everything here is synchronous underneath, so it offers :class:`~.store.LocalStore`: the
relay stores chunks without an await and followers take ready-made SSE frames, pushed to
them as they are stored.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Callable, Sequence

from ..sse import SSEDecoder
from .store import CHUNK, TERMINAL_KINDS, FrameSink, InvalidEventId, StreamEvent, event_frame

__all__ = ["MemoryStore"]


class _Log:
    """One stream's events, kept as their SSE frames end to end in one buffer.

    A buffer and an array of offsets are two objects the garbage collector does not look
    into, however long the answer: a list of frames would have every full collection visit
    each frame of every open stream, a pause that grows with the relay's load.
    """

    __slots__ = (
        "alive_until",
        "ended",
        "ends",
        "expires",
        "first",
        "frames",
        "lease_until",
        "sinks",
    )

    def __init__(self, lease_until: float, expires: float) -> None:
        self.frames = bytearray()
        self.ends = array("Q")  # ends[i]: where the frame of event ``first + i`` ends
        self.first = 1  # sequence number of the first event kept
        self.ended = False
        self.lease_until = lease_until
        self.alive_until = 0.0
        self.expires = expires
        self.sinks: list[FrameSink] = []  # followers, and readers blocked in read()

    def offset(self, after: str | None) -> int:
        """Index in ``ends`` of the first event after id ``after``."""
        if after is None:
            return 0
        if not after.isdigit():
            raise InvalidEventId(after)
        start = int(after)
        if start > self.first + len(self.ends) - 1:
            raise InvalidEventId(after)  # an id not issued (yet)
        return max(start + 1 - self.first, 0)

    def frames_from(self, offset: int) -> bytes:
        """The frames of the events from index ``offset`` on, end to end."""
        start = self.ends[offset - 1] if offset else 0
        with memoryview(self.frames) as view:
            return view[start:].tobytes()

    def trim(self, count: int) -> None:
        """Forget the ``count`` oldest events."""
        cut = self.ends[count - 1]
        del self.frames[:cut]
        self.ends = array("Q", [end - cut for end in self.ends[count:]])
        self.first += count


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
        log = self._get(stream_id)
        if log is None or log.ended:
            return None
        ids = []
        for kind, data in events:
            event_id = str(log.first + len(log.ends))
            frame = event_frame(event_id, kind, data)
            frames = log.frames
            frames += frame
            log.ends.append(len(frames))
            ids.append(event_id)
            terminal = kind in TERMINAL_KINDS
            if log.sinks:
                log.sinks = [sink for sink in log.sinks if sink(frame, event_id, terminal)]
            if terminal:
                log.ended = True
                break
        excess = len(log.ends) - self.maxlen
        if excess > self.maxlen // 10:  # trimmed in batches, so appends stay O(1) amortised
            log.trim(excess)
        log.expires = time.monotonic() + self.ttl
        return ids

    async def read(self, stream_id: str, after: str | None, *, timeout: float) -> list[StreamEvent]:
        if after is not None and not after.isdigit():
            raise InvalidEventId(after)
        log = self._get(stream_id)
        if log is None:
            return []
        offset = log.offset(after)
        if offset >= len(log.ends) and not log.ended:
            if timeout <= 0:
                return []
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()

            def wake(frame: bytes, event_id: str, terminal: bool) -> bool:
                _wake(waiter)
                return False

            log.sinks.append(wake)
            timer = loop.call_later(timeout, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self.unsubscribe(stream_id, wake)
            offset = log.offset(after)
        if offset >= len(log.ends):
            return []
        # Read back from the frames, the only copy kept: this is the generic path, which the
        # relay itself does not take with this store.
        return [
            StreamEvent(event.id or "", event.type or CHUNK, event.data)
            for event in SSEDecoder().feed(log.frames_from(offset))
        ]

    def frames_after(
        self, stream_id: str, after: str | None
    ) -> tuple[list[bytes], str | None, bool]:
        log = self._get(stream_id)
        if log is None:
            return [], after, True
        offset = log.offset(after)
        count = len(log.ends)
        if offset >= count:
            return [], after, log.ended
        return [log.frames_from(offset)], str(log.first + count - 1), log.ended

    def subscribe(self, stream_id: str, sink: FrameSink) -> bool:
        log = self._get(stream_id)
        if log is None or log.ended:
            return False
        log.sinks.append(sink)
        return True

    def unsubscribe(self, stream_id: str, sink: FrameSink) -> None:
        log = self._logs.get(stream_id)
        if log is not None and sink in log.sinks:
            log.sinks.remove(sink)

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
