"""Request checks of the mock server: every client mistake is a 400 with OpenAI's error body.

The checks cover what the server itself reads (so nothing later can raise on a wrong type) and
the common parameters, with the real API's wording: ``Invalid type for 'tools[0].function':
expected an object, but got an integer instead.`` (code ``invalid_type``, ``param`` the path).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from .faults import error_body

__all__ = ["BadRequest", "check_chat", "check_responses", "parse_body"]

MAX_DEPTH = 64
"""Deepest JSON nesting accepted; deeper bodies are refused before anything walks them."""

_NOT_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON."
)


class BadRequest(Exception):
    """A client mistake, answered with status 400 and :meth:`body`."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, "invalid_request_error", self.code, self.param)


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request's JSON object, or :class:`BadRequest` (bad JSON, too deep, not an object)."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest(_NOT_JSON) from None
    if not isinstance(body, dict):
        raise BadRequest(
            f"Invalid type for the request body: expected an object, but got {_kind(body)} "
            "instead.",
            code="invalid_type",
        )
    if _depth(body) > MAX_DEPTH:
        raise BadRequest(
            f"The request body is nested too deeply (more than {MAX_DEPTH} levels).",
            code="invalid_value",
        )
    return body


def _depth(value: Any) -> int:
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


# -- type checks ------------------------------------------------------------------------------

_NAMES: dict[type, str] = {
    str: "a string",
    list: "an array",
    dict: "an object",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return _NAMES.get(type(value), "a value")


def _is(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _expect(value: Any, kind: type, where: str) -> None:
    if not _is(value, kind):
        raise BadRequest(
            f"Invalid type for '{where}': expected {_NAMES[kind]}, but got {_kind(value)} instead.",
            param=where,
            code="invalid_type",
        )


def _optional(body: Mapping[str, Any], key: str, kind: type, where: str | None = None) -> Any:
    value = body.get(key)
    if value is not None:
        _expect(value, kind, where or key)
    return value


def _required(body: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if body.get(key) is None:
        raise BadRequest(
            f"Missing required parameter: '{where}'.",
            param=where,
            code="missing_required_parameter",
        )
    _expect(body[key], kind, where)
    return body[key]


def _invalid(where: str, value: Any, allowed: str) -> BadRequest:
    shown = json.dumps(value)[:40] if isinstance(value, (str, int, float)) else _kind(value)
    return BadRequest(
        f"Invalid value for '{where}': {shown}. Supported values are: {allowed}.",
        param=where,
        code="invalid_value",
    )


def _range(body: Mapping[str, Any], key: str, kind: type, low: float, high: float) -> None:
    value = _optional(body, key, kind)
    if value is not None and not low <= value <= high:
        raise BadRequest(
            f"Invalid '{key}': {value} is out of range ({low} to {high}).",
            param=key,
            code="invalid_value",
        )


def _each(value: Any, where: str, check: Callable[[dict[str, Any], str], None]) -> None:
    _expect(value, list, where)
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        _expect(item, dict, at)
        check(item, at)


def _common(body: Mapping[str, Any]) -> None:
    model = _required(body, "model", str, "model")
    if not model:
        raise BadRequest("you must provide a model parameter", param="model")
    for flag in ("stream", "parallel_tool_calls", "store"):
        _optional(body, flag, bool)
    _range(body, "temperature", float, 0, 2)
    _range(body, "top_p", float, 0, 1)
    _optional(body, "metadata", dict)
    _optional(body, "user", str)


# -- chat completions -------------------------------------------------------------------------

_CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def _content(message: Mapping[str, Any], where: str) -> None:
    content = message.get("content")
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise BadRequest(
            f"Invalid type for '{where}.content': expected one of a string or array of "
            f"objects, but got {_kind(content)} instead.",
            param=f"{where}.content",
            code="invalid_type",
        )
    for index, part in enumerate(content):
        at = f"{where}.content[{index}]"
        _expect(part, dict, at)
        _required(part, "type", str, f"{at}.type")


def _chat_tool_call(call: dict[str, Any], where: str) -> None:
    _optional(call, "id", str, f"{where}.id")
    function = _required(call, "function", dict, f"{where}.function")
    _required(function, "name", str, f"{where}.function.name")
    _optional(function, "arguments", str, f"{where}.function.arguments")


def _chat_message(message: dict[str, Any], where: str) -> None:
    role = _required(message, "role", str, f"{where}.role")
    if role not in _CHAT_ROLES:
        raise _invalid(f"{where}.role", role, ", ".join(f"'{r}'" for r in _CHAT_ROLES))
    _content(message, where)
    if message.get("tool_calls") is not None:
        _each(message["tool_calls"], f"{where}.tool_calls", _chat_tool_call)
    _optional(message, "tool_call_id", str, f"{where}.tool_call_id")
    _optional(message, "name", str, f"{where}.name")


def _chat_tool(tool: dict[str, Any], where: str) -> None:
    kind = _required(tool, "type", str, f"{where}.type")
    if kind != "function":
        return
    function = _required(tool, "function", dict, f"{where}.function")
    _required(function, "name", str, f"{where}.function.name")
    _optional(function, "parameters", dict, f"{where}.function.parameters")
    _optional(function, "description", str, f"{where}.function.description")


def _tool_choice(body: Mapping[str, Any], nested: bool) -> None:
    choice = body.get("tool_choice")
    if choice is None or choice in ("none", "auto", "required"):
        return
    if not isinstance(choice, dict):
        raise _invalid("tool_choice", choice, "'none', 'auto', 'required', or a named tool")
    kind = _required(choice, "type", str, "tool_choice.type")
    if kind != "function":
        return
    if nested:
        function = _required(choice, "function", dict, "tool_choice.function")
        _required(function, "name", str, "tool_choice.function.name")
    else:
        _required(choice, "name", str, "tool_choice.name")


def check_chat(body: Mapping[str, Any]) -> None:
    """Refuse a chat completions body the real API would refuse with 400."""
    _common(body)
    if "messages" not in body:
        raise BadRequest(
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    _each(body["messages"], "messages", _chat_message)
    if body.get("tools") is not None:
        _each(body["tools"], "tools", _chat_tool)
    _tool_choice(body, nested=True)
    _range(body, "n", int, 1, 128)
    _range(body, "max_tokens", int, 0, 2**31)
    _range(body, "max_completion_tokens", int, 0, 2**31)
    options = _optional(body, "stream_options", dict)
    if options is not None:
        _optional(options, "include_usage", bool, "stream_options.include_usage")
    response_format = _optional(body, "response_format", dict)
    if response_format is not None:
        _required(response_format, "type", str, "response_format.type")


# -- responses --------------------------------------------------------------------------------

_INPUT_ROLES = ("user", "assistant", "system", "developer")


def _input_item(item: dict[str, Any], where: str) -> None:
    kind = _optional(item, "type", str, f"{where}.type")
    if kind in (None, "message"):
        role = _required(item, "role", str, f"{where}.role")
        if role not in _INPUT_ROLES:
            raise _invalid(f"{where}.role", role, ", ".join(f"'{r}'" for r in _INPUT_ROLES))
        _content(item, where)
    elif kind == "function_call":
        _required(item, "call_id", str, f"{where}.call_id")
        _required(item, "name", str, f"{where}.name")
        _required(item, "arguments", str, f"{where}.arguments")
    elif kind == "function_call_output":
        _required(item, "call_id", str, f"{where}.call_id")
        if not isinstance(item.get("output"), (str, list)):
            _expect(item.get("output"), str, f"{where}.output")


def _response_tool(tool: dict[str, Any], where: str) -> None:
    kind = _required(tool, "type", str, f"{where}.type")
    if kind == "function":
        _required(tool, "name", str, f"{where}.name")
        _optional(tool, "parameters", dict, f"{where}.parameters")
        _optional(tool, "description", str, f"{where}.description")


def check_responses(body: Mapping[str, Any]) -> None:
    """Refuse a ``/v1/responses`` body the real API would refuse with 400."""
    _common(body)
    raw_input = body.get("input")
    if raw_input is not None and not isinstance(raw_input, str):
        if not isinstance(raw_input, list):
            raise BadRequest(
                f"Invalid type for 'input': expected one of a string or array of input items, "
                f"but got {_kind(raw_input)} instead.",
                param="input",
                code="invalid_type",
            )
        _each(raw_input, "input", _input_item)
    if body.get("tools") is not None:
        _each(body["tools"], "tools", _response_tool)
    _tool_choice(body, nested=False)
    _range(body, "max_output_tokens", int, 0, 2**31)
    for key in ("instructions", "previous_response_id"):
        _optional(body, key, str)
    for key in ("reasoning", "text"):
        _optional(body, key, dict)
    if _optional(body, "background", bool) and body.get("store") is False:
        raise BadRequest(
            "Background responses require store=true.", param="background", code="invalid_value"
        )
