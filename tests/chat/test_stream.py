"""ChatStream through Client over a real server on 127.0.0.1: recordings, listeners, cancel."""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import random
import warnings
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
from openai_sse.streaming import ListenerHookWarning

from ..fixtures import fixture_names, payloads, sse_bytes
from ..servers import LocalServer, hang, sse_response, stalling_after

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
async def client(server: LocalServer) -> AsyncIterator[Client]:
    async with server.client() as c:
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


async def test_bytes_counted_when_the_result_is_returned(
    server: LocalServer, client: Client
) -> None:
    # The body stays open after [DONE]: the stream completes while the drain still runs.
    body = sse_bytes("01_openai_plain_content_usage.sse")
    route(server, stalling_after(body))
    stream = client.chat.stream(model="m", messages=MESSAGES)
    await stream
    assert stream.metrics.bytes == len(body)
    await stream.aclose()
    assert stream.metrics.bytes == len(body)  # the end of the body adds nothing twice


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


async def test_an_accept_header_of_the_callers_own_is_the_only_one(
    server: LocalServer, client: Client
) -> None:
    route(server, serving(sse_bytes("01_openai_plain_content_usage.sse")))
    await client.chat.stream(model="m", messages=MESSAGES, extra_headers={"accept": "*/*"})
    await client.chat.stream(model="m", messages=MESSAGES, extra_headers={"X-Trace": "1"})
    own = Client("sk-test", base_url=server.url("/v1"), default_headers={"ACCEPT": "a/b"})
    async with own:
        await own.chat.stream(model="m", messages=MESSAGES)
    sent = [request.headers.getall("Accept") for request in server.requests]
    assert sent == [["*/*"], ["text/event-stream"], ["a/b"]]


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
    assert good.closed == [completion]
    # One traceback for the first failure, then one line with the count at the end.
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1
    assert "Broken.on_content raised ValueError: listener bug" in tracebacks[0].getMessage()
    assert caplog.records[-1].getMessage() == (
        "Listener failures in this stream: Broken.on_content failed "
        f"{len(good.content)} times (last: ValueError: listener bug)"
    )


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


async def test_iterator_gets_the_first_token_before_the_rest_of_the_read(
    server: LocalServer, client: Client
) -> None:
    # The whole answer arrives in one read; the iterator still sees the first word before the
    # chunks after it are decoded, and then every chunk, in order, once.
    body = sse_bytes("01_openai_plain_content_usage.sse")
    route(server, serving(body))
    total = len(payloads("01_openai_plain_content_usage.sse"))
    stream = client.chat.stream(model="m", messages=MESSAGES)
    seen: list[int] = []  # chunks decoded when each content chunk reached the iterator
    texts = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            seen.append(stream.metrics.chunks)
            texts.append(chunk.choices[0].delta.content)
    completion = await stream
    first_content = 1 + next(
        i
        for i, p in enumerate(payloads("01_openai_plain_content_usage.sse"))
        if json.loads(p)["choices"] and json.loads(p)["choices"][0]["delta"].get("content")
    )
    assert seen[0] == first_content < total
    assert "".join(texts) == completion.choices[0].message.content
    assert stream.metrics.chunks == total


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


async def test_a_body_that_ends_with_done_needs_no_drain_timer(
    server: LocalServer, client: Client
) -> None:
    # The end marker arrived with the end of the body: nothing is left to bound.
    armed: list[bool] = []

    class AtClose(ChatListener):
        def on_closed(self, stream: Any, completion: ChatCompletion) -> None:
            armed.append(stream._drain is not None)

    route(server, serving(sse_bytes("01_openai_plain_content_usage.sse")))
    for _ in range(3):
        await client.chat.stream(model="m", messages=MESSAGES, listeners=[AtClose()])
    assert armed == [False, False, False]


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


# -- hooks: the documented signature, awaitables from plain calls --------------------------------

PLAIN = "01_openai_plain_content_usage.sse"


async def test_on_open_gets_only_the_stream(server: LocalServer, client: Client) -> None:
    route(server, serving(sse_bytes(PLAIN)))
    seen: list[int] = []

    class Opener(ChatListener):
        raise_errors = True

        def on_open(self, stream: ChatStream) -> None:
            assert stream.response is not None
            seen.append(stream.response.status)

    await client.chat.stream(model="m", messages=MESSAGES, listeners=[Opener()])
    assert seen == [200]


def deferred(method: Callable[..., Any]) -> Callable[..., Any]:
    """An ``async def`` behind a plain decorator: calling it returns a coroutine."""

    @functools.wraps(method)
    def wrapper(*args: Any) -> Any:
        return method(*args)

    return wrapper


async def test_awaitables_from_plain_hooks_are_awaited_on_every_path(
    server: LocalServer, client: Client
) -> None:
    route(server, serving(sse_bytes(PLAIN)))
    log: list[str] = []

    class Decorated(ChatListener):
        @deferred
        async def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
            await asyncio.sleep(0)
            log.append("decorated " + delta)

        @deferred
        async def on_usage(self, stream: ChatStream, usage: Any) -> None:
            await asyncio.sleep(0)
            log.append("usage")

        @deferred
        async def on_closed(self, stream: ChatStream, completion: ChatCompletion) -> None:
            await asyncio.sleep(0)
            log.append("closed")

    class Plain(ChatListener):
        def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
            log.append("plain " + delta)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" fails the test
        completion = await client.chat.stream(
            model="m", messages=MESSAGES, listeners=[Decorated(), Plain()]
        )
        gc.collect()
    text = completion.choices[0].message.content or ""
    deltas = [d.choices[0].delta.content for d in map(decode_chunk, payloads(PLAIN)) if d.choices]
    expected = [f"{who} {d}" for d in deltas if d for who in ("decorated", "plain")]
    assert log == [*expected, "usage", "closed"]
    assert "".join(e.split(" ", 1)[1] for e in expected[::2]) == text


# -- closing from inside a hook, hung hooks --------------------------------------------------------


async def test_aclose_from_inside_a_hook_does_not_deadlock(
    server: LocalServer, client: Client
) -> None:
    route(server, stalling_after(FIRST_TWO))

    class Closer(Recorder):
        async def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
            await stream.aclose()

    listener = Closer()
    stream = client.chat.stream(model="m", messages=MESSAGES, listeners=[listener])
    with pytest.raises(StreamCancelled):
        await asyncio.wait_for(stream, 5)
    assert [type(e) for e in listener.failures] == [StreamCancelled]
    await asyncio.wait_for(server.disconnected.wait(), 5)


async def test_cancel_ends_a_stream_whose_hook_hangs(server: LocalServer, client: Client) -> None:
    route(server, stalling_after(FIRST_TWO))
    entered = asyncio.Event()

    class Hangs(Recorder):
        async def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
            entered.set()
            await hang()

    hung, other = Hangs(), Recorder()
    stream = client.chat.stream(model="m", messages=MESSAGES, listeners=[hung, other])
    await asyncio.wait_for(entered.wait(), 5)
    await asyncio.wait_for(stream.aclose(), 5)
    with pytest.raises(StreamCancelled):
        await stream
    assert [type(e) for e in hung.failures] == [StreamCancelled]
    assert [type(e) for e in other.failures] == [StreamCancelled]
    assert hung.closed == other.closed == []


async def test_cancel_ends_a_hung_terminal_hook_and_reaches_every_listener(
    server: LocalServer, client: Client
) -> None:
    route(server, serving(FIRST_TWO, b"event: error\ndata: {}\n\n"))
    entered = asyncio.Event()

    class Hangs(Recorder):
        async def on_failure(self, stream: ChatStream, error: BaseException) -> None:
            self.failures.append(error)
            entered.set()
            await hang()

    first, hung, last = Recorder(), Hangs(), Recorder()
    stream = client.chat.stream(model="m", messages=MESSAGES, listeners=[first, hung, last])
    await asyncio.wait_for(entered.wait(), 5)
    await asyncio.wait_for(stream.aclose(), 5)
    with pytest.raises(StreamError):
        await stream
    for listener in (first, hung, last):
        assert [type(e) for e in listener.failures] == [StreamError]


# -- misuse caught at the call -------------------------------------------------------------------


async def test_a_non_listener_is_rejected_at_the_call(server: LocalServer, client: Client) -> None:
    route(server, serving(sse_bytes(PLAIN)))
    with pytest.raises(TypeError, match=r"42 \(int\) is not a listener: it has none of the hooks"):
        client.chat.stream(model="m", messages=MESSAGES, listeners=[42])
    assert server.requests == []


async def test_a_misspelled_hook_warns_with_the_closest_hook(
    server: LocalServer, client: Client
) -> None:
    route(server, serving(sse_bytes(PLAIN)))

    class Misspelled(ChatListener):
        def on_contnet(self, stream: ChatStream, delta: str, index: int) -> None:
            pass

    with pytest.warns(ListenerHookWarning, match=r"Misspelled\.on_contnet .*on_content\?") as w:
        stream = client.chat.stream(model="m", messages=MESSAGES, listeners=[Misspelled()])
    assert w[0].filename == __file__  # points at the user's call
    await stream


async def test_a_hook_with_the_wrong_signature_is_rejected_at_the_call(
    server: LocalServer, client: Client
) -> None:
    route(server, serving(sse_bytes(PLAIN)))

    class OldStyle(ChatListener):
        def on_open(self, stream: ChatStream, response: Any) -> None:  # type: ignore[override]
            pass

    for _ in range(2):  # checked once per class, rejected every time
        with pytest.raises(
            TypeError, match=r"OldStyle\.on_open cannot be called as on_open\(stream\)"
        ):
            client.chat.stream(model="m", messages=MESSAGES, listeners=[OldStyle()])
    assert server.requests == []


# -- metrics and messages ------------------------------------------------------------------------


async def test_an_empty_body_says_no_chunk_arrived(server: LocalServer, client: Client) -> None:
    route(server, serving(b": nothing here\n\n"))
    with pytest.raises(IncompleteStreamError, match="before any chunk arrived"):
        await client.chat.stream(model="m", messages=MESSAGES)


async def test_tokens_per_second_only_when_measurable(server: LocalServer, client: Client) -> None:
    events = [b"data: " + p.encode() + b"\n\n" for p in payloads(PLAIN)]
    route(server, serving(b"".join(events)))
    tiny = client.chat.stream(model="m", messages=MESSAGES)
    await tiny
    assert tiny.metrics.completion_tokens is not None and tiny.metrics.completion_tokens > 1
    assert tiny.metrics.tokens_per_second is None  # all in one read: no measurable speed

    async def paced(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in events:
            await response.write(event)
            await asyncio.sleep(0.02)  # the pace under test, not synchronisation
        await response.write_eof()
        return response

    route(server, paced)
    stream = client.chat.stream(model="m", messages=MESSAGES)
    await stream
    metrics = stream.metrics
    assert metrics.completion_tokens is not None and metrics.duration is not None
    assert metrics.time_to_first_token is not None
    rate = metrics.tokens_per_second
    span = metrics.duration - metrics.time_to_first_token
    assert rate == pytest.approx((metrics.completion_tokens - 1) / span)
    assert rate < metrics.completion_tokens / 0.02  # bounded by the pace, not by one read
