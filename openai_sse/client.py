"""The client: configuration, authentication, retries and the ``chat`` namespace."""

from __future__ import annotations

import asyncio
import logging
import os
import platform
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import msgspec

from ._version import __version__
from .chat.models import ChatCompletion, decode_completion
from .chat.stream import ChatStream
from .errors import APIConnectionError, APITimeoutError, OpenAISSEError, status_error
from .retries import RetryPolicy
from .sse.decoder import DEFAULT_MAX_EVENT_SIZE
from .transport import EventSource, EventSourceFactory, EventSourceListener, Request, Timeout
from .transport.timeouts import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .chat.params import ChatCompletionMessageParam, ChatParams

__all__ = ["DEFAULT_BASE_URL", "Chat", "Client"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"

logger = logging.getLogger("openai_sse")

_USER_AGENT = (
    f"openai-sse/{__version__} aiohttp/{aiohttp.__version__} "
    f"{platform.python_implementation()}/{platform.python_version()}"
)


class Client:
    """Streams chat completions from OpenAI or any OpenAI-compatible server.

    ``api_key`` and ``base_url`` default to ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``.
    A key is required only for api.openai.com; local servers (vLLM, Ollama, llama.cpp) may
    run without one. Pass ``session`` to share an aiohttp session you own; otherwise the
    client makes one on first use (without a connection cap, so long streams never queue
    behind each other) and closes it in :meth:`close`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        timeout: Timeout | float | None = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        session: aiohttp.ClientSession | None = None,
        default_headers: Mapping[str, str] | None = None,
        default_query: Mapping[str, str] | None = None,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    ) -> None:
        api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        if (
            not api_key
            and base_url.rstrip("/") == DEFAULT_BASE_URL
            and not _has_auth(default_headers)
        ):
            raise OpenAISSEError(
                "No API key: pass api_key= or set OPENAI_API_KEY (or point base_url at a "
                "server that needs none)."
            )
        self.base_url = base_url.rstrip("/")
        self.timeout = Timeout.of(timeout)
        self.retry_policy = RetryPolicy(max_retries=max_retries)
        self.max_event_size = max_event_size
        self.default_query = dict(default_query or {})
        headers = {
            "User-Agent": _USER_AGENT,
            "Content-Type": "application/json",
        }
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        if organization:
            headers["OpenAI-Organization"] = organization
        if project:
            headers["OpenAI-Project"] = project
        headers.update(default_headers or {})
        self._headers = headers
        self._session = session
        self._owns_session = session is None
        self._factory: EventSourceFactory | None = None
        self.chat = Chat(self)

    @property
    def max_retries(self) -> int:
        return self.retry_policy.max_retries

    def _get_factory(self) -> EventSourceFactory:
        if self._factory is None:
            if self._session is None:
                self._session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=0),
                    timeout=aiohttp.ClientTimeout(total=None),
                )
            self._factory = EventSourceFactory(
                self._session, timeout=self.timeout, max_event_size=self.max_event_size
            )
        return self._factory

    def _url(self, path: str) -> str:
        url = f"{self.base_url}/{path}"
        if self.default_query:
            from urllib.parse import urlencode

            url += ("&" if "?" in url else "?") + urlencode(self.default_query)
        return url

    def _request(
        self, path: str, body: Mapping[str, Any], headers: Mapping[str, str] | None
    ) -> Request:
        merged = {**self._headers, **headers} if headers else self._headers
        return Request(self._url(path), "POST", headers=merged, data=msgspec.json.encode(body))

    async def close(self) -> None:
        """Close the session if this client made it; a caller's session is left open."""
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None
        self._factory = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<Client base_url={self.base_url!r}>"


class Chat:
    """``client.chat``: streaming and plain chat completions."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def stream(
        self,
        *,
        model: str,
        messages: Iterable[ChatCompletionMessageParam],
        listeners: Iterable[object] = (),
        include_usage: bool = True,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **params: Unpack[ChatParams],
    ) -> ChatStream:
        """Start streaming at once and return the :class:`ChatStream`.

        ``params`` are the typed request parameters of :class:`~openai_sse.chat.params.ChatParams`
        (temperature, max_tokens, tools, n, ...), sent as they are; anything else goes in
        ``extra_body``, merged into the request body last.
        ``include_usage`` asks for the final usage chunk so token counts are known.
        """
        client = self._client
        body: dict[str, Any] = {"model": model, "messages": list(messages), **params}
        body["stream"] = True
        if include_usage:
            options = dict(body.get("stream_options") or {})
            options.setdefault("include_usage", True)
            body["stream_options"] = options
        if extra_body:
            body.update(extra_body)
        request = client._request("chat/completions", body, extra_headers)
        factory = client._get_factory()

        def connect(listener: EventSourceListener) -> EventSource:
            return factory.new_event_source(request, listener)

        return ChatStream(connect, listeners, retry_delay=client.retry_policy.delay)

    async def create(
        self,
        *,
        model: str,
        messages: Iterable[ChatCompletionMessageParam],
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        **params: Unpack[ChatParams],
    ) -> ChatCompletion:
        """One non-streaming completion, with the same retries and errors as streams."""
        client = self._client
        body: dict[str, Any] = {"model": model, "messages": list(messages), **params}
        body.pop("stream", None)
        if extra_body:
            body.update(extra_body)
        request = client._request("chat/completions", body, extra_headers)
        session = client._get_factory().session
        attempt = 0
        while True:
            try:
                return await _post_json(session, request, client.timeout)
            except OpenAISSEError as error:
                delay = client.retry_policy.delay(error, attempt)
                if delay is None:
                    raise
                attempt += 1
                logger.info("Retrying %s in %.2f s after: %s", request.url, delay, error)
                await asyncio.sleep(delay)


async def _post_json(
    session: aiohttp.ClientSession, request: Request, timeout: Timeout
) -> ChatCompletion:
    async def exchange() -> ChatCompletion:
        async with session.request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.data,
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=timeout.connect, sock_read=timeout.idle
            ),
        ) as response:
            raw = await response.read()
            if response.status >= 300:
                body: Any
                try:
                    body = msgspec.json.decode(raw)
                except msgspec.DecodeError:
                    body = raw.decode("utf-8", "replace")
                raise status_error(
                    response.status,
                    body,
                    response=response,
                    request_id=response.headers.get("x-request-id"),
                )
            return decode_completion(raw)

    limit = timeout.total if timeout.total is not None else timeout.first_event
    try:
        return await asyncio.wait_for(exchange(), limit)
    except asyncio.TimeoutError as exc:
        raise APITimeoutError(f"Request timed out: {exc}", phase="total") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise APIConnectionError(f"Connection error: {exc or type(exc).__name__}") from exc


def _has_auth(headers: Mapping[str, str] | None) -> bool:
    return any(k.lower() in ("authorization", "api-key") for k in (headers or {}))
