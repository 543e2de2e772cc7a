"""The typing effect: print an answer token by token as it streams, with a ChatListener.

Runs offline against the embedded MockServer:

    python examples/chat_listener.py
    python examples/chat_listener.py "你好"
"""

from __future__ import annotations

import asyncio
import sys

from openai_sse import ChatCompletion, ChatListener, ChatStream, Client
from openai_sse.chat import CompletionUsage
from openai_sse.testing import MockServer


class TypingListener(ChatListener):
    """Writes each piece of the answer the moment it arrives."""

    def on_open(self, stream: ChatStream) -> None:
        response = stream.response
        if response is not None:
            print(f"[HTTP {response.status}, request id {response.headers.get('x-request-id')}]")

    def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
        sys.stdout.write(delta)
        sys.stdout.flush()

    def on_usage(self, stream: ChatStream, usage: CompletionUsage) -> None:
        print(f"\n[{usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens]")

    def on_closed(self, stream: ChatStream, completion: ChatCompletion) -> None:
        print(f"[finished: {completion.choices[0].finish_reason}]")

    def on_failure(self, stream: ChatStream, error: BaseException) -> None:
        print(f"\n[failed: {type(error).__name__}: {error}]")


async def main(prompt: str) -> None:
    async with MockServer(delay=0.02) as server, Client(base_url=server.base_url) as client:
        stream = client.chat.stream(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": prompt}],
            listeners=[TypingListener()],
        )
        completion = await stream  # the whole answer, once [DONE] arrived
        metrics = stream.metrics
        print(f"[{len(completion.choices[0].message.content or '')} characters]")
        print(
            f"[first token after {metrics.time_to_first_token:.3f} s, "
            f"{metrics.chunks} chunks in {metrics.duration:.3f} s]"
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "Hello"))
