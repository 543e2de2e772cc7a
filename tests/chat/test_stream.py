"""ChatStream through Client over a real server on 127.0.0.1: recordings, listeners, cancel."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from openai_sse import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatListener,
    ChatStream,
    Client,
    IncompleteStreamError,
    ProtocolError,
    StreamCancelled,
    StreamError,
)
from openai_sse.chat import ChatCompletionAccumulator, decode_chunk

from ..fixtures import fixture_names, payloads, sse_bytes
from ..servers import LocalServer, sse_response, stalling_after

MESSAGES = [{"role": "user", "content": "hi"}]


def chunked(body: bytes, seed: int, most: int = 40) -> list[bytes]:
    rng = random.Random(seed)
    parts, i = [], 0
    while i < len(body):
        step = rng.randint(1, most)
        parts.append(body[i : i + step])
        i += step
    return parts


def serving(*parts: bytes) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, *parts)

    return handler


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer() as s:
        yield s


@pytest.fixture
async def client(server: LocalServer) -> AsyncIterator[Client]:
    async with Client("sk-test", base_url=server.url("/v1"), max_retries=0) as c:
        yield c


def route(server: LocalServer, handler: Callable[[web.Request], Any]) -> None:
    server.route("/v1/chat/completions", handler)


class Recorder(ChatListener):
    def __init__(self, name: str = "", log: list[tuple[str, Any]] | None = None) -> None:
        self.name = name
        self.log = log if log is not None else []
        self.content: list[str] = []
        self.chunks = 0
        self.closed: list[ChatCompletion] = []
        self.failures: list[BaseException] = []

    async def on_chunk(self, stream: ChatStream, chunk: ChatCompletionChunk) -> None:
        self.chunks += 1
        self.log.append((self.name, "chunk"))

    def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
        self.content.append(delta)

    async def on_closed(self, stream: ChatStream, completion: ChatCompletion) -> None:
        self.closed.append(completion)

    def on_failure(self, stream: ChatStream, error: BaseException) -> None:
        self.failures.append(error)


# -- the real recordings ------------------------------------------------------------------------


@pytest.mark.parametrize("name", fixture_names())
async def test_recordings_in_random_small_reads(
    server: LocalServer, client: Client, name: str
) -> None:
    route(server, serving(*chunked(sse_bytes(name), seed=len(name))))
    listener = Recorder()
    stream = client.chat.stream(model="m", messages=MESSAGES, listeners=[listener])
    completion = await stream

    datas = [json.loads(p) for p in payloads(name)]
    expected = ChatCompletionAccumulator()
    for data in payloads(name):
        expected.add(decode_chunk(data))
    assert completion == expected.snapshot
    assert listener.closed == [completion]
    assert listener.failures == []
    assert listener.chunks == len(datas) == stream.metrics.chunks
    # Field by field, from the raw JSON with no package code involved.
    ids = [d["id"] for d in datas if d.get("id")]
    assert completion.id == ids[0]
    indexes = sorted({c["index"] for d in datas for c in d.get("choices") or []})
    assert [c.index for c in completion.choices] == indexes
    for choice in completion.choices:
        deltas = [
            (c.get("delta") or {})
            for d in datas
            for c in d.get("choices") or []
            if c["index"] == choice.index
        ]
        text = "".join(d.get("content") or "" for d in deltas)
        assert (choice.message.content or "") == text
        finish = [
            c["finish_reason"]
            for d in datas
            for c in d.get("choices") or []
            if c["index"] == choice.index and c.get("finish_reason")
        ]
        assert choice.finish_reason == finish[0]
    if len(indexes) == 1:
        assert "".join(listener.content) == (completion.choices[0].message.content or "")
    usage = [d["usage"] for d in datas if d.get("usage")]
    assert completion.usage is not None
    assert completion.usage.total_tokens == usage[-1]["total_tokens"]
    assert stream.metrics.completion_tokens == usage[-1]["completion_tokens"]
    assert stream.metrics.bytes == len(sse_bytes(name))


async def test_request_body_and_headers(server: LocalServer, client: Client) -> None:
    route(server, serving(sse_bytes("01_openai_plain_content_usage.sse")))
    await client.chat.stream(model="gpt-x", messages=MESSAGES, temperature=0.5)
    sent = server.requests[0]
    body = json.loads(server.bodies[0])
    assert body == {
        "model": "gpt-x",
        "messages": MESSAGES,
        "temperature": 0.5,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert sent.headers["Authorization"] == "Bearer sk-test"
    assert sent.headers["Accept"] == "text/event-stream"
    assert sent.headers["User-Agent"].startswith("openai-sse/")
    assert sent.path == "/v1/chat/completions"


# -- listeners ----------------------------------------------------------------------------------


async def test_fan_out_in_registration_order(server: LocalServer, client: Client) -> None:
    route(server, serving(sse_bytes("01_openai_plain_content_usage.sse")))
    log: list[tuple[str, Any]] = []
    a, b = Recorder("a", log), Recorder("b", log)
    completion = await client.chat.stream(model="m", messages=MESSAGES, listeners=[a, b])
    assert log[:4] == [("a", "chunk"), ("b", "chunk"), ("a", "chunk"), ("b", "chunk")]
    assert a.content == b.content
    assert a.closed == b.closed == [completion]


async def test_failing_listener_is_isolated_and_logged(
    server: LocalServer, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    route(server, serving(sse_bytes("01_openai_plain_content_usage.sse")))

    class Broken(ChatListener):
        def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
            raise ValueError("listener bug")

    good = Recorder()
    with caplog.at_level(logging.ERROR, logger="openai_sse"):
        completion = await client.chat.stream(
            model="m", messages=MESSAGES, listeners=[Broken(), good]
        )
    assert "".join(good.content) == completion.choices[0].message.content
    assert "Broken.on_content" in caplog.text
    assert good.closed == [completion]


async def test_raise_errors_fails_the_stream(server: LocalServer, client: Client) -> None:
    route(server, serving(sse_bytes("01_openai_plain_content_usage.sse")))

    class Strict(ChatListener):
        raise_errors = True

        async def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
            if delta == " unable":
                raise ValueError("stop here")

    other = Recorder()
    stream = client.chat.stream(model="m", messages=MESSAGES, listeners=[Strict(), other])
    with pytest.raises(ValueError, match="stop here"):
        await stream
    assert stream.snapshot.choices[0].message.content == "I'm unable"
    assert len(other.failures) == 1
    assert other.closed == []


async def test_add_and_remove_listener_while_streaming(server: LocalServer, client: Client) -> None:
    route(server, serving(sse_bytes("01_openai_plain_content_usage.sse")))
    late = Recorder("late")

    class Switcher(ChatListener):
        def __init__(self) -> None:
            self.seen: list[str] = []

        def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
            self.seen.append(delta)
            if len(self.seen) == 2:
                stream.add_listener(late)
                stream.remove_listener(self)

    switcher = Switcher()
    completion = await client.chat.stream(model="m", messages=MESSAGES, listeners=[switcher])
    text = completion.choices[0].message.content or ""
    assert "".join(switcher.seen) == "I'm unable"
    assert "".join(late.content) == text[len("I'm unable") :]
    assert late.closed == [completion]


async def test_iteration_together_with_listeners(server: LocalServer, client: Client) -> None:
    route(server, serving(*chunked(sse_bytes("03_openai_n3_multiple_choices_usage.sse"), 3)))
    listener = Recorder()
    stream = client.chat.stream(model="m", messages=MESSAGES, listeners=[listener])
    chunks = [chunk async for chunk in stream]
    completion = await stream
    assert len(chunks) == listener.chunks == stream.metrics.chunks
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert chunks[-1].usage is not None


# -- cancellation -------------------------------------------------------------------------------


FIRST_TWO = b"".join(
    b"data: " + p.encode() + b"\n\n" for p in payloads("01_openai_plain_content_usage.sse")[:3]
)


async def test_cancel_from_listener(server: LocalServer, client: Client) -> None:
    route(server, stalling_after(FIRST_TWO))

    class Canceller(Recorder):
        def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
            super().on_content(stream, delta, index)
            stream.cancel()

    listener = Canceller()
    stream = client.chat.stream(model="m", messages=MESSAGES, listeners=[listener])
    with pytest.raises(StreamCancelled) as caught:
        await stream
    assert caught.value.snapshot is not None
    assert caught.value.snapshot.choices[0].message.content == "I'm"
    assert listener.content == ["I'm"]
    assert len(listener.failures) == 1
    assert listener.closed == []
    await asyncio.wait_for(server.disconnected.wait(), 5)


async def test_cancel_from_another_task(server: LocalServer, client: Client) -> None:
    route(server, stalling_after(FIRST_TWO))
    got = asyncio.Event()

    class Signal(Recorder):
        def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
            super().on_content(stream, delta, index)
            got.set()

    listener = Signal()
    stream = client.chat.stream(model="m", messages=MESSAGES, listeners=[listener])
    await asyncio.wait_for(got.wait(), 5)
    stream.cancel()
    await asyncio.wait_for(server.disconnected.wait(), 5)
    with pytest.raises(StreamCancelled):
        await stream
    assert stream.snapshot.choices[0].message.content == "I'm unable"
    assert [type(e) for e in listener.failures] == [StreamCancelled]


async def test_cancelling_the_awaiting_task_cancels_the_stream(
    server: LocalServer, client: Client
) -> None:
    route(server, stalling_after(FIRST_TWO))
    got = asyncio.Event()

    class Signal(Recorder):
        def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
            super().on_content(stream, delta, index)
            if len(self.content) == 2:
                got.set()

    listener = Signal()
    stream = client.chat.stream(model="m", messages=MESSAGES, listeners=[listener])

    async def consume() -> ChatCompletion:
        return await stream

    task = asyncio.ensure_future(consume())
    await asyncio.wait_for(got.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(server.disconnected.wait(), 5)
    await stream.aclose()
    assert [type(e) for e in listener.failures] == [StreamCancelled]
    assert stream.snapshot.choices[0].message.content == "I'm unable"


async def test_async_with_cancels_unfinished(server: LocalServer, client: Client) -> None:
    route(server, stalling_after(FIRST_TWO))
    listener = Recorder()
    async with client.chat.stream(model="m", messages=MESSAGES, listeners=[listener]) as stream:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
    await asyncio.wait_for(server.disconnected.wait(), 5)
    assert [type(e) for e in listener.failures] == [StreamCancelled]


# -- end of stream ------------------------------------------------------------------------------


async def test_done_completes_at_once_even_if_server_keeps_connection(
    server: LocalServer, client: Client
) -> None:
    body = sse_bytes("01_openai_plain_content_usage.sse").replace(
        b"data: [DONE]", b"data:  [DONE] "
    )
    route(server, stalling_after(body))
    listener = Recorder()
    stream = client.chat.stream(model="m", messages=MESSAGES, listeners=[listener])
    completion = await asyncio.wait_for(stream, 5)
    assert completion.choices[0].finish_reason == "stop"
    # The drain is bounded: the connection is let go, never held open.
    await asyncio.wait_for(server.disconnected.wait(), 5)
    await stream.aclose()
    assert listener.failures == []


async def test_eof_without_done_after_finish_is_complete(
    server: LocalServer, client: Client
) -> None:
    body = sse_bytes("01_openai_plain_content_usage.sse").replace(b"data: [DONE]\n\n", b"")
    route(server, serving(body))
    completion = await client.chat.stream(model="m", messages=MESSAGES)
    assert completion.choices[0].finish_reason == "stop"


async def test_eof_before_finish_is_incomplete(server: LocalServer, client: Client) -> None:
    route(server, serving(FIRST_TWO))
    listener = Recorder()
    stream = client.chat.stream(model="m", messages=MESSAGES, listeners=[listener])
    with pytest.raises(IncompleteStreamError) as caught:
        await stream
    assert caught.value.snapshot is not None
    assert caught.value.snapshot.choices[0].message.content == "I'm unable"
    assert listener.failures == [caught.value]


async def test_error_payload_mid_stream(server: LocalServer, client: Client) -> None:
    error = {"error": {"message": "boom", "type": "server_error", "code": "x1", "param": None}}
    route(server, serving(FIRST_TWO, b"data: " + json.dumps(error).encode() + b"\n\n"))
    with pytest.raises(StreamError) as caught:
        await client.chat.stream(model="m", messages=MESSAGES)
    assert str(caught.value) == "boom"
    assert (caught.value.type, caught.value.code, caught.value.param) == (
        "server_error",
        "x1",
        None,
    )
    assert caught.value.snapshot is not None
    assert caught.value.snapshot.choices[0].message.content == "I'm unable"


async def test_error_event(server: LocalServer, client: Client) -> None:
    route(server, serving(b'event: error\ndata: {"message": "overloaded", "code": 529}\n\n'))
    with pytest.raises(StreamError) as caught:
        await client.chat.stream(model="m", messages=MESSAGES)
    assert caught.value.message == "overloaded"
    assert caught.value.code == 529


async def test_content_mentioning_error_is_not_an_error(
    server: LocalServer, client: Client
) -> None:
    chunk = {
        "id": "c",
        "choices": [{"index": 0, "delta": {"content": 'say "error"'}, "finish_reason": "stop"}],
        "error_hint": None,
    }
    route(server, serving(b"data: " + json.dumps(chunk).encode() + b"\n\n"))
    completion = await client.chat.stream(model="m", messages=MESSAGES)
    assert completion.choices[0].message.content == 'say "error"'


async def test_malformed_chunk_names_the_event(server: LocalServer, client: Client) -> None:
    route(server, serving(FIRST_TWO, b'data: {"id": "x", "choices": [\n\n'))
    with pytest.raises(ProtocolError) as caught:
        await client.chat.stream(model="m", messages=MESSAGES)
    assert '{"id": "x", "choices": [' in str(caught.value)
    assert caught.value.snapshot is not None


async def test_non_json_payload_is_a_protocol_error(server: LocalServer, client: Client) -> None:
    route(server, serving(b"data: hello\n\n"))
    with pytest.raises(ProtocolError, match="hello"):
        await client.chat.stream(model="m", messages=MESSAGES)


async def test_error_inside_a_chunk_with_choices(server: LocalServer, client: Client) -> None:
    # OpenRouter's mid-stream shape: an error object beside a finishing choice.
    chunk = {
        "id": "gen-1",
        "object": "chat.completion.chunk",
        "error": {"code": 502, "message": "Provider disconnected"},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    }
    route(server, serving(FIRST_TWO, b"data: " + json.dumps(chunk).encode() + b"\n\n"))
    with pytest.raises(StreamError) as caught:
        await client.chat.stream(model="m", messages=MESSAGES)
    assert caught.value.message == "Provider disconnected"
    assert caught.value.code == 502
    assert caught.value.body["id"] == "gen-1"
