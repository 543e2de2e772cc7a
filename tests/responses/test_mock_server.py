"""client.responses against the embedded MockServer: every kind of reply and fault."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from openai_sse import Client, IncompleteStreamError, StreamError
from openai_sse.responses import Response, ResponseListener, ResponseStream
from openai_sse.testing import Fault, MockServer, Reply, ToolCall

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


class Collect(ResponseListener):
    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.refusal: list[str] = []
        self.calls: list[Any] = []
        self.sequence: list[int | None] = []

    def on_event(self, stream: ResponseStream, event: Any) -> None:
        self.sequence.append(event.sequence_number)

    def on_content(self, stream: ResponseStream, delta: str, index: int) -> None:
        self.text.append(delta)

    def on_reasoning(self, stream: ResponseStream, delta: str, index: int) -> None:
        self.reasoning.append(delta)

    def on_refusal(self, stream: ResponseStream, delta: str, index: int) -> None:
        self.refusal.append(delta)

    def on_tool_call(self, stream: ResponseStream, call: Any, index: int) -> None:
        self.calls.append(call)


@pytest.fixture
async def client() -> AsyncIterator[tuple[MockServer, Client]]:
    async with (
        MockServer(delay=0) as server,
        Client(api_key="sk-test", base_url=server.base_url, max_retries=0) as client,
    ):
        yield server, client


async def _stream(client: Client, **params: Any) -> tuple[Response, Collect]:
    collect = Collect()
    response = await client.responses.stream(
        model="gpt-4o-mini", input=params.pop("input", "Hello"), listeners=[collect], **params
    )
    return response, collect


async def test_text_reasoning_refusal_and_tool_calls(client: tuple[MockServer, Client]) -> None:
    server, c = client
    response, seen = await _stream(c)
    assert response.status == "completed"
    assert response.output_text == "".join(seen.text) and response.output_text
    assert seen.sequence == list(range(len(seen.sequence)))

    server.enqueue(Reply(reasoning="Let me think.", text="Fine."))
    response, seen = await _stream(c)
    assert "".join(seen.reasoning) == "Let me think." == response.output[0].summary[0].text  # type: ignore[union-attr]
    assert response.output_text == "Fine."

    server.enqueue(Reply(refusal="I can't help with that."))
    response, seen = await _stream(c)
    assert "".join(seen.refusal) == "I can't help with that."

    server.enqueue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]))
    response, seen = await _stream(c, tools=[WEATHER])
    (call,) = seen.calls
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert response.output == [call]


async def test_incomplete_at_max_output_tokens(client: tuple[MockServer, Client]) -> None:
    _, c = client
    response, seen = await _stream(c, max_output_tokens=3)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "".join(seen.text)


async def test_error_event_then_response_failed(client: tuple[MockServer, Client]) -> None:
    server, c = client
    server.enqueue(Fault.error_after(4, "You exceeded your quota.", code="insufficient_quota"))
    stream = c.responses.stream(model="gpt-4o-mini", input="Hello")
    with pytest.raises(StreamError) as info:
        await stream
    assert info.value.code == "insufficient_quota"
    assert info.value.message == "You exceeded your quota."
    failed = info.value.snapshot
    assert isinstance(failed, Response) and failed.status == "failed"


async def test_no_terminal_event_is_incomplete(client: tuple[MockServer, Client]) -> None:
    server, c = client
    server.enqueue(Fault.no_done())
    with pytest.raises(IncompleteStreamError) as info:
        await c.responses.stream(model="gpt-4o-mini", input="Hello")
    assert info.value.snapshot.output_text  # type: ignore[union-attr]


async def test_dropped_background_stream_resumes(client: tuple[MockServer, Client]) -> None:
    server, c = client
    server.enqueue(Fault.drop_after(5))
    response, seen = await _stream(c, background=True, resume=True)
    assert response.status == "completed"
    assert seen.sequence == list(range(len(seen.sequence)))
    assert response.output_text == "".join(seen.text)
    assert response.output_text.startswith("Hello! I'm an offline")


async def test_create_and_follow_a_stored_response(client: tuple[MockServer, Client]) -> None:
    _, c = client
    created = await c.responses.create(model="gpt-4o-mini", input="Hi")
    assert created.status == "completed" and created.output_text.startswith("Hi! I'm an offline")
    started = await c.responses.create(model="gpt-4o-mini", input="Hello", background=True)
    assert started.status == "queued"
    seen = Collect()
    followed = await c.responses.stream(response_id=started.id, starting_after=3, listeners=[seen])
    assert seen.sequence[0] == 4
    assert followed.status == "completed" and followed.id == started.id
