"""MockServer against real clients on 127.0.0.1: raw aiohttp and the official openai package."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from openai_sse.testing import Fault, MockServer, Raw, Reply, ToolCall, load_script, tokenize

from ..servers import read_partial

FIXTURES = Path(__file__).resolve().parents[1] / "recordings"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city", "unit"],
        },
    },
}


def chat_body(prompt: str = "Say hi", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}], **extra}


def parse_events(raw: bytes) -> list[str]:
    """The data payloads of a complete event stream (comments dropped)."""
    out = []
    for block in raw.decode().split("\n\n"):
        lines = [line[6:] for line in block.split("\n") if line.startswith("data: ")]
        if lines:
            out.append("\n".join(lines))
    return out


def chunks_of(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(d) for d in parse_events(raw) if d != "[DONE]"]


async def stream(
    session: aiohttp.ClientSession, server: MockServer, body: dict[str, Any]
) -> tuple[aiohttp.ClientResponse, bytes]:
    async with session.post(f"{server.base_url}/chat/completions", json=body) as resp:
        return resp, await resp.read()


def content_of(chunks: list[dict[str, Any]], index: int = 0) -> str:
    return "".join(
        c["delta"].get("content") or ""
        for chunk in chunks
        for c in chunk["choices"]
        if c["index"] == index and "delta" in c
    )


# -- tokeniser and defaults -------------------------------------------------------------------


def test_tokenize_round_trips_and_splits_like_a_model() -> None:
    text = "Hello, world! I'm fine.\n\n你好！我是一个离线运行的示例助手。"
    tokens = tokenize(text)
    assert "".join(tokens) == text
    assert tokens[:5] == ["Hello", ",", " world", "!", " I'm"]
    assert "\n\n" in tokens
    cjk = [t for t in tokens if "\u4e00" <= t[0] <= "\u9fff"]
    assert cjk and all(1 <= len(t) <= 2 for t in cjk)
    assert "！" in tokens


# -- streaming structure ----------------------------------------------------------------------


async def test_stream_has_openai_shape(server: MockServer, session: aiohttp.ClientSession) -> None:
    body = chat_body("你好", stream=True, stream_options={"include_usage": True})
    resp, raw = await stream(session, server, body)
    assert resp.status == 200
    assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert resp.headers["x-request-id"].startswith("req_")
    assert int(resp.headers["openai-processing-ms"]) > 0
    events = parse_events(raw)
    assert events[-1] == "[DONE]"
    chunks = chunks_of(raw)
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    for c in chunks:
        assert c["object"] == "chat.completion.chunk"
        assert c["model"] == "gpt-4o-mini"
        assert isinstance(c["created"], int)
        assert c["system_fingerprint"].startswith("fp_")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    finish = chunks[-2]
    assert finish["choices"][0]["delta"] == {}
    assert finish["choices"][0]["finish_reason"] == "stop"
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert all(c["usage"] is None for c in chunks[:-1])
    text = content_of(chunks)
    assert text.startswith("你好！") and "离线" in text and text.endswith("吗？")
    assert usage_chunk["usage"]["completion_tokens"] == len(chunks) - 3
    assert usage_chunk["usage"]["total_tokens"] == (
        usage_chunk["usage"]["prompt_tokens"] + usage_chunk["usage"]["completion_tokens"]
    )


async def test_default_replies_are_deterministic_and_language_aware(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    first = content_of(
        chunks_of((await stream(session, server, chat_body("hello", stream=True)))[1])
    )
    again = content_of(
        chunks_of((await stream(session, server, chat_body("hello", stream=True)))[1])
    )
    assert first == again
    assert first.startswith("Hello!") and "help" in first
    echo = content_of(
        chunks_of(
            (await stream(session, server, chat_body("Why is the sky blue?", stream=True)))[1]
        )
    )
    assert "Why is the sky blue?" in echo
    zh = content_of(
        chunks_of((await stream(session, server, chat_body("天空为什么是蓝色的", stream=True)))[1])
    )
    assert "天空为什么是蓝色的" in zh and "你说的是" in zh


async def test_no_usage_key_without_include_usage(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    _, raw = await stream(session, server, chat_body(stream=True))
    chunks = chunks_of(raw)
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_n_choices_interleave_like_fixture(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    server.enqueue(Reply(choices=[Reply(["a", "b"]), Reply(["c", "d"]), Reply(["e", "f"])]))
    _, raw = await stream(session, server, chat_body(stream=True, n=3))
    order = [(c["choices"][0]["index"], c["choices"][0]["delta"]) for c in chunks_of(raw)]
    role = {"role": "assistant", "content": "", "refusal": None}
    assert order[:6] == [
        (0, role), (0, {"content": "a"}), (1, role), (1, {"content": "c"}),
        (2, role), (2, {"content": "e"}),
    ]  # fmt: skip
    assert order[6:9] == [(0, {"content": "b"}), (1, {"content": "d"}), (2, {"content": "f"})]
    assert [i for i, d in order[9:]] == [0, 1, 2] and all(d == {} for _, d in order[9:])


async def test_max_tokens_finishes_with_length(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    server.enqueue(Reply("one two three four five"))
    _, raw = await stream(session, server, chat_body(stream=True, max_completion_tokens=2))
    chunks = chunks_of(raw)
    assert content_of(chunks) == "one two"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


async def test_tool_call_streams_argument_fragments(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    body = chat_body("What's the weather like in San Francisco?", stream=True, tools=[WEATHER_TOOL])
    _, raw = await stream(session, server, body)
    chunks = chunks_of(raw)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    head = chunks[1]["choices"][0]["delta"]["tool_calls"][0]
    assert head["index"] == 0 and head["id"].startswith("call_") and head["type"] == "function"
    assert head["function"] == {"name": "get_weather", "arguments": ""}
    frags = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[2:-1]]
    assert len(frags) > 3 and all(set(f) == {"index", "function"} for f in frags)
    args = json.loads("".join(f["function"]["arguments"] for f in frags))
    assert args == {"city": "San Francisco", "unit": "celsius"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_tool_result_gets_a_text_answer(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    body = {
        "model": "gpt-4o",
        "tools": [WEATHER_TOOL],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18°C and sunny"},
        ],
    }
    async with session.post(f"{server.base_url}/chat/completions", json=body) as resp:
        completion = await resp.json()
    assert resp.headers["content-type"] == "application/json"
    message = completion["choices"][0]["message"]
    assert completion["object"] == "chat.completion"
    assert "get_weather" in message["content"] and "18°C and sunny" in message["content"]
    assert completion["choices"][0]["finish_reason"] == "stop"


async def test_dialect_azure(server: MockServer, session: aiohttp.ClientSession) -> None:
    server.enqueue(Reply("Hello there", dialect="azure"))
    _, raw = await stream(
        session, server, chat_body(stream=True, stream_options={"include_usage": True})
    )
    chunks = chunks_of(raw)
    first = chunks[0]
    assert first["choices"] == [] and first["id"] == "" and first["object"] == ""
    assert "prompt_filter_results" in first
    assert all("content_filter_results" in c for ch in chunks[1:-2] for c in ch["choices"])
    annotation = chunks[-2]["choices"][0]
    assert "delta" not in annotation and annotation["content_filter_offsets"]["end_offset"] == 11
    assert chunks[-3]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2


async def test_dialect_deepseek_reasoning_and_usage_on_finish(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    server.enqueue(Reply("42", reasoning="Let me think.", dialect="deepseek"))
    _, raw = await stream(
        session, server, chat_body(stream=True, stream_options={"include_usage": True})
    )
    chunks = chunks_of(raw)
    assert chunks[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": None,
        "reasoning_content": "",
    }
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks)
    assert reasoning == "Let me think."
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"]["completion_tokens_details"]["reasoning_tokens"] == len(
        tokenize("Let me think.")
    )
    assert "prompt_cache_miss_tokens" in last["usage"]
    assert all(c["usage"] is None for c in chunks[:-1])


async def test_reasoning_field_and_keep_alive_and_explicit_usage(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    server.enqueue(
        Reply(["O", "K"], reasoning=["hm"], reasoning_field="reasoning", keep_alive=1, usage=usage)
    )
    _, raw = await stream(session, server, chat_body(stream=True))
    blocks = [b for b in raw.decode().split("\n\n") if b]
    assert blocks.count(": keep-alive") == len(blocks) - blocks.count(": keep-alive") - 2
    chunks = chunks_of(raw)
    assert [c["choices"][0]["delta"].get("reasoning") for c in chunks[1:2]] == ["hm"]
    assert chunks[-1]["usage"] == usage and chunks[-1]["choices"] == []


async def test_refusal_reply(server: MockServer, session: aiohttp.ClientSession) -> None:
    server.enqueue(Reply(refusal="I can't help with that."))
    _, raw = await stream(session, server, chat_body(stream=True))
    chunks = chunks_of(raw)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None, "refusal": ""}
    refusal = "".join(c["choices"][0]["delta"].get("refusal") or "" for c in chunks)
    assert refusal == "I can't help with that."


async def test_raw_replays_a_recorded_fixture_verbatim(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    recorded = (FIXTURES / "05_openai_content_logprobs_usage.sse").read_bytes()
    server.enqueue(Raw.from_sse(recorded))
    _, raw = await stream(session, server, chat_body(stream=True))
    assert raw.rstrip(b"\n") == recorded.rstrip(b"\n")


async def test_queue_is_fifo_then_default(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    server.enqueue(Reply("first"), Reply("second"))
    texts = [
        content_of(chunks_of((await stream(session, server, chat_body(stream=True)))[1]))
        for _ in range(3)
    ]
    assert texts[:2] == ["first", "second"]
    assert texts[2].startswith('You said: "Say hi"')
    assert server.pending == 0
    assert [r.json["messages"][0]["content"] for r in server.requests] == ["Say hi"] * 3


# -- the official openai package --------------------------------------------------------------


@pytest.fixture
async def openai_client(server: MockServer) -> AsyncIterator[Any]:
    openai = pytest.importorskip("openai")
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="test", max_retries=0) as c:
        yield c


async def test_openai_package_streams_text_and_usage(
    server: MockServer, openai_client: Any
) -> None:
    server.enqueue(Reply("Streaming works, 好的。"))
    response = await openai_client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "test"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    async for chunk in response:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == "Streaming works, 好的。"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == len(tokenize(text))
    assert server.requests[-1].headers["Authorization"] == "Bearer test"


async def test_openai_package_stream_helper_accumulates_tools_and_choices(
    server: MockServer, openai_client: Any
) -> None:
    server.enqueue(
        Reply(tool_calls=[ToolCall("get_weather", {"city": "Edinburgh"}), ToolCall("get_time", {})])
    )
    async with openai_client.chat.completions.stream(
        model="gpt-4o",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],
    ) as s:
        final = await s.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].function.arguments) == {"city": "Edinburgh"}
    assert final.choices[0].finish_reason == "tool_calls"

    response = await openai_client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True, n=2
    )
    texts = ["", ""]
    async for chunk in response:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts[0] == texts[1] and texts[0].startswith("Hi!")


async def test_openai_package_non_streaming_and_models(
    server: MockServer, openai_client: Any
) -> None:
    completion = await openai_client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "你好"}]
    )
    assert completion.choices[0].message.content.startswith("你好！")
    assert completion.usage.total_tokens > 0
    models = await openai_client.models.list()
    assert "gpt-4o-mini" in [m.id for m in models.data]


async def test_openai_package_sees_auth_error() -> None:
    openai = pytest.importorskip("openai")
    async with (
        MockServer(api_key="sk-right", delay=0) as srv,
        openai.AsyncOpenAI(base_url=srv.base_url, api_key="sk-wrong-key", max_retries=0) as c,
    ):
        with pytest.raises(openai.AuthenticationError) as info:
            await c.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True
            )
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"


# -- auth and routing -------------------------------------------------------------------------


async def test_auth(session: aiohttp.ClientSession) -> None:
    async with MockServer(api_key="sk-secret", delay=0) as srv:
        url = f"{srv.base_url}/chat/completions"
        async with session.post(
            url, json=chat_body(), headers={"Authorization": "Bearer nope"}
        ) as r:
            assert r.status == 401
            body = await r.json()
            message = body["error"].pop("message")
            assert body == {
                "error": {"type": "invalid_request_error", "param": None, "code": "invalid_api_key"}
            }
            assert message.startswith("Incorrect API key provided: no")
        async with session.post(url, json=chat_body()) as r:
            assert r.status == 401
            assert "didn't provide an API key" in (await r.json())["error"]["message"]
        good = {"Authorization": "Bearer sk-secret"}
        async with session.post(url, json=chat_body(), headers=good) as r:
            assert r.status == 200
        assert len(srv.requests) == 3


async def test_unknown_path_and_bad_bodies(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{server.base_url}/nope") as r:
        assert r.status == 404
        err = (await r.json())["error"]
        assert (
            err["message"] == "Invalid URL (GET /v1/nope)"
            and err["type"] == "invalid_request_error"
        )
    url = f"{server.base_url}/chat/completions"
    async with session.post(url, data=b"{not json") as r:
        assert r.status == 400
    async with session.post(url, json={"model": "x"}) as r:
        assert r.status == 400 and (await r.json())["error"]["param"] == "messages"
    assert [r.path for r in server.requests] == [
        "/v1/nope",
        "/v1/chat/completions",
        "/v1/chat/completions",
    ]


# -- faults -----------------------------------------------------------------------------------


async def test_fault_status_with_retry_headers(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    server.enqueue(Fault.status(429, retry_after=1, retry_after_ms=1500))
    resp, raw = await stream(session, server, chat_body(stream=True))
    assert resp.status == 429
    assert resp.headers["retry-after"] == "1" and resp.headers["retry-after-ms"] == "1500"
    assert resp.headers["content-type"] == "application/json"
    err = json.loads(raw)["error"]
    assert err["type"] == "requests" and err["code"] == "rate_limit_exceeded"
    assert set(err) == {"message", "type", "param", "code"}
    resp, _ = await stream(session, server, chat_body(stream=True))
    assert resp.status == 200


async def test_fault_drop_raises_payload_error(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    server.enqueue(Reply("a b c d e f", fault=Fault.drop_after(3)))
    async with session.post(
        f"{server.base_url}/chat/completions", json=chat_body(stream=True)
    ) as r:
        received, error = await read_partial(r)
    assert isinstance(error, aiohttp.ClientPayloadError)
    assert len(parse_events(received)) == 3
    await server.wait_idle(5)
    assert server.disconnects == 0


async def test_fault_stall_until_client_times_out_then_disconnect_seen(
    server: MockServer,
) -> None:
    server.enqueue(Fault.stall_after(2))
    timeout = aiohttp.ClientTimeout(total=10, sock_read=0.3)
    async with (
        aiohttp.ClientSession(timeout=timeout) as sess,
        sess.post(f"{server.base_url}/chat/completions", json=chat_body(stream=True)) as r,
    ):
        first = await r.content.readuntil(b"\n\n")
        second = await r.content.readuntil(b"\n\n")
        assert server.open_streams == 1
        with pytest.raises(asyncio.TimeoutError):
            await r.content.readuntil(b"\n\n")
    assert b"role" in first and b"content" in second
    await server.wait_disconnect(5)
    await server.wait_idle(5)
    assert server.disconnects == 1 and server.open_streams == 0


async def test_fault_stall_for_seconds_then_resumes(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    server.enqueue(Reply("x y", fault=Fault.stall_after(1, seconds=0.05)))
    _, raw = await stream(session, server, chat_body(stream=True))
    assert content_of(chunks_of(raw)) == "x y" and parse_events(raw)[-1] == "[DONE]"


async def test_client_closing_mid_stream_is_observed(server: MockServer) -> None:
    server.delay = 0.01
    server.enqueue(Reply(" ".join(["word"] * 500)))
    async with aiohttp.ClientSession() as sess:
        resp = await sess.post(f"{server.base_url}/chat/completions", json=chat_body(stream=True))
        await resp.content.readuntil(b"\n\n")
        await resp.content.readuntil(b"\n\n")
        resp.close()
        await server.wait_disconnect(5)
    await server.wait_idle(5)
    assert server.disconnects == 1


async def test_fault_delay_headers_and_disconnect_while_waiting(server: MockServer) -> None:
    server.enqueue(Fault.delay_headers(30))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.2)) as sess:
        with pytest.raises(asyncio.TimeoutError):
            await sess.post(f"{server.base_url}/chat/completions", json=chat_body(stream=True))
    await server.wait_disconnect(5)
    assert server.open_streams == 0


async def test_fault_malformed_error_oversized_and_no_done(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    server.enqueue(Reply("a b", fault=Fault.malformed_after(1)))
    events = parse_events((await stream(session, server, chat_body(stream=True)))[1])
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[1])
    assert events[-1] == "[DONE]" and json.loads(events[2])["choices"][0]["delta"] == {
        "content": "a"
    }

    server.enqueue(Fault.error_after(2, "boom", code="overloaded"))
    events = parse_events((await stream(session, server, chat_body(stream=True)))[1])
    assert len(events) == 3 and "[DONE]" not in events
    assert json.loads(events[2]) == {
        "error": {"message": "boom", "type": "server_error", "param": None, "code": "overloaded"}
    }

    server.enqueue(Reply("a", fault=Fault.oversized_after(1, 100_000)))
    events = parse_events((await stream(session, server, chat_body(stream=True)))[1])
    big = [e for e in events if len(e) > 1000]
    assert len(big) == 1 and len(big[0].encode()) == 100_000
    assert json.loads(big[0])["object"] == "chat.completion.chunk"

    server.enqueue(Fault.no_done())
    events = parse_events((await stream(session, server, chat_body(stream=True)))[1])
    assert (
        "[DONE]" not in events and json.loads(events[-1])["choices"][0]["finish_reason"] == "stop"
    )


async def test_fault_wrong_content_type(server: MockServer, session: aiohttp.ClientSession) -> None:
    server.enqueue(
        Fault.wrong_content_type("text/plain"), Fault.wrong_content_type("application/json")
    )
    resp, raw = await stream(session, server, chat_body(stream=True))
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/plain")
    assert parse_events(raw)[-1] == "[DONE]"
    resp, raw = await stream(session, server, chat_body(stream=True))
    assert resp.headers["content-type"] == "application/json"
    assert json.loads(raw)["object"] == "chat.completion"


async def test_faults_combine(server: MockServer, session: aiohttp.ClientSession) -> None:
    fault = Fault.delay_headers(0.01) + Fault.drop_after(0)
    assert fault.headers_delay == 0.01 and fault.action == "drop" and fault.after == 0
    with pytest.raises(ValueError, match="only one"):
        Fault.drop_after(1) + Fault.stall_after(1)
    server.enqueue(fault)
    async with session.post(
        f"{server.base_url}/chat/completions", json=chat_body(stream=True)
    ) as r:
        assert r.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()


# -- scripts and the plugin -------------------------------------------------------------------


def test_load_script_json_and_jsonl(tmp_path: Path) -> None:
    entries = [
        "plain",
        {"tokens": ["He", "llo"], "dialect": "deepseek"},
        {
            "tool_calls": [{"name": "f", "arguments": {"a": 1}}],
            "fault": {"fault": "drop_after", "after": 2},
        },
        {"raw": ["data: [DONE]\n\n"]},
        {"fault": "status", "status": 503, "retry_after": 2},
        {"fault": [{"fault": "delay_headers", "seconds": 0.5}, "no_done"]},
    ]
    path = tmp_path / "script.json"
    path.write_text(json.dumps(entries))
    items = load_script(path)
    jsonl = tmp_path / "script.jsonl"
    jsonl.write_text("\n".join(json.dumps(e) for e in entries))
    assert load_script(jsonl) == items
    assert items[0] == Reply("plain")
    assert items[1] == Reply(["He", "llo"], dialect="deepseek")
    assert isinstance(items[2], Reply) and items[2].tool_calls[0] == ToolCall("f", {"a": 1})
    assert items[2].fault == Fault.drop_after(2)
    assert isinstance(items[3], Raw) and items[3].blocks == (b"data: [DONE]\n\n",)
    assert items[4] == Fault.status(503, retry_after=2)
    assert items[5] == Fault.delay_headers(0.5) + Fault.no_done()
    with pytest.raises(ValueError, match="unknown"):
        load_script([{"txt": "typo"}])


async def test_from_script_serves_the_script(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps([{"text": "scripted"}]))
    async with MockServer.from_script(path, delay=0) as srv:
        _, raw = await stream(session, srv, chat_body(stream=True))
    assert content_of(chunks_of(raw)) == "scripted"


async def test_pytest_fixture(
    openai_mock_server: MockServer, session: aiohttp.ClientSession
) -> None:
    assert openai_mock_server.delay == 0
    assert openai_mock_server.base_url.startswith("http://127.0.0.1:")
    assert openai_mock_server.base_url.endswith("/v1")
    async with session.get(f"{openai_mock_server.base_url}/models") as r:
        assert r.status == 200 and (await r.json())["object"] == "list"


async def test_raw_from_chunks_frames_jsonl_recordings(
    server: MockServer, session: aiohttp.ClientSession
) -> None:
    path = FIXTURES / "compat" / "09_deepseek_reasoning_content_usage_on_finish.chunks.jsonl"
    lines = [line for line in path.read_text("utf-8").splitlines() if line.strip()]
    server.enqueue(Raw.from_chunks(path, fault=Fault.drop_after(len(lines))))
    async with session.post(
        f"{server.base_url}/chat/completions", json=chat_body(stream=True)
    ) as r:
        received, error = await read_partial(r)
    assert isinstance(error, aiohttp.ClientPayloadError)
    events = parse_events(received)
    assert events == lines
