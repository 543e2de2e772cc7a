"""An embedded OpenAI-compatible streaming server for tests, demos and offline use.

It speaks the wire format of the real API closely enough that the official ``openai`` package
streams from it, and it can misbehave on demand so clients can be tested against every failure
a real provider or proxy produces.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from .chat_replies import Block, Plan, plan_reply, render_completion, render_stream, special_chunk
from .faults import Fault, error_body
from .script import Raw, Reply, ScriptItem, load_script

__all__ = ["DEFAULT_DELAY", "DEFAULT_MODELS", "MockServer", "RecordedRequest"]

DEFAULT_DELAY = 0.03
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-nano", "deepseek-chat", "deepseek-reasoner")
_SSE_TYPE = "text/event-stream; charset=utf-8"
_JSON_TYPE = "application/json"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it, kept for assertions."""

    method: str
    path: str
    headers: CIMultiDictProxy[str]
    query: Mapping[str, str]
    body: bytes
    json: Any = None
    received_at: float = field(default_factory=time.monotonic)


class MockServer:
    """OpenAI-compatible chat completions on ``127.0.0.1``, with scripts and faults.

    Each chat request takes the next queued item (:class:`Reply`, :class:`Raw` or a bare
    :class:`Fault` applied to the default reply); with the queue empty it answers with the
    deterministic default reply. ``delay`` paces every chunk (seconds per token) so streams
    feel live; tests use 0.
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
    ) -> None:
        self.api_key = api_key
        self.access_log = access_log  # one line per request at INFO when set
        self.delay = delay
        self.host = host
        self.models = tuple(models)
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self.open_streams = 0
        self._port = port
        self._queue: collections.deque[ScriptItem] = collections.deque(script)
        self._runner: web.AppRunner | None = None
        self._closing = False
        self._handlers: set[asyncio.Task[Any]] = set()
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

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
        app.router.add_post("/v1/chat/completions", self._chat)
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
            shutdown_timeout=1.0,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = int(runner.addresses[0][1])
        self._closing = False
        self._runner = runner
        return self

    async def close(self) -> None:
        """Stop serving; streams still open are cut off (that is not counted as a disconnect)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing = True
        for task in list(self._handlers):
            task.cancel()
        await runner.cleanup()
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
        """Queue what the next chat requests get, one item per request, in order."""
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

    # -- handlers --------------------------------------------------------------------------

    def _headers(
        self, content_type: str, extra: Mapping[str, str] | None = None
    ) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict()
        headers["Content-Type"] = content_type
        headers["x-request-id"] = "req_" + secrets.token_hex(16)
        headers["openai-version"] = "2020-10-01"
        headers["openai-processing-ms"] = str(secrets.randbelow(200) + 50)
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
        raw = await request.read() if request.can_read_body else b""
        parsed: Any = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            headers=request.headers,
            query=dict(request.query),
            body=raw,
            json=parsed,
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

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            return await self._chat_inner(request)
        except (asyncio.CancelledError, ConnectionResetError):
            if not self._closing:
                self._note_disconnect()
            raise
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _chat_inner(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        body = recorded.json
        if not isinstance(body, dict):
            message = (
                "We could not parse the JSON body of your request. (HINT: This likely means you "
                "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
                "but what was sent was not valid JSON."
            )
            return self._json(400, error_body(message))
        if not body.get("model"):
            return self._json(400, error_body("you must provide a model parameter"))
        if not isinstance(body.get("messages"), list):
            return self._json(
                400,
                error_body(
                    "Missing required parameter: 'messages'.",
                    code="missing_required_parameter",
                    param="messages",
                ),
            )

        item = self._queue.popleft() if self._queue else None
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

        if isinstance(item, Raw):
            return await self._send_raw(request, item, fault)
        plan = plan_reply(item, body)
        if body.get("stream") is True:
            return await self._send_stream(request, plan, fault)
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

    async def _send_stream(
        self, request: web.Request, plan: Plan, fault: Fault
    ) -> web.StreamResponse:
        blocks = render_stream(plan)
        content_type = fault.content_type
        if content_type is not None and fault.body is None and "json" in content_type:
            payload = json.dumps(render_completion(plan), ensure_ascii=False).encode()
            return web.Response(body=payload, headers=self._headers(content_type, fault.headers))
        if fault.body is not None:
            blocks = [("chunk", fault.body)]

        return await self._stream_blocks(
            request, blocks, plan, fault, 200, content_type or _SSE_TYPE
        )

    async def _send_raw(self, request: web.Request, raw: Raw, fault: Fault) -> web.StreamResponse:
        blocks: list[Block] = [
            ("done" if b.strip() == b"data: [DONE]" else "chunk", b) for b in raw.blocks
        ]
        extra = {**raw.headers, **fault.headers}
        content_type = fault.content_type or raw.content_type
        return await self._stream_blocks(
            request, blocks, None, fault, raw.status, content_type, extra
        )

    async def _stream_blocks(
        self,
        request: web.Request,
        blocks: Sequence[Block],
        plan: Plan | None,
        fault: Fault,
        status: int,
        content_type: str,
        extra: Mapping[str, str] | None = None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=status, headers=self._headers(content_type, {**fault.headers, **(extra or {})})
        )
        await response.prepare(request)
        self.open_streams += 1
        try:
            sent = 0
            pending = fault.action
            for kind, data in blocks:
                if kind == "done" and not fault.send_done:
                    continue
                if (
                    pending is not None
                    and kind != "comment"
                    and (sent >= fault.after or kind == "done")
                ):
                    pending = None
                    if not await self._act(request, response, fault, plan):
                        return response
                if kind == "chunk" and self.delay > 0:
                    await asyncio.sleep(self.delay)
                await response.write(data)
                if kind == "chunk":
                    sent += 1
            if pending is not None and not await self._act(request, response, fault, plan):
                return response
            await response.write_eof()
        except ConnectionResetError:
            if not self._closing:
                self._note_disconnect()
        finally:
            self.open_streams -= 1
            self._notify()
        return response

    async def _act(
        self, request: web.Request, response: web.StreamResponse, fault: Fault, plan: Plan | None
    ) -> bool:
        """Carry out the in-stream fault; False means the stream ends here."""
        if fault.action == "drop":
            _abort(request)
            return False
        if fault.action == "stall":
            await self._stall(fault.seconds)
            return True
        if plan is None:
            plan = plan_reply(Reply(text=""), {"model": "raw", "messages": []})
        await response.write(special_chunk(plan, fault))
        if fault.action == "error":
            if fault.send_done:
                await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return False
        return True

    async def _stall(self, seconds: float | None) -> None:
        if seconds is None:
            await asyncio.get_running_loop().create_future()
        else:
            await asyncio.sleep(seconds)


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    if transport.get_write_buffer_size():
        transport.close()
    else:
        transport.abort()
