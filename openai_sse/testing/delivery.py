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
import re
import time
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
    go out with the chunk before them. ``ids`` are the random ids inside the bytes and
    ``stamps`` the JSON members holding the time of rendering (``"created":1700000000``), so a
    cached rendering can be re-sent under fresh ids and the current time (:meth:`fresh_ids`).
    """

    blocks: tuple[bytes, ...]
    kinds: tuple[Kind, ...]
    ticks: tuple[int, ...]
    ids: tuple[str, ...] = ()
    stamps: tuple[str, ...] = ()

    @classmethod
    def build(
        cls, blocks: Sequence[Block], ids: Sequence[str] = (), stamps: Sequence[str] = ()
    ) -> Rendered:
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
            tuple(stamps),
        )

    def __len__(self) -> int:
        return len(self.blocks)

    @functools.cached_property
    def size(self) -> int:
        """Bytes held by the blocks."""
        return sum(map(len, self.blocks))

    @functools.cached_property
    def _encoded_ids(self) -> tuple[bytes, ...]:
        return tuple(old.encode() for old in (*self.ids, *self.stamps))

    @functools.cached_property
    def _templates(self) -> dict[tuple[bytes, ...], tuple[list[bytes], list[int]]]:
        return {}

    def _template(self, stamps: tuple[bytes, ...]) -> tuple[list[bytes], list[int]]:
        """All the blocks joined, with these ``stamps`` put in, and cut at every id: the text
        between the ids and which id comes at each cut. Made on the first re-send in each
        second (the stamps change once a second) and kept until the next."""
        found = self._templates.get(stamps)
        if found is not None:
            return found
        count = len(self.ids)
        whole = b"".join(self.blocks)
        for old, new in zip(self._encoded_ids[count:], stamps, strict=True):
            whole = whole.replace(old, new)
        index = {old: i for i, old in enumerate(self._encoded_ids[:count])}
        longest_first = sorted(index, key=len, reverse=True)
        parts = re.split(b"(" + b"|".join(map(re.escape, longest_first)) + b")", whole)
        found = parts[0::2], [index[old] for old in parts[1::2]]
        self._templates.clear()
        self._templates[stamps] = found
        return found

    def payload(self, start: int, stop: int, fresh_ids: Sequence[bytes] = ()) -> bytes:
        """``blocks[start:stop]`` as one write, with ``fresh_ids`` (from :meth:`fresh_ids`)
        in place of ``ids`` and ``stamps``."""
        data = self.blocks[start] if stop - start == 1 else None
        if not fresh_ids:
            return data if data is not None else b"".join(self.blocks[start:stop])
        if data is None and start == 0 and stop == len(self.blocks) and self.ids:
            count = len(self.ids)
            texts, slots = self._template(tuple(fresh_ids[count:]))
            if count == 1:
                return fresh_ids[0].join(texts)
            pieces = [texts[0]] * (2 * len(slots) + 1)
            pieces[0::2] = texts
            pieces[1::2] = map(fresh_ids.__getitem__, slots)
            return b"".join(pieces)
        if data is None:
            data = b"".join(self.blocks[start:stop])
        for old, new in zip(self._encoded_ids, fresh_ids, strict=True):
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

    def fresh_ids(self) -> list[bytes]:
        """What a re-send puts in place of each of ``ids`` and then of ``stamps``: an id with
        the same prefix and a new random tail (hex for a hex tail, as in a UUID, letters and
        digits otherwise); a stamp with the current time."""
        fresh = [
            random_id(prefix, length, alphabet).encode()
            for prefix, length, alphabet in self._id_shapes
        ]
        if self.stamps:
            now = int(time.time())
            fresh.extend(f"{stamp.rpartition(':')[0]}:{now}".encode() for stamp in self.stamps)
        return fresh

    @functools.cached_property
    def _id_shapes(self) -> list[tuple[str, int, str]]:
        shapes = []
        for old in self.ids:
            cut = max(old.rfind("_"), old.rfind("-")) + 1
            tail = old[cut:]
            alphabet = HEX if tail and set(tail) <= set(HEX) else ALNUM
            shapes.append((old[:cut], len(tail), alphabet))
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
    fresh_ids: Sequence[bytes] = (),
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
        await response.write(rendered.payload(index, upto, fresh_ids))
        index = upto
