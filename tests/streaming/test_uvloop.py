"""The SDK on uvloop's event loop: the relay runs on it when installed, and so may any app.

The transport reaches into aiohttp's protocol (to hear of a connection lost mid-body) and
leans on loop timers and task cancellation; these tests run those paths on a uvloop loop of
their own. CI also runs the streaming and hardening suites whole with ``--uvloop``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
import uvloop

from openai_sse import APIConnectionError, ChatListener, Client, StreamCancelled, Timeout
from openai_sse.testing import MockServer, Reply

T = TypeVar("T")


def on_uvloop(coro: Coroutine[Any, Any, T]) -> T:
    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, 20))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


class Texts(ChatListener):
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.second = asyncio.Event()

    def on_content(self, stream: Any, delta: str, index: int) -> None:
        self.parts.append(delta)
        if len(self.parts) == 2:
            self.second.set()


def test_a_stream_completes_and_a_cancel_reaches_the_server_on_uvloop() -> None:
    async def scenario() -> None:
        assert "uvloop" in type(asyncio.get_running_loop()).__module__
        async with (
            MockServer(delay=0) as server,
            Client("sk-test", base_url=server.base_url, max_retries=0) as client,
        ):
            server.enqueue(Reply(["Hel", "lo", " 你好"]))
            texts = Texts()
            stream = client.chat.stream(
                model="m", messages=[{"role": "user", "content": "hi"}], listeners=[texts]
            )
            completion = await stream
            assert "".join(texts.parts) == "Hello 你好"
            assert completion.choices[0].message.content == "Hello 你好"

        async with (
            MockServer(delay=0.05) as server,
            Client("sk-test", base_url=server.base_url, max_retries=0) as client,
        ):
            server.enqueue(Reply([f"t{i} " for i in range(200)]))
            texts = Texts()
            stream = client.chat.stream(
                model="m", messages=[{"role": "user", "content": "hi"}], listeners=[texts]
            )
            await texts.second.wait()
            stream.cancel()
            with pytest.raises(StreamCancelled):
                await stream
            assert stream.snapshot.choices[0].message.content == "t0 t1 "
            await server.wait_disconnect(timeout=5)

    on_uvloop(scenario())


def test_a_broken_chunk_size_fails_the_read_at_once_on_uvloop() -> None:
    """aiohttp drops the connection without telling the body reader; the hook must work."""

    def chunk(data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data)

    event = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"ok"}}]}\n\n'
    )
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )

    async def scenario() -> None:
        first = asyncio.Event()

        async def raw(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head + chunk(event))
            await first.wait()
            writer.write(b"zz\r\nxx\r\n")
            await reader.read()
            writer.close()

        class First(Texts):
            def on_content(self, stream: Any, delta: str, index: int) -> None:
                super().on_content(stream, delta, index)
                first.set()

        server = await asyncio.start_server(raw, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with Client(
                "sk-test",
                base_url=f"http://127.0.0.1:{port}/v1",
                max_retries=0,
                timeout=Timeout(idle=30),
            ) as client:
                texts = First()
                stream = client.chat.stream(
                    model="m", messages=[{"role": "user", "content": "hi"}], listeners=[texts]
                )
                with pytest.raises(APIConnectionError, match="connection broke"):
                    await asyncio.wait_for(stream, 3)
                assert texts.parts == ["ok"]
                assert stream.snapshot.choices[0].message.content == "ok"
        finally:
            server.close()
            await server.wait_closed()

    on_uvloop(scenario())
