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
import re
from typing import Any, Final, Optional

import msgspec

from .._payload import Payload, TopLogprob, load_object, malformed, normalise, to_dict
from .._payload import TokenLogprob as ChatCompletionTokenLogprob

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

# ----------------------------------------------------------------------------- shared parts


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


class ChatCompletionChunk(Payload):
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


class ChatCompletion(Payload):
    """A whole ``chat.completion``: a non-streaming response or an accumulated stream."""

    id: str = ""
    object: str = "chat.completion"
    created: int = 0
    model: str = ""
    choices: list[Choice] = msgspec.field(default_factory=list)
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
        raise malformed(what, data, f"invalid JSON ({exc})") from None


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


def _decode_lenient(data: str | bytes, cls: type[Any], what: str) -> Any:
    """The slow path: repair what the strict decoder refused, or raise ProtocolError."""
    payload = load_object(data, what)
    normalise(payload, cls)
    # Each round drops the one field the conversion refused, unless the answer needs it; the
    # bound only guards against a payload with an absurd number of bad fields.
    for _ in range(64):
        try:
            return msgspec.convert(payload, cls, strict=False)
        except msgspec.ValidationError as exc:
            if not _drop_unneeded(payload, str(exc)):
                raise malformed(what, data, str(exc)) from None
    raise malformed(what, data, "too many fields of the wrong type")


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
