"""Structured output against MockServer: request shape, partial values, parsed results, errors."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pydantic
import pytest

from openai_sse import ChatListener, Client, ProtocolError
from openai_sse.listeners.structured import (
    OutputType,
    StructuredOutput,
    StructuredOutputError,
    structured_output,
)
from openai_sse.testing import MockServer, Reply, ToolCall

from ..servers import LocalServer, sse_response

MESSAGES = [{"role": "user", "content": "Who?"}]
ANSWER = '{"name": "Ada Lovelace", "born": 1815, "langs": ["en", "fr"], "alive": false}'


class Person(msgspec.Struct):
    name: str
    born: int
    langs: list[str]
    alive: bool = True


class PersonModel(pydantic.BaseModel):
    name: str
    born: int
    langs: list[str]
    alive: bool


class GetWeather(msgspec.Struct):
    """Current weather for a city."""

    city: str
    days: int


def pieces(text: str, size: int = 3) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


class Recorder(ChatListener):
    def __init__(self) -> None:
        self.partials: list[tuple[Any, int]] = []
        self.arguments: list[tuple[str | None, Any, int]] = []
        self.tool_calls: list[Any] = []

    def on_partial_content(self, stream: Any, value: Any, index: int) -> None:
        self.partials.append((copy.deepcopy(value), index))

    def on_partial_arguments(self, stream: Any, tool_call: Any, value: Any, index: int) -> None:
        self.arguments.append((tool_call.name, copy.deepcopy(value), index))

    def on_tool_call(self, stream: Any, tool_call: Any, index: int) -> None:
        self.tool_calls.append(tool_call.function.parsed_arguments)


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer(delay=0) as server:
        yield server


@pytest.fixture
async def client(server: MockServer) -> AsyncIterator[Client]:
    async with Client(base_url=server.base_url, api_key="sk-test") as client:
        yield client


async def test_msgspec_struct_streams_partial_values_and_parses(
    server: MockServer, client: Client
) -> None:
    server.enqueue(Reply(text=pieces(ANSWER)))
    recorder = Recorder()
    completion = await client.chat.stream(
        model="gpt-4o-mini", messages=MESSAGES, response_format=Person, listeners=[recorder]
    )
    sent = server.requests[-1].json["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["name"] == "Person"
    assert sent["json_schema"]["strict"] is True
    schema = sent["json_schema"]["schema"]
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["name", "born", "langs", "alive"]
    assert "default" not in json.dumps(schema["properties"]["alive"])

    message = completion.choices[0].message
    assert message.parsed == Person("Ada Lovelace", 1815, ["en", "fr"], False)
    assert message.content == ANSWER  # the text as it came
    values = [value for value, index in recorder.partials]
    assert all(index == 0 for _, index in recorder.partials)
    assert values[0] == {}
    assert {"name": "Ad"} in values  # strings grow as they stream
    assert {"name": "Ada Lovelace", "born": 1815} in values
    assert not any(v.get("born") == 18 for v in values)  # numbers only when complete
    assert values[-1] == json.loads(ANSWER)
    assert len(values) < len(pieces(ANSWER)) + 2  # one call per growth, not more


async def test_pydantic_model(server: MockServer, client: Client) -> None:
    server.enqueue(Reply(text=pieces(ANSWER, 5)))
    completion = await client.chat.stream(
        model="gpt-4o-mini", messages=MESSAGES, response_format=PersonModel
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, PersonModel)
    assert parsed.langs == ["en", "fr"]
    sent = server.requests[-1].json["response_format"]["json_schema"]
    assert sent["name"] == "PersonModel"
    assert sent["schema"]["additionalProperties"] is False


async def test_json_schema_dict_gives_plain_values(server: MockServer, client: Client) -> None:
    schema = {
        "title": "Person record",
        "type": "object",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
        "additionalProperties": False,
    }
    server.enqueue(Reply(text=['{"na', 'me": "Bo', 'b"}']))
    completion = await client.chat.stream(
        model="gpt-4o-mini", messages=MESSAGES, response_format=schema
    )
    assert completion.choices[0].message.parsed == {"name": "Bob"}
    sent = server.requests[-1].json["response_format"]
    assert sent == {
        "type": "json_schema",
        "json_schema": {"name": "Person_record", "schema": schema, "strict": True},
    }


async def test_tool_classes_stream_arguments_and_parse_them(
    server: MockServer, client: Client
) -> None:
    arguments = '{"city": "Paris", "days": 3}'
    server.enqueue(
        Reply(tool_calls=[ToolCall("GetWeather", arguments, fragments=pieces(arguments, 4))])
    )
    recorder = Recorder()
    completion = await client.chat.stream(
        model="gpt-4o-mini", messages=MESSAGES, tools=[GetWeather], listeners=[recorder]
    )
    (tool,) = server.requests[-1].json["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "GetWeather"
    assert tool["function"]["strict"] is True
    assert tool["function"]["description"] == "Current weather for a city."
    assert tool["function"]["parameters"]["required"] == ["city", "days"]

    (call,) = completion.choices[0].message.tool_calls or []
    assert call.function.arguments == arguments  # the original text is kept
    assert call.function.parsed_arguments == GetWeather("Paris", 3)
    assert recorder.tool_calls == [GetWeather("Paris", 3)]  # already parsed in on_tool_call
    values = [value for name, value, index in recorder.arguments]
    assert {name for name, _, _ in recorder.arguments} == {"GetWeather"}
    assert values[0] == {}
    assert {"city": "Pa"} in values
    assert values[-1] == {"city": "Paris", "days": 3}
    assert completion.choices[0].message.parsed is None


async def test_plain_dict_tools_parse_when_a_listener_wants_partial_arguments(
    server: MockServer, client: Client
) -> None:
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {}}}
    server.enqueue(
        Reply(
            tool_calls=[
                ToolCall("lookup", '{"q": "x"}', fragments=['{"q"', ': "', 'x"}']),
                ToolCall("lookup", "{}", fragments=["{}"]),
            ]
        )
    )
    recorder = Recorder()
    completion = await client.chat.stream(
        model="gpt-4o-mini", messages=MESSAGES, tools=[tool], listeners=[recorder]
    )
    assert server.requests[-1].json["tools"] == [tool]
    calls = completion.choices[0].message.tool_calls or []
    assert [c.function.parsed_arguments for c in calls] == [{"q": "x"}, {}]
    assert ("lookup", {"q": "x"}, 0) in recorder.arguments


async def test_plain_stream_registers_nothing(server: MockServer, client: Client) -> None:
    stream = client.chat.stream(model="gpt-4o-mini", messages=MESSAGES, temperature=0)
    assert not any(isinstance(x, StructuredOutput) for x in stream.dispatcher.listeners)
    completion = await stream
    assert completion.choices[0].message.parsed is None
    assert "response_format" not in server.requests[-1].json


async def test_invalid_json_fails_the_stream_keeping_text_and_snapshot(
    server: MockServer, client: Client
) -> None:
    server.enqueue(Reply(text=['{"name": ', "Ada}"]))
    stream = client.chat.stream(model="gpt-4o-mini", messages=MESSAGES, response_format=Person)
    with pytest.raises(StructuredOutputError) as info:
        await stream
    error = info.value
    assert isinstance(error, ProtocolError)
    assert error.text == '{"name": Ada}'  # everything received, up to the delta that broke it
    assert error.index == 0 and error.tool_call is None
    assert error.snapshot is not None
    assert (error.snapshot.choices[0].message.content or "").startswith('{"name": ')


async def test_validation_failure_is_typed(server: MockServer, client: Client) -> None:
    text = '{"name": "Ada", "born": "long ago", "langs": [], "alive": true}'
    server.enqueue(Reply(text=pieces(text)))
    with pytest.raises(StructuredOutputError, match="does not validate as Person") as info:
        await client.chat.stream(model="gpt-4o-mini", messages=MESSAGES, response_format=Person)
    assert info.value.text == text
    assert isinstance(info.value.__cause__, msgspec.ValidationError)


async def test_answer_cut_off_by_length(server: MockServer, client: Client) -> None:
    server.enqueue(Reply(text=['{"name": "A', "da"], finish_reason="length"))
    with pytest.raises(StructuredOutputError, match="cut off"):
        await client.chat.stream(model="gpt-4o-mini", messages=MESSAGES, response_format=Person)


async def test_refusal_is_not_a_parse_error(server: MockServer, client: Client) -> None:
    server.enqueue(Reply(refusal="I can't help with that."))
    completion = await client.chat.stream(
        model="gpt-4o-mini", messages=MESSAGES, response_format=Person
    )
    message = completion.choices[0].message
    assert message.refusal == "I can't help with that."
    assert message.parsed is None


async def test_create_parses_a_whole_completion(server: MockServer, client: Client) -> None:
    server.enqueue(Reply(text=ANSWER))
    completion = await client.chat.create(
        model="gpt-4o-mini", messages=MESSAGES, response_format=Person
    )
    assert completion.choices[0].message.parsed == Person("Ada Lovelace", 1815, ["en", "fr"], False)
    assert server.requests[-1].json["response_format"]["type"] == "json_schema"


def test_structured_output_leaves_plain_bodies_alone() -> None:
    body: dict[str, Any] = {"model": "m", "messages": [], "response_format": {"type": "text"}}
    assert structured_output(body, [ChatListener()]) is None
    assert body["response_format"] == {"type": "text"}
    json_mode: dict[str, Any] = {"response_format": {"type": "json_object"}}
    assert isinstance(structured_output(json_mode, ()), StructuredOutput)
    assert json_mode["response_format"] == {"type": "json_object"}


def test_output_type_rejects_other_things() -> None:
    with pytest.raises(TypeError, match="msgspec Struct, a pydantic model"):
        OutputType(int)


class Address(msgspec.Struct):
    city: str


class Customer(msgspec.Struct):
    name: str
    address: Address
    previous: list[Address] = []


def test_nested_structs_keep_their_definitions() -> None:
    schema = OutputType(Customer).schema
    assert schema["type"] == "object"
    assert schema["required"] == ["name", "address", "previous"]
    assert schema["$defs"]["Address"]["additionalProperties"] is False
    assert schema["properties"]["address"] == {"$ref": "#/$defs/Address"}


async def test_each_choice_is_parsed_on_its_own(server: MockServer, client: Client) -> None:
    first = '{"name": "Ada", "born": 1815, "langs": [], "alive": false}'
    second = '{"name": "Grace", "born": 1906, "langs": ["en"], "alive": false}'
    server.enqueue(Reply(choices=[Reply(text=pieces(first)), Reply(text=pieces(second))]))
    recorder = Recorder()
    completion = await client.chat.stream(
        model="gpt-4o-mini", messages=MESSAGES, response_format=Person, listeners=[recorder]
    )
    parsed = {c.index: c.message.parsed for c in completion.choices}
    assert parsed == {
        0: Person("Ada", 1815, [], False),
        1: Person("Grace", 1906, ["en"], False),
    }
    assert {index for _, index in recorder.partials} == {0, 1}
    assert {"name": "Gr"} in [v for v, i in recorder.partials if i == 1]


async def test_pydantic_tool_class_validation_failure_names_the_call(
    server: MockServer, client: Client
) -> None:
    class Lookup(pydantic.BaseModel):
        query: str

    server.enqueue(Reply(tool_calls=[ToolCall("Lookup", '{"query": 42}')]))
    with pytest.raises(StructuredOutputError, match="tool call 'Lookup'") as info:
        await client.chat.stream(model="gpt-4o-mini", messages=MESSAGES, tools=[Lookup])
    assert info.value.tool_call is not None
    assert info.value.tool_call.name == "Lookup"
    assert info.value.text == '{"query": 42}'


async def test_async_partial_hooks_are_awaited_in_order(server: MockServer, client: Client) -> None:
    seen: list[Any] = []

    class Slow(ChatListener):
        async def on_partial_content(self, stream: Any, value: Any, index: int) -> None:
            await asyncio.sleep(0)
            seen.append(copy.deepcopy(value))

    server.enqueue(Reply(text=pieces(ANSWER, 8)))
    completion = await client.chat.stream(
        model="gpt-4o-mini", messages=MESSAGES, response_format=Person, listeners=[Slow()]
    )
    assert seen[0] == {}
    assert seen[-1] == json.loads(ANSWER)
    assert all(a != b for a, b in itertools.pairwise(seen))  # called only when the value grew
    assert completion.choices[0].message.parsed.name == "Ada Lovelace"


def _no_finish_reason(*texts: str) -> bytes:
    """Content chunks then ``[DONE]``, no chunk carrying a finish reason (some servers)."""
    chunks = [
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
        }
        for text in texts
    ]
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + (
        b"data: [DONE]\n\n"
    )


@pytest.mark.parametrize(
    ("texts", "outcome"),
    [
        (pieces(ANSWER), "parsed"),
        (['{"name": "Ada", "born": "long ago",', ' "langs": [], "alive": true}'], "invalid"),
        (['{"name": "Ada", "bo'], "cut"),
    ],
)
async def test_done_without_finish_reason_is_validated_before_completing(
    texts: list[str], outcome: str
) -> None:
    async with LocalServer() as raw:
        raw.route("/v1/chat/completions", lambda r: sse_response(r, _no_finish_reason(*texts)))
        async with raw.client() as client:
            stream = client.chat.stream(model="m", messages=MESSAGES, response_format=Person)
            if outcome == "parsed":
                completion = await stream
                assert completion.choices[0].message.parsed == msgspec.json.decode(
                    ANSWER, type=Person
                )
                return
            with pytest.raises(StructuredOutputError) as info:
                await stream
    assert info.value.text == "".join(texts)
    assert info.value.snapshot is not None
    assert info.value.snapshot.choices[0].message.content == "".join(texts)
