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
    ``idle``: the longest silence on the socket, waiting for the headers or between two reads
    of the body; comments count as traffic (600 s, since a reasoning model may think for
    minutes after its first chunk).
    ``total``: an optional deadline for the whole stream, reconnections included (none).
    """

    connect: float | None = 10.0
    first_event: float | None = 600.0
    idle: float | None = 600.0
    total: float | None = None

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
