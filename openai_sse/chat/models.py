"""Typed chat completion objects, decoded straight from JSON with msgspec.

Attribute paths match the official ``openai`` package, so code written against it reads the
same fields here. Every field has a default and ``null`` is accepted wherever a value may be
missing, because OpenAI-compatible servers disagree about which keys they send.

Decoding is the hot path of a stream: a strict typed decoder runs first and only a payload it
rejects (a ``null`` list, a float count, a string where a number belongs) takes the slower
lenient path. The original JSON text is kept on the top-level object so fields this module
does not declare stay reachable through :meth:`to_dict` without costing anything up front.

Field annotations use ``Optional``/``List`` rather than ``X | None`` because msgspec evaluates
them at class creation, which fails on Python 3.10 for the newer spelling.
"""

from __future__ import annotations

import json
import math
import re
import types
from typing import Any, Final, Optional, Union, get_args, get_origin

import msgspec

from ..errors import ProtocolError

__all__ = [
    "Annotation",
    "AnnotationURLCitation",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "ChatCompletionMessageToolCall",
    "ChatCompletionTokenLogprob",
    "Choice",
    "ChoiceDelta",
    "ChoiceDeltaFunctionCall",
    "ChoiceDeltaToolCall",
    "ChoiceDeltaToolCallFunction",
    "ChoiceLogprobs",
    "ChunkChoice",
    "CompletionTokensDetails",
    "CompletionUsage",
    "Function",
    "FunctionCall",
    "PromptTokensDetails",
    "TopLogprob",
    "decode_chunk",
    "decode_completion",
    "to_dict",
]

_RAW = "_raw_json"
_EXCERPT = 200


class _RawSlot:
    """Holds the JSON a top-level object was decoded from, outside its declared fields.

    A plain slot (msgspec lets a ``gc=False`` struct inherit one) is never encoded, compared
    or shown in ``repr``, and it keeps the objects untracked by the garbage collector: the raw
    payload is bytes or str, which cannot form a reference cycle.
    """

    __slots__ = ("_raw_json",)
    _raw_json: str | bytes


class _Payload(_RawSlot, msgspec.Struct, gc=False):
    """Base of the top-level objects: they may carry the JSON text they were decoded from.

    ``gc=False``: a stream creates one chunk per token, and when they are tracked, chunks kept
    alive for a moment (an ``async for`` consumer's buffer) make the collector run often and
    promote them to the older generations. Nothing in these objects points back at them, so
    they cannot be part of a cycle.
    """

    def to_dict(self) -> dict[str, Any]:
        """The payload as a plain dict, including provider fields this module does not declare.

        An object decoded from JSON returns the original payload; one built in code (such as
        an accumulator snapshot) returns its declared fields.
        """
        payload: dict[str, Any] = to_dict(self)
        return payload

    def to_json(self, *, indent: int | None = None) -> str:
        """The payload as JSON text on one line (or indented), extras included."""
        raw = _raw_of(self)
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
        raw = _raw_of(self)
        if raw is None:
            return {}
        payload: dict[str, Any] = msgspec.json.decode(raw)
        known = type(self).__struct_encode_fields__
        return {k: v for k, v in payload.items() if k not in known}


# ----------------------------------------------------------------------------- shared parts


class TopLogprob(msgspec.Struct, gc=False):
    token: str = ""
    bytes: Optional[list[int]] = None
    logprob: float = 0.0


class ChatCompletionTokenLogprob(msgspec.Struct, gc=False):
    token: str = ""
    bytes: Optional[list[int]] = None
    logprob: float = 0.0
    top_logprobs: list[TopLogprob] = []


class ChoiceLogprobs(msgspec.Struct, gc=False):
    content: Optional[list[ChatCompletionTokenLogprob]] = None
    refusal: Optional[list[ChatCompletionTokenLogprob]] = None


class PromptTokensDetails(msgspec.Struct, gc=False, omit_defaults=True):
    cached_tokens: Optional[int] = None
    audio_tokens: Optional[int] = None
    cache_write_tokens: Optional[int] = None
    image_tokens: Optional[int] = None
    text_tokens: Optional[int] = None


class CompletionTokensDetails(msgspec.Struct, gc=False, omit_defaults=True):
    reasoning_tokens: Optional[int] = None
    audio_tokens: Optional[int] = None
    accepted_prediction_tokens: Optional[int] = None
    rejected_prediction_tokens: Optional[int] = None
    text_tokens: Optional[int] = None


class CompletionUsage(msgspec.Struct, gc=False):
    """Token counts; ``prompt_cache_hit_tokens``/``prompt_cache_miss_tokens`` are DeepSeek's."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: Optional[PromptTokensDetails] = None
    completion_tokens_details: Optional[CompletionTokensDetails] = None
    prompt_cache_hit_tokens: Optional[int] = None
    prompt_cache_miss_tokens: Optional[int] = None


# ----------------------------------------------------------------------------- streaming chunk


class ChoiceDeltaFunctionCall(msgspec.Struct, gc=False, omit_defaults=True):
    name: Optional[str] = None
    arguments: Optional[str] = None


class ChoiceDeltaToolCallFunction(msgspec.Struct, gc=False, omit_defaults=True):
    name: Optional[str] = None
    arguments: Optional[str] = None


class ChoiceDeltaToolCall(msgspec.Struct, gc=False):
    """One fragment of a tool call; fragments with the same ``index`` belong together."""

    index: int = 0
    id: Optional[str] = None
    type: Optional[str] = None
    function: Optional[ChoiceDeltaToolCallFunction] = None


class ChoiceDelta(msgspec.Struct, gc=False, omit_defaults=True):
    """What one chunk adds to a choice.

    Reasoning text arrives as ``reasoning_content`` (DeepSeek, llama.cpp) or ``reasoning``
    (vLLM, Ollama, OpenRouter) depending on the server.
    """

    role: Optional[str] = None
    content: Optional[str] = None
    refusal: Optional[str] = None
    tool_calls: Optional[list[ChoiceDeltaToolCall]] = None
    function_call: Optional[ChoiceDeltaFunctionCall] = None
    reasoning_content: Optional[str] = None
    reasoning: Optional[str] = None


class ChunkChoice(msgspec.Struct, gc=False):
    """A choice inside a chunk; ``delta`` is empty (not missing) on Azure annotation chunks."""

    index: int = 0
    delta: ChoiceDelta = msgspec.field(default_factory=ChoiceDelta)
    finish_reason: Optional[str] = None
    logprobs: Optional[ChoiceLogprobs] = None
    content_filter_results: Optional[dict[str, Any]] = None
    content_filter_offsets: Optional[dict[str, Any]] = None


class ChatCompletionChunk(_Payload):
    """One streamed ``chat.completion.chunk``.

    ``obfuscation`` (OpenAI padding), ``prompt_filter_results`` (Azure) and ``error`` (sent
    mid-stream by OpenAI, OpenRouter and proxies) are declared; any other provider field is in
    :meth:`to_dict` and :attr:`model_extra`.

    ``choices`` is a tuple (indexing, ``len``, iteration and truth work as on the official
    list): unlike a list, a tuple of untracked objects is not tracked by the garbage
    collector, so chunks waiting in an ``async for`` buffer never trigger a collection.
    """

    id: str = ""
    object: str = "chat.completion.chunk"
    created: int = 0
    model: str = ""
    system_fingerprint: Optional[str] = None
    service_tier: Optional[str] = None
    choices: tuple[ChunkChoice, ...] = ()
    usage: Optional[CompletionUsage] = None
    obfuscation: Optional[str] = None
    prompt_filter_results: Optional[list[dict[str, Any]]] = None
    error: Any = None
    """An in-band error object; the dispatcher turns it into :class:`StreamError`."""


# ----------------------------------------------------------------------------- final completion


class Function(msgspec.Struct, dict=True):
    name: str = ""
    arguments: str = ""

    @property
    def parsed_arguments(self) -> Any:
        """With structured output: the arguments parsed (and validated, for a tool class);
        None otherwise. ``arguments`` keeps the text as it came."""
        return self.__dict__.get("parsed_arguments")


class FunctionCall(msgspec.Struct):
    """The deprecated single ``function_call`` of a message."""

    name: str = ""
    arguments: str = ""


class ChatCompletionMessageToolCall(msgspec.Struct):
    id: str = ""
    type: str = "function"
    function: Function = msgspec.field(default_factory=Function)


class AnnotationURLCitation(msgspec.Struct):
    start_index: int = 0
    end_index: int = 0
    title: str = ""
    url: str = ""


class Annotation(msgspec.Struct):
    type: str = "url_citation"
    url_citation: Optional[AnnotationURLCitation] = None


class ChatCompletionMessage(msgspec.Struct, dict=True):
    """The assistant's message; ``reasoning`` holds the model's reasoning text, if any."""

    role: str = "assistant"
    content: Optional[str] = None
    refusal: Optional[str] = None
    tool_calls: Optional[list[ChatCompletionMessageToolCall]] = None
    function_call: Optional[FunctionCall] = None
    annotations: Optional[list[Annotation]] = None
    reasoning: Optional[str] = None

    @property
    def reasoning_content(self) -> str | None:
        """DeepSeek's name for :attr:`reasoning`."""
        return self.reasoning

    @property
    def parsed(self) -> Any:
        """With ``response_format=Model``: the answer validated as ``Model``; None otherwise
        and after a refusal. ``content`` keeps the text as it came."""
        return self.__dict__.get("parsed")


class Choice(msgspec.Struct):
    index: int = 0
    message: ChatCompletionMessage = msgspec.field(default_factory=ChatCompletionMessage)
    finish_reason: Optional[str] = None
    logprobs: Optional[ChoiceLogprobs] = None
    content_filter_results: Optional[dict[str, Any]] = None


class ChatCompletion(_Payload):
    """A whole ``chat.completion``: a non-streaming response or an accumulated stream."""

    id: str = ""
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    choices: list[Choice] = []
    usage: Optional[CompletionUsage] = None
    system_fingerprint: Optional[str] = None
    service_tier: Optional[str] = None
    prompt_filter_results: Optional[list[dict[str, Any]]] = None


# ----------------------------------------------------------------------------- decoding

_chunk_decoder = msgspec.json.Decoder(ChatCompletionChunk)
_completion_decoder = msgspec.json.Decoder(ChatCompletion)


def decode_chunk(data: str | bytes) -> ChatCompletionChunk:
    """Decode one event's data into a chunk; :class:`ProtocolError` if it is not a chunk.

    ``data`` may be the event's UTF-8 bytes (msgspec reads them directly, without a detour
    through ``str``) or its text.
    """
    try:
        chunk = _chunk_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        # msgspec < 0.23 reports invalid UTF-8 as UnicodeDecodeError, later as DecodeError.
        if isinstance(data, bytes):
            # Event data is text (invalid UTF-8 reads as U+FFFD, as the event-stream format
            # decodes it); the bytes only spared the detour through ``str`` when they are valid.
            text = data.decode("utf-8", "replace")
            if text.encode() != data:
                data = text
        chunk = _decode(data, _chunk_decoder, ChatCompletionChunk, "chat completion chunk")
    chunk._raw_json = data
    return chunk


def decode_completion(data: bytes | str) -> ChatCompletion:
    """Decode a non-streaming response body; :class:`ProtocolError` if it is not a completion."""
    completion: ChatCompletion = _decode(
        data, _completion_decoder, ChatCompletion, "chat completion"
    )
    completion._raw_json = data
    if isinstance(data, str):
        if "reasoning_content" in data:
            _take_reasoning_content(completion, data)
    elif b"reasoning_content" in data:
        _take_reasoning_content(completion, data)
    return completion


def _decode(
    data: str | bytes, decoder: msgspec.json.Decoder[Any], cls: type[Any], what: str
) -> Any:
    """Strict typed decoding, then the lenient path for payloads it refuses."""
    try:
        return decoder.decode(data)
    except msgspec.ValidationError:
        return _decode_lenient(data, cls, what)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _malformed(what, data, f"invalid JSON ({exc})") from None


def to_dict(obj: Any) -> Any:
    """Plain builtins for any model object; decoded top-level objects give their original JSON."""
    raw = _raw_of(obj)
    if raw is not None:
        return msgspec.json.decode(raw)
    # Through JSON rather than ``to_builtins``, so sequences come back as lists, as from a
    # decoded payload (a chunk's ``choices`` is a tuple).
    return msgspec.json.decode(msgspec.json.encode(obj))


def _raw_of(obj: Any) -> str | bytes | None:
    raw: str | bytes | None = getattr(obj, _RAW, None)
    return raw


def _take_reasoning_content(completion: ChatCompletion, data: bytes | str) -> None:
    """DeepSeek spells ``message.reasoning`` as ``reasoning_content`` in whole responses."""
    payload = json.loads(data)
    raw_choices = payload.get("choices") if isinstance(payload, dict) else None
    if not isinstance(raw_choices, list):
        return
    raw_choices = [c for c in raw_choices if c is not None]  # as the lenient path drops them
    for choice, raw_choice in zip(completion.choices, raw_choices, strict=False):
        message = raw_choice.get("message") if isinstance(raw_choice, dict) else None
        if isinstance(message, dict) and choice.message.reasoning is None:
            text = message.get("reasoning_content")
            if isinstance(text, str):
                choice.message.reasoning = text


def _excerpt(data: str | bytes) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else data
    if len(text) > _EXCERPT:
        text = text[:_EXCERPT] + "…"
    return repr(text)


def _malformed(what: str, data: str | bytes, reason: str) -> ProtocolError:
    return ProtocolError(f"Malformed {what}: {reason}; event data: {_excerpt(data)}")


def _decode_lenient(data: str | bytes, cls: type[Any], what: str) -> Any:
    """The slow path: repair what the strict decoder refused, or raise ProtocolError."""
    try:
        payload = json.loads(data)
    except (ValueError, TypeError) as exc:
        raise _malformed(what, data, f"invalid JSON ({exc})") from None
    if not isinstance(payload, dict):
        kind = type(payload).__name__
        raise _malformed(what, data, f"expected a JSON object, got {kind}")
    _normalise(payload, cls)
    # Each round drops the one field the conversion refused, unless the answer needs it; the
    # bound only guards against a payload with an absurd number of bad fields.
    for _ in range(64):
        try:
            return msgspec.convert(payload, cls, strict=False)
        except msgspec.ValidationError as exc:
            if not _drop_unneeded(payload, str(exc)):
                raise _malformed(what, data, str(exc)) from None
    raise _malformed(what, data, "too many fields of the wrong type")


# Fields the accumulated answer is built from: a wrong type in one of them is an error. Any
# other field (logprobs, usage, filter results, provider extras...) that cannot be typed is
# dropped from the typed object and stays reachable in the raw payload.
_NEEDED: Final = frozenset(
    {
        "choices",
        "delta",
        "message",
        "index",
        "content",
        "refusal",
        "reasoning",
        "reasoning_content",
        "tool_calls",
        "function_call",
        "function",
        "id",
        "name",
        "arguments",
    }
)
_TOP_LEVEL_NEEDED: Final = frozenset({"choices", "error"})
_PATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\.`([^`]*)`")


def _drop_unneeded(payload: dict[str, Any], message: str) -> bool:
    """Remove the field a ``ValidationError`` points at (``... - at `$.a[0].b```) from
    ``payload`` when the answer does not need it; False when it does or the path is unclear."""
    at = message.rfind(" - at `$")
    if at < 0:
        return False
    path = message[at + len(" - at `$") : -1]
    steps: list[str | int] = []
    for match in _PATH_STEP.finditer(path):
        key, index, quoted = match.groups()
        steps.append(int(index) if index is not None else (key if key is not None else quoted))
    node: Any = payload
    for depth, step in enumerate(steps):
        if isinstance(step, str):
            if not isinstance(node, dict) or step not in node:
                return False
            needed = _TOP_LEVEL_NEEDED if depth == 0 else _NEEDED
            if step not in needed:
                del node[step]
                return True
        elif not isinstance(node, list) or step >= len(node):
            return False
        node = node[step]
    return False


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


def _normalise(obj: dict[str, Any], cls: type[Any]) -> dict[str, Any]:
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
                _normalise(value, sub)
        elif kind == _STRUCTS:
            if isinstance(value, list):
                obj[key] = [
                    _normalise(item, sub) if isinstance(item, dict) else item
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
