"""The size cap is one rule under any chunking: no line and no event's data over the cap.

A line is measured in bytes without its terminator (comments and unknown fields included);
an event's data is its data lines joined by LF. Whether a stream fails, and which events come
before the failure, must not depend on how the bytes were cut into reads.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openai_sse import ProtocolError
from openai_sse.sse import DEFAULT_MAX_EVENT_SIZE, SSEDecoder

LIMIT = 24
BOM = b"\xef\xbb\xbf"


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    """Lines of every kind with lengths around the cap, mixed terminators, maybe a BOM."""
    parts: list[bytes] = [BOM] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(0, 14))):
        kind = draw(st.sampled_from(["data: ", "data:", ":", ": ", "event: ", "id: ", "x: ", ""]))
        if kind:
            size = draw(st.integers(0, LIMIT + 8))
            body = draw(st.sampled_from([b"a", b"\xe4\xb8\xad", b"\xff"])) * size
            line = kind.encode() + body[:size]
        else:
            line = b""
        parts.append(line + draw(st.sampled_from([b"\n", b"\r", b"\r\n"])))
    if draw(st.booleans()):
        parts.append(b"data: " + b"t" * draw(st.integers(0, LIMIT + 8)))
    return b"".join(parts)


def split(raw: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c % (len(raw) + 1) for c in cuts), len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(bounds)]


def outcome(
    reads: list[bytes], limit: int = LIMIT
) -> tuple[list[tuple[str, str | None, str | None]], bool]:
    """The events delivered before the stream failed (if it did), and whether it failed."""
    decoder = SSEDecoder(max_event_size=limit)
    events: list[tuple[str, str | None, str | None]] = []
    try:
        for chunk in reads:
            events += [(e.data, e.type, e.id) for e in decoder.feed(chunk)]
        decoder.end()
    except ProtocolError:
        return events, True
    return events, False


def reference(raw: bytes) -> tuple[list[str], bool]:
    """The rule written plainly over the whole stream: event data up to the first violation."""
    if raw.startswith(BOM):
        raw = raw[3:]
    *lines, tail = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    events: list[str] = []
    data: list[bytes] = []
    for line in lines:
        if len(line) > LIMIT:
            return events, True
        if not line:
            if data:
                events.append(b"\n".join(data).decode("utf-8", "replace"))
            data = []
        elif line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
            if len(b"\n".join(data)) > LIMIT:
                return events, True
    return events, len(tail) > LIMIT


@settings(max_examples=300, deadline=None)
@given(streams(), st.lists(st.integers(min_value=0), max_size=10))
def test_cap_does_not_depend_on_chunking(raw: bytes, cuts: list[int]) -> None:
    whole = outcome([raw])
    assert outcome(split(raw, cuts)) == whole
    assert outcome([raw[i : i + 1] for i in range(len(raw))]) == whole
    events, failed = whole
    assert ([data for data, _, _ in events], failed) == reference(raw)


BIG = 1536 * 1024  # 1.5 MiB, over the default cap of 1 MiB


@pytest.mark.parametrize("read_size", [None, 64 * 1024, 4096])
@pytest.mark.parametrize("line", [b": " + b"c" * BIG, b"x-pad: " + b"p" * BIG])
def test_long_non_data_line_fails_however_it_is_read(line: bytes, read_size: int | None) -> None:
    raw = b"data: before\n\n" + line + b"\n\ndata: after\n\n"
    reads = (
        [raw]
        if read_size is None
        else [raw[i : i + read_size] for i in range(0, len(raw), read_size)]
    )
    events, failed = outcome(reads, DEFAULT_MAX_EVENT_SIZE)
    assert ([data for data, _, _ in events], failed) == (["before"], True)


def test_lines_and_data_are_measured_in_bytes() -> None:
    decoder = SSEDecoder(max_event_size=30)
    assert [e.data for e in decoder.feed(b"data:" + "中".encode() * 8 + b"\n\n")] == ["中" * 8]
    line = b"data:" + "中".encode() * 5 + b"\n"
    with pytest.raises(ProtocolError):  # two lines of 20 bytes, 31 bytes of data
        decoder.feed(line * 2 + b"\n")
