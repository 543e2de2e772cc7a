"""The client: configuration, authentication, retries and the ``chat`` namespace.

A client belongs to one event loop (its aiohttp session does) and lives until :meth:`close`:
closing it ends every stream and call still running on it, and a closed client refuses use.
``Timeout(total=...)`` is one deadline for a whole call: every attempt, the waits between them
and retries; no retry starts after it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import platform
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import aiohttp
import msgspec

from ._redact import mask_url
from ._version import __version__
from .chat.listener import wants_partial
from .chat.models import ChatCompletion, decode_completion
from .chat.stream import ChatStream
from .errors import (
    APITimeoutError,
    OpenAISSEError,
    ProtocolError,
    StreamCancelled,
    status_error,
)
from .retries import RetryPolicy
from .sse.decoder import DEFAULT_MAX_EVENT_SIZE
from .transport import EventSource, EventSourceFactory, EventSourceListener, Request, Timeout
from .transport.eventsource import map_transport_error, read_error_body
from .transport.http import send
from .transport.timeouts import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .chat.params import ChatCompletionMessageParam, ChatParams
    from .listeners.structured import StructuredOutput
    from .responses.client import Responses

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MAX_RESPONSE_SIZE", "Chat", "Client"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MAX_RESPONSE_SIZE = 16 * 1024 * 1024
"""The largest non-streamed response body read (bytes); a larger one is a ProtocolError."""

logger = logging.getLogger("openai_sse")

_USER_AGENT = (
    f"openai-sse/{__version__} aiohttp/{aiohttp.__version__} "
    f"{platform.python_implementation()}/{platform.python_version()}"
)

T = TypeVar("T")
RetryDelay = Callable[[BaseException, int], "float | None"]


class _Stream(Protocol):
    """What the client needs of a stream it tracks (chat and responses streams alike)."""

    @property
    def done(self) -> bool: ...

    def cancel(self) -> None: ...

    def aclose(self) -> Awaitable[None]: ...


class Client:
    """Streams chat completions from OpenAI or any OpenAI-compatible server.

    ``api_key`` and ``base_url`` default to ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``.
    A key is required only for api.openai.com; local servers (vLLM, Ollama, llama.cpp) may
    run without one. Pass ``session`` to share an aiohttp session you own; otherwise the
    client makes one on first use (without a connection cap, so long streams never queue
    behind each other) and closes it in :meth:`close`. ``max_response_size`` caps the body
    of a non-streamed answer (16 MiB). The client belongs to the event loop it is first used
    in; using it in another one (a second ``asyncio.run``) is an error, as is using it after
    :meth:`close`.
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
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
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
        self.max_response_size = max_response_size
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
        # A stream's headers, made once: the event source adds Accept only when it is missing.
        self._stream_headers = (
            headers
            if any(name.lower() == "accept" for name in headers)
            else {**headers, "Accept": "text/event-stream"}
        )
        self._session = session
        self._owns_session = session is None
        self._factory: EventSourceFactory | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        # Unfinished work that close() ends: streams (weakly: a finished one is forgotten)
        # and the tasks of non-streamed calls, with those close() itself cancelled.
        self._streams: weakref.WeakSet[Any] = weakref.WeakSet()
        self._calls: set[asyncio.Task[Any]] = set()
        self._closed_calls: set[asyncio.Task[Any]] = set()
        self.chat = Chat(self)

    @functools.cached_property
    def responses(self) -> Responses:
        """``client.responses``: the Responses API (imported on first use)."""
        from .responses.client import Responses

        return Responses(self)

    @property
    def max_retries(self) -> int:
        return self.retry_policy.max_retries

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_usable(self) -> asyncio.AbstractEventLoop:
        """The running loop, once sure this client may be used in it."""
        if self._closed:
            raise OpenAISSEError("The client is closed; make a new Client to send requests.")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise OpenAISSEError(
                "This Client was used in another event loop (a second asyncio.run()?); its "
                "connections belong to that loop. Make one Client per event loop, e.g. "
                "`async with Client() as client:` inside the coroutine you run."
            )
        return loop

    def _get_factory(self) -> EventSourceFactory:
        self._check_usable()
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
        self,
        path: str,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
        *,
        stream: bool = False,
    ) -> Request:
        """The request for ``path`` under the base URL, with the client's headers.

        Without ``body`` (a GET) no Content-Type is sent. A ``stream`` request accepts
        ``text/event-stream`` unless ``headers`` say otherwise.
        """
        base = self._stream_headers if stream else self._headers
        merged = {**base, **headers} if headers else base
        if headers and base is not self._headers and "Accept" not in headers:
            # The Accept added here, not the client's own: the caller's spelling of it wins.
            for name in headers:
                if name.lower() == "accept":
                    del merged["Accept"]
                    break
        if body is None:
            merged = {k: v for k, v in merged.items() if k.lower() != "content-type"}
            return Request(self._url(path), method, headers=merged)
        return Request(self._url(path), method, headers=merged, data=msgspec.json.encode(body))

    def _deadline(self) -> float | None:
        """The event-loop time by which a call started now must be over (Timeout.total)."""
        total = self.timeout.total
        return None if total is None else asyncio.get_running_loop().time() + total

    def _retry_delay(self, deadline: float | None) -> RetryDelay:
        """The retry policy, refusing any retry that would start after ``deadline``."""
        policy = self.retry_policy

        def delay(error: BaseException, attempt: int) -> float | None:
            wait = policy.delay(error, attempt)
            if wait is None or self._closed:
                return None
            if deadline is not None and asyncio.get_running_loop().time() + wait >= deadline:
                return None
            return wait

        return delay

    def _connect(
        self, request: Request, deadline: float | None
    ) -> Callable[[EventSourceListener], EventSource]:
        """A stream's way to (re)connect: every attempt shares the call's deadline."""
        factory = self._get_factory()

        def connect(listener: EventSourceListener) -> EventSource:
            return factory.new_event_source(request, listener, deadline=deadline)

        return connect

    def _register(self, stream: _Stream) -> None:
        """Track a stream made by this client, so :meth:`close` can end it."""
        if self._closed:
            stream.cancel()
            return
        self._streams.add(stream)

    async def _post_json(
        self,
        path: str,
        body: Mapping[str, Any],
        extra_headers: Mapping[str, str] | None,
        decode: Callable[[bytes], T],
    ) -> T:
        """One non-streamed JSON exchange: retries, the total deadline, the body size cap.

        Runs in its own task so that :meth:`close` can end it (then it raises
        :class:`StreamCancelled`); cancelling the caller cancels it too.
        """
        request = self._request(path, body, extra_headers)
        session = self._get_factory().session
        task = asyncio.ensure_future(self._exchange(session, request, decode))
        self._calls.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            if task in self._closed_calls and not _task_cancelling():
                raise StreamCancelled("The client was closed during the request.") from None
            raise
        finally:
            self._calls.discard(task)
            self._closed_calls.discard(task)

    async def _exchange(
        self, session: aiohttp.ClientSession, request: Request, decode: Callable[[bytes], T]
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = self._deadline()
        retry_delay = self._retry_delay(deadline)
        attempt = 0
        while True:
            try:
                return await self._attempt(session, request, decode, deadline)
            except OpenAISSEError as error:
                delay = retry_delay(error, attempt)
                if delay is None:
                    raise
                attempt += 1
                logger.info("Retrying %s in %.2f s after: %s", request.safe_url, delay, error)
                await asyncio.sleep(delay)
                if deadline is not None and loop.time() >= deadline:
                    raise

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        request: Request,
        decode: Callable[[bytes], T],
        deadline: float | None,
    ) -> T:
        timeout = self.timeout
        secrets = request.secrets()
        limit, phase = timeout.first_event, "first_event"
        if deadline is not None:
            remaining = deadline - asyncio.get_running_loop().time()
            if limit is None or remaining <= limit:
                limit, phase = remaining, "total"
        seconds = timeout.total if phase == "total" else limit

        async def exchange() -> T:
            logger.debug("Request: %s %s", request.method, request.safe_url)
            response = await send(
                session,
                request,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=timeout.connect, sock_read=timeout.idle
                ),
            )
            async with response:
                logger.debug(
                    "Response: %s %s -> %d", request.method, request.safe_url, response.status
                )
                if response.status >= 300:
                    raise status_error(
                        response.status,
                        await read_error_body(response, timeout.idle),
                        response=response,
                        request_id=response.headers.get("x-request-id"),
                        secrets=secrets,
                    )
                return decode(await _read_capped(response, self.max_response_size))

        if limit is not None and limit <= 0:
            raise APITimeoutError(f"No answer within {seconds} s.", phase=phase)
        try:
            return await asyncio.wait_for(exchange(), limit)
        except asyncio.TimeoutError as exc:
            if isinstance(exc, aiohttp.ServerTimeoutError) or limit is None:
                raise map_transport_error(exc, None, secrets) from exc
            raise APITimeoutError(f"No answer within {seconds} s.", phase=phase) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise map_transport_error(exc, None, secrets) from exc

    async def close(self) -> None:
        """End every unfinished stream and call of this client, then close its session.

        Each stream still running gets exactly one terminal callback (``StreamCancelled``)
        and releases its connection before this returns; a session passed in by the caller
        is left open. Idempotent; the client refuses use afterwards.
        """
        if self._closed:
            return
        self._closed = True
        streams = [stream for stream in self._streams if not stream.done]
        for stream in streams:
            stream.cancel()
        calls = list(self._calls)
        for task in calls:
            self._closed_calls.add(task)
            task.cancel()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self._loop is None or self._loop is running:
            if streams or calls:
                await asyncio.gather(
                    *(stream.aclose() for stream in streams), *calls, return_exceptions=True
                )
            if self._owns_session and self._session is not None:
                await self._session.close()
        # In another loop the session cannot be closed (its loop is gone): just let it go.
        self._session = None
        self._factory = None

    async def __aenter__(self) -> Client:
        if self._closed:
            raise OpenAISSEError("The client is closed; make a new Client to send requests.")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<Client base_url={mask_url(self.base_url)!r}{state}>"


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
        body: dict[str, Any] = {"model": model, "messages": _messages(messages), **params}
        body["stream"] = True
        if include_usage:
            options = dict(body.get("stream_options") or {})
            options.setdefault("include_usage", True)
            body["stream_options"] = options
        if extra_body:
            body.update(extra_body)
        listeners = tuple(listeners)
        structured = _structured_output(body, listeners)
        if structured is not None:  # parses content / arguments ahead of the other listeners
            listeners = (structured, *listeners)
        request = client._request("chat/completions", body, extra_headers, stream=True)
        deadline = client._deadline()
        connect = client._connect(request, deadline)
        stream = ChatStream(
            connect,
            listeners,
            retry_delay=client._retry_delay(deadline),
            on_done=None if structured is None else structured.end,
        )
        client._register(stream)
        return stream

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
        body: dict[str, Any] = {"model": model, "messages": _messages(messages), **params}
        body.pop("stream", None)
        if extra_body:
            body.update(extra_body)
        structured = _structured_output(body, ())
        completion = await self._client._post_json(
            "chat/completions", body, extra_headers, decode_completion
        )
        if structured is not None:
            structured.complete(completion)
        return completion


def _messages(messages: object) -> list[Any]:
    """``messages`` as a list, refusing the usual mistakes (a bare string, one dict)."""
    if type(messages) is list:
        # The usual shape, checked without the slower ABC isinstance calls.
        for message in messages:
            if type(message) is not dict:
                break
        else:
            return messages
    example = "[{'role': 'user', 'content': 'Hello'}]"
    if isinstance(messages, (str, bytes, bytearray, Mapping)) or not isinstance(messages, Iterable):
        raise TypeError(
            f"messages must be a list of message dicts such as {example}, "
            f"not {type(messages).__name__}"
        )
    items = list(messages)
    for index, message in enumerate(items):
        if not isinstance(message, Mapping):
            raise TypeError(
                f"messages[{index}] must be a dict with 'role' and 'content' (as in {example}), "
                f"not {type(message).__name__}"
            )
    return items


def _structured_output(
    body: dict[str, Any], listeners: Iterable[object]
) -> StructuredOutput | None:
    """The structured-output listener for ``body``, if it asks for one.

    Most requests ask for nothing to parse, and then the listeners package is never imported.
    """
    tools = body.get("tools")
    plain_tools = tools is None or (
        isinstance(tools, (list, tuple)) and all(isinstance(tool, Mapping) for tool in tools)
    )
    if body.get("response_format") is None and plain_tools and not wants_partial(listeners):
        return None
    from .listeners.structured import structured_output

    return structured_output(body, listeners)


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, refusing one larger than ``limit`` before holding it in memory."""
    message = (
        f"The response body is larger than max_response_size ({limit} bytes); raise the limit "
        "with Client(max_response_size=...) if it is expected."
    )
    length = response.content_length
    if length is not None and length > limit:
        raise ProtocolError(message, response=response)
    chunks: list[bytes] = []
    size = 0
    while chunk := await response.content.readany():
        size += len(chunk)
        if size > limit:
            raise ProtocolError(message, response=response)
        chunks.append(chunk)
    return b"".join(chunks)


def _task_cancelling() -> bool:
    """Whether the current task itself is being cancelled (always False before 3.11)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling()) if cancelling is not None else False


def _has_auth(headers: Mapping[str, str] | None) -> bool:
    return any(k.lower() in ("authorization", "api-key") for k in (headers or {}))
