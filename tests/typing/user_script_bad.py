"""Mistakes mypy --strict must report; each marked line names the expected error."""

from __future__ import annotations

from openai_sse import Client
from openai_sse.chat.params import ChatCompletionMessageParam

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


async def main() -> None:
    async with Client() as client:
        await client.chat.create(model="m", messages=HI, temprature=0.2)  # error: "temprature"
        client.chat.stream(model="m", messages=HI, max_tokens="5")  # error: Argument "max_tokens"
        client.chat.stream(model="m", messages="hi")  # error: Argument "messages"
        usr = [{"role": "usr", "content": "hi"}]
        client.chat.stream(model="m", messages=usr)  # error: Argument "messages"
        client.chat.stream(model="m", messages=HI, tool_choice="always")  # error: "tool_choice"
        completion = await client.chat.create(model="m", messages=HI)
        print(completion.usage.total_tokens)  # error: Item "None" of "CompletionUsage | None"
