"""The accumulator against the ten real recordings, the official accumulator, and edge cases."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk as OpenAIChunk

from openai_sse import SSEDecoder
from openai_sse.chat import (
    ChatCompletion,
    ChatCompletionAccumulator,
    ChatCompletionChunk,
    ChatCompletionMessageToolCall,
    decode_chunk,
)

from ..fixtures import fixture_names, sse_bytes

ALL = fixture_names()
PLAIN = "01_openai_plain_content_usage.sse"
TOOLS = "02_openai_parallel_tool_calls_usage.sse"
N3 = "03_openai_n3_multiple_choices_usage.sse"
REFUSAL = "04_openai_refusal_usage.sse"
LOGPROBS = "05_openai_content_logprobs_usage.sse"
LENGTH = "06_openai_finish_length_usage.sse"
AZURE = "07_azure_prompt_filter_obfuscation.chunks.jsonl"
AZURE_ANNOTATION = "08_azure_post_finish_filter_annotation.chunks.jsonl"
DEEPSEEK = "09_deepseek_reasoning_content_usage_on_finish.chunks.jsonl"
OBFUSCATION = "10_openai_obfuscation_service_tier.chunks.jsonl"


def _datas(name: str) -> list[str]:
    decoder = SSEDecoder()
    events = decoder.feed(sse_bytes(name)) + decoder.end()
    assert events[-1].data == "[DONE]"
    return [e.data for e in events if e.data != "[DONE]"]


def _accumulate(
    name: str,
) -> tuple[ChatCompletionAccumulator, list[list[tuple[int, ChatCompletionMessageToolCall]]]]:
    acc = ChatCompletionAccumulator()
    reports = [acc.add(decode_chunk(data)) for data in _datas(name)]
    return acc, reports


def _expected(name: str) -> dict[str, Any]:
    """What the recording contains, worked out with plain json and no package code."""
    exp: dict[str, Any] = {
        "id": "",
        "model": "",
        "created": 0,
        "system_fingerprint": None,
        "service_tier": None,
        "usage": None,
        "prompt_filter_results": None,
        "choices": {},
    }
    for data in _datas(name):
        payload = json.loads(data)
        for key in ("id", "model", "created", "system_fingerprint", "service_tier"):
            if not exp[key] and payload.get(key):
                exp[key] = payload[key]
        if payload.get("usage") is not None:
            exp["usage"] = payload["usage"]
        if payload.get("prompt_filter_results") and exp["prompt_filter_results"] is None:
            exp["prompt_filter_results"] = payload["prompt_filter_results"]
        for raw in payload.get("choices") or []:
            choice = exp["choices"].setdefault(
                raw["index"],
                {
                    "content": None,
                    "refusal": None,
                    "reasoning": None,
                    "tools": {},
                    "finish_reason": None,
                    "logprobs": None,
                    "content_filter_results": None,
                },
            )
            delta = raw.get("delta") or {}
            for key, target in (
                ("content", "content"),
                ("refusal", "refusal"),
                ("reasoning_content", "reasoning"),
                ("reasoning", "reasoning"),
            ):
                if delta.get(key) is not None:
                    choice[target] = (choice[target] or "") + delta[key]
            for call in delta.get("tool_calls") or []:
                tool = choice["tools"].setdefault(
                    call["index"], {"id": None, "type": None, "name": None, "arguments": ""}
                )
                function = call.get("function") or {}
                tool["id"] = tool["id"] or call.get("id")
                tool["type"] = tool["type"] or call.get("type")
                tool["name"] = tool["name"] or function.get("name")
                tool["arguments"] += function.get("arguments") or ""
            if raw.get("finish_reason"):
                choice["finish_reason"] = raw["finish_reason"]
            if raw.get("content_filter_results"):
                choice["content_filter_results"] = raw["content_filter_results"]
            logprobs = raw.get("logprobs")
            if logprobs is not None:
                acc = choice["logprobs"] = choice["logprobs"] or {"content": None, "refusal": None}
                for key in ("content", "refusal"):
                    if logprobs.get(key) is not None:
                        acc[key] = (acc[key] or []) + logprobs[key]
    return exp


def _prune(value: Any) -> Any:
    """Drop ``None`` members, so that typed and raw shapes can be compared."""
    if isinstance(value, dict):
        return {k: _prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


# ----------------------------------------------------------------------------- real recordings


@pytest.mark.parametrize("name", ALL)
def test_final_completion_field_by_field(name: str) -> None:
    acc, _ = _accumulate(name)
    exp = _expected(name)
    completion = acc.snapshot
    assert acc.finished
    assert completion.object == "chat.completion"
    assert completion.id == exp["id"]
    assert completion.id
    assert completion.model == exp["model"]
    assert completion.model
    assert completion.created == exp["created"]
    assert completion.created > 1_700_000_000
    assert completion.system_fingerprint == exp["system_fingerprint"]
    assert completion.service_tier == exp["service_tier"]
    assert completion.prompt_filter_results == exp["prompt_filter_results"]
    assert [c.index for c in completion.choices] == sorted(exp["choices"])
    for choice in completion.choices:
        want = exp["choices"][choice.index]
        message = choice.message
        assert message.role == "assistant"
        assert message.content == want["content"]
        assert message.refusal == want["refusal"]
        assert message.reasoning == want["reasoning"]
        assert message.function_call is None
        assert choice.finish_reason == want["finish_reason"]
        assert choice.content_filter_results == want["content_filter_results"]
        if want["tools"]:
            assert message.tool_calls is not None
            got = [
                (t.id, t.type, t.function.name, t.function.arguments) for t in message.tool_calls
            ]
            assert got == [
                (t["id"], t["type"], t["name"], t["arguments"])
                for _, t in sorted(want["tools"].items())
            ]
        else:
            assert message.tool_calls is None
        if want["logprobs"] is None:
            assert choice.logprobs is None
        else:
            assert choice.logprobs is not None
            assert msgspec.to_builtins(choice.logprobs.content) == want["logprobs"]["content"]
            assert msgspec.to_builtins(choice.logprobs.refusal) == want["logprobs"]["refusal"]
    assert acc.usage is completion.usage
    assert completion.usage is not None
    assert _prune(msgspec.to_builtins(completion.usage)) == _prune(exp["usage"])


@pytest.mark.parametrize("name", ALL)
def test_known_values_of_each_recording(name: str) -> None:
    completion = _accumulate(name)[0].snapshot
    message = completion.choices[0].message
    assert completion.usage is not None
    known: dict[str, Any] = {
        PLAIN: (message.content or "").startswith("I'm unable to provide real-time weather"),
        TOOLS: message.tool_calls is not None
        and [t.function.name for t in message.tool_calls] == ["GetWeatherArgs", "get_stock_price"]
        and json.loads(message.tool_calls[1].function.arguments)
        == {"ticker": "AAPL", "exchange": "NASDAQ"},
        N3: len(completion.choices) == 3
        and all(json.loads(c.message.content or "")["city"] for c in completion.choices),
        REFUSAL: message.refusal == "I'm sorry, I can't assist with that request."
        and message.content is None,
        LOGPROBS: message.content == "Foo!"
        and completion.choices[0].logprobs is not None
        and [t.token for t in completion.choices[0].logprobs.content or ()] == ["Foo", "!"],
        LENGTH: completion.choices[0].finish_reason == "length" and message.content == '{"',
        AZURE: message.content == "Capital of Denmark."
        and completion.id == "chatcmpl-CYPS1lijGoK8gd9lYzY3r9Sx50nbt"
        and completion.model == "gpt-5-nano-2025-08-07"
        and completion.prompt_filter_results is not None
        and completion.usage.total_tokens == 93,
        AZURE_ANNOTATION: message.content == "Hello World"
        and completion.choices[0].finish_reason == "stop"
        and completion.usage.total_tokens == 20,
        DEEPSEEK: message.content == 'The word "strawberry" contains three "r"s.'
        and (message.reasoning or "").startswith("We need to count")
        and message.reasoning_content == message.reasoning
        and completion.usage.prompt_cache_miss_tokens == 18
        and completion.system_fingerprint == "fp_eaab8d114b_prod0820_fp8_kvcache",
        OBFUSCATION: (message.content or "").startswith("**Holiday Name:** Harmony Day")
        and completion.service_tier == "default"
        and completion.usage.total_tokens == 316,
    }
    assert known[name] is True


# ----------------------------------------------------------------------------- official package

# The official accumulator fails on Azure's post-finish annotation chunk (it has no delta).
OFFICIAL_FAILS = {AZURE_ANNOTATION: AttributeError}


def _official(name: str) -> Any:
    state: Any = ChatCompletionStreamState()
    for data in _datas(name):
        state.handle_chunk(OpenAIChunk.construct(**json.loads(data)))
    return state.current_completion_snapshot


@pytest.mark.parametrize("name", ALL)
def test_agrees_with_the_official_accumulator(name: str) -> None:
    ours = _accumulate(name)[0].snapshot
    if name in OFFICIAL_FAILS:
        with pytest.raises(OFFICIAL_FAILS[name]):
            _official(name)
        assert ours.choices[0].message.content == "Hello World"
        assert ours.choices[0].finish_reason == "stop"
        return
    theirs = _official(name)
    if name == AZURE:
        # It keeps the empty id and model of Azure's prompt-filter chunk; we keep the real ones.
        assert (theirs.id, theirs.model) == ("", "")
        assert (ours.id, ours.model) == (
            "chatcmpl-CYPS1lijGoK8gd9lYzY3r9Sx50nbt",
            "gpt-5-nano-2025-08-07",
        )
    else:
        assert (ours.id, ours.model, ours.created) == (theirs.id, theirs.model, theirs.created)
    assert ours.system_fingerprint == theirs.system_fingerprint
    assert len(ours.choices) == len(theirs.choices)
    for mine, other in zip(ours.choices, theirs.choices, strict=True):
        assert mine.index == other.index
        assert mine.finish_reason == other.finish_reason
        assert mine.message.content == other.message.content
        assert mine.message.refusal == other.message.refusal
        assert mine.message.reasoning == other.message.to_dict().get("reasoning_content")
        if other.message.tool_calls:
            assert mine.message.tool_calls is not None
            assert [
                (t.id, t.type, t.function.name, t.function.arguments)
                for t in mine.message.tool_calls
            ] == [
                (t.id, t.type, t.function.name, t.function.arguments)
                for t in other.message.tool_calls
            ]
        else:
            assert mine.message.tool_calls is None
        if other.logprobs is None:
            assert mine.logprobs is None
        else:
            assert mine.logprobs is not None
            assert _prune(msgspec.to_builtins(mine.logprobs)) == _prune(other.logprobs.model_dump())
    assert ours.usage is not None
    assert theirs.usage is not None
    assert _prune(msgspec.to_builtins(ours.usage)) == theirs.usage.model_dump(exclude_none=True)


# ----------------------------------------------------------------------------- mid-stream


def test_snapshot_mid_stream_and_tool_call_reports_on_parallel_calls() -> None:
    datas = _datas(TOOLS)
    final = _accumulate(TOOLS)[0].snapshot
    assert final.choices[0].message.tool_calls is not None
    final_calls = final.choices[0].message.tool_calls
    second_starts = next(i for i, d in enumerate(datas) if '"index":1,"id"' in d)
    finish_at = next(i for i, d in enumerate(datas) if '"finish_reason":"tool_calls"' in d)

    acc = ChatCompletionAccumulator()
    previous: ChatCompletion | None = None
    for i, data in enumerate(datas):
        reports = acc.add(decode_chunk(data))
        snap = acc.snapshot
        assert snap is acc.snapshot  # cached until the next add
        assert snap is not previous
        calls = snap.choices[0].message.tool_calls or []
        for call, whole in zip(calls, final_calls, strict=False):
            assert call.id == whole.id
            assert whole.function.arguments.startswith(call.function.arguments)
        assert acc.finished is (i >= finish_at)
        if i == second_starts:
            assert reports == [(0, final_calls[0])]
        elif i == finish_at:
            assert reports == [(0, final_calls[1])]
        else:
            assert reports == []
        previous = snap


def test_earlier_snapshots_are_not_changed_by_later_chunks() -> None:
    datas = _datas(LOGPROBS)
    acc = ChatCompletionAccumulator()
    acc.add(decode_chunk(datas[0]))
    acc.add(decode_chunk(datas[1]))
    early = acc.snapshot
    early_json = early.to_json()
    for data in datas[2:]:
        acc.add(decode_chunk(data))
    assert early.to_json() == early_json
    assert early.choices[0].message.content == "Foo"
    assert early.choices[0].finish_reason is None
    assert early.choices[0].logprobs is not None
    assert [t.token for t in early.choices[0].logprobs.content or ()] == ["Foo"]
    assert acc.snapshot.choices[0].message.content == "Foo!"


def test_snapshot_before_any_chunk() -> None:
    acc = ChatCompletionAccumulator()
    snap = acc.snapshot
    assert snap == ChatCompletion(object="chat.completion")
    assert snap.choices == []
    assert acc.finished is False
    assert acc.usage is None


def test_usage_only_chunk_does_not_make_a_choice() -> None:
    acc = ChatCompletionAccumulator()
    acc.add(_chunk({"choices": [], "usage": {"prompt_tokens": 1, "total_tokens": 1}}))
    assert acc.finished is False
    assert acc.snapshot.choices == []
    assert acc.usage is not None
    assert acc.usage.prompt_tokens == 1


# ----------------------------------------------------------------------------- edge cases


def _chunk(payload: dict[str, Any]) -> ChatCompletionChunk:
    return decode_chunk(json.dumps(payload))


def _choice(index: int, delta: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": index, **extra}
    if delta is not None:
        choice["delta"] = delta
    return choice


def test_n_choices_interleaved_in_any_order() -> None:
    acc = ChatCompletionAccumulator()
    order = [(2, "c"), (0, "a"), (1, "b"), (2, "C"), (0, "A"), (1, "B"), (0, "!")]
    for index, text in order:
        acc.add(_chunk({"id": "x", "choices": [_choice(index, {"content": text})]}))
    acc.add(_chunk({"choices": [_choice(1, {}, finish_reason="stop")]}))
    acc.add(_chunk({"choices": [_choice(2, {}, finish_reason="length")]}))
    assert acc.finished is False
    acc.add(_chunk({"choices": [_choice(0, {}, finish_reason="stop")]}))
    assert acc.finished is True
    choices = acc.snapshot.choices
    assert [c.index for c in choices] == [0, 1, 2]
    assert [c.message.content for c in choices] == ["aA!", "bB", "cC"]
    assert [c.finish_reason for c in choices] == ["stop", "stop", "length"]


def test_several_choices_in_one_chunk() -> None:
    acc = ChatCompletionAccumulator()
    acc.add(_chunk({"choices": [_choice(1, {"content": "y"}), _choice(0, {"content": "x"})]}))
    acc.add(_chunk({"choices": [_choice(0, {"content": "X"}), _choice(1, {"content": "Y"})]}))
    assert [c.message.content for c in acc.snapshot.choices] == ["xX", "yY"]


def test_repeated_finish_reason_is_counted_once() -> None:
    acc = ChatCompletionAccumulator()
    acc.add(_chunk({"choices": [_choice(0, {"content": "a"}), _choice(1, {"content": "b"})]}))
    acc.add(_chunk({"choices": [_choice(0, {}, finish_reason="stop")]}))
    acc.add(_chunk({"choices": [_choice(0, {}, finish_reason="stop")]}))
    assert acc.finished is False
    acc.add(_chunk({"choices": [_choice(1, {}, finish_reason="stop")]}))
    assert acc.finished is True


def test_chunk_after_finish_without_delta_changes_nothing() -> None:
    acc = ChatCompletionAccumulator()
    acc.add(_chunk({"choices": [_choice(0, {"content": "hi"}, finish_reason="stop")]}))
    acc.add(
        _chunk(
            {"choices": [_choice(0, None, finish_reason=None, content_filter_results={"hate": {}})]}
        )
    )
    assert acc.finished is True
    choice = acc.snapshot.choices[0]
    assert choice.message.content == "hi"
    assert choice.finish_reason == "stop"
    assert choice.content_filter_results == {"hate": {}}


def test_first_non_empty_identity_wins() -> None:
    acc = ChatCompletionAccumulator()
    acc.add(
        _chunk(
            {
                "id": "",
                "model": "",
                "object": "",
                "created": 0,
                "choices": [],
                "prompt_filter_results": [{"prompt_index": 0}],
            }
        )
    )
    acc.add(
        _chunk(
            {
                "id": "first",
                "model": "m1",
                "created": 10,
                "system_fingerprint": None,
                "choices": [_choice(0, {"content": "a"})],
            }
        )
    )
    acc.add(
        _chunk(
            {
                "id": "second",
                "model": "m2",
                "created": 20,
                "system_fingerprint": "fp",
                "service_tier": "flex",
                "prompt_filter_results": [{"prompt_index": 9}],
                "choices": [_choice(0, {"content": "b"})],
            }
        )
    )
    acc.add(_chunk({"id": "third", "system_fingerprint": "fp2", "service_tier": "default"}))
    snap = acc.snapshot
    assert (snap.id, snap.model, snap.created) == ("first", "m1", 10)
    assert (snap.system_fingerprint, snap.service_tier) == ("fp", "flex")
    assert snap.prompt_filter_results == [{"prompt_index": 0}]
    assert snap.object == "chat.completion"


def test_usage_on_the_finish_chunk_and_later_usage_wins() -> None:
    acc = ChatCompletionAccumulator()
    acc.add(_chunk({"choices": [_choice(0, {"content": "a"})], "usage": None}))
    assert acc.usage is None
    acc.add(
        _chunk(
            {
                "choices": [_choice(0, {"content": ""}, finish_reason="stop")],
                "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
            }
        )
    )
    assert acc.finished
    assert acc.usage is not None
    assert acc.snapshot.usage is acc.usage
    assert acc.usage.total_tokens == 3
    acc.add(_chunk({"choices": [], "usage": {"total_tokens": 4}}))
    assert acc.snapshot.usage is not None
    assert acc.snapshot.usage.total_tokens == 4
    acc.add(_chunk({"choices": [_choice(0, None)], "usage": None}))
    assert acc.usage is not None
    assert acc.usage.total_tokens == 4
    assert acc.finished


def test_reasoning_from_either_field_and_never_twice() -> None:
    acc = ChatCompletionAccumulator()
    acc.add(_chunk({"choices": [_choice(0, {"reasoning": "vllm "})]}))
    acc.add(_chunk({"choices": [_choice(0, {"reasoning_content": "deepseek "})]}))
    acc.add(_chunk({"choices": [_choice(0, {"reasoning_content": "both", "reasoning": "both"})]}))
    acc.add(_chunk({"choices": [_choice(0, {"reasoning": None, "content": "done"})]}))
    message = acc.snapshot.choices[0].message
    assert message.reasoning == "vllm deepseek both"
    assert message.reasoning_content == message.reasoning
    assert message.content == "done"


def test_content_stays_none_until_a_string_arrives() -> None:
    acc = ChatCompletionAccumulator()
    acc.add(_chunk({"choices": [_choice(0, {"role": "assistant", "content": None})]}))
    assert acc.snapshot.choices[0].message.content is None
    acc.add(_chunk({"choices": [_choice(0, {"content": ""})]}))
    assert acc.snapshot.choices[0].message.content == ""


def test_refusal_with_refusal_logprobs() -> None:
    token = {"token": "No", "logprob": -0.1, "bytes": [78, 111], "top_logprobs": []}
    acc = ChatCompletionAccumulator()
    acc.add(
        _chunk(
            {
                "choices": [
                    _choice(0, {"refusal": ""}, logprobs={"content": None, "refusal": []}),
                ]
            }
        )
    )
    for text in ("No", "."):
        acc.add(
            _chunk(
                {
                    "choices": [
                        _choice(
                            0,
                            {"refusal": text},
                            logprobs={"content": None, "refusal": [{**token, "token": text}]},
                        )
                    ]
                }
            )
        )
    choice = acc.snapshot.choices[0]
    assert choice.message.refusal == "No."
    assert choice.message.content is None
    assert choice.logprobs is not None
    assert choice.logprobs.content is None
    assert [t.token for t in choice.logprobs.refusal or ()] == ["No", "."]


def test_ollama_repeated_index_with_new_ids_makes_separate_calls() -> None:
    acc = ChatCompletionAccumulator()

    def call(id: str, name: str, arguments: str) -> ChatCompletionChunk:
        fragment = {
            "index": 0,
            "id": id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        return _chunk({"choices": [_choice(0, {"tool_calls": [fragment]})]})

    assert acc.add(call("call_a", "get_weather", '{"city":"Paris"}')) == []
    reported = acc.add(call("call_b", "get_time", '{"tz":"CET"}'))
    assert [(i, c.id, c.function.name, c.function.arguments) for i, c in reported] == [
        (0, "call_a", "get_weather", '{"city":"Paris"}')
    ]
    reported = acc.add(_chunk({"choices": [_choice(0, {}, finish_reason="tool_calls")]}))
    assert [(i, c.id, c.function.name) for i, c in reported] == [(0, "call_b", "get_time")]
    calls = acc.snapshot.choices[0].message.tool_calls
    assert calls is not None
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("call_a", "get_weather", '{"city":"Paris"}'),
        ("call_b", "get_time", '{"tz":"CET"}'),
    ]


def test_same_id_repeated_on_every_fragment_is_one_call() -> None:
    acc = ChatCompletionAccumulator()
    for piece in ('{"a"', ":", "1}"):
        fragment = {"index": 0, "id": "call_1", "function": {"arguments": piece}}
        if piece == '{"a"':
            fragment["function"]["name"] = "f"
        assert acc.add(_chunk({"choices": [_choice(0, {"tool_calls": [fragment]})]})) == []
    calls = acc.snapshot.choices[0].message.tool_calls
    assert calls is not None
    assert len(calls) == 1
    assert (calls[0].id, calls[0].type, calls[0].function.name) == ("call_1", "function", "f")
    assert calls[0].function.arguments == '{"a":1}'


def test_several_fragments_in_one_chunk_and_reports_carry_the_choice_index() -> None:
    acc = ChatCompletionAccumulator()
    fragments = [
        {"index": 0, "id": "c0", "type": "function", "function": {"name": "f", "arguments": ""}},
        {"index": 0, "function": {"arguments": "{}"}},
        {"index": 1, "id": "c1", "type": "function", "function": {"name": "g", "arguments": "["}},
        {"index": 1, "function": {"arguments": "]"}},
    ]
    reported = acc.add(_chunk({"choices": [_choice(1, {"tool_calls": fragments})]}))
    assert [(i, c.id, c.function.arguments) for i, c in reported] == [(1, "c0", "{}")]
    reported = acc.add(_chunk({"choices": [_choice(1, {}, finish_reason="tool_calls")]}))
    assert [(i, c.id, c.function.arguments) for i, c in reported] == [(1, "c1", "[]")]
    assert acc.add(_chunk({"choices": [_choice(1, {}, finish_reason="tool_calls")]})) == []
    calls = acc.snapshot.choices[0].message.tool_calls
    assert calls is not None
    assert [c.function.arguments for c in calls] == ["{}", "[]"]


def test_tool_call_fields_taken_from_first_fragment_that_has_them() -> None:
    acc = ChatCompletionAccumulator()
    acc.add(_chunk({"choices": [_choice(0, {"tool_calls": [{"index": 3}]})]}))
    acc.add(
        _chunk(
            {
                "choices": [
                    _choice(
                        0,
                        {
                            "tool_calls": [
                                {"index": 3, "id": "late", "function": {"name": "h"}},
                            ]
                        },
                    )
                ]
            }
        )
    )
    acc.add(_chunk({"choices": [_choice(0, {"tool_calls": [{"index": 3, "type": "function"}]})]}))
    calls = acc.snapshot.choices[0].message.tool_calls
    assert calls is not None
    assert [(c.id, c.type, c.function.name, c.function.arguments) for c in calls] == [
        ("late", "function", "h", "")
    ]


def test_legacy_function_call() -> None:
    acc = ChatCompletionAccumulator()
    acc.add(
        _chunk(
            {
                "choices": [
                    _choice(
                        0,
                        {
                            "role": "assistant",
                            "content": None,
                            "function_call": {"name": "lookup", "arguments": ""},
                        },
                    )
                ]
            }
        )
    )
    for piece in ('{"q":', ' "x"}'):
        acc.add(_chunk({"choices": [_choice(0, {"function_call": {"arguments": piece}})]}))
    acc.add(_chunk({"choices": [_choice(0, {"function_call": {"name": "other"}})]}))
    reported = acc.add(_chunk({"choices": [_choice(0, {}, finish_reason="function_call")]}))
    assert reported == []
    choice = acc.snapshot.choices[0]
    assert choice.finish_reason == "function_call"
    assert choice.message.tool_calls is None
    assert choice.message.content is None
    assert choice.message.function_call is not None
    assert choice.message.function_call.name == "lookup"
    assert choice.message.function_call.arguments == '{"q": "x"}'


def test_many_tiny_deltas_join_correctly() -> None:
    acc = ChatCompletionAccumulator()
    text = "".join(chr(0x41 + i % 26) for i in range(5000))
    for ch in text:
        acc.add(_chunk({"choices": [_choice(0, {"content": ch})]}))
        if ch == "Z":
            assert (acc.snapshot.choices[0].message.content or "").endswith("XYZ")
    assert acc.snapshot.choices[0].message.content == text


def test_snapshot_round_trips_through_json() -> None:
    acc, _ = _accumulate(TOOLS)
    snap = acc.snapshot
    again = msgspec.json.decode(snap.to_json(), type=ChatCompletion)
    assert again == snap
    assert snap.to_dict()["choices"][0]["message"]["tool_calls"][1]["id"] == (
        "call_DNYTawLBoN8fj3KN6qU9N1Ou"
    )
