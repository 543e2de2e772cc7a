"""Responses the mock server keeps for ``GET /v1/responses/{id}`` and background resume.

A response is generated on a timeline rather than by a task: event ``i`` exists from
``origin + ticks[i] * delay`` on. A follower (the POST that created it, or any later
``GET ?stream=true&starting_after=N``) writes what already exists and then waits on the shared
clock for the rest, so a background response keeps "running" with nobody connected.
"""

from __future__ import annotations

import bisect
import collections
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .delivery import Rendered
from .responses_replies import Event

__all__ = ["ResponseStore", "StoredResponse"]


@dataclass
class StoredResponse:
    """A response as rendered, with its events; a re-sent rendering (fresh ids put in by
    ``fresh_ids``) reads its events back from the bytes only if someone asks for them."""

    id: str
    rendered: Rendered
    origin: float
    delay: float
    background: bool
    decoded: list[Event] | None = None
    fresh_ids: Sequence[bytes] = ()

    @property
    def events(self) -> list[Event]:
        if self.decoded is None:
            blocks = (
                self.rendered.payload(i, i + 1, self.fresh_ids) for i in range(len(self.rendered))
            )
            self.decoded = [json.loads(b.partition(b"\ndata: ")[2]) for b in blocks]
        return self.decoded

    def released(self, now: float) -> int:
        """How many events exist at loop time ``now``."""
        if self.delay <= 0:
            return len(self.rendered)
        elapsed = (now - self.origin) / self.delay
        return bisect.bisect_right(self.rendered.ticks, elapsed + 1e-9)

    def snapshot(self, now: float) -> dict[str, Any]:
        """The ``Response`` object as it stands: the latest one an existing event carried."""
        for event in reversed(self.events[: max(self.released(now), 1)]):
            response = event.get("response")
            if isinstance(response, dict):
                return response
        return dict(self.events[0]["response"])


class ResponseStore:
    """The most recent ``capacity`` responses by id."""

    def __init__(self, capacity: int = 1000) -> None:
        self._items: collections.OrderedDict[str, StoredResponse] = collections.OrderedDict()
        self._capacity = capacity

    def add(self, stored: StoredResponse) -> None:
        self._items[stored.id] = stored
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def get(self, response_id: str) -> StoredResponse | None:
        return self._items.get(response_id)

    def pop(self, response_id: str) -> StoredResponse | None:
        return self._items.pop(response_id, None)

    def clear(self) -> None:
        self._items.clear()
