"""Structured output parsed while it streams: partial values as they grow, validated at the end.

``client.chat.stream(..., response_format=Model)`` with ``Model`` a msgspec ``Struct``, a
pydantic model or a JSON-schema dict sends the matching ``response_format`` and registers a
:class:`StructuredOutput` listener ahead of the caller's. It feeds each content delta and each
tool-call argument fragment to a :class:`~openai_sse.listeners.PartialJSONParser` (each delta
read once), calls ``on_partial_content(stream, value, index)`` and ``on_partial_arguments(stream,
tool_call, value, index)`` on every listener when a value grew, and when a choice finishes
validates it: ``completion.choices[i].message.parsed`` and
``message.tool_calls[j].function.parsed_arguments`` hold the results, the original text stays in
``content`` / ``arguments``. Invalid JSON or a failed validation fails the stream with
:class:`StructuredOutputError`. A refusal leaves ``parsed`` at None and is not an error.

Tools may be given as classes too (``tools=[GetWeather]``): each becomes a strict function
tool named after the class, and its calls' arguments are validated into it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Final

import msgspec

from ..chat.listener import wants_partial
from ..errors import ProtocolError
from .partial_json import PartialJSONError, PartialJSONParser

__all__ = [
    "OutputType",
    "PartialToolCall",
    "StructuredOutput",
    "StructuredOutputError",
    "structured_output",
]

logger = logging.getLogger("openai_sse")

_RESPONSE_FORMAT_TYPES: Final = ("text", "json_object", "json_schema")
_NAME_CHARS: Final = re.compile(r"[^a-zA-Z0-9_-]")


class StructuredOutputError(ProtocolError):
    """The streamed JSON was invalid, incomplete, or failed validation.

    ``text`` is the content (or the tool call's arguments) as received, ``index`` the choice;
    ``tool_call`` is the :class:`PartialToolCall` when arguments failed, else None.
    ``snapshot`` (set when the error ends the stream) is the completion as far as it came.
    """

    def __init__(
        self,
        message: str,
        *,
        text: str,
        index: int,
        tool_call: PartialToolCall | None = None,
    ) -> None:
        super().__init__(message)
        self.text = text
        self.index = index
        self.tool_call = tool_call


class OutputType:
    """How one target (msgspec Struct, pydantic model or JSON-schema dict) is described to
    the API and how a parsed value is validated into it."""

    __slots__ = ("_validate", "name", "schema", "target")

    def __init__(self, target: Any) -> None:
        self.target = target
        if isinstance(target, Mapping):
            self.schema: dict[str, Any] = dict(target)
            title = target.get("title")
            self.name = _name(title if isinstance(title, str) else "response")
            self._validate: Callable[[Any], Any] | None = None
        elif isinstance(target, type) and issubclass(target, msgspec.Struct):
            self.schema = _strict(_inline_root(msgspec.json.schema(target)))
            self.name = _name(target.__name__)
            self._validate = lambda value: msgspec.convert(value, target)
        elif isinstance(target, type) and callable(getattr(target, "model_json_schema", None)):
            self.schema = _strict(_inline_root(target.model_json_schema()))  # type: ignore[attr-defined]
            self.name = _name(target.__name__)
            self._validate = target.model_validate  # type: ignore[attr-defined]
        else:
            raise TypeError(
                "response_format and tool classes must be a msgspec Struct, a pydantic model, a "
                f"JSON-schema dict or a response_format dict, not {target!r}"
            )

    def response_format(self) -> dict[str, Any]:
        return {
            "type": "json_schema",
            "json_schema": {"name": self.name, "schema": self.schema, "strict": True},
        }

    def function_tool(self) -> dict[str, Any]:
        function: dict[str, Any] = {"name": self.name, "parameters": self.schema, "strict": True}
        doc = getattr(self.target, "__doc__", None)
        if isinstance(doc, str) and doc.strip() and isinstance(self.target, type):
            function["description"] = doc.strip()
        return {"type": "function", "function": function}

    def validate(self, value: Any) -> Any:
        """The value as the target type; a plain JSON value for a schema dict."""
        return value if self._validate is None else self._validate(value)


class PartialToolCall:
    """A tool call while its arguments stream: ``id``, ``name`` and the call's ``index``."""

    __slots__ = ("_parser", "closed", "id", "index", "name", "parsed")

    def __init__(self, index: int, id: str | None, name: str | None) -> None:
        self.index = index
        self.id = id
        self.name = name
        self._parser = PartialJSONParser()
        self.parsed: Any = None
        self.closed = False

    @property
    def arguments(self) -> str:
        """The argument text so far (joined on access)."""
        return self._parser.text

    def __repr__(self) -> str:
        return f"PartialToolCall(index={self.index}, id={self.id!r}, name={self.name!r})"


class _Choice:
    __slots__ = ("by_index", "content", "done", "parsed", "tools", "tools_reported")

    def __init__(self) -> None:
        self.content: PartialJSONParser | None = None
        self.parsed: Any = None
        self.done = False
        self.tools: list[PartialToolCall] = []
        self.by_index: dict[int, PartialToolCall] = {}
        self.tools_reported = 0  # how many of ``tools`` on_tool_call has seen


class StructuredOutput:
    """The listener behind ``response_format=Model``; register it before the others.

    ``content`` is the content's :class:`OutputType` (None: content is not parsed); ``tools``
    maps tool names to theirs (calls of other tools parse to plain JSON values).

    A choice is validated when its finish reason arrives, and a failure then fails the stream.
    A server that ends with ``[DONE]`` without finish reasons gets its choices validated at
    ``[DONE]`` (:meth:`end`, called by the stream), with the same outcome. Registered by hand
    on a stream that does not call :meth:`end`, such choices are validated in ``on_closed``,
    when the outcome is already decided: a failure there is logged and leaves ``parsed`` at None.
    """

    raise_errors: ClassVar[bool] = True  # a parse or validation failure fails the stream

    def __init__(
        self, content: OutputType | None = None, tools: Mapping[str, OutputType] | None = None
    ) -> None:
        self._content = content
        self._parse_content = content is not None
        self._tools = dict(tools or {})
        self._choices: dict[int, _Choice] = {}

    @classmethod
    def json(cls, tools: Mapping[str, OutputType] | None = None) -> StructuredOutput:
        """Content parsed as plain JSON (``response_format`` given as a dict)."""
        listener = cls(None, tools)
        listener._parse_content = True
        return listener

    # -- hooks ----------------------------------------------------------------------------

    def on_chunk(self, stream: Any, chunk: Any) -> Any:
        dispatcher = stream.dispatcher
        emissions: list[tuple[str, tuple[Any, ...]]] = []
        wants_content = dispatcher.listening("on_partial_content")
        wants_arguments = dispatcher.listening("on_partial_arguments")
        for choice in chunk.choices:
            index = choice.index
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = _Choice()
            delta = choice.delta
            text = delta.content
            if text and self._parse_content:
                parser = state.content
                if parser is None:
                    parser = state.content = PartialJSONParser()
                try:
                    grew = parser.feed(text)
                except PartialJSONError as exc:
                    raise _content_error(exc, parser, index) from exc
                if grew and wants_content:
                    emissions.append(("on_partial_content", (parser.value, index)))
            if delta.tool_calls:
                for fragment in delta.tool_calls:
                    call = self._tool_call(state, fragment)
                    function = fragment.function
                    arguments = None if function is None else function.arguments
                    if arguments:
                        parser = call._parser
                        try:
                            grew = parser.feed(arguments)
                        except PartialJSONError as exc:
                            raise _arguments_error(exc, call, index) from exc
                        if grew and wants_arguments:
                            emissions.append(("on_partial_arguments", (call, parser.value, index)))
            if choice.finish_reason:
                self._finish(state, index, choice.finish_reason)
        return dispatcher.emit(emissions) if emissions else None

    def on_tool_call(self, stream: Any, tool_call: Any, index: int) -> None:
        """A call is complete: validate its arguments, ahead of the caller's listeners."""
        state = self._choices.get(index)
        if state is None or state.tools_reported >= len(state.tools):
            return
        call = state.tools[state.tools_reported]  # calls complete in the order they began
        state.tools_reported += 1
        if not call.closed:
            self._close_tool(call, index)
        tool_call.function.__dict__["parsed_arguments"] = call.parsed

    def end(self) -> None:
        """``[DONE]`` arrived: validate every choice that has no finish reason yet; a
        :class:`StructuredOutputError` raised here fails the stream instead of completing it."""
        for index, state in self._choices.items():
            if not state.done:
                self._finish(state, index, None)

    def on_closed(self, stream: Any, completion: Any) -> None:
        for choice in completion.choices:
            state = self._choices.get(choice.index)
            if state is None:
                continue
            if not state.done:  # [DONE] without a finish reason: validate what came
                try:
                    self._finish(state, choice.index, None)
                except StructuredOutputError as exc:
                    logger.warning("Structured output of choice %d: %s", choice.index, exc)
                    continue
            message = choice.message
            message.__dict__["parsed"] = state.parsed
            for call, final in zip(state.tools, message.tool_calls or (), strict=False):
                final.function.__dict__["parsed_arguments"] = call.parsed

    def complete(self, completion: Any) -> None:
        """A completion that was not streamed (``chat.create``): parse and validate it whole."""
        for choice in completion.choices:
            message = choice.message
            state = self._choices[choice.index] = _Choice()
            if self._parse_content and message.content:
                state.content = PartialJSONParser()
                try:
                    state.content.feed(message.content)
                except PartialJSONError as exc:
                    raise _content_error(exc, state.content, choice.index) from exc
            for position, call in enumerate(message.tool_calls or ()):
                partial = PartialToolCall(position, call.id, call.function.name)
                state.tools.append(partial)
                try:
                    partial._parser.feed(call.function.arguments)
                except PartialJSONError as exc:
                    raise _arguments_error(exc, partial, choice.index) from exc
            self._finish(state, choice.index, choice.finish_reason)
        self.on_closed(None, completion)

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _tool_call(state: _Choice, fragment: Any) -> PartialToolCall:
        """The call a fragment belongs to, matched as the accumulator matches them."""
        call = state.by_index.get(fragment.index)
        if call is None or (fragment.id and call.id and fragment.id != call.id):
            function = fragment.function
            call = PartialToolCall(
                fragment.index, fragment.id, None if function is None else function.name
            )
            state.by_index[fragment.index] = call
            state.tools.append(call)
        else:
            if fragment.id and not call.id:
                call.id = fragment.id
            function = fragment.function
            if function is not None and function.name and not call.name:
                call.name = function.name
        return call

    def _finish(self, state: _Choice, index: int, finish_reason: str | None) -> None:
        state.done = True
        parser = state.content
        if parser is not None:
            try:
                value = parser.end()
            except PartialJSONError as exc:
                raise _content_error(exc, parser, index, finish_reason) from exc
            content = self._content
            if content is not None:
                try:
                    value = content.validate(value)
                except (msgspec.ValidationError, ValueError, TypeError) as exc:
                    raise StructuredOutputError(
                        f"Choice {index}: the answer does not validate as "
                        f"{_label(content.target)}: {exc}",
                        text=parser.text,
                        index=index,
                    ) from exc
            state.parsed = value
        for call in state.tools:
            if not call.closed:
                self._close_tool(call, index)

    def _close_tool(self, call: PartialToolCall, index: int) -> None:
        call.closed = True
        parser = call._parser
        if not parser.has_value and not parser.text.strip():
            call.parsed = {}  # a call without arguments
            return
        try:
            value = parser.end()
        except PartialJSONError as exc:
            raise _arguments_error(exc, call, index) from exc
        target = self._tools.get(call.name or "")
        if target is not None:
            try:
                value = target.validate(value)
            except (msgspec.ValidationError, ValueError, TypeError) as exc:
                raise StructuredOutputError(
                    f"Choice {index}: the arguments of tool call {call.name!r} do not validate "
                    f"as {_label(target.target)}: {exc}",
                    text=parser.text,
                    index=index,
                    tool_call=call,
                ) from exc
        call.parsed = value


def structured_output(body: dict[str, Any], listeners: Iterable[object]) -> StructuredOutput | None:
    """Prepare a chat request ``body`` for structured output; the listener to register, if any.

    Replaces a model class or JSON-schema dict in ``response_format`` with the API's
    ``json_schema`` form and tool classes in ``tools`` with function tools. Returns None (and
    leaves ``body`` alone) when nothing asks for parsing: no model, schema or ``json_schema`` /
    ``json_object`` response format, no tool class, and no listener with a partial-value hook.
    """
    response_format = body.get("response_format")
    tools = body.get("tools")
    content: OutputType | None = None
    parse_content = False
    if response_format is not None:
        if isinstance(response_format, Mapping) and response_format.get("type") in (
            _RESPONSE_FORMAT_TYPES
        ):
            parse_content = response_format["type"] != "text"
        else:
            content = OutputType(response_format)
            body["response_format"] = content.response_format()
            parse_content = True
    targets: dict[str, OutputType] = {}
    if tools is not None:
        converted = []
        for tool in tools:
            if isinstance(tool, Mapping):
                converted.append(tool)
            else:
                target = OutputType(tool)
                targets[target.name] = target
                converted.append(target.function_tool())
        body["tools"] = converted
    if not parse_content and not targets and not wants_partial(listeners):
        return None
    if content is not None:
        return StructuredOutput(content, targets)
    return StructuredOutput.json(targets) if parse_content else StructuredOutput(None, targets)


def _content_error(
    exc: PartialJSONError, parser: PartialJSONParser, index: int, finish_reason: str | None = None
) -> StructuredOutputError:
    reason = ""
    if finish_reason not in (None, "stop"):
        reason = f" (finish_reason={finish_reason!r}: the answer was cut off)"
    return StructuredOutputError(
        f"Choice {index}: the answer is not valid JSON{reason}: {exc}",
        text=exc.text,
        index=index,
    )


def _arguments_error(
    exc: PartialJSONError, call: PartialToolCall, index: int
) -> StructuredOutputError:
    return StructuredOutputError(
        f"Choice {index}: the arguments of tool call {call.name!r} are not valid JSON: {exc}",
        text=exc.text,
        index=index,
        tool_call=call,
    )


def _label(target: Any) -> str:
    return target.__name__ if isinstance(target, type) else "the JSON schema"


def _name(text: str) -> str:
    return _NAME_CHARS.sub("_", text)[:64] or "response"


def _inline_root(schema: dict[str, Any]) -> dict[str, Any]:
    """msgspec puts the root in ``$defs`` behind a ``$ref``; the API wants it inline."""
    ref = schema.get("$ref")
    defs = dict(schema.get("$defs") or {})
    if isinstance(ref, str) and ref.startswith("#/$defs/") and len(schema) <= 2:
        name = ref[len("#/$defs/") :]
        root = dict(defs.get(name, {}))
        if not _refers_to(defs, ref):
            defs.pop(name, None)
        if defs:
            root["$defs"] = defs
        return root
    return schema


def _refers_to(node: Any, ref: str) -> bool:
    if isinstance(node, Mapping):
        return node.get("$ref") == ref or any(_refers_to(v, ref) for v in node.values())
    if isinstance(node, list):
        return any(_refers_to(v, ref) for v in node)
    return False


def _strict(schema: Any) -> Any:
    """The schema as strict mode wants it: every object closed, every property required,
    no ``default`` (the model always writes every field)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "default":
            continue
        if key in ("properties", "$defs", "definitions"):
            out[key] = {name: _strict(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "anyOf", "allOf", "oneOf", "prefixItems"):
            out[key] = _strict(value)
        else:
            out[key] = value
    if out.get("type") == "object" and "properties" in out:
        out["additionalProperties"] = False
        out["required"] = list(out["properties"])
    return out
