"""MockServer against hostile clients: every mistake is a 400 with OpenAI's error body, never a
500 or a traceback, and a client that trickles its request in is cut off."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from openai_sse.testing import MockServer


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **extra}


def assert_openai_error(status: int, raw: bytes, param: str | None = None) -> dict[str, Any]:
    assert status == 400, raw[:300]
    error = json.loads(raw)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["message"]
    if param is not None:
        assert error["param"] == param
    return dict(error)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


CHAT_MISTAKES = [
    (chat(tools=5), "tools"),
    (chat(tools=[{"function": 5}]), "tools[0].type"),
    (chat(tools=[{"type": "function", "function": 5}]), "tools[0].function"),
    (chat(tools=[{"type": "function", "function": {"parameters": {}}}]), "tools[0].function.name"),
    (chat(tool_choice={"type": "function", "function": "get_weather"}), "tool_choice.function"),
    (chat(tool_choice={"function": {"name": "x"}}), "tool_choice.type"),
    (chat(tool_choice=7), "tool_choice"),
    (
        {"model": "m", "messages": [{"role": "assistant", "content": None, "tool_calls": 5}]},
        "messages[0].tool_calls",
    ),
    (
        {"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"function": {}}]}]},
        "messages[0].tool_calls[0].function.name",
    ),
    ({"model": 5, "messages": []}, "model"),
    ({"model": "m", "messages": "hi"}, "messages"),
    ({"model": "m", "messages": [5]}, "messages[0]"),
    ({"model": "m", "messages": [{"content": "hi"}]}, "messages[0].role"),
    ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"model": "m", "messages": [{"role": "user", "content": [5]}]}, "messages[0].content[0]"),
    (chat(n="2"), "n"),
    (chat(n=0), "n"),
    (chat(stream="yes"), "stream"),
    (chat(max_tokens=-1), "max_tokens"),
    (chat(max_completion_tokens=True), "max_completion_tokens"),
    (chat(temperature="hot"), "temperature"),
    (chat(stream_options=5), "stream_options"),
    (chat(stream_options={"include_usage": "yes"}), "stream_options.include_usage"),
    (chat(response_format=5), "response_format"),
    (chat(parallel_tool_calls="no"), "parallel_tool_calls"),
]


@pytest.mark.parametrize(("payload", "param"), CHAT_MISTAKES)
async def test_chat_mistakes_are_400_with_the_param(
    server: MockServer,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    payload: dict[str, Any],
    param: str,
) -> None:
    for stream in (False, True):
        body = {**payload, "stream": stream} if param != "stream" else payload
        async with session.post(f"{server.base_url}/chat/completions", json=body) as resp:
            assert_openai_error(resp.status, await resp.read(), param)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b"5",
        b'"hello"',
        b"null",
        b"{not json",
        b"\xff\xfe",
        nested(100_000).encode(),
        ('{"model": "m", "messages": ' + nested(5_000) + "}").encode(),
        ('{"model": "m", "messages": [], "metadata": ' + nested(200) + "}").encode(),
    ],
    ids=["array", "number", "string", "null", "broken", "not-utf8", "deep", "deep-field", "200"],
)
@pytest.mark.parametrize("path", ["/chat/completions", "/responses"])
async def test_non_object_and_deeply_nested_bodies_are_400(
    server: MockServer,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    raw: bytes,
    path: str,
) -> None:
    headers = {"Content-Type": "application/json"}
    async with session.post(server.base_url + path, data=raw, headers=headers) as resp:
        assert_openai_error(resp.status, await resp.read())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- fuzzing ----------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=4,
)
_ROLES = st.sampled_from(["user", "assistant", "tool", "system", "developer", "wizard", 5])


def _maybe(keys: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=keys)


_MESSAGE = _maybe(
    {
        "role": _ROLES,
        "content": st.one_of(st.text(max_size=20), _JSON),
        "tool_calls": st.one_of(
            _JSON,
            st.lists(
                _maybe(
                    {
                        "id": _JSON,
                        "function": st.one_of(_JSON, _maybe({"name": _JSON, "arguments": _JSON})),
                    }
                ),
                max_size=2,
            ),
        ),
        "tool_call_id": _JSON,
        "type": st.sampled_from(["message", "function_call", "function_call_output", "x"]),
        "call_id": _JSON,
        "name": _JSON,
        "arguments": _JSON,
        "output": _JSON,
    }
)
_TOOL = _maybe(
    {
        "type": st.one_of(st.just("function"), _JSON),
        "function": st.one_of(_JSON, _maybe({"name": st.text(max_size=10), "parameters": _JSON})),
        "name": st.one_of(st.text(max_size=10), _JSON),
        "parameters": _JSON,
    }
)
_BODY = _maybe(
    {
        "model": st.one_of(st.just("gpt-4o-mini"), _JSON),
        "messages": st.one_of(st.lists(_MESSAGE, max_size=3), _JSON),
        "input": st.one_of(st.text(max_size=20), st.lists(_MESSAGE, max_size=3), _JSON),
        "tools": st.one_of(st.lists(_TOOL, max_size=2), _JSON),
        "tool_choice": st.one_of(
            st.sampled_from(["auto", "none", "required"]),
            _maybe({"type": _JSON, "function": _JSON, "name": _JSON}),
            _JSON,
        ),
        "stream": st.one_of(st.booleans(), _JSON),
        "n": st.one_of(st.integers(-2, 4), _JSON),
        "max_tokens": st.one_of(st.integers(-2, 50), _JSON),
        "max_output_tokens": st.one_of(st.integers(-2, 50), _JSON),
        "stream_options": st.one_of(_maybe({"include_usage": _JSON}), _JSON),
        "background": _JSON,
        "store": _JSON,
        "parallel_tool_calls": _JSON,
        "temperature": _JSON,
    }
)


_VALID = _maybe(
    {
        "stream": st.booleans(),
        "n": st.integers(1, 3),
        "max_tokens": st.integers(0, 20),
        "max_output_tokens": st.integers(0, 20),
        "tools": st.just(
            [{"type": "function", "name": "get_weather", "function": {"name": "get_weather"}}]
        ),
        "tool_choice": st.sampled_from(["auto", "none", "required"]),
        "reasoning": st.just({"summary": "auto"}),
    }
).map(
    lambda extra: {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "What's the weather?"}],
        "input": "What's the weather?",
        **extra,
    }
)


def _bodies(count: int) -> list[tuple[str, bytes]]:
    """``count`` random (path, body) pairs drawn by hypothesis, reproducibly, ten at a time
    (drawing in batches keeps the generator's per-example overhead small)."""
    drawn: list[tuple[str, bytes]] = []

    @settings(
        max_examples=count // 10,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["/chat/completions", "/responses"]),
                st.one_of(_BODY, _JSON, _VALID),
            ),
            min_size=10,
            max_size=10,
        )
    )
    def collect(batch: list[tuple[str, Any]]) -> None:
        drawn.extend((path, json.dumps(body).encode()) for path, body in batch)

    collect()
    return drawn


async def test_600_random_bodies_never_get_a_500(
    server: MockServer, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    bodies = _bodies(600)
    assert len(bodies) == 600
    statuses: dict[int, int] = {}
    headers = {"Content-Type": "application/json"}
    for path, raw in bodies:
        async with session.post(server.base_url + path, data=raw, headers=headers) as resp:
            data = await resp.read()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            assert resp.status in (200, 400), (path, raw, resp.status, data[:300])
            if resp.status == 400:
                assert_openai_error(resp.status, data)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # the generator reaches both outcomes, so the check above is exercised both ways
    assert statuses.get(200, 0) >= 30 and statuses.get(400, 0) >= 300, statuses


# -- slow clients -----------------------------------------------------------------------------


async def _trickle(port: int, data: bytes, interval: float, limit: float) -> tuple[float, bytes]:
    """Send ``data`` a byte at a time; return when the server closed on us, and its answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = b""

    async def read_all() -> bytes:
        chunks = []
        while piece := await reader.read(65536):
            chunks.append(piece)
        return b"".join(chunks)

    reading = asyncio.ensure_future(read_all())
    try:
        for byte in data:
            if reading.done():
                break
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.wait([reading], timeout=interval)
            assert loop.time() - started < limit, "the server kept a slow client"
        try:
            answer = await asyncio.wait_for(reading, limit)
        except ConnectionError:
            answer = b""
    finally:
        reading.cancel()
        writer.close()
    return loop.time() - started, answer


async def test_slow_headers_are_cut_off_at_the_header_timeout() -> None:
    async with MockServer(delay=0, header_timeout=0.5) as server:
        request = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + b"X-Padding: "
            + b"a" * 200
            + b"\r\n\r\n"
        )
        elapsed, answer = await _trickle(server.port, request, 0.05, 3.0)
        assert 0.4 <= elapsed < 1.5
        assert answer == b""
        assert server.requests == []


async def test_slow_body_gets_408_at_the_header_timeout() -> None:
    async with MockServer(delay=0, header_timeout=0.5) as server:
        body = json.dumps(chat()).encode()
        head = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(head + body[:5])
            await writer.drain()
            answer = await asyncio.wait_for(reader.readuntil(b"}}"), 3.0)
            assert answer.startswith(b"HTTP/1.1 408")
            error = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]
            assert error["code"] == "timeout" and error["type"] == "invalid_request_error"
        finally:
            writer.close()
