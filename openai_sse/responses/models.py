"""The Responses API's final object and its output items, decoded straight from JSON.

Attribute paths match the official ``openai`` package (``response.output[0].content[0].text``,
``item.arguments``, ``item.summary[0].text``, ``response.usage.output_tokens``). Output items,
content parts and annotations are msgspec tagged unions on ``type``; ``item.type`` reads the
tag. An item or part of a kind this module does not declare (the API adds them often) becomes a
:class:`GenericItem` / :class:`GenericPart` holding its raw payload instead of failing the stream.

As for chat chunks, a strict typed decoder runs first and only a payload it rejects (``null``
where a string belongs, an unknown item type) takes the slower repairing path. Top-level
objects keep their JSON text, so undeclared fields stay reachable through ``to_dict()`` and
``model_extra``.

Annotations use ``Optional``/``Union`` because msgspec evaluates them at class creation.
"""

from __future__ import annotations

from typing import Any, Optional, Union, get_args

import msgspec

from .._payload import Payload, TopLogprob, load_object, malformed, normalise, raw_of
from .._payload import TokenLogprob as Logprob

__all__ = [
    "AnnotationContainerFileCitation",
    "AnnotationFileCitation",
    "AnnotationFilePath",
    "AnnotationURLCitation",
    "CodeInterpreterOutput",
    "FileSearchResult",
    "GenericAnnotation",
    "GenericItem",
    "GenericPart",
    "ImageGenerationCall",
    "IncompleteDetails",
    "InputTokensDetails",
    "Logprob",
    "McpApprovalRequest",
    "McpCall",
    "McpListTools",
    "McpListToolsTool",
    "OutputTokensDetails",
    "Reasoning",
    "ReasoningContent",
    "ReasoningSummary",
    "Response",
    "ResponseCodeInterpreterToolCall",
    "ResponseComputerToolCall",
    "ResponseContent",
    "ResponseCustomToolCall",
    "ResponseError",
    "ResponseFileSearchToolCall",
    "ResponseFunctionToolCall",
    "ResponseFunctionWebSearch",
    "ResponseOutputItem",
    "ResponseOutputMessage",
    "ResponseOutputRefusal",
    "ResponseOutputText",
    "ResponseReasoningItem",
    "ResponseReasoningText",
    "ResponseUsage",
    "TextAnnotation",
    "TopLogprob",
    "WebSearchAction",
    "decode_response",
]


class _Tagged(msgspec.Struct, tag_field="type"):
    """A member of a union on ``type``; ``.type`` reads the tag like the official models."""

    @property
    def type(self) -> str:
        tag: str = self.__struct_config__.tag  # type: ignore[assignment]
        return tag


class _Generic(_Tagged):
    """Base of the stand-ins for kinds not declared here: the raw payload, ``.type`` from it."""

    raw: dict[str, Any] = {}

    @property
    def type(self) -> str:
        return str(self.raw.get("type", ""))

    def to_dict(self) -> dict[str, Any]:
        return self.raw


# ----------------------------------------------------------------------------- content parts


class AnnotationURLCitation(_Tagged, tag="url_citation"):
    start_index: int = 0
    end_index: int = 0
    title: str = ""
    url: str = ""


class AnnotationFileCitation(_Tagged, tag="file_citation"):
    file_id: str = ""
    filename: str = ""
    index: int = 0


class AnnotationContainerFileCitation(_Tagged, tag="container_file_citation"):
    container_id: str = ""
    file_id: str = ""
    filename: str = ""
    start_index: int = 0
    end_index: int = 0


class AnnotationFilePath(_Tagged, tag="file_path"):
    file_id: str = ""
    index: int = 0


class GenericAnnotation(_Generic, tag="__annotation__"):
    """An annotation kind this module does not declare."""


TextAnnotation = Union[
    AnnotationURLCitation,
    AnnotationFileCitation,
    AnnotationContainerFileCitation,
    AnnotationFilePath,
    GenericAnnotation,
]


class ResponseOutputText(_Tagged, tag="output_text"):
    text: str = ""
    annotations: list[TextAnnotation] = []
    logprobs: Optional[list[Logprob]] = None


class ResponseOutputRefusal(_Tagged, tag="refusal"):
    refusal: str = ""


class ResponseReasoningText(_Tagged, tag="reasoning_text"):
    """Reasoning text as a content part (``content_part.added`` of a reasoning item)."""

    text: str = ""


class GenericPart(_Generic, tag="__part__"):
    """A content part kind this module does not declare."""


ResponseContent = Union[
    ResponseOutputText, ResponseOutputRefusal, ResponseReasoningText, GenericPart
]


# ----------------------------------------------------------------------------- output items


class ResponseOutputMessage(_Tagged, tag="message"):
    id: str = ""
    role: str = "assistant"
    status: Optional[str] = None
    content: list[ResponseContent] = []
    phase: Optional[str] = None


class ResponseFunctionToolCall(_Tagged, tag="function_call"):
    id: Optional[str] = None
    call_id: str = ""
    name: str = ""
    arguments: str = ""
    status: Optional[str] = None
    namespace: Optional[str] = None


class ReasoningSummary(msgspec.Struct):
    text: str = ""
    type: str = "summary_text"


class ReasoningContent(msgspec.Struct):
    text: str = ""
    type: str = "reasoning_text"


class ResponseReasoningItem(_Tagged, tag="reasoning"):
    id: str = ""
    summary: list[ReasoningSummary] = []
    content: Optional[list[ReasoningContent]] = None
    encrypted_content: Optional[str] = None
    status: Optional[str] = None


class WebSearchAction(msgspec.Struct):
    """Every kind of web search action in one shape (``search``, ``open_page``, ``find``)."""

    type: str = "search"
    query: Optional[str] = None
    queries: Optional[list[str]] = None
    sources: Optional[list[Any]] = None
    url: Optional[str] = None
    pattern: Optional[str] = None


class ResponseFunctionWebSearch(_Tagged, tag="web_search_call"):
    id: str = ""
    status: Optional[str] = None
    action: Optional[WebSearchAction] = None


class FileSearchResult(msgspec.Struct):
    file_id: Optional[str] = None
    filename: Optional[str] = None
    score: Optional[float] = None
    text: Optional[str] = None
    attributes: Optional[dict[str, Any]] = None


class ResponseFileSearchToolCall(_Tagged, tag="file_search_call"):
    id: str = ""
    status: Optional[str] = None
    queries: list[str] = []
    results: Optional[list[FileSearchResult]] = None


class CodeInterpreterOutput(msgspec.Struct):
    """Either kind of output (``logs`` with ``logs``, ``image`` with ``url``) in one shape."""

    type: str = "logs"
    logs: Optional[str] = None
    url: Optional[str] = None


class ResponseCodeInterpreterToolCall(_Tagged, tag="code_interpreter_call"):
    id: str = ""
    status: Optional[str] = None
    code: Optional[str] = None
    container_id: str = ""
    outputs: Optional[list[CodeInterpreterOutput]] = None


class McpCall(_Tagged, tag="mcp_call"):
    id: str = ""
    server_label: str = ""
    name: str = ""
    arguments: str = ""
    output: Optional[str] = None
    error: Any = None
    status: Optional[str] = None
    approval_request_id: Optional[str] = None


class McpListToolsTool(msgspec.Struct):
    name: str = ""
    input_schema: Any = None
    annotations: Any = None
    description: Optional[str] = None


class McpListTools(_Tagged, tag="mcp_list_tools"):
    id: str = ""
    server_label: str = ""
    tools: list[McpListToolsTool] = []
    error: Optional[str] = None


class McpApprovalRequest(_Tagged, tag="mcp_approval_request"):
    id: str = ""
    server_label: str = ""
    name: str = ""
    arguments: str = ""


class ImageGenerationCall(_Tagged, tag="image_generation_call"):
    id: str = ""
    status: Optional[str] = None
    result: Optional[str] = None
    revised_prompt: Optional[str] = None
    size: Optional[str] = None
    quality: Optional[str] = None
    output_format: Optional[str] = None
    background: Optional[str] = None
    action: Optional[str] = None


class ResponseCustomToolCall(_Tagged, tag="custom_tool_call"):
    id: Optional[str] = None
    call_id: str = ""
    name: str = ""
    input: str = ""
    namespace: Optional[str] = None


class ResponseComputerToolCall(_Tagged, tag="computer_call"):
    id: str = ""
    call_id: str = ""
    status: Optional[str] = None
    action: Any = None
    pending_safety_checks: list[Any] = []


class GenericItem(_Generic, tag="__item__"):
    """An output item kind this module does not declare; ``raw`` holds all of it."""

    @property
    def id(self) -> str | None:
        value = self.raw.get("id")
        return value if isinstance(value, str) else None

    @property
    def status(self) -> str | None:
        value = self.raw.get("status")
        return value if isinstance(value, str) else None


ResponseOutputItem = Union[
    ResponseOutputMessage,
    ResponseFunctionToolCall,
    ResponseReasoningItem,
    ResponseFunctionWebSearch,
    ResponseFileSearchToolCall,
    ResponseCodeInterpreterToolCall,
    McpCall,
    McpListTools,
    McpApprovalRequest,
    ImageGenerationCall,
    ResponseCustomToolCall,
    ResponseComputerToolCall,
    GenericItem,
]


# ----------------------------------------------------------------------------- the response


class InputTokensDetails(msgspec.Struct, gc=False):
    cached_tokens: int = 0


class OutputTokensDetails(msgspec.Struct, gc=False):
    reasoning_tokens: int = 0


class ResponseUsage(msgspec.Struct, gc=False):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: Optional[InputTokensDetails] = None
    output_tokens_details: Optional[OutputTokensDetails] = None


class ResponseError(msgspec.Struct):
    code: Optional[str] = None
    message: str = ""


class IncompleteDetails(msgspec.Struct):
    reason: Optional[str] = None


class Reasoning(msgspec.Struct):
    effort: Optional[str] = None
    summary: Optional[str] = None
    generate_summary: Optional[str] = None


class Response(Payload):
    """A whole response: the object of ``response.*`` events, a ``create`` result, a snapshot.

    :attr:`output_text` joins the text of every ``output_text`` part, as the official package
    does. Fields not declared (``store``, ``moderation``, ...) are in :meth:`to_dict`.
    """

    id: str = ""
    object: str = "response"
    created_at: float = 0
    status: Optional[str] = None
    model: str = ""
    output: list[ResponseOutputItem] = msgspec.field(default_factory=list)
    usage: Optional[ResponseUsage] = None
    error: Optional[ResponseError] = None
    incomplete_details: Optional[IncompleteDetails] = None
    instructions: Any = None
    max_output_tokens: Optional[int] = None
    max_tool_calls: Optional[int] = None
    parallel_tool_calls: Optional[bool] = None
    previous_response_id: Optional[str] = None
    reasoning: Optional[Reasoning] = None
    service_tier: Optional[str] = None
    temperature: Optional[float] = None
    top_p: Optional[float] = None
    top_logprobs: Optional[int] = None
    text: Any = None
    tool_choice: Any = None
    tools: Optional[list[Any]] = None
    truncation: Optional[str] = None
    user: Optional[str] = None
    metadata: Optional[dict[str, Any]] = None
    background: Optional[bool] = None
    completed_at: Optional[float] = None
    conversation: Any = None
    prompt: Any = None
    prompt_cache_key: Optional[str] = None
    safety_identifier: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        """The response as a plain dict: the server's payload when it was decoded from one;
        built here (a snapshot), its fields, with generic items as the payloads they hold."""
        payload = super().to_dict()
        if raw_of(self) is None:
            payload["output"] = [
                _plain(item, plain)
                for item, plain in zip(self.output, payload["output"], strict=True)
            ]
        return payload

    def to_json(self, *, indent: int | None = None) -> str:
        if raw_of(self) is not None:
            return super().to_json(indent=indent)
        text = msgspec.json.encode(self.to_dict()).decode()
        return msgspec.json.format(text, indent=indent) if indent else text

    @property
    def output_text(self) -> str:
        """The text of every ``output_text`` part of every message, joined."""
        texts = [
            part.text
            for item in self.output
            if isinstance(item, ResponseOutputMessage)
            for part in item.content
            if isinstance(part, ResponseOutputText)
        ]
        return "".join(texts)


def _plain(value: Any, plain: Any) -> Any:
    """``plain`` (the builtins of ``value``) with every generic stand-in back to its payload."""
    if isinstance(value, _Generic):
        return value.raw
    if isinstance(value, ResponseOutputMessage):
        plain["content"] = [
            _plain(p, q) for p, q in zip(value.content, plain["content"], strict=True)
        ]
    elif isinstance(value, ResponseOutputText):
        plain["annotations"] = [
            _plain(a, b) for a, b in zip(value.annotations, plain["annotations"], strict=True)
        ]
    return plain


# ----------------------------------------------------------------------------- decoding


def tags(union: Any) -> dict[str, type[Any]]:
    """Each declared member of a tagged union by its ``type`` value (the generic stand-in,
    which has no fixed type, left out)."""
    return {
        str(cls.__struct_config__.tag): cls
        for cls in get_args(union)
        if not issubclass(cls, _Generic)
    }


_ITEMS = tags(ResponseOutputItem)
_PARTS = tags(ResponseContent)
_ANNOTATIONS = tags(TextAnnotation)

_response_decoder = msgspec.json.Decoder(Response)


def decode_response(data: str | bytes) -> Response:
    """Decode a whole response body; :class:`~openai_sse.ProtocolError` if it is not one."""
    try:
        response = _response_decoder.decode(data)
    except msgspec.ValidationError:
        payload = load_object(data, "response")
        response = convert(repair_response(payload), Response, data, "response")
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise malformed("response", data, f"invalid JSON ({exc})") from None
    response._raw_json = data
    return response


def convert(payload: dict[str, Any], cls: type[Any], data: str | bytes, what: str) -> Any:
    """The last step of the repairing path: a lax conversion, or ProtocolError."""
    try:
        return msgspec.convert(payload, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise malformed(what, data, str(exc)) from None


def _repair(value: Any, kinds: dict[str, type[Any]], generic: type[_Generic]) -> Any:
    """One union member: a known kind is normalised in place, another kind becomes generic."""
    if not isinstance(value, dict):
        return value
    kind = value.get("type")
    cls = kinds.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return generic(raw=value)
    if cls is ResponseOutputMessage:
        value["content"] = _repair_list(value.get("content"), _PARTS, GenericPart)
    elif cls is ResponseOutputText:
        value["annotations"] = _repair_list(
            value.get("annotations"), _ANNOTATIONS, GenericAnnotation
        )
    return normalise(value, cls)


def _repair_list(values: Any, kinds: dict[str, type[Any]], generic: type[_Generic]) -> Any:
    if values is None:
        return []
    if not isinstance(values, list):
        return values
    return [_repair(v, kinds, generic) for v in values if v is not None]


def repair_item(value: Any) -> Any:
    """An output item payload made acceptable to the lax conversion."""
    return _repair(value, _ITEMS, GenericItem)


def repair_part(value: Any) -> Any:
    """A content part payload made acceptable to the lax conversion."""
    return _repair(value, _PARTS, GenericPart)


def repair_annotation(value: Any) -> Any:
    """An annotation payload made acceptable to the lax conversion."""
    return _repair(value, _ANNOTATIONS, GenericAnnotation)


def repair_response(payload: Any) -> Any:
    """A response payload made acceptable to the lax conversion."""
    if isinstance(payload, dict):
        payload["output"] = _repair_list(payload.get("output"), _ITEMS, GenericItem)
        normalise(payload, Response)
    return payload


def annotation_of(value: Any) -> TextAnnotation:
    """A typed annotation from the plain object an ``annotation.added`` event carries."""
    if isinstance(value, dict):
        repaired = repair_annotation(dict(value))
        if isinstance(repaired, GenericAnnotation):
            return repaired
        try:
            result: TextAnnotation = msgspec.convert(
                repaired,
                TextAnnotation,
                strict=False,
            )
        except msgspec.ValidationError:
            return GenericAnnotation(raw=value)
        return result
    return GenericAnnotation(raw={"value": value})
