"""The relay web application: routes, authentication, and the generations this instance runs."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from ..client import Client
from ..transport import Timeout
from ..transport.timeouts import DEFAULT_TIMEOUT
from .apis import APIS, Api
from .errors import Redactor, http_error, relay_error
from .follower import follow
from .generation import Generation
from .memory_store import MemoryStore
from .passthrough import forward
from .sites import AcceptingSite
from .store import ERROR, InvalidEventId, Store, StoreUnavailable, append

__all__ = ["DEFAULT_GRACE", "DEFAULT_KEEPALIVE", "DEFAULT_OWNER_TIMEOUT", "Relay", "create_app"]

logger = logging.getLogger("openai_sse.relay")

DEFAULT_GRACE = 30.0
DEFAULT_KEEPALIVE = 15.0
DEFAULT_OWNER_TIMEOUT = 10.0
MAX_BODY = 32 * 1024 * 1024
# Connections waiting to be accepted: every browser opens one to start a stream and another
# to follow it, and a thousand arriving within a second overflow aiohttp's 128 (the kernel
# then drops them and the clients retry a second or more later).
BACKLOG = 1024
STREAM_ID_PREFIX = "strm_"

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Relay:
    """Streams answers from an upstream OpenAI-compatible API to browsers, resumably.

    ``upstream`` and ``api_key`` configure the upstream (or pass a ready ``client``); the key
    stays on the server. ``store`` keeps the streams (a fresh :class:`MemoryStore` by
    default; a :class:`RedisStore` shares them between instances; a store passed in is left
    open on close). ``token``, when set, is required from clients as ``Authorization: Bearer``
    (or ``?access_token=`` where a browser's ``EventSource`` cannot send headers). ``grace``
    is how long a generation runs without anybody listening; ``keepalive`` paces comments
    on idle streams; ``owner_timeout`` is how long followers wait for word from the instance
    running a generation before they end its stream as lost (that instance crashed).
    """

    def __init__(
        self,
        *,
        upstream: str | None = None,
        api_key: str | None = None,
        client: Client | None = None,
        store: Store | None = None,
        token: str | None = None,
        grace: float = DEFAULT_GRACE,
        keepalive: float = DEFAULT_KEEPALIVE,
        owner_timeout: float = DEFAULT_OWNER_TIMEOUT,
        timeout: Timeout | float | None = DEFAULT_TIMEOUT,
        max_retries: int = 2,
    ) -> None:
        if min(grace, keepalive, owner_timeout) <= 0:
            raise ValueError("grace, keepalive and owner_timeout must be positive")
        self.store: Store = store if store is not None else MemoryStore()
        self._owns_store = store is None
        self.token = token
        self.grace = grace
        self.keepalive = keepalive
        self.owner_timeout = owner_timeout
        self._client_args: dict[str, Any] = {
            "api_key": api_key,
            "base_url": upstream,
            "timeout": timeout,
            "max_retries": max_retries,
        }
        self._client = client
        self._owns_client = client is None
        self._session: aiohttp.ClientSession | None = None
        self.redact = Redactor([api_key, token, _key_of(client)])
        self.generations: dict[str, Generation] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop_listener: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self.app = self._build_app()

    # -- lifecycle --------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth], client_max_size=MAX_BODY)
        app.router.add_get("/", self._page)
        app.router.add_post("/v1/chat/completions", self._passthrough("chat"))
        app.router.add_post("/v1/responses", self._passthrough("responses"))
        app.router.add_post("/v1/streams", self._create_stream)
        app.router.add_get("/v1/streams/{id}", self._follow_stream)
        app.router.add_delete("/v1/streams/{id}", self._delete_stream)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        app.on_cleanup.append(self._on_cleanup)
        return app

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("the relay is not started")
        return self._client

    async def _on_startup(self, app: web.Application) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None),
        )
        if self._client is None:
            self._client = Client(session=self._session, **self._client_args)
        self._stop_listener = asyncio.create_task(self.store.listen_stops(self._on_stop))

    async def _on_shutdown(self, app: web.Application) -> None:
        for generation in list(self.generations.values()):
            generation.stop("The relay is shutting down.")
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)

    async def _on_cleanup(self, app: web.Application) -> None:
        if self._stop_listener is not None:
            self._stop_listener.cancel()
            await asyncio.wait((self._stop_listener,))
        if self._client is not None and self._owns_client:
            await self._client.close()
            self._client = None
        if self._session is not None:
            await self._session.close()
        if self._owns_store:
            await self.store.close()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Relay:
        """Serve on ``host:port`` (0: a free port); see :attr:`url`."""
        runner = web.AppRunner(
            self.app,
            handle_signals=False,
            # A client that goes away cancels its handler: that is what cancels the upstream.
            handler_cancellation=True,
            access_log_class=AccessLogger,
            shutdown_timeout=1.0,
        )
        await runner.setup()
        try:
            await AcceptingSite(runner, host, port, backlog=BACKLOG).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        return self

    @property
    def url(self) -> str:
        """``http://host:port`` of a started relay."""
        if self._runner is None:
            raise RuntimeError("the relay is not started")
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Relay:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- generations ------------------------------------------------------------------------

    def _on_stop(self, stream_id: str) -> None:
        generation = self.generations.get(stream_id)
        if generation is not None:
            generation.stop("Stopped on request.")

    async def start_generation(self, api: Api, body: dict[str, Any]) -> str:
        """Store a new stream and start generating into it; returns its id."""
        stream_id = STREAM_ID_PREFIX + secrets.token_urlsafe(18)
        await self.store.create(stream_id, lease=self.grace)
        await self.store.heartbeat(stream_id, self.owner_timeout)
        generation = Generation(
            self.client,
            api,
            body,
            self.store,
            stream_id,
            grace=self.grace,
            owner_timeout=self.owner_timeout,
            redact=self.redact,
        )
        self.generations[stream_id] = generation
        task = asyncio.create_task(generation.run())
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._finished(stream_id, t))
        return stream_id

    def _finished(self, stream_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.generations.pop(stream_id, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("Stream %s failed: %r", stream_id, task.exception())

    async def stop_generation(self, stream_id: str) -> bool | None:
        """End the stream for every follower and stop its generation wherever it runs.

        Returns None for an unknown stream, False when it had ended already.

        The ``cancelled`` error is stored first, so followers end even if the instance that
        runs the generation is gone; that instance hears the stop and cancels its upstream.
        """
        if not await self.store.exists(stream_id):
            return None
        error = relay_error("cancelled", "StreamCancelled", "Stopped on request.")
        ended_here = await append(self.store, stream_id, ERROR, error) is not None
        self._on_stop(stream_id)
        await self.store.request_stop(stream_id)
        return ended_here

    # -- HTTP -------------------------------------------------------------------------------

    @web.middleware
    async def _auth(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if self.token is None or not request.path.startswith("/v1/"):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        given = header[7:].strip() if header[:7].lower() == "bearer " else ""
        given = given or request.query.get("access_token", "")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return http_error(
                401,
                "Missing or wrong relay token: send Authorization: Bearer <token>.",
                code="invalid_api_key",
            )
        return await handler(request)

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=_chat_page(),
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    def _passthrough(self, name: str) -> _Handler:
        api = APIS[name]

        async def handle(request: web.Request) -> web.StreamResponse:
            body = await _json_body(request)
            if isinstance(body, web.Response):
                return body
            assert self._session is not None
            return await forward(request, self.client, self._session, api.path, body, self.redact)

        return handle

    async def _create_stream(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        if isinstance(body, web.Response):
            return body
        name = body.pop("api", "chat")
        api = APIS.get(name) if isinstance(name, str) else None
        if api is None:
            return http_error(400, f"Unknown api {name!r}: use 'chat' or 'responses'.", param="api")
        invalid = api.invalid(body)
        if invalid is not None:
            message, param = invalid
            return http_error(400, message, param=param, code="missing_required_parameter")
        try:
            stream_id = await self.start_generation(api, body)
        except StoreUnavailable as exc:
            return _unavailable(exc)
        return web.json_response({"id": stream_id, "object": "relay.stream"}, status=201)

    async def _follow_stream(self, request: web.Request) -> web.StreamResponse:
        stream_id = request.match_info["id"]
        after = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
        try:
            if not await self.store.exists(stream_id):
                return _not_found(stream_id)
            return await follow(
                request,
                self.store,
                stream_id,
                after or None,
                keepalive=self.keepalive,
                lease=self.grace,
                owner_timeout=self.owner_timeout,
            )
        except InvalidEventId:
            return http_error(400, "Unknown Last-Event-ID for this stream.", param="last_event_id")
        except StoreUnavailable as exc:
            return _unavailable(exc)

    async def _delete_stream(self, request: web.Request) -> web.StreamResponse:
        stream_id = request.match_info["id"]
        try:
            stopped = await self.stop_generation(stream_id)
        except StoreUnavailable as exc:
            return _unavailable(exc)
        if stopped is None:
            return _not_found(stream_id)
        return web.json_response({"id": stream_id, "object": "relay.stream", "stopped": stopped})


class AccessLogger(AbstractAccessLogger):
    """Method, path, status and time: never the query string, where a token may travel."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %s %.3fs",
            request.remote,
            request.method,
            request.path,
            response.status,
            time,
        )


async def _json_body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return http_error(
            400,
            "We could not parse the JSON body of your request.",
            code="invalid_json",
        )
    if not isinstance(body, dict):
        return http_error(400, "The request body must be a JSON object.", code="invalid_json")
    return body


def _not_found(stream_id: str) -> web.Response:
    return http_error(404, f"No stream with id {stream_id!r}.", code="stream_not_found")


def _unavailable(exc: StoreUnavailable) -> web.Response:
    return http_error(
        503,
        f"The stream store is unavailable: {exc}",
        type="store_unavailable",
        code="store_unavailable",
        headers={"Retry-After": "1"},
    )


def _chat_page() -> bytes:
    return resources.files("openai_sse.relay").joinpath("static/chat.html").read_bytes()


def _key_of(client: Client | None) -> str | None:
    """The upstream key inside a client passed in, so it is masked like one given directly."""
    auth = getattr(client, "_headers", {}).get("Authorization", "") if client else ""
    return auth[7:] if auth.startswith("Bearer ") else None


def create_app(**options: Any) -> web.Application:
    """The relay as an :class:`aiohttp.web.Application` (options as for :class:`Relay`).

    Run it with ``handler_cancellation=True`` (``web.run_app`` and ``AppRunner`` take it), or
    a browser that leaves is noticed only at the next write instead of at once.
    """
    return Relay(**options).app
