"""Fan-out: one decoded event becomes hook calls on every registered listener, in order.

Written once for every API. A subclass (``ChatDispatcher``, the Responses dispatcher) names
its hooks in :attr:`Fanout.HOOKS` (adding a hook is one entry there plus a no-op method on
its listener class) and turns one decoded event into ``(hook name, arguments)`` pairs in
:meth:`Fanout._emissions`. The fan-out never calls back into the stream: it only passes the
stream to the hooks as their first argument.

Per hook the fan-out keeps only the listeners that override it, so a listener interested in
content costs nothing for the hooks it ignores; while no registered hook is ``async def`` the
fan-out runs without creating a coroutine per event, and a plain call that returns an
awaitable anyway (an ``async def`` behind a decorator, a ``def`` returning a coroutine) is
awaited before the next call.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import warnings
import weakref
from collections.abc import Awaitable, Callable, Iterable, KeysView, Sequence
from types import FunctionType
from typing import Any, ClassVar, Final

__all__ = ["TERMINAL_HOOKS", "Emission", "Fanout", "ListenerHookWarning"]

logger = logging.getLogger("openai_sse")

Emission = tuple[str, tuple[Any, ...]]
"""One hook call for every listener that has the hook: its name and the arguments after the
stream."""

_Call = tuple[object, Callable[..., Any]]  # (listener, bound hook)
_Batch = tuple[str, tuple[Any, ...], Sequence[_Call]]
_NO_CALLS: tuple[_Call, ...] = ()

TERMINAL_HOOKS: Final = ("on_closed", "on_failure")

# Every hook name of every API, for the spelling check (one listener may watch several APIs).
_KNOWN_HOOKS: set[str] = set()


class ListenerHookWarning(UserWarning):
    """A listener's method is named almost like a hook: probably a misspelling that never runs."""


class Fanout:
    """Listener tables and the calls made on them.

    Listeners are called in registration order, each awaited before the next. A listener that
    raises is logged (with its class name and hook; the traceback of the first failure only,
    then a count reported in one line when the stream ends) and does not disturb the others,
    unless it sets ``raise_errors = True``: then the exception propagates, which fails the
    stream. Each listener registered when the stream ends gets exactly one terminal call.

    Subclasses set :attr:`HOOKS` and :attr:`LISTENER` and implement :meth:`_emissions`; they
    may override :meth:`dispatch` for a faster path (it must call hooks the same way) and
    :meth:`_rebuilt` to precompute flags from the tables.
    """

    HOOKS: ClassVar[tuple[str, ...]] = ("on_open", "on_closed", "on_failure")
    """Every hook this API calls; the terminal ones are ``on_closed`` and ``on_failure``."""

    LISTENER: ClassVar[type] = object
    """The API's listener base class: its inherited no-op hooks are not called at all."""

    # Every hook with no calls: the table each stream's dispatcher starts from.
    _no_hooks: ClassVar[dict[str, Sequence[_Call]]] = dict.fromkeys(HOOKS, _NO_CALLS)

    # Listener class -> why it cannot be registered (None: it can); checked once per class.
    _verdicts: ClassVar[weakref.WeakKeyDictionary[type, str | None]] = weakref.WeakKeyDictionary()
    # Listener class -> the hooks it overrides, each with whether it is a non-terminal
    # ``async def``; None when its instances may differ (see _overridden).
    _overrides: ClassVar[weakref.WeakKeyDictionary[type, tuple[tuple[str, bool], ...] | None]] = (
        weakref.WeakKeyDictionary()
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _KNOWN_HOOKS.update(cls.HOOKS)
        cls._no_hooks = dict.fromkeys(cls.HOOKS, _NO_CALLS)
        cls._verdicts = weakref.WeakKeyDictionary()
        cls._overrides = weakref.WeakKeyDictionary()

    def __init__(self, stream: object, listeners: Iterable[object] = ()) -> None:
        self.stream = stream
        self._hooks: dict[str, Sequence[_Call]]  # set by _rebuild below
        self._wanted: KeysView[str]  # the hooks some listener overrides
        self._any_async = False
        # (id(listener), hook) -> [listener, failure count, last failure as text]
        self._failures: dict[tuple[int, str], list[Any]] = {}
        self._listeners: list[object] = self.checked(listeners)
        self._rebuild()  # once for all of them

    @classmethod
    def checked(cls, listeners: Iterable[object]) -> list[object]:
        """``listeners`` in order without repeats, each checked as :meth:`add_listener` does."""
        out: list[object] = []
        for listener in listeners:
            if listener not in out:
                cls._check(listener)
                out.append(listener)
        return out

    # -- registration ---------------------------------------------------------------------

    @property
    def listeners(self) -> tuple[object, ...]:
        return tuple(self._listeners)

    def add_listener(self, listener: object) -> None:
        """Register ``listener`` (an instance of the API's listener class, or any object with
        some of its hooks). Safe while streaming: it receives events from the next one on.

        Raises :class:`TypeError` for an object with none of the hooks (``listeners=[42]``) or
        a class passed instead of an instance or a hook that cannot take this API's arguments
        (``on_open(self, stream, response)``), and warns (:class:`ListenerHookWarning`, once
        per class) about a method named almost like a hook (``on_contnet``).
        """
        if listener in self._listeners:
            return
        self._check(listener)
        self._listeners.append(listener)
        self._rebuild()

    def remove_listener(self, listener: object) -> None:
        """Unregister ``listener``; it receives nothing more, not even a terminal call."""
        if listener in self._listeners:
            self._listeners.remove(listener)
            self._rebuild()

    def listening(self, hook: str) -> bool:
        """Whether any registered listener overrides ``hook``."""
        return bool(self._hooks[hook])

    @classmethod
    def _check(cls, listener: object) -> None:
        hooks = cls.HOOKS
        if isinstance(listener, type):
            raise TypeError(
                f"{listener.__qualname__} is a class; register an instance of it "
                f"({listener.__qualname__}(...))."
            )
        if not isinstance(listener, cls.LISTENER) and not any(
            callable(getattr(listener, name, None)) for name in hooks
        ):
            raise TypeError(
                f"{listener!r} ({type(listener).__qualname__}) is not a listener: it has none "
                f"of the hooks {', '.join(hooks)}."
            )
        kind = type(listener)
        problem = cls._verdicts.get(kind, "")  # "" for a class not seen yet: a problem has text
        if problem == "":
            problem = cls._verdicts[kind] = cls._signature_problem(listener)
            cls._warn_misspelled(kind)
        if problem is not None:
            raise TypeError(problem)

    @classmethod
    def _signature_problem(cls, listener: object) -> str | None:
        """A hook that cannot take the arguments this API passes would fail on every call."""
        base = cls.LISTENER
        for name in cls.HOOKS:
            expected = getattr(base, name, None)
            method = getattr(listener, name, None)
            if expected is None or method is None:
                continue
            if getattr(method, "__func__", None) is expected:
                continue
            try:
                params = list(inspect.signature(expected).parameters)[1:]  # after self
                inspect.signature(method).bind(*params)
            except ValueError:
                continue  # no signature to read (a builtin): trust it
            except TypeError:
                hint = " (the response is stream.response)" if name == "on_open" else ""
                return (
                    f"{type(listener).__qualname__}.{name} cannot be called as "
                    f"{name}({', '.join(params)}), the way {base.__name__} defines it{hint}."
                )
        return None

    @classmethod
    def _warn_misspelled(cls, kind: type) -> None:
        known = _KNOWN_HOOKS | set(cls.HOOKS)
        for name in dir(kind):
            if name in known or name.startswith("_") or not name.lower().startswith("on"):
                continue
            if not callable(getattr(kind, name, None)):
                continue
            import difflib  # only for a method that looks like a hook, so imported here

            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
            if close:
                warnings.warn(
                    f"{kind.__qualname__}.{name} is not a listener hook and will never be "
                    f"called; did you mean {close[0]}?",
                    ListenerHookWarning,
                    stacklevel=_user_stacklevel(),
                )

    def _rebuild(self) -> None:
        wanted: dict[str, list[_Call]] = {}
        any_async = False
        for listener in self._listeners:
            for name, is_async in self._overridden(listener):
                wanted.setdefault(name, []).append((listener, getattr(listener, name)))
                any_async = any_async or is_async
        # Hooks nobody overrides share one empty tuple: a stream is built per request.
        hooks = self._no_hooks.copy()
        hooks.update(wanted)
        self._hooks = hooks
        self._wanted = wanted.keys()
        self._any_async = any_async
        self._rebuilt()

    def _overridden(self, listener: object) -> tuple[tuple[str, bool], ...]:
        """The hooks ``listener`` overrides (not the base class's no-ops), each with whether
        it is a non-terminal ``async def``: worked out once per class, as every instance of a
        class with plain methods (and no hook in the instance itself) has the same ones."""
        cls = type(listener)
        overrides = type(self)._overrides
        plain = _plain_instance(listener, self.HOOKS)
        cached = overrides.get(cls)
        if cached is not None and plain:
            return cached
        found = self._inspect_hooks(listener)
        if plain and _plain_class(cls, found):
            overrides[cls] = found
        return found

    def _inspect_hooks(self, listener: object) -> tuple[tuple[str, bool], ...]:
        base = self.LISTENER
        found = []
        for name in self.HOOKS:
            method = getattr(listener, name, None)
            if method is None:
                continue
            func = getattr(method, "__func__", None)
            if func is not None and func is getattr(base, name, None):
                continue  # the inherited no-op
            found.append((name, name not in TERMINAL_HOOKS and inspect.iscoroutinefunction(method)))
        return tuple(found)

    def _rebuilt(self) -> None:
        """Called after every change of the tables; precompute per-API flags here."""

    # -- what the stream calls ------------------------------------------------------------

    def dispatch(self, item: Any, context: Any) -> Awaitable[None] | None:
        """Call the hooks for one decoded event; an awaitable when a hook must be awaited."""
        return self.emit(self._emissions(item, context))

    def _emissions(self, item: Any, context: Any) -> list[Emission]:
        """The hook calls one decoded ``item`` makes, in order; ``context`` is what the
        stream's accumulator returned for it (chat: the tool calls it completed).

        Only hooks some listener overrides need an entry; the list may be empty."""
        raise NotImplementedError

    def open(self) -> Awaitable[None] | None:
        """``on_open(stream)``: the first response of the stream arrived."""
        if not self._hooks["on_open"]:
            return None
        return self.emit([("on_open", ())])

    def emit(self, emissions: list[Emission]) -> Awaitable[None] | None:
        """Make the calls; None when all of them completed synchronously."""
        if not emissions:
            return None
        hooks = self._hooks
        if self._any_async:
            return self._run(None, [(name, args, hooks[name]) for name, args in emissions])
        stream = self.stream
        for i, (name, args) in enumerate(emissions):
            for listener, method in hooks[name]:
                try:
                    result = method(stream, *args)
                except Exception as exc:
                    self._listener_failed(listener, name, exc)
                    continue
                if result is not None and inspect.isawaitable(result):
                    return self._resume(result, listener, name, args, emissions[i + 1 :])
        return None

    def _resume(
        self,
        result: Awaitable[Any],
        listener: object,
        name: str,
        args: tuple[Any, ...],
        rest: list[Emission],
    ) -> Awaitable[None]:
        """A plain call returned an awaitable: await it, then make the calls after it."""
        hooks = self._hooks
        calls = hooks[name]
        after = next(i for i, (other, _) in enumerate(calls) if other is listener) + 1
        batches = [(name, args, calls[after:])]
        batches.extend((n, a, hooks[n]) for n, a in rest)
        return self._run((listener, name, result), batches)

    async def _run(
        self, pending: tuple[object, str, Awaitable[Any]] | None, batches: list[_Batch]
    ) -> None:
        if pending is not None:
            listener, name, result = pending
            try:
                await result
            except Exception as exc:
                self._listener_failed(listener, name, exc)
        stream = self.stream
        for name, args, calls in batches:
            for listener, method in calls:
                try:
                    result = method(stream, *args)
                    if result is not None and inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    self._listener_failed(listener, name, exc)

    async def terminal(self, name: str, arg: Any) -> None:
        """``on_closed(stream, result)`` or ``on_failure(stream, error)``: exactly one call per
        listener registered now, each listener reached even when one before it raises or is
        cancelled (a cancellation is re-raised once every listener was called). What a
        terminal hook raises is only logged. Then the count of failures that were not logged
        one by one is reported."""
        stream = self.stream
        cancelled: BaseException | None = None
        for listener, method in list(self._hooks[name]):
            try:
                result = method(stream, arg)
                if result is not None and inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError as exc:
                cancelled = exc
                logger.warning(
                    "Listener %s.%s was cancelled before it returned",
                    type(listener).__name__,
                    name,
                )
            except Exception:
                logger.exception("Listener %s.%s raised", type(listener).__name__, name)
        self._report_failures()
        if cancelled is not None:
            raise cancelled

    # -- failures -------------------------------------------------------------------------

    def _listener_failed(self, listener: object, hook: str, exc: Exception) -> None:
        if getattr(listener, "raise_errors", False):
            raise exc
        key = (id(listener), hook)
        seen = self._failures.get(key)
        if seen is not None:
            seen[1] += 1
            seen[2] = f"{type(exc).__name__}: {exc}"
            return
        self._failures[key] = [listener, 1, f"{type(exc).__name__}: {exc}"]
        logger.error(
            "Listener %s.%s raised %s: %s; the stream goes on (further failures of this hook "
            "are counted and reported when the stream ends)",
            type(listener).__name__,
            hook,
            type(exc).__name__,
            exc,
            exc_info=exc,
        )

    def _report_failures(self) -> None:
        repeated = [
            f"{type(listener).__name__}.{hook} failed {count} times (last: {last})"
            for (_, hook), (listener, count, last) in self._failures.items()
            if count > 1
        ]
        self._failures.clear()
        if repeated:
            logger.error("Listener failures in this stream: %s", "; ".join(repeated))


def _plain_class(cls: type, hooks: tuple[tuple[str, bool], ...]) -> bool:
    """Whether every instance of ``cls`` gets the same hooks: each one a function defined on
    the class, and no attribute lookup of its own."""
    # getattr: mypy reads cls.__getattribute__ as the metaclass's and refuses the comparison
    own_lookup = getattr(cls, "__getattribute__") is not object.__getattribute__  # noqa: B009
    if own_lookup or hasattr(cls, "__getattr__"):
        return False
    return all(isinstance(getattr(cls, name, None), FunctionType) for name, _ in hooks)


def _plain_instance(listener: object, names: tuple[str, ...]) -> bool:
    """Whether ``listener`` holds no hook of its own (in its ``__dict__``)."""
    own = getattr(listener, "__dict__", None)
    return not own or own.keys().isdisjoint(names)


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside this package."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        "openai_sse."
    ):
        frame = frame.f_back
        level += 1
    return level
