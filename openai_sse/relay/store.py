"""What the relay keeps about a generation, and the protocol every store implements.

A stream is an append-only log of events (chunks, then one terminal ``done`` or ``error``)
plus a listening lease (renewed by followers; the generation stops when it lapses), an owner
heartbeat (renewed by the instance that runs the generation; followers end the stream when
that instance is gone) and a stop channel (the instance that runs a generation hears a stop
asked for on any instance).
The relay's logic is written once against this protocol; the stores only keep data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

__all__ = [
    "CHUNK",
    "DONE",
    "ERROR",
    "TERMINAL_KINDS",
    "InvalidEventId",
    "Store",
    "StoreUnavailable",
    "StreamEvent",
    "append",
]

CHUNK = "chunk"
DONE = "done"
ERROR = "error"
TERMINAL_KINDS = frozenset((DONE, ERROR))


class StreamEvent(NamedTuple):
    """One stored event: its id (opaque, ordered), its kind and its JSON text."""

    id: str
    kind: str
    data: str

    @property
    def terminal(self) -> bool:
        return self.kind in TERMINAL_KINDS


class StoreUnavailable(Exception):
    """The store cannot be reached; new streams are refused with 503 rather than hang."""


class InvalidEventId(ValueError):
    """A ``Last-Event-ID`` this store never hands out."""


@runtime_checkable
class Store(Protocol):
    """Storage for resumable streams, shared by every relay instance that uses it."""

    async def create(self, stream_id: str, *, lease: float) -> None:
        """Make an empty stream whose listening lease lasts ``lease`` seconds from now."""

    async def exists(self, stream_id: str) -> bool:
        """Whether the stream is known (created and not yet expired)."""

    async def extend(self, stream_id: str, events: Sequence[tuple[str, str]]) -> list[str] | None:
        """Add ``(kind, data)`` events in order; their ids, or ``None`` once the stream ended.

        The check and the writes are one atomic step, so exactly one terminal event ends a
        stream even when a stop on one instance races the end of the generation on another;
        events after a terminal one in the same batch are dropped.
        """

    async def read(self, stream_id: str, after: str | None, *, timeout: float) -> list[StreamEvent]:
        """Events after id ``after`` (all with ``None``); waits up to ``timeout`` s for one.

        Returns an empty list when nothing arrived in time. Raises :class:`InvalidEventId`
        for an id this store could not have issued; with ``timeout=0`` also for an id later
        than the last event stored (a client cannot wait for an id of the future).
        """

    async def renew_lease(self, stream_id: str, lease: float) -> None:
        """Somebody listens: the generation may run ``lease`` more seconds without listeners."""

    async def wanted(self, stream_id: str) -> bool:
        """Whether the generation should go on: no terminal event yet and the lease runs.

        The generation polls this too, so a stop whose message was missed (say, during a
        reconnection to the store) still ends it once the stop's terminal event is stored.
        """

    async def heartbeat(self, stream_id: str, ttl: float) -> None:
        """The generation is running here and will say so again within ``ttl`` seconds."""

    async def alive(self, stream_id: str) -> bool:
        """Whether the heartbeat of the stream's generation is still fresh."""

    async def request_stop(self, stream_id: str) -> None:
        """Ask whichever instance runs the generation to stop it."""

    async def listen_stops(self, on_stop: Callable[[str], None]) -> None:
        """Call ``on_stop(stream_id)`` for every stop request, until cancelled."""

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the store answers."""

    async def close(self) -> None:
        """Release connections."""


async def append(store: Store, stream_id: str, kind: str, data: str) -> str | None:
    """Add one event; its id, or ``None`` once the stream ended."""
    ids = await store.extend(stream_id, ((kind, data),))
    return ids[0] if ids else None
