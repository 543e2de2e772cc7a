"""MockServer's /v1/responses against raw aiohttp, the real recordings' shapes, and openai."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from openai_sse.testing import Fault, MockServer, Raw, Reply, ToolCall

from ..servers import read_partial

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings" / "responses"
TERMINAL = {"response.completed", "response.incomplete", "response.failed"}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def body(prompt: str = "Hello", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "input": prompt, **extra}


def parse(raw: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    """(event line, parsed data) of every complete event."""
    out = []
    for block in raw.decode().split("\n\n"):
        event = next((ln[7:] for ln in block.split("\n") if ln.startswith("event: ")), None)
        data = [ln[6:] for ln in block.split("\n") if ln.startswith("data: ")]
        if data:
            out.append((event, json.loads("\n".join(data))))
    return out


def events_of(raw: bytes) -> list[dict[str, Any]]:
    pairs = parse(raw)
    for name, data in pairs:
        assert name == data["type"]
    return [data for _, data in pairs]


async def post(
    session: aiohttp.ClientSession, server: MockServer, payload: dict[str, Any]
) -> tuple[aiohttp.ClientResponse, bytes]:
    async with session.post(f"{server.base_url}/responses", json=payload) as resp:
        return resp, await resp.read()


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


# -- shapes -----------------------------------------------------------------------------------


async def test_text_stream_has_the_official_order_numbering_and_final_object(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    resp, raw = await post(session, server, body("Hello", stream=True))
    assert resp.status == 200
    assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = events_of(raw)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    names = types(events)
    assert names[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert names[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert len(deltas) > 5
    final = events[-1]["response"]
    text = final["output"][0]["content"][0]["text"]
    assert text == "".join(deltas) and text.startswith("Hello! I'm an offline")
    assert final["status"] == "completed" and final["id"].startswith("resp_")
    assert {e["response"]["id"] for e in events if "response" in e} == {final["id"]}
    usage = final["usage"]
    assert usage["output_tokens"] == len(deltas)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    item_id = final["output"][0]["id"]
    assert all(e["item_id"] == item_id for e in events if "item_id" in e)


def _recorded_keys() -> dict[str, tuple[set[str], set[str]]]:
    """Per event type: the fields every recording has, and the fields any recording has."""
    keys: dict[str, tuple[set[str], set[str]]] = {}
    for path in sorted(RECORDINGS.glob("*.sse")):
        for block in path.read_text("utf-8").split("\n\n"):
            if "data: " not in block:
                continue
            data = json.loads(block.partition("data: ")[2])
            fields = set(data) - {"obfuscation", "sequence_number"}
            every, some = keys.setdefault(data["type"], (set(fields), set(fields)))
            every &= fields
            some |= fields
    return keys


async def test_every_event_has_the_fields_of_the_real_recordings(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    recorded = _recorded_keys()
    server.enqueue(
        Reply(reasoning="Think.", text="Yes."),
        Reply(refusal="I can't help with that."),
        Reply(tool_calls=[ToolCall("multiply", {"a": 2, "b": 3})]),
        Reply(text="cut short here please"),
    )
    seen: dict[str, dict[str, Any]] = {}
    for extra in ({}, {}, {}, {"max_output_tokens": 2}):
        _, raw = await post(session, server, body(stream=True, **extra))
        for event in events_of(raw):
            seen.setdefault(event["type"], event)
    assert set(seen) >= {
        "response.reasoning_summary_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.incomplete",
    }
    compared = 0
    for name, event in seen.items():
        if name in recorded:
            every, some = recorded[name]
            assert every <= set(event) - {"sequence_number"} <= some, name
            compared += 1
    assert compared >= 15
    response_keys = set(
        parse((RECORDINGS / "02_openai_function_call_single.sse").read_bytes())[-1][1]["response"]
    )
    assert response_keys - {
        "moderation",
        "frequency_penalty",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_retention",
        "safety_identifier",
    } <= set(seen["response.completed"]["response"])


async def test_function_call_reasoning_refusal_and_incomplete(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    _, raw = await post(
        session, server, body("What's the weather in Paris?", stream=True, tools=[WEATHER])
    )
    events = events_of(raw)
    added = next(e for e in events if e["type"] == "response.output_item.added")["item"]
    assert added["type"] == "function_call" and added["name"] == "get_weather"
    args = "".join(
        e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"
    )
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert json.loads(args) == {"city": "Paris"} == json.loads(done["arguments"])
    final_item = events[-1]["response"]["output"][0]
    assert final_item["arguments"] == args and final_item["call_id"] == added["call_id"]

    server.enqueue(Reply(reasoning=["Let", " me", " think"], text="42"))
    _, raw = await post(session, server, body(stream=True))
    events = events_of(raw)
    summary = "".join(
        e["delta"] for e in events if e["type"] == "response.reasoning_summary_text.delta"
    )
    output = events[-1]["response"]["output"]
    assert summary == "Let me think" == output[0]["summary"][0]["text"]
    assert [o["type"] for o in output] == ["reasoning", "message"]
    assert events[-1]["response"]["usage"]["output_tokens_details"]["reasoning_tokens"] == 3

    server.enqueue(Reply(refusal="No."))
    _, raw = await post(session, server, body(stream=True))
    events = events_of(raw)
    assert "response.refusal.done" in types(events)
    assert events[-1]["response"]["output"][0]["content"] == [{"type": "refusal", "refusal": "No."}]

    _, raw = await post(session, server, body(stream=True, max_output_tokens=3))
    events = events_of(raw)
    final = events[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["response"]["output"][0]["status"] == "incomplete"
    assert types(events).count("response.output_text.delta") == 3


async def test_non_streamed_returns_the_response_object(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    resp, raw = await post(session, server, body("你好"))
    assert resp.status == 200 and resp.content_type == "application/json"
    obj = json.loads(raw)
    assert obj["object"] == "response" and obj["status"] == "completed"
    assert obj["output"][0]["content"][0]["text"].startswith("你好！")
    async with session.get(f"{server.base_url}/responses/{obj['id']}") as r:
        assert r.status == 200 and (await r.json())["output"] == obj["output"]
    async with session.delete(f"{server.base_url}/responses/{obj['id']}") as r:
        assert (await r.json())["deleted"] is True
    async with session.get(f"{server.base_url}/responses/{obj['id']}") as r:
        assert r.status == 404
        assert (await r.json())["error"]["type"] == "invalid_request_error"


# -- faults -----------------------------------------------------------------------------------


async def test_error_event_then_response_failed(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    server.enqueue(Fault.error_after(4, "You exceeded your quota.", code="insufficient_quota"))
    _, raw = await post(session, server, body(stream=True))
    events = events_of(raw)
    assert types(events)[-2:] == ["error", "response.failed"]
    assert len(events) == 6 and [e["sequence_number"] for e in events] == list(range(6))
    assert events[-2]["error"]["code"] == "insufficient_quota"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "insufficient_quota"

    server.enqueue(Fault.error_after(2))
    resp, raw = await post(session, server, body())
    assert resp.status == 500 and json.loads(raw)["error"]["type"] == "server_error"


async def test_drop_stall_status_and_no_terminal_event(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    server.enqueue(Fault.drop_after(3))
    async with session.post(f"{server.base_url}/responses", json=body(stream=True)) as resp:
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()

    server.enqueue(Fault.status(429, retry_after=2))
    resp, raw = await post(session, server, body(stream=True))
    assert resp.status == 429 and resp.headers["retry-after"] == "2"
    assert json.loads(raw)["error"]["code"] == "rate_limit_exceeded"

    server.enqueue(Fault.no_done())
    _, raw = await post(session, server, body(stream=True))
    assert types(events_of(raw))[-1] == "response.output_item.done"

    server.enqueue(Fault.stall_after(2))
    timeout = aiohttp.ClientTimeout(sock_read=0.2)
    url = f"{server.base_url}/responses"
    async with session.post(url, json=body(stream=True), timeout=timeout) as resp:
        with pytest.raises(asyncio.TimeoutError):
            await resp.read()
    await server.wait_disconnect()


# -- background mode --------------------------------------------------------------------------


async def test_background_stream_dropped_then_resumed_with_starting_after(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    server.enqueue(Fault.drop_after(5))
    url = f"{server.base_url}/responses"
    async with session.post(url, json=body(stream=True, background=True)) as resp:
        received, error = await read_partial(resp)
    assert isinstance(error, aiohttp.ClientPayloadError)
    first = events_of(received)
    assert [e["sequence_number"] for e in first] == [0, 1, 2, 3, 4]
    assert first[0]["response"]["status"] == "queued" and first[0]["response"]["background"]
    assert types(first)[:3] == ["response.created", "response.queued", "response.in_progress"]
    response_id = first[0]["response"]["id"]

    async with session.get(f"{url}/{response_id}?stream=true&starting_after=4") as resp:
        rest = events_of(await resp.read())
    assert rest[0]["sequence_number"] == 5 and rest[-1]["type"] == "response.completed"
    numbers = [e["sequence_number"] for e in first + rest]
    assert numbers == list(range(len(numbers)))
    text = "".join(e.get("delta", "") for e in first + rest)
    assert text == rest[-1]["response"]["output"][0]["content"][0]["text"]

    async with session.get(f"{url}/{response_id}") as resp:
        assert (await resp.json())["status"] == "completed"


async def test_background_response_runs_without_a_client_and_is_followed_live(
    session: aiohttp.ClientSession,
) -> None:
    async with MockServer(delay=0.01) as server:
        url = f"{server.base_url}/responses"
        _, raw = await post(session, server, body(background=True))
        queued = json.loads(raw)
        assert queued["status"] == "queued" and queued["output"] == []
        async with session.get(f"{url}/{queued['id']}") as r:
            assert (await r.json())["status"] in ("queued", "in_progress")
        arrivals: list[float] = []
        loop = asyncio.get_running_loop()
        async with session.get(f"{url}/{queued['id']}?stream=true&starting_after=-1") as r:
            async for _ in r.content.iter_any():
                arrivals.append(loop.time())
            # iter_any yields as data arrives: a live follower gets many separate pieces
        assert len(arrivals) > 5
        async with session.get(f"{url}/{queued['id']}") as r:
            done = await r.json()
        assert done["status"] == "completed" and done["output"][0]["content"][0]["text"]

        _, raw = await post(session, server, body())
        plain = json.loads(raw)["id"]
        async with session.get(f"{url}/{plain}?stream=true") as r:
            assert r.status == 400 and (await r.json())["error"]["param"] == "stream"
        async with session.get(f"{url}/{queued['id']}?stream=true&starting_after=x") as r:
            assert r.status == 400


# -- the official client ----------------------------------------------------------------------


@pytest.fixture
async def openai_client(server: MockServer) -> AsyncIterator[Any]:
    openai = pytest.importorskip("openai")
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    yield client
    await client.close()


async def test_openai_responses_stream_helper_and_create(
    server: MockServer, openai_client: Any
) -> None:
    async with openai_client.responses.stream(
        model="gpt-4o-mini", input="What's the weather in Paris?", tools=[WEATHER]
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert "response.function_call_arguments.done" in kinds
    assert final.output[0].name == "get_weather"
    assert json.loads(final.output[0].arguments) == {"city": "Paris"}

    server.enqueue(Reply(reasoning="Hmm.", text="Fine, thanks."))
    async with openai_client.responses.stream(model="gpt-4o-mini", input="How are you?") as s:
        text = [e.delta async for e in s if e.type == "response.output_text.delta"]
        final = await s.get_final_response()
    assert "".join(text) == final.output_text == "Fine, thanks."
    assert final.output[0].summary[0].text == "Hmm."

    events = await openai_client.responses.create(model="gpt-4o-mini", input="Hi", stream=True)
    seen = [event async for event in events]
    assert seen[-1].type == "response.completed"
    assert seen[-1].response.output_text.startswith("Hi! I'm an offline")

    created = await openai_client.responses.create(model="gpt-4o-mini", input="Hi")
    assert created.status == "completed" and created.output_text == seen[-1].response.output_text
    again = await openai_client.responses.retrieve(created.id)
    assert again.id == created.id and again.output_text == created.output_text


async def test_openai_retrieve_stream_resumes_background_response(
    server: MockServer, openai_client: Any
) -> None:
    started = await openai_client.responses.create(
        model="gpt-4o-mini", input="Hello", background=True
    )
    assert started.status == "queued"
    resumed = await openai_client.responses.retrieve(started.id, stream=True, starting_after=3)
    numbers = [event.sequence_number async for event in resumed]
    assert numbers[0] == 4 and numbers == list(range(4, 4 + len(numbers)))


# -- client mistakes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"input": "x"}, "model"),
        (body(input=5), "input"),
        (body(input=[5]), "input[0]"),
        (body(input=[{"role": "wizard", "content": "x"}]), "input[0].role"),
        (body(input=[{"type": "function_call", "call_id": "c", "name": 5}]), "input[0].name"),
        (body(tools=5), "tools"),
        (body(tools=[{"type": "function"}]), "tools[0].name"),
        (body(tool_choice={"type": "function"}), "tool_choice.name"),
        (body(tool_choice="sometimes"), "tool_choice"),
        (body(max_output_tokens="many"), "max_output_tokens"),
        (body(background=True, store=False), "background"),
        (body(stream="yes"), "stream"),
    ],
)
async def test_bad_requests_get_400_with_the_param(
    server: MockServer, session: aiohttp.ClientSession, payload: dict[str, Any], param: str
) -> None:
    resp, raw = await post(session, server, payload)
    assert resp.status == 400
    error = json.loads(raw)["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert error["message"]


async def test_the_serve_command_serves_responses() -> None:
    openai = pytest.importorskip("openai")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "openai_sse",
        "serve",
        "--port",
        "0",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        base_url = line.rsplit(" ", 1)[-1].strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
        try:
            async with client.responses.stream(model="gpt-4o-mini", input="Hello") as stream:
                final = await stream.get_final_response()
        finally:
            await client.close()
        assert final.status == "completed" and final.output_text.startswith("Hello! I'm")
    finally:
        proc.terminate()
        await proc.communicate()


async def test_malformed_and_oversized_events(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    server.enqueue(Fault.malformed_after(3), Fault.oversized_after(3, 70_000))
    _, raw = await post(session, server, body(stream=True))
    blocks = [b for b in raw.decode().split("\n\n") if b]
    assert blocks[3].startswith("event: response.output_text.delta\ndata: {")
    with pytest.raises(json.JSONDecodeError):
        json.loads(blocks[3].partition("data: ")[2])
    good = [json.loads(b.partition("data: ")[2]) for i, b in enumerate(blocks) if i != 3]
    assert [e["sequence_number"] for e in good] == list(range(len(good)))
    assert good[-1]["type"] == "response.completed"

    _, raw = await post(session, server, body(stream=True))
    events = events_of(raw)
    assert events[3]["type"] == "response.output_text.delta"
    assert 65_000 < len(raw.split(b"\n\n")[3]) < 75_000
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


async def test_wrong_content_type(server: MockServer, session: aiohttp.ClientSession) -> None:
    server.enqueue(Fault.wrong_content_type("text/html", "<html>proxy error</html>"))
    resp, raw = await post(session, server, body(stream=True))
    assert resp.status == 200 and resp.content_type == "text/html"
    assert raw == b"<html>proxy error</html>"


async def test_raw_replays_a_real_recording_on_responses(
    server: MockServer, openai_client: Any
) -> None:
    recording = RECORDINGS / "02_openai_function_call_single.sse"
    server.enqueue(Raw.from_sse(recording))
    async with openai_client.responses.stream(model="gpt-5.5", input="1231 * 2331?") as stream:
        final = await stream.get_final_response()
    assert final.output[0].name == "multiply"
    assert json.loads(final.output[0].arguments) == {"a": 1231, "b": 2331}
