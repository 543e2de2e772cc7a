"""Live timings and counts of one stream, the same for every API."""

from __future__ import annotations

import time
from typing import Final

__all__ = ["MIN_RATE_SPAN", "StreamMetrics"]

#: Below this span (seconds) between the first token and the end of the stream, a rate says
#: more about how the bytes were buffered on the way than about the model: no rate then.
MIN_RATE_SPAN: Final = 0.05


class StreamMetrics:
    """Timings in seconds from the start of the stream, and counts; updated live.

    ``chunks`` counts the chunks (chat) or events (Responses) delivered; ``retries`` the
    attempts made again before anything was delivered.
    """

    __slots__ = (
        "bytes",
        "chunks",
        "completion_tokens",
        "duration",
        "retries",
        "started",
        "time_to_first_token",
        "time_to_headers",
    )

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.time_to_headers: float | None = None
        self.time_to_first_token: float | None = None
        self.duration: float | None = None
        self.chunks = 0
        self.bytes = 0
        self.completion_tokens: int | None = None
        self.retries = 0

    @property
    def tokens_per_second(self) -> float | None:
        """Generation speed after the first token, or None when it cannot be measured.

        The first token ends the waiting time (``time_to_first_token``), so the rate counts the
        ``completion_tokens - 1`` tokens that followed it over the time from the first token to
        the end of the stream. None without usage, with fewer than 2 tokens, or when that span
        is under :data:`MIN_RATE_SPAN` (a tiny answer that arrived in one read has no
        meaningful speed).
        """
        tokens, duration, first = self.completion_tokens, self.duration, self.time_to_first_token
        if tokens is None or duration is None or first is None or tokens < 2:
            return None
        span = duration - first
        if span < MIN_RATE_SPAN:
            return None
        return (tokens - 1) / span

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"StreamMetrics({fields}, tokens_per_second={self.tokens_per_second!r})"
