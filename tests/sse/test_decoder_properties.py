"""Property tests: chunking never matters, and the encoder round-trips through the decoder."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openai_sse.sse import ServerSentEvent, SSEDecoder, encode_comment, encode_event

SETTINGS = settings(max_examples=200, deadline=None)

FIELD_NAMES = ["data", "event", "id", "retry", "Data", "", ":", "data ", " data", "\ufeffdata", "x"]
VALUE_TEXT = st.text(
    alphabet=st.sampled_from(list("ab: 0129\x00\t\ufeff\u2028é😀\x85"))
    | st.characters(exclude_categories=["Cs"]),
    max_size=12,
)
TERMINATORS = [b"\n", b"\r", b"\r\n"]


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    """Streams built from field lines, blank lines and raw bytes, with mixed terminators."""
    parts: list[bytes] = []
    if draw(st.booleans()):
        parts.append(b"\xef\xbb\xbf")
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.integers(0, 9))
        if kind < 6:
            name = draw(st.sampled_from(FIELD_NAMES))
            sep = draw(st.sampled_from(["", ":", ": ", ":  "]))
            line = (name + sep + draw(VALUE_TEXT)).encode()
        elif kind < 8:
            line = b""
        else:
            line = draw(st.binary(max_size=8))
        parts.append(line + draw(st.sampled_from(TERMINATORS)))
    if draw(st.booleans()):
        parts.append(draw(st.binary(max_size=8)))
    return b"".join(parts)


def split(raw: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c % (len(raw) + 1) for c in cuts), len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(bounds)]


def run(reads: list[bytes], seed: str = "") -> tuple[list[ServerSentEvent], str, int | None]:
    decoder = SSEDecoder(seed)
    events = [e for chunk in reads for e in decoder.feed(chunk)]
    assert decoder.end() == []
    return events, decoder.last_event_id, decoder.retry


@SETTINGS
@given(streams(), st.lists(st.integers(min_value=0), max_size=12), st.sampled_from(["", "s"]))
def test_any_split_gives_same_result(raw: bytes, cuts: list[int], seed: str) -> None:
    whole = run([raw], seed)
    assert run(split(raw, cuts), seed) == whole
    assert run([raw[i : i + 1] for i in range(len(raw))], seed) == whole


@SETTINGS
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=12))
def test_arbitrary_bytes_split_anywhere(raw: bytes, cuts: list[int]) -> None:
    assert run(split(raw, cuts)) == run([raw])


def expected_data(data: str) -> str:
    return data.replace("\r\n", "\n").replace("\r", "\n")


DATA_TEXT = st.text(
    alphabet=st.sampled_from(list(" \r\n\x00\u2028\u2029\x85\ufeff:a"))
    | st.characters(exclude_categories=["Cs"]),
    max_size=40,
)
LINE_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=12
)
ID_TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00"), max_size=12
)


@SETTINGS
@given(DATA_TEXT)
def test_data_round_trip(data: str) -> None:
    assert SSEDecoder().feed(encode_event(data)) == [ServerSentEvent(expected_data(data))]


@SETTINGS
@given(
    DATA_TEXT,
    st.none() | LINE_TEXT,
    st.none() | ID_TEXT,
    st.none() | st.integers(0, 2**64 - 1),
    st.lists(st.integers(min_value=0), max_size=6),
)
def test_full_round_trip(
    data: str, event: str | None, id: str | None, retry: int | None, cuts: list[int]
) -> None:
    raw = encode_comment("hello") + encode_event(data, event=event, id=id, retry=retry)
    decoder = SSEDecoder()
    events = [e for chunk in split(raw, cuts) for e in decoder.feed(chunk)]
    assert events == [ServerSentEvent(expected_data(data), event or None, id or None)]
    assert decoder.last_event_id == (id or "")
    assert decoder.retry == retry


@SETTINGS
@given(st.lists(st.tuples(DATA_TEXT, st.none() | LINE_TEXT, st.none() | ID_TEXT), max_size=8))
def test_stream_of_events_round_trip(items: list[tuple[str, str | None, str | None]]) -> None:
    raw = b"".join(encode_event(d, event=e, id=i) for d, e, i in items)
    expected = []
    last = ""
    for data, event, id in items:
        if id is not None:
            last = id
        expected.append(ServerSentEvent(expected_data(data), event or None, last or None))
    assert run([raw]) == (expected, last, None)


@SETTINGS
@given(LINE_TEXT, st.sampled_from(["\r", "\n", "\r\n"]), LINE_TEXT)
def test_encode_rejects_line_breaks(head: str, brk: str, tail: str) -> None:
    bad = head + brk + tail
    with pytest.raises(ValueError, match="CR or LF"):
        encode_event("x", event=bad)
    with pytest.raises(ValueError, match="CR or LF"):
        encode_event("x", id=bad)


@SETTINGS
@given(ID_TEXT, ID_TEXT)
def test_encode_rejects_nul_in_id(head: str, tail: str) -> None:
    with pytest.raises(ValueError, match="NUL"):
        encode_event("x", id=head + "\x00" + tail)
