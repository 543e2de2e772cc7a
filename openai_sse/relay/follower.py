"""``GET /v1/streams/{id}``: replay what is stored after the client's last id, then follow live."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from ..sse.encoder import encode_comment, encode_event
from .errors import relay_error
from .memory_store import MemoryStore
from .store import CHUNK, ERROR, Store, StoreUnavailable, StreamEvent, append

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
    While the stream is quiet, the follower checks that the generation's instance still
    beats; when it is gone, the follower stores the stream's end, for every follower.
    """
    await store.renew_lease(stream_id, lease)
    options = {"keepalive": keepalive, "lease": lease, "owner_timeout": owner_timeout}
    if isinstance(store, MemoryStore):
        store.frames_after(stream_id, after)  # raises for an id never issued
        response = await _start(request, chunked=request.version >= (1, 1))
        following = _follow_memory(request, response, store, stream_id, after, **options)
    else:
        events = await store.read(stream_id, after, timeout=0)
        response = await _start(request)
        following = _follow(response, store, stream_id, after, events, **options)
    try:
        await following
    except StoreUnavailable as exc:
        logger.warning("Stream %s: follower ended early: %s", stream_id, exc)
    except ConnectionResetError:
        pass  # the client left just as an event was sent: nothing is lost, it can resume
    return response


async def _start(request: web.Request, *, chunked: bool = False) -> web.StreamResponse:
    """Send the headers and the reconnection delay. ``chunked``: say so explicitly, as the
    memory store's followers write HTTP chunks themselves (aiohttp chooses the same framing
    on its own for HTTP/1.1, and none for HTTP/1.0)."""
    response = web.StreamResponse(headers=SSE_HEADERS)
    if chunked:
        response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(encode_event(retry=RECONNECT_MS))
    return response


async def _follow_memory(
    request: web.Request,
    response: web.StreamResponse,
    store: MemoryStore,
    stream_id: str,
    after: str | None,
    *,
    keepalive: float,
    lease: float,
    owner_timeout: float,
) -> None:
    """:func:`_follow` for the in-process store: ready-made frames, no await to read them.

    While the client keeps up, the follower subscribes to the stream: the store hands each
    new frame to it as it is stored, and it goes straight to the socket as an HTTP chunk,
    without waking this task. The terminal event, a socket that falls behind (more than
    ``_HIGH_WATER`` bytes unsent) or a client that left unsubscribe it, and the follower
    reads from the store again, awaiting every write. One timer per follower paces the
    keep-alive, the lease and the owner check, rescheduled only when it fires.
    """
    loop = asyncio.get_running_loop()
    period = min(keepalive, lease / 3, owner_timeout / 2)
    transport = request.transport
    push = transport is not None and response.chunked
    waiter: asyncio.Future[None] | None = None
    subscribed = sent = False

    def tick() -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def sink(frame: bytes, event_id: str, terminal: bool) -> bool:
        nonlocal after, sent, subscribed
        if terminal or not _keeps_up(transport):
            subscribed = False
            tick()
            return False
        assert transport is not None
        try:
            transport.write(b"%x\r\n%s\r\n" % (len(frame), frame))  # one HTTP/1.1 chunk
        except Exception:  # never the generation's problem: the follower finds out itself
            subscribed = False
            tick()
            return False
        after = event_id
        sent = True
        return True

    last_write = loop.time()
    due = last_write + period
    timer = loop.call_at(due, tick)
    try:
        while True:
            frames, after, ended = store.frames_after(stream_id, after)
            if frames or ended:  # ended without frames: the stream expired under us
                if frames:
                    await response.write(b"".join(frames))
                    sent = True
                if ended:
                    await response.write_eof()
                    return
                continue  # look again: more may have come while writing
            now = loop.time()
            if now >= due:
                if sent:
                    last_write = now
                elif now - last_write >= keepalive:
                    await response.write(encode_comment())
                    last_write = now
                await store.renew_lease(stream_id, lease)
                if not sent and not await store.alive(stream_id):
                    await append(store, stream_id, ERROR, _lost())
                sent = False
                due = now + period
                timer = loop.call_at(due, tick)
                continue
            # Nothing was awaited since the store was read: no event can slip in between.
            waiter = loop.create_future()
            if push and not subscribed and _keeps_up(transport):
                subscribed = store.subscribe(stream_id, sink)
            if not subscribed:
                store.add_waiter(stream_id, waiter)
            try:
                await waiter
            finally:
                store.forget_waiter(stream_id, waiter)
                waiter = None
    finally:
        timer.cancel()
        if subscribed:
            store.unsubscribe(stream_id, sink)


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


async def _follow(
    response: web.StreamResponse,
    store: Store,
    stream_id: str,
    after: str | None,
    events: list[StreamEvent],
    *,
    keepalive: float,
    lease: float,
    owner_timeout: float,
) -> None:
    renew_every = min(lease / 3, owner_timeout / 2)
    wait = min(keepalive, renew_every)
    renewed = last_write = time.monotonic()
    while True:
        if events:
            parts = []
            for event in events:
                kind = None if event.kind == CHUNK else event.kind
                parts.append(encode_event(event.data, event=kind, id=event.id))
                if event.terminal:
                    await response.write(b"".join(parts))
                    await response.write_eof()
                    return
            after = events[-1].id
            await response.write(b"".join(parts))
            last_write = time.monotonic()
        now = time.monotonic()
        if now - last_write >= keepalive:
            await response.write(encode_comment())
            last_write = now
        if now - renewed >= renew_every:
            await store.renew_lease(stream_id, lease)
            renewed = now
            if not events and not await store.alive(stream_id):
                await append(store, stream_id, ERROR, _lost())
        events = await store.read(stream_id, after, timeout=wait)
