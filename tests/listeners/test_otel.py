"""OpenTelemetryListener against MockServer, with the SDK's in-memory exporter and reader."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from openai_sse import ChatListener, Client, StreamCancelled
from openai_sse.errors import BadRequestError
from openai_sse.listeners import OpenTelemetryListener
from openai_sse.listeners.otel import CAPTURE_CONTENT_ENV, provider_name
from openai_sse.testing import Fault, MockServer, Reply

MESSAGES = [{"role": "user", "content": "Say hello"}]
USAGE = {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11}


class Telemetry:
    def __init__(self, **kwargs: Any) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        meter_provider = MeterProvider(metric_readers=[self.reader])
        self.listener = OpenTelemetryListener(tracer_provider, meter_provider, **kwargs)

    def span(self) -> ReadableSpan:
        spans = self.spans.get_finished_spans()
        assert len(spans) == 1, spans
        return spans[0]

    def points(self) -> dict[str, list[Any]]:
        data = self.reader.get_metrics_data()
        out: dict[str, list[Any]] = {}
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    out[metric.name] = list(metric.data.data_points)
        return out


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer(delay=0) as server:
        yield server


async def test_completed_stream_gives_one_span_and_the_metrics(server: MockServer) -> None:
    server.enqueue(Reply(text=["Hello", " there", ",", " world"], usage=USAGE))
    telemetry = Telemetry()
    async with Client(base_url=server.base_url, api_key="sk-test") as client:
        completion = await client.chat.stream(
            model="gpt-4o-mini",
            messages=MESSAGES,
            listeners=[telemetry.listener],
            temperature=0.5,
            max_tokens=50,
            top_p=0.9,
            stop=["END"],
            seed=3,
        )
    span = telemetry.span()
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.request.max_tokens"] == 50
    assert attributes["gen_ai.request.top_p"] == 0.9
    assert attributes["gen_ai.request.seed"] == 3
    assert attributes["gen_ai.request.stop_sequences"] == ("END",)
    assert attributes["openai.api.type"] == "chat_completions"
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == server.port
    assert attributes["gen_ai.response.id"] == completion.id
    assert attributes["gen_ai.response.model"] == completion.model
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.usage.input_tokens"] == 7
    assert attributes["gen_ai.usage.output_tokens"] == 4
    first = attributes["gen_ai.response.time_to_first_chunk"]
    assert isinstance(first, float) and 0 < first < 5
    assert "error.type" not in attributes
    assert "gen_ai.input.messages" not in attributes  # content is opt-in
    assert "gen_ai.output.messages" not in attributes
    assert span.start_time is not None and span.end_time is not None
    assert span.end_time > span.start_time

    points = telemetry.points()
    (duration,) = points["gen_ai.client.operation.duration"]
    assert duration.count == 1
    assert duration.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert duration.attributes["gen_ai.response.model"] == completion.model
    assert "error.type" not in duration.attributes
    tokens = {p.attributes["gen_ai.token.type"]: p for p in points["gen_ai.client.token.usage"]}
    assert tokens["input"].sum == 7 and tokens["input"].count == 1
    assert tokens["output"].sum == 4 and tokens["output"].count == 1
    (ttfc,) = points["gen_ai.client.operation.time_to_first_chunk"]
    assert ttfc.count == 1 and ttfc.sum == pytest.approx(first)
    (per_chunk,) = points["gen_ai.client.operation.time_per_output_chunk"]
    # every chunk after the first: role chunk + 4 content chunks + finish chunk + usage chunk
    assert per_chunk.count == server_chunks(completion) - 1


def server_chunks(completion: Any) -> int:
    return 1 + 4 + 1 + 1


class CancelOnFirstContent(ChatListener):
    def on_content(self, stream: Any, delta: str, index: int) -> None:
        stream.cancel()


async def test_cancelled_stream_ends_its_span_once_with_error(server: MockServer) -> None:
    server.enqueue(Reply(text=["one", " two", " three", " four"], usage=USAGE))
    telemetry = Telemetry()
    async with Client(base_url=server.base_url, api_key="sk-test") as client:
        stream = client.chat.stream(
            model="gpt-4o",
            messages=MESSAGES,
            listeners=[telemetry.listener, CancelOnFirstContent()],
        )
        with pytest.raises(StreamCancelled):
            await stream
    span = telemetry.span()
    assert span.name == "chat gpt-4o"
    assert span.status.status_code is StatusCode.ERROR
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "openai_sse.StreamCancelled"
    assert attributes["gen_ai.response.id"] == stream.snapshot.id
    assert "gen_ai.usage.output_tokens" not in attributes
    points = telemetry.points()
    (duration,) = points["gen_ai.client.operation.duration"]
    assert duration.count == 1
    assert duration.attributes["error.type"] == "openai_sse.StreamCancelled"
    assert "gen_ai.client.token.usage" not in points  # no usage arrived
    (ttfc,) = points["gen_ai.client.operation.time_to_first_chunk"]
    assert ttfc.count == 1
    assert telemetry.listener._watches == {}


async def test_failure_before_open_still_gives_a_span(server: MockServer) -> None:
    server.enqueue(Fault.status(400, "bad temperature"))
    telemetry = Telemetry(provider="deepseek")
    async with Client(base_url=server.base_url, api_key="sk-test", max_retries=0) as client:
        stream = client.chat.stream(
            model="deepseek-chat", messages=MESSAGES, listeners=[telemetry.listener]
        )
        with pytest.raises(BadRequestError):
            await stream
    span = telemetry.span()
    assert span.name == "chat deepseek-chat"
    assert span.status.status_code is StatusCode.ERROR
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "400"
    assert attributes["gen_ai.provider.name"] == "deepseek"
    assert span.start_time is not None and span.end_time is not None
    assert span.start_time <= span.end_time
    points = telemetry.points()
    (duration,) = points["gen_ai.client.operation.duration"]
    assert duration.attributes["error.type"] == "400"
    assert "gen_ai.client.operation.time_to_first_chunk" not in points


async def test_retried_stream_is_one_span_with_the_resend_count(server: MockServer) -> None:
    server.enqueue(Fault.status(503, retry_after_ms=1), Reply(text="fine", usage=USAGE))
    telemetry = Telemetry()
    async with Client(base_url=server.base_url, api_key="sk-test", max_retries=2) as client:
        await client.chat.stream(
            model="gpt-4o-mini", messages=MESSAGES, listeners=[telemetry.listener]
        )
    span = telemetry.span()
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {})["http.request.resend_count"] == 1


async def test_content_is_recorded_only_when_opted_in(
    server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    server.enqueue(Reply(text="Hi you", usage=USAGE))
    telemetry = Telemetry()
    assert telemetry.listener.capture_content
    async with Client(base_url=server.base_url, api_key="sk-test") as client:
        await client.chat.stream(
            model="gpt-4o-mini", messages=MESSAGES, listeners=[telemetry.listener]
        )
    attributes = dict(telemetry.span().attributes or {})
    assert json.loads(str(attributes["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]}
    ]
    assert json.loads(str(attributes["gen_ai.output.messages"])) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Hi you"}],
            "finish_reason": "stop",
        }
    ]
    assert not Telemetry(capture_content=False).listener.capture_content


async def test_one_listener_many_streams(server: MockServer) -> None:
    telemetry = Telemetry()
    async with Client(base_url=server.base_url, api_key="sk-test") as client:
        streams = [
            client.chat.stream(model=m, messages=MESSAGES, listeners=[telemetry.listener])
            for m in ("gpt-4o-mini", "gpt-4o", "gpt-4.1-nano")
        ]
        for stream in streams:
            await stream
    spans = telemetry.spans.get_finished_spans()
    assert sorted(s.name for s in spans) == ["chat gpt-4.1-nano", "chat gpt-4o", "chat gpt-4o-mini"]
    (duration,) = [
        p
        for p in telemetry.points()["gen_ai.client.operation.duration"]
        if p.attributes["gen_ai.request.model"] == "gpt-4o"
    ]
    assert duration.count == 1


def test_provider_name() -> None:
    cases = [
        ("https://api.openai.com/v1", "openai"),
        ("https://my-res.openai.azure.com/openai/deployments/x", "azure.ai.openai"),
        ("https://api.deepseek.com", "deepseek"),
        ("https://r.cognitiveservices.azure.com/openai/v1", "azure.ai.openai"),
        ("https://api.groq.com/openai/v1", "groq"),
        ("https://api.mistral.ai/v1", "mistral_ai"),
        ("https://api.x.ai/v1", "x_ai"),
        ("https://generativelanguage.googleapis.com/v1beta/openai", "gcp.gemini"),
        ("http://localhost:8000/v1", "openai"),
        ("https://notdeepseek.com/v1", "openai"),
    ]
    for url, name in cases:
        assert provider_name(url) == name, url


async def test_responses_stream_gives_one_span_and_the_metrics(server: MockServer) -> None:
    server.enqueue(Reply(text=["Bonjour", " tout", " le", " monde"]))
    telemetry = Telemetry()
    async with Client(base_url=server.base_url, api_key="sk-test") as client:
        response = await client.responses.stream(
            model="gpt-4o-mini",
            input="Say hello in French",
            listeners=[telemetry.listener],
            max_output_tokens=64,
            temperature=0.2,
        )
    span = telemetry.span()
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    attributes = dict(span.attributes or {})
    assert attributes["openai.api.type"] == "responses"
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.max_tokens"] == 64
    assert attributes["gen_ai.request.temperature"] == 0.2
    assert attributes["gen_ai.response.id"] == response.id
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert response.usage is not None
    assert attributes["gen_ai.usage.input_tokens"] == response.usage.input_tokens
    assert attributes["gen_ai.usage.output_tokens"] == response.usage.output_tokens
    assert attributes["gen_ai.response.time_to_first_chunk"] > 0
    points = telemetry.points()
    assert points["gen_ai.client.operation.duration"][0].count == 1
    assert {p.attributes["gen_ai.token.type"] for p in points["gen_ai.client.token.usage"]} == {
        "input",
        "output",
    }
    assert points["gen_ai.client.operation.time_to_first_chunk"][0].count == 1
    assert points["gen_ai.client.operation.time_per_output_chunk"][0].count >= 4


async def test_client_close_ends_the_span_of_an_unfinished_stream() -> None:
    async with MockServer(delay=0.5) as slow:
        telemetry = Telemetry()
        client = Client(base_url=slow.base_url, api_key="sk-test")
        opened = asyncio.Event()

        class Opened(ChatListener):
            def on_open(self, stream: Any) -> None:
                opened.set()

        stream = client.chat.stream(
            model="gpt-4o-mini", messages=MESSAGES, listeners=[telemetry.listener, Opened()]
        )
        await opened.wait()
        await client.close()
        assert stream.done
        with pytest.raises(StreamCancelled):
            await stream
    span = telemetry.span()
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "openai_sse.StreamCancelled"


def test_request_and_content_attributes_from_bodies() -> None:
    from openai_sse.listeners.otel import _input_messages, _request_attributes

    chat = _request_attributes(
        {"stop": "END", "n": 2, "response_format": {"type": "json_schema"}, "top_k": 5}
    )
    assert chat == {
        "gen_ai.request.top_k": 5,
        "gen_ai.request.stop_sequences": ["END"],
        "gen_ai.request.choice.count": 2,
        "gen_ai.output.type": "json",
    }
    responses = _request_attributes({"text": {"format": {"type": "text"}}, "n": 1})
    assert responses == {"gen_ai.output.type": "text"}
    assert _input_messages({"input": "Hi"}) == [
        {"role": "user", "parts": [{"type": "text", "content": "Hi"}]}
    ]
    assert _input_messages(
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "Yo"}]}]}
    ) == [{"role": "user", "parts": [{"type": "text", "content": "Yo"}]}]
