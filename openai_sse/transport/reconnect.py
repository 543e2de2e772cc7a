"""Browser-style reconnection, which OkHttp refuses and long-lived GET feeds need."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Reconnect"]


@dataclass(frozen=True)
class Reconnect:
    """When and how fast a GET event source reconnects after EOF or a network error.

    The server's ``retry:`` replaces ``delay``. After ``n`` connections in a row that
    delivered no event, the wait grows as ``delay * backoff**(n-1)``, capped at ``max_delay``;
    ``jitter`` spreads it by that fraction either way so clients do not return in lockstep.
    ``max_attempts`` bounds such fruitless attempts in a row (None: no bound, as browsers).
    """

    delay: float = 3.0
    max_delay: float = 60.0
    backoff: float = 2.0
    jitter: float = 0.2
    max_attempts: int | None = None

    def wait_time(self, retry_ms: int | None, failures: int) -> float:
        """Seconds to wait before the next attempt."""
        base = self.delay if retry_ms is None else retry_ms / 1000.0
        if failures > 1:
            base *= self.backoff ** min(failures - 1, 32)
        base = min(base, self.max_delay)
        if self.jitter:
            base *= 1.0 + random.uniform(-self.jitter, self.jitter)
        return max(base, 0.0)
