"""What the relay keeps about a generation, and the protocol every store implements.

A stream is an append-only log of events (chunks, then one terminal ``done`` or ``error``)
plus a listening lease (renewed by followers; the generation stops when it lapses), an owner
heartbeat (renewed by the instance that runs the generation; followers end the stream when
that instance is gone) and a stop channel (the instance that runs a generation hears a stop
asked for on any instance).
The relay's logic is written once against this protocol; the stores only keep data.

A store kept in this process may also offer :class:`LocalStore`, the same data without
awaits: the relay then stores chunks from the SDK's chunk hook and hands their SSE frames
straight to the followers that keep up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol, cast, runtime_checkable

from ..sse.encoder import encode_event

__all__ = [
    "CHUNK",
    "DONE",
    "ERROR",
    "TERMINAL_KINDS",
    "FrameSink",
    "InvalidEventId",
    "LocalStore",
    "Store",
    "StoreUnavailable",
    "StreamEvent",
    "append",
    "event_frame",
    "local_store",
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


FrameSink = Callable[[bytes, str, bool], bool]
"""Takes each new event's SSE frame, its id and whether it ends the stream; False: drop me.

It runs inside the write (the generation's chunk hook), so it is quick and never raises.
"""


@runtime_checkable
class LocalStore(Store, Protocol):
    """A :class:`Store` in this process, which can be written and read without an await.

    An optional capability: the relay checks for it (:func:`local_store`) and
    then takes its fast path. The generation stores each chunk at once, from the SDK's chunk
    hook, as the JSON bytes it arrived as (no writer task, no batches); each follower sends
    ready-made frames (see :func:`event_frame`), and while its client keeps up it subscribes
    a sink that takes each frame as it is stored, without waking its task, and writes the
    frames of one turn of the loop to the socket together.
    A store without it (:class:`~openai_sse.relay.RedisStore`) is written in batches by a
    task and followed with awaited, blocking reads.
    """

    def extend_now(
        self, stream_id: str, events: Sequence[tuple[str, str | bytes]]
    ) -> list[str] | None:
        """:meth:`Store.extend` without an await; ``data`` may also be JSON as UTF-8 bytes.

        Before it returns, every sink subscribed to the stream is called with each event
        stored, in order (:meth:`Store.extend` calls them too); a sink that returns False is
        dropped. ``read`` gives bytes data back as text.
        """

    def frames_after(
        self, stream_id: str, after: str | None
    ) -> tuple[list[bytes], str | None, bool]:
        """The :func:`event_frame` of each event after id ``after`` (in order, possibly
        joined into fewer pieces), the last id, whether the stream ended.

        Raises :class:`InvalidEventId` as ``read(..., timeout=0)`` does. A stream that is
        gone (expired) reads as ended with nothing more.
        """

    def subscribe(self, stream_id: str, sink: FrameSink) -> bool:
        """Call ``sink`` with every event stored from now on, until it returns False;
        False (and no call) if the stream is gone or ended."""

    def unsubscribe(self, stream_id: str, sink: FrameSink) -> None:
        """Stop calling ``sink``; nothing happens if it was dropped already."""


def local_store(store: Store) -> LocalStore | None:
    """``store`` when it offers :class:`LocalStore`, else None.

    Decided once per class: the protocol check looks up every method (some 17 µs), and the
    relay asks at every stream start and every follower."""
    cls = type(store)
    local = _LOCAL.get(cls)
    if local is None:
        local = _LOCAL[cls] = isinstance(store, LocalStore)
    return cast(LocalStore, store) if local else None


_LOCAL: dict[type, bool] = {}


def event_frame(event_id: str, kind: str, data: str | bytes) -> bytes:
    """The SSE frame a follower sends for a stored event: chunks unnamed, ends named by kind."""
    return encode_event(data, event=None if kind == CHUNK else kind, id=event_id)


async def append(store: Store, stream_id: str, kind: str, data: str) -> str | None:
    """Add one event; its id, or ``None`` once the stream ended."""
    ids = await store.extend(stream_id, ((kind, data),))
    return ids[0] if ids else None
