"""What the chat and Responses models share: the payload base that keeps its JSON text, the
lenient decoding helpers and the malformed-payload error.

Top-level objects (chat chunks and completions, Responses events and responses) keep the JSON
they were decoded from in a slot outside their declared fields, so undeclared provider fields
stay reachable through :meth:`Payload.to_dict` and :attr:`Payload.model_extra` at no cost up
front. A payload the strict typed decoder refuses is repaired by :func:`normalise` before a lax
conversion; one that cannot be repaired is a :class:`~openai_sse.ProtocolError` quoting it.

Field annotations use ``Optional`` because msgspec evaluates them at class creation.
"""

from __future__ import annotations

import json
import math
import types
from typing import Any, Optional, Union, get_args, get_origin

import msgspec

from .errors import ProtocolError

__all__ = [
    "Payload",
    "TokenLogprob",
    "TopLogprob",
    "load_object",
    "malformed",
    "normalise",
    "raw_of",
    "to_dict",
]

_RAW = "_raw_json"
_EXCERPT = 200


class _RawSlot:
    """Holds the JSON a top-level object was decoded from, outside its declared fields.

    A plain slot (msgspec lets a ``gc=False`` struct inherit one) is never encoded, compared
    or shown in ``repr``, and it keeps the objects untracked by the garbage collector: the raw
    payload is bytes or str, which cannot form a reference cycle. Decoders set it directly
    (``obj._raw_json = data``): one attribute store per chunk, no call.
    """

    __slots__ = ("_raw_json",)
    _raw_json: str | bytes


class Payload(_RawSlot, msgspec.Struct, gc=False):
    """Base of the top-level objects: they may carry the JSON text they were decoded from.

    ``gc=False``: a stream creates one chunk per token, and when they are tracked, chunks kept
    alive for a moment (an ``async for`` consumer's buffer) make the collector run often and
    promote them to the older generations. Nothing in these objects points back at them, so
    they cannot be part of a cycle.
    """

    def to_dict(self) -> dict[str, Any]:
        """The payload as a plain dict, including provider fields the models do not declare.

        An object decoded from JSON returns the original payload; one built in code (such as
        an accumulator snapshot) returns its declared fields.
        """
        payload: dict[str, Any] = to_dict(self)
        return payload

    def to_json(self, *, indent: int | None = None) -> str:
        """The payload as JSON text on one line (or indented), extras included."""
        raw = raw_of(self)
        if raw is None:
            text = msgspec.json.encode(self).decode()
        else:
            text = raw.decode() if isinstance(raw, (bytes, bytearray)) else str(raw)
            if "\n" in text or "\r" in text:
                text = msgspec.json.encode(msgspec.json.decode(text)).decode()
        if indent:
            return msgspec.json.format(text, indent=indent)
        return text

    @property
    def model_extra(self) -> dict[str, Any]:
        """Top-level fields the server sent that are not declared here (computed on access)."""
        raw = raw_of(self)
        if raw is None:
            return {}
        payload: dict[str, Any] = msgspec.json.decode(raw)
        known = type(self).__struct_encode_fields__
        return {k: v for k, v in payload.items() if k not in known}


def to_dict(obj: Any) -> Any:
    """Plain builtins for any model object; decoded top-level objects give their original JSON."""
    raw = raw_of(obj)
    if raw is not None:
        return msgspec.json.decode(raw)
    # Through JSON rather than ``to_builtins``, so sequences come back as lists, as from a
    # decoded payload (a chunk's ``choices`` is a tuple).
    return msgspec.json.decode(msgspec.json.encode(obj))


def raw_of(obj: Any) -> str | bytes | None:
    """The JSON text ``obj`` was decoded from; None for an object built in code."""
    raw: str | bytes | None = getattr(obj, _RAW, None)
    return raw


# ----------------------------------------------------------------------------- shared parts


class TopLogprob(msgspec.Struct, gc=False):
    token: str = ""
    bytes: Optional[list[int]] = None
    logprob: float = 0.0


class TokenLogprob(msgspec.Struct, gc=False):
    """The log probability of one output token and its most likely alternatives."""

    token: str = ""
    bytes: Optional[list[int]] = None
    logprob: float = 0.0
    top_logprobs: list[TopLogprob] = []


# ----------------------------------------------------------------------------- errors


def _excerpt(data: str | bytes) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else data
    if len(text) > _EXCERPT:
        text = text[:_EXCERPT] + "…"
    return repr(text)


def malformed(what: str, data: str | bytes, reason: str) -> ProtocolError:
    """The error for a payload that is not a ``what``, quoting (the start of) its data."""
    return ProtocolError(f"Malformed {what}: {reason}; event data: {_excerpt(data)}")


def load_object(data: str | bytes, what: str) -> dict[str, Any]:
    """``data`` parsed as a JSON object for the repairing path, or the malformed error."""
    try:
        payload = json.loads(data)
    except (ValueError, TypeError) as exc:
        raise malformed(what, data, f"invalid JSON ({exc})") from None
    if not isinstance(payload, dict):
        kind = type(payload).__name__
        raise malformed(what, data, f"expected a JSON object, got {kind}")
    return payload


# ----------------------------------------------------------------------------- lenient decoding

# How the lenient path treats each declared field, derived once per class from its annotations.
_STRUCT, _STRUCTS, _INT, _INTS, _STR, _OTHER = range(6)
_plans: dict[type[Any], dict[str, tuple[int, Any, bool]]] = {}


def _plan_for(cls: type[Any]) -> dict[str, tuple[int, Any, bool]]:
    plan = _plans.get(cls)
    if plan is not None:
        return plan
    plan = {}
    for field in msgspec.structs.fields(cls):
        tp: Any = field.type
        nullable = False
        if get_origin(tp) in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            nullable = len(members) != len(get_args(tp))
            tp = members[0] if len(members) == 1 else Any
        origin, args = get_origin(tp), get_args(tp)
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            plan[field.encode_name] = (_STRUCT, tp, nullable)
        elif origin in (list, tuple) and args and isinstance(args[0], type):
            if issubclass(args[0], msgspec.Struct):
                plan[field.encode_name] = (_STRUCTS, args[0], nullable)
            elif args[0] is int:
                plan[field.encode_name] = (_INTS, None, nullable)
            else:
                plan[field.encode_name] = (_OTHER, None, nullable)
        elif tp is int:
            plan[field.encode_name] = (_INT, None, nullable)
        elif tp is str:
            plan[field.encode_name] = (_STR, None, nullable)
        else:
            plan[field.encode_name] = (_OTHER, None, nullable)
    _plans[cls] = plan
    return plan


def _as_int(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return value


def normalise(obj: dict[str, Any], cls: type[Any]) -> dict[str, Any]:
    """Repair ``obj`` in place so that a lax ``msgspec.convert`` to ``cls`` accepts it.

    A ``null`` for a field that cannot be null is dropped (its default applies: ``[]`` for
    lists, an empty object for ``delta``), floats in integer fields are truncated, numbers in
    string fields become strings, and ``null`` entries of object lists are skipped.
    """
    for key, (kind, sub, nullable) in _plan_for(cls).items():
        if key not in obj:
            continue
        value = obj[key]
        if value is None:
            if not nullable:
                del obj[key]
        elif kind == _STRUCT:
            if isinstance(value, dict):
                normalise(value, sub)
        elif kind == _STRUCTS:
            if isinstance(value, list):
                obj[key] = [
                    normalise(item, sub) if isinstance(item, dict) else item
                    for item in value
                    if item is not None
                ]
        elif kind == _INT:
            obj[key] = _as_int(value)
        elif kind == _INTS:
            if isinstance(value, list):
                obj[key] = [_as_int(item) for item in value]
        elif kind == _STR and isinstance(value, (int, float)) and not isinstance(value, bool):
            obj[key] = str(value)
        elif key == "content" and isinstance(value, list) and "reasoning" in _plan_for(cls):
            _split_content_parts(obj, value)
    return obj


def _split_content_parts(obj: dict[str, Any], parts: list[Any]) -> None:
    """``content`` as a list of typed parts (Mistral and others): text parts are the content,
    thinking parts the reasoning; any other part is left to the raw payload."""
    text: list[str] = []
    thinking: list[str] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            text.append(part["text"])
        elif kind == "thinking":
            thinking.extend(_texts(part.get("thinking")))
    obj["content"] = "".join(text) if text else None
    if thinking:
        earlier = obj.get("reasoning")
        obj["reasoning"] = (earlier if isinstance(earlier, str) else "") + "".join(thinking)


def _texts(value: Any) -> list[str]:
    """The text of a thinking part: a string, or a list of text parts."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [
            p["text"]
            for p in value
            if isinstance(p, dict)
            and p.get("type", "text") == "text"
            and isinstance(p.get("text"), str)
        ]
    return []
