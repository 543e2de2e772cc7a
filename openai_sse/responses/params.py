"""Typed request parameters for the Responses API, shaped like the official ``openai`` package's.

They exist for the type checker and editors: ``client.responses.stream(..., max_output_token=5)``
is an error under ``mypy --strict``. At run time they are plain dicts, sent as they are;
anything not listed (a provider's own parameter, a field newer than this list) goes in
``extra_body``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypedDict

__all__ = ["EasyInputMessageParam", "ReasoningParam", "ResponseParams"]


class EasyInputMessageParam(TypedDict):
    """One message of ``input``: ``{"role": "user", "content": "..."}``."""

    role: Literal["user", "assistant", "system", "developer"]
    content: str | Sequence[Mapping[str, Any]]


class ReasoningParam(TypedDict, total=False):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None
    summary: Literal["auto", "concise", "detailed"] | None


class ResponseParams(TypedDict, total=False):
    """The optional request parameters ``responses.stream`` and ``responses.create`` take."""

    instructions: str | None
    tools: Iterable[Mapping[str, Any]]
    tool_choice: Literal["none", "auto", "required"] | Mapping[str, Any]
    parallel_tool_calls: bool | None
    max_output_tokens: int | None
    max_tool_calls: int | None
    temperature: float | None
    top_p: float | None
    top_logprobs: int | None
    reasoning: ReasoningParam | None
    text: Mapping[str, Any]
    include: Sequence[str] | None
    previous_response_id: str | None
    conversation: str | Mapping[str, Any] | None
    prompt: Mapping[str, Any] | None
    store: bool | None
    background: bool | None
    metadata: Mapping[str, str] | None
    user: str
    safety_identifier: str
    prompt_cache_key: str
    prompt_cache_retention: Literal["in_memory", "24h"] | None
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None
    truncation: Literal["auto", "disabled"] | None
    stream_options: Mapping[str, Any] | None
