"""Typed events and the final object: every recorded payload, unknown kinds, bad input."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from openai._models import construct_type
from openai.types.responses import ResponseStreamEvent as OfficialEvent

from openai_sse import ProtocolError
from openai_sse.responses import events as ev
from openai_sse.responses.events import GenericEvent, decode_event
from openai_sse.responses.models import (
    AnnotationURLCitation,
    GenericItem,
    GenericPart,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseReasoningItem,
    decode_response,
)

from .recordings import SHARED, body, matches, names, payloads

ALL = [(name, i, data) for name in names() for i, data in enumerate(payloads(name))]


def test_seven_recordings_are_vendored_byte_for_byte() -> None:
    assert len(names()) == 7
    if SHARED.is_dir():
        for name in names():
            assert body(name) == (SHARED / name).read_bytes()


def test_recorded_payloads_decode_to_typed_events_like_the_official_package() -> None:
    for _, _, data in ALL:
        _check_against_official(data)


def _check_against_official(data: str) -> None:
    payload = json.loads(data)
    event = decode_event(data)
    assert not isinstance(event, GenericEvent)
    assert event.type == payload["type"]
    assert event.sequence_number == payload.get("sequence_number")
    official: Any = construct_type(type_=OfficialEvent, value=payload)  # type: ignore[arg-type]
    assert type(event).__name__ == type(official).__name__
    for field in type(official).model_fields:
        mine = getattr(event, field, None)
        theirs = getattr(official, field, None)
        if isinstance(theirs, (str, int)) and not isinstance(theirs, bool):
            assert mine == theirs, field
    if "response" in payload:
        response = event.response  # type: ignore[union-attr]
        assert response.id == official.response.id
        assert response.status == official.response.status
        assert response.output_text == official.response.output_text
        assert matches(msgspec.to_builtins(response.output), payload["response"]["output"])


def test_older_format_without_sequence_number_decodes() -> None:
    data = payloads("01_openai_text_emoji_no_sequence_number.sse")[6]
    event = decode_event(data)
    assert isinstance(event, ev.ResponseTextDeltaEvent)
    assert event.sequence_number is None
    assert event.delta == " 🌍"
    assert (event.output_index, event.content_index) == (0, 0)


def test_unknown_event_type_is_a_generic_event_with_its_payload() -> None:
    data = '{"type":"response.hologram.delta","sequence_number":7,"beam":{"x":1}}'
    event = decode_event(data)
    assert isinstance(event, GenericEvent)
    assert event.type == "response.hologram.delta"
    assert event.sequence_number == 7
    assert event.data["beam"] == {"x": 1}
    assert event.to_dict() == json.loads(data)


def test_unknown_item_and_part_kinds_become_generic_and_keep_their_payload() -> None:
    event = decode_event(
        '{"type":"response.output_item.added","output_index":3,'
        '"item":{"type":"tool_search_call","id":"ts_1","status":"in_progress","q":"x"}}'
    )
    assert isinstance(event, ev.ResponseOutputItemAddedEvent)
    item = event.item
    assert isinstance(item, GenericItem)
    assert (item.type, item.id, item.status) == ("tool_search_call", "ts_1", "in_progress")
    assert item.raw["q"] == "x"
    done = decode_event(
        '{"type":"response.output_item.done","output_index":0,"item":{"type":"message",'
        '"id":"m","role":"assistant","content":[{"type":"output_text","text":"a",'
        '"annotations":[{"type":"page_ref","page":2}]},{"type":"output_audio","data":"AA"}]}}'
    )
    assert isinstance(done, ev.ResponseOutputItemDoneEvent)
    assert isinstance(done.item, ResponseOutputMessage)
    text, audio = done.item.content
    assert isinstance(text, ResponseOutputText)
    assert text.annotations[0].type == "page_ref"
    assert isinstance(audio, GenericPart)
    assert audio.type == "output_audio"


def test_nulls_and_missing_fields_are_tolerated() -> None:
    event = decode_event(
        '{"type":"response.output_text.delta","item_id":null,"output_index":null,'
        '"content_index":0,"delta":"hi","logprobs":null}'
    )
    assert isinstance(event, ev.ResponseTextDeltaEvent)
    assert (event.item_id, event.output_index, event.delta, event.logprobs) == ("", 0, "hi", [])
    call = decode_event(
        '{"type":"response.output_item.added","output_index":0,'
        '"item":{"type":"function_call","name":"f","arguments":null,"call_id":null}}'
    )
    assert isinstance(call, ev.ResponseOutputItemAddedEvent)
    assert isinstance(call.item, ResponseFunctionToolCall)
    assert (call.item.arguments, call.item.call_id) == ("", "")
    bare = decode_event('{"type":"response.completed"}')
    assert isinstance(bare, ev.ResponseCompletedEvent)
    assert bare.response.output == []


def test_provider_extras_stay_reachable() -> None:
    data = payloads("02_openai_function_call_single.sse")[-1]
    event = decode_event(data)
    assert isinstance(event, ev.ResponseCompletedEvent)
    assert event.to_dict()["response"]["prompt_cache_retention"] == "24h"
    response = decode_response(json.dumps(json.loads(data)["response"]))
    assert response.model_extra["prompt_cache_retention"] == "24h"
    assert "id" not in response.model_extra
    delta = decode_event(payloads("02_openai_function_call_single.sse")[3])
    assert isinstance(delta, ev.ResponseFunctionCallArgumentsDeltaEvent)
    assert delta.obfuscation


def test_error_event_in_both_shapes() -> None:
    nested = decode_event(payloads("11_openai_error_event_then_response_failed.sse")[2])
    assert isinstance(nested, ev.ResponseErrorEvent)
    assert nested.error["code"] == "insufficient_quota"
    flat = decode_event('{"type":"error","code":"server_error","message":"boom","param":null}')
    assert isinstance(flat, ev.ResponseErrorEvent)
    assert (flat.code, flat.message) == ("server_error", "boom")


def test_typed_items_of_the_recordings() -> None:
    final = json.loads(payloads("04_openai_reasoning_summary_deltas.sse")[-1])["response"]
    response = decode_response(json.dumps(final).encode())
    reasoning, message = response.output
    assert isinstance(reasoning, ResponseReasoningItem)
    assert len(reasoning.summary) == 3
    assert reasoning.summary[0].text.startswith("**Exploring prime numbers**")
    assert isinstance(message, ResponseOutputMessage)
    assert response.output_text == "3"
    web = json.loads(payloads("05_openai_web_search_annotations.sse")[-1])["response"]
    response = decode_response(json.dumps(web))
    assert [item.type for item in response.output] == [
        "web_search_call",
        "web_search_call",
        "message",
    ]
    first = response.output[0]
    assert first.action is not None and first.action.query  # type: ignore[union-attr]
    part = response.output[2].content[0]  # type: ignore[union-attr]
    assert isinstance(part.annotations[0], AnnotationURLCitation)
    assert part.annotations[0].url.startswith("https://www.britannica.com/")
    usage = response.usage
    assert usage is not None and usage.total_tokens == usage.input_tokens + usage.output_tokens


@pytest.mark.parametrize(
    "data", ["not json", "[1, 2]", '"text"', '{"type": "response.completed", "response": 5}']
)
def test_malformed_payloads_raise_protocol_error(data: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_event(data)
    assert "response event" in str(info.value)


def test_malformed_response_body_raises_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode_response(b"<html>")
    with pytest.raises(ProtocolError):
        decode_response(b'{"output": 3}')


def test_built_in_tool_items_are_typed_with_the_official_paths() -> None:
    from openai_sse.responses import models as m

    items = [
        {
            "id": "ci_1",
            "type": "code_interpreter_call",
            "status": "completed",
            "code": "print(1)",
            "container_id": "cntr_1",
            "outputs": [
                {"type": "logs", "logs": "1\n"},
                {"type": "image", "url": "https://x/i.png"},
            ],
        },
        {
            "id": "fs_1",
            "type": "file_search_call",
            "status": "completed",
            "queries": ["q"],
            "results": [
                {
                    "attributes": {},
                    "file_id": "file-1",
                    "filename": "a.pdf",
                    "score": 0.9,
                    "text": "t",
                }
            ],
        },
        {
            "id": "mcpl_1",
            "type": "mcp_list_tools",
            "server_label": "wiki",
            "error": None,
            "tools": [
                {"annotations": None, "description": "d", "input_schema": {}, "name": "read"}
            ],
        },
        {
            "id": "mcp_1",
            "type": "mcp_call",
            "approval_request_id": None,
            "arguments": "{}",
            "error": None,
            "name": "ask",
            "output": "x",
            "server_label": "wiki",
            "status": "completed",
        },
        {
            "id": "mcpr_1",
            "type": "mcp_approval_request",
            "arguments": "{}",
            "name": "ask",
            "server_label": "wiki",
        },
        {"id": "ig_1", "type": "image_generation_call", "status": "completed", "result": "AAAA"},
        {"id": "ctc_1", "type": "custom_tool_call", "call_id": "c1", "input": "x", "name": "g"},
        {
            "id": "ws_2",
            "type": "web_search_call",
            "status": "completed",
            "action": {"type": "open_page", "url": "https://x"},
        },
    ]
    decoded = [
        decode_event(json.dumps({"type": "response.output_item.done", "item": item})).item  # type: ignore[union-attr]
        for item in items
    ]
    code, files, tools, call, approval, image, custom, web = decoded
    assert isinstance(code, m.ResponseCodeInterpreterToolCall)
    assert code.outputs is not None and code.outputs[1].url == "https://x/i.png"
    assert isinstance(files, m.ResponseFileSearchToolCall)
    assert files.results is not None and files.results[0].filename == "a.pdf"
    assert isinstance(tools, m.McpListTools) and tools.tools[0].name == "read"
    assert isinstance(call, m.McpCall) and call.output == "x"
    assert isinstance(approval, m.McpApprovalRequest) and approval.server_label == "wiki"
    assert isinstance(image, m.ImageGenerationCall) and image.result == "AAAA"
    assert isinstance(custom, m.ResponseCustomToolCall) and custom.input == "x"
    assert isinstance(web, m.ResponseFunctionWebSearch)
    assert web.action is not None and (web.action.type, web.action.url) == (
        "open_page",
        "https://x",
    )
    assert [item.type for item in decoded] == [item["type"] for item in items]


def test_the_sse_event_name_stands_in_for_a_missing_type() -> None:
    event = decode_event('{"item_id":"m","delta":"hi"}', "response.output_text.delta")
    assert isinstance(event, ev.ResponseTextDeltaEvent) and event.delta == "hi"
    assert decode_event('{"delta":"hi"}', "message").type == ""
    assert decode_event('{"type":"response.refusal.delta","delta":"no"}', "other").type == (
        "response.refusal.delta"
    )
