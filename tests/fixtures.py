"""The real recorded streams in ``tests/recordings`` (byte-for-byte copies of the project's
shared fixtures; ``SOURCES.md`` there says where each came from), as SSE bytes.

The ``compat`` recordings store only the ``data:`` payloads, one per line; they are framed
here the way their source project replays them, so every fixture reads as a wire body.
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "recordings"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "real"
DONE = b"data: [DONE]\n\n"


def fixture_names() -> list[str]:
    """All ten recordings, sorted by their number (file names without directory)."""
    names = [p.name for p in FIXTURES.glob("*.sse")]
    names += [p.name for p in (FIXTURES / "compat").glob("*.chunks.jsonl")]
    return sorted(names)


def fixture_path(name: str) -> Path:
    path = FIXTURES / name
    return path if path.exists() else FIXTURES / "compat" / name


def sse_bytes(name: str) -> bytes:
    """The raw SSE body of a recording, ending with ``data: [DONE]``."""
    path = fixture_path(name)
    raw = path.read_bytes()
    if path.suffix == ".sse":
        return raw
    return b"".join(b"data: " + line + b"\n\n" for line in raw.splitlines() if line) + DONE


def payloads(name: str) -> list[str]:
    """The JSON payload lines of a recording, without the ``[DONE]`` sentinel.

    Split with plain byte operations, independent of the package's own SSE decoder.
    """
    body = sse_bytes(name).decode()
    datas = [block[len("data: ") :] for block in body.split("\n\n") if block]
    return [d for d in datas if d != "[DONE]"]
