"""An embedded OpenAI-compatible streaming server for tests, demos and offline use.

It speaks the wire format of the real API closely enough that the official ``openai`` package
streams from it, and it can misbehave on demand so clients can be tested against every failure
a real provider or proxy produces.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from .chat_replies import Plan, plan_reply, render_completion, render_stream, special_chunk
from .delivery import Block, Clock, Rendered, deliver, with_fault
from .faults import Fault, error_body
from .listener import listen
from .responses_replies import apply_fault, encode_events, plan_response, render_events
from .script import Raw, Reply, ScriptItem, load_script
from .stored import ResponseStore, StoredResponse
from .tokens import HEX, RANDOM, random_id
from .validation import BadRequest, check_chat, check_responses, parse_body

__all__ = ["DEFAULT_DELAY", "DEFAULT_MODELS", "MockServer", "RecordedRequest"]

DEFAULT_DELAY = 0.03
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-nano", "deepseek-chat", "deepseek-reasoner")
_SSE_TYPE = "text/event-stream; charset=utf-8"
_JSON_TYPE = "application/json"
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_NO_FAULT = Fault()
_CACHE_BYTES = 64 * 1024 * 1024  # renderings kept for repeated requests, at most this much
_COMPLETED_AT = re.compile(rb'"completed_at":\d+')


class _Cached(NamedTuple):
    """A rendering kept for repeated requests."""

    reply: Reply | None  # held, so that its id() in the cache key cannot be reused meanwhile
    rendered: Rendered
    store: bool  # a Responses request that asked for its response to be stored


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it, kept for assertions."""

    method: str
    path: str
    headers: CIMultiDictProxy[str]
    query: Mapping[str, str]
    body: bytes
    received_at: float = field(default_factory=time.monotonic)

    @functools.cached_property
    def json(self) -> Any:
        """The body parsed as JSON; None when it is empty or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None


class MockServer:
    """OpenAI-compatible chat completions and Responses on ``127.0.0.1``, scripted, faulty.

    Each chat or responses request takes the next queued item (:class:`Reply`, :class:`Raw`
    or a bare :class:`Fault` applied to the default reply); with the queue empty it answers
    with ``reply`` if given, else with the deterministic default reply for the prompt.
    ``delay`` paces every chunk (seconds per token) so streams feel live; tests use 0. Every
    client mistake is a 400 with OpenAI's error body; ``header_timeout`` bounds how long a
    client may take to send a request (headers and body).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        delay: float = DEFAULT_DELAY,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Sequence[str] = DEFAULT_MODELS,
        script: Sequence[ScriptItem] = (),
        access_log: logging.Logger | None = None,
        header_timeout: float = 15.0,
        reply: Reply | None = None,
    ) -> None:
        self.api_key = api_key
        self.access_log = access_log  # one line per request at INFO when set
        self.delay = delay
        self.header_timeout = header_timeout
        self.reply = reply
        self.host = host
        self.models = tuple(models)
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self.open_streams = 0
        self._port = port
        self._queue: collections.deque[ScriptItem] = collections.deque(script)
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._closing = False
        self._handlers: set[asyncio.Task[Any]] = set()
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._clock = Clock()
        self._renderings: collections.OrderedDict[tuple[str, bytes, int], _Cached] = (
            collections.OrderedDict()
        )
        self._cached_bytes = 0
        self._responses_store = ResponseStore()

    @classmethod
    def from_script(cls, path: str | Path, **kwargs: Any) -> MockServer:
        """A server whose queue is preloaded from a reply-script file (see ``load_script``)."""
        return cls(script=load_script(path), **kwargs)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._runner is None:
            raise RuntimeError("MockServer is not started")
        return self._port

    @property
    def url(self) -> str:
        """The server root, ``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What clients take as their OpenAI base URL: ``http://127.0.0.1:<port>/v1``."""
        return self.url + "/v1"

    async def start(self) -> MockServer:
        if self._runner is not None:
            return self
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._tracked(self._chat))
        app.router.add_post("/v1/responses", self._tracked(self._responses))
        app.router.add_get("/v1/responses/{response_id}", self._tracked(self._get_response))
        app.router.add_delete("/v1/responses/{response_id}", self._delete_response)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/models/{model}", self._model)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        # Cancelling handlers when the peer goes away is what lets a stalled stream notice a
        # disconnect without writing, and what makes close() prompt.
        runner = web.AppRunner(
            app,
            handle_signals=False,
            handler_cancellation=True,
            access_log=self.access_log,
            access_log_format='%a "%r" %s %b %Tfs',
            # An idle connection, or one trickling in its next request, is closed after this.
            keepalive_timeout=self.header_timeout,
            shutdown_timeout=1.0,
        )
        await runner.setup()
        assert runner.server is not None
        try:
            listener = await listen(runner.server, self.host, self._port, self.header_timeout)
        except BaseException:
            await runner.cleanup()
            raise
        self._port = int(listener.sockets[0].getsockname()[1])
        self._closing = False
        self._runner, self._listener = runner, listener
        return self

    async def close(self) -> None:
        """Stop serving; streams still open are cut off (that is not counted as a disconnect)."""
        runner, self._runner = self._runner, None
        listener, self._listener = self._listener, None
        if runner is None or listener is None:
            return
        self._closing = True
        listener.close()
        for task in list(self._handlers):
            task.cancel()
        await runner.cleanup()
        await listener.wait_closed()
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(RuntimeError("MockServer closed while waiting"))
        self._waiters.clear()

    async def __aenter__(self) -> MockServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- scripting -------------------------------------------------------------------------

    def enqueue(self, *items: ScriptItem) -> None:
        """Queue what the next requests get (chat or responses), one item each, in order."""
        for item in items:
            if not isinstance(item, (Reply, Raw, Fault)):
                raise TypeError(f"expected Reply, Raw or Fault, not {type(item).__name__}")
            self._queue.append(item)

    @property
    def pending(self) -> int:
        """Queued items not yet consumed by a request."""
        return len(self._queue)

    def clear(self) -> None:
        """Forget queued items and recorded requests, and reset the counters."""
        self._queue.clear()
        self.requests.clear()
        self._responses_store.clear()
        self.disconnects = 0

    # -- observation -----------------------------------------------------------------------

    async def wait_disconnect(self, timeout: float | None = 5.0, *, count: int = 1) -> None:
        """Return once at least ``count`` client disconnects have been observed in total.

        A disconnect is seen only while a chat handler is still running (streaming, stalled or
        holding its headers back); a stream already fully written cannot notice its reader.
        """
        await self._wait_for(lambda: self.disconnects >= count, timeout, "disconnect")

    async def wait_idle(self, timeout: float | None = 5.0) -> None:
        """Return once no stream is open."""
        await self._wait_for(lambda: self.open_streams == 0, timeout, "idle")

    async def _wait_for(
        self, predicate: Callable[[], bool], timeout: float | None, what: str
    ) -> None:
        if predicate():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"MockServer: no {what} within {timeout} s") from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _notify(self) -> None:
        for predicate, future in list(self._waiters):
            if not future.done() and predicate():
                future.set_result(None)

    def _note_disconnect(self) -> None:
        self.disconnects += 1
        self._notify()

    # -- plumbing --------------------------------------------------------------------------

    def _headers(
        self, content_type: str, extra: Mapping[str, str] | None = None
    ) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        headers["Content-Type"] = content_type
        headers["x-request-id"] = random_id("req_", 32, HEX)
        headers["openai-version"] = "2020-10-01"
        headers["openai-processing-ms"] = str(RANDOM.randrange(50, 250))
        if extra:
            headers.update(extra)
        return headers

    def _json(self, status: int, body: Any, extra: Mapping[str, str] | None = None) -> web.Response:
        return web.Response(
            status=status,
            body=json.dumps(body, ensure_ascii=False).encode(),
            headers=self._headers(_JSON_TYPE, extra),
        )

    async def _record(self, request: web.Request) -> RecordedRequest:
        raw = b""
        if request.can_read_body:
            try:
                reading = request.read()
                # a body already in full needs no deadline (and no task to enforce one)
                if request.content.is_eof():
                    raw = await reading
                else:
                    raw = await asyncio.wait_for(reading, self.header_timeout)
            except asyncio.TimeoutError:
                message = "The request body was not received in time."
                raise web.HTTPRequestTimeout(
                    text=json.dumps(error_body(message, code="timeout")),
                    content_type=_JSON_TYPE,
                ) from None
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=request.headers,
            query=dict(request.query),
            body=raw,
        )
        self.requests.append(recorded)
        return recorded

    def _auth_error(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        if token is None:
            token = request.headers.get("api-key")
        if token == self.api_key:
            return None
        if not token:
            message = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                "or as the password field (with blank username) if you're accessing the API "
                "from your browser and are prompted for a username and password. You can obtain "
                "an API key from https://platform.openai.com/account/api-keys."
            )
            return self._json(401, error_body(message, code=None))
        shown = token[:3] + "*" * 10 + token[-4:] if len(token) > 8 else token[:2] + "****"
        message = (
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        )
        return self._json(401, error_body(message, code="invalid_api_key"))

    def _tracked(
        self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """A handler whose cancellation by a client leaving counts as a disconnect."""

        async def run(request: web.Request) -> web.StreamResponse:
            task = asyncio.current_task()
            if task is not None:
                self._handlers.add(task)
            try:
                return await handler(request)
            except (asyncio.CancelledError, ConnectionResetError):
                if not self._closing:
                    self._note_disconnect()
                raise
            finally:
                if task is not None:
                    self._handlers.discard(task)

        return run

    async def _accept(
        self, recorded: RecordedRequest, check: Callable[[dict[str, Any]], None]
    ) -> tuple[dict[str, Any], ScriptItem | None, Fault] | web.StreamResponse:
        """Check a request, then take its script item and fault.

        Returns the error response instead when the request is refused (or a status fault
        answers it).
        """
        try:
            body = parse_body(recorded.body)
            check(body)
        except BadRequest as exc:
            return self._json(400, exc.body())
        item = self._queue.popleft() if self._queue else self.reply
        if isinstance(item, Fault):
            fault: Fault | None = item
            item = None
        else:
            fault = item.fault if item is not None else None
        fault = fault or Fault()
        if fault.headers_delay > 0:
            await asyncio.sleep(fault.headers_delay)
        if fault.status_code is not None:
            return self._json(fault.status_code, fault.error, fault.headers)
        return body, item, fault

    def _cache_hit(self, api: str, recorded: RecordedRequest) -> _Cached | None:
        """The rendering of this very body answered by the next reply, if it was made before.

        A hit skips parsing, checking and rendering (the same bytes pass the same checks):
        the bytes go out again under fresh ids.
        """
        item = self._queue[0] if self._queue else self.reply
        if item is not None and not isinstance(item, Reply):
            return None
        key = (api, recorded.body, id(item))
        entry = self._renderings.get(key)
        if entry is None:
            return None
        self._renderings.move_to_end(key)
        if self._queue:
            self._queue.popleft()
        return entry

    def _remember(
        self,
        api: str,
        recorded: RecordedRequest,
        item: Reply | None,
        rendered: Rendered,
        store: bool = False,
    ) -> None:
        size = rendered.size
        if size > _CACHE_BYTES:
            return
        self._renderings[(api, recorded.body, id(item))] = _Cached(item, rendered, store)
        self._cached_bytes += size
        while self._cached_bytes > _CACHE_BYTES:
            _, evicted = self._renderings.popitem(last=False)
            self._cached_bytes -= evicted.rendered.size

    # -- plain endpoints -------------------------------------------------------------------

    async def _not_found(self, request: web.Request) -> web.Response:
        await self._record(request)
        message = f"Invalid URL ({request.method} {request.path})"
        return self._json(404, error_body(message))

    async def _models(self, request: web.Request) -> web.Response:
        await self._record(request)
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        data = [self._model_object(m) for m in self.models]
        return self._json(200, {"object": "list", "data": data})

    async def _model(self, request: web.Request) -> web.Response:
        await self._record(request)
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        name = request.match_info["model"]
        if name not in self.models:
            message = f"The model '{name}' does not exist"
            return self._json(404, error_body(message, code="model_not_found", param="model"))
        return self._json(200, self._model_object(name))

    @staticmethod
    def _model_object(name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 1715367049, "owned_by": "openai-sse"}

    # -- chat completions ------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        cached = self._cache_hit("chat", recorded)
        if cached is not None:
            rendered = cached.rendered
            return await self._stream(request, rendered, _NO_FAULT, fresh_ids=rendered.fresh_ids())
        accepted = await self._accept(recorded, check_chat)
        if not isinstance(accepted, tuple):
            return accepted
        body, item, fault = accepted
        if isinstance(item, Raw):
            return await self._send_raw(request, item, fault)
        assert not isinstance(item, Fault)
        streamed = body.get("stream") is True
        if streamed and fault == _NO_FAULT and _ids_all_generated(item):
            rendered = _render_chat(plan_reply(item, body))
            self._remember("chat", recorded, item, rendered)
            return await self._stream(request, rendered, fault)
        plan = plan_reply(item, body)
        if streamed:
            return await self._send_chat_stream(request, plan, fault)
        return await self._send_completion(request, plan, fault)

    async def _send_completion(
        self, request: web.Request, plan: Plan, fault: Fault
    ) -> web.StreamResponse:
        if fault.action == "drop":
            _abort(request)
            return web.Response()
        if fault.action == "stall":
            await self._stall(fault.seconds)
        payload = json.dumps(render_completion(plan), ensure_ascii=False).encode()
        content_type = fault.content_type or _JSON_TYPE
        return web.Response(
            body=fault.body if fault.body is not None else payload,
            headers=self._headers(content_type, fault.headers),
        )

    async def _send_chat_stream(
        self, request: web.Request, plan: Plan, fault: Fault
    ) -> web.StreamResponse:
        content_type = fault.content_type
        if content_type is not None and fault.body is None and "json" in content_type:
            payload = json.dumps(render_completion(plan), ensure_ascii=False).encode()
            return web.Response(body=payload, headers=self._headers(content_type, fault.headers))
        if fault.body is not None:
            blocks: list[Block] = [("chunk", fault.body)]
        else:
            blocks = with_fault(render_stream(plan), fault, special_chunk(plan, fault))
        return await self._stream(
            request, Rendered.build(blocks), fault, content_type=content_type or _SSE_TYPE
        )

    async def _send_raw(self, request: web.Request, raw: Raw, fault: Fault) -> web.StreamResponse:
        blocks: list[Block] = [
            ("done" if b.strip() == b"data: [DONE]" else "chunk", b) for b in raw.blocks
        ]
        if fault.action in ("malformed", "error", "oversized"):
            plan = plan_reply(Reply(text=""), {"model": "raw", "messages": []})
            blocks = with_fault(blocks, fault, special_chunk(plan, fault))
        else:
            blocks = with_fault(blocks, fault, b"")
        return await self._stream(
            request,
            Rendered.build(blocks),
            fault,
            status=raw.status,
            content_type=fault.content_type or raw.content_type,
            extra=raw.headers,
        )

    # -- responses -------------------------------------------------------------------------

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        cached = self._cache_hit("responses", recorded)
        if cached is not None:
            return await self._resend_response(request, cached)
        accepted = await self._accept(recorded, check_responses)
        if not isinstance(accepted, tuple):
            return accepted
        body, item, fault = accepted
        if isinstance(item, Raw):
            return await self._send_raw(request, item, fault)
        assert not isinstance(item, Fault)
        plan = plan_response(item, body)
        events = apply_fault(plan, render_events(plan), fault)
        terminal = events[-1]["type"] in _TERMINAL
        blocks: list[Block] = [
            ("done" if terminal and i == len(events) - 1 else "chunk", data)
            for i, data in enumerate(encode_events(events))
        ]
        ids = [plan.id, *(i.id for i in plan.items), *(i.call_id for i in plan.items if i.call)]
        completions = {m.decode() for _, data in blocks for m in _COMPLETED_AT.findall(data)}
        stamps = [f'"created_at":{plan.created_at}', *sorted(completions)]
        rendered = Rendered.build(blocks, ids, stamps)
        loop = asyncio.get_running_loop()
        stored = StoredResponse(
            plan.id, rendered, loop.time(), self.delay, bool(body.get("background")), events
        )
        store = body.get("store", True) is not False
        if store:
            self._responses_store.add(stored)
        if body.get("stream") is True:
            if fault == _NO_FAULT and not stored.background and _ids_all_generated(item):
                self._remember("responses", recorded, item, rendered, store)
            if fault.body is not None:
                rendered = Rendered.build([("chunk", fault.body)])
            return await self._stream(
                request,
                rendered,
                fault,
                content_type=fault.content_type or _SSE_TYPE,
                # a background response runs on whatever happens to this connection
                origin=stored.origin if stored.background else None,
            )
        if fault.action == "drop":
            _abort(request)
            return web.Response()
        if fault.action == "stall":
            await self._stall(fault.seconds)
        if stored.background:
            return self._json(200, events[0]["response"])
        final = events[-1].get("response")
        if events[-1]["type"] == "response.failed" or not isinstance(final, dict):
            error = next((e["error"] for e in events if e["type"] == "error"), None)
            return self._json(500, {"error": error or error_body("error", "server_error")["error"]})
        return self._json(200, final)

    async def _resend_response(self, request: web.Request, cached: _Cached) -> web.StreamResponse:
        """A repeated streamed request: its rendering re-sent, and stored, under fresh ids."""
        rendered = cached.rendered
        fresh_ids = rendered.fresh_ids()
        if cached.store:
            response_id = fresh_ids[0].decode()  # the response's own id comes first
            loop = asyncio.get_running_loop()
            self._responses_store.add(
                StoredResponse(
                    response_id, rendered, loop.time(), self.delay, False, None, fresh_ids
                )
            )
        return await self._stream(request, rendered, _NO_FAULT, fresh_ids=fresh_ids)

    async def _stored(self, request: web.Request) -> StoredResponse | web.Response:
        """The stored response the path names, or the answer to send instead (the request is
        recorded and authenticated first, as on every endpoint)."""
        await self._record(request)
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        response_id = request.match_info["response_id"]
        stored = self._responses_store.get(response_id)
        if stored is None:
            message = f"Response with id '{response_id}' not found."
            return self._json(404, error_body(message, param="response_id"))
        return stored

    async def _get_response(self, request: web.Request) -> web.StreamResponse:
        stored = await self._stored(request)
        if not isinstance(stored, StoredResponse):
            return stored
        if request.query.get("stream", "").lower() != "true":
            return self._json(200, stored.snapshot(asyncio.get_running_loop().time()))
        if not stored.background:
            message = (
                "This response cannot be streamed because it was not created with background=true."
            )
            return self._json(400, error_body(message, param="stream"))
        after = request.query.get("starting_after", "-1")
        if not after.lstrip("-").isdigit():
            message = f"Invalid 'starting_after': {after!r} is not an integer."
            return self._json(400, error_body(message, param="starting_after", code="invalid_type"))
        start = max(int(after) + 1, 0)
        return await self._stream(
            request,
            stored.rendered,
            _NO_FAULT,
            start=start,
            origin=stored.origin,
            delay=stored.delay,
        )

    async def _delete_response(self, request: web.Request) -> web.StreamResponse:
        stored = await self._stored(request)
        if not isinstance(stored, StoredResponse):
            return stored
        self._responses_store.pop(stored.id)
        return self._json(200, {"id": stored.id, "object": "response", "deleted": True})

    # -- writing streams -------------------------------------------------------------------

    async def _stream(
        self,
        request: web.Request,
        rendered: Rendered,
        fault: Fault,
        *,
        status: int = 200,
        content_type: str = _SSE_TYPE,
        extra: Mapping[str, str] | None = None,
        start: int = 0,
        origin: float | None = None,
        delay: float | None = None,
        fresh_ids: Sequence[bytes] = (),
    ) -> web.StreamResponse:
        """Send a rendered stream, paced on the shared clock, with the fault's drop or stall.

        ``origin`` is when the stream began (a stored response began before this request);
        a stall on a stream of its own shifts the rest of its schedule.
        """
        added = {**fault.headers, **extra} if extra else fault.headers
        headers = self._headers(content_type, added)
        pace = self.delay if delay is None else delay
        response: web.StreamResponse
        if pace <= 0 and fault.action not in ("drop", "stall"):
            # everything is due at once: status line, headers, body and the end of the chunked
            # encoding leave in one write (a StreamResponse sends its headers on their own)
            body = rendered.payload(start, len(rendered), fresh_ids)
            response = web.Response(status=status, headers=headers, body=body)
            response.enable_chunked_encoding()
            start = len(rendered)  # nothing is left for deliver()
        else:
            response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(request)
        self.open_streams += 1
        loop = asyncio.get_running_loop()
        began = loop.time() if origin is None else origin
        try:
            cut = len(rendered)
            if fault.action in ("drop", "stall"):
                cut = rendered.fault_index(fault)
            if start < cut:
                await deliver(
                    response,
                    rendered,
                    start=start,
                    stop=cut,
                    delay=pace,
                    origin=began,
                    clock=self._clock,
                    fresh_ids=fresh_ids,
                )
            if fault.action == "drop":
                _abort(request)
                return response
            if fault.action == "stall":
                stalled = loop.time()
                await self._stall(fault.seconds)
                if origin is None:
                    began += loop.time() - stalled
            await deliver(
                response,
                rendered,
                start=max(start, cut),
                delay=pace,
                origin=began,
                clock=self._clock,
                fresh_ids=fresh_ids,
            )
            await response.write_eof()
        except ConnectionResetError:
            if not self._closing:
                self._note_disconnect()
        finally:
            self.open_streams -= 1
            self._notify()
        return response

    async def _stall(self, seconds: float | None) -> None:
        if seconds is None:
            await asyncio.get_running_loop().create_future()
        else:
            await asyncio.sleep(seconds)


def _ids_all_generated(reply: Reply | None) -> bool:
    """True when every id in the reply's stream is random, so a re-send may renew them."""
    if reply is None:
        return True
    return all(call.id is None for call in reply.tool_calls) and all(
        _ids_all_generated(choice) for choice in reply.choices
    )


def _render_chat(plan: Plan) -> Rendered:
    ids = [plan.id, *(call["id"] for c in plan.choices for call in c.tool_calls)]
    return Rendered.build(render_stream(plan), ids, [f'"created":{plan.created}'])


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    if transport.get_write_buffer_size():
        transport.close()
    else:
        transport.abort()
