"""Background responses: following a stored one, resuming a dropped stream, and create()."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web

from openai_sse import (
    APIConnectionError,
    BadRequestError,
    Client,
    NotFoundError,
    StreamCancelled,
)
from openai_sse.responses import Response, ResponseListener, ResponseStream

from ..servers import LocalServer, sse_response
from .recordings import events_of, payloads, terminal_object

NAME = "04_openai_reasoning_summary_deltas.sse"
BLOCKS = events_of(NAME)
FINAL = terminal_object(NAME)
RESPONSE_ID = json.loads(payloads(NAME)[0])["response"]["id"]


def _sequence(block: bytes) -> int:
    data = block.split(b"data: ", 1)[1]
    number: int = json.loads(data)["sequence_number"]
    return number


class Seen(ResponseListener):
    def __init__(self) -> None:
        self.sequence: list[int] = []
        self.opened = 0
        self.closed: list[Response] = []
        self.failures: list[BaseException] = []

    def on_open(self, stream: ResponseStream) -> None:
        self.opened += 1

    def on_event(self, stream: ResponseStream, event: Any) -> None:
        self.sequence.append(event.sequence_number)

    def on_closed(self, stream: ResponseStream, response: Response) -> None:
        self.closed.append(response)

    def on_failure(self, stream: ResponseStream, error: BaseException) -> None:
        self.failures.append(error)


def _dropping_after(blocks: list[bytes]) -> Any:
    """Writes ``blocks``, then breaks the connection without ending the body."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for block in blocks:
            await response.write(block)
        assert request.transport is not None
        request.transport.close()
        return response

    return handler


async def test_dropped_background_stream_resumes_to_the_whole_answer(server: LocalServer) -> None:
    """Two drops; each follow-up also repeats two events already seen (servers may)."""
    first, second = 40, 200
    server.route("/v1/responses", _dropping_after(BLOCKS[:first]))
    follow_ups: list[int] = []

    async def follow(request: web.Request) -> web.StreamResponse:
        assert request.query["stream"] == "true"
        after = int(request.query["starting_after"])
        follow_ups.append(after)
        rest = [b for b in BLOCKS if _sequence(b) > after - 2]  # overlap on purpose
        if len(follow_ups) == 1:
            return await _dropping_after(rest[: second - first])(request)
        return await sse_response(request, *rest)

    server.route(f"/v1/responses/{RESPONSE_ID}", follow)
    seen = Seen()
    async with server.client() as client:
        stream = client.responses.stream(
            model="gpt-5", input="x", background=True, resume=True, listeners=[seen]
        )
        response = await stream
    assert follow_ups == [first - 1, second - 3]
    assert seen.sequence == list(range(len(BLOCKS)))
    assert seen.opened == 1 and seen.closed == [response] and not seen.failures
    assert response.to_dict() == FINAL
    assert stream.metrics.retries == 2
    assert stream.last_sequence_number == len(BLOCKS) - 1
    assert json.loads(server.bodies[0])["background"] is True
    assert [r.method for r in server.requests] == ["POST", "GET", "GET"]


async def test_without_resume_a_drop_fails_with_the_partial_snapshot(server: LocalServer) -> None:
    server.route("/v1/responses", _dropping_after(BLOCKS[:40]))
    seen = Seen()
    async with server.client() as client:
        stream = client.responses.stream(model="gpt-5", input="x", listeners=[seen])
        with pytest.raises(APIConnectionError) as info:
            await stream
    assert info.value.snapshot is stream.snapshot
    assert stream.snapshot.id == RESPONSE_ID
    assert len(seen.sequence) == 40 and len(server.requests) == 1


async def test_resume_stops_on_a_status_error(server: LocalServer) -> None:
    server.route("/v1/responses", _dropping_after(BLOCKS[:10]))

    async def gone(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": {"message": "No such response"}}, status=404)

    server.route(f"/v1/responses/{RESPONSE_ID}", gone)
    async with server.client() as client:
        stream = client.responses.stream(model="m", input="x", background=True, resume=True)
        with pytest.raises(NotFoundError):
            await stream
    assert stream.snapshot.id == RESPONSE_ID


async def test_follow_a_stored_response_after_event_n(server: LocalServer) -> None:
    async def stored(request: web.Request) -> web.StreamResponse:
        after = int(request.query["starting_after"])
        return await sse_response(request, *[b for b in BLOCKS if _sequence(b) > after])

    server.route(f"/v1/responses/{RESPONSE_ID}", stored)
    seen = Seen()
    async with server.client() as client:
        response = await client.responses.stream(
            response_id=RESPONSE_ID, starting_after=300, listeners=[seen]
        )
    assert seen.sequence == list(range(301, len(BLOCKS)))
    assert response.to_dict() == FINAL
    request = server.requests[0]
    assert request.method == "GET" and not server.bodies[0]
    assert request.query["starting_after"] == "300"
    assert request.headers["Authorization"] == "Bearer sk-test"


async def test_stream_arguments_are_checked() -> None:
    async with Client(api_key="k", base_url="http://127.0.0.1:9/v1") as client:
        with pytest.raises(ValueError, match="background=True"):
            client.responses.stream(model="m", input="x", resume=True)
        with pytest.raises(TypeError):
            client.responses.stream(response_id="r", model="m")
        with pytest.raises(TypeError):
            client.responses.stream(input="x")


async def test_create_returns_the_response(server: LocalServer) -> None:
    final = terminal_object("05_openai_web_search_annotations.sse")

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.json_response(final)

    server.route("/v1/responses", answer)
    async with server.client() as client:
        response = await client.responses.create(
            model="gpt-5.2", input="Tallest mountain in Alberta?", stream=True
        )
    assert response.to_dict() == final
    assert response.output_text.startswith("The tallest mountain in Alberta")
    assert json.loads(server.bodies[0]) == {
        "model": "gpt-5.2",
        "input": "Tallest mountain in Alberta?",
    }


async def test_create_maps_status_errors(server: LocalServer) -> None:
    async def refuse(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": {"message": "Bad input"}}, status=400)

    server.route("/v1/responses", refuse)
    async with server.client() as client:
        with pytest.raises(BadRequestError, match="Bad input"):
            await client.responses.create(model="m", input="x")


async def test_client_close_cancels_a_running_stream(server: LocalServer) -> None:
    started = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(BLOCKS[0])
        started.set()
        await asyncio.get_running_loop().create_future()
        return response

    server.route("/v1/responses", slow)
    seen = Seen()
    client = server.client()
    stream = client.responses.stream(model="m", input="x", listeners=[seen])
    await asyncio.wait_for(started.wait(), 5)
    await client.close()
    assert stream.done and len(seen.failures) == 1
    await asyncio.wait_for(server.disconnected.wait(), 5)


async def test_input_items_from_any_iterable_are_sent_as_a_list(server: LocalServer) -> None:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.json_response({"id": "r", "status": "completed", "output": []})

    server.route("/v1/responses", answer)
    messages = ({"role": role, "content": text} for role, text in [("user", "a"), ("user", "b")])
    async with server.client() as client:
        await client.responses.create(model="m", input=messages, instructions="Be brief.")
        with pytest.raises(TypeError, match="input must be"):
            await client.responses.create(model="m", input=42)  # type: ignore[arg-type]
    sent = json.loads(server.bodies[0])
    assert sent["input"] == [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    assert sent["instructions"] == "Be brief."


async def test_cancel_while_following_up_a_dropped_stream(server: LocalServer) -> None:
    server.route("/v1/responses", _dropping_after(BLOCKS[:20]))
    followed = asyncio.Event()

    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        followed.set()
        await asyncio.get_running_loop().create_future()
        return response

    server.route(f"/v1/responses/{RESPONSE_ID}", stall)
    seen = Seen()
    async with server.client() as client:
        stream = client.responses.stream(
            model="m", input="x", background=True, resume=True, listeners=[seen]
        )
        await asyncio.wait_for(followed.wait(), 5)
        stream.cancel()
        with pytest.raises(StreamCancelled):
            await stream
        await asyncio.wait_for(server.disconnected.wait(), 5)
    assert len(seen.sequence) == 20 and len(seen.failures) == 1
    assert stream.snapshot.id == RESPONSE_ID
    assert server.disconnects == 1  # the follow-up (the server itself closed the first one)
