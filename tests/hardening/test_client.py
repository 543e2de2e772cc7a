"""The client under misuse and hostile servers: shutdown with work in flight, closed and
cross-loop use, deadlines across retries, capped bodies, secrets, wrong arguments."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from openai_sse import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ChatListener,
    ChatStream,
    Client,
    InternalServerError,
    OpenAISSEError,
    ProtocolError,
    StreamCancelled,
    Timeout,
)

from ..fixtures import sse_bytes
from ..servers import LocalServer, hang, sse_response, stalling_after
from .test_transport import until

MESSAGES = [{"role": "user", "content": "hi"}]
PLAIN = sse_bytes("01_openai_plain_content_usage.sse")
FIRST_CHUNK = PLAIN.split(b"\n\n")[0] + b"\n\n"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Terminals(ChatListener):
    def __init__(self) -> None:
        self.failures: list[BaseException] = []
        self.closed = 0

    def on_failure(self, stream: Any, error: BaseException) -> None:
        self.failures.append(error)

    def on_closed(self, stream: Any, completion: Any) -> None:
        self.closed += 1


def status(code: int, **headers: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = {"error": {"message": f"status {code}", "type": "x"}}
        return web.json_response(body, status=code, headers=headers)

    return handler


async def outcome(stream: ChatStream) -> BaseException | None:
    try:
        await stream
    except OpenAISSEError as error:
        return error
    return None


async def call(client: Client, api: str) -> object:
    if api == "stream":
        return await client.chat.stream(model="m", messages=MESSAGES)
    return await client.chat.create(model="m", messages=MESSAGES)


# -- close() with work in flight -----------------------------------------------------------------


async def test_close_ends_streams_mid_body_and_before_headers(server: LocalServer) -> None:
    server.route("/v1/chat/completions", stalling_after(FIRST_CHUNK))
    server.route("/v1/slow/chat/completions", lambda request: hang())  # type: ignore[arg-type,return-value]
    client = Client("k", base_url=server.url("/v1"), timeout=Timeout(idle=30))
    slow_client_url = server.url("/v1/slow")
    listeners = [Terminals(), Terminals()]
    streaming = client.chat.stream(model="m", messages=MESSAGES, listeners=[listeners[0]])
    await until(lambda: streaming.metrics.chunks == 1)
    client.base_url = slow_client_url
    waiting = client.chat.stream(model="m", messages=MESSAGES, listeners=[listeners[1]])
    await until(lambda: len(server.requests) == 2)
    started = time.monotonic()
    await client.close()
    assert time.monotonic() - started < 2
    assert streaming.done and waiting.done
    for listener in listeners:
        assert listener.closed == 0
        assert len(listener.failures) == 1
        assert isinstance(listener.failures[0], StreamCancelled)
    assert isinstance(await outcome(streaming), StreamCancelled)
    assert isinstance(await outcome(waiting), StreamCancelled)
    assert streaming.snapshot.choices  # the partial answer is kept


async def test_close_ends_a_create_in_flight(server: LocalServer) -> None:
    server.route("/v1/chat/completions", lambda request: hang())  # type: ignore[arg-type,return-value]
    client = Client("k", base_url=server.url("/v1"))
    call = asyncio.ensure_future(client.chat.create(model="m", messages=MESSAGES))
    await until(lambda: len(server.requests) == 1)
    await client.close()
    with pytest.raises(StreamCancelled):
        await call


async def test_a_closed_client_refuses_use(server: LocalServer) -> None:
    server.route("/v1/chat/completions", lambda r: sse_response(r, PLAIN))
    async with Client("k", base_url=server.url("/v1")) as client:
        await client.chat.stream(model="m", messages=MESSAGES)
    assert client.closed and "closed" in repr(client)
    with pytest.raises(OpenAISSEError, match="closed") as caught:
        client.chat.stream(model="m", messages=MESSAGES)
    assert not isinstance(caught.value, APIConnectionError)
    with pytest.raises(OpenAISSEError, match="closed"):
        await client.chat.create(model="m", messages=MESSAGES)
    with pytest.raises(OpenAISSEError, match="closed"):
        async with client:
            pass
    await client.close()  # idempotent
    assert len(server.requests) == 1


async def test_a_caller_session_closed_under_a_stream_is_a_connection_error(
    server: LocalServer,
) -> None:
    server.route("/v1/chat/completions", stalling_after(FIRST_CHUNK))
    session = aiohttp.ClientSession()
    async with Client("k", base_url=server.url("/v1"), session=session) as client:
        stream = client.chat.stream(model="m", messages=MESSAGES)
        await until(lambda: stream.metrics.chunks == 1)
        await session.close()
        error = await asyncio.wait_for(outcome(stream), 3)
        assert isinstance(error, APIConnectionError), repr(error)
        with pytest.raises(APIConnectionError, match="session is closed"):
            await client.chat.stream(model="m", messages=MESSAGES)


def test_a_client_used_in_a_second_event_loop_says_so() -> None:
    clients: list[Client] = []

    async def first() -> None:
        async with LocalServer() as server, aiohttp.ClientSession() as session:
            server.route("/v1/chat/completions", lambda r: sse_response(r, PLAIN))
            # A caller-owned session, closed here, so the first loop leaks nothing.
            client = Client("k", base_url=server.url("/v1"), session=session)
            clients.append(client)
            await client.chat.stream(model="m", messages=MESSAGES)

    async def second() -> None:
        client = clients[0]
        with pytest.raises(OpenAISSEError, match="another event loop"):
            client.chat.stream(model="m", messages=MESSAGES)
        with pytest.raises(OpenAISSEError, match="another event loop"):
            await client.chat.create(model="m", messages=MESSAGES)
        await client.close()

    asyncio.run(first())
    asyncio.run(second())


# -- cancel while waiting to retry, and no retry after cancel -------------------------------------


async def test_cancel_while_an_error_body_stalls_is_not_retried(server: LocalServer) -> None:
    async def stalled(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=500, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"error": ')
        await hang()
        return response

    server.route("/v1/chat/completions", stalled)
    async with Client("k", base_url=server.url("/v1"), max_retries=5) as client:
        stream = client.chat.stream(model="m", messages=MESSAGES)
        await until(lambda: stream._source.response is not None)
        stream.cancel()
        error = await asyncio.wait_for(outcome(stream), 2)
    assert isinstance(error, StreamCancelled)
    assert len(server.requests) == 1


async def test_cancel_while_waiting_to_retry(server: LocalServer) -> None:
    server.route("/v1/chat/completions", status(500, **{"retry-after-ms": "5000"}))
    async with Client("k", base_url=server.url("/v1"), max_retries=3) as client:
        stream = client.chat.stream(model="m", messages=MESSAGES)
        await until(lambda: stream.metrics.retries == 1)
        stream.cancel()
        error = await asyncio.wait_for(outcome(stream), 2)
    assert isinstance(error, StreamCancelled)
    assert len(server.requests) == 1


# -- Timeout(total) spans the whole call ----------------------------------------------------------


@pytest.mark.parametrize("api", ["stream", "create"])
async def test_total_timeout_bounds_retries(server: LocalServer, api: str) -> None:
    server.route("/v1/chat/completions", status(500, **{"retry-after-ms": "400"}))
    timeout = Timeout(total=1.0)
    async with Client("k", base_url=server.url("/v1"), timeout=timeout, max_retries=20) as client:
        started = time.monotonic()
        with pytest.raises((InternalServerError, APITimeoutError)):
            await call(client, api)
        elapsed = time.monotonic() - started
    assert elapsed < 1.3
    assert 2 <= len(server.requests) <= 3  # retried, but none started after the deadline


@pytest.mark.parametrize("api", ["stream", "create"])
async def test_total_timeout_ends_a_slow_attempt(server: LocalServer, api: str) -> None:
    server.route("/v1/chat/completions", lambda request: hang())  # type: ignore[arg-type,return-value]
    timeout = Timeout(total=0.4)
    async with Client("k", base_url=server.url("/v1"), timeout=timeout) as client:
        with pytest.raises(APITimeoutError) as caught:
            await call(client, api)
    assert caught.value.phase == "total"
    assert len(server.requests) == 1


# -- create(): bounded body -----------------------------------------------------------------------


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_create_caps_the_body(server: LocalServer, declared: bool) -> None:
    big = b'{"id": "' + b"x" * (2 * 1024 * 1024) + b'"}'

    async def huge(request: web.Request) -> web.StreamResponse:
        if declared:
            return web.Response(body=big, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for start in range(0, len(big), 65536):
            await response.write(big[start : start + 65536])
        await response.write_eof()
        return response

    server.route("/v1/chat/completions", huge)
    async with Client("k", base_url=server.url("/v1"), max_response_size=1024 * 1024) as client:
        with pytest.raises(ProtocolError, match="max_response_size"):
            await client.chat.create(model="m", messages=MESSAGES)
    assert len(server.requests) == 1


# -- secrets --------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["stream", "create"])
async def test_a_key_echoed_in_an_error_body_is_masked(server: LocalServer, api: str) -> None:
    key = "sk-echoed-secret-123"

    async def echo(request: web.Request) -> web.Response:
        given = request.headers["Authorization"].removeprefix("Bearer ")
        body = {"error": {"message": f"Incorrect API key provided: {given}.", "code": "bad"}}
        return web.json_response(body, status=401)

    server.route("/v1/chat/completions", echo)
    async with Client(key, base_url=server.url("/v1")) as client:
        with pytest.raises(AuthenticationError) as caught:
            await call(client, api)
    error = caught.value
    shown = str(error) + repr(error) + "".join(traceback.format_exception(error))
    shown += json.dumps(error.body)
    assert key not in shown
    assert "Incorrect API key provided: ***" in str(error)


async def test_keys_in_the_url_are_masked_in_reprs_logs_and_errors(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.route("/v1/chat/completions", lambda r: sse_response(r, PLAIN))
    server.route("/v1/missing/chat/completions", status(404))
    base = server.url("/v1").replace("http://", "http://user:url-password@")
    with caplog.at_level(logging.DEBUG, logger="openai_sse"):
        async with Client(
            base_url=base, default_query={"api-key": "query-secret", "Sig": "sig-secret"}
        ) as client:
            stream = client.chat.stream(model="m", messages=MESSAGES)
            await stream
            shown = repr(client) + repr(stream._source) + repr(stream._source.request)
            shown += repr(stream.response)
            assert "127.0.0.1" in repr(stream.response)
            client.base_url = base + "/missing"
            with pytest.raises(OpenAISSEError) as caught:
                await client.chat.stream(model="m", messages=MESSAGES)
            shown += str(caught.value) + repr(caught.value)
    shown += caplog.text
    assert server.requests[0].query["api-key"] == "query-secret"  # sent, never shown
    assert "127.0.0.1" in caplog.text and "api-key=***" in caplog.text
    for secret in ("url-password", "query-secret", "sig-secret"):
        assert secret not in shown


# -- wrong arguments and wrong servers -------------------------------------------------------------


@pytest.mark.parametrize(
    "messages",
    ["hi", b"hi", {"role": "user", "content": "hi"}, [42], ["hi"], None],
    ids=["str", "bytes", "one-dict", "int-item", "str-item", "none"],
)
async def test_messages_must_be_a_list_of_mappings(server: LocalServer, messages: Any) -> None:
    async with Client("k", base_url=server.url("/v1")) as client:
        with pytest.raises(TypeError, match="messages"):
            client.chat.stream(model="m", messages=messages)
        with pytest.raises(TypeError, match="messages"):
            await client.chat.create(model="m", messages=messages)
    assert server.requests == []


async def test_a_server_ignoring_stream_true_is_named_in_the_error(server: LocalServer) -> None:
    server.route("/v1/chat/completions", status(200))
    async with Client("k", base_url=server.url("/v1")) as client:
        with pytest.raises(ProtocolError) as caught:
            await client.chat.stream(model="m", messages=MESSAGES)
    assert "application/json" in str(caught.value)
    assert "stream: true" in str(caught.value)


async def test_responses_of_a_callers_own_session_are_masked_too(server: LocalServer) -> None:
    # The caller's session makes aiohttp's plain responses (or its own class): the ones this
    # package hands out still show the URL masked.
    class Custom(aiohttp.ClientResponse):
        marker = True

    server.route("/v1/chat/completions", lambda r: sse_response(r, PLAIN))
    server.route("/v1/bad/chat/completions", status(404))
    base = server.url("/v1").replace("http://", "http://user:url-password@")
    query = {"api-key": "query-secret"}
    for response_class in (aiohttp.ClientResponse, Custom):
        async with (
            aiohttp.ClientSession(response_class=response_class) as session,
            Client(base_url=base, session=session, default_query=query) as client,
        ):
            stream = client.chat.stream(model="m", messages=MESSAGES)
            await stream
            assert isinstance(stream.response, response_class)
            shown = repr(stream.response)
            assert "127.0.0.1" in shown and "api-key=***" in shown
            client.base_url = base + "/bad"
            with pytest.raises(OpenAISSEError) as caught:
                await client.chat.stream(model="m", messages=MESSAGES)
            assert caught.value.response is not None
            shown += repr(caught.value.response) + repr(caught.value)
        for secret in ("url-password", "query-secret"):
            assert secret not in shown
