"""Typed chunk and completion decoding: real recordings, tolerance, extras, errors."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from openai import BaseModel as OpenAIModel
from openai.types.chat import ChatCompletion as OpenAICompletion
from openai.types.chat import ChatCompletionChunk as OpenAIChunk

from openai_sse import ProtocolError, SSEDecoder
from openai_sse.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionMessageToolCall,
    Choice,
    CompletionUsage,
    Function,
    decode_chunk,
    decode_completion,
    models,
    to_dict,
)

from ..fixtures import fixture_names, payloads, sse_bytes

ALL = fixture_names()


def _event_datas(name: str) -> list[str]:
    decoder = SSEDecoder()
    events = decoder.feed(sse_bytes(name)) + decoder.end()
    return [e.data for e in events if e.data != "[DONE]"]


def _assert_same_paths(ours: Any, theirs: Any, path: str = "chunk") -> int:
    """Walk the official model and compare every attribute we also declare; count the leaves."""
    if isinstance(theirs, OpenAIModel):
        compared = 0
        for name in type(theirs).model_fields:
            if hasattr(ours, name):
                compared += _assert_same_paths(getattr(ours, name), getattr(theirs, name), name)
        return compared
    if isinstance(theirs, list):
        # A chunk's choices are a tuple: a sequence like the official list, but one the
        # garbage collector does not track.
        assert isinstance(ours, (tuple, list) if path == "choices" else list), path
        assert len(ours) == len(theirs), path
        return sum(_assert_same_paths(o, t, path) for o, t in zip(ours, theirs, strict=True))
    assert ours == theirs, path
    return 1


def test_there_are_ten_fixtures() -> None:
    assert len(ALL) == 10
    assert ALL[0].startswith("01_") and ALL[-1].startswith("10_")


@pytest.mark.parametrize("name", ALL)
def test_sse_split_matches_plain_split(name: str) -> None:
    datas = _event_datas(name)
    assert datas == payloads(name)
    assert len(datas) >= 4


@pytest.mark.parametrize("name", ALL)
def test_every_recorded_chunk_decodes_with_the_fast_path(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError(f"lenient path used for {args[0]!r}")

    monkeypatch.setattr(models, "_decode_lenient", refuse)
    for data in _event_datas(name):
        assert isinstance(decode_chunk(data), ChatCompletionChunk)
        assert isinstance(decode_chunk(data.encode()), ChatCompletionChunk)


@pytest.mark.parametrize("name", ALL)
def test_recorded_chunks_field_by_field(name: str) -> None:
    for data in _event_datas(name):
        raw = json.loads(data)
        chunk = decode_chunk(data)
        assert chunk.id == raw.get("id")
        assert chunk.object == raw["object"]
        assert chunk.created == raw["created"]
        assert chunk.model == raw["model"]
        assert chunk.system_fingerprint == raw.get("system_fingerprint")
        assert chunk.service_tier == raw.get("service_tier")
        assert chunk.obfuscation == raw.get("obfuscation")
        assert chunk.prompt_filter_results == raw.get("prompt_filter_results")
        assert len(chunk.choices) == len(raw["choices"])
        for choice, raw_choice in zip(chunk.choices, raw["choices"], strict=True):
            raw_delta = raw_choice.get("delta", {})
            assert choice.index == raw_choice["index"]
            assert choice.finish_reason == raw_choice["finish_reason"]
            assert choice.content_filter_results == raw_choice.get("content_filter_results")
            assert choice.content_filter_offsets == raw_choice.get("content_filter_offsets")
            for key in ("role", "content", "refusal", "reasoning_content", "reasoning"):
                assert getattr(choice.delta, key) == raw_delta.get(key), key
            raw_calls = raw_delta.get("tool_calls")
            if raw_calls is None:
                assert choice.delta.tool_calls is None
            else:
                assert choice.delta.tool_calls is not None
                for call, raw_call in zip(choice.delta.tool_calls, raw_calls, strict=True):
                    assert call.index == raw_call["index"]
                    assert call.id == raw_call.get("id")
                    assert call.type == raw_call.get("type")
                    assert call.function is not None
                    assert call.function.name == raw_call["function"].get("name")
                    assert call.function.arguments == raw_call["function"].get("arguments")
            raw_lp = raw_choice.get("logprobs")
            if raw_lp is None:
                assert choice.logprobs is None
            else:
                assert choice.logprobs is not None
                assert msgspec.to_builtins(choice.logprobs.content) == raw_lp["content"]
        if raw.get("usage") is None:
            assert chunk.usage is None
        else:
            assert chunk.usage is not None
            assert chunk.usage.prompt_tokens == raw["usage"]["prompt_tokens"]
            assert chunk.usage.completion_tokens == raw["usage"]["completion_tokens"]
            assert chunk.usage.total_tokens == raw["usage"]["total_tokens"]


@pytest.mark.parametrize("name", ALL)
def test_attribute_paths_match_the_official_types(name: str) -> None:
    compared = 0
    for data in _event_datas(name):
        payload = json.loads(data)
        payload.setdefault("choices", [])
        for choice in payload["choices"]:
            choice.setdefault("delta", {})
        theirs = OpenAIChunk.construct(**payload)
        compared += _assert_same_paths(decode_chunk(data), theirs)
    assert compared > 0


@pytest.mark.parametrize("name", ALL)
def test_original_payload_stays_reachable(name: str) -> None:
    for data in _event_datas(name):
        chunk = decode_chunk(data)
        assert chunk.to_dict() == json.loads(data)
        assert to_dict(chunk) == json.loads(data)
        assert json.loads(chunk.to_json()) == json.loads(data)
        assert chunk.model_extra == {}


def test_deepseek_usage_extras_are_typed() -> None:
    last = decode_chunk(payloads("09_deepseek_reasoning_content_usage_on_finish.chunks.jsonl")[-1])
    assert last.usage is not None
    assert last.usage.prompt_cache_hit_tokens == 0
    assert last.usage.prompt_cache_miss_tokens == 18
    assert last.usage.completion_tokens_details is not None
    assert last.usage.completion_tokens_details.reasoning_tokens == 205
    assert last.usage.prompt_tokens_details is not None
    assert last.usage.prompt_tokens_details.cached_tokens == 0
    assert last.choices[0].finish_reason == "stop"


def test_azure_annotation_choice_without_delta_has_an_empty_delta() -> None:
    data = payloads("08_azure_post_finish_filter_annotation.chunks.jsonl")[5]
    assert '"delta"' not in data
    chunk = decode_chunk(data)
    choice = chunk.choices[0]
    assert choice.delta.content is None
    assert choice.delta.tool_calls is None
    assert choice.finish_reason is None
    assert choice.content_filter_offsets == {"check_offset": 0, "start_offset": 0, "end_offset": 11}


def test_azure_prompt_filter_chunk() -> None:
    chunk = decode_chunk(payloads("07_azure_prompt_filter_obfuscation.chunks.jsonl")[0])
    assert (chunk.id, chunk.model, chunk.object, chunk.created) == ("", "", "", 0)
    assert chunk.choices == ()
    assert chunk.prompt_filter_results is not None
    assert chunk.prompt_filter_results[0]["prompt_index"] == 0
    assert chunk.prompt_filter_results[0]["content_filter_results"]["jailbreak"] == {
        "filtered": False,
        "detected": False,
    }


# ----------------------------------------------------------------------------- tolerance


def test_empty_object_gives_defaults() -> None:
    chunk = decode_chunk("{}")
    assert chunk.id == ""
    assert chunk.object == "chat.completion.chunk"
    assert chunk.created == 0
    assert chunk.model == ""
    assert chunk.choices == ()
    assert chunk.usage is None


def test_nulls_everywhere() -> None:
    chunk = decode_chunk(
        '{"id":null,"object":null,"created":null,"model":null,"system_fingerprint":null,'
        '"choices":null,"usage":null,"service_tier":null}'
    )
    assert (chunk.id, chunk.object, chunk.created, chunk.model) == (
        "",
        "chat.completion.chunk",
        0,
        "",
    )
    assert chunk.choices == ()
    assert chunk.usage is None
    assert chunk.to_dict()["choices"] is None


def test_null_delta_null_index_and_null_list_entries() -> None:
    chunk = decode_chunk(
        '{"choices":[null,{"index":null,"delta":null,"finish_reason":null,'
        '"logprobs":{"content":[{"token":"a","logprob":-1,"bytes":null,"top_logprobs":null}],'
        '"refusal":null}}]}'
    )
    assert len(chunk.choices) == 1
    choice = chunk.choices[0]
    assert choice.index == 0
    assert choice.delta.content is None
    assert choice.logprobs is not None
    assert choice.logprobs.content is not None
    token = choice.logprobs.content[0]
    assert (token.token, token.logprob, token.bytes, token.top_logprobs) == ("a", -1.0, None, [])


def test_delta_fields_null_and_tool_call_without_index() -> None:
    chunk = decode_chunk(
        '{"choices":[{"index":0,"delta":{"role":null,"content":null,"tool_calls":'
        '[{"id":"c1","function":{"name":"f","arguments":null}}]}}]}'
    )
    delta = chunk.choices[0].delta
    assert delta.role is None
    assert delta.tool_calls is not None
    call = delta.tool_calls[0]
    assert (call.index, call.id, call.type) == (0, "c1", None)
    assert call.function is not None
    assert (call.function.name, call.function.arguments) == ("f", None)


def test_floats_where_ints_belong() -> None:
    chunk = decode_chunk(
        '{"id":"x","created":1727346168.75,"choices":[{"index":1.0,"delta":{"content":"a"}}],'
        '"usage":{"prompt_tokens":3.0,"completion_tokens":4.0,"total_tokens":7.0,'
        '"completion_tokens_details":{"reasoning_tokens":2.0}}}'
    )
    assert chunk.created == 1727346168
    assert isinstance(chunk.created, int)
    assert chunk.choices[0].index == 1
    assert chunk.usage == CompletionUsage(
        prompt_tokens=3,
        completion_tokens=4,
        total_tokens=7,
        completion_tokens_details=models.CompletionTokensDetails(reasoning_tokens=2),
    )
    assert isinstance(chunk.usage.total_tokens, int)


def test_number_where_a_string_belongs() -> None:
    chunk = decode_chunk('{"id":12345,"model":"m","choices":[]}')
    assert chunk.id == "12345"
    assert chunk.model == "m"


def test_usage_only_chunk_with_empty_choices() -> None:
    chunk = decode_chunk(
        '{"id":"x","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'
    )
    assert chunk.choices == ()
    assert chunk.usage is not None
    assert chunk.usage.total_tokens == 3
    assert chunk.usage.prompt_tokens_details is None


def test_unknown_extras_reachable() -> None:
    data = (
        '{"id":"x","x_groq":{"id":"req_1"},"choices":[{"index":0,"matched_stop":7,'
        '"delta":{"content":"hi","provider_specific":{"a":1}}}],"nvext":[1,2]}'
    )
    chunk = decode_chunk(data)
    assert chunk.choices[0].delta.content == "hi"
    assert chunk.model_extra == {"x_groq": {"id": "req_1"}, "nvext": [1, 2]}
    full = chunk.to_dict()
    assert full["choices"][0]["delta"]["provider_specific"] == {"a": 1}
    assert full["choices"][0]["matched_stop"] == 7
    assert json.loads(chunk.to_json()) == json.loads(data)


def test_extras_also_reachable_after_the_lenient_path() -> None:
    data = b'{"id":"x","created":1.5,"choices":null,"extra_field":true}'
    chunk = decode_chunk(data)
    assert chunk.created == 1
    assert chunk.model_extra == {"extra_field": True}
    assert chunk.to_dict() == json.loads(data)


def test_raw_text_is_not_part_of_equality_or_encoding() -> None:
    a = decode_chunk('{"id":"x","choices":[]}')
    b = decode_chunk('{ "choices" : [ ], "id" : "x" , "zzz": 1}')
    assert a == b
    assert "zzz" not in repr(b)
    assert b"zzz" not in msgspec.json.encode(b)
    assert "zzz" in b.to_json()


def test_to_json_is_one_line_and_can_indent() -> None:
    chunk = decode_chunk('{\n"id": "x",\n"choices": []\n}')
    line = chunk.to_json()
    assert "\n" not in line
    assert json.loads(line) == {"id": "x", "choices": []}
    indented = chunk.to_json(indent=2)
    assert indented.count("\n") >= 2
    assert json.loads(indented) == {"id": "x", "choices": []}


def test_built_objects_encode_their_declared_fields() -> None:
    chunk = ChatCompletionChunk(id="c", created=5, model="m")
    assert chunk.model_extra == {}
    as_dict = chunk.to_dict()
    assert as_dict["id"] == "c"
    assert as_dict["object"] == "chat.completion.chunk"
    assert as_dict["choices"] == []
    assert decode_chunk(chunk.to_json()) == chunk


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ('{"id": "x", "choices": [', "invalid JSON"),
        ("not json at all", "invalid JSON"),
        ("", "invalid JSON"),
        ("[1, 2]", "got list"),
        ('"text"', "got str"),
        ("null", "got NoneType"),
        ('{"choices": "many"}', "$.choices"),
        ('{"choices": [{"delta": {"content": {"a": 1}}}]}', "$.choices[0].delta.content"),
    ],
)
def test_malformed_chunk_raises_protocol_error_naming_the_data(data: str, reason: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_chunk(data)
    message = str(info.value)
    assert reason in message
    assert repr(data) in message
    assert "chat completion chunk" in message


def test_long_malformed_data_is_truncated_in_the_message() -> None:
    data = '{"id": "' + "x" * 5000
    with pytest.raises(ProtocolError) as info:
        decode_chunk(data.encode())
    message = str(info.value)
    assert data[:150] in message
    assert "…" in message
    assert len(message) < 500


def test_invalid_utf8_in_event_data_reads_as_replacement_character() -> None:
    # Event data is text decoded with U+FFFD, also when the stream hands it on as bytes.
    chunk = decode_chunk(b'{"id": "\xff", "choices": [{"delta": {"content": "a\xe4\xb8"}}]}')
    assert chunk.id == "\ufffd"
    assert chunk.choices[0].delta.content == "a\ufffd"
    with pytest.raises(ProtocolError, match="invalid JSON"):
        decode_chunk(b'{"id": "\xff"')


def test_invalid_utf8_in_a_completion_body_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="invalid JSON"):
        decode_completion(b'{"id": "\xff"}')


# ----------------------------------------------------------------------------- completions

COMPLETION = {
    "id": "chatcmpl-123",
    "object": "chat.completion",
    "created": 1741570283,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
                "annotations": [
                    {
                        "type": "url_citation",
                        "url_citation": {
                            "start_index": 1,
                            "end_index": 9,
                            "title": "T",
                            "url": "https://example.com",
                        },
                    }
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 82,
        "completion_tokens": 17,
        "total_tokens": 99,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_1",
    "x_extra": 1,
}


def test_decode_completion_matches_the_official_type() -> None:
    data = json.dumps(COMPLETION).encode()
    completion = decode_completion(data)
    assert completion.object == "chat.completion"
    message = completion.choices[0].message
    assert message.tool_calls is not None
    assert message.tool_calls[0].function.arguments == '{"city":"Paris"}'
    assert message.annotations is not None
    assert message.annotations[0].url_citation is not None
    assert message.annotations[0].url_citation.url == "https://example.com"
    assert completion.usage is not None
    assert completion.usage.total_tokens == 99
    assert completion.model_extra == {"x_extra": 1}
    assert completion.to_dict() == COMPLETION
    theirs = OpenAICompletion.model_validate(COMPLETION)
    assert _assert_same_paths(completion, theirs) >= 20


def test_decode_completion_takes_deepseek_reasoning_content() -> None:
    body = {
        "id": "d",
        "object": "chat.completion",
        "created": 1,
        "model": "deepseek-reasoner",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "3", "reasoning_content": "count"},
                "finish_reason": "stop",
            }
        ],
    }
    for data in (json.dumps(body), json.dumps(body).encode()):
        message = decode_completion(data).choices[0].message
        assert message.reasoning == "count"
        assert message.reasoning_content == "count"
        assert message.content == "3"


def test_decode_completion_prefers_reasoning_when_both_are_sent() -> None:
    body = '{"choices":[null,{"message":{"reasoning":"r","reasoning_content":"rc"}}]}'
    completion = decode_completion(body)
    assert len(completion.choices) == 1
    assert completion.choices[0].message.reasoning == "r"


def test_decode_completion_is_tolerant_and_strict_about_garbage() -> None:
    completion = decode_completion(
        b'{"choices":[{"message":null,"finish_reason":"stop"}],"created":2.5,"usage":null}'
    )
    assert completion.created == 2
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content is None
    with pytest.raises(ProtocolError, match="Malformed chat completion: invalid JSON"):
        decode_completion(b"<html>")


def test_built_completion_round_trips_through_json() -> None:
    completion = ChatCompletion(
        id="x",
        created=3,
        model="m",
        choices=[
            Choice(
                index=0,
                finish_reason="stop",
                message=ChatCompletionMessage(
                    content="hi",
                    reasoning="r",
                    tool_calls=[
                        ChatCompletionMessageToolCall(
                            id="c", function=Function(name="f", arguments="{}")
                        )
                    ],
                ),
            )
        ],
    )
    data = completion.to_json()
    assert json.loads(data)["object"] == "chat.completion"
    assert json.loads(data)["choices"][0]["message"]["role"] == "assistant"
    assert decode_completion(data) == completion
    assert to_dict(completion)["choices"][0]["message"]["tool_calls"][0]["function"] == {
        "name": "f",
        "arguments": "{}",
    }
