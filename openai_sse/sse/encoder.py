"""Server-side encoding of events, the inverse of :class:`~openai_sse.SSEDecoder`."""

from __future__ import annotations

__all__ = ["encode_comment", "encode_event"]


def _check_field(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ValueError(f"SSE {name} must not contain CR or LF: {value!r}")


def encode_event(
    data: str | bytes | None = None,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
) -> bytes:
    """Encode one event block, ending with its blank line.

    Every line of ``data`` becomes its own ``data:`` field, so any text round-trips through a
    spec decoder. The event-stream format has no way to carry a CR inside data: CRLF and lone
    CR are line breaks there, and they come back as LF. ``data`` may also be UTF-8 bytes (say
    a JSON chunk as it arrived): they are framed as they are, without a decode and an encode.
    """
    head = ""
    if event is not None:
        _check_field("event", event)
        head = f"event: {event}\n"
    if id is not None:
        if "\r" in id or "\n" in id or "\0" in id:  # rare: say which
            _check_field("id", id)
            raise ValueError("SSE id must not contain NUL")
        head += f"id: {id}\n"
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, int):
            raise TypeError(f"SSE retry must be an int of milliseconds, not {retry!r}")
        if retry < 0:
            raise ValueError("SSE retry must be a non-negative number of milliseconds")
        head += f"retry: {retry}\n"
    if data is None:
        return f"{head}\n".encode()
    if isinstance(data, bytes):
        # LF or CR: a byte as an int is found with one memchr, quicker than b"\n" in data
        if 10 in data or 13 in data:
            return b"%s%s\n" % (head.encode(), _byte_lines(data))
        return b"%sdata: %s\n\n" % (head.encode(), data)  # the usual one-line JSON: one copy
    if "\r" in data:
        data = data.replace("\r\n", "\n").replace("\r", "\n")
    if "\n" in data:
        lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    else:
        lines = f"data: {data}\n"
    return f"{head}{lines}\n".encode()


def _byte_lines(data: bytes) -> bytes:
    """The ``data:`` lines of UTF-8 bytes, line breaks treated as in text."""
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return b"".join(b"data: %s\n" % line for line in data.split(b"\n"))


def encode_comment(text: str = "") -> bytes:
    """Encode a comment line, the usual keep-alive; decoders ignore it."""
    _check_field("comment", text)
    return f": {text}\n\n".encode() if text else b":\n\n"
