"""Client configuration, error mapping and retries."""

from __future__ import annotations

import inspect
import json
import logging
from email.utils import formatdate
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses

from openai_sse import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ChatListener,
    ChatStream,
    Client,
    ConflictError,
    InternalServerError,
    NotFoundError,
    OpenAISSEError,
    PermissionDeniedError,
    RateLimitError,
    StreamError,
    UnprocessableEntityError,
)
from openai_sse.retries import RetryPolicy, is_retryable

from .fixtures import payloads, sse_bytes
from .servers import LocalServer, sse_response

MESSAGES = [{"role": "user", "content": "hi"}]
PLAIN = sse_bytes("01_openai_plain_content_usage.sse")


def openai_error(status: int, message: str, **headers: str) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = {"error": {"message": message, "type": "x", "param": None, "code": None}}
        return web.json_response(body, status=status, headers={"x-request-id": "req_9", **headers})

    return handler


# -- configuration ------------------------------------------------------------------------------


def test_environment_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-secret")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    client = Client()
    assert client.base_url == "http://127.0.0.1:9/v1"
    assert client._headers["Authorization"] == "Bearer sk-env-secret"
    assert "sk-env-secret" not in repr(client)


def test_missing_key_for_openai_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(OpenAISSEError, match="OPENAI_API_KEY"):
        Client()
    assert Client(base_url="http://127.0.0.1:9/v1")._headers.get("Authorization") is None


async def test_headers_for_openai_and_azure(server: LocalServer) -> None:
    server.route("/openai/deployments/d1/chat/completions", lambda r: sse_response(r, PLAIN))
    async with Client(
        base_url=server.url("/openai/deployments/d1"),
        organization="org-1",
        project="proj-1",
        default_headers={"api-key": "azure-key"},
        default_query={"api-version": "2024-10-21"},
    ) as client:
        await client.chat.stream(model="m", messages=MESSAGES, include_usage=False)
    sent = server.requests[0]
    assert sent.query["api-version"] == "2024-10-21"
    assert sent.headers["api-key"] == "azure-key"
    assert sent.headers["OpenAI-Organization"] == "org-1"
    assert sent.headers["OpenAI-Project"] == "proj-1"
    assert "stream_options" not in json.loads(server.bodies[0])


async def test_caller_session_is_not_closed(server: LocalServer) -> None:
    server.route("/v1/chat/completions", lambda r: sse_response(r, PLAIN))
    async with aiohttp.ClientSession() as session:
        async with Client("k", base_url=server.url("/v1"), session=session) as client:
            await client.chat.stream(model="m", messages=MESSAGES)
        assert not session.closed


# -- status errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (503, InternalServerError),
        (418, APIStatusError),
    ],
)
async def test_status_errors_are_typed(
    server: LocalServer, status: int, error_type: type[APIStatusError]
) -> None:
    server.route("/v1/chat/completions", openai_error(status, "nope"))
    async with Client("k", base_url=server.url("/v1"), max_retries=0) as client:
        with pytest.raises(error_type) as caught:
            await client.chat.stream(model="m", messages=MESSAGES)
    error = caught.value
    assert type(error) is error_type
    assert error.status_code == status
    assert error.request_id == "req_9"
    assert error.body["error"]["message"] == "nope"
    assert "nope" in str(error)


# -- retries ------------------------------------------------------------------------------------


async def test_retries_honour_retry_after_ms_then_succeed(server: LocalServer) -> None:
    calls = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        if calls < 3:
            return await openai_error(429, "slow down", **{"retry-after-ms": "10"})(request)
        return await sse_response(request, PLAIN)

    server.route("/v1/chat/completions", handler)
    async with Client("k", base_url=server.url("/v1"), max_retries=2) as client:
        stream = client.chat.stream(model="m", messages=MESSAGES)
        completion = await stream
    assert calls == 3
    assert stream.metrics.retries == 2
    assert completion.choices[0].finish_reason == "stop"


async def test_retries_give_up_after_max_retries(server: LocalServer) -> None:
    server.route("/v1/chat/completions", openai_error(500, "down", **{"retry-after": "0"}))
    listener_failures: list[BaseException] = []

    class L(ChatListener):
        def on_failure(self, stream: ChatStream, error: BaseException) -> None:
            listener_failures.append(error)

    async with Client("k", base_url=server.url("/v1"), max_retries=2) as client:
        with pytest.raises(InternalServerError):
            await client.chat.stream(model="m", messages=MESSAGES, listeners=[L()])
    assert len(server.requests) == 3
    assert len(listener_failures) == 1  # retried attempts are not reported as failures


async def test_bad_request_is_not_retried(server: LocalServer) -> None:
    server.route("/v1/chat/completions", openai_error(400, "bad"))
    async with Client("k", base_url=server.url("/v1"), max_retries=3) as client:
        with pytest.raises(BadRequestError):
            await client.chat.stream(model="m", messages=MESSAGES)
    assert len(server.requests) == 1


async def test_in_stream_error_before_first_delta_is_retried(server: LocalServer) -> None:
    error = b'data: {"error": {"message": "busy", "type": "server_error"}}\n\n'

    async def handler(request: web.Request) -> web.StreamResponse:
        if len(server.requests) == 1:
            return await sse_response(request, error)
        return await sse_response(request, PLAIN)

    server.route("/v1/chat/completions", handler)
    async with Client("k", base_url=server.url("/v1"), max_retries=1) as client:
        completion = await client.chat.stream(model="m", messages=MESSAGES)
    assert completion.choices[0].message.content is not None
    assert len(server.requests) == 2


async def test_content_already_delivered_is_never_replayed(server: LocalServer) -> None:
    first = b"".join(b"data: " + p.encode() + b"\n\n" for p in payloads(PLAIN_NAME)[:3])
    error = b'data: {"error": {"message": "busy", "type": "server_error"}}\n\n'
    server.route("/v1/chat/completions", lambda r: sse_response(r, first + error))
    async with Client("k", base_url=server.url("/v1"), max_retries=3) as client:
        with pytest.raises(StreamError) as caught:
            await client.chat.stream(model="m", messages=MESSAGES)
    assert len(server.requests) == 1
    assert caught.value.snapshot is not None
    assert caught.value.snapshot.choices[0].message.content == "I'm unable"


PLAIN_NAME = "01_openai_plain_content_usage.sse"


async def test_connection_error_is_retried_then_typed() -> None:
    async with Client("k", base_url="http://127.0.0.1:1/v1", max_retries=1) as client:
        stream = client.chat.stream(model="m", messages=MESSAGES)
        with pytest.raises(APIConnectionError) as caught:
            await stream
    assert caught.value.response is None
    assert stream.metrics.retries == 1


def test_retry_policy_delays() -> None:
    policy = RetryPolicy(max_retries=3, initial_delay=0.5, max_delay=8.0)
    error = APIConnectionError()
    delays = [policy.delay(error, attempt) for attempt in range(4)]
    assert delays[3] is None
    for attempt, delay in enumerate(delays[:3]):
        assert delay is not None
        assert 0.75 * 0.5 * 2**attempt <= delay <= 0.5 * 2**attempt
    assert is_retryable(StreamError("x", code="rate_limit_exceeded"))
    assert not is_retryable(StreamError("x", type="invalid_request_error"))
    assert not is_retryable(ValueError())


async def test_retry_after_http_date(server: LocalServer) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if len(server.requests) == 1:
            return await openai_error(503, "later", **{"retry-after": formatdate(usegmt=True)})(
                request
            )
        return await sse_response(request, PLAIN)

    server.route("/v1/chat/completions", handler)
    async with Client("k", base_url=server.url("/v1"), max_retries=1) as client:
        await client.chat.stream(model="m", messages=MESSAGES)
    assert len(server.requests) == 2


# -- non-streaming create() ---------------------------------------------------------------------


async def test_create_non_streaming(server: LocalServer) -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hello"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    server.route("/v1/chat/completions", lambda r: _json(body))
    async with Client("k", base_url=server.url("/v1")) as client:
        completion = await client.chat.create(model="m", messages=MESSAGES, stream=True)
    assert completion.choices[0].message.content == "hello"
    assert completion.usage is not None
    assert completion.usage.total_tokens == 2
    assert "stream" not in json.loads(server.bodies[0])


async def _json(body: Any) -> web.Response:
    return web.json_response(body)


# -- request building and error mapping, mocked -------------------------------------------------


_NEEDS_WRITER = "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters


class MockedResponse(aiohttp.ClientResponse):
    """aioresponses builds responses without ``stream_writer``, which aiohttp 3.14 requires
    (and older versions, the declared floor, do not accept)."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        if _NEEDS_WRITER and "stream_writer" not in kwargs:

            class _Sent:
                output_size = 0

            kwargs["stream_writer"] = _Sent()
        super().__init__(method, url, **kwargs)


async def test_create_maps_status_with_aioresponses() -> None:
    with aioresponses() as mocked:
        mocked.post(
            "https://api.openai.com/v1/chat/completions",
            status=401,
            payload={"error": {"message": "Incorrect API key provided: sk-***"}},
            headers={"x-request-id": "req_a"},
            response_class=MockedResponse,
        )
        async with Client("sk-secret") as client:
            with pytest.raises(AuthenticationError) as caught:
                await client.chat.create(model="m", messages=MESSAGES)
        call = next(iter(mocked.requests.values()))[0]
    assert caught.value.request_id == "req_a"
    assert "sk-secret" not in str(caught.value)
    assert call.kwargs["headers"]["Authorization"] == "Bearer sk-secret"
    assert json.loads(call.kwargs["data"]) == {"model": "m", "messages": MESSAGES}


async def test_create_maps_connection_errors_with_aioresponses() -> None:
    with aioresponses() as mocked:
        mocked.post(
            "https://api.openai.com/v1/chat/completions",
            exception=aiohttp.ClientConnectionError("refused"),
            repeat=True,
        )
        async with Client("k", max_retries=0) as client:
            with pytest.raises(APIConnectionError, match="refused"):
                await client.chat.create(model="m", messages=MESSAGES)


async def test_debug_logs_request_and_status_but_never_the_key(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.route("/v1/chat/completions", lambda r: sse_response(r, PLAIN))
    with caplog.at_level(logging.DEBUG, logger="openai_sse"):
        async with Client("sk-very-secret", base_url=server.url("/v1")) as client:
            stream = client.chat.stream(model="m", messages=MESSAGES)
            await stream
            assert "sk-very-secret" not in repr(stream._source.request)
    text = caplog.text
    assert f"POST {server.url('/v1/chat/completions')}" in text
    assert "-> 200" in text
    assert "sk-very-secret" not in text
