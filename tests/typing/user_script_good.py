"""A user's script that must type-check cleanly under mypy --strict (the docs' patterns)."""

from __future__ import annotations

from typing import Any

from openai_sse import ChatCompletion, ChatListener, ChatStream, Client, StreamCancelled
from openai_sse.chat.params import ChatCompletionMessageParam, ChatCompletionToolParam

WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


class Typing(ChatListener):
    def on_content(self, stream: ChatStream, delta: str, index: int) -> None:
        print(delta, end="", flush=True)

    def on_closed(self, stream: ChatStream, completion: ChatCompletion) -> None:
        if completion.usage:
            print(completion.usage.total_tokens, "tokens")


async def main(extra: dict[str, Any]) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
    ]
    async with Client() as client:
        stream = client.chat.stream(
            model="gpt-4o-mini",
            messages=messages,
            listeners=[Typing()],
            temperature=0.2,
            max_completion_tokens=100,
            tools=[WEATHER],
            tool_choice="auto",
            stop=["\n\n"],
            seed=7,
            stream_options={"include_usage": True},
            extra_body={"top_k": 3},
        )
        try:
            completion = await stream
        except StreamCancelled as error:
            partial = stream.snapshot.choices[0].message.content
            if isinstance(error.snapshot, ChatCompletion):
                partial = error.snapshot.choices[0].message.content
            print(partial)
            return
        if completion.usage is not None:
            print(completion.usage.total_tokens)

        answer = await client.chat.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Hi"}],
            response_format={"type": "json_object"},
            **extra,
        )
        print(answer.choices[0].message.content)
