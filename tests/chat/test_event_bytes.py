"""Event data as bytes end to end: the chat stream takes each event's UTF-8 bytes from the event
source (no text decoding per read), other listeners still get text; invalid UTF-8 never loses
an intact event on either path. Real server on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiohttp import web

from openai_sse import ChatListener, ChatStream, Client, EventSourceListener, EventSources, Request

from ..servers import LocalServer, sse_response


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    payload = {"id": "c1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return json.dumps(payload, ensure_ascii=False).encode()


# A CJK answer cut inside characters across writes, one chunk with a broken UTF-8 sequence, a
# comment, an event with an id and one with a type the chat stream ignores.
BODY = [
    b"data: " + _chunk("春节是")[:-20],
    _chunk("春节是")[-20:] + b"\n\n: keep-alive\n\n",
    b"data: " + _chunk("中国").replace("国".encode(), b"\xe5\x9b"),
    b"\n" + b"\n",
    b"data: " + _chunk("最重要的")[:-30],
    _chunk("最重要的")[-30:] + b"\n\nid: 7\ndata: " + _chunk("节日") + b"\n\n",
    b"event: ping\ndata: {}\n\n",
    b"data: " + _chunk(None, "stop") + b"\n\ndata: [DONE]\n\n",
]


EXPECTED = ["春节是", "中\ufffd", "最重要的", "节日"]


class Content(ChatListener):
    def __init__(self) -> None:
        self.parts: list[str] = []

    def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
        self.parts.append(delta)


async def _serve(request: web.Request) -> web.StreamResponse:
    return await sse_response(request, *BODY)


async def test_chat_stream_reads_bytes_and_keeps_every_event() -> None:
    async with (
        LocalServer({"/v1/chat/completions": _serve}) as server,
        Client("sk-test", base_url=server.url("/v1"), max_retries=0) as client,
    ):
        listener = Content()
        completion = await client.chat.stream(model="m", messages=[], listeners=[listener])
    # The broken sequence reads as one U+FFFD; the chunk it is in is not lost.
    assert listener.parts == EXPECTED
    assert completion.choices[0].message.content == "".join(listener.parts)
    assert completion.choices[0].finish_reason == "stop"


class Texts(EventSourceListener):
    def __init__(self) -> None:
        self.events: list[tuple[str | None, str | None, Any]] = []

    def on_event(self, source: Any, id: str | None, type: str | None, data: str) -> None:
        self.events.append((id, type, data))


async def test_plain_listeners_still_get_text() -> None:
    async with LocalServer({"/": _serve}) as server, aiohttp.ClientSession() as session:
        listener = Texts()
        source = EventSources.create_factory(session).new_event_source(
            Request(server.url("/")), listener
        )
        await source.wait()
    assert all(isinstance(data, str) for _, _, data in listener.events)
    chunks = [json.loads(d) for _, t, d in listener.events if t is None and d != "[DONE]"]
    contents = [c["choices"][0]["delta"].get("content") for c in chunks]
    assert contents == [*EXPECTED, None]
    assert [(i, t) for i, t, _ in listener.events] == [
        (None, None),
        (None, None),
        (None, None),
        ("7", None),
        ("7", "ping"),
        ("7", None),
        ("7", None),
    ]
