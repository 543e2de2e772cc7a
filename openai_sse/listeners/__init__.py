"""Ready-made listeners: structured output parsed as it streams, and OpenTelemetry tracing.

:class:`OpenTelemetryListener` needs the optional ``opentelemetry-api`` package
(``pip install openai-sse[otel]``) and is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .partial_json import PartialJSONError, PartialJSONParser, parse_partial
from .structured import PartialToolCall, StructuredOutput, StructuredOutputError

if TYPE_CHECKING:
    from .otel import OpenTelemetryListener

__all__ = [
    "OpenTelemetryListener",
    "PartialJSONError",
    "PartialJSONParser",
    "PartialToolCall",
    "StructuredOutput",
    "StructuredOutputError",
    "parse_partial",
]


def __getattr__(name: str) -> Any:
    if name == "OpenTelemetryListener":
        try:
            from .otel import OpenTelemetryListener
        except ImportError as exc:
            raise ImportError(
                "OpenTelemetryListener needs opentelemetry-api: pip install 'openai-sse[otel]'"
            ) from exc
        return OpenTelemetryListener
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
