"""Server-side encoding of events, the inverse of :class:`~openai_sse.SSEDecoder`."""

from __future__ import annotations

__all__ = ["encode_comment", "encode_event"]


def _check_field(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ValueError(f"SSE {name} must not contain CR or LF: {value!r}")


def encode_event(
    data: str | None = None,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
) -> bytes:
    """Encode one event block, ending with its blank line.

    Every line of ``data`` becomes its own ``data:`` field, so any text round-trips through a
    spec decoder. The event-stream format has no way to carry a CR inside data: CRLF and lone
    CR are line breaks there, and they come back as LF.
    """
    parts: list[str] = []
    if event is not None:
        _check_field("event", event)
        parts.append(f"event: {event}\n")
    if id is not None:
        _check_field("id", id)
        if "\0" in id:
            raise ValueError("SSE id must not contain NUL")
        parts.append(f"id: {id}\n")
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, int):
            raise TypeError(f"SSE retry must be an int of milliseconds, not {retry!r}")
        if retry < 0:
            raise ValueError("SSE retry must be a non-negative number of milliseconds")
        parts.append(f"retry: {retry}\n")
    if data is not None:
        if "\r" in data:
            data = data.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" in data:
            parts.extend(f"data: {line}\n" for line in data.split("\n"))
        else:
            parts.append(f"data: {data}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def encode_comment(text: str = "") -> bytes:
    """Encode a comment line, the usual keep-alive; decoders ignore it."""
    _check_field("comment", text)
    return f": {text}\n\n".encode() if text else b":\n\n"
