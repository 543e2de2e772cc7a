"""Every MockServer fault, through Client, ends in the right typed error with the partial answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from openai_sse import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ChatListener,
    ChatStream,
    Client,
    IncompleteStreamError,
    ProtocolError,
    RateLimitError,
    StreamCancelled,
    StreamError,
    Timeout,
)
from openai_sse.testing import Fault, MockServer, Raw, Reply

from .fixtures import payloads

MESSAGES = [{"role": "user", "content": "hello there"}]
WORDS = ["One", " two", " three", " four", " five", " six"]


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer(delay=0) as s:
        yield s


async def failure(server: MockServer, fault: Fault, **options: object) -> BaseException:
    server.enqueue(Reply(WORDS, fault=fault))
    async with Client("k", base_url=server.base_url, max_retries=0, **options) as client:  # type: ignore[arg-type]
        stream = client.chat.stream(model="gpt-test", messages=MESSAGES)
        with pytest.raises(Exception) as caught:
            await stream
        await stream.aclose()
    return caught.value


def partial(error: BaseException) -> str:
    assert error.snapshot is not None  # type: ignore[attr-defined]
    return error.snapshot.choices[0].message.content or ""  # type: ignore[attr-defined]


async def test_status_fault(server: MockServer) -> None:
    error = await failure(server, Fault.status(429, "Too many", retry_after=1))
    assert isinstance(error, RateLimitError)
    assert error.status_code == 429
    assert "Too many" in str(error)
    assert error.response is not None
    assert error.response.headers["Retry-After"] == "1"


async def test_status_fault_is_retried(server: MockServer) -> None:
    server.enqueue(Reply(WORDS, fault=Fault.status(503, retry_after_ms=5)), Reply(WORDS))
    async with Client("k", base_url=server.base_url, max_retries=1) as client:
        completion = await client.chat.stream(model="gpt-test", messages=MESSAGES)
    assert completion.choices[0].message.content == "".join(WORDS)
    assert len(server.requests) == 2


async def test_auth_like_openai() -> None:
    async with (
        MockServer(delay=0, api_key="right") as server,
        Client("wrong", base_url=server.base_url, max_retries=0) as client,
    ):
        with pytest.raises(AuthenticationError) as caught:
            await client.chat.stream(model="gpt-test", messages=MESSAGES)
    assert caught.value.status_code == 401
    assert caught.value.body["error"]["code"] == "invalid_api_key"


async def test_delay_before_headers_times_out(server: MockServer) -> None:
    error = await failure(server, Fault.delay_headers(5), timeout=Timeout(first_event=0.2))
    assert isinstance(error, APITimeoutError)
    assert error.phase == "first_event"
    await server.wait_disconnect(5)


async def test_stall_mid_stream_times_out_keeping_partial(server: MockServer) -> None:
    error = await failure(server, Fault.stall_after(3), timeout=Timeout(idle=0.2))
    assert isinstance(error, APITimeoutError)
    assert error.phase == "idle"
    assert partial(error) == "".join(WORDS[:2])  # chunk 1 is the role chunk
    await server.wait_disconnect(5)


async def test_drop_after_k_chunks(server: MockServer) -> None:
    error = await failure(server, Fault.drop_after(3))
    assert isinstance(error, APIConnectionError)
    assert not isinstance(error, APITimeoutError)
    assert partial(error) == "".join(WORDS[:2])


async def test_malformed_chunk(server: MockServer) -> None:
    error = await failure(server, Fault.malformed_after(2, data='{"broken": '))
    assert isinstance(error, ProtocolError)
    assert '{"broken": ' in str(error)
    assert partial(error) == WORDS[0]


async def test_error_payload_mid_stream(server: MockServer) -> None:
    error = await failure(server, Fault.error_after(3, "model overloaded", type="server_error"))
    assert isinstance(error, StreamError)
    assert error.message == "model overloaded"
    assert error.type == "server_error"
    assert partial(error) == "".join(WORDS[:2])


async def test_no_done_after_finish_completes(server: MockServer) -> None:
    server.enqueue(Reply(WORDS, fault=Fault.no_done()))
    async with Client("k", base_url=server.base_url) as client:
        completion = await client.chat.stream(model="gpt-test", messages=MESSAGES)
    assert completion.choices[0].message.content == "".join(WORDS)


async def test_stream_ended_cleanly_before_finish_is_incomplete(server: MockServer) -> None:
    server.enqueue(Raw.from_chunks(payloads("01_openai_plain_content_usage.sse")[:4], done=False))
    async with Client("k", base_url=server.base_url, max_retries=0) as client:
        stream = client.chat.stream(model="gpt-test", messages=MESSAGES)
        with pytest.raises(IncompleteStreamError) as caught:
            await stream
    assert partial(caught.value) == "I'm unable to"


async def test_oversized_event(server: MockServer) -> None:
    error = await failure(server, Fault.oversized_after(2, 4096), max_event_size=1024)
    assert isinstance(error, ProtocolError)
    assert "max_event_size" in str(error)
    assert partial(error) == WORDS[0]


async def test_wrong_content_type(server: MockServer) -> None:
    error = await failure(server, Fault.wrong_content_type("application/json", body="{}"))
    assert isinstance(error, ProtocolError)
    assert str(error).startswith("Invalid content-type: application/json")


async def test_cancel_mid_answer_observed_by_server(server: MockServer) -> None:
    server.enqueue(Reply(WORDS, fault=Fault.stall_after(3)))
    seen: list[str] = []

    class Stop(ChatListener):
        def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
            seen.append(delta)
            if len(seen) == 2:
                stream.cancel()

    async with Client("k", base_url=server.base_url) as client:
        stream = client.chat.stream(model="gpt-test", messages=MESSAGES, listeners=[Stop()])
        with pytest.raises(StreamCancelled):
            await stream
        await server.wait_disconnect(5)
        await stream.aclose()
    assert seen == WORDS[:2]
    assert stream.snapshot.choices[0].message.content == "".join(WORDS[:2])
    await server.wait_idle(5)
    assert server.open_streams == 0


async def test_no_retry_once_a_chunk_reached_listeners(server: MockServer) -> None:
    server.enqueue(Reply(WORDS, fault=Fault.drop_after(1)), Reply(WORDS))
    chunks: list[object] = []

    class Count(ChatListener):
        def on_chunk(self, stream: ChatStream, chunk: object) -> None:
            chunks.append(chunk)

    async with Client("k", base_url=server.base_url, max_retries=2) as client:
        stream = client.chat.stream(model="gpt-test", messages=MESSAGES, listeners=[Count()])
        with pytest.raises(APIConnectionError):
            await stream
    assert len(server.requests) == 1  # the role chunk was delivered: nothing is replayed
    assert len(chunks) == stream.metrics.chunks == 1
    assert stream.metrics.retries == 0
