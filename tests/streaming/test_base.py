"""The shared stream lifecycle and fan-out, through a small API of its own over real HTTP.

The "word" API: each ``data:`` is one word; ``event: end`` completes after its hooks ran,
``event: fail`` fails after its hooks ran, ``data: [END]`` completes at once, anything else
at EOF is incomplete. It uses only what an API must implement, so these tests hold for chat
and Responses alike.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import warnings
from collections.abc import Iterable
from typing import Any

import aiohttp
import pytest

from openai_sse import IncompleteStreamError, StreamCancelled, StreamError
from openai_sse.streaming import END, BaseStream, Emission, Fanout, ListenerHookWarning
from openai_sse.transport import EventSource, EventSourceListener, EventSources

from ..servers import LocalServer, hang, sse_response, stalling_after


class WordListener:
    def on_open(self, stream: WordStream) -> Any:
        return None

    def on_word(self, stream: WordStream, word: str) -> Any:
        return None

    def on_closed(self, stream: WordStream, words: list[str]) -> Any:
        return None

    def on_failure(self, stream: WordStream, error: BaseException) -> Any:
        return None


class WordDispatcher(Fanout):
    HOOKS = ("on_open", "on_word", "on_closed", "on_failure")
    LISTENER = WordListener

    def _emissions(self, item: str, context: Any) -> list[Emission]:
        return [("on_word", (item,))] if self._hooks["on_word"] else []


class Words:
    def __init__(self) -> None:
        self.words: list[str] = []

    def add(self, word: str) -> None:
        self.words.append(word)

    @property
    def snapshot(self) -> list[str]:
        return list(self.words)


class WordStream(BaseStream[str, list[str]]):
    DISPATCHER = WordDispatcher
    ACCUMULATOR = Words

    def _decode_event(self, id: str | None, type: str | None, data: str) -> Any:
        return END if data == "[END]" else data

    def _terminal_outcome(self, item: str) -> BaseException | bool | None:
        if item == "end":
            return True
        if item == "fail":
            return StreamError("failed by the server", code="boom")
        return None

    def _on_eof(self) -> BaseException | None:
        return IncompleteStreamError("no end")


class Log(WordListener):
    def __init__(self, name: str, log: list[tuple[str, ...]]) -> None:
        self.name = name
        self.log = log

    def on_open(self, stream: WordStream) -> None:
        assert stream.response is not None
        self.log.append((self.name, "open", str(stream.response.status)))

    async def on_word(self, stream: WordStream, word: str) -> None:
        await asyncio.sleep(0)
        self.log.append((self.name, word))

    def on_closed(self, stream: WordStream, words: list[str]) -> None:
        self.log.append((self.name, "closed", *words))

    def on_failure(self, stream: WordStream, error: BaseException) -> None:
        self.log.append((self.name, "failure", type(error).__name__))


def body(*words: str) -> bytes:
    return b"".join(f"data: {w}\n\n".encode() for w in words)


def start(
    server: LocalServer,
    session: aiohttp.ClientSession,
    *parts: bytes,
    listeners: Iterable[object] = (),
) -> WordStream:
    async def handler(request: Any) -> Any:
        return await sse_response(request, *parts)

    server.route("/words", handler)
    factory = EventSources.create_factory(session)

    def connect(listener: EventSourceListener) -> EventSource:
        return factory.new_event_source(server.url("/words"), listener)

    return WordStream(connect, listeners)


async def test_terminal_item_completes_after_its_hooks(
    server: LocalServer, session: aiohttp.ClientSession
) -> None:
    log: list[tuple[str, ...]] = []
    stream = start(
        server, session, body("a", "b", "end", "ignored"), listeners=[Log("x", log), Log("y", log)]
    )
    assert await stream == ["a", "b", "end"]
    assert log == [
        ("x", "open", "200"),
        ("y", "open", "200"),
        ("x", "a"),
        ("y", "a"),
        ("x", "b"),
        ("y", "b"),
        ("x", "end"),
        ("y", "end"),
        ("x", "closed", "a", "b", "end"),
        ("y", "closed", "a", "b", "end"),
    ]
    assert stream.metrics.chunks == 3
    assert stream.done


async def test_failing_item_fails_after_its_hooks_and_keeps_snapshot(
    server: LocalServer, session: aiohttp.ClientSession
) -> None:
    log: list[tuple[str, ...]] = []
    stream = start(server, session, body("a", "fail", "b"), listeners=[Log("x", log)])
    with pytest.raises(StreamError) as caught:
        await stream
    assert caught.value.code == "boom"
    assert caught.value.snapshot == ["a", "fail"]
    assert caught.value.response is stream.response
    assert log[-2:] == [("x", "fail"), ("x", "failure", "StreamError")]


async def test_end_marker_completes_at_once(
    server: LocalServer, session: aiohttp.ClientSession
) -> None:
    server.route("/words", stalling_after(body("a", "[END]")))
    factory = EventSources.create_factory(session)
    stream = WordStream(lambda listener: factory.new_event_source(server.url("/words"), listener))
    assert await asyncio.wait_for(stream, 5) == ["a"]
    await stream.aclose()
    await asyncio.wait_for(server.disconnected.wait(), 5)


async def test_eof_without_terminal_item_asks_the_api(
    server: LocalServer, session: aiohttp.ClientSession
) -> None:
    stream = start(server, session, body("a"))
    with pytest.raises(IncompleteStreamError, match="no end"):
        await stream
    assert stream.snapshot == ["a"]


async def test_iteration_yields_every_item_then_raises(
    server: LocalServer, session: aiohttp.ClientSession
) -> None:
    stream = start(server, session, body("a", "b", "fail"))
    seen = []

    async def collect() -> None:
        async for word in stream:
            seen.append(word)

    with pytest.raises(StreamError):
        await collect()
    assert seen == ["a", "b", "fail"]
    with pytest.raises(RuntimeError, match="WordStream can be iterated once"):
        async for _ in stream:
            pass


# -- hooks that return awaitables from a plain call ---------------------------------------------


def returns_coroutine(log: list[str], text: str) -> Any:
    async def later() -> None:
        await asyncio.sleep(0)
        log.append(text)

    return later()


async def test_plain_hook_returning_a_coroutine_is_awaited_in_order(
    server: LocalServer, session: aiohttp.ClientSession
) -> None:
    log: list[str] = []

    class Deferred(WordListener):
        def on_word(self, stream: WordStream, word: str) -> Any:
            return returns_coroutine(log, "deferred " + word)

    class Plain(WordListener):
        def on_word(self, stream: WordStream, word: str) -> None:
            log.append("plain " + word)

    stream = start(server, session, body("a", "b", "end"), listeners=[Deferred(), Plain()])
    await stream
    assert log == [
        "deferred a",
        "plain a",
        "deferred b",
        "plain b",
        "deferred end",
        "plain end",
    ]


# -- registration misuse ------------------------------------------------------------------------


async def test_non_listener_is_a_type_error_at_the_call(
    server: LocalServer, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(TypeError, match=r"42 \(int\) is not a listener"):
        start(server, session, body("end"), listeners=[42])
    with pytest.raises(TypeError, match="is a class; register an instance"):
        start(server, session, body("end"), listeners=[Log])
    assert server.requests == []


async def test_listeners_are_served_when_added_at_once_or_failed_before_any_response(
    server: LocalServer, session: aiohttp.ClientSession
) -> None:
    # The dispatcher is made after the request is written, or sooner when something needs it.
    log: list[tuple[str, ...]] = []
    stream = start(server, session, body("a", "end"), listeners=[Log("x", log)])
    stream.add_listener(Log("y", log))
    assert await stream == ["a", "end"]
    assert [entry for entry in log if entry[0] == "y"] == [
        ("y", "open", "200"),
        ("y", "a"),
        ("y", "end"),
        ("y", "closed", "a", "end"),
    ]

    log.clear()
    cancelled = start(server, session, body("a", "end"), listeners=[Log("x", log)])
    cancelled.cancel()  # fails at the source's first step, before the dispatcher's turn
    with pytest.raises(StreamCancelled):
        await cancelled
    assert log == [("x", "failure", "StreamCancelled")]


async def test_misspelled_hook_warns_once_per_class(
    server: LocalServer, session: aiohttp.ClientSession
) -> None:
    class Typo(WordListener):
        def on_wrod(self, stream: WordStream, word: str) -> None:
            pass

        def on_finished_helper(self) -> None:
            pass

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await start(server, session, body("end"), listeners=[Typo()])
        await start(server, session, body("end"), listeners=[Typo()])
    assert [w.category for w in caught] == [ListenerHookWarning]
    message = str(caught[0].message)
    assert "Typo.on_wrod is not a listener hook" in message
    assert "did you mean on_word?" in message


# -- failing listeners --------------------------------------------------------------------------


async def test_repeated_listener_failure_logs_one_traceback_then_a_count(
    server: LocalServer, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(WordListener):
        def on_word(self, stream: WordStream, word: str) -> None:
            raise ValueError(word)

    log: list[tuple[str, ...]] = []
    words = [f"w{i}" for i in range(20)]
    stream = start(server, session, body(*words, "end"), listeners=[Broken(), Log("ok", log)])
    with caplog.at_level(logging.ERROR, logger="openai_sse"):
        assert await stream == [*words, "end"]
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1
    assert "Broken.on_word raised ValueError: w0" in tracebacks[0].getMessage()
    summary = [r.getMessage() for r in caplog.records if "Listener failures" in r.getMessage()]
    assert summary == [
        "Listener failures in this stream: Broken.on_word failed 21 times (last: ValueError: end)"
    ]
    assert len(log) == 1 + 21 + 1  # the healthy listener saw everything


# -- failures nobody retrieved -------------------------------------------------------------------


async def settled(stream: WordStream) -> None:
    await asyncio.wait_for(stream._settled.wait(), 5)


async def test_failure_never_retrieved_is_logged_at_collection(
    server: LocalServer, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    class Quiet(WordListener):
        def on_word(self, stream: WordStream, word: str) -> None:
            pass

    stream = start(server, session, body("a", "fail"), listeners=[Quiet()])
    await settled(stream)
    with caplog.at_level(logging.ERROR, logger="openai_sse"):
        del stream
        gc.collect()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "WordStream failed and the failure was never retrieved (not awaited, not iterated, "
        "no listener with on_failure): StreamError: failed by the server"
    ]


async def test_failure_seen_by_await_listener_or_cancel_is_not_logged_again(
    server: LocalServer, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    class Watcher(WordListener):
        def on_failure(self, stream: WordStream, error: BaseException) -> None:
            pass

    awaited = start(server, session, body("fail"))
    with pytest.raises(StreamError):
        await awaited
    heard = start(server, session, body("fail"), listeners=[Watcher()])
    await settled(heard)
    server.route("/slow", stalling_after())
    factory = EventSources.create_factory(session)
    cancelled = WordStream(lambda listener: factory.new_event_source(server.url("/slow"), listener))
    cancelled.cancel()
    await cancelled.aclose()
    with caplog.at_level(logging.ERROR, logger="openai_sse"):
        del awaited, heard, cancelled
        gc.collect()
    assert caplog.records == []


# -- closing from inside, exactly one terminal call ----------------------------------------------


async def test_aclose_from_inside_a_hook_returns(
    server: LocalServer, session: aiohttp.ClientSession
) -> None:
    log: list[tuple[str, ...]] = []

    class Closer(WordListener):
        async def on_word(self, stream: WordStream, word: str) -> None:
            await asyncio.wait_for(stream.aclose(), 5)

    server.route("/slow", stalling_after(body("a")))
    factory = EventSources.create_factory(session)
    stream = WordStream(
        lambda listener: factory.new_event_source(server.url("/slow"), listener),
        [Closer(), Log("x", log)],
    )
    with pytest.raises(StreamCancelled):
        await asyncio.wait_for(stream, 5)
    assert log[-1] == ("x", "failure", "StreamCancelled")
    await asyncio.wait_for(server.disconnected.wait(), 5)


async def test_every_listener_gets_one_terminal_call_when_one_of_them_is_cancelled(
    server: LocalServer, session: aiohttp.ClientSession
) -> None:
    log: list[tuple[str, ...]] = []
    entered = asyncio.Event()

    class Hangs(WordListener):
        async def on_closed(self, stream: WordStream, words: list[str]) -> None:
            entered.set()
            await hang()

    stream = start(server, session, body("end"), listeners=[Log("a", log), Hangs(), Log("b", log)])
    await asyncio.wait_for(entered.wait(), 5)
    stream._callback_task.cancel()  # type: ignore[union-attr]  # what cancel() does to a hung hook
    assert await asyncio.wait_for(stream, 5) == ["end"]
    assert [e for e in log if e[1] == "closed"] == [("a", "closed", "end"), ("b", "closed", "end")]
