"""Incremental JSON: each delta is read once, and the partial value grows in place.

Re-parsing the whole text on every delta costs time quadratic in the text (a 100 KB answer in
one-character deltas is 100,000 parses of up to 100 KB). :class:`PartialJSONParser` keeps its
place instead: a stack of the open containers, the state of the token in progress and the
live partial value, so each delta costs time proportional to its own length.

What the partial value holds at any moment (strict JSON, RFC 8259):

- objects and arrays appear as soon as their ``{`` / ``[`` arrives and are filled in place;
- an object holds the keys whose value has started; a key whose value has not started yet
  (its name, or ``"name":`` alone, has arrived) is absent;
- a string appears with its opening quote and grows as it streams, cut where the stream is; an
  escape split across deltas (``\\u00e9``, or a surrogate pair ``\\ud83d\\ude00``) appears once
  it is whole;
- a number appears only when it is complete, that is when a delimiter (``,``, ``]``, ``}``,
  whitespace) follows it or the document ends, so ``12`` is never shown as ``1``;
- ``true``, ``false`` and ``null`` appear only when all their letters have arrived.

The value is updated in place: :attr:`PartialJSONParser.value` returns the same dict or list
object every time, so copy it (``copy.deepcopy``) to keep a snapshot. Strings are grown with
CPython's in-place concatenation, linear as long as nobody else holds a reference to the open
string; the parser never re-reads what it has consumed. Besides the value it keeps the deltas
it was fed (one list entry each), so an error can report the text.
"""

from __future__ import annotations

import re
from typing import Any, Final

from ..errors import ProtocolError

__all__ = ["PartialJSONError", "PartialJSONParser", "parse_partial"]

_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")
_STRING_RUN: Final = re.compile(r'[^"\\\x00-\x1f]+')
_NUMBER_RUN: Final = re.compile(r"[-+.eE0-9]+")
_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_HEX: Final = re.compile(r"[0-9a-fA-F]{4}")
_ESCAPES: Final = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}
_LITERALS: Final[dict[str, tuple[str, Any]]] = {
    "t": ("true", True),
    "f": ("false", False),
    "n": ("null", None),
}

# Parser states: what may come next.
_VALUE: Final = 0  # a value (document start, after ':' or after ',' in an array)
_FIRST_ITEM: Final = 1  # after '[': a value or ']'
_FIRST_KEY: Final = 2  # after '{': a key or '}'
_KEY: Final = 3  # after ',' in an object: a key
_COLON: Final = 4  # after a key
_AFTER: Final = 5  # after a value inside a container: ',' or its closer
_STRING: Final = 6  # inside a value string
_KEY_STRING: Final = 7  # inside a key string
_NUMBER_TOKEN: Final = 8  # inside a number
_LITERAL: Final = 9  # inside true / false / null
_END: Final = 10  # after the root value: whitespace only

_EXCERPT = 40


class PartialJSONError(ProtocolError):
    """The text is not JSON (or ended before the value was complete).

    ``text`` is everything received, ``position`` the offset in it where parsing stopped.
    """

    def __init__(self, message: str, *, text: str, position: int) -> None:
        start = max(0, position - _EXCERPT)
        near = text[start : position + _EXCERPT]
        super().__init__(f"{message} at offset {position} (near {near!r})")
        self.text = text
        self.position = position


class PartialJSONParser:
    """Feed JSON text in pieces; read the value as far as it has streamed at any moment.

    ``feed(delta)`` returns ``True`` when the partial value changed; :meth:`end` finishes the
    document and returns the complete value, raising :class:`PartialJSONError` if it is
    incomplete. Invalid JSON raises :class:`PartialJSONError` from the ``feed`` that
    reveals it; the parser is unusable after an error.
    """

    __slots__ = (
        "_carry",
        "_chunks",
        "_key",
        "_literal",
        "_literal_value",
        "_offset",
        "_pieces",
        "_root",
        "_slot",
        "_stack",
        "_state",
        "complete",
        "has_value",
    )

    def __init__(self) -> None:
        self._root: list[Any] = [None]
        self._stack: list[Any] = []  # the open containers, innermost last
        self._state = _VALUE
        self._key = ""  # the key the next value of the innermost object goes to
        self._slot: tuple[Any, Any] = (self._root, 0)  # where the open string lives
        self._pieces: list[str] = []  # a key or number in progress
        self._literal = ""  # the letters of true/false/null still expected
        self._literal_value: Any = None
        self._carry = ""  # an escape split across deltas (at most 11 characters)
        self._chunks: list[str] = []  # every delta, for error reports
        self._offset = 0  # offset of the next delta in the whole text
        self.has_value = False
        self.complete = False

    @property
    def value(self) -> Any:
        """The partial value (``None`` until :attr:`has_value`); the same object each time."""
        return self._root[0]

    @property
    def text(self) -> str:
        """Everything fed so far."""
        text = "".join(self._chunks)
        self._chunks = [text]
        return text

    def feed(self, delta: str) -> bool:
        """Consume ``delta``; ``True`` when the partial value changed."""
        if not delta:
            return False
        self._chunks.append(delta)
        start = self._offset - len(self._carry)
        self._offset += len(delta)
        if self._carry:
            delta = self._carry + delta
            self._carry = ""
        return self._parse(delta, start, False)

    def end(self) -> Any:
        """The document ended: return the complete value or raise :class:`PartialJSONError`."""
        if self._carry:
            carry, self._carry = self._carry, ""
            self._parse(carry, self._offset - len(carry), True)
        if self._state == _NUMBER_TOKEN:
            self._parse("", self._offset, True)
        if not self.complete:
            raise self._error("Unexpected end of JSON", self._offset)
        return self._root[0]

    # -- internals ------------------------------------------------------------------------

    def _error(self, message: str, position: int) -> PartialJSONError:
        return PartialJSONError(message, text=self.text, position=position)

    def _place(self, value: Any) -> tuple[Any, Any]:
        stack = self._stack
        if not stack:
            self._root[0] = value
            self.has_value = True
            return self._root, 0
        top = stack[-1]
        if type(top) is list:
            top.append(value)
            return top, len(top) - 1
        key = self._key
        top[key] = value
        return top, key

    def _finish_value(self) -> int:
        if self._stack:
            return _AFTER
        self.complete = True
        return _END

    def _parse(self, text: str, base: int, final: bool) -> bool:
        pos = 0
        n = len(text)
        state = self._state
        stack = self._stack
        changed = False
        while pos < n or state == _NUMBER_TOKEN:
            if state in (_STRING, _KEY_STRING):
                pieces: list[str] = [] if state == _STRING else self._pieces
                closed = False
                while pos < n:
                    match = _STRING_RUN.match(text, pos)
                    if match is not None:
                        pieces.append(match.group())
                        pos = match.end()
                        if pos == n:
                            break
                    char = text[pos]
                    if char == '"':
                        pos += 1
                        closed = True
                        break
                    if char != "\\":
                        raise self._error("Unescaped control character in string", base + pos)
                    if pos + 1 == n:
                        self._carry = text[pos:]
                        pos = n
                        break
                    code = text[pos + 1]
                    if code != "u":
                        unescaped = _ESCAPES.get(code)
                        if unescaped is None:
                            raise self._error("Invalid escape", base + pos)
                        pieces.append(unescaped)
                        pos += 2
                        continue
                    if pos + 6 > n:
                        if _HEX.match(text[pos + 2 :].ljust(4, "0")) is None:
                            raise self._error("Invalid \\u escape", base + pos)
                        self._carry = text[pos:]
                        pos = n
                        break
                    if _HEX.match(text, pos + 2) is None:
                        raise self._error("Invalid \\u escape", base + pos)
                    point = int(text[pos + 2 : pos + 6], 16)
                    if 0xD800 <= point < 0xDC00:
                        if pos + 12 > n and not final:
                            self._carry = text[pos:]  # wait for a possible low surrogate
                            pos = n
                            break
                        if (
                            text[pos + 6 : pos + 8] == "\\u"
                            and _HEX.match(text, pos + 8) is not None
                            and 0xDC00 <= (low := int(text[pos + 8 : pos + 12], 16)) < 0xE000
                        ):
                            point = 0x10000 + ((point - 0xD800) << 10) + (low - 0xDC00)
                            pos += 6
                    pieces.append(chr(point))
                    pos += 6
                if state == _STRING:
                    if pieces:
                        self._grow("".join(pieces))
                        changed = True
                    if closed:
                        state = self._finish_value()
                elif closed:
                    self._key = "".join(pieces)
                    self._pieces = []
                    state = _COLON
                continue

            if state == _NUMBER_TOKEN:
                match = _NUMBER_RUN.match(text, pos)
                if match is not None:
                    self._pieces.append(match.group())
                    pos = match.end()
                if pos == n and not final:
                    break
                token = "".join(self._pieces)
                self._pieces = []
                number = _NUMBER.fullmatch(token)
                if number is None:
                    raise self._error(f"Invalid number {token[:_EXCERPT]!r}", base + pos)
                try:
                    value: Any = float(token) if number.group(1) or number.group(2) else int(token)
                except ValueError as exc:  # more digits than int() converts
                    raise self._error(str(exc), base + pos) from None
                self._place(value)
                changed = True
                state = self._finish_value()
                if pos == n:
                    break
                continue

            if state == _LITERAL:
                expected = self._literal
                got = text[pos : pos + len(expected)]
                if not expected.startswith(got):
                    raise self._error("Invalid literal", base + pos)
                pos += len(got)
                if len(got) < len(expected):
                    self._literal = expected[len(got) :]
                    continue
                self._place(self._literal_value)
                changed = True
                state = self._finish_value()
                continue

            char = text[pos]
            if char in " \t\n\r":
                pos = _WHITESPACE.match(text, pos).end()  # type: ignore[union-attr]
                continue

            if state <= _FIRST_ITEM:
                if char == "{":
                    container: Any = {}
                    self._place(container)
                    stack.append(container)
                    state = _FIRST_KEY
                    changed = True
                elif char == "[":
                    container = []
                    self._place(container)
                    stack.append(container)
                    state = _FIRST_ITEM
                    changed = True
                elif char == '"':
                    self._slot = self._place("")
                    state = _STRING
                    changed = True
                elif char == "-" or "0" <= char <= "9":
                    state = _NUMBER_TOKEN
                    continue
                elif char in _LITERALS:
                    self._literal, self._literal_value = _LITERALS[char]
                    state = _LITERAL
                    continue
                elif char == "]" and state == _FIRST_ITEM:
                    stack.pop()
                    state = self._finish_value()
                else:
                    raise self._error(f"Expected a value, got {char!r}", base + pos)
            elif state == _AFTER:
                top = stack[-1]
                if char == ",":
                    state = _VALUE if type(top) is list else _KEY
                elif char == ("]" if type(top) is list else "}"):
                    stack.pop()
                    state = self._finish_value()
                else:
                    raise self._error(
                        f"Expected ',' or a closing bracket, got {char!r}", base + pos
                    )
            elif state in (_FIRST_KEY, _KEY):
                if char == '"':
                    state = _KEY_STRING
                elif char == "}" and state == _FIRST_KEY:
                    stack.pop()
                    state = self._finish_value()
                else:
                    raise self._error(f"Expected a key, got {char!r}", base + pos)
            elif state == _COLON:
                if char != ":":
                    raise self._error(f"Expected ':', got {char!r}", base + pos)
                state = _VALUE
            else:  # _END
                raise self._error("Extra data after the JSON value", base + pos)
            pos += 1
        self._state = state
        return changed

    def _grow(self, piece: str) -> None:
        container, key = self._slot
        text = container[key]
        container[key] = None  # drop the container's reference so += can extend in place
        text += piece
        container[key] = text


def parse_partial(text: str) -> Any:
    """The partial value of ``text``, a prefix of a JSON document (``None`` if none yet)."""
    parser = PartialJSONParser()
    parser.feed(text)
    return parser.value
