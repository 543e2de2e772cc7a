"""The deterministic answers of the mock model when no script says otherwise.

Shared by both APIs: each endpoint turns its request into chat-style messages and tools first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .script import ToolCall
from .tokens import CJK_RANGES

__all__ = ["default_text", "default_tool_calls", "last_user_text", "message_text"]

_GREETINGS_ZH = ("你好", "您好", "嗨", "哈喽", "哈啰", "早上好", "下午好", "晚上好", "大家好")
_GREETINGS_EN = ("hello", "hi", "hey", "good morning", "good afternoon", "good evening", "howdy")
_GREETING_TAIL = re.compile(r"[\s!！。.,，~～?？呀啊吖哇👋😊]+$")
_CJK_CHAR = re.compile(f"[{CJK_RANGES}]")


def message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") in ("text", "input_text")
        )
    return ""


def last_user_text(messages: Sequence[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return message_text(message.get("content")).strip()
    return ""


def _is_chinese(text: str) -> bool:
    return bool(_CJK_CHAR.search(text))


def _greeting(prompt: str) -> str | None:
    core = _GREETING_TAIL.sub("", prompt.strip())
    if core in _GREETINGS_ZH:
        return (
            f"{core}！我是一个离线运行的示例助手，由 openai_sse 内置的模拟服务器提供。"
            "有什么可以帮你的吗？"
        )
    lowered = core.lower()
    for greeting in _GREETINGS_EN:
        if lowered == greeting or lowered == greeting + " there":
            return (
                f"{core[:1].upper()}{core[1:]}! I'm an offline example assistant served by the "
                "openai_sse mock server. How can I help you today?"
            )
    return None


def default_text(messages: Sequence[Any]) -> str:
    """The deterministic answer to a conversation when no script says otherwise."""
    last = messages[-1] if messages else None
    prompt = last_user_text(messages)
    if isinstance(last, Mapping) and last.get("role") == "tool":
        result = message_text(last.get("content")).strip()
        name = _tool_name_for(messages, last.get("tool_call_id"))
        if _is_chinese(prompt):
            return f"工具 {name} 返回了：{result}。这就是根据工具结果给出的回答。"
        return f"The {name} tool returned {result}. That is the answer, based on the tool result."
    if not prompt:
        return "Hello! I'm an offline example assistant. Send me a message and I'll answer."
    greeting = _greeting(prompt)
    if greeting is not None:
        return greeting
    quoted = prompt if len(prompt) <= 200 else prompt[:200] + "…"
    if _is_chinese(prompt):
        return (
            f"你说的是：「{quoted}」。我是一个离线运行的模拟服务器，不会真正思考，"
            "所以把你的话逐字复述回来；换成真实的模型后，这里就会是真正的回答。"
        )
    return (
        f'You said: "{quoted}". I\'m the offline mock server of openai_sse, so instead of a '
        "real answer I repeat your message back, one token at a time. Point the client at a "
        "real OpenAI-compatible endpoint to get a real answer."
    )


def _tool_name_for(messages: Sequence[Any], call_id: Any) -> str:
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        for call in message.get("tool_calls") or ():
            if isinstance(call, Mapping) and call.get("id") == call_id:
                fn = call.get("function")
                if isinstance(fn, Mapping) and fn.get("name"):
                    return str(fn["name"])
    return "function"


_NAME_STOPWORDS = frozenset({"get", "set", "list", "fetch", "call", "tool", "function", "lookup"})
_TOOL_WORDS = re.compile(r"\b(tools?|function call|call (?:a|the) function)\b|工具", re.IGNORECASE)
_PROPER_NOUN = re.compile(r"\b[A-Z][a-zA-Z]+(?:\s+[A-Z][a-zA-Z]+)*")
_SENTENCE_STARTERS = frozenset(
    {
        "What",
        "Whats",
        "How",
        "I",
        "Please",
        "Can",
        "Could",
        "Tell",
        "Is",
        "Are",
        "Do",
        "Does",
        "Give",
        "Find",
        "Show",
        "Get",
        "Call",
        "Use",
        "The",
        "Which",
        "When",
        "Where",
        "Will",
    }
)


def default_tool_calls(body: Mapping[str, Any], prompt: str) -> list[ToolCall]:
    """Decide whether the default model calls tools, and with which arguments.

    A tool is called when ``tool_choice`` forces it, or when the prompt names it (a word of the
    function name such as "weather" for ``get_weather``) or asks for a tool; after a tool
    result the model answers in text instead.
    """
    tools = [
        t["function"]
        for t in body.get("tools") or ()
        if isinstance(t, Mapping) and t.get("type") == "function" and "function" in t
    ]
    messages = body.get("messages") or ()
    if not tools or body.get("tool_choice") == "none":
        return []
    if messages and isinstance(messages[-1], Mapping) and messages[-1].get("role") == "tool":
        return []
    choice = body.get("tool_choice")
    chosen: list[Mapping[str, Any]] = []
    if isinstance(choice, Mapping):
        name = (choice.get("function") or {}).get("name")
        chosen = [t for t in tools if t.get("name") == name]
    else:
        lowered = prompt.lower()
        for tool in tools:
            name = str(tool.get("name", ""))
            words = [w for w in re.split(r"[_\-\s]+|(?<=[a-z])(?=[A-Z])", name) if w]
            significant = [w.lower() for w in words if w.lower() not in _NAME_STOPWORDS]
            if name.lower() in lowered or any(len(w) >= 3 and w in lowered for w in significant):
                chosen.append(tool)
        if not chosen and (choice == "required" or _TOOL_WORDS.search(prompt)):
            chosen = tools[:1]
    if body.get("parallel_tool_calls") is False:
        chosen = chosen[:1]
    return [
        ToolCall(name=str(t.get("name")), arguments=_arguments_for(t.get("parameters"), prompt))
        for t in chosen
    ]


def _arguments_for(schema: Any, prompt: str) -> dict[str, Any]:
    if not isinstance(schema, Mapping):
        return {}
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return {}
    required = schema.get("required")
    names = [n for n in props if not isinstance(required, list) or n in required]
    return {name: _value_for(name, props[name], prompt) for name in names}


def _value_for(name: str, prop: Any, prompt: str) -> Any:
    if not isinstance(prop, Mapping):
        return None
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        return prop["enum"][0]
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return _arguments_for(prop, prompt)
    lowered = name.lower()
    if any(k in lowered for k in ("city", "location", "place", "country", "region", "name")):
        nouns = [
            n
            for n in _PROPER_NOUN.findall(prompt)
            if n.split()[0].replace("'", "") not in _SENTENCE_STARTERS
        ]
        return nouns[-1] if nouns else "San Francisco"
    if "unit" in lowered:
        return "celsius"
    if any(k in lowered for k in ("query", "text", "prompt", "question", "input")):
        return prompt
    return "example"
