"""The real recorded Responses streams in ``tests/recordings/responses`` (byte-for-byte copies
of the project's shared fixtures; ``SOURCES.md`` there says where each came from)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings" / "responses"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real" / "responses"
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def names() -> list[str]:
    return sorted(p.name for p in RECORDINGS.glob("*.sse"))


def body(name: str) -> bytes:
    return (RECORDINGS / name).read_bytes()


def payloads(name: str) -> list[str]:
    """The ``data:`` payloads of the events a conforming SSE parser delivers.

    Split with plain string operations, independent of the package's decoder; a last block
    not closed by a blank line is dropped, as the SSE specification requires.
    """
    text = body(name).decode()
    blocks = text.split("\n\n")
    blocks = blocks[:-1]  # the part after the last blank line is unterminated (or empty)
    out = []
    for block in blocks:
        data = [line[len("data: ") :] for line in block.split("\n") if line.startswith("data: ")]
        if data:
            out.append("\n".join(data))
    return out


def terminal_object(name: str) -> dict[str, Any] | None:
    """The ``response`` of the terminal event, as plain JSON, if the stream delivers one."""
    for data in payloads(name):
        payload = json.loads(data)
        if payload["type"] in TERMINAL:
            response: dict[str, Any] = payload["response"]
            return response
    return None


def matches(ours: Any, theirs: Any) -> bool:
    """True when every value the server sent is what we hold (undeclared keys aside)."""
    if isinstance(theirs, dict):
        return isinstance(ours, dict) and all(
            matches(ours[key], value) for key, value in theirs.items() if key in ours
        )
    if isinstance(theirs, list):
        return (
            isinstance(ours, list)
            and len(ours) == len(theirs)
            and all(matches(a, b) for a, b in zip(ours, theirs, strict=True))
        )
    return bool(ours == theirs)


def events_of(name: str) -> list[bytes]:
    """The recording's terminated events as separate SSE blocks (``event:`` + ``data:``)."""
    text = body(name).decode()
    return [(block + "\n\n").encode() for block in text.split("\n\n")[:-1]]


def without_event_lines(raw: bytes) -> bytes:
    """The same stream as a server that sends no ``event:`` lines would."""
    lines = raw.split(b"\n")
    return b"\n".join(line for line in lines if not line.startswith(b"event:"))


def pieces(raw: bytes, rng: random.Random, largest: int = 40) -> list[bytes]:
    """``raw`` cut at random places into reads of 1 to ``largest`` bytes."""
    out = []
    i = 0
    while i < len(raw):
        n = rng.randint(1, largest)
        out.append(raw[i : i + n])
        i += n
    return out
