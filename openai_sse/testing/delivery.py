"""Writing rendered streams to clients: one shared clock for pacing, coalesced writes.

A paced stream does not sleep after each write: every block has an absolute due time
(``origin + ticks * delay``), and all streams wait on one :class:`Clock`, which keeps one timer
per millisecond for everything due in it. A stream that falls behind sends everything already
due in one write, so it catches up instead of drifting. Unpaced, a stream is one write,
headers and end of body included (``MockServer._stream``).
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .faults import Fault
from .tokens import ALNUM, HEX, random_id

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["Block", "Clock", "Kind", "Rendered", "deliver", "with_fault"]

Kind = Literal["chunk", "comment", "done"]
Block = tuple[Kind, bytes]
DONE = b"data: [DONE]\n\n"


class Clock:
    """Wakes waiting streams at their due times, one timer per ``resolution`` for all of them."""

    def __init__(self, resolution: float = 0.001) -> None:
        self._resolution = resolution
        self._slots: dict[int, list[asyncio.Future[None]]] = {}

    async def until(self, when: float) -> None:
        loop = asyncio.get_running_loop()
        if when <= loop.time():
            return
        slot = math.ceil(when / self._resolution)
        waiters = self._slots.get(slot)
        if waiters is None:
            waiters = self._slots[slot] = []
            loop.call_at(slot * self._resolution, self._fire, slot)
        future: asyncio.Future[None] = loop.create_future()
        waiters.append(future)
        await future

    def _fire(self, slot: int) -> None:
        for future in self._slots.pop(slot, ()):
            if not future.done():
                future.set_result(None)


@dataclass(frozen=True)
class Rendered:
    """A stream ready to send: encoded blocks, and the pacing tick each one is due at.

    ``ticks[i]`` counts the data chunks among ``blocks[: i + 1]``: comments and ``[DONE]``
    go out with the chunk before them. ``ids`` are the random ids inside the bytes, so a
    cached rendering can be re-sent under fresh ones (:meth:`fresh_ids`).
    """

    blocks: tuple[bytes, ...]
    kinds: tuple[Kind, ...]
    ticks: tuple[int, ...]
    ids: tuple[str, ...] = ()

    @classmethod
    def build(cls, blocks: Sequence[Block], ids: Sequence[str] = ()) -> Rendered:
        ticks: list[int] = []
        count = 0
        for kind, _ in blocks:
            count += kind == "chunk"
            ticks.append(count)
        return cls(
            tuple(data for _, data in blocks),
            tuple(kind for kind, _ in blocks),
            tuple(ticks),
            tuple(ids),
        )

    def __len__(self) -> int:
        return len(self.blocks)

    @functools.cached_property
    def size(self) -> int:
        """Bytes held by the blocks."""
        return sum(map(len, self.blocks))

    @functools.cached_property
    def whole(self) -> bytes:
        """All the blocks joined, made once for every re-send of a cached rendering."""
        return b"".join(self.blocks)

    def payload(
        self, start: int, stop: int, substitutions: Sequence[tuple[bytes, bytes]] = ()
    ) -> bytes:
        """``blocks[start:stop]`` as one write, with ``substitutions`` (fresh ids) applied."""
        if stop - start == 1:
            data = self.blocks[start]
        elif start == 0 and stop == len(self.blocks):
            data = self.whole
        else:
            data = b"".join(self.blocks[start:stop])
        for old, new in substitutions:
            data = data.replace(old, new)
        return data

    def fault_index(self, fault: Fault) -> int:
        """Where a connection fault (drop, stall) strikes: before this block.

        ``fault.after`` counts data chunks already sent; past the end it strikes before the
        final ``[DONE]`` (or at the very end).
        """
        for index, kind in enumerate(self.kinds):
            if kind == "comment":
                continue
            sent = self.ticks[index] - (kind == "chunk")
            if sent >= fault.after or kind == "done":
                return index
        return len(self.blocks)

    def fresh_ids(self) -> list[tuple[bytes, bytes]]:
        """Byte substitutions giving every id in the stream a new random tail (hex for a hex
        tail, as in a UUID, letters and digits otherwise)."""
        return [
            (old, random_id(prefix, length, alphabet).encode())
            for old, prefix, length, alphabet in self._id_shapes
        ]

    @functools.cached_property
    def _id_shapes(self) -> list[tuple[bytes, str, int, str]]:
        shapes = []
        for old in self.ids:
            cut = max(old.rfind("_"), old.rfind("-")) + 1
            tail = old[cut:]
            alphabet = HEX if tail and set(tail) <= set(HEX) else ALNUM
            shapes.append((old.encode(), old[:cut], len(tail), alphabet))
        return shapes


def with_fault(blocks: Sequence[Block], fault: Fault, odd: bytes) -> list[Block]:
    """The blocks as a fault changes them: ``odd`` (a malformed, error or oversized event)
    put where the fault strikes, an error ending the stream there, ``[DONE]`` left out for
    ``no_done``. Connection faults (drop, stall) leave the blocks alone.
    """
    kept = [block for block in blocks if fault.send_done or block[0] != "done"]
    if fault.action not in ("malformed", "error", "oversized"):
        return kept
    at = Rendered.build(kept).fault_index(fault)
    if fault.action == "error":
        end: list[Block] = [("done", DONE)] if fault.send_done else []
        return [*kept[:at], ("chunk", odd), *end]
    return [*kept[:at], ("chunk", odd), *kept[at:]]


async def deliver(
    response: web.StreamResponse,
    rendered: Rendered,
    *,
    start: int = 0,
    stop: int | None = None,
    delay: float = 0.0,
    origin: float = 0.0,
    clock: Clock,
    substitutions: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Write ``blocks[start:stop]``, none before ``origin + ticks * delay``.

    Whatever is due at once goes out in one write, which is what keeps an unpaced stream (or
    a paced one replaying a backlog) at a few large writes instead of one per event.
    """
    ticks = rendered.ticks
    end = len(ticks) if stop is None else stop
    loop = asyncio.get_running_loop()
    index = start
    while index < end:
        if delay > 0:
            due = origin + ticks[index] * delay
            if due > loop.time():
                await clock.until(due)
            elapsed = (loop.time() - origin) / delay
            upto = max(bisect.bisect_right(ticks, elapsed + 1e-9, index, end), index + 1)
        else:
            upto = end
        await response.write(rendered.payload(index, upto, substitutions))
        index = upto
