"""One generation run by this relay instance: the SDK stream, its store writer, its watchdog."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from .._payload import raw_of
from ..client import Client
from ..errors import StreamCancelled
from .apis import Api, RunningStream
from .errors import Redactor, error_event
from .store import CHUNK, DONE, ERROR, Store, StoreUnavailable, local_store

__all__ = ["Generation", "StoreWriter"]

logger = logging.getLogger("openai_sse.relay")


class StoreWriter:
    """A listener that writes every chunk (chat) or event (responses) to the store, in order.

    Chunks are queued and written by one task per generation, in batches: while one write
    travels to the store, the next chunks gather, so a store round trip never paces the
    upstream (one write per chunk would hold each chunk back by that round trip). The end
    (``done`` or ``error``) is awaited until it is stored. A store that fails mid-stream fails
    the stream too (``raise_errors``): a generation nobody can read should stop paying for
    tokens. A :class:`~.store.LocalStore` (the in-process store) has no round trip: it is
    written at once, from the hook, and gets each chunk's JSON as the bytes it arrived as.
    """

    raise_errors = True

    def __init__(self, store: Store, stream_id: str, redact: Redactor) -> None:
        self.store = store
        self.stream_id = stream_id
        self.redact = redact
        self.stop_reason: str | None = None
        self._pending: list[tuple[str, str]] = []
        self._wake: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._error: StoreUnavailable | None = None
        self._local = local_store(store)

    def on_chunk(self, stream: object, chunk: Any) -> None:
        local = self._local
        if local is None:
            self._put(CHUNK, chunk.to_json())
            return
        raw = raw_of(chunk)  # valid UTF-8 when bytes; the store frames line breaks in it
        data = raw if isinstance(raw, bytes) else chunk.to_json()
        local.extend_now(self.stream_id, ((CHUNK, data),))

    on_event = on_chunk  # a Responses event: the same

    async def on_closed(self, stream: object, final: Any) -> None:
        await self._end(DONE, final.to_json())

    async def on_failure(self, stream: object, error: BaseException) -> None:
        if isinstance(error, StreamCancelled) and self.stop_reason:
            error = StreamCancelled(self.stop_reason)
        await self._end(ERROR, json.dumps(error_event(error, self.redact)))

    async def close(self) -> None:
        """Stop the writing task (after the end was written, it has stopped already)."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _put(self, kind: str, data: str) -> None:
        if self._error is not None:
            raise self._error
        self._pending.append((kind, data))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._write())
        elif self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self.store.extend(self.stream_id, batch)
                except StoreUnavailable as exc:
                    self._error = exc
                    return
                if batch[-1][0] != CHUNK:
                    return
            self._wake = loop.create_future()
            try:
                await self._wake
            finally:
                self._wake = None

    async def _end(self, kind: str, data: str) -> None:
        if self._local is not None:
            self._local.extend_now(self.stream_id, ((kind, data),))
            return
        task = self._task
        if task is not None and not task.done() and self._error is None:
            self._put(kind, data)
            await asyncio.wait((task,))
            error = self._error
        else:
            try:
                await self.store.extend(self.stream_id, ((kind, data),))
                error = None
            except StoreUnavailable as exc:
                error = exc
        if error is not None:
            logger.warning("Stream %s: could not store its end: %s", self.stream_id, error)


class Generation:
    """Runs one stream to its end, stopping it on request or when nobody listens any more."""

    def __init__(
        self,
        client: Client,
        api: Api,
        body: dict[str, Any],
        store: Store,
        stream_id: str,
        *,
        grace: float,
        owner_timeout: float,
        redact: Redactor,
    ) -> None:
        self.stream_id = stream_id
        self.store = store
        self.grace = grace
        self.owner_timeout = owner_timeout
        self.writer = StoreWriter(store, stream_id, redact)
        self._stream: RunningStream | None = None
        self._client = client
        self._api = api
        self._body = body

    def stop(self, reason: str) -> None:
        """Cancel the upstream request now; followers get ``event: error`` ``cancelled``."""
        if self.writer.stop_reason is None:
            self.writer.stop_reason = reason
        if self._stream is not None and not self._stream.done:
            # Once the outcome is decided, the stream's end is being stored: cancelling now
            # would only cut that short (store calls have their own time limit).
            self._stream.cancel()

    async def run(self) -> None:
        try:
            self._stream = self._api.start(self._client, self._body, [self.writer])
        except Exception as exc:  # a request the SDK refuses before sending anything
            await self.writer.on_failure(None, exc)
            return
        if self.writer.stop_reason is not None:
            self._stream.cancel()
        watchdog = asyncio.create_task(self._watch())
        try:
            with contextlib.suppress(Exception):
                await self._stream  # the outcome reached the store through the writer
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            await self.writer.close()

    async def _watch(self) -> None:
        """Keep the heartbeat fresh; stop once the lease lapsed or the stream ended.

        The lease lapses when nobody listened for ``grace`` seconds; the stream ends early
        when a stop was stored by another instance.
        """
        interval = min(max(self.grace / 4, 0.02), 2.0, self.owner_timeout / 4)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.store.heartbeat(self.stream_id, self.owner_timeout)
                wanted = await self.store.wanted(self.stream_id)
            except StoreUnavailable as exc:
                logger.warning("Stream %s: store check failed: %s", self.stream_id, exc)
                continue
            if not wanted:
                self.stop(f"Stopped: nobody listened for {self.grace:g} s.")
                return
