"""Provider dialects never fail a stream: typed content parts, and fields of the wrong type
that the accumulated answer does not need. Real-shaped payloads, through the client, over a
real server on 127.0.0.1."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest
from aiohttp import web

from openai_sse import ChatListener, ChatStream, ProtocolError
from openai_sse.chat import decode_chunk, decode_completion

from ..servers import LocalServer, sse_response

MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "8d1e6b0c3f2a4f0e9a1b2c3d4e5f6a7b",
        "object": "chat.completion.chunk",
        "created": 1750000000,
        "model": "magistral-medium-2506",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, **extra}],
    }


# Mistral's reasoning models stream their thinking as typed parts, then the answer; a text part
# may also come as a list, and parts the SDK does not know (references) are kept in the raw data.
MISTRAL = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": "2 plus "}]}]}),
    _chunk({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": "2 is 4."}]}]}),
    _chunk({"content": [{"type": "text", "text": "The answer "}]}),
    _chunk(
        {"content": [{"type": "reference", "reference_ids": [1]}, {"type": "text", "text": "is"}]}
    ),
    _chunk({"content": " 4."}),
    {
        **_chunk({"content": ""}, "stop"),
        "usage": {"prompt_tokens": 10, "completion_tokens": 12, "total_tokens": 22},
    },
]

# Fields no answer needs, with the wrong type: logprobs as a number, an object where a string
# belongs (obfuscation, system_fingerprint), a list where an object belongs, a bad usage.
ODD_FIELDS = [
    {**_chunk({"role": "assistant", "content": "Hel"}, logprobs=7), "obfuscation": {"pad": 1}},
    {**_chunk({"content": "lo"}, content_filter_results=[1, 2]), "system_fingerprint": ["fp"]},
    {**_chunk({"content": "!"}, "stop"), "usage": "n/a", "prompt_filter_results": {"x": 1}},
]


def _body(chunks: list[dict[str, Any]]) -> list[bytes]:
    return [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]


class Collect(ChatListener):
    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.raw: list[dict[str, Any]] = []

    def on_chunk(self, stream: ChatStream, chunk: Any) -> None:
        self.raw.append(chunk.to_dict())

    def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
        self.content.append(delta)

    def on_reasoning(self, stream: ChatStream, delta: str, index: int) -> None:
        self.reasoning.append(delta)


async def _stream(server: LocalServer, chunks: list[dict[str, Any]]) -> tuple[Any, Collect]:
    parts = _body(chunks)

    async def handler(request: web.Request) -> web.StreamResponse:
        return await sse_response(request, *parts)

    server.route("/v1/chat/completions", handler)
    listener = Collect()
    async with server.client() as client:
        completion = await client.chat.stream(model="m", messages=MESSAGES, listeners=[listener])
    return completion, listener


async def test_content_parts_are_content_and_reasoning(server: LocalServer) -> None:
    completion, listener = await _stream(server, MISTRAL)
    message = completion.choices[0].message
    assert message.content == "The answer is 4."
    assert message.reasoning == "2 plus 2 is 4."
    assert "".join(listener.content) == "The answer is 4."
    assert listener.reasoning == ["2 plus ", "2 is 4."]
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 22
    # The part the SDK does not know is still in the chunk's raw payload.
    parts = listener.raw[4]["choices"][0]["delta"]["content"]
    assert parts[0] == {"type": "reference", "reference_ids": [1]}


async def test_wrongly_typed_unneeded_fields_do_not_fail_the_stream(server: LocalServer) -> None:
    completion, listener = await _stream(server, ODD_FIELDS)
    assert completion.choices[0].message.content == "Hello!"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is None
    assert listener.raw[0]["obfuscation"] == {"pad": 1}
    assert listener.raw[0]["choices"][0]["logprobs"] == 7
    assert listener.raw[2]["usage"] == "n/a"


def test_dropped_fields_keep_their_neighbours() -> None:
    chunk = decode_chunk(json.dumps(ODD_FIELDS[1]).encode())
    assert chunk.id == ODD_FIELDS[1]["id"]
    assert chunk.system_fingerprint is None
    assert chunk.choices[0].content_filter_results is None
    assert chunk.choices[0].delta.content == "lo"


@pytest.mark.parametrize(
    "delta",
    [
        {"content": {"text": "an object"}},
        {"tool_calls": [{"index": 0, "function": {"arguments": {"a": 1}}}]},
    ],
)
def test_a_wrong_type_in_answer_text_is_still_an_error(delta: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError, match="Malformed chat completion chunk"):
        decode_chunk(json.dumps(_chunk(delta)))


def test_completion_content_parts() -> None:
    body = {
        "id": "c",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "Short."},
                        {"type": "text", "text": "4"},
                    ],
                },
                "finish_reason": "stop",
                "logprobs": "none",
            }
        ],
    }
    completion = decode_completion(json.dumps(body).encode())
    assert completion.choices[0].message.content == "4"
    assert completion.choices[0].message.reasoning == "Short."


def test_decoded_chunks_are_not_tracked_by_the_garbage_collector() -> None:
    data = json.dumps(MISTRAL[5]).encode()
    chunk = decode_chunk(data)
    assert not gc.is_tracked(chunk)
    assert not gc.is_tracked(chunk.choices[0])
    # The raw payload stays reachable for provider fields.
    assert chunk.to_dict() == MISTRAL[5]
    assert chunk.to_json() == data.decode()
    assert "_raw_json" not in repr(chunk)
