"""The upstream APIs the relay speaks, and how a stored generation starts on each."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol

from ..client import Client

__all__ = ["APIS", "Api", "RunningStream"]


class RunningStream(Protocol):
    """What the relay needs of a chat or responses stream: await it, cancel it."""

    @property
    def done(self) -> bool: ...

    def cancel(self) -> None: ...

    def __await__(self) -> Generator[Any, None, Any]: ...


Start = Callable[[Client, dict[str, Any], list[object]], RunningStream]


@dataclass(frozen=True)
class Api:
    """One upstream endpoint: its path, the fields it requires, how to stream it."""

    name: str
    path: str
    required: tuple[tuple[str, tuple[type, ...]], ...]
    start: Start

    def invalid(self, body: dict[str, Any]) -> tuple[str, str] | None:
        """``(message, param)`` when ``body`` lacks what the upstream will certainly refuse."""
        for field, kind in self.required:
            value = body.get(field)
            if value is None:
                return f"Missing required parameter: '{field}'.", field
            if not isinstance(value, kind):
                names = " or ".join(_JSON_NAMES.get(k, k.__name__) for k in kind)
                return f"Invalid type for '{field}': expected {names}.", field
        return None


def _start_chat(client: Client, body: dict[str, Any], listeners: list[object]) -> RunningStream:
    body = dict(body)
    body.pop("stream", None)
    model, messages = body.pop("model"), body.pop("messages")
    return client.chat.stream(model=model, messages=messages, listeners=listeners, extra_body=body)


def _start_responses(
    client: Client, body: dict[str, Any], listeners: list[object]
) -> RunningStream:
    body = dict(body)
    body.pop("stream", None)
    model, input = body.pop("model"), body.pop("input")
    return client.responses.stream(model=model, input=input, listeners=listeners, extra_body=body)


_JSON_NAMES: dict[type, str] = {str: "a string", list: "an array", dict: "an object"}

APIS: dict[str, Api] = {
    "chat": Api(
        "chat", "chat/completions", (("model", (str,)), ("messages", (list,))), _start_chat
    ),
    "responses": Api(
        "responses", "responses", (("model", (str,)), ("input", (str, list))), _start_responses
    ),
}
