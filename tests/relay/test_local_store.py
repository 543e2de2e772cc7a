"""The relay's fast path belongs to a capability, ``LocalStore``, not to one store class.

Two stores of a third party, built on the memory store by explicit delegation: one offers
only the ``Store`` protocol and gets batched writes and awaited reads; the other offers
``LocalStore`` too and gets chunks stored from the chunk hook and frames pushed to its
followers. Both must relay the same stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

from openai_sse import SSEDecoder
from openai_sse.relay import (
    FrameSink,
    LocalStore,
    MemoryStore,
    Relay,
    Store,
    StreamEvent,
    event_frame,
)
from openai_sse.testing import MockServer, Reply

from .conftest import UPSTREAM_KEY
from .helpers import collect, content, final, start

LONG = " ".join(f"word{i}" for i in range(40))


class _PlainStore:
    """Only the ``Store`` protocol, each call recorded by name."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.calls: list[str] = []

    async def create(self, stream_id: str, *, lease: float) -> None:
        await self.inner.create(stream_id, lease=lease)

    async def exists(self, stream_id: str) -> bool:
        return await self.inner.exists(stream_id)

    async def extend(self, stream_id: str, events: Sequence[tuple[str, str]]) -> list[str] | None:
        self.calls.append("extend")
        return await self.inner.extend(stream_id, events)

    async def read(self, stream_id: str, after: str | None, *, timeout: float) -> list[StreamEvent]:
        self.calls.append("read")
        return await self.inner.read(stream_id, after, timeout=timeout)

    async def renew_lease(self, stream_id: str, lease: float) -> None:
        await self.inner.renew_lease(stream_id, lease)

    async def wanted(self, stream_id: str) -> bool:
        return await self.inner.wanted(stream_id)

    async def heartbeat(self, stream_id: str, ttl: float) -> None:
        await self.inner.heartbeat(stream_id, ttl)

    async def alive(self, stream_id: str) -> bool:
        return await self.inner.alive(stream_id)

    async def request_stop(self, stream_id: str) -> None:
        await self.inner.request_stop(stream_id)

    async def listen_stops(self, on_stop: Callable[[str], None]) -> None:
        await self.inner.listen_stops(on_stop)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


class _LocalStore(_PlainStore):
    """The same, offering ``LocalStore`` too; counts the frames its sinks took."""

    def __init__(self) -> None:
        super().__init__()
        self.pushed = 0
        self._counting: dict[FrameSink, FrameSink] = {}

    def extend_now(
        self, stream_id: str, events: Sequence[tuple[str, str | bytes]]
    ) -> list[str] | None:
        self.calls.append("extend_now")
        return self.inner.extend_now(stream_id, events)

    def frames_after(
        self, stream_id: str, after: str | None
    ) -> tuple[list[bytes], str | None, bool]:
        self.calls.append("frames_after")
        return self.inner.frames_after(stream_id, after)

    def subscribe(self, stream_id: str, sink: FrameSink) -> bool:
        def counting(frame: bytes, event_id: str, terminal: bool) -> bool:
            taken = sink(frame, event_id, terminal)
            self.pushed += taken
            return taken

        self._counting[sink] = counting
        return self.inner.subscribe(stream_id, counting)

    def unsubscribe(self, stream_id: str, sink: FrameSink) -> None:
        self.inner.unsubscribe(stream_id, self._counting.pop(sink, sink))


async def _relay_a_stream(
    store: Store, upstream: MockServer, http: aiohttp.ClientSession
) -> list[Any]:
    upstream.enqueue(Reply(text=LONG))
    async with Relay(upstream=upstream.base_url, api_key=UPSTREAM_KEY, store=store) as relay:
        stream_id = await start(http, relay.url)
        async with http.get(f"{relay.url}/v1/streams/{stream_id}") as response:
            got = await collect(response)
    kind, completion = final(got)
    assert kind == "done" and completion["choices"][0]["message"]["content"] == LONG
    assert content(got) == LONG
    assert [int(e.id or 0) for e in got] == list(range(1, len(got) + 1))
    return [json.loads(e.data)["choices"] for e in got[:-1]]


async def test_a_store_with_local_store_gets_the_fast_path(
    upstream: MockServer, http: aiohttp.ClientSession
) -> None:
    store = _LocalStore()
    assert isinstance(store, LocalStore) and not isinstance(store, MemoryStore)
    await _relay_a_stream(store, upstream, http)
    assert {"extend_now", "frames_after"} <= set(store.calls)
    assert "extend" not in store.calls and "read" not in store.calls
    assert store.pushed > 0  # frames went to the socket from the store's sink


async def test_a_store_without_it_gets_the_generic_path(
    upstream: MockServer, http: aiohttp.ClientSession
) -> None:
    local = await _relay_a_stream(_LocalStore(), upstream, http)
    store = _PlainStore()
    assert isinstance(store, Store) and not isinstance(store, LocalStore)
    assert await _relay_a_stream(store, upstream, http) == local
    assert {"extend", "read"} <= set(store.calls)


async def test_memory_store_calls_its_sinks_with_each_event_stored() -> None:
    store = MemoryStore()
    await store.create("s1", lease=10)
    seen: list[tuple[bytes, str, bool]] = []
    once: list[str] = []

    def sink(frame: bytes, event_id: str, terminal: bool) -> bool:
        seen.append((frame, event_id, terminal))
        return True

    def first_only(frame: bytes, event_id: str, terminal: bool) -> bool:
        once.append(event_id)
        return False  # dropped after this call

    assert store.subscribe("s1", sink) and store.subscribe("s1", first_only)
    store.extend_now("s1", [("chunk", b'{"n":1}'), ("chunk", '{"n":2}')])
    await store.extend("s1", [("done", "{}")])  # the awaited write calls them too
    assert seen == [
        (event_frame("1", "chunk", b'{"n":1}'), "1", False),
        (event_frame("2", "chunk", '{"n":2}'), "2", False),
        (event_frame("3", "done", "{}"), "3", True),
    ]
    assert seen[0][0] == b'id: 1\ndata: {"n":1}\n\n'
    assert seen[2][0] == b"event: done\nid: 3\ndata: {}\n\n"
    assert once == ["1"]
    assert not store.subscribe("s1", sink)  # ended: nothing more will come
    assert not store.subscribe("unknown", sink)
    store.unsubscribe("s1", sink)  # not subscribed any more: no error
    store.unsubscribe("unknown", sink)


async def test_a_sink_that_unsubscribes_gets_nothing_more() -> None:
    store = MemoryStore()
    await store.create("s1", lease=10)
    seen: list[str] = []

    def sink(frame: bytes, event_id: str, terminal: bool) -> bool:
        seen.append(event_id)
        return True

    assert store.subscribe("s1", sink)
    store.extend_now("s1", [("chunk", "{}")])
    store.unsubscribe("s1", sink)
    store.extend_now("s1", [("chunk", "{}")])
    assert seen == ["1"]


async def test_an_http_1_0_client_is_followed_without_chunks(
    upstream: MockServer, http: aiohttp.ClientSession
) -> None:
    """Without HTTP chunks nothing can be pushed: the follower's sink only wakes it."""
    upstream.enqueue(Reply(text=LONG))
    relay = Relay(  # timers this long wake no follower during the test
        upstream=upstream.base_url, api_key=UPSTREAM_KEY, keepalive=60, grace=600, owner_timeout=600
    )
    async with relay:
        stream_id = await start(http, relay.url)
        host, port = relay.url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET /v1/streams/{stream_id} HTTP/1.0\r\nHost: relay\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), 10)  # to the end: the relay closes
        writer.close()
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and b"chunked" not in head.lower()
    got = SSEDecoder().feed(body)
    assert final(got)[0] == "done" and content(got) == LONG
    assert [int(e.id or 0) for e in got] == list(range(1, len(got) + 1))


class _Subscriptions(MemoryStore):
    """The memory store, telling when a follower subscribes."""

    def __init__(self) -> None:
        super().__init__()
        self.subscribed = asyncio.Event()

    def subscribe(self, stream_id: str, sink: FrameSink) -> bool:
        taken = super().subscribe(stream_id, sink)
        self.subscribed.set()
        return taken


async def _http_chunks(reader: asyncio.StreamReader) -> list[bytes]:
    """The HTTP/1.1 chunks of a response body, to the last one."""
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"chunked" in head.lower()
    chunks = []
    while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
        chunks.append((await reader.readexactly(size + 2))[:-2])
    return chunks


async def test_events_stored_in_one_turn_reach_a_follower_in_one_write() -> None:
    """A read that brings several chunks costs one write to each client, not one per chunk;
    the end, stored in the same turn, follows them."""
    store = _Subscriptions()
    async with Relay(upstream="http://127.0.0.1:9/v1", store=store, grace=600) as relay:
        await store.create("s1", lease=600)
        await store.heartbeat("s1", 600)
        host, port = relay.url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /v1/streams/s1 HTTP/1.1\r\nHost: relay\r\n\r\n")
        await asyncio.wait_for(store.subscribed.wait(), 10)
        store.extend_now("s1", [("chunk", b'{"n":1}'), ("chunk", b'{"n":2}')])
        store.extend_now("s1", [("chunk", b'{"n":3}')])
        store.extend_now("s1", [("done", "{}")])
        chunks = await asyncio.wait_for(_http_chunks(reader), 10)
        writer.close()
        await writer.wait_closed()
    assert chunks == [
        b"retry: 1000\n\n",
        b'id: 1\ndata: {"n":1}\n\nid: 2\ndata: {"n":2}\n\nid: 3\ndata: {"n":3}\n\n',
        b"event: done\nid: 4\ndata: {}\n\n",
    ]
