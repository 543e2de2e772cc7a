"""ResponseStream through the client against real local servers, fed the real recordings in
random small reads: outcomes, hooks, iteration, cancel, and the other provider's framing."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import msgspec
import pytest
from aiohttp import web

from openai_sse import (
    ChatListener,
    Client,
    IncompleteStreamError,
    ProtocolError,
    StreamCancelled,
    StreamError,
)
from openai_sse.responses import GenericEvent, Response, ResponseListener, ResponseStream
from openai_sse.responses import events as ev

from ..fixtures import sse_bytes
from ..servers import LocalServer, sse_response, stalling_after
from .recordings import (
    body,
    events_of,
    matches,
    names,
    pieces,
    terminal_object,
    without_event_lines,
)

COMPLETED = [
    n for n in names() if (terminal_object(n) or {}).get("status") in ("completed", "incomplete")
]


class Recorder(ResponseListener):
    """Everything a listener is told, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.events: list[Any] = []
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.refusal: list[str] = []
        self.tool_calls: list[tuple[Any, int]] = []
        self.usage: list[Any] = []
        self.closed: list[Response] = []
        self.failures: list[BaseException] = []

    def on_open(self, stream: ResponseStream) -> None:
        self.calls.append("open")

    def on_event(self, stream: ResponseStream, event: Any) -> None:
        self.events.append(event)

    def on_content(self, stream: ResponseStream, delta: str, index: int) -> None:
        self.content.append(delta)

    def on_refusal(self, stream: ResponseStream, delta: str, index: int) -> None:
        self.refusal.append(delta)

    def on_reasoning(self, stream: ResponseStream, delta: str, index: int) -> None:
        self.reasoning.append(delta)

    def on_tool_call(self, stream: ResponseStream, call: Any, index: int) -> None:
        self.tool_calls.append((call, index))

    def on_usage(self, stream: ResponseStream, usage: Any) -> None:
        self.usage.append(usage)

    def on_closed(self, stream: ResponseStream, response: Response) -> None:
        self.calls.append("closed")
        self.closed.append(response)

    def on_failure(self, stream: ResponseStream, error: BaseException) -> None:
        self.calls.append("failure")
        self.failures.append(error)


def _in_pieces(raw: bytes, seed: int) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, *pieces(raw, random.Random(seed)))

    return handler


@pytest.mark.parametrize("name", COMPLETED)
async def test_recording_streams_to_the_servers_own_object(server: LocalServer, name: str) -> None:
    final = terminal_object(name)
    assert final is not None
    server.route("/v1/responses", _in_pieces(body(name), seed=len(name)))
    recorder = Recorder()
    async with server.client() as client:
        stream = client.responses.stream(model="gpt-test", input="hi", listeners=[recorder])
        response = await stream
    assert response.status == final["status"]
    assert matches(msgspec.to_builtins(response.output), final["output"])
    assert response.to_dict() == final
    assert recorder.calls == ["open", "closed"]
    assert recorder.closed == [response]
    assert "".join(recorder.content) == response.output_text
    assert len(recorder.events) == stream.metrics.chunks == len(events_of(name))
    assert recorder.usage == [response.usage]
    calls = [item for item in response.output if item.type == "function_call"]
    assert [call for call, _ in recorder.tool_calls] == calls
    sent = json.loads(server.bodies[0])
    assert sent == {"model": "gpt-test", "input": "hi", "stream": True}
    assert server.requests[0].headers["Accept"] == "text/event-stream"


async def test_reasoning_and_refusal_hooks(server: LocalServer) -> None:
    server.route("/v1/responses", _in_pieces(body("04_openai_reasoning_summary_deltas.sse"), 4))
    server.route("/v1/refusal/responses", _in_pieces(body("09_openai_refusal.sse"), 9))
    recorder = Recorder()
    async with server.client() as client:
        response = await client.responses.stream(model="m", input="x", listeners=[recorder])
        reasoning = response.output[0]
        summary = "".join(part.text for part in reasoning.summary)  # type: ignore[union-attr]
        assert "".join(recorder.reasoning) == summary
        assert len(recorder.reasoning) == 320
        refusing = Client(api_key="k", base_url=server.url("/v1/refusal"), max_retries=0)
        async with refusing:
            refused = await refusing.responses.stream(model="m", input="x", listeners=[recorder])
    part = refused.output[0].content[0]  # type: ignore[union-attr]
    assert "".join(recorder.refusal) == part.refusal  # type: ignore[union-attr]
    assert refused.status == "completed"


async def test_error_event_without_terminal_fails_with_stream_error(server: LocalServer) -> None:
    name = "11_openai_error_event_then_response_failed.sse"
    server.route("/v1/responses", _in_pieces(body(name), 11))
    recorder = Recorder()
    async with server.client() as client:
        stream = client.responses.stream(model="m", input="x", listeners=[recorder])
        with pytest.raises(StreamError) as info:
            await stream
    error = info.value
    assert error.code == "insufficient_quota"
    assert error.type == "insufficient_quota"
    assert "exceeded your current quota" in error.message
    assert recorder.calls == ["open", "failure"]
    assert recorder.failures == [error]
    assert error.snapshot is stream.snapshot
    assert stream.snapshot.id.startswith("resp_0265")


async def test_response_failed_carries_the_servers_object(server: LocalServer) -> None:
    """The same recording with its last event terminated: the error gets the failed object."""
    raw = body("11_openai_error_event_then_response_failed.sse") + b"\n\n"
    server.route("/v1/responses", _in_pieces(raw, 3))
    async with server.client() as client:
        stream = client.responses.stream(model="m", input="x")
        with pytest.raises(StreamError) as info:
            await stream
    error = info.value
    assert error.code == "insufficient_quota"
    failed = error.snapshot
    assert isinstance(failed, Response)
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.code == "insufficient_quota"
    assert error.body["response.failed"]["response"]["status"] == "failed"
    assert isinstance(error.response, Response) and error.response.status == "failed"
    assert error.response.error is not None
    assert error.response.error.code == "insufficient_quota"


async def test_response_failed_alone(server: LocalServer) -> None:
    failed = {
        "type": "response.failed",
        "sequence_number": 1,
        "response": {
            "id": "r1",
            "status": "failed",
            "output": [],
            "error": {"code": "server_error", "message": "It broke."},
        },
    }
    raw = b"event: response.failed\ndata: " + json.dumps(failed).encode() + b"\n\n"
    server.route("/v1/responses", _in_pieces(raw, 1))
    async with server.client() as client:
        with pytest.raises(StreamError) as info:
            await client.responses.stream(model="m", input="x")
    assert (info.value.code, info.value.message) == ("server_error", "It broke.")
    assert info.value.snapshot.status == "failed"  # type: ignore[union-attr]
    assert isinstance(info.value.response, Response) and info.value.response.id == "r1"


async def test_flat_error_event_then_silence_fails_after_a_short_wait(server: LocalServer) -> None:
    error = {"type": "error", "sequence_number": 0, "code": "rate_limit", "message": "Slow down"}
    server.route("/v1/responses", stalling_after(b"data: " + json.dumps(error).encode() + b"\n\n"))
    async with server.client() as client:
        request = client._request("responses", {"model": "m"})
        stream = ResponseStream(client._connect(request, None), drain_timeout=0.05)
        with pytest.raises(StreamError) as info:
            await stream
        await asyncio.wait_for(server.disconnected.wait(), 5)
    assert (info.value.code, info.value.message) == ("rate_limit", "Slow down")


async def test_other_provider_without_event_lines_ending_with_done(server: LocalServer) -> None:
    name = "02_openai_function_call_single.sse"
    raw = without_event_lines(body(name)) + b"data: [DONE]\n\n"
    assert b"event:" not in raw
    server.route("/v1/responses", _in_pieces(raw, 2))
    recorder = Recorder()
    async with server.client() as client:
        response = await client.responses.stream(model="m", input="x", listeners=[recorder])
    assert response.to_dict() == terminal_object(name)
    call, index = recorder.tool_calls[0]
    assert (call.name, json.loads(call.arguments), index) == ("multiply", {"a": 1231, "b": 2331}, 0)


async def test_done_before_a_terminal_event_is_incomplete(server: LocalServer) -> None:
    blocks = events_of("01_openai_text_emoji_no_sequence_number.sse")
    raw = without_event_lines(b"".join(blocks[:-1])) + b"data: [DONE]\n\n"
    server.route("/v1/responses", _in_pieces(raw, 5))
    async with server.client() as client:
        stream = client.responses.stream(model="m", input="x")
        with pytest.raises(IncompleteStreamError) as info:
            await stream
    assert info.value.snapshot.output_text == "Hello! 🌍 How can I assist you today?"  # type: ignore[union-attr]


async def test_connection_ending_without_terminal_event_keeps_the_snapshot(
    server: LocalServer,
) -> None:
    blocks = events_of("10_openai_incomplete_max_output_tokens.sse")
    server.route("/v1/responses", _in_pieces(b"".join(blocks[:12]), 6))
    recorder = Recorder()
    async with server.client() as client:
        stream = client.responses.stream(model="m", input="x", listeners=[recorder])
        with pytest.raises(IncompleteStreamError) as info:
            await stream
    partial = info.value.snapshot
    assert isinstance(partial, Response)
    assert partial.output_text == "".join(recorder.content)
    assert partial.output_text.startswith("In the bustling city")
    assert recorder.calls == ["open", "failure"]


async def test_malformed_event_is_a_protocol_error(server: LocalServer) -> None:
    server.route("/v1/responses", _in_pieces(b"data: oops\n\n", 1))
    async with server.client() as client:
        with pytest.raises(ProtocolError):
            await client.responses.stream(model="m", input="x")


async def test_iteration_yields_typed_and_unknown_events(server: LocalServer) -> None:
    name = "01_openai_text_emoji_no_sequence_number.sse"
    blocks = events_of(name)
    novel = b'event: response.hologram\ndata: {"type":"response.hologram","beam":1}\n\n'
    server.route("/v1/responses", _in_pieces(b"".join([*blocks[:3], novel, *blocks[3:]]), 7))
    async with server.client() as client:
        stream = client.responses.stream(model="m", input="x")
        seen = [event async for event in stream]
        response = await stream
    assert isinstance(seen[0], ev.ResponseCreatedEvent)
    assert isinstance(seen[3], GenericEvent) and seen[3].data["beam"] == 1
    assert isinstance(seen[-1], ev.ResponseCompletedEvent)
    assert response is seen[-1].response
    assert stream.metrics.time_to_first_token is not None
    assert stream.metrics.completion_tokens == response.usage.output_tokens  # type: ignore[union-attr]


async def test_cancel_keeps_the_partial_snapshot_and_closes_the_connection(
    server: LocalServer,
) -> None:
    blocks = events_of("10_openai_incomplete_max_output_tokens.sse")
    server.route("/v1/responses", stalling_after(*blocks[:10]))
    recorder = Recorder()

    class Stopper(ResponseListener):
        def on_content(self, stream: ResponseStream, delta: str, index: int) -> None:
            if len(recorder.content) == 3:
                stream.cancel()

    async with server.client() as client:
        stream = client.responses.stream(model="m", input="x", listeners=[recorder, Stopper()])
        with pytest.raises(StreamCancelled):
            await stream
        await asyncio.wait_for(server.disconnected.wait(), 5)
    assert stream.snapshot.output_text == "".join(recorder.content)
    assert len(recorder.content) == 3
    assert recorder.calls == ["open", "failure"]
    assert isinstance(recorder.failures[0], StreamCancelled)


async def test_one_listener_class_observes_chat_and_responses(server: LocalServer) -> None:
    class Both:
        """Hooks with the same names and meaning in both APIs."""

        def __init__(self) -> None:
            self.opened = 0
            self.text: list[str] = []
            self.results: list[Any] = []

        def on_open(self, stream: Any) -> None:
            self.opened += 1

        def on_content(self, stream: Any, delta: str, index: int) -> None:
            self.text.append(delta)

        def on_closed(self, stream: Any, result: Any) -> None:
            self.results.append(result)

        def on_failure(self, stream: Any, error: BaseException) -> None:
            raise AssertionError(error)

    class BothSubclassed(ChatListener, ResponseListener):  # type: ignore[misc]
        def on_content(self, stream: Any, delta: str, index: int) -> None:
            both.text.append(delta)

    server.route(
        "/v1/responses", _in_pieces(body("01_openai_text_emoji_no_sequence_number.sse"), 1)
    )
    chat_raw = sse_bytes("01_openai_plain_content_usage.sse")
    server.route("/v1/chat/completions", _in_pieces(chat_raw, 1))
    both = Both()
    async with server.client() as client:
        response = await client.responses.stream(model="m", input="x", listeners=[both])
        completion = await client.chat.stream(
            model="m", messages=[{"role": "user", "content": "x"}], listeners=[both]
        )
        await client.responses.stream(model="m", input="x", listeners=[BothSubclassed()])
        await client.chat.stream(
            model="m", messages=[{"role": "user", "content": "x"}], listeners=[BothSubclassed()]
        )
    chat_text = completion.choices[0].message.content or ""
    assert both.opened == 2
    assert both.results == [response, completion]
    twice = response.output_text + chat_text
    assert "".join(both.text) == twice + twice


async def test_listener_that_raises_does_not_disturb_the_stream(server: LocalServer) -> None:
    class Broken(ResponseListener):
        def on_content(self, stream: ResponseStream, delta: str, index: int) -> None:
            raise RuntimeError("listener bug")

    server.route(
        "/v1/responses", _in_pieces(body("01_openai_text_emoji_no_sequence_number.sse"), 1)
    )
    recorder = Recorder()
    async with server.client() as client:
        response = await client.responses.stream(
            model="m", input="x", listeners=[Broken(), recorder]
        )
    assert "".join(recorder.content) == response.output_text


async def test_async_hooks_are_awaited_in_order(server: LocalServer) -> None:
    order: list[str] = []

    class Slow(ResponseListener):
        async def on_content(self, stream: ResponseStream, delta: str, index: int) -> None:
            await asyncio.sleep(0)
            order.append(delta)

    server.route(
        "/v1/responses", _in_pieces(body("01_openai_text_emoji_no_sequence_number.sse"), 8)
    )
    async with server.client() as client:
        response = await client.responses.stream(model="m", input="x", listeners=[Slow()])
    assert "".join(order) == response.output_text


async def test_repeated_sequence_numbers_lose_nothing_without_a_resume(
    server: LocalServer,
) -> None:
    """A compatible server that numbers every event 0 still delivers them all."""
    name = "01_openai_text_emoji_no_sequence_number.sse"
    raw = b"".join(
        block.replace(b'data: {"type":', b'data: {"sequence_number":0,"type":')
        for block in events_of(name)
    )
    server.route("/v1/responses", _in_pieces(raw, 12))
    recorder = Recorder()
    async with server.client() as client:
        response = await client.responses.stream(model="m", input="x", listeners=[recorder])
    assert {e.sequence_number for e in recorder.events} == {0}
    assert len(recorder.events) == len(events_of(name))
    assert (
        response.output_text == "".join(recorder.content) == "Hello! 🌍 How can I assist you today?"
    )


async def test_a_refusal_before_any_event_is_retried(server: LocalServer) -> None:
    name = "01_openai_text_emoji_no_sequence_number.sse"
    attempts: list[int] = []

    async def busy_then_stream(request: web.Request) -> web.StreamResponse:
        attempts.append(1)
        if len(attempts) == 1:
            return web.json_response(
                {"error": {"message": "Slow down", "code": "rate_limit_exceeded"}},
                status=429,
                headers={"retry-after-ms": "10"},
            )
        return await sse_response(request, body(name))

    server.route("/v1/responses", busy_then_stream)
    recorder = Recorder()
    async with Client(api_key="k", base_url=server.url("/v1"), max_retries=1) as client:
        stream = client.responses.stream(model="m", input="x", listeners=[recorder])
        response = await stream
    assert len(attempts) == 2 and stream.metrics.retries == 1
    assert recorder.calls == ["open", "closed"]
    assert response.output_text == "Hello! 🌍 How can I assist you today?"


async def test_a_call_without_its_item_done_is_reported_at_the_end(server: LocalServer) -> None:
    """A compatible server that skips output_item.done still reports the complete call."""
    name = "02_openai_function_call_single.sse"
    blocks = [b for b in events_of(name) if b"response.output_item.done" not in b]
    server.route("/v1/responses", _in_pieces(b"".join(blocks), 13))
    recorder = Recorder()
    async with server.client() as client:
        response = await client.responses.stream(model="m", input="x", listeners=[recorder])
    assert [(call, index) for call, index in recorder.tool_calls] == [(response.output[0], 0)]
    assert recorder.tool_calls[0][0].arguments == '{"a":1231,"b":2331}'
