"""``GET /v1/streams/{id}``: replay what is stored after the client's last id, then follow live."""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Literal

from aiohttp import web

from ..sse.encoder import encode_comment, encode_event
from .errors import relay_error
from .store import (
    ERROR,
    FrameSink,
    LocalStore,
    Store,
    StoreUnavailable,
    StreamEvent,
    append,
    event_frame,
    local_store,
)

__all__ = ["SSE_HEADERS", "follow"]

logger = logging.getLogger("openai_sse.relay")

# Browsers reconnect this soon (ms) after the relay ends a stream early, say on a store fault.
RECONNECT_MS = 1000

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    # no-transform keeps proxies (and CDNs) from compressing or buffering the stream
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}


async def follow(
    request: web.Request,
    store: Store,
    stream_id: str,
    after: str | None,
    *,
    keepalive: float,
    lease: float,
    owner_timeout: float,
) -> web.StreamResponse:
    """Send every event after ``after`` until the terminal one; keep the lease alive meanwhile.

    The first read happens before the response starts, so an id the store never issued is
    still a clean 400 rather than a broken stream. Should the store fail later, the
    response simply ends: ``EventSource`` reconnects with ``Last-Event-ID`` by itself.
    """
    await store.renew_lease(stream_id, lease)
    follower: _Follower
    local = local_store(store)
    if local is not None:
        local.frames_after(stream_id, after)  # raises for an id never issued
        response = await _start(request, chunked=request.version >= (1, 1))
        follower = _Subscribed(request, response, local, stream_id, after)
    else:
        events = await store.read(stream_id, after, timeout=0)
        response = await _start(request)
        follower = _Polling(response, store, stream_id, after, events)
    try:
        await follower.run(keepalive=keepalive, lease=lease, owner_timeout=owner_timeout)
    except StoreUnavailable as exc:
        logger.warning("Stream %s: follower ended early: %s", stream_id, exc)
    except ConnectionResetError:
        pass  # the client left just as an event was sent: nothing is lost, it can resume
    return response


async def _start(request: web.Request, *, chunked: bool = False) -> web.StreamResponse:
    """Send the headers and the reconnection delay. ``chunked``: say so explicitly, as
    subscribed followers write HTTP chunks themselves (aiohttp chooses the same framing on
    its own for HTTP/1.1, and none for HTTP/1.0)."""
    response = web.StreamResponse(headers=SSE_HEADERS)
    if chunked:
        response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(encode_event(retry=RECONNECT_MS))
    return response


class _Follower:
    """One client's follower: what every follower does, whatever the store.

    :meth:`run` writes the events as they arrive, and a keep-alive comment whenever the
    client has heard nothing for ``keepalive`` seconds. Every ``period`` seconds it renews
    the listening lease and, after a period without events, checks that the generation's
    instance still beats: when it is gone, the follower stores the stream's end, for every
    follower. Subclasses differ only in how events arrive (:meth:`arrived`).
    """

    __slots__ = ("after", "loop", "response", "sent", "store", "stream_id", "written")

    def __init__(
        self, response: web.StreamResponse, store: Store, stream_id: str, after: str | None
    ) -> None:
        self.response = response
        self.store = store
        self.stream_id = stream_id
        self.after = after  # the id of the last event the client got
        self.sent = False  # whether an event went to the client since the last check
        self.loop = asyncio.get_running_loop()
        self.written = 0.0  # loop time of the last write to the client

    async def run(self, *, keepalive: float, lease: float, owner_timeout: float) -> None:
        loop, store, stream_id = self.loop, self.store, self.stream_id
        period = min(lease / 3, owner_timeout / 2)
        checked = self.written = loop.time()  # the response's headers just went out
        try:
            while True:
                # Wake for the next check, or when the client will have heard nothing for
                # ``keepalive`` seconds, whichever comes first.
                frames, ended = await self.arrived(min(checked + period, self.written + keepalive))
                if frames:
                    await self.response.write(frames)
                    self.sent = True
                    self.written = loop.time()
                if ended:
                    await self.response.write_eof()
                    return
                now = loop.time()
                if now >= self.written + keepalive:
                    await self.response.write(encode_comment())
                    self.written = now
                if now < checked + period:
                    continue
                await store.renew_lease(stream_id, lease)
                if not self.sent and not await store.alive(stream_id):
                    await append(store, stream_id, ERROR, _lost())
                self.sent = False
                checked = now
        finally:
            self.close()

    async def arrived(self, deadline: float) -> tuple[bytes, bool]:
        """The frames of the events that came by ``deadline`` (loop time) for the loop to
        write (none at the deadline), and whether the stream ended."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what :meth:`arrived` holds."""


class _Polling(_Follower):
    """Any store: awaited reads that block until an event or the deadline; each event is
    framed here."""

    __slots__ = ("events",)

    def __init__(
        self,
        response: web.StreamResponse,
        store: Store,
        stream_id: str,
        after: str | None,
        events: list[StreamEvent],
    ) -> None:
        super().__init__(response, store, stream_id, after)
        self.events = events  # read before the response started

    async def arrived(self, deadline: float) -> tuple[bytes, bool]:
        events, self.events = self.events, []
        if not events:
            timeout = deadline - self.loop.time()
            if timeout > 0:
                events = await self.store.read(self.stream_id, self.after, timeout=timeout)
            if not events:
                return b"", False
        frames = []
        for event in events:
            frames.append(event_frame(event.id, event.kind, event.data))
            if event.terminal:
                return b"".join(frames), True
        self.after = events[-1].id
        return b"".join(frames), False


class _Subscribed(_Follower):
    """A :class:`~.store.LocalStore`: ready-made frames, no await to read them.

    While the client keeps up, the follower subscribes a sink that takes each frame as it
    is stored, without waking this task; the frames taken during one turn of the loop go
    to the socket together, as one HTTP chunk, when the turn's callbacks have run
    (:class:`_Outbox`). The terminal event, a socket that falls behind (more than
    ``_HIGH_WATER`` bytes unsent) or a client that left drop it, and the task reads the
    frames and awaits their write; until the client keeps up again (or over HTTP/1.0,
    without chunks), its sink only wakes the task. One timer wakes it at each deadline.
    """

    __slots__ = (
        "local",
        "outbox",
        "outgoing",
        "sent_after",
        "sink",
        "timer",
        "timer_due",
        "transport",
        "waiter",
    )

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        store: LocalStore,
        stream_id: str,
        after: str | None,
    ) -> None:
        super().__init__(response, store, stream_id, after)
        self.local = store
        self.transport = request.transport if response.chunked else None
        self.waiter: asyncio.Future[None] | None = None
        self.sink: FrameSink | None = None  # the one subscribed, if any
        self.timer: asyncio.TimerHandle | None = None
        self.timer_due = 0.0
        self.outbox = _Outbox.of(self.loop)
        self.outgoing: list[bytes] = []  # frames taken this turn, written at its end
        self.sent_after = after  # the id of the last event written to the socket

    async def arrived(self, deadline: float) -> tuple[bytes, bool]:
        frames, self.after, ended = self.local.frames_after(self.stream_id, self.after)
        if frames or ended:  # ended without frames: the stream expired under us
            self.sent_after = self.after
            return b"".join(frames), ended
        loop = self.loop
        if loop.time() >= deadline:
            return b"", False
        if self.timer is None or self.timer_due != deadline:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = loop.call_at(deadline, self._tick)
            self.timer_due = deadline
        # Nothing was awaited since the store was read: no event can slip in between.
        if self.sink is None:
            sink = self._push if _keeps_up(self.transport) else self._drop
            if not self.local.subscribe(self.stream_id, sink):
                return b"", False  # gone or ended since: the next read says which
            self.sink = sink
        self.waiter = loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None
        return b"", False

    def _push(self, frame: bytes, event_id: str, terminal: bool) -> bool:
        if terminal or not _keeps_up(self.transport):
            return self._drop(frame, event_id, terminal)
        if not self.outgoing:
            self.outbox.add(self)
        self.outgoing.append(frame)
        self.after = event_id
        return True

    def flush(self) -> None:
        """Write the frames taken this turn as one HTTP chunk. Should that fail, the task
        reads them again from the store and finds out why when it writes them itself."""
        frames = self.outgoing
        if not frames:
            return
        self.outgoing = []
        data = b"".join(frames)  # one frame: the same object, no copy
        transport = self.transport
        if transport is not None and not transport.is_closing():
            try:
                transport.write(b"%x\r\n%s\r\n" % (len(data), data))
            except Exception:  # never the loop's problem (the client left, say)
                pass
            else:
                self.sent_after = self.after
                self.sent = True
                self.written = self.loop.time()
                return
        self.after = self.sent_after
        if self.sink is not None:
            self.local.unsubscribe(self.stream_id, self.sink)
            self.sink = None
        self._wake()

    def _drop(self, frame: bytes, event_id: str, terminal: bool) -> Literal[False]:
        """A sink that takes no frame: it wakes the task, which reads them itself, after the
        frames taken this turn (written first, so that they stay in order)."""
        self.flush()
        self.sink = None
        self._wake()
        return False

    def _tick(self) -> None:
        # Fired: armed again if the deadline has not come by the loop's clock (uvloop runs
        # timers up to a millisecond early by its own).
        self.timer = None
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def close(self) -> None:
        self.outgoing = []  # the response is over: nothing more goes to this socket
        if self.timer is not None:
            self.timer.cancel()
        if self.sink is not None:
            self.local.unsubscribe(self.stream_id, self.sink)
            self.sink = None


class _Outbox:
    """The followers of one loop that took frames during its current turn; one callback,
    scheduled by the first of them, has each write its frames once the turn is over.

    Written as they were stored, in the middle of the generations' reads, the frames cost
    the relay 37 to 40 µs of CPU per chunk at 500 streams on uvloop; written together at
    the turn's end, 30 to 34, with the same system calls. When the relay falls behind, a
    read brings several chunks of a stream, and they go out in one write.
    """

    __slots__ = ("followers", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.followers: list[_Subscribed] = []

    @staticmethod
    def of(loop: asyncio.AbstractEventLoop) -> _Outbox:
        """The loop's outbox."""
        outbox = _OUTBOXES.get(loop)
        if outbox is None:
            outbox = _OUTBOXES[loop] = _Outbox(loop)
        return outbox

    def add(self, follower: _Subscribed) -> None:
        if not self.followers:
            self.loop.call_soon(self.flush)
        self.followers.append(follower)

    def flush(self) -> None:
        followers, self.followers = self.followers, []
        for follower in followers:
            follower.flush()


_OUTBOXES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Outbox] = (
    weakref.WeakKeyDictionary()
)


def _keeps_up(transport: asyncio.Transport | None) -> bool:
    """Whether the client is there and reads about as fast as events come."""
    return (
        transport is not None
        and not transport.is_closing()
        and transport.get_write_buffer_size() <= _HIGH_WATER
    )


# Bytes unsent to a client beyond which its follower stops taking frames as they are stored
# and writes at the pace the client reads (asyncio pauses writers at 64 KiB by default).
_HIGH_WATER = 64 * 1024


def _lost() -> str:
    message = "The relay instance running this generation stopped answering."
    return relay_error("lost", "GenerationLost", message)
