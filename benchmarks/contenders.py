"""The readers the suite compares, each written the way its users typically write it.

A throughput contender streams ``n`` chunks from the benchmark server and returns the number of
chunks it saw and the number of answer characters it accumulated, so every contender is
checked against the same expected values before it is timed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import msgspec

from openai_sse import ChatListener, Client, Timeout

if TYPE_CHECKING:
    from openai_sse.chat.params import ChatCompletionMessageParam

MODEL = "gpt-4.1-nano"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Name a holiday and say why people like it."}
]
BODY = {"model": MODEL, "messages": MESSAGES, "stream": True}


def bench_headers(n: int, mode: str = "fast", **extra: object) -> dict[str, str]:
    headers = {"x-bench-n": str(n), "x-bench-mode": mode}
    headers.update({f"x-bench-{k}": str(v) for k, v in extra.items()})
    return headers


class Contender:
    """One way of reading a stream; ``setup`` once, ``run`` once per round, then ``close``."""

    name = ""
    key = ""
    floor = False

    def __init__(self, base_url: str, text: str = "en") -> None:
        self.base_url = base_url
        self.text = text

    def headers(self, n: int) -> dict[str, str]:
        return bench_headers(n, text=self.text)

    async def setup(self) -> None:
        return None

    async def run(self, n: int) -> tuple[int, int]:
        raise NotImplementedError

    async def close(self) -> None:
        return None


def new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None)
    )


def openai_sse_client(base_url: str) -> Client:
    return Client(api_key="x", base_url=base_url, timeout=Timeout(connect=30.0))


# -- openai_sse -------------------------------------------------------------------------------


class _Collect(ChatListener):
    def __init__(self) -> None:
        self.parts: list[str] = []

    def on_content(self, stream: Any, delta: str, index: int) -> None:
        self.parts.append(delta)


class OpenAISSEListener(Contender):
    name = "openai_sse, ChatListener + await stream"
    key = "openai_sse_listener"

    async def setup(self) -> None:
        self.client = openai_sse_client(self.base_url)

    async def run(self, n: int) -> tuple[int, int]:
        listener = _Collect()
        stream = self.client.chat.stream(
            model=MODEL, messages=MESSAGES, listeners=[listener], extra_headers=self.headers(n)
        )
        completion = await stream
        text = "".join(listener.parts)
        if completion.choices[0].message.content != text:
            raise AssertionError("the final completion differs from the streamed text")
        return stream.metrics.chunks, len(text)

    async def close(self) -> None:
        await self.client.close()


class OpenAISSEIterate(Contender):
    name = "openai_sse, async for chunk in stream"
    key = "openai_sse_iterate"

    async def setup(self) -> None:
        self.client = openai_sse_client(self.base_url)

    async def run(self, n: int) -> tuple[int, int]:
        parts = []
        count = 0
        stream = self.client.chat.stream(
            model=MODEL, messages=MESSAGES, extra_headers=self.headers(n)
        )
        async for chunk in stream:
            count += 1
            if chunk.choices:
                content = chunk.choices[0].delta.content
                if content:
                    parts.append(content)
        return count, len("".join(parts))

    async def close(self) -> None:
        await self.client.close()


# -- the official package ---------------------------------------------------------------------


def official_client(base_url: str, connections: int | None = None) -> Any:
    import openai

    http_client = None
    if connections is not None:
        # The Limits type of the HTTP library this openai release is built on.
        limits = type(openai.DEFAULT_CONNECTION_LIMITS)(
            max_connections=connections, max_keepalive_connections=connections
        )
        http_client = openai.DefaultAsyncHttpxClient(limits=limits)
    return openai.AsyncOpenAI(
        base_url=base_url, api_key="x", max_retries=0, http_client=http_client
    )


class OfficialCreate(Contender):
    name = "openai, create(stream=True)"
    key = "openai_create"

    async def setup(self) -> None:
        self.client = official_client(self.base_url)

    async def run(self, n: int) -> tuple[int, int]:
        parts = []
        count = 0
        stream = await self.client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, extra_headers=self.headers(n)
        )
        async for chunk in stream:
            count += 1
            if chunk.choices:
                content = chunk.choices[0].delta.content
                if content:
                    parts.append(content)
        return count, len("".join(parts))

    async def close(self) -> None:
        await self.client.close()


class OfficialStreamHelper(Contender):
    name = "openai, chat.completions.stream() helper"
    key = "openai_stream_helper"

    async def setup(self) -> None:
        self.client = official_client(self.base_url)

    async def run(self, n: int) -> tuple[int, int]:
        parts = []
        count = 0
        async with self.client.chat.completions.stream(
            model=MODEL, messages=MESSAGES, extra_headers=self.headers(n)
        ) as stream:
            async for event in stream:
                if event.type == "chunk":
                    count += 1
                elif event.type == "content.delta":
                    parts.append(event.delta)
            completion = await stream.get_final_completion()
        text = "".join(parts)
        if (completion.choices[0].message.content or "") != text:
            raise AssertionError("the final completion differs from the streamed text")
        return count, len(text)

    async def close(self) -> None:
        await self.client.close()


# -- httpx-sse --------------------------------------------------------------------------------


class HttpxSSE(Contender):
    name = "httpx-sse + json.loads"
    key = "httpx_sse"

    async def setup(self) -> None:
        import httpx

        self.client = httpx.AsyncClient(timeout=None)

    async def run(self, n: int) -> tuple[int, int]:
        from httpx_sse import aconnect_sse

        parts = []
        count = 0
        async with aconnect_sse(
            self.client,
            "POST",
            f"{self.base_url}/chat/completions",
            json=BODY,
            headers=self.headers(n),
        ) as source:
            async for sse in source.aiter_sse():
                if sse.data == "[DONE]":
                    break
                chunk = json.loads(sse.data)
                count += 1
                choices = chunk.get("choices")
                if choices:
                    content = choices[0].get("delta", {}).get("content")
                    if content:
                        parts.append(content)
        return count, len("".join(parts))

    async def close(self) -> None:
        await self.client.aclose()


# -- floors: aiohttp without an SDK -----------------------------------------------------------


class _AiohttpFloor(Contender):
    """A reader on a bare aiohttp session, without any SDK."""

    floor = True

    async def setup(self) -> None:
        self.session = new_session()

    async def close(self) -> None:
        await self.session.close()


class AiohttpBytes(_AiohttpFloor):
    name = "aiohttp, bytes only (I/O floor)"
    key = "aiohttp_bytes"

    async def run(self, n: int) -> tuple[int, int]:
        size = 0
        async with self.session.post(
            f"{self.base_url}/chat/completions", json=BODY, headers=self.headers(n)
        ) as response:
            async for data in response.content.iter_any():
                size += len(data)
        return size, -1  # body bytes; nothing is parsed


class AiohttpSplit(_AiohttpFloor):
    name = "aiohttp, split on blank line + json.loads"
    key = "aiohttp_split"

    async def run(self, n: int) -> tuple[int, int]:
        parts = []
        count = 0
        rest = b""
        async with self.session.post(
            f"{self.base_url}/chat/completions", json=BODY, headers=self.headers(n)
        ) as response:
            async for data in response.content.iter_any():
                *blocks, rest = (rest + data).split(b"\n\n")
                for block in blocks:
                    if not block.startswith(b"data: "):
                        continue
                    payload = block[6:]
                    if payload == b"[DONE]":
                        break
                    chunk = json.loads(payload)
                    count += 1
                    choices = chunk.get("choices")
                    if choices:
                        content = choices[0].get("delta", {}).get("content")
                        if content:
                            parts.append(content)
        return count, len("".join(parts))


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta = msgspec.field(default_factory=_Delta)


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = []


class MsgspecFloor(_AiohttpFloor):
    """What a hand-written reader at the limit of Python does: split, typed msgspec decode."""

    name = "aiohttp, split on blank line + msgspec typed decode (floor)"
    key = "msgspec_floor"

    async def run(self, n: int) -> tuple[int, int]:
        decode = msgspec.json.Decoder(_Chunk).decode
        parts = []
        count = 0
        rest = b""
        async with self.session.post(
            f"{self.base_url}/chat/completions", json=BODY, headers=self.headers(n)
        ) as response:
            async for data in response.content.iter_any():
                *blocks, rest = (rest + data).split(b"\n\n")
                for block in blocks:
                    payload = block[6:]
                    if payload == b"[DONE]":
                        break
                    chunk = decode(payload)
                    count += 1
                    if chunk.choices:
                        content = chunk.choices[0].delta.content
                        if content:
                            parts.append(content)
        return count, len("".join(parts))


THROUGHPUT: list[type[Contender]] = [
    OpenAISSEListener,
    OpenAISSEIterate,
    OfficialCreate,
    OfficialStreamHelper,
    HttpxSSE,
    AiohttpBytes,
    AiohttpSplit,
    MsgspecFloor,
]


# -- time to first token ----------------------------------------------------------------------

FirstToken = Callable[[int], Awaitable[float]]


class _FirstToken(ChatListener):
    def __init__(self) -> None:
        self.at = 0.0

    def on_content(self, stream: Any, delta: str, index: int) -> None:
        if not self.at:
            self.at = time.perf_counter()


async def first_token_openai_sse(client: Client, n: int) -> float:
    listener = _FirstToken()
    started = time.perf_counter()
    stream = client.chat.stream(
        model=MODEL, messages=MESSAGES, listeners=[listener], extra_headers=bench_headers(n)
    )
    await stream
    return listener.at - started


async def first_token_openai_sse_iter(client: Client, n: int) -> float:
    started = time.perf_counter()
    at = 0.0
    async with client.chat.stream(
        model=MODEL, messages=MESSAGES, extra_headers=bench_headers(n)
    ) as stream:
        async for chunk in stream:
            if not at and chunk.choices and chunk.choices[0].delta.content:
                at = time.perf_counter()
    return at - started


async def first_token_aiohttp(session: aiohttp.ClientSession, url: str, n: int) -> float:
    started = time.perf_counter()
    at = 0.0
    rest = b""
    async with session.post(url, json=BODY, headers=bench_headers(n)) as response:
        async for data in response.content.iter_any():
            if at:
                continue  # read to the end so the connection is reused
            *blocks, rest = (rest + data).split(b"\n\n")
            for block in blocks:
                payload = block[6:]
                if payload == b"[DONE]":
                    break
                choices = json.loads(payload).get("choices")
                if choices and choices[0].get("delta", {}).get("content"):
                    at = time.perf_counter()
                    break
    return at - started


async def first_token_official(client: Any, n: int) -> float:
    started = time.perf_counter()
    at = 0.0
    stream = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, extra_headers=bench_headers(n)
    )
    async for chunk in stream:
        if not at and chunk.choices and chunk.choices[0].delta.content:
            at = time.perf_counter()
    return at - started
