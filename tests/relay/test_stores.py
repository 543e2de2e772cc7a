"""One contract, two stores: the memory store and a real redis-server behave the same."""

from __future__ import annotations

import asyncio
import gc
import secrets
import types
from collections.abc import AsyncIterator
from typing import Any

import pytest

from openai_sse.relay import InvalidEventId, MemoryStore, RedisStore, Store, StoreUnavailable
from openai_sse.relay.store import append

from .conftest import free_port


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        made: Store = MemoryStore(maxlen=50)
    else:
        url = request.getfixturevalue("redis_url")
        made = RedisStore(url, prefix=f"test-{secrets.token_hex(4)}:", maxlen=50)
    yield made
    await made.close()


async def test_events_come_back_in_order_after_any_id(store: Store) -> None:
    await store.create("s1", lease=10)
    assert await store.exists("s1") and not await store.exists("s2")
    ids = [await append(store, "s1", "chunk", f'{{"n": {n}}}') for n in range(5)]
    assert all(ids) and len(set(ids)) == 5
    everything = await store.read("s1", None, timeout=0.1)
    assert [e.id for e in everything] == ids
    assert [e.data for e in everything] == [f'{{"n": {n}}}' for n in range(5)]
    after = await store.read("s1", ids[2], timeout=0.1)
    assert [e.id for e in after] == ids[3:]
    assert await store.read("s1", ids[4], timeout=0.05) == []


async def test_exactly_one_terminal_event(store: Store) -> None:
    await store.create("s1", lease=10)
    await append(store, "s1", "chunk", "{}")
    assert await store.wanted("s1")
    first = await append(store, "s1", "error", '{"type": "cancelled"}')
    assert first is not None
    assert await append(store, "s1", "done", "{}") is None
    assert await append(store, "s1", "chunk", "{}") is None
    assert not await store.wanted("s1")
    events = await store.read("s1", None, timeout=0.1)
    assert [e.kind for e in events] == ["chunk", "error"] and events[-1].terminal
    assert await append(store, "never-created", "chunk", "{}") is None


async def test_a_blocked_read_wakes_on_append(store: Store) -> None:
    await store.create("s1", lease=10)
    reader = asyncio.create_task(store.read("s1", None, timeout=5))
    await asyncio.sleep(0.05)  # let the reader block first; the append must wake it
    assert not reader.done()
    event_id = await append(store, "s1", "chunk", "live")
    events = await asyncio.wait_for(reader, 2)
    assert [(e.id, e.data) for e in events] == [(event_id, "live")]


async def test_lease_lapses_without_renewal(store: Store) -> None:
    await store.create("s1", lease=0.1)
    assert await store.wanted("s1")
    await asyncio.sleep(0.15)
    assert not await store.wanted("s1")
    await store.renew_lease("s1", 5)
    assert await store.wanted("s1")


async def test_stop_requests_reach_every_listener(store: Store) -> None:
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = asyncio.create_task(store.listen_stops(heard.put_nowait))
    try:
        for _ in range(50):  # a subscription takes a moment to be in place
            await store.request_stop("s1")
            try:
                assert await asyncio.wait_for(heard.get(), 0.05) == "s1"
                break
            except asyncio.TimeoutError:
                continue
        else:
            raise AssertionError("no stop request heard")
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


async def test_ids_the_store_never_issued_are_refused(store: Store) -> None:
    await store.create("s1", lease=10)
    with pytest.raises(InvalidEventId):
        await store.read("s1", "x-y-z", timeout=0)
    last = await append(store, "s1", "done", "{}")
    assert last is not None
    assert await store.read("s1", last, timeout=0) == []
    beyond = str(int(last) + 5) if last.isdigit() else f"{int(last.split('-')[0]) + 5}-0"
    with pytest.raises(InvalidEventId):
        await store.read("s1", beyond, timeout=0)


async def test_length_is_bounded(store: Store) -> None:
    await store.create("s1", lease=10)
    for n in range(300):
        await append(store, "s1", "chunk", str(n))
    events = await store.read("s1", None, timeout=0)
    assert 50 <= len(events) < 300  # Redis trims approximately (MAXLEN ~)
    assert events[-1].data == "299"


async def test_unreachable_redis_fails_fast_and_clearly() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=1.0)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(StoreUnavailable, match="unreachable"):
            await store.create("s1", lease=1)
        with pytest.raises(StoreUnavailable):
            await store.ping()
        assert loop.time() - started < 2
    finally:
        await store.close()


async def test_heartbeat_goes_stale_without_renewal(store: Store) -> None:
    await store.create("s1", lease=10)
    assert not await store.alive("s1")
    await store.heartbeat("s1", 0.1)
    assert await store.alive("s1")
    await asyncio.sleep(0.15)
    assert not await store.alive("s1")


async def test_a_batch_is_stored_in_order_and_stops_at_its_terminal_event(store: Store) -> None:
    await store.create("s1", lease=10)
    ids = await store.extend("s1", [("chunk", "a"), ("chunk", "b"), ("done", "{}"), ("chunk", "c")])
    assert ids is not None and len(ids) == 3
    events = await store.read("s1", None, timeout=0)
    assert [(e.id, e.kind, e.data) for e in events] == [
        (ids[0], "chunk", "a"),
        (ids[1], "chunk", "b"),
        (ids[2], "done", "{}"),
    ]
    assert await store.extend("s1", [("chunk", "d")]) is None


async def test_memory_store_frames_each_event_once_for_every_follower() -> None:
    store = MemoryStore()
    await store.create("s1", lease=10)
    ids = store.extend_now(
        "s1", [("chunk", b'{"n":1}'), ("chunk", b'{"a":\n2}'), ("chunk", '{"s":"\xe9"}')]
    )
    assert ids == ["1", "2", "3"]
    assert await store.extend("s1", [("done", "{}")]) == ["4"]
    frames, last, ended = store.frames_after("s1", "1")
    assert b"".join(frames) == (
        b'id: 2\ndata: {"a":\ndata: 2}\n\n'  # a line break inside data: one data line each
        b'id: 3\ndata: {"s":"\xc3\xa9"}\n\n'
        b"event: done\nid: 4\ndata: {}\n\n"
    )
    assert (last, ended) == ("4", True)
    events = await store.read("s1", None, timeout=0)
    assert [e.data for e in events] == ['{"n":1}', '{"a":\n2}', '{"s":"\xe9"}', "{}"]
    assert store.frames_after("s1", "4") == ([], "4", True)
    with pytest.raises(InvalidEventId):
        store.frames_after("s1", "5")
    assert store.frames_after("expired-or-unknown", None) == ([], None, True)


async def test_memory_store_ids_run_on_after_trimming() -> None:
    store = MemoryStore(maxlen=50)
    await store.create("s1", lease=10)
    for n in range(1, 301):
        assert store.extend_now("s1", [("chunk", str(n))]) == [str(n)]
    events = await store.read("s1", None, timeout=0)
    assert 50 <= len(events) < 300
    assert [(e.id, e.data) for e in events] == [
        (str(n), str(n)) for n in range(301 - len(events), 301)
    ]
    frames, last, _ = store.frames_after("s1", "1")  # long trimmed: from the oldest kept
    assert b"".join(frames).startswith(f"id: {events[0].id}\n".encode()) and last == "300"
    frames, _, _ = store.frames_after("s1", "298")
    assert b"".join(frames) == b"id: 299\ndata: 299\n\nid: 300\ndata: 300\n\n"


def _references_walked(root: object) -> int:
    """The references a full garbage collection follows from ``root`` (its classes aside)."""
    seen: set[int] = set()
    todo, walked = [root], 0
    while todo:
        obj = todo.pop()
        for ref in gc.get_referents(obj):
            walked += 1
            inner = not isinstance(ref, (type, types.ModuleType, types.FunctionType))
            if inner and gc.is_tracked(ref) and id(ref) not in seen:
                seen.add(id(ref))
                todo.append(ref)
    return walked


async def test_a_longer_stream_gives_the_garbage_collector_no_more_to_walk() -> None:
    """A relay keeps every event of every open stream. Were each a Python object in a list,
    every full collection would visit them all: a pause that grows with the load."""
    walked: list[int] = []
    for events in (10, 2_000):
        store: Any = MemoryStore()
        await store.create("s1", lease=10)
        for n in range(events):
            store.extend_now("s1", [("chunk", b'{"n":%d}' % n)])
        walked.append(_references_walked(store))
    assert walked[0] == walked[1]
