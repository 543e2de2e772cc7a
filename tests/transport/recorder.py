"""A listener that records every callback, like OkHttp's ``EventSourceRecorder``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from openai_sse import ProtocolError
from openai_sse.transport import EventSource, EventSourceListener


class Recorder(EventSourceListener):
    """Async callbacks; ``on_*_hook`` lets a test act inside a callback (e.g. cancel)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.terminal = 0
        self.error: BaseException | None = None
        self.failure_response: aiohttp.ClientResponse | None = None
        self.failure_body: str | None = None
        self.open_hook: Callable[[EventSource], Any] | None = None
        self.event_hook: Callable[[EventSource, str], Any] | None = None

    async def on_open(self, source: EventSource, response: aiohttp.ClientResponse) -> None:
        self.calls.append(("open", response.status))
        if self.open_hook is not None:
            self.open_hook(source)

    async def on_event(
        self, source: EventSource, id: str | None, type: str | None, data: str
    ) -> None:
        self.calls.append(("event", id, type, data))
        if self.event_hook is not None:
            self.event_hook(source, data)

    async def on_closed(self, source: EventSource) -> None:
        self.terminal += 1
        self.calls.append(("closed",))

    async def on_failure(
        self,
        source: EventSource,
        error: BaseException,
        response: aiohttp.ClientResponse | None,
    ) -> None:
        self.terminal += 1
        self.error = error
        self.failure_response = response
        self.calls.append(("failure", type(error).__name__))
        if response is not None and isinstance(error, ProtocolError):
            self.failure_body = await response.text()

    @property
    def events(self) -> list[str]:
        return [c[3] for c in self.calls if c[0] == "event"]


class SyncRecorder(EventSourceListener):
    """The same contract with plain ``def`` callbacks."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_open(self, source: EventSource, response: aiohttp.ClientResponse) -> None:
        self.calls.append(("open", response.status))

    def on_event(self, source: EventSource, id: str | None, type: str | None, data: str) -> None:
        self.calls.append(("event", id, type, data))

    def on_closed(self, source: EventSource) -> None:
        self.calls.append(("closed",))

    def on_failure(
        self,
        source: EventSource,
        error: BaseException,
        response: aiohttp.ClientResponse | None,
    ) -> None:
        self.calls.append(("failure", type(error).__name__))
