"""Incremental event-stream decoder that follows the WHATWG rules exactly.

The work is done on bytes: CR and LF never occur inside a UTF-8 sequence, so splitting lines
before decoding gives the same text as decoding first, and an event's data can be handed on as
bytes (msgspec decodes JSON from bytes directly) or decoded once per event with ``replace``, so
invalid UTF-8 costs a U+FFFD, never an event. Buffers are lists joined once, which keeps the
work linear in the input however it is chunked.

Size cap, one rule under any chunking: no line (comments and unknown fields included) may
exceed ``max_event_size`` bytes, and no event's data may exceed it. A line is measured whole
when it completes and while it is still unfinished, so a long line fails at the same point in
the stream whether it arrives in one read or in many.
"""

from __future__ import annotations

from ..errors import ProtocolError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "RawEvent", "SSEDecoder", "ServerSentEvent"]

DEFAULT_MAX_EVENT_SIZE = 1024 * 1024
_BOM = b"\xef\xbb\xbf"
# Like Blink, a ``retry`` that does not fit in an unsigned 64-bit integer is ignored. Checking
# the length first also keeps ``int()`` clear of its digit limit on hostile input.
_RETRY_LIMIT = 2**64
_RETRY_MAX_DIGITS = len(str(_RETRY_LIMIT - 1))

RawEvent = bytes | tuple[str | None, str | None, bytes]
"""What :meth:`SSEDecoder.feed_raw` yields per event: the data alone for a plain message (no
``event:`` type and no id in effect, nearly every event of an API stream), else
``(id, type, data)``."""


class ServerSentEvent:
    """One dispatched event, in OkHttp's shape.

    ``id`` is the last event id in effect (``None`` when empty) and ``type`` is ``None`` when
    the block had no ``event:`` field, which means ``"message"``.
    """

    __slots__ = ("data", "id", "type")

    def __init__(self, data: str = "", type: str | None = None, id: str | None = None) -> None:
        self.data = data
        self.type = type
        self.id = id

    @property
    def event(self) -> str:
        """The event type with the spec's default applied."""
        return self.type or "message"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        return self.data == other.data and self.type == other.type and self.id == other.id

    def __hash__(self) -> int:
        return hash((self.data, self.type, self.id))

    def __repr__(self) -> str:
        return f"ServerSentEvent(data={self.data!r}, type={self.type!r}, id={self.id!r})"


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


class SSEDecoder:
    """Bytes in, :class:`ServerSentEvent` objects out; no I/O, any chunking.

    ``last_event_id`` is the committed id (updated on every blank line, as the spec says) and
    seeds a reconnected stream; ``retry`` is the latest valid ``retry:`` in milliseconds,
    applied as soon as its line ends. ``max_event_size`` bounds, in bytes, any one line and
    any one event's data; past it :meth:`feed` raises :class:`~openai_sse.ProtocolError`
    instead of growing without bound. Events completed before the offending line are still
    returned; the error is then raised by the next call.
    """

    __slots__ = (
        "_bom_pending",
        "_carry",
        "_carry_size",
        "_data",
        "_data_size",
        "_failed",
        "_id_buffer",
        "_skip_lf",
        "_type",
        "last_event_id",
        "max_event_size",
        "retry",
    )

    def __init__(
        self, last_event_id: str = "", *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    ) -> None:
        self.last_event_id = last_event_id
        self.retry: int | None = None
        self.max_event_size = max_event_size
        self._id_buffer = last_event_id
        self._type = ""
        self._data: list[bytes] = []
        self._data_size = 0
        self._carry: list[bytes] = []
        self._carry_size = 0
        self._skip_lf = False
        # ``None`` once the stream start is decided; else the bytes seen so far.
        self._bom_pending: bytes | None = b""
        self._failed: ProtocolError | None = None

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Decode one read and return the events it completes, in order."""
        return [
            ServerSentEvent(_text(item))
            if isinstance(item, bytes)
            else ServerSentEvent(_text(item[2]), item[1], item[0])
            for item in self.feed_raw(data)
        ]

    def feed_raw(self, data: bytes) -> list[RawEvent]:
        """Like :meth:`feed`, with each event's data left as UTF-8 bytes (see :data:`RawEvent`).

        For consumers that parse the data themselves (the event source, when its listener asks
        for bytes): no text decoding and no event object per event.
        """
        if self._failed is not None:
            raise self._failed
        if self._bom_pending is not None:
            head = self._bom_pending + data
            if len(head) < 3 and _BOM.startswith(head):
                self._bom_pending = head
                return []
            self._bom_pending = None
            data = head[3:] if head.startswith(_BOM) else head
        if not data:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if data[0] == 10:
                data = data[1:]
        if b"\r" in data:
            # A trailing CR ends its line now; the LF that may follow in the next read is
            # swallowed then.
            self._skip_lf = data[-1] == 13
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = data.rfind(b"\n") + 1
        if not end:
            self._carry.append(data)
            self._carry_size += len(data)
            if self._carry_size > self.max_event_size:
                self._overflow([], self._carry_size)
            return []
        if self._carry:
            end += self._carry_size
            self._carry.append(data)
            data = b"".join(self._carry)
            self._carry.clear()
        if end == len(data):
            self._carry_size = 0
        else:
            rest = data[end:]
            self._carry.append(rest)
            self._carry_size = len(rest)
            data = data[:end]
        # ``data`` now holds complete lines only. A line can exceed the cap only when they
        # add up to more than it, so the scan for one runs only then.
        too_long = -1
        if end > self.max_event_size:
            too_long = _first_long_line(data, self.max_event_size)
            if too_long >= 0:
                data = data[:too_long]
        events = self._process(data)
        if self._failed is None:
            if too_long >= 0:
                self._overflow(events, -1)
            elif self._carry_size > self.max_event_size:
                self._overflow(events, self._carry_size)
        return events

    def end(self) -> list[ServerSentEvent]:
        """Signal end of stream: whatever is not closed by a blank line is discarded."""
        if self._failed is not None:
            raise self._failed
        self._carry.clear()
        self._carry_size = 0
        self._data.clear()
        self._data_size = 0
        self._type = ""
        self._id_buffer = self.last_event_id
        return []

    def _process(self, data: bytes) -> list[RawEvent]:
        """Handle complete lines (``data`` ends with LF) in three parts: the end of an event
        begun in an earlier read, whole blocks closed by blank lines, and lines of an event
        not closed yet."""
        events: list[RawEvent] = []
        if not data:
            return events
        if self._data or self._type or data[:1] == b"\n":
            if data[:1] == b"\n":
                cut = 1
            else:
                cut = data.find(b"\n\n")
                cut = len(data) if cut < 0 else cut + 2
            if not self._lines(data[: cut - 1].split(b"\n"), events, closed=False):
                return events
            data = data[cut:]
        end = data.rfind(b"\n\n") + 2
        if end == len(data):
            # The usual read: it ends with the blank line of its last event.
            self._blocks(data, events)
            return events
        if end > 1:
            if not self._blocks(data[:end], events):
                return events
            data = data[end:]
        if data:
            self._lines(data[:-1].split(b"\n"), events, closed=False)
        return events

    def _blocks(self, body: bytes, events: list[RawEvent]) -> bool:
        """Blocks each closed by a blank line (``body`` ends with one), no field pending."""
        id_buffer = self._id_buffer
        if not id_buffer and body[:6] == b"data: ":
            # The fast path for a whole read, one clear idea: split between ``data: `` events;
            # when the separators and the final blank line hold every line break there is, the
            # body is nothing but single-line plain events (nearly every read of an API
            # stream), and the pieces are their data.
            parts = body[6:-2].split(b"\n\ndata: ")
            if body.count(b"\n") == 2 * len(parts):
                events.extend(parts)
                self.last_event_id = id_buffer
                return True
        append = events.append
        for block in body[:-2].split(b"\n\n"):
            # The same idea per block: a single ``data:`` line is an event whose data is the
            # rest of the line.
            if b"\n" not in block and block[:5] == b"data:":
                value = block[6:] if block[5:6] == b" " else block[5:]
                append(value if not id_buffer else (id_buffer, None, value))
            elif self._lines(block.split(b"\n"), events, closed=True):
                id_buffer = self._id_buffer
            else:
                return False
        # Each block ended with a blank line, which commits the id in effect.
        self.last_event_id = id_buffer
        return True

    def _lines(self, lines: list[bytes], events: list[RawEvent], *, closed: bool) -> bool:
        """The general path: apply each line; ``closed`` adds the blank line that ended the
        block. Returns False once the data cap is exceeded."""
        data = self._data
        size = self._data_size
        event_type = self._type
        id_buffer = self._id_buffer
        limit = self.max_event_size + 1  # ``size`` counts a line break after each data line
        if closed:
            lines.append(b"")
        for line in lines:
            if not line:
                # Blank line: commit the id, then dispatch if there is data.
                self.last_event_id = id_buffer
                if data:
                    value = data[0] if len(data) == 1 else b"\n".join(data)
                    if event_type or id_buffer:
                        events.append((id_buffer or None, event_type or None, value))
                    else:
                        events.append(value)
                    data = []
                    size = 0
                event_type = ""
                continue
            colon = line.find(b":")
            if colon == 0:
                continue
            if colon < 0:
                name, value = line, b""
            else:
                name = line[:colon]
                value = (
                    line[colon + 2 :] if line[colon + 1 : colon + 2] == b" " else line[colon + 1 :]
                )
            if name == b"data":
                data.append(value)
                size += len(value) + 1
                if size > limit:
                    self._data, self._data_size = data, size
                    self._overflow(events, size - 1)
                    return False
            elif name == b"event":
                event_type = _text(value)
            elif name == b"id":
                if b"\0" not in value:
                    id_buffer = _text(value)
            elif name == b"retry" and value.isdigit():
                digits = value.lstrip(b"0") or b"0"
                if len(digits) <= _RETRY_MAX_DIGITS:
                    ms = int(digits)
                    if ms < _RETRY_LIMIT:
                        self.retry = ms
        self._data = data
        self._data_size = size
        self._type = event_type
        self._id_buffer = id_buffer
        return True

    def _overflow(self, completed: list[RawEvent], size: int) -> None:
        """Fail for good; events this read completed first are still returned, so nothing
        that arrived intact is lost, and the error is raised by the next call instead."""
        self._carry.clear()
        self._carry_size = 0
        self._data = []
        self._data_size = 0
        measured = f" ({size} bytes)" if size >= 0 else ""
        error = ProtocolError(
            f"Event exceeds max_event_size of {self.max_event_size} bytes{measured}: "
            "a line or an event's data is longer than the cap."
        )
        self._failed = error
        if not completed:
            raise error


def _first_long_line(data: bytes, limit: int) -> int:
    """Offset of the first line in ``data`` (complete lines) longer than ``limit``, or -1."""
    start = 0
    while True:
        stop = data.find(b"\n", start)
        if stop < 0:
            return -1
        if stop - start > limit:
            return start
        start = stop + 1
