"""``GET /v1/streams/{id}``: replay what is stored after the client's last id, then follow live."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from ..sse.encoder import encode_comment, encode_event
from .errors import relay_error
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
    events = await store.read(stream_id, after, timeout=0)
    response = web.StreamResponse(headers=SSE_HEADERS)
    await response.prepare(request)
    await response.write(encode_event(retry=RECONNECT_MS))
    try:
        await _follow(
            response,
            store,
            stream_id,
            after,
            events,
            keepalive=keepalive,
            lease=lease,
            owner_timeout=owner_timeout,
        )
    except StoreUnavailable as exc:
        logger.warning("Stream %s: follower ended early: %s", stream_id, exc)
    return response


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
                message = "The relay instance running this generation stopped answering."
                lost = relay_error("lost", "GenerationLost", message)
                await append(store, stream_id, ERROR, lost)
        events = await store.read(stream_id, after, timeout=wait)
