"""Several relays on one real redis-server: any instance resumes or stops any stream."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from openai_sse.relay import RedisStore, Relay
from openai_sse.testing import Fault, MockServer, Reply

from .conftest import UPSTREAM_KEY, free_port, redis_server
from .helpers import (
    CHAT,
    RUNNING,
    collect,
    content,
    events,
    final,
    first_events,
    relay_process,
    start,
)

LONG = " ".join(f"piece{i}" for i in range(80))

RelayFactory = Callable[..., Any]


@pytest.fixture
async def relays(redis_url: str, upstream: MockServer) -> AsyncIterator[Callable[..., Any]]:
    """Start relays sharing one Redis (and one key prefix), each with its own store client."""
    prefix = f"test-{secrets.token_hex(4)}:"
    started: list[tuple[Relay, RedisStore]] = []

    async def make(**options: Any) -> Relay:
        store = RedisStore(redis_url, prefix=prefix)
        relay = Relay(upstream=upstream.base_url, api_key=UPSTREAM_KEY, store=store, **options)
        started.append((await relay.start(), store))
        return relay

    yield make
    for relay, store in started:
        await relay.close()
        await store.close()


async def test_start_on_a_drop_resume_on_b(
    relays: RelayFactory, upstream: MockServer, http: aiohttp.ClientSession
) -> None:
    upstream.enqueue(Reply(text=LONG))
    a, b = await relays(), await relays()
    stream_id = await start(http, a.url)
    first = await first_events(http, f"{a.url}/v1/streams/{stream_id}", 6)
    headers = {"Last-Event-ID": first[-1].id or ""}
    async with http.get(f"{b.url}/v1/streams/{stream_id}", headers=headers) as response:
        rest = await collect(response)
    kind, completion = final(rest)
    assert kind == "done"
    assert content(first) + content(rest) == LONG == completion["choices"][0]["message"]["content"]
    ids = [e.id for e in first + rest]
    assert len(ids) == len(set(ids))
    assert not b.generations  # A ran it; B only read the store
    assert len(upstream.requests) == 1


async def test_stop_via_b_ends_the_generation_run_by_a(
    relays: RelayFactory, upstream: MockServer, http: aiohttp.ClientSession
) -> None:
    upstream.enqueue(Reply(text=LONG, fault=Fault.stall_after(4)))
    a, b = await relays(), await relays()
    stream_id = await start(http, a.url)
    seen = []
    async with http.get(f"{a.url}/v1/streams/{stream_id}") as response:
        async for event in events(response):
            seen.append(event)
            if len(seen) == 4:
                assert stream_id in a.generations
                async with http.delete(f"{b.url}/v1/streams/{stream_id}") as reply:
                    assert reply.status == 200
    kind, error = final(seen)
    assert kind == "error" and error["type"] == "cancelled"
    await upstream.wait_disconnect(timeout=3)  # A cancelled its upstream request


async def test_a_listener_on_b_keeps_a_generation_on_a_alive(
    relays: RelayFactory, upstream: MockServer, http: aiohttp.ClientSession
) -> None:
    upstream.enqueue(Reply(text=LONG))
    upstream.delay = 0.01  # longer than several grace periods
    a, b = await relays(grace=0.3), await relays(grace=0.3)
    stream_id = await start(http, a.url)
    async with http.get(f"{b.url}/v1/streams/{stream_id}") as response:
        got = await collect(response)
    assert final(got)[0] == "done" and content(got) == LONG


async def test_redis_down_means_503_for_new_streams_without_a_hang(
    upstream: MockServer, http: aiohttp.ClientSession
) -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=1.0)
    async with Relay(upstream=upstream.base_url, api_key=UPSTREAM_KEY, store=store) as relay:
        for request in (
            http.post(relay.url + "/v1/streams", json=CHAT),
            http.get(relay.url + "/v1/streams/strm_x"),
            http.delete(relay.url + "/v1/streams/strm_x"),
        ):
            async with request as reply:
                assert reply.status == 503
                error = (await reply.json())["error"]
                assert error["type"] == "store_unavailable"
                assert "Redis" in error["message"]
    await store.close()
    assert upstream.requests == []  # nothing was generated that nobody could read


# -- real `openai-sse relay` processes -----------------------------------------------------


async def test_two_relay_processes_on_one_redis(
    redis_url: str, upstream: MockServer, http: aiohttp.ClientSession
) -> None:
    upstream.enqueue(Reply(text=LONG), Reply(text=LONG, fault=Fault.stall_after(3)))
    args = ("--upstream", upstream.base_url, "--redis", redis_url)
    async with (
        relay_process(*args, secret=UPSTREAM_KEY) as a,
        relay_process(*args, secret=UPSTREAM_KEY) as b,
    ):
        # start on A, drop, resume on B
        stream_id = await start(http, a)
        first = await first_events(http, f"{a}/v1/streams/{stream_id}", 5)
        headers = {"Last-Event-ID": first[-1].id or ""}
        async with http.get(f"{b}/v1/streams/{stream_id}", headers=headers) as response:
            rest = await collect(response)
        assert final(rest)[0] == "done"
        assert content(first) + content(rest) == LONG
        # stop via B a generation that A runs: A's upstream request is cancelled
        stream_id = await start(http, a)
        async with http.get(f"{b}/v1/streams/{stream_id}") as response:
            seen = []
            async for event in events(response):
                seen.append(event)
                if len(seen) == 3:
                    async with http.delete(f"{b}/v1/streams/{stream_id}") as reply:
                        assert reply.status == 200
        assert final(seen)[1]["type"] == "cancelled"
        await upstream.wait_disconnect(timeout=3)
    assert len(upstream.requests) == 2


async def test_streams_of_a_crashed_instance_end_as_lost_elsewhere(
    redis_url: str, upstream: MockServer, http: aiohttp.ClientSession
) -> None:
    upstream.enqueue(Reply(text=LONG, fault=Fault.stall_after(3)))
    args = ("--upstream", upstream.base_url, "--redis", redis_url, "--owner-timeout", "1")
    async with (
        relay_process(*args, secret=UPSTREAM_KEY) as a,
        relay_process(*args, secret=UPSTREAM_KEY) as b,
    ):
        stream_id = await start(http, a)
        async with http.get(f"{b}/v1/streams/{stream_id}") as response:
            seen = []
            async for event in events(response):
                seen.append(event)
                if len(seen) == 3:
                    RUNNING[a].kill()  # A dies mid-answer without a word
        await upstream.wait_disconnect(timeout=3)
    kind, error = final(seen)
    assert kind == "error" and error["type"] == "lost"
    partial = content(seen)
    assert partial and LONG.startswith(partial)


async def test_redis_going_away_mid_answer_stops_the_generation(
    tmp_path: Path, upstream: MockServer, http: aiohttp.ClientSession
) -> None:
    upstream.enqueue(Reply(text=LONG))
    upstream.delay = 0.02
    with redis_server(tmp_path) as (url, process):
        store = RedisStore(url, timeout=1.0)
        relay = Relay(upstream=upstream.base_url, api_key=UPSTREAM_KEY, store=store)
        async with relay:
            stream_id = await start(http, relay.url)
            async with http.get(f"{relay.url}/v1/streams/{stream_id}") as response:
                seen = []
                async for event in events(response):
                    seen.append(event)
                    if len(seen) == 3:
                        process.kill()  # Redis is gone
            # the follower's response ended early (a browser would reconnect); no terminal
            assert all(e.type is None for e in seen)
            await upstream.wait_disconnect(timeout=5)  # nobody can read it: stop paying
            async with http.post(relay.url + "/v1/streams", json=CHAT) as reply:
                assert reply.status == 503
        await store.close()
