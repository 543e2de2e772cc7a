"""Typed request parameters for Chat Completions, shaped like the official ``openai`` package's.

They exist for the type checker: ``client.chat.stream(..., temprature=0.2)`` or a message
with ``"role": "usr"`` is an error under ``mypy --strict``, and editors complete the keys. At
run time they are plain dicts, sent as they are. Optional keys sit in ``total=False``
subclasses so no ``typing_extensions`` is needed at run time on Python 3.10.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypedDict

__all__ = [
    "ChatCompletionAssistantMessageParam",
    "ChatCompletionContentPartFileParam",
    "ChatCompletionContentPartImageParam",
    "ChatCompletionContentPartInputAudioParam",
    "ChatCompletionContentPartParam",
    "ChatCompletionContentPartRefusalParam",
    "ChatCompletionContentPartTextParam",
    "ChatCompletionDeveloperMessageParam",
    "ChatCompletionMessageParam",
    "ChatCompletionMessageToolCallParam",
    "ChatCompletionNamedToolChoiceParam",
    "ChatCompletionStreamOptionsParam",
    "ChatCompletionSystemMessageParam",
    "ChatCompletionToolChoiceOptionParam",
    "ChatCompletionToolMessageParam",
    "ChatCompletionToolParam",
    "ChatCompletionUserMessageParam",
    "ChatParams",
    "FileData",
    "FunctionCallParam",
    "FunctionDefinition",
    "ImageURL",
    "InputAudio",
    "JSONSchema",
    "ResponseFormat",
    "ResponseFormatJSONObject",
    "ResponseFormatJSONSchema",
    "ResponseFormatText",
]


# -- content parts ---------------------------------------------------------------------------


class ChatCompletionContentPartTextParam(TypedDict):
    type: Literal["text"]
    text: str


class _ImageURLRequired(TypedDict):
    url: str  # https://... or data:image/png;base64,...


class ImageURL(_ImageURLRequired, total=False):
    detail: Literal["auto", "low", "high"]


class ChatCompletionContentPartImageParam(TypedDict):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(TypedDict):
    data: str  # base64
    format: Literal["wav", "mp3"]


class ChatCompletionContentPartInputAudioParam(TypedDict):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FileData(TypedDict, total=False):
    file_data: str
    file_id: str
    filename: str


class ChatCompletionContentPartFileParam(TypedDict):
    type: Literal["file"]
    file: FileData


class ChatCompletionContentPartRefusalParam(TypedDict):
    type: Literal["refusal"]
    refusal: str


ChatCompletionContentPartParam = (
    ChatCompletionContentPartTextParam
    | ChatCompletionContentPartImageParam
    | ChatCompletionContentPartInputAudioParam
    | ChatCompletionContentPartFileParam
)


# -- messages --------------------------------------------------------------------------------


class _SystemRequired(TypedDict):
    role: Literal["system"]
    content: str | Iterable[ChatCompletionContentPartTextParam]


class ChatCompletionSystemMessageParam(_SystemRequired, total=False):
    name: str


class _DeveloperRequired(TypedDict):
    role: Literal["developer"]
    content: str | Iterable[ChatCompletionContentPartTextParam]


class ChatCompletionDeveloperMessageParam(_DeveloperRequired, total=False):
    name: str


class _UserRequired(TypedDict):
    role: Literal["user"]
    content: str | Iterable[ChatCompletionContentPartParam]


class ChatCompletionUserMessageParam(_UserRequired, total=False):
    name: str


class FunctionCallParam(TypedDict):
    name: str
    arguments: str  # JSON text, as the model produced it


class ChatCompletionMessageToolCallParam(TypedDict):
    id: str
    type: Literal["function"]
    function: FunctionCallParam


class _AssistantRequired(TypedDict):
    role: Literal["assistant"]


class ChatCompletionAssistantMessageParam(_AssistantRequired, total=False):
    content: (
        str
        | Iterable[ChatCompletionContentPartTextParam | ChatCompletionContentPartRefusalParam]
        | None
    )
    refusal: str | None
    name: str
    tool_calls: Iterable[ChatCompletionMessageToolCallParam]
    reasoning_content: str  # DeepSeek-style providers accept the reasoning back


class ChatCompletionToolMessageParam(TypedDict):
    role: Literal["tool"]
    content: str | Iterable[ChatCompletionContentPartTextParam]
    tool_call_id: str


ChatCompletionMessageParam = (
    ChatCompletionDeveloperMessageParam
    | ChatCompletionSystemMessageParam
    | ChatCompletionUserMessageParam
    | ChatCompletionAssistantMessageParam
    | ChatCompletionToolMessageParam
)


# -- tools -----------------------------------------------------------------------------------


class _FunctionDefinitionRequired(TypedDict):
    name: str


class FunctionDefinition(_FunctionDefinitionRequired, total=False):
    description: str
    parameters: Mapping[str, object]  # a JSON schema
    strict: bool | None


class ChatCompletionToolParam(TypedDict):
    type: Literal["function"]
    function: FunctionDefinition


class _FunctionName(TypedDict):
    name: str


class ChatCompletionNamedToolChoiceParam(TypedDict):
    type: Literal["function"]
    function: _FunctionName


ChatCompletionToolChoiceOptionParam = (
    Literal["none", "auto", "required"] | ChatCompletionNamedToolChoiceParam
)


# -- response format and stream options ------------------------------------------------------


class ResponseFormatText(TypedDict):
    type: Literal["text"]


class ResponseFormatJSONObject(TypedDict):
    type: Literal["json_object"]


class _JSONSchemaRequired(TypedDict):
    name: str


class JSONSchema(_JSONSchemaRequired, total=False):
    description: str
    schema: Mapping[str, object]
    strict: bool | None


class ResponseFormatJSONSchema(TypedDict):
    type: Literal["json_schema"]
    json_schema: JSONSchema


ResponseFormat = ResponseFormatText | ResponseFormatJSONObject | ResponseFormatJSONSchema


class ChatCompletionStreamOptionsParam(TypedDict, total=False):
    include_usage: bool
    include_obfuscation: bool


# -- the request -----------------------------------------------------------------------------


class ChatParams(TypedDict, total=False):
    """The optional request parameters ``chat.stream`` and ``chat.create`` take by keyword.

    Anything else (a provider's own parameter, a field newer than this list) goes in
    ``extra_body``, which is merged into the request body last.
    """

    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    max_completion_tokens: int | None
    n: int | None
    stop: str | Sequence[str] | None
    seed: int | None
    presence_penalty: float | None
    frequency_penalty: float | None
    logit_bias: Mapping[str, int] | None
    logprobs: bool | None
    top_logprobs: int | None
    tools: Iterable[ChatCompletionToolParam]
    tool_choice: ChatCompletionToolChoiceOptionParam
    parallel_tool_calls: bool
    # A TypedDict above, or (structured output) a msgspec Struct / pydantic model class or a
    # JSON-schema dict.
    response_format: ResponseFormat | type[Any] | Mapping[str, Any]
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None
    verbosity: Literal["low", "medium", "high"] | None
    modalities: Sequence[Literal["text", "audio"]] | None
    user: str
    safety_identifier: str
    prompt_cache_key: str
    metadata: Mapping[str, str] | None
    store: bool | None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None
    stream_options: ChatCompletionStreamOptionsParam | None
