"""Resumable streams on one relay with the memory store, against the real embedded upstream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import aiohttp
import pytest

from openai_sse import Timeout
from openai_sse.relay import LocalStore, MemoryStore, Relay, Store
from openai_sse.testing import Fault, MockServer, Reply

from .conftest import UPSTREAM_KEY
from .helpers import CHAT, collect, content, events, final, first_events, start

LONG = " ".join(f"word{i}" for i in range(60))


@pytest.fixture
async def relay(upstream: MockServer) -> Relay:
    async with Relay(upstream=upstream.base_url, api_key=UPSTREAM_KEY, keepalive=5) as relay:
        yield relay


async def test_stream_delivers_every_chunk_with_ids_then_done(
    relay: Relay, upstream: MockServer, http: aiohttp.ClientSession
) -> None:
    stream_id = await start(http, relay.url)
    headers = {"Accept-Encoding": "gzip, deflate, br"}
    async with http.get(f"{relay.url}/v1/streams/{stream_id}", headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["X-Accel-Buffering"] == "no"
        assert "Content-Encoding" not in response.headers
        got = await collect(response)
    kind, completion = final(got)
    assert kind == "done"
    text = completion["choices"][0]["message"]["content"]
    assert text and content(got) == text
    ids = [int(e.id) for e in got if e.id]
    assert len(ids) == len(got) and ids == sorted(set(ids))
    # the upstream got the relay's key; nothing a browser sent
    assert upstream.requests[-1].headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"


@pytest.mark.parametrize("via", ["header", "query"])
async def test_resume_after_last_event_id_has_no_gap_and_no_duplicate(
    relay: Relay, upstream: MockServer, http: aiohttp.ClientSession, via: str
) -> None:
    upstream.enqueue(Reply(text=LONG))
    stream_id = await start(http, relay.url)
    url = f"{relay.url}/v1/streams/{stream_id}"
    first = await first_events(http, url, 5)  # then the browser goes away mid-answer
    last = first[-1].id
    assert last is not None
    if via == "header":
        request = http.get(url, headers={"Last-Event-ID": last})
    else:
        request = http.get(url, params={"last_event_id": last})
    async with request as response:
        rest = await collect(response)
    kind, completion = final(rest)
    assert kind == "done"
    assert content(first) + content(rest) == LONG == completion["choices"][0]["message"]["content"]
    assert int(rest[0].id) == int(last) + 1


async def test_bad_requests_get_openai_shaped_errors(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    cases = [
        (http.post(relay.url + "/v1/streams", data=b"{not json"), 400, "invalid_json", None),
        (http.post(relay.url + "/v1/streams", json=[1, 2]), 400, "invalid_json", None),
        (http.post(relay.url + "/v1/streams", json={"model": "m"}), 400, None, "messages"),
        (http.post(relay.url + "/v1/streams", json={**CHAT, "api": "nope"}), 400, None, "api"),
        (http.post(relay.url + "/v1/chat/completions", data=b"]"), 400, "invalid_json", None),
        (http.get(relay.url + "/v1/streams/strm_unknown"), 404, "stream_not_found", None),
        (http.delete(relay.url + "/v1/streams/strm_unknown"), 404, "stream_not_found", None),
    ]
    for request, status, code, param in cases:
        async with request as reply:
            assert reply.status == status
            error = (await reply.json())["error"]
            assert error["message"] and error["type"]
            if code:
                assert error["code"] == code
            if param:
                assert error["param"] == param
    stream_id = await start(http, relay.url)
    url = f"{relay.url}/v1/streams/{stream_id}"
    for bad in ("not-an-id", "99999"):  # never issued; or not yet, and maybe never
        async with http.get(url, headers={"Last-Event-ID": bad}) as reply:
            assert reply.status == 400
            assert (await reply.json())["error"]["param"] == "last_event_id"


async def test_delete_ends_followers_and_cancels_the_upstream(
    relay: Relay, upstream: MockServer, http: aiohttp.ClientSession
) -> None:
    upstream.enqueue(Reply(text=LONG, fault=Fault.stall_after(3)))
    stream_id = await start(http, relay.url)
    url = f"{relay.url}/v1/streams/{stream_id}"
    async with http.get(url) as response:
        seen = []
        async for event in events(response):
            seen.append(event)
            if len(seen) == 3:
                async with http.delete(url) as reply:
                    assert reply.status == 200
                    assert (await reply.json())["stopped"] is True
    kind, error = final(seen)
    assert kind == "error" and error["type"] == "cancelled"
    await upstream.wait_disconnect(timeout=2)
    # a late follower sees the same end; a second stop changes nothing
    async with http.get(url) as response:
        assert final(await collect(response)) == ("error", error)
    async with http.delete(url) as reply:
        assert (await reply.json())["stopped"] is False


async def test_nobody_listening_for_the_grace_time_stops_the_generation(
    upstream: MockServer, http: aiohttp.ClientSession
) -> None:
    upstream.enqueue(Reply(text=LONG, fault=Fault.stall_after(2)))
    async with Relay(upstream=upstream.base_url, api_key=UPSTREAM_KEY, grace=0.3) as relay:
        stream_id = await start(http, relay.url)
        await upstream.wait_disconnect(timeout=3)
        async with http.get(f"{relay.url}/v1/streams/{stream_id}") as response:
            got = await collect(response)
    kind, error = final(got)
    assert kind == "error" and error["type"] == "cancelled"
    assert "nobody listened" in error["message"]
    partial = content(got)
    assert partial and LONG.startswith(partial) and partial != LONG


async def test_a_listener_keeps_the_generation_alive_past_the_grace_time(
    upstream: MockServer, http: aiohttp.ClientSession
) -> None:
    upstream.enqueue(Reply(text=LONG))
    upstream.delay = 0.01  # over a second of answer: several grace periods
    async with Relay(upstream=upstream.base_url, api_key=UPSTREAM_KEY, grace=0.3) as relay:
        stream_id = await start(http, relay.url)
        async with http.get(f"{relay.url}/v1/streams/{stream_id}") as response:
            got = await collect(response)
    assert final(got)[0] == "done"
    assert content(got) == LONG


async def test_idle_streams_get_keepalive_comments(
    upstream: MockServer, http: aiohttp.ClientSession
) -> None:
    upstream.enqueue(Reply(text=LONG, fault=Fault.stall_after(1, 0.5)))
    async with Relay(upstream=upstream.base_url, api_key=UPSTREAM_KEY, keepalive=0.1) as relay:
        stream_id = await start(http, relay.url)
        async with http.get(f"{relay.url}/v1/streams/{stream_id}") as response:
            raw = await response.read()
    assert raw.count(b"\n:\n\n") >= 2  # comments while the upstream was silent
    assert b"event: done" in raw


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (
            Fault.status(400, "bad things", code="bad_code", param="messages"),
            {
                "type": "invalid_request_error",
                "error": "BadRequestError",
                "status_code": 400,
                "code": "bad_code",
                "param": "messages",
            },
        ),
        (
            Fault.error_after(2, "overloaded", type="server_error", code="busy"),
            {
                "type": "server_error",
                "error": "StreamError",
                "code": "busy",
                "message": "overloaded",
            },
        ),
        (Fault.stall_after(2), {"type": "timeout", "error": "APITimeoutError", "code": "idle"}),
    ],
    ids=["status", "in-band", "timeout"],
)
async def test_upstream_failures_become_typed_error_events(
    upstream: MockServer, http: aiohttp.ClientSession, fault: Fault, expected: dict[str, object]
) -> None:
    upstream.enqueue(Reply(text=LONG, fault=fault))
    timeout = Timeout(connect=2, first_event=2, idle=0.3)
    async with Relay(upstream=upstream.base_url, api_key=UPSTREAM_KEY, timeout=timeout) as relay:
        stream_id = await start(http, relay.url)
        async with http.get(f"{relay.url}/v1/streams/{stream_id}") as response:
            got = await collect(response)
    kind, error = final(got)
    assert kind == "error"
    assert {k: error[k] for k in expected} == expected
    if fault.action is not None:
        partial = content(got)  # what came before the failure is kept
        assert partial and LONG.startswith(partial) and partial != LONG


async def test_token_guards_the_api_and_secrets_never_leak(
    upstream: MockServer, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = "relay-token-abcdefghijkl"
    wrong_key = "sk-wrong-upstream-key-zyxwvut"
    async with Relay(upstream=upstream.base_url, api_key=wrong_key, token=token) as relay:
        async with http.get(relay.url + "/") as page:
            assert page.status == 200 and "EventSource" in await page.text()
        async with http.post(relay.url + "/v1/streams", json=CHAT) as reply:
            assert reply.status == 401
        auth = {"Authorization": f"Bearer {token}"}
        stream_id = await start(http, relay.url, headers=auth)
        url = f"{relay.url}/v1/streams/{stream_id}"
        async with http.get(url) as reply:
            assert reply.status == 401
        async with http.get(url, params={"access_token": token}) as response:
            got = await collect(response)
        async with http.post(relay.url + "/v1/chat/completions", json=CHAT, headers=auth) as r:
            passthrough = await r.text()
            assert r.status == 401
    kind, error = final(got)
    assert kind == "error" and error["status_code"] == 401
    assert upstream.requests[-1].headers["Authorization"] == f"Bearer {wrong_key}"
    seen = json.dumps(error) + passthrough + caplog.text
    for secret in (token, wrong_key, wrong_key[-4:]):
        assert secret not in json.dumps(error)
    assert token not in seen and wrong_key not in seen


async def test_shutdown_stops_running_generations(
    upstream: MockServer, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    for _ in range(3):
        upstream.enqueue(Reply(text=LONG, fault=Fault.stall_after(1)))
    relay = await Relay(upstream=upstream.base_url, api_key=UPSTREAM_KEY, store=store).start()
    try:
        stream_ids = [await start(http, relay.url) for _ in range(3)]
        for stream_id in stream_ids:
            async with http.get(f"{relay.url}/v1/streams/{stream_id}") as response:
                async for _ in events(response):
                    break  # the generation is streaming
    finally:
        await relay.close()
    for _ in stream_ids:
        await upstream.wait_disconnect(timeout=2)
    for stream_id in stream_ids:  # each stream ended, and says why
        last = (await store.read(stream_id, None, timeout=0))[-1]
        assert last.kind == "error" and "shutting down" in json.loads(last.data)["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


class _SlowEnds:
    """A store (not the in-process one) whose end writes wait for ``gate``: a relay that
    shuts down meanwhile must let them finish rather than cut them short."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.gate = asyncio.Event()
        self.ending = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        if name in ("extend_now", "frames_after", "subscribe", "unsubscribe"):
            raise AttributeError(name)  # not a LocalStore: its ends go through extend
        return getattr(self.inner, name)

    async def extend(self, stream_id: str, events: Any) -> list[str] | None:
        if events[-1][0] != "chunk":
            self.ending.set()
            await self.gate.wait()
        return await self.inner.extend(stream_id, events)


async def test_shutdown_lets_a_stream_finish_storing_its_end(
    upstream: MockServer, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    store = _SlowEnds()
    assert isinstance(store, Store) and not isinstance(store, LocalStore)
    relay = await Relay(upstream=upstream.base_url, api_key=UPSTREAM_KEY, store=store).start()
    try:
        stream_id = await start(http, relay.url)
        await asyncio.wait_for(store.ending.wait(), 5)  # the answer is complete, its end waits
        generation = relay.generations[stream_id]
        asked = asyncio.Event()
        stop = generation.stop

        def stop_and_tell(reason: str) -> None:
            stop(reason)
            asked.set()

        generation.stop = stop_and_tell  # type: ignore[method-assign]
        closing = asyncio.create_task(relay.close())
        await asyncio.wait_for(asked.wait(), 5)  # the shutdown asked it to stop
        store.gate.set()
        await asyncio.wait_for(closing, 5)
    finally:
        await relay.close()
    last = (await store.inner.read(stream_id, None, timeout=0))[-1]
    assert last.kind == "done"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_quiet_stream_whose_generation_is_gone_ends_as_lost(
    http: aiohttp.ClientSession,
) -> None:
    store = MemoryStore()
    await store.create("strm_orphan", lease=10)  # no instance beats for it
    relay = Relay(upstream="http://127.0.0.1:9/v1", store=store, owner_timeout=0.2)
    async with relay, http.get(f"{relay.url}/v1/streams/strm_orphan") as response:
        got = await collect(response)
    kind, error = final(got)
    assert kind == "error" and error["type"] == "lost"


async def test_responses_api_streams_resumably_too(
    relay: Relay, upstream: MockServer, http: aiohttp.ClientSession
) -> None:
    upstream.enqueue(Reply(text=LONG))
    body = {"api": "responses", "model": "gpt-4o-mini", "input": "Hi"}
    stream_id = await start(http, relay.url, body)
    url = f"{relay.url}/v1/streams/{stream_id}"
    first = await first_events(http, url, 8)
    async with http.get(url, headers={"Last-Event-ID": first[-1].id or ""}) as response:
        rest = await collect(response)
    kind, final_response = final(rest)
    assert kind == "done" and final_response["status"] == "completed"
    payloads = [json.loads(e.data) for e in first + rest[:-1]]
    numbers = [p["sequence_number"] for p in payloads]
    assert numbers == list(range(len(numbers)))  # every event once, in order
    deltas = [p["delta"] for p in payloads if p["type"] == "response.output_text.delta"]
    assert "".join(deltas) == LONG
    assert upstream.requests[-1].path == "/v1/responses"
    async with http.post(relay.url + "/v1/streams", json={**body, "input": 5}) as reply:
        assert reply.status == 400
        assert (await reply.json())["error"]["param"] == "input"


async def test_followers_switch_between_taking_events_as_stored_and_reading_the_store(
    relay: Relay, upstream: MockServer, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that falls behind is written to at its own pace, then as events come again:
    every switch must keep the stream whole, without a gap or a duplicate."""
    from openai_sse.relay import follower

    calls = 0

    def sometimes_behind(transport: Any) -> bool:
        nonlocal calls
        calls += 1
        return calls % 3 != 0 and keeps_up(transport)

    keeps_up = follower._keeps_up
    monkeypatch.setattr(follower, "_keeps_up", sometimes_behind)
    upstream.enqueue(Reply(text=LONG))
    stream_id = await start(http, relay.url)
    async with http.get(f"{relay.url}/v1/streams/{stream_id}") as response:
        got = await collect(response)
    assert final(got)[0] == "done"
    assert content(got) == LONG
    ids = [int(e.id or 0) for e in got]
    assert ids == list(range(1, len(got) + 1))
    assert calls > 6  # it did switch back and forth


async def test_a_failed_write_of_a_turns_events_loses_none_of_them(
    relay: Relay, upstream: MockServer, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should writing the events taken in one turn fail, the follower reads them back from
    the store and writes them itself: no gap, no duplicate."""
    from openai_sse.relay import follower

    class _Refusing:
        def is_closing(self) -> bool:
            return False

        def write(self, data: bytes) -> None:
            raise ConnectionResetError("refused once")

    failed: list[int] = []
    flush = follower._Subscribed.flush

    def refuse_the_first(self: follower._Subscribed) -> None:
        if failed or not self.outgoing:
            return flush(self)
        failed.append(len(self.outgoing))
        real, self.transport = self.transport, _Refusing()  # type: ignore[assignment]
        try:
            return flush(self)
        finally:
            self.transport = real

    monkeypatch.setattr(follower._Subscribed, "flush", refuse_the_first)
    upstream.enqueue(Reply(text=LONG))
    stream_id = await start(http, relay.url)
    async with http.get(f"{relay.url}/v1/streams/{stream_id}") as response:
        got = await collect(response)
    assert failed  # a write did fail
    assert final(got)[0] == "done"
    assert content(got) == LONG
    assert [int(e.id or 0) for e in got] == list(range(1, len(got) + 1))


def test_a_quiet_stream_gets_its_keepalives_on_uvloop() -> None:
    """uvloop may run a timer up to a millisecond before its time by its own clock: the
    follower must arm it again, not wait without one until the next event."""
    import uvloop

    async def scenario() -> int:
        store = MemoryStore()
        await store.create("strm_quiet", lease=60)
        await store.heartbeat("strm_quiet", 60)  # nothing comes, nothing ends
        relay = await Relay(upstream="http://127.0.0.1:9/v1", store=store, keepalive=0.02).start()
        url = f"{relay.url}/v1/streams/strm_quiet"
        try:
            async with aiohttp.ClientSession() as http, http.get(url) as response:
                loop = asyncio.get_running_loop()
                end = loop.time() + 0.5
                raw = b""
                while (left := end - loop.time()) > 0:
                    with contextlib.suppress(asyncio.TimeoutError):
                        raw += await asyncio.wait_for(response.content.readany(), left)
        finally:
            await relay.close()
        return raw.count(b"\n:\n\n")

    loop = uvloop.new_event_loop()
    try:
        comments = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert comments >= 5  # one every 20 ms of the 500: some two dozen
