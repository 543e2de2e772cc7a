"""OpenTelemetry tracing and metrics for streams, after the GenAI semantic conventions.

One span per stream, named ``{gen_ai.operation.name} {gen_ai.request.model}``, kind CLIENT,
starting when the stream started (its ``metrics.started``) and ended exactly once: when the
stream completes, fails, is cancelled or is cancelled by ``client.close()``. The request's
model and parameters, the server, the response id and model, finish reasons, token usage and
the time to the first chunk become ``gen_ai.*`` attributes; a failure sets the span status
to ERROR and ``error.type``. The client metrics of the conventions are recorded once per
stream when it ends, except the time per output chunk, recorded for each chunk after the first
as the conventions define it.

Works for chat streams and Responses streams alike (both expose ``request``, ``metrics`` and
``snapshot``, and call the same hooks). Message content is not recorded unless asked for with
``capture_content=True`` or ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``.

Needs ``opentelemetry-api`` (``pip install openai-sse[otel]``); without an SDK configured
the API's no-op tracer and meter make the listener nearly free.
"""

from __future__ import annotations

import json
import os
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final
from urllib.parse import urlsplit

import msgspec
from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from .._version import __version__
from ..errors import APIStatusError

__all__ = ["CAPTURE_CONTENT_ENV", "OpenTelemetryListener", "provider_name"]

CAPTURE_CONTENT_ENV: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_SCOPE: Final = "openai_sse"

# Bucket boundaries the conventions ask for.
_SECONDS_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
_TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip

# Request body field -> span attribute, for the scalar parameters.
_REQUEST_PARAMS: Final = (
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("top_k", "gen_ai.request.top_k"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
    ("seed", "gen_ai.request.seed"),
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("max_completion_tokens", "gen_ai.request.max_tokens"),
    ("max_output_tokens", "gen_ai.request.max_tokens"),
    ("service_tier", "openai.request.service_tier"),
)

# Host suffix -> gen_ai.provider.name (well-known values of the conventions).
_PROVIDERS: Final = (
    ("openai.azure.com", "azure.ai.openai"),
    ("cognitiveservices.azure.com", "azure.ai.openai"),
    ("services.ai.azure.com", "azure.ai.inference"),
    ("models.ai.azure.com", "azure.ai.inference"),
    ("deepseek.com", "deepseek"),
    ("groq.com", "groq"),
    ("mistral.ai", "mistral_ai"),
    ("x.ai", "x_ai"),
    ("perplexity.ai", "perplexity"),
    ("moonshot.ai", "moonshot_ai"),
    ("moonshot.cn", "moonshot_ai"),
    ("anthropic.com", "anthropic"),
    ("cohere.com", "cohere"),
    ("cohere.ai", "cohere"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
    ("amazonaws.com", "aws.bedrock"),
)


def provider_name(url: str) -> str:
    """``gen_ai.provider.name`` for a base or request URL; ``openai`` for anything else.

    Servers that speak the OpenAI API without a well-known name of their own (vLLM, Ollama,
    llama.cpp, proxies) get ``openai``, the telemetry flavour of the API they implement.
    """
    host = (urlsplit(url).hostname or "").lower()
    for suffix, name in _PROVIDERS:
        if host == suffix or host.endswith("." + suffix):
            return name
    return "openai"


def _content_opt_in() -> bool:
    value = os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower()
    return value in ("true", "1", "yes", "span_only", "span_and_event")


def _error_type(error: BaseException) -> str:
    if isinstance(error, APIStatusError):
        return str(error.status_code)
    cls = type(error)
    module = cls.__module__
    if module == "builtins":
        return cls.__qualname__
    if module.startswith("openai_sse."):
        module = "openai_sse"  # the public name users import it from
    return f"{module}.{cls.__qualname__}"


def _epoch_ns(monotonic: float) -> int:
    """A ``time.monotonic()`` reading as nanoseconds since the epoch, as spans want."""
    return time.time_ns() - int((time.monotonic() - monotonic) * 1e9)


class _Watch:
    """What the listener tracks for one stream."""

    __slots__ = ("body", "chunk_attributes", "common", "first", "last", "span")

    def __init__(self, span: Span, body: Mapping[str, Any], common: dict[str, Any]) -> None:
        self.span = span
        self.body = body
        self.common = common  # attributes shared by the span and every metric
        self.first: float | None = None  # monotonic time of the first chunk
        self.last = 0.0  # monotonic time of the latest chunk
        self.chunk_attributes = common


class OpenTelemetryListener:
    """A listener (chat or Responses) that traces each stream and records GenAI metrics.

    Register one instance for any number of streams, e.g. ``client.chat.stream(...,
    listeners=[otel])``. ``tracer_provider`` / ``meter_provider`` default to the global ones.
    ``provider`` overrides ``gen_ai.provider.name``, otherwise derived from the request URL
    (see :func:`provider_name`). ``capture_content`` records the input and output messages
    (``gen_ai.input.messages``, ``gen_ai.output.messages``); it defaults to the
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` environment variable, off when unset.

    It watches every chunk (``on_chunk`` / ``on_event``) to time them, which takes a stream
    off the dispatcher's fastest path; the cost is one clock read per chunk.
    """

    raise_errors: ClassVar[bool] = False

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        *,
        provider: str | None = None,
        capture_content: bool | None = None,
    ) -> None:
        self._tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider)
        self._provider = provider
        self.capture_content = _content_opt_in() if capture_content is None else capture_content
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_SECONDS_BUCKETS,
        )
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self._first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=_SECONDS_BUCKETS,
        )
        self._per_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_per_output_chunk",
            unit="s",
            description="Time between consecutive chunks of a streamed response.",
            explicit_bucket_boundaries_advisory=_SECONDS_BUCKETS,
        )
        # Keyed by the stream itself (weakly), so a stream that somehow never ends cannot hand
        # its span to a later stream that reuses its id().
        self._watches: weakref.WeakKeyDictionary[Any, _Watch] = weakref.WeakKeyDictionary()

    # -- hooks ----------------------------------------------------------------------------

    def on_open(self, stream: Any, *_: Any) -> None:
        self._watch(stream)

    def on_chunk(self, stream: Any, chunk: Any) -> None:
        """A chat chunk: time it."""
        self._tick(stream, chunk)

    def on_event(self, stream: Any, event: Any) -> None:
        """A Responses event: time it."""
        self._tick(stream, getattr(event, "response", None))

    def on_closed(self, stream: Any, result: Any) -> None:
        self._finish(stream, result, None)

    def on_failure(self, stream: Any, error: BaseException) -> None:
        self._finish(stream, getattr(stream, "snapshot", None), error)

    # -- internals ------------------------------------------------------------------------

    def _watch(self, stream: Any) -> _Watch:
        watch = self._watches.get(stream)
        if watch is not None:
            return watch
        request = getattr(stream, "request", None)
        url = str(getattr(request, "url", "") or "")
        body = _request_body(request)
        model = body.get("model")
        responses = "/responses" in urlsplit(url).path
        common: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": self._provider or provider_name(url),
        }
        if isinstance(model, str) and model:
            common["gen_ai.request.model"] = model
        parts = urlsplit(url)
        if parts.hostname:
            common["server.address"] = parts.hostname
            common["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
        attributes = dict(common)
        attributes["gen_ai.request.stream"] = True
        attributes["openai.api.type"] = "responses" if responses else "chat_completions"
        attributes.update(_request_attributes(body))
        if self.capture_content:
            messages = _input_messages(body)
            if messages:
                attributes["gen_ai.input.messages"] = json.dumps(messages, ensure_ascii=False)
        started = stream.metrics.started
        name = f"chat {model}" if isinstance(model, str) and model else "chat"
        span = self._tracer.start_span(
            name, kind=SpanKind.CLIENT, attributes=attributes, start_time=_epoch_ns(started)
        )
        watch = self._watches[stream] = _Watch(span, body, common)
        return watch

    def _tick(self, stream: Any, item: Any) -> None:
        """Time one chunk; each gap after the first chunk is recorded as it happens, so a
        long stream does not end with a burst of records."""
        watch = self._watches.get(stream)
        if watch is None:
            watch = self._watch(stream)
        now = time.monotonic()
        if watch.first is not None:
            self._per_chunk.record(now - watch.last, watch.chunk_attributes)
        else:
            watch.first = now
            model = getattr(item, "model", None)
            if isinstance(model, str) and model:
                watch.common["gen_ai.response.model"] = model
            watch.chunk_attributes = dict(watch.common)
        watch.last = now

    def _finish(self, stream: Any, result: Any, error: BaseException | None) -> None:
        watch = self._watches.pop(stream, None)
        if watch is None:  # failed before it opened: the span starts now, backdated
            watch = self._watch(stream)
            del self._watches[stream]
        span = watch.span
        try:
            common = watch.common
            response = _response_attributes(result)
            if "gen_ai.response.model" in response:
                common["gen_ai.response.model"] = response["gen_ai.response.model"]
                if "gen_ai.request.model" not in common:  # following a stored response
                    span.update_name(f"chat {response['gen_ai.response.model']}")
            started = stream.metrics.started
            if watch.first is not None:
                response["gen_ai.response.time_to_first_chunk"] = watch.first - started
            retries = getattr(stream.metrics, "retries", 0)
            if retries:
                response["http.request.resend_count"] = retries
            if self.capture_content and result is not None:
                output = _output_messages(result)
                if output:
                    response["gen_ai.output.messages"] = json.dumps(output, ensure_ascii=False)
            span.set_attributes(response)
            measured = dict(common)
            if error is not None:
                kind = _error_type(error)
                span.set_attribute("error.type", kind)
                span.set_status(Status(StatusCode.ERROR, str(error)[:200]))
                measured["error.type"] = kind
            duration = getattr(stream.metrics, "duration", None)
            if duration is None:
                duration = time.monotonic() - started
            self._duration.record(duration, measured)
            for key, kind in (
                ("gen_ai.usage.input_tokens", "input"),
                ("gen_ai.usage.output_tokens", "output"),
            ):
                count = response.get(key)
                if count is not None:
                    self._tokens.record(count, {**common, "gen_ai.token.type": kind})
            if watch.first is not None:
                self._first_chunk.record(watch.first - started, common)
        finally:
            span.end()


def _request_body(request: Any) -> Mapping[str, Any]:
    """The request's JSON body as a dict (decoded once per stream), or an empty one."""
    if request is None:
        return {}
    body = getattr(request, "json", None)
    if body is None:
        data = getattr(request, "data", None)
        if data:
            try:
                body = msgspec.json.decode(data)
            except msgspec.DecodeError:
                return {}
    return body if isinstance(body, Mapping) else {}


def _request_attributes(body: Mapping[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for field, key in _REQUEST_PARAMS:
        value = body.get(field)
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            attributes[key] = value
    stop = body.get("stop")
    if isinstance(stop, str):
        attributes["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, Sequence) and all(isinstance(s, str) for s in stop):
        attributes["gen_ai.request.stop_sequences"] = list(stop)
    count = body.get("n")
    if isinstance(count, int) and count != 1:
        attributes["gen_ai.request.choice.count"] = count
    response_format = body.get("response_format")
    if response_format is None:
        text = body.get("text")
        response_format = text.get("format") if isinstance(text, Mapping) else None
    if isinstance(response_format, Mapping):
        kind = response_format.get("type")
        attributes["gen_ai.output.type"] = (
            "json" if kind in ("json_schema", "json_object") else "text"
        )
    return attributes


def _response_attributes(result: Any) -> dict[str, Any]:
    """Attributes of a chat completion or a Responses ``Response`` (or a partial snapshot)."""
    attributes: dict[str, Any] = {}
    if result is None:
        return attributes
    if getattr(result, "id", None):
        attributes["gen_ai.response.id"] = result.id
    if getattr(result, "model", None):
        attributes["gen_ai.response.model"] = result.model
    fingerprint = getattr(result, "system_fingerprint", None)
    if fingerprint:
        attributes["openai.response.system_fingerprint"] = fingerprint
    tier = getattr(result, "service_tier", None)
    if isinstance(tier, str) and tier:
        attributes["openai.response.service_tier"] = tier
    reasons = _finish_reasons(result)
    if reasons:
        attributes["gen_ai.response.finish_reasons"] = reasons
    usage = getattr(result, "usage", None)
    if usage is not None:
        chat = hasattr(usage, "prompt_tokens")
        input_tokens = usage.prompt_tokens if chat else getattr(usage, "input_tokens", None)
        output_tokens = usage.completion_tokens if chat else getattr(usage, "output_tokens", None)
        if input_tokens is not None:
            attributes["gen_ai.usage.input_tokens"] = input_tokens
        if output_tokens is not None:
            attributes["gen_ai.usage.output_tokens"] = output_tokens
        input_details = getattr(
            usage, "prompt_tokens_details" if chat else "input_tokens_details", None
        )
        cached = getattr(input_details, "cached_tokens", None)
        if cached:
            attributes["gen_ai.usage.cache_read.input_tokens"] = cached
        output_details = getattr(
            usage, "completion_tokens_details" if chat else "output_tokens_details", None
        )
        reasoning = getattr(output_details, "reasoning_tokens", None)
        if reasoning:
            attributes["gen_ai.usage.reasoning.output_tokens"] = reasoning
    return attributes


def _finish_reasons(result: Any) -> list[str]:
    choices = getattr(result, "choices", None)
    if choices is not None:  # chat
        return [c.finish_reason for c in choices if c.finish_reason]
    status = getattr(result, "status", None)  # Responses
    if status == "completed":
        return ["stop"]
    if status == "incomplete":
        details = getattr(result, "incomplete_details", None)
        reason = getattr(details, "reason", None)
        return ["length" if reason == "max_output_tokens" else str(reason or status)]
    return [status] if isinstance(status, str) and status else []


def _text_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if isinstance(content, Sequence):
        for part in content:
            if isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append({"type": "text", "content": text})
    return parts


def _input_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request's messages (chat) or input (Responses) in the conventions' shape."""
    messages = body.get("messages")
    if messages is None:
        source = body.get("input")
        if isinstance(source, str):
            return [{"role": "user", "parts": _text_parts(source)}]
        messages = source
    out = []
    if isinstance(messages, Sequence):
        for message in messages:
            if isinstance(message, Mapping) and "role" in message:
                out.append({"role": message["role"], "parts": _text_parts(message.get("content"))})
    return out


def _output_messages(result: Any) -> list[dict[str, Any]]:
    choices = getattr(result, "choices", None)
    if choices is not None:
        return [
            {
                "role": "assistant",
                "parts": _text_parts(c.message.content or ""),
                "finish_reason": c.finish_reason or "",
            }
            for c in choices
        ]
    text = getattr(result, "output_text", None)
    if isinstance(text, str):
        reasons = _finish_reasons(result)
        return [
            {
                "role": "assistant",
                "parts": _text_parts(text),
                "finish_reason": reasons[0] if reasons else "",
            }
        ]
    return []
