"""Incremental event-stream decoder that follows the WHATWG rules exactly.

Lines are split on bytes (CR and LF never occur inside a UTF-8 sequence), so a read's complete
lines are decoded in one call and a multi-byte character cut between reads waits in the carry
with the rest of its line. All buffers are lists joined once, which keeps the work linear in
the input however it is chunked.
"""

from __future__ import annotations

from ..errors import ProtocolError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEDecoder", "ServerSentEvent"]

DEFAULT_MAX_EVENT_SIZE = 1024 * 1024
_BOM = b"\xef\xbb\xbf"
# Like Blink, a ``retry`` that does not fit in an unsigned 64-bit integer is ignored. Checking
# the length first also keeps ``int()`` clear of its digit limit on hostile input.
_RETRY_LIMIT = 2**64
_RETRY_MAX_DIGITS = len(str(_RETRY_LIMIT - 1))


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


class SSEDecoder:
    """Bytes in, :class:`ServerSentEvent` objects out; no I/O, any chunking.

    ``last_event_id`` is the committed id (updated on every blank line, as the spec says) and
    seeds a reconnected stream; ``retry`` is the latest valid ``retry:`` in milliseconds,
    applied as soon as its line ends. ``max_event_size`` bounds the bytes one event may
    buffer (its unfinished line plus its data); past it :meth:`feed` raises
    :class:`~openai_sse.ProtocolError` instead of growing without bound.
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
        self._data: list[str] = []
        self._data_size = 0
        self._carry: list[bytes] = []
        self._carry_size = 0
        self._skip_lf = False
        # ``None`` once the stream start is decided; else the bytes seen so far.
        self._bom_pending: bytes | None = b""
        self._failed: ProtocolError | None = None

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Decode one read and return the events it completes, in order."""
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
        end = data.rfind(b"\n")
        if end < 0:
            self._carry.append(data)
            self._carry_size += len(data)
            if self._carry_size + self._data_size > self.max_event_size:
                self._overflow([])
            return []
        if self._carry:
            end += self._carry_size
            self._carry.append(data)
            data = b"".join(self._carry)
            self._carry.clear()
        if end == len(data) - 1:
            # The read ends on a line break, the usual case: no slicing, and the split leaves
            # one empty string for the unfinished line, which is dropped.
            lines = data.decode("utf-8", "replace").split("\n")
            lines.pop()
            self._carry_size = 0
        else:
            rest = data[end + 1 :]
            self._carry.append(rest)
            self._carry_size = len(rest)
            lines = data[:end].decode("utf-8", "replace").split("\n")
        events = self._process_lines(lines)
        if self._failed is None and self._carry_size + self._data_size > self.max_event_size:
            self._overflow(events)
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

    def _process_lines(self, lines: list[str]) -> list[ServerSentEvent]:
        # The hot loop: the buffers live in locals and are stored back once at the end.
        events: list[ServerSentEvent] = []
        data = self._data
        size = self._data_size
        event_type = self._type
        id_buffer = self._id_buffer
        limit = self.max_event_size
        for line in lines:
            if not line:
                # Blank line: commit the id, then dispatch if there is data.
                self.last_event_id = id_buffer
                if data:
                    events.append(
                        ServerSentEvent("\n".join(data), event_type or None, id_buffer or None)
                    )
                    data = []
                    size = 0
                event_type = ""
                continue
            if line.startswith("data:"):
                value = line[6:] if line.startswith(" ", 5) else line[5:]
                data.append(value)
                size += len(value) + 1
                if size > limit:
                    self._data, self._data_size = data, size
                    self._type, self._id_buffer = event_type, id_buffer
                    self._overflow(events)
                    return events
                continue
            colon = line.find(":")
            if colon == 0:
                continue
            if colon < 0:
                name, value = line, ""
            else:
                name = line[:colon]
                value = line[colon + 2 :] if line.startswith(" ", colon + 1) else line[colon + 1 :]
            if name == "data":
                data.append(value)
                size += 1
            elif name == "event":
                event_type = value
            elif name == "id":
                if "\0" not in value:
                    id_buffer = value
            elif name == "retry" and value.isascii() and value.isdigit():
                digits = value.lstrip("0") or "0"
                if len(digits) <= _RETRY_MAX_DIGITS:
                    ms = int(digits)
                    if ms < _RETRY_LIMIT:
                        self.retry = ms
        self._data = data
        self._data_size = size
        self._type = event_type
        self._id_buffer = id_buffer
        return events

    def _overflow(self, completed: list[ServerSentEvent]) -> None:
        """Fail for good; events this read completed first are still returned, so nothing
        that arrived intact is lost, and the error is raised by the next call instead."""
        size = self._carry_size + self._data_size
        self._carry.clear()
        self._carry_size = 0
        self._data = []
        self._data_size = 0
        error = ProtocolError(
            f"Event exceeds max_event_size of {self.max_event_size} bytes ({size} buffered)."
        )
        self._failed = error
        if not completed:
            raise error
