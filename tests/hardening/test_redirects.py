"""Redirects: followed within the origin only; nothing reaches another origin."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from openai_sse import Client, RedirectError

from ..fixtures import sse_bytes
from ..servers import LocalServer, sse_response

MESSAGES = [{"role": "user", "content": "the secret prompt"}]
PLAIN = sse_bytes("01_openai_plain_content_usage.sse")
CODES = [301, 302, 303, 307, 308]
COMPLETION = {
    "id": "c",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
}


def redirect(status: int, location: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": location})

    return handler


async def answer(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Accept") == "text/event-stream":
        return await sse_response(request, PLAIN)
    return web.json_response(COMPLETION)


@pytest.fixture
async def origin() -> AsyncIterator[LocalServer]:
    async with LocalServer() as server:
        yield server


def client_for(server: LocalServer) -> Client:
    return Client(
        "sk-redirect-secret",
        base_url=server.url("/v1"),
        organization="org-secret",
        project="proj-secret",
        default_headers={"api-key": "azure-secret"},
        max_retries=2,
    )


async def call(client: Client, api: str) -> Any:
    if api == "stream":
        return await client.chat.stream(model="m", messages=MESSAGES)
    return await client.chat.create(model="m", messages=MESSAGES)


@pytest.mark.parametrize("api", ["stream", "create"])
@pytest.mark.parametrize("elsewhere", ["127.0.0.1", "127.0.0.2"], ids=["port", "host"])
@pytest.mark.parametrize("code", CODES)
async def test_cross_origin_redirect_is_refused_and_sends_nothing_there(
    origin: LocalServer, code: int, elsewhere: str, api: str
) -> None:
    async with LocalServer(host=elsewhere) as other:
        other.route("/v1/chat/completions", answer)
        target = other.url("/v1/chat/completions?sig=sas-secret&x=1")
        origin.route("/v1/chat/completions", redirect(code, target))
        async with client_for(origin) as client:
            with pytest.raises(RedirectError) as caught:
                await call(client, api)
    assert other.requests == []  # no header, no body, no connection at all
    assert len(origin.requests) == 1  # a redirect is an answer: never retried
    error = caught.value
    assert error.status_code == code
    assert f"{elsewhere}:{other.port}" in error.location and "x=1" in error.location
    assert "sas-secret" not in str(error) + error.location + repr(error)
    assert "sig=***" in error.location


@pytest.mark.parametrize("api", ["stream", "create"])
@pytest.mark.parametrize("code", [307, 308])
async def test_same_origin_307_308_resend_method_body_and_credentials(
    origin: LocalServer, code: int, api: str
) -> None:
    origin.route("/v1/chat/completions", redirect(code, "/v1/moved/chat/completions"))
    origin.route("/v1/moved/chat/completions", answer)
    async with client_for(origin) as client:
        await call(client, api)
    moved = origin.requests[1]
    assert moved.method == "POST"
    assert json.loads(origin.bodies[1])["messages"] == MESSAGES
    assert moved.headers["api-key"] == "azure-secret"


@pytest.mark.parametrize("code", [301, 302, 303])
async def test_same_origin_301_302_303_turn_a_post_into_a_get_without_body(
    origin: LocalServer, code: int
) -> None:
    async def get_only(request: web.Request) -> web.StreamResponse:
        assert request.method == "GET"
        return await sse_response(request, PLAIN)

    origin.route("/v1/chat/completions", redirect(code, origin.url("/v1/feed")))
    origin.route("/v1/feed", get_only)
    async with client_for(origin) as client:
        completion = await client.chat.stream(model="m", messages=MESSAGES)
    assert completion.choices[0].message.content
    assert origin.requests[1].method == "GET"
    assert origin.bodies[1] == b""
    assert "Content-Type" not in origin.requests[1].headers


async def test_redirect_loop_is_bounded(origin: LocalServer) -> None:
    origin.route("/v1/chat/completions", redirect(307, "/v1/chat/completions"))
    async with client_for(origin) as client:
        with pytest.raises(RedirectError, match="More than 5 redirects"):
            await client.chat.create(model="m", messages=MESSAGES)
    assert len(origin.requests) == 6


async def test_relay_passthrough_refuses_a_cross_origin_redirect(origin: LocalServer) -> None:
    from openai_sse.relay import Relay

    async with LocalServer(host="127.0.0.2") as other:
        other.route("/v1/chat/completions", answer)
        origin.route("/v1/chat/completions", redirect(307, other.url("/v1/chat/completions")))
        async with (
            Relay(
                upstream=origin.url("/v1"), api_key="sk-upstream-secret", token="relay-token"
            ) as relay,
            aiohttp.ClientSession() as http,
        ):
            response = await http.post(
                relay.url + "/v1/chat/completions",
                json={"model": "m", "messages": MESSAGES, "stream": True},
                headers={"Authorization": "Bearer relay-token"},
            )
            async with response:
                body = await response.text()
    assert response.status == 502
    assert "another origin" in body and "sk-upstream-secret" not in body
    assert other.requests == []
