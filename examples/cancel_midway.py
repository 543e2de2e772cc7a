"""Stop an answer halfway, three ways, and keep what had arrived.

Runs offline against the embedded MockServer:  python examples/cancel_midway.py
"""

from __future__ import annotations

import asyncio

from openai_sse import ChatListener, ChatStream, Client, StreamCancelled
from openai_sse.chat.params import ChatCompletionMessageParam
from openai_sse.testing import MockServer

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Tell me about server-sent events"}
]


class Printer(ChatListener):
    """Prints the answer as it streams and stops it after ``limit`` pieces, if given."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.pieces = 0

    def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
        print(delta, end="", flush=True)
        self.pieces += 1
        if self.pieces == self.limit:
            stream.cancel()  # from inside a hook: no later chunk is delivered

    def on_failure(self, stream: ChatStream, error: BaseException) -> None:
        print(f"\n  on_failure({type(error).__name__})")


async def main() -> None:
    async with MockServer(delay=0.01) as server, Client(base_url=server.base_url) as client:
        print("1. stream.cancel() from a listener, after 8 pieces")
        stream = client.chat.stream(model="gpt-4o-mini", messages=MESSAGES, listeners=[Printer(8)])
        try:
            await stream
        except StreamCancelled:
            partial = stream.snapshot.choices[0].message.content  # also error.snapshot
            print(f"  await raised StreamCancelled; partial answer: {partial!r}")
        await server.wait_disconnect(count=1)
        print("  the server saw the client disconnect")

        print("2. stream.cancel() from another task")
        stream = client.chat.stream(model="gpt-4o-mini", messages=MESSAGES, listeners=[Printer()])
        asyncio.get_running_loop().call_later(0.1, stream.cancel)
        try:
            await stream
        except StreamCancelled:
            print(f"  snapshot: {stream.snapshot.choices[0].message.content!r}")

        print("3. Cancelling the task that awaits the stream (here: a deadline)")
        stream = client.chat.stream(model="gpt-4o-mini", messages=MESSAGES, listeners=[Printer()])
        try:
            await asyncio.wait_for(stream, timeout=0.1)
        except asyncio.TimeoutError:
            print(f"  timed out; stream.done={stream.done}")
            print(f"  snapshot: {stream.snapshot.choices[0].message.content!r}")
        await server.wait_disconnect(count=3)
        print(f"  disconnects seen by the server: {server.disconnects}")


if __name__ == "__main__":
    asyncio.run(main())
