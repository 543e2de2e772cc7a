"""How MockServer writes streams: cached renderings under fresh ids, one write when unpaced,
paced chunks never early and kept on one shared schedule."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from openai_sse.testing import Fault, MockServer, Reply, ToolCall
from openai_sse.testing.delivery import Clock

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def chat(prompt: str = "Tell me about Paris", **extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "stream": True,
        "messages": [{"role": "user", "content": prompt}],
        **extra,
    }


STAMPS = re.compile(r'"(created|created_at|completed_at)": [1-9]\d*')


def without_stamps(text: str) -> str:
    """The JSON text with the times of rendering (a re-send has the current time) left out."""
    return STAMPS.sub(r'"\1": T', text)


def chunks(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in raw.decode().split("\n") if line.startswith("data: {")]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as sess:
        yield sess


async def timed(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any]
) -> tuple[float, list[tuple[float, bytes]]]:
    """When the request was sent, and each piece of the body with its arrival time."""
    loop = asyncio.get_running_loop()
    sent = loop.time()
    pieces = []
    async with session.post(url, json=body) as resp:
        async for piece in resp.content.iter_any():
            pieces.append((loop.time(), piece))
    return sent, pieces


async def repeated(
    session: aiohttp.ClientSession, server: MockServer, question: str
) -> list[list[dict[str, Any]]]:
    """The chunks of three identical chat requests with a tool, each read whole."""
    bodies = []
    for _ in range(3):
        body = chat(question, tools=[WEATHER])
        async with session.post(f"{server.base_url}/chat/completions", json=body) as r:
            bodies.append(chunks(await r.read()))
    return bodies


async def test_repeated_requests_reuse_the_rendering_under_fresh_ids(
    session: aiohttp.ClientSession,
) -> None:
    async with MockServer(delay=0) as server:
        bodies = await repeated(session, server, "Weather in Paris?")
        ids = {b[0]["id"] for b in bodies}
        call_ids = {c["choices"][0]["delta"]["tool_calls"][0]["id"] for c in (b[1] for b in bodies)}
        assert len(ids) == 3 and all(i.startswith("chatcmpl-") and len(i) == 38 for i in ids)
        assert len(call_ids) == 3 and all(i.startswith("call_") for i in call_ids)

        def without_ids(b: list[dict[str, Any]]) -> str:
            text = without_stamps(json.dumps(b))
            return text.replace(b[0]["id"], "ID").replace(
                b[1]["choices"][0]["delta"]["tool_calls"][0]["id"], "CALL"
            )

        assert without_ids(bodies[0]) == without_ids(bodies[1]) == without_ids(bodies[2])


async def test_repeated_responses_streams_are_re_sent_and_stored_under_fresh_ids(
    session: aiohttp.ClientSession,
) -> None:
    async with MockServer(delay=0) as server:
        url = f"{server.base_url}/responses"
        request = {"model": "gpt-4o-mini", "input": "Weather in Paris?", "stream": True}
        streams = []
        for extra in ({}, {}, {}, {"store": False}, {"store": False}):
            async with session.post(url, json={**request, **extra}) as r:
                raw = (await r.read()).decode()
            streams.append(
                [json.loads(line[6:]) for line in raw.split("\n") if line.startswith("data: ")]
            )
        finals = [s[-1]["response"] for s in streams]
        ids = [f["id"] for f in finals]
        item_ids = [f["output"][0]["id"] for f in finals]
        assert len(set(ids)) == len(set(item_ids)) == 5
        assert all(i.startswith("resp_") and len(i) == 55 for i in ids)

        def without_ids(events: list[dict[str, Any]], n: int) -> str:
            text = without_stamps(json.dumps(events))
            return text.replace(ids[n], "ID").replace(item_ids[n], "ITEM")

        assert without_ids(streams[0], 0) == without_ids(streams[1], 1)
        assert without_ids(streams[1], 1) == without_ids(streams[2], 2)
        assert without_ids(streams[3], 3) == without_ids(streams[4], 4)
        for n, response_id in enumerate(ids):
            async with session.get(f"{url}/{response_id}") as r:
                if n < 3:  # stored under the id it was sent with, events read back alike
                    assert r.status == 200 and await r.json() == finals[n]
                else:
                    assert r.status == 404


async def test_a_re_send_carries_the_current_time(
    session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    hour_ago = time.time() - 3600
    async with MockServer(delay=0) as server:
        chat_url, responses_url = (
            f"{server.base_url}/chat/completions",
            f"{server.base_url}/responses",
        )
        request = {"model": "gpt-4o-mini", "input": "Hi", "stream": True}
        with monkeypatch.context() as patch:  # the first renderings are made an hour ago
            patch.setattr(time, "time", lambda: hour_ago)
            async with session.post(chat_url, json=chat()) as r:
                first = chunks(await r.read())
            async with session.post(responses_url, json=request) as r:
                await r.read()
        async with session.post(chat_url, json=chat()) as r:
            again = chunks(await r.read())
        async with session.post(responses_url, json=request) as r:
            final = [
                json.loads(ln[6:]) for ln in (await r.text()).split("\n") if ln[:6] == "data: "
            ]
        async with session.get(f"{responses_url}/{final[-1]['response']['id']}") as r:
            stored = await r.json()
    assert {c["created"] for c in first} == {int(hour_ago)}
    assert len({c["created"] for c in again}) == 1
    assert again[0]["created"] >= int(hour_ago) + 3500
    response = final[-1]["response"]
    assert response["created_at"] >= int(hour_ago) + 3500
    assert response["completed_at"] >= int(hour_ago) + 3500
    assert final[0]["response"]["created_at"] == response["created_at"]
    assert stored == response


async def test_a_paced_re_send_carries_its_fresh_ids_in_every_chunk(
    session: aiohttp.ClientSession,
) -> None:
    async with MockServer(delay=0.002) as server:
        bodies = await repeated(session, server, "Weather in Oslo?")
    for got in bodies:
        assert len({c["id"] for c in got}) == 1
    assert len({got[0]["id"] for got in bodies}) == 3


async def test_cached_script_items_are_still_consumed_in_order(
    session: aiohttp.ClientSession,
) -> None:
    async with MockServer(delay=0) as server:
        url = f"{server.base_url}/chat/completions"
        same = Reply(text="Same answer.")
        fixed_id = Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"}, id="call_fixed")])
        server.enqueue(same, same, fixed_id, fixed_id)
        texts, call_ids = [], []
        for _ in range(5):
            async with session.post(url, json=chat()) as r:
                got = chunks(await r.read())
            texts.append(
                "".join(c["choices"][0]["delta"].get("content") or "" for c in got if c["choices"])
            )
            calls = [c["choices"][0]["delta"].get("tool_calls") for c in got if c["choices"]]
            call_ids.extend(call[0]["id"] for call in calls if call and "id" in call[0])
        assert texts[:2] == ["Same answer.", "Same answer."]
        assert call_ids == ["call_fixed", "call_fixed"]  # a scripted id is never renewed
        assert texts[4].startswith("You said:") and server.pending == 0


async def test_reply_answers_every_request_when_the_queue_is_empty(
    session: aiohttp.ClientSession,
) -> None:
    async with MockServer(delay=0, reply=Reply(text="Always this.")) as server:
        for _ in range(2):
            async with session.post(f"{server.base_url}/chat/completions", json=chat()) as r:
                got = chunks(await r.read())
            assert (
                "".join(c["choices"][0]["delta"].get("content") or "" for c in got if c["choices"])
                == "Always this."
            )
        body = {"model": "gpt-4o-mini", "input": "Hi"}
        async with session.post(f"{server.base_url}/responses", json=body) as r:
            assert (await r.json())["output"][0]["content"][0]["text"] == "Always this."


async def test_an_unpaced_stream_is_one_write(session: aiohttp.ClientSession) -> None:
    async with MockServer(delay=0) as server:
        server.enqueue(Reply(text=[f" w{i}" for i in range(300)]))
        _, pieces = await timed(session, f"{server.base_url}/chat/completions", chat())
        raw = b"".join(p for _, p in pieces)
        assert len(chunks(raw)) == 302 and raw.endswith(b"data: [DONE]\n\n")
        # 300 events of ~200 bytes written at once arrive in a few large reads, not 300
        assert len(pieces) <= 8


async def test_paced_chunks_are_never_early_and_arrive_spread_out(
    session: aiohttp.ClientSession,
) -> None:
    delay = 0.02
    async with MockServer(delay=delay) as server:
        server.enqueue(Reply(text=[f" w{i}" for i in range(20)]))
        sent, pieces = await timed(session, f"{server.base_url}/chat/completions", chat())
    arrivals = [t for t, piece in pieces for _ in range(piece.count(b"data: {"))]
    assert len(arrivals) == 22
    for k, t in enumerate(arrivals, 1):
        assert t >= sent + k * delay - 0.002, k
    assert len(pieces) >= 10
    assert arrivals[-1] - sent < 22 * delay * 4  # generous: the machine may be busy


async def test_many_paced_streams_share_the_schedule(session: aiohttp.ClientSession) -> None:
    delay, tokens, streams = 0.02, 15, 60
    async with MockServer(delay=delay, reply=Reply(text=[" x"] * tokens)) as server:
        url = f"{server.base_url}/chat/completions"
        results = await asyncio.gather(*(timed(session, url, chat()) for _ in range(streams)))
    for sent, pieces in results:
        arrivals = [t for t, piece in pieces for _ in range(piece.count(b"data: {"))]
        assert len(arrivals) == tokens + 2
        assert arrivals[0] >= sent + delay - 0.002
        assert arrivals[-1] >= sent + (tokens + 2) * delay - 0.002
        assert arrivals[-1] - sent < (tokens + 2) * delay * 6


async def test_a_stall_shifts_the_rest_of_a_paced_stream(session: aiohttp.ClientSession) -> None:
    delay = 0.02
    async with MockServer(delay=delay) as server:
        server.enqueue(Reply(text=[" a"] * 10, fault=Fault.stall_after(4, 0.2)))
        _, pieces = await timed(session, f"{server.base_url}/chat/completions", chat())
    arrivals = [t for t, piece in pieces for _ in range(piece.count(b"data: {"))]
    assert len(arrivals) == 12
    assert arrivals[4] - arrivals[3] >= 0.2
    # after the pause the stream keeps its pace instead of bursting out what was "due"
    assert arrivals[-1] - arrivals[4] >= 7 * delay - 0.005


async def test_clock_wakes_at_or_after_the_due_time() -> None:
    clock = Clock()
    loop = asyncio.get_running_loop()
    start = loop.time()
    dues = [start + 0.01 * (i % 5 + 1) for i in range(50)]

    async def wait(due: float) -> float:
        await clock.until(due)
        return loop.time() - due

    lateness = await asyncio.gather(*(wait(d) for d in dues))
    assert min(lateness) >= -1e-6
    await clock.until(start - 1)  # a past due time returns at once
