"""Stream-aware timeouts.

A single total deadline is wrong for streams (aiohttp's 300 s default kills long answers), so
each phase of a stream gets its own bound.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_TIMEOUT", "Timeout"]


@dataclass(frozen=True)
class Timeout:
    """Timeouts in seconds; ``None`` disables one.

    ``connect``: opening the TCP/TLS connection (10 s).
    ``first_event``: from sending the request to the first event, so a server that only sends
    keep-alive comments cannot hold a stream forever (600 s, room for slow reasoning models).
    ``idle``: the longest time without data, waiting for the headers or between two reads of
    the body (600 s, since a reasoning model may think for minutes after its first chunk).
    By default only reads that carry event data count: keep-alive comments (``: ping``) do
    not, so a server or proxy that only pings can not hold a stream open forever. With
    ``idle_counts_comments=True`` any bytes count, comments included. Time spent in listener
    callbacks never counts, and bytes already waiting to be read are never idle.
    ``total``: an optional deadline for the whole call: every attempt, retries, waits between
    them and reconnections included (none).
    """

    connect: float | None = 10.0
    first_event: float | None = 600.0
    idle: float | None = 600.0
    total: float | None = None
    idle_counts_comments: bool = False

    @classmethod
    def of(cls, value: Timeout | float | None) -> Timeout:
        """Accept a ``Timeout``, one number used for every phase but ``total``, or None for
        no timeouts at all."""
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(connect=None, first_event=None, idle=None, total=None)
        return cls(connect=value, first_event=value, idle=value, total=None)


DEFAULT_TIMEOUT = Timeout()
