"""The decoder's fast paths (a read of nothing but single-line ``data: `` events, and single
``data:`` blocks) give exactly what the line-by-line path gives, under any chunking."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from openai_sse.sse import ServerSentEvent, SSEDecoder

VALUE = st.sampled_from(
    [b"{}", b'{"a":"\xe4\xb8\xad"}', b"", b" x", b"[DONE]", b"\xff", b"data: y"]
)
# Mostly plain events, sometimes a block the fast paths must refuse.
ODD = st.sampled_from(
    [
        b"data:x\n\n",
        b"data: a\ndata: b\n\n",
        b": ping\n\n",
        b"\n",
        b"id: 7\n",
        b"event: e\n",
        b"retry: 10\n",
        b"data: c\r\n\r\n",
        b"data: d\n",
    ]
)


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(0, 30))):
        if draw(st.integers(0, 5)):
            parts.append(b"data: " + draw(VALUE) + b"\n\n")
        else:
            parts.append(draw(ODD))
    return b"".join(parts)


def run(reads: list[bytes]) -> tuple[list[ServerSentEvent], str, int | None]:
    decoder = SSEDecoder()
    events = [e for chunk in reads for e in decoder.feed(chunk)]
    return events, decoder.last_event_id, decoder.retry


@settings(max_examples=300, deadline=None)
@given(streams(), st.integers(1, 64))
def test_fast_paths_match_line_by_line(raw: bytes, size: int) -> None:
    # One byte per read never completes more than one line at a time: the general path.
    expected = run([raw[i : i + 1] for i in range(len(raw))])
    assert run([raw]) == expected
    assert run([raw[i : i + size] for i in range(0, len(raw), size)]) == expected


def test_a_read_of_plain_events_is_split_once() -> None:
    raw = b"".join(b'data: {"n":%d}\n\n' % i for i in range(100))
    decoder = SSEDecoder()
    assert decoder.feed_raw(raw) == [b'{"n":%d}' % i for i in range(100)]
    assert decoder.feed(b"data: a\ndata: b\n\ndata: c\n\n") == [
        ServerSentEvent("a\nb"),
        ServerSentEvent("c"),
    ]
