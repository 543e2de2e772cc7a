"""Reading the relay's event streams in tests, through the SDK's own decoder."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from openai_sse import ServerSentEvent, SSEDecoder

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello there"}]}


async def events(response: aiohttp.ClientResponse) -> AsyncIterator[ServerSentEvent]:
    """Events as they arrive (comments and retry-only blocks are not events)."""
    decoder = SSEDecoder()
    async for data in response.content.iter_any():
        for event in decoder.feed(data):
            yield event
    for event in decoder.end():
        yield event


async def collect(response: aiohttp.ClientResponse) -> list[ServerSentEvent]:
    return [event async for event in events(response)]


async def first_events(http: aiohttp.ClientSession, url: str, count: int) -> list[ServerSentEvent]:
    """The first ``count`` events of a stream; then the reader goes away, as a browser may."""
    received: list[ServerSentEvent] = []
    async with http.get(url) as response:
        async for event in events(response):
            received.append(event)
            if len(received) == count:
                break
    return received


def content(chunks: list[ServerSentEvent]) -> str:
    """The answer text carried by the chunk events."""
    text = []
    for event in chunks:
        if event.type is None:
            for choice in json.loads(event.data).get("choices", []):
                text.append((choice.get("delta") or {}).get("content") or "")
    return "".join(text)


def final(events_: list[ServerSentEvent]) -> tuple[str, Any]:
    """The terminal event's type and payload; it must be the last event."""
    last = events_[-1]
    assert last.type in ("done", "error"), last
    assert all(e.type is None for e in events_[:-1])
    return last.type, json.loads(last.data)


async def start(
    session: aiohttp.ClientSession, base: str, body: dict[str, Any] | None = None, **kw: Any
) -> str:
    async with session.post(base + "/v1/streams", json=body or CHAT, **kw) as reply:
        assert reply.status == 201, await reply.text()
        payload = await reply.json()
    stream_id: str = payload["id"]
    return stream_id


RUNNING: dict[str, asyncio.subprocess.Process] = {}
"""The relay processes started by :func:`relay_process`, by URL (a test may kill one)."""


@contextlib.asynccontextmanager
async def relay_process(*args: str, secret: str = "sk-relay-process-key") -> AsyncIterator[str]:
    """``openai-sse relay`` as a user starts it; yields its URL once it serves.

    ``secret`` is its upstream key; it must never show in what the process prints.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "openai_sse",
        "relay",
        "--port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "OPENAI_API_KEY": secret},
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        match = re.search(rb"serving on (http://\S+)", line)
        assert match, line
        url = match.group(1).decode()
        RUNNING[url] = process
        yield url
    finally:
        killed = process.returncode is not None
        if not killed:
            process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), 10)
        assert secret.encode() not in stderr
        assert killed or process.returncode == 0, stderr
