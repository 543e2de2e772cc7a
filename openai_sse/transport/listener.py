"""The four callbacks of OkHttp's ``EventSourceListener``, each a no-op by default."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp

    from .eventsource import EventSource

__all__ = ["EventSourceListener"]


class EventSourceListener:
    """Receives one event source's life: ``on_open``, ``on_event``*, then one terminal call.

    Override any method with ``def`` or ``async def``; an async one is awaited before the next
    event is read, which gives natural back-pressure. An exception from ``on_open`` or
    ``on_event`` ends the stream through ``on_failure``.
    """

    def on_open(
        self, source: EventSource, response: aiohttp.ClientResponse
    ) -> Awaitable[None] | None:
        """The server accepted the stream; events may follow."""
        return None

    def on_event(
        self, source: EventSource, id: str | None, type: str | None, data: str
    ) -> Awaitable[None] | None:
        """One event. ``id`` is the last event id in effect; ``type`` is None for messages."""
        return None

    def on_closed(self, source: EventSource) -> Awaitable[None] | None:
        """The stream ended normally. No further calls follow."""
        return None

    def on_failure(
        self,
        source: EventSource,
        error: BaseException,
        response: aiohttp.ClientResponse | None,
    ) -> Awaitable[None] | None:
        """The stream failed or was cancelled. No further calls follow.

        ``response`` is None when the failure came before any response.
        """
        return None
