"""The listener tables: which hooks each listener gets, worked out once per class where safe."""

from __future__ import annotations

import types
from typing import Any

from openai_sse import ChatListener
from openai_sse.chat import ChatDispatcher


class Content(ChatListener):
    def on_content(self, stream: Any, delta: str, index: int) -> None:
        pass


class AsyncContent(ChatListener):
    async def on_content(self, stream: Any, delta: str, index: int) -> None:
        pass


def hooked(dispatcher: ChatDispatcher) -> dict[str, list[object]]:
    return {
        name: [listener for listener, _ in calls]
        for name, calls in dispatcher._hooks.items()
        if calls
    }


def test_instances_of_one_class_get_the_same_hooks() -> None:
    a, b = Content(), Content()
    dispatcher = ChatDispatcher(None, [a, b])
    assert hooked(dispatcher) == {"on_content": [a, b]}
    assert not dispatcher._any_async
    again = ChatDispatcher(None, [b])
    assert hooked(again) == {"on_content": [b]}
    assert again._hooks["on_content"][0][1] == b.on_content  # bound to that instance


def test_async_hooks_are_known_per_class() -> None:
    ChatDispatcher(None, [Content()])
    assert ChatDispatcher(None, [AsyncContent()])._any_async
    assert not ChatDispatcher(None, [Content()])._any_async


def test_a_hook_held_by_the_instance_counts_for_that_instance_only() -> None:
    plain = Content()
    ChatDispatcher(None, [plain])  # the class is now known
    special = Content()
    special.on_usage = lambda stream, usage: None  # type: ignore[method-assign]
    dispatcher = ChatDispatcher(None, [special, Content()])
    assert hooked(dispatcher)["on_usage"] == [special]
    assert len(hooked(dispatcher)["on_content"]) == 2
    muted = Content()
    muted.on_content = None  # type: ignore[assignment]
    assert hooked(ChatDispatcher(None, [muted, plain])) == {"on_content": [plain]}


def test_objects_with_hooks_of_their_own_and_dynamic_lookups() -> None:
    seen: list[str] = []
    ns = types.SimpleNamespace(on_content=lambda stream, delta, index: seen.append(delta))
    assert hooked(ChatDispatcher(None, [ns])) == {"on_content": [ns]}

    class Proxy:
        def __init__(self, hooks: dict[str, Any]) -> None:
            self._hooks = hooks

        def on_open(self, stream: Any) -> None:
            pass

        def __getattr__(self, name: str) -> Any:
            try:
                return self._hooks[name]
            except KeyError:
                raise AttributeError(name) from None

    first = Proxy({})
    second = Proxy({"on_usage": lambda stream, usage: None})
    assert hooked(ChatDispatcher(None, [first])) == {"on_open": [first]}
    assert hooked(ChatDispatcher(None, [second])) == {"on_open": [second], "on_usage": [second]}
