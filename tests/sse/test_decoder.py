"""Conformance of :class:`SSEDecoder` with the WHATWG event-stream rules.

Every table case is fed under many chunkings (whole, byte by byte, every split into two reads,
seeded random splits, and with empty reads mixed in), and every chunking must give the same
events, ``last_event_id`` and ``retry``.
"""

from __future__ import annotations

import itertools
import random
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import pytest

from openai_sse import OpenAISSEError, ProtocolError
from openai_sse.sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEDecoder

E = ServerSentEvent


def chunkings(raw: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """Yield ``(label, reads)`` pairs that all concatenate to ``raw``."""
    yield "whole", [raw]
    yield "empty-first", [b"", raw]
    yield "bytewise", [raw[i : i + 1] for i in range(len(raw))]
    yield "bytewise-with-empties", [p for i in range(len(raw)) for p in (raw[i : i + 1], b"")]
    for cut in range(1, len(raw)):
        yield f"split@{cut}", [raw[:cut], raw[cut:]]
    rng = random.Random(raw)
    for n in range(8):
        cuts = sorted(rng.sample(range(len(raw) + 1), min(len(raw) + 1, rng.randint(1, 6))))
        bounds = [0, *cuts, len(raw)]
        yield f"random{n}", [raw[a:b] for a, b in itertools.pairwise(bounds)]


def decode(reads: list[bytes], **kwargs: object) -> tuple[list[ServerSentEvent], SSEDecoder]:
    decoder = SSEDecoder(**kwargs)  # type: ignore[arg-type]
    events: list[ServerSentEvent] = []
    for chunk in reads:
        events.extend(decoder.feed(chunk))
    assert decoder.end() == []
    return events, decoder


@dataclass
class Case:
    raw: bytes
    events: list[ServerSentEvent]
    last_event_id: str = ""
    retry: int | None = None
    seed: str = ""
    kwargs: dict[str, object] = field(default_factory=dict)


CASES: dict[str, Case] = {
    # Byte order mark.
    "bom-stripped": Case(b"\xef\xbb\xbfdata: x\n\n", [E("x")]),
    "bom-stripped-before-comment": Case(b"\xef\xbb\xbf: hi\ndata: x\n\n", [E("x")]),
    "second-bom-is-ordinary": Case(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n", [E("y")]),
    "bom-at-later-line-is-unknown-field": Case(
        b"data: a\n\n\xef\xbb\xbfdata: b\n\ndata: c\n\n", [E("a"), E("c")]
    ),
    "bom-inside-value-kept": Case(b"data: \xef\xbb\xbfx\n\n", [E("\ufeffx")]),
    "bom-prefix-only-is-not-a-bom": Case(b"\xef\xbbdata: x\n\ndata: y\n\n", [E("y")]),
    "bom-first-byte-only": Case(b"\xefdata: x\n\ndata: y\n\n", [E("y")]),
    # Line terminators.
    "lf": Case(b"data: a\ndata: b\n\n", [E("a\nb")]),
    "cr": Case(b"data: a\rdata: b\r\r", [E("a\nb")]),
    "crlf": Case(b"data: a\r\ndata: b\r\n\r\n", [E("a\nb")]),
    "mixed-in-one-event": Case(b"data: a\rdata: b\r\ndata: c\n\r\n", [E("a\nb\nc")]),
    "crlf-is-one-terminator": Case(b"data: a\r\ndata: b\n\n", [E("a\nb")]),
    "lf-then-cr-is-two": Case(b"data: a\n\rdata: b\n\n", [E("a"), E("b")]),
    "cr-cr-lf": Case(b"data: a\r\r\ndata: b\n\n", [E("a"), E("b")]),
    "lone-cr-blank-lines": Case(b"data: a\r\r\r\rdata: b\r\r", [E("a"), E("b")]),
    "other-breaks-are-ordinary": Case(
        b"data: a\x0bb\x0cc\xc2\x85d\xe2\x80\xa8e\xe2\x80\xa9f\x1cg\x1dh\x1ei\n\n",
        [E("a\vb\fc\x85d\u2028e\u2029f\x1cg\x1dh\x1ei")],
    ),
    # Field and value split.
    "no-space": Case(b"data:x\n\n", [E("x")]),
    "one-space-removed": Case(b"data: x\n\n", [E("x")]),
    "only-one-space-removed": Case(b"data:  x\n\n", [E(" x")]),
    "tab-kept": Case(b"data:\tx\n\n", [E("\tx")]),
    "nbsp-kept": Case(b"data:\xc2\xa0x\n\n", [E("\xa0x")]),
    "trailing-whitespace-kept": Case(b"data: x \t\n\n", [E("x \t")]),
    "space-only-value": Case(b"data: \n\n", [E("")]),
    "colons-in-value": Case(b"data: a:b: c\n\n", [E("a:b: c")]),
    "first-colon-splits": Case(b"event: a:b\ndata: x\n\n", [E("x", "a:b")]),
    # Data assembly.
    "naked-data": Case(b"data\n\n", [E("")]),
    "two-naked-data": Case(b"data\ndata\n\n", [E("\n")]),
    "empty-last-data-line": Case(b"data: a\ndata:\n\n", [E("a\n")]),
    "extra-blank-lines": Case(b"\n\n\ndata: a\n\n\n\ndata: b\n\n", [E("a"), E("b")]),
    # Event type.
    "event-type": Case(b"event: add\ndata: 1\n\n", [E("1", "add")]),
    "empty-event-is-none": Case(b"event:\ndata: x\n\n", [E("x")]),
    "empty-event-overrides": Case(b"event: a\nevent:\ndata: x\n\n", [E("x")]),
    "event-type-resets-after-dispatch": Case(
        b"event: a\ndata: x\n\ndata: y\n\n", [E("x", "a"), E("y")]
    ),
    "event-type-dropped-with-dataless-block": Case(b"event: a\n\ndata: y\n\n", [E("y")]),
    "event-after-data-in-block": Case(b"data: x\nevent: late\n\n", [E("x", "late")]),
    # Ids.
    "id": Case(b"id: 1\ndata: x\n\n", [E("x", id="1")], "1"),
    "id-after-data": Case(b"data: x\nid: 5\n\n", [E("x", id="5")], "5"),
    "id-sticky": Case(b"id: 1\ndata: a\n\ndata: b\n\n", [E("a", id="1"), E("b", id="1")], "1"),
    "naked-id-resets": Case(b"id: 1\ndata: a\n\nid\ndata: b\n\n", [E("a", id="1"), E("b")]),
    "empty-id-resets": Case(b"id: 1\ndata: a\n\nid:\ndata: b\n\n", [E("a", id="1"), E("b")]),
    "space-id-resets": Case(b"id: 1\ndata: a\n\nid: \ndata: b\n\n", [E("a", id="1"), E("b")]),
    "id-keeps-inner-spaces": Case(b"id:  a b \ndata: x\n\n", [E("x", id=" a b ")], " a b "),
    "id-with-nul-ignored": Case(b"id: 1\n\nid: a\x00b\ndata: x\n\n", [E("x", id="1")], "1"),
    "id-only-nul-ignored": Case(b"id: 1\nid: \x00\ndata: x\n\n", [E("x", id="1")], "1"),
    "id-unicode": Case("id: é😀\ndata: x\n\n".encode(), [E("x", id="é😀")], "é😀"),
    "id-committed-by-dataless-block": Case(b"id: 7\n\n", [], "7"),
    "id-committed-then-used": Case(b"id: 7\n\ndata: x\n\n", [E("x", id="7")], "7"),
    "uncommitted-id-dropped": Case(b"id: 1\n\nid: 2\n", [], "1"),
    "uncommitted-id-with-data-dropped": Case(b"id: 2\ndata: x\n", [], ""),
    "seed-used-without-id": Case(b"data: x\n\n", [E("x", id="s")], "s", seed="s"),
    "seed-replaced": Case(b"id: t\ndata: x\n\n", [E("x", id="t")], "t", seed="s"),
    "seed-reset": Case(b"id\ndata: x\n\n", [E("x")], "", seed="s"),
    "seed-survives-uncommitted-id": Case(b"id: t\n", [], "s", seed="s"),
    # Retry.
    "retry": Case(b"retry: 3000\n\n", [], retry=3000),
    "retry-leading-zeros": Case(b"retry: 03000\n", [], retry=3000),
    "retry-zero": Case(b"retry:0\n", [], retry=0),
    "retry-in-unfinished-block": Case(b"data: x\nretry: 42\n", [], retry=42),
    "retry-alongside-event": Case(b"retry: 1\ndata: x\n\n", [E("x")], retry=1),
    "retry-latest-wins": Case(b"retry: 1\nretry: 2\n", [], retry=2),
    "retry-max-u64": Case(b"retry: 18446744073709551615\n", [], retry=2**64 - 1),
    "retry-many-leading-zeros": Case(b"retry: " + b"0" * 5000 + b"7\n", [], retry=7),
    "retry-unterminated-ignored": Case(b"retry: 9", []),
    # Unknown fields and comments.
    "unknown-fields-ignored": Case(
        b"data: a\nData: b\nDATA: c\ndata : d\n data: e\n\xef\xbb\xbfdata: f\n"
        b"data\x00: g\ndata_5: h\nfoo: i\n\xffdata: k\ndata: j\n\n",
        [E("a\nj")],
    ),
    "unknown-fields-keep-event": Case(
        b"event: t\nid: 1\ndata: a\nfoo\nbar: baz\nEVENT: u\nId: 2\n\n", [E("a", "t", "1")], "1"
    ),
    "comments-ignored": Case(b": hello: world\x00\ndata: x\n:\n: data: y\n\n", [E("x")]),
    "comment-only-block": Case(b": ping\n\n:\n\n", []),
    # End of stream.
    "unterminated-line-dropped": Case(b"data: x", []),
    "unfinished-block-dropped": Case(b"data: x\n", []),
    "cr-terminated-unfinished-block-dropped": Case(b"data: x\r", []),
    "last-block-dropped": Case(b"data: a\n\ndata: b\n", [E("a")]),
    "empty-stream": Case(b"", []),
    # UTF-8 decoding, maximal subparts.
    "invalid-ff": Case(b"data: a\xffb\n\n", [E("a\ufffdb")]),
    "truncated-e2-82": Case(b"data: \xe2\x82\n\n", [E("\ufffd")]),
    "truncated-e2-82-then-ascii": Case(b"data: \xe2\x82x\n\n", [E("\ufffdx")]),
    "overlong-c0-af": Case(b"data: \xc0\xaf\n\n", [E("\ufffd\ufffd")]),
    "surrogate-ed-a0-80": Case(b"data: \xed\xa0\x80\n\n", [E("\ufffd" * 3)]),
    "lone-continuation": Case(b"data: \x80\n\n", [E("\ufffd")]),
    "above-max-f4-90": Case(b"data: \xf4\x90\x80\x80\n\n", [E("\ufffd" * 4)]),
    "truncated-at-end-of-value": Case(b"data: \xf0\x9f\x98\n\n", [E("\ufffd")]),
    "valid-multibyte": Case("data: €😀é\n\n".encode(), [E("€😀é")]),
    "invalid-id": Case(b"id: \xff\ndata: x\n\n", [E("x", id="\ufffd")], "\ufffd"),
    "nul-in-data-kept": Case(b"data: a\x00b\n\n", [E("a\x00b")]),
}

# OkHttp ServerSentEventIteratorTest; where OkHttp and the spec differ, the spec's answer.
OKHTTP_CASES: dict[str, Case] = {
    "multiline": Case(b"data: YHOO\ndata: +2\ndata: 10\n\n", [E("YHOO\n+2\n10")]),
    "multilineCr": Case(b"data: YHOO\rdata: +2\rdata: 10\r\r", [E("YHOO\n+2\n10")]),
    "multilineCrLf": Case(b"data: YHOO\r\ndata: +2\r\ndata: 10\r\n\r\n", [E("YHOO\n+2\n10")]),
    "eventType": Case(
        b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
        [E("73857293", "add"), E("2153", "remove"), E("113411", "add")],
    ),
    "commentsIgnored": Case(
        b": test stream\n\ndata: first event\nid: 1\n\n", [E("first event", id="1")], "1"
    ),
    "idCleared": Case(
        b"data: first event\nid: 1\n\ndata: second event\nid\n\ndata: third event\n\n",
        [E("first event", id="1"), E("second event"), E("third event")],
    ),
    "nakedFieldNames": Case(b"data\n\ndata\ndata\n\ndata:\n", [E(""), E("\n")]),
    "colonSpaceOptional": Case(b"data:test\n\ndata: test\n\n", [E("test"), E("test")]),
    "leadingWhitespace": Case(b"data:  test\n\n", [E(" test")]),
    "idReusedAcrossEvents": Case(
        b"data: first event\nid: 1\n\ndata: second event\n\nid: 2\ndata: third event\n\n",
        [E("first event", id="1"), E("second event", id="1"), E("third event", id="2")],
        "2",
    ),
    "idIgnoredFromEmptyEvent": Case(
        b"data: first event\nid: 1\n\nid: 2\n\ndata: second event\n\n",
        [E("first event", id="1"), E("second event", id="2")],
        "2",
    ),
    "retry": Case(
        b"retry: 22\n\ndata: first event\nid: 1\n\n", [E("first event", id="1")], "1", 22
    ),
    "retryInvalidFormatIgnored": Case(b"retry: 22\n\nretry: hey\n", [], retry=22),
    "namePrefixIgnored": Case(b"data: a\neventually\ndatabase\nidentity\nretrying\n\n", [E("a")]),
    "nakedNameClearsIdAndTypeAppendsData": Case(
        b"id: a\nevent: b\ndata: c\nid\nevent\ndata\n\n", [E("c\n")]
    ),
    "nakedRetryIgnored": Case(b"retry\n", []),
}


def _check(case: Case) -> None:
    expected: tuple[object, ...] | None = None
    for label, reads in chunkings(case.raw):
        events, decoder = decode(reads, last_event_id=case.seed, **case.kwargs)
        got = (events, decoder.last_event_id, decoder.retry)
        assert got == (case.events, case.last_event_id, case.retry), label
        if expected is None:
            expected = got
        assert got == expected, label


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_conformance(case: Case) -> None:
    _check(case)


def test_okhttp_table_is_complete() -> None:
    assert len(OKHTTP_CASES) == 16


@pytest.mark.parametrize("case", OKHTTP_CASES.values(), ids=OKHTTP_CASES.keys())
def test_okhttp_parser_table(case: Case) -> None:
    _check(case)


@pytest.mark.parametrize(
    "value",
    [
        "-1",
        "+1",
        " 1",
        "1 ",
        "1.5",
        "1e3",
        "0x10",
        "1_000",
        "١٢",
        "²",
        "１２",
        "",
        "abc",
        "12a",
        "18446744073709551616",
        "1" * 5000,
    ],
)
def test_invalid_retry_ignored(value: str) -> None:
    raw = f"retry: 5\nretry: {value}\ndata: x\n\n".encode()
    _check(Case(raw, [E("x")], retry=5))


# Incremental behaviour that a table of whole streams cannot express.


def test_cr_dispatches_without_waiting() -> None:
    assert SSEDecoder().feed(b"data: x\r\r") == [E("x")]


def test_cr_then_cr_in_next_read_dispatches() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.feed(b"\r") == [E("x")]


def test_lf_after_cr_in_next_read_is_swallowed() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"data: b\n") == []
    assert decoder.feed(b"\n") == [E("a\nb")]


def test_lf_is_swallowed_only_once() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n\n") == [E("a")]


def test_lf_swallow_survives_empty_read() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\ndata: b\n\n") == [E("a\nb")]


def test_retry_applies_before_block_ends() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: x\nretry: 1500\n")
    assert decoder.retry == 1500


def test_id_committed_on_blank_line_without_data() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: 9\n")
    assert decoder.last_event_id == ""
    decoder.feed(b"\n")
    assert decoder.last_event_id == "9"


def test_bom_split_over_reads_after_empty_read() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\xef") == []
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\xbb") == []
    assert decoder.feed(b"\xbfdata: x\n\n") == [E("x")]


def test_bom_check_ends_after_first_bytes() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\n") == [E("a")]
    assert decoder.feed(b"\xef\xbb\xbfdata: b\n\n") == []


def test_split_multibyte_waits_for_next_read() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: \xe2\x82") == []
    assert decoder.feed(b"\xac\n\n") == [E("€")]


def test_split_truncated_sequence_judged_after_next_read() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: \xe2\x82") == []
    assert decoder.feed(b"x\n\n") == [E("\ufffdx")]


def test_end_discards_and_decoder_keeps_committed_state() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: 1\nretry: 10\ndata: a\n\nid: 2\nevent: e\ndata: b\n")
    assert decoder.end() == []
    assert (decoder.last_event_id, decoder.retry) == ("1", 10)


def test_event_shape() -> None:
    event = E("x")
    assert (event.data, event.type, event.id, event.event) == ("x", None, None, "message")
    assert E("x", "add", "1").event == "add"
    assert E("x", "add", "1") == E("x", "add", "1")
    assert E("x", "add", "1") != E("x", "add", "2")
    assert hash(E("x", "a", "1")) == hash(E("x", "a", "1"))
    assert E("x") != "x"
    assert repr(E("x", "a", "1")) == "ServerSentEvent(data='x', type='a', id='1')"


def test_never_raises_on_arbitrary_bytes() -> None:
    rng = random.Random(1234)
    for _ in range(200):
        raw = rng.randbytes(rng.randint(0, 200))
        events, _ = decode([raw])
        assert all(isinstance(e.data, str) for e in events)


# Event size limit.


def test_default_max_event_size() -> None:
    assert DEFAULT_MAX_EVENT_SIZE == 1024 * 1024
    assert SSEDecoder().max_event_size == DEFAULT_MAX_EVENT_SIZE
    assert SSEDecoder(max_event_size=10).max_event_size == 10


def _reads(raw: bytes, size: int) -> list[bytes]:
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def _feed_all(decoder: SSEDecoder, reads: list[bytes], fed: list[int]) -> None:
    for chunk in reads:
        fed.append(len(chunk))
        decoder.feed(chunk)


@pytest.mark.parametrize("read_size", [None, 1024, 7])
def test_oversized_data_line_raises(read_size: int | None) -> None:
    raw = b"data: " + b"x" * 2000 + b"\n\n"
    reads = [raw] if read_size is None else _reads(raw, read_size)
    decoder = SSEDecoder(max_event_size=1000)
    fed: list[int] = []
    with pytest.raises(ProtocolError, match="max_event_size"):
        _feed_all(decoder, reads, fed)
    # Fed in pieces, the error comes before much more than the cap is buffered.
    if read_size is not None:
        assert sum(fed) <= 1000 + read_size


def test_default_cap_applies() -> None:
    decoder = SSEDecoder()
    with pytest.raises(ProtocolError):
        decoder.feed(b"data: " + b"x" * (DEFAULT_MAX_EVENT_SIZE + 1) + b"\n")


def test_protocol_error_is_package_error() -> None:
    with pytest.raises(OpenAISSEError):
        SSEDecoder(max_event_size=4).feed(b"data: 0123456789\n")


@pytest.mark.parametrize("read_size", [None, 1024, 16])
def test_many_small_data_lines_raise(read_size: int | None) -> None:
    raw = b"data: 0123456789\n" * 200 + b"\n"
    reads = [raw] if read_size is None else _reads(raw, read_size)
    decoder = SSEDecoder(max_event_size=1000)
    with pytest.raises(ProtocolError):
        _feed_all(decoder, reads, [])


def test_event_just_under_cap_passes() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    assert decoder.feed(b"data: " + b"x" * 900 + b"\n\n") == [E("x" * 900)]


@pytest.mark.parametrize("read_size", [None, 4096, 333])
def test_many_events_under_cap_never_raise(read_size: int | None) -> None:
    one = b"id: 1\nevent: e\ndata: " + b"y" * 400 + b"\ndata: " + b"z" * 400 + b"\n\n"
    raw = one * 5000
    reads = [raw] if read_size is None else _reads(raw, read_size)
    decoder = SSEDecoder(max_event_size=1000)
    count = 0
    for chunk in reads:
        count += len(decoder.feed(chunk))
    assert count == 5000


@pytest.mark.parametrize(
    "line",
    [b": keep-alive comment padding padding\n", b"foo: unknown field value\n", b"id: 123\n"],
)
@pytest.mark.parametrize("read_size", [None, 100])
def test_non_data_lines_do_not_accumulate(line: bytes, read_size: int | None) -> None:
    raw = line * 5000 + b"data: x\n\n"
    reads = [raw] if read_size is None else _reads(raw, read_size)
    decoder = SSEDecoder(max_event_size=1000)
    events = [e for chunk in reads for e in decoder.feed(chunk)]
    assert [e.data for e in events] == ["x"]


# Linear work: a large event fed in small reads must not copy its growing buffer on every read.


class Feeder(Protocol):
    def feed(self, data: bytes) -> list[ServerSentEvent]: ...


def transient_allocation(make: Callable[[], Feeder], reads: list[bytes]) -> tuple[int, int]:
    """Return ``(sum of per-read peak growth, events)`` while feeding ``reads``.

    Each read's peak growth is the most memory it held at once above what was live before the
    read. Re-copying a growing buffer on every read makes the sum grow with the square of the
    input; appending to pieces joined once keeps it a small multiple of the input.
    """
    decoder = make()
    total = 0
    events = 0
    tracemalloc.start()
    try:
        for chunk in reads:
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            events += len(decoder.feed(chunk))
            _, peak = tracemalloc.get_traced_memory()
            total += peak - before
    finally:
        tracemalloc.stop()
    return total, events


BIG = 10 * 1024 * 1024


def _long_line_stream() -> bytes:
    return b"data: " + b"x" * BIG + b"\n\n"


def _many_lines_stream() -> bytes:
    return (b"data: " + b"x" * 1017 + b"\n") * (BIG // 1024) + b"\n"


@pytest.mark.parametrize("stream", [_long_line_stream, _many_lines_stream])
def test_large_event_work_is_linear(stream: Callable[[], bytes]) -> None:
    raw = stream()
    total, events = transient_allocation(
        lambda: SSEDecoder(max_event_size=4 * BIG), _reads(raw, 1024)
    )
    assert events == 1
    assert total < 12 * len(raw)


def test_overflow_keeps_events_completed_earlier_in_the_same_read() -> None:
    decoder = SSEDecoder(max_event_size=100)
    events = decoder.feed(b"data: ok\n\ndata: " + b"x" * 200 + b"\n\n")
    assert [e.data for e in events] == ["ok"]
    with pytest.raises(ProtocolError):
        decoder.feed(b"data: later\n\n")
    with pytest.raises(ProtocolError):
        decoder.end()


def test_overflow_with_nothing_completed_raises_at_once() -> None:
    decoder = SSEDecoder(max_event_size=100)
    with pytest.raises(ProtocolError, match="max_event_size of 100"):
        decoder.feed(b"data: " + b"x" * 200)
