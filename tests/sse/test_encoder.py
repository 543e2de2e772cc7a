"""Exact bytes from the encoder, and its input checks."""

from __future__ import annotations

import pytest

from openai_sse.sse import ServerSentEvent, SSEDecoder, encode_comment, encode_event


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"data": "hi"}, b"data: hi\n\n"),
        ({"data": ""}, b"data: \n\n"),
        ({"data": "a\nb"}, b"data: a\ndata: b\n\n"),
        ({"data": "a\r\nb\rc"}, b"data: a\ndata: b\ndata: c\n\n"),
        ({"data": "a\n"}, b"data: a\ndata: \n\n"),
        ({"data": " lead"}, b"data:  lead\n\n"),
        ({"data": "é\u2028x"}, "data: é\u2028x\n\n".encode()),
        ({"data": "x", "event": "add"}, b"event: add\ndata: x\n\n"),
        ({"data": "x", "id": "7"}, b"id: 7\ndata: x\n\n"),
        ({"data": "x", "retry": 0}, b"retry: 0\ndata: x\n\n"),
        (
            {"data": "x", "event": "e", "id": "1", "retry": 3000},
            b"event: e\nid: 1\nretry: 3000\ndata: x\n\n",
        ),
        ({"id": ""}, b"id: \n\n"),
        ({}, b"\n"),
    ],
)
def test_encode_event_bytes(kwargs: dict[str, object], expected: bytes) -> None:
    assert encode_event(**kwargs) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event": "a\nb"},
        {"event": "a\rb"},
        {"id": "a\nb"},
        {"id": "a\r"},
        {"id": "a\x00b"},
        {"retry": -1},
    ],
)
def test_encode_event_rejects(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="SSE"):
        encode_event("x", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("retry", [1.5, "10", True])
def test_encode_event_rejects_non_int_retry(retry: object) -> None:
    with pytest.raises(TypeError, match="retry"):
        encode_event("x", retry=retry)  # type: ignore[arg-type]


def test_lone_surrogate_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="surrogates"):
        encode_event("\ud800")


def test_event_with_nul_is_allowed() -> None:
    assert encode_event("x", event="a\x00b") == b"event: a\x00b\ndata: x\n\n"


def test_encode_comment() -> None:
    assert encode_comment() == b":\n\n"
    assert encode_comment("ping") == b": ping\n\n"
    with pytest.raises(ValueError, match="comment"):
        encode_comment("a\nb")
    with pytest.raises(ValueError, match="comment"):
        encode_comment("a\rb")


def test_encoded_stream_decodes() -> None:
    stream = b"".join(
        [
            encode_comment("open"),
            encode_event("one", id="1", retry=500),
            encode_event(id="2"),
            encode_comment(),
            encode_event("two\r\nlines", event="multi"),
            encode_event(""),
        ]
    )
    decoder = SSEDecoder()
    assert decoder.feed(stream) == [
        ServerSentEvent("one", None, "1"),
        ServerSentEvent("two\nlines", "multi", "2"),
        ServerSentEvent("", None, "2"),
    ]
    assert (decoder.last_event_id, decoder.retry) == ("2", 500)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"a":1}', b'data: {"a":1}\n\n'),
        (b"", b"data: \n\n"),
        (b"a\nb", b"data: a\ndata: b\n\n"),
        (b"a\r\nb\rc", b"data: a\ndata: b\ndata: c\n\n"),
        (b"a\r", b"data: a\ndata: \n\n"),
        (b"\n", b"data: \ndata: \n\n"),
        ("é".encode(), "data: é\n\n".encode()),
    ],
)
def test_encode_event_takes_utf8_bytes(data: bytes, expected: bytes) -> None:
    assert encode_event(data) == expected
    assert encode_event(data) == encode_event(data.decode())
    framed = encode_event(data, event="e", id="7", retry=10)
    assert framed == encode_event(data.decode(), event="e", id="7", retry=10)


def test_bytes_data_decodes_as_its_text() -> None:
    texts = ["{}", "", "a\nb", "a\r\nb", "x\ry", "é\u2028", "\r\n\r\n"]
    decoder = SSEDecoder()
    got = decoder.feed(b"".join(encode_event(t.encode(), id=str(i)) for i, t in enumerate(texts)))
    expected = [t.replace("\r\n", "\n").replace("\r", "\n") for t in texts]
    assert [(e.data, e.id) for e in got] == [(t, str(i)) for i, t in enumerate(expected)]


def test_fields_are_checked_with_bytes_data_too() -> None:
    with pytest.raises(ValueError, match="SSE id"):
        encode_event(b"x", id="1\n")
    with pytest.raises(ValueError, match="NUL"):
        encode_event(b"x", id="1\x00")
    with pytest.raises(ValueError, match="SSE event"):
        encode_event(b"x", event="a\rb")
