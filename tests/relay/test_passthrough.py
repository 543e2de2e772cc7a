"""The pass-through: the official openai client through the relay, and disconnects upstream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest
from aiohttp import web

from openai_sse.relay import Relay
from openai_sse.testing import Fault, MockServer, Reply

from ..servers import LocalServer
from .conftest import UPSTREAM_KEY, free_port
from .helpers import CHAT, events

TOKEN = "relay-token-for-the-official-client"


@pytest.fixture
async def relay(upstream: MockServer) -> AsyncIterator[Relay]:
    async with Relay(upstream=upstream.base_url, api_key=UPSTREAM_KEY, token=TOKEN) as relay:
        yield relay


async def test_official_client_streams_and_creates_through_the_relay(
    relay: Relay, upstream: MockServer
) -> None:
    upstream.enqueue(Reply(text="Streamed through the relay."), Reply(text="Whole answer."))
    async with openai.AsyncOpenAI(base_url=relay.url + "/v1", api_key=TOKEN) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=CHAT["messages"], stream=True
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        completion = await client.chat.completions.create(
            model="gpt-4o-mini", messages=CHAT["messages"]
        )
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="gpt-4o-mini", messages="not a list")  # type: ignore[arg-type]
    assert "".join(pieces) == "Streamed through the relay."
    assert len(pieces) > 3  # it arrived in pieces, not as one block
    assert completion.choices[0].message.content == "Whole answer."
    for recorded in upstream.requests:
        assert recorded.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"


async def test_official_client_sees_upstream_status_errors(
    relay: Relay, upstream: MockServer
) -> None:
    upstream.enqueue(Fault.status(404, "The model 'nope' does not exist", code="model_not_found"))
    async with openai.AsyncOpenAI(base_url=relay.url + "/v1", api_key=TOKEN) as client:
        with pytest.raises(openai.NotFoundError) as caught:
            await client.chat.completions.create(model="nope", messages=CHAT["messages"])
    assert caught.value.code == "model_not_found"


async def test_leaving_before_the_first_token_cancels_the_upstream(
    http: aiohttp.ClientSession,
) -> None:
    arrived = asyncio.Event()

    async def hold(request: web.Request) -> web.StreamResponse:
        arrived.set()
        await asyncio.Event().wait()  # never answers; only a disconnect ends this
        raise AssertionError("unreachable")

    async with (
        LocalServer({"/v1/chat/completions": hold}) as server,
        Relay(upstream=server.url("/v1"), api_key=UPSTREAM_KEY) as relay,
    ):
        request = asyncio.create_task(
            http.post(relay.url + "/v1/chat/completions", json={**CHAT, "stream": True})
        )
        await asyncio.wait_for(arrived.wait(), 2)
        request.cancel()  # the browser goes away while the upstream is still thinking
        with pytest.raises(asyncio.CancelledError):
            await request
        await asyncio.wait_for(server.disconnected.wait(), 2)


async def test_leaving_mid_answer_cancels_the_upstream(
    relay: Relay, upstream: MockServer, http: aiohttp.ClientSession
) -> None:
    upstream.enqueue(Reply(text=" ".join(["token"] * 200)))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = {**CHAT, "stream": True}
    async with http.post(relay.url + "/v1/chat/completions", json=body, headers=headers) as r:
        assert r.headers["X-Accel-Buffering"] == "no"
        async for _ in events(r):
            break
    await upstream.wait_disconnect(timeout=2)
    assert upstream.disconnects == 1


async def test_unreachable_upstream_is_a_502(http: aiohttp.ClientSession) -> None:
    upstream = f"http://127.0.0.1:{free_port()}/v1"
    async with (
        Relay(upstream=upstream, api_key=UPSTREAM_KEY) as relay,
        http.post(relay.url + "/v1/chat/completions", json=CHAT) as reply,
    ):
        assert reply.status == 502
        error = (await reply.json())["error"]
    assert error["type"] == "upstream_error"
    assert UPSTREAM_KEY not in error["message"]


async def test_official_client_uses_the_responses_api_through_the_relay(
    relay: Relay, upstream: MockServer
) -> None:
    upstream.enqueue(Reply(text="Responses through the relay."))
    async with openai.AsyncOpenAI(base_url=relay.url + "/v1", api_key=TOKEN) as client:
        stream = await client.responses.create(model="gpt-4o-mini", input="Hi", stream=True)
        seen = [event async for event in stream]
    deltas = [e.delta for e in seen if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Responses through the relay."
    assert seen[-1].type == "response.completed"
    assert seen[-1].response.output_text == "Responses through the relay."
    assert upstream.requests[-1].path == "/v1/responses"
