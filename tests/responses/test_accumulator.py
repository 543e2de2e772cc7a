"""The accumulator against the server's own final objects, and on shapes the recordings lack."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from openai._models import construct_type
from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent as OfficialEvent

from openai_sse.responses import ResponseAccumulator, decode_event
from openai_sse.responses import events as ev
from openai_sse.responses.models import (
    GenericItem,
    McpCall,
    ResponseCodeInterpreterToolCall,
    ResponseCustomToolCall,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseReasoningItem,
)

from .recordings import TERMINAL, matches, names, payloads, terminal_object

WITH_TERMINAL = [name for name in names() if terminal_object(name) is not None]


def _replay(datas: list[str]) -> ResponseAccumulator:
    accumulator = ResponseAccumulator()
    for data in datas:
        accumulator.add(decode_event(data))
    return accumulator


def _before_terminal(name: str, keep: Any = lambda payload: True) -> list[str]:
    out = []
    for data in payloads(name):
        payload = json.loads(data)
        if payload["type"] in TERMINAL:
            break
        if keep(payload):
            out.append(data)
    return out


def _content(output: list[dict[str, Any]]) -> list[Any]:
    """What deltas alone must reproduce: texts, refusals, annotations, calls, summaries."""
    view: list[Any] = []
    for item in output:
        kind = item["type"]
        if kind == "message":
            view.append([(p["type"], p.get("text"), p.get("refusal")) for p in item["content"]])
            view.append([p.get("annotations") for p in item["content"]])
        elif kind == "function_call":
            view.append((item["name"], item["call_id"], item["arguments"]))
        elif kind == "reasoning":
            view.append([s["text"] for s in item["summary"]])
        else:
            view.append((kind, item["id"]))
    return view


@pytest.mark.parametrize("name", WITH_TERMINAL)
def test_snapshot_before_the_terminal_event_equals_the_servers_object(name: str) -> None:
    final = terminal_object(name)
    assert final is not None
    snapshot = _replay(_before_terminal(name)).snapshot
    assert matches(msgspec.to_builtins(snapshot.output), final["output"])
    assert snapshot.id == final["id"]
    assert snapshot.model == final["model"]
    expected_text = "".join(
        part["text"]
        for item in final["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )
    assert snapshot.output_text == expected_text


@pytest.mark.parametrize("name", WITH_TERMINAL)
def test_deltas_alone_rebuild_every_text_call_and_summary(name: str) -> None:
    """Without any ``*.done`` event the pieces still add up to the server's final content."""
    final = terminal_object(name)
    assert final is not None
    deltas_only = _before_terminal(name, lambda p: not p["type"].endswith(".done"))
    snapshot = _replay(deltas_only).snapshot
    assert _content(msgspec.to_builtins(snapshot.output)) == _content(final["output"])


@pytest.mark.parametrize("name", WITH_TERMINAL)
def test_same_text_as_the_official_accumulation(name: str) -> None:
    state: Any = ResponseStreamState(input_tools=[], text_format=omit)
    accumulator = ResponseAccumulator()
    for data in _before_terminal(name):
        payload = json.loads(data)
        payload.setdefault("sequence_number", 0)
        state.handle_event(construct_type(type_=OfficialEvent, value=payload))  # type: ignore[arg-type]
        accumulator.add(decode_event(data))
    official = state._completed_response or state._ResponseStreamState__current_snapshot
    snapshot = accumulator.snapshot
    assert snapshot.output_text == official.output_text
    assert len(snapshot.output) == len(official.output)


def test_the_terminal_object_is_the_final_word() -> None:
    name = "05_openai_web_search_annotations.sse"
    accumulator = ResponseAccumulator()
    terminal = None
    for data in payloads(name):
        event = decode_event(data)
        accumulator.add(event)
        if isinstance(event, ev.ResponseCompletedEvent):
            terminal = event
    assert terminal is not None
    assert accumulator.snapshot is terminal.response
    assert accumulator.finished
    assert accumulator.usage is terminal.response.usage


def test_snapshot_is_valid_after_every_event() -> None:
    name = "04_openai_reasoning_summary_deltas.sse"
    final = terminal_object(name)
    assert final is not None
    summaries = [s["text"] for s in final["output"][0]["summary"]]
    accumulator = ResponseAccumulator()
    grown = 0
    for data in _before_terminal(name):
        accumulator.add(decode_event(data))
        snapshot = accumulator.snapshot
        if snapshot.output:
            reasoning = snapshot.output[0]
            assert isinstance(reasoning, ResponseReasoningItem)
            for i, part in enumerate(reasoning.summary):
                assert summaries[i].startswith(part.text)
                grown = max(grown, len(part.text))
    assert grown == max(len(s) for s in summaries)


def _events(*payloads: dict[str, Any]) -> ResponseAccumulator:
    return _replay([json.dumps(p) for p in payloads])


def test_parallel_function_calls_interleaved_by_output_index() -> None:
    added = "response.output_item.added"
    delta = "response.function_call_arguments.delta"
    accumulator = _events(
        {
            "type": added,
            "output_index": 0,
            "item": {
                "type": "function_call",
                "id": "fc_a",
                "call_id": "call_a",
                "name": "weather",
                "arguments": "",
            },
        },
        {
            "type": added,
            "output_index": 1,
            "item": {
                "type": "function_call",
                "id": "fc_b",
                "call_id": "call_b",
                "name": "time",
                "arguments": "",
            },
        },
        {"type": delta, "output_index": 0, "item_id": "fc_a", "delta": '{"city":'},
        {"type": delta, "output_index": 1, "item_id": "fc_b", "delta": '{"tz":'},
        {"type": delta, "output_index": 0, "item_id": "fc_a", "delta": '"Paris"}'},
        {"type": delta, "output_index": 1, "item_id": "fc_b", "delta": '"UTC"}'},
    )
    a, b = accumulator.snapshot.output
    assert isinstance(a, ResponseFunctionToolCall) and isinstance(b, ResponseFunctionToolCall)
    assert (a.name, a.call_id, json.loads(a.arguments)) == ("weather", "call_a", {"city": "Paris"})
    assert (b.name, b.call_id, json.loads(b.arguments)) == ("time", "call_b", {"tz": "UTC"})


def test_tools_code_and_reasoning_text_accumulate() -> None:
    accumulator = _events(
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {
                "type": "code_interpreter_call",
                "id": "ci",
                "status": "in_progress",
                "container_id": "c1",
                "code": "",
            },
        },
        {"type": "response.code_interpreter_call_code.delta", "output_index": 0, "delta": "print("},
        {"type": "response.code_interpreter_call_code.delta", "output_index": 0, "delta": "1)"},
        {"type": "response.code_interpreter_call.interpreting", "output_index": 0, "item_id": "ci"},
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {
                "type": "mcp_call",
                "id": "mcp",
                "server_label": "s",
                "name": "n",
                "arguments": "",
            },
        },
        {"type": "response.mcp_call_arguments.delta", "output_index": 1, "delta": "{}"},
        {"type": "response.mcp_call.in_progress", "output_index": 1, "item_id": "mcp"},
        {
            "type": "response.custom_tool_call_input.delta",
            "output_index": 2,
            "item_id": "ct",
            "delta": "x = ",
        },
        {
            "type": "response.custom_tool_call_input.delta",
            "output_index": 2,
            "item_id": "ct",
            "delta": "1",
        },
        {
            "type": "response.reasoning_text.delta",
            "output_index": 3,
            "item_id": "rs",
            "content_index": 0,
            "delta": "think",
        },
        {
            "type": "response.reasoning_text.delta",
            "output_index": 3,
            "item_id": "rs",
            "content_index": 0,
            "delta": "ing",
        },
        {
            "type": "response.output_item.added",
            "output_index": 4,
            "item": {"type": "local_shell_call", "id": "ls", "status": "in_progress"},
        },
        {"type": "response.file_search_call.searching", "output_index": 5, "item_id": "none"},
    )
    code, mcp, custom, reasoning, shell = accumulator.snapshot.output
    assert isinstance(code, ResponseCodeInterpreterToolCall)
    assert (code.code, code.status, code.container_id) == ("print(1)", "interpreting", "c1")
    assert isinstance(mcp, McpCall)
    assert (mcp.arguments, mcp.status) == ("{}", "in_progress")
    assert isinstance(custom, ResponseCustomToolCall)
    assert (custom.id, custom.input) == ("ct", "x = 1")
    assert isinstance(reasoning, ResponseReasoningItem)
    assert reasoning.content is not None and reasoning.content[0].text == "thinking"
    assert isinstance(shell, GenericItem) and shell.type == "local_shell_call"


def test_text_without_item_or_part_announcements_still_accumulates() -> None:
    """Some compatible servers send deltas only."""
    accumulator = _events(
        {
            "type": "response.output_text.delta",
            "output_index": 0,
            "content_index": 0,
            "item_id": "m1",
            "delta": "Hel",
        },
        {
            "type": "response.output_text.delta",
            "output_index": 0,
            "content_index": 0,
            "item_id": "m1",
            "delta": "lo",
        },
        {
            "type": "response.refusal.delta",
            "output_index": 1,
            "content_index": 0,
            "item_id": "m2",
            "delta": "No",
        },
    )
    snapshot = accumulator.snapshot
    message = snapshot.output[0]
    assert isinstance(message, ResponseOutputMessage) and message.id == "m1"
    assert snapshot.output_text == "Hello"
    assert snapshot.output[1].content[0].refusal == "No"  # type: ignore[union-attr]


def test_a_terminal_object_without_output_keeps_the_streamed_items() -> None:
    accumulator = _events(
        {
            "type": "response.output_text.delta",
            "output_index": 0,
            "content_index": 0,
            "item_id": "m",
            "delta": "kept",
        },
        {
            "type": "response.completed",
            "response": {
                "id": "r",
                "status": "completed",
                "output": [],
                "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
            },
        },
    )
    snapshot = accumulator.snapshot
    assert (snapshot.id, snapshot.status, snapshot.output_text) == ("r", "completed", "kept")
    assert snapshot.usage is not None and snapshot.usage.output_tokens == 2


def test_many_small_deltas_are_joined_once() -> None:
    accumulator = ResponseAccumulator()
    delta = ev.ResponseTextDeltaEvent(item_id="m", delta="ab")
    for i in range(20_000):
        accumulator.add(delta)
        if i % 1000 == 0:
            assert len(accumulator.snapshot.output_text) == 2 * (i + 1)
    assert accumulator.snapshot.output_text == "ab" * 20_000


def test_a_snapshot_as_plain_data_shows_unknown_kinds_as_sent() -> None:
    shell = {"type": "local_shell_call", "id": "ls", "status": "in_progress"}
    audio = {"type": "output_audio", "data": "AA"}
    page = {"type": "page_ref", "page": 2}
    accumulator = _events(
        {"type": "response.output_item.added", "output_index": 0, "item": shell},
        {
            "type": "response.content_part.added",
            "output_index": 1,
            "item_id": "m",
            "content_index": 0,
            "part": audio,
        },
        {
            "type": "response.output_text.delta",
            "output_index": 1,
            "item_id": "m",
            "content_index": 1,
            "delta": "see",
        },
        {
            "type": "response.output_text.annotation.added",
            "output_index": 1,
            "item_id": "m",
            "content_index": 1,
            "annotation_index": 0,
            "annotation": page,
        },
    )
    plain = accumulator.snapshot.to_dict()
    assert plain["output"][0] == shell
    message = plain["output"][1]
    assert message["content"][0] == audio
    assert message["content"][1]["text"] == "see"
    assert message["content"][1]["annotations"] == [page]
    assert json.loads(accumulator.snapshot.to_json()) == plain


def test_summary_indexes_far_out_or_negative_are_appended_not_padded() -> None:
    delta = "response.reasoning_summary_text.delta"
    accumulator = _events(
        {"type": delta, "output_index": 0, "item_id": "rs", "summary_index": 0, "delta": "a"},
        {"type": delta, "output_index": 0, "item_id": "rs", "summary_index": 10**9, "delta": "c"},
        {"type": delta, "output_index": 0, "item_id": "rs", "summary_index": -3, "delta": "b"},
    )
    reasoning = accumulator.snapshot.output[0]
    assert isinstance(reasoning, ResponseReasoningItem)
    assert [part.text for part in reasoning.summary] == ["b", "a", "c"]  # in index order
