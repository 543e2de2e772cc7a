"""Scripted replies, injected faults, and the deterministic default answers of the mock server.

Everything here is pure (no I/O, no aiohttp), so scripts can be built and checked without a
running server and the pytest plugin stays cheap to import.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import string
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..sse.encoder import encode_comment, encode_event

__all__ = [
    "Dialect",
    "Fault",
    "Raw",
    "Reply",
    "ScriptItem",
    "ToolCall",
    "default_text",
    "error_body",
    "load_script",
    "tokenize",
]

Dialect = Literal["openai", "azure", "deepseek"]
_DIALECTS = ("openai", "azure", "deepseek")
_MISSING: Any = object()

# --------------------------------------------------------------------------------------------
# Tokenisation
# --------------------------------------------------------------------------------------------

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN_RE = re.compile(
    rf"(?P<cjk>[{_CJK}]+)"
    rf"| ?(?:(?![{_CJK}])[^\W\d_])+(?:'(?:(?![{_CJK}])[^\W\d_])+)?"
    r"| ?\d{1,3}"
    r"|\n+"
    r"|[^\S\n]+(?=\n|$)"
    r"| ?[^\s\w]"
    r"|[^\S\n]+"
    r"|[\s\S]"
)


def tokenize(text: str) -> list[str]:
    """Split text roughly the way a BPE tokenizer streams it; the pieces join back exactly.

    English comes out as words carrying their leading space, CJK as one or two characters per
    token, punctuation and newlines on their own, so paced streams look like a real model's.
    """
    tokens: list[str] = []
    for match in _TOKEN_RE.finditer(text):
        run = match.group("cjk")
        if run is None:
            tokens.append(match.group())
            continue
        pos, size = 0, 2
        while pos < len(run):
            tokens.append(run[pos : pos + size])
            pos += size
            size = 3 - size
    return tokens


def _pieces(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return tokenize(value)
    return [str(piece) for piece in value]


def _fragments(text: str) -> list[str]:
    """Cut tool-call arguments into the short uneven fragments OpenAI streams."""
    out: list[str] = []
    pos, sizes = 0, (4, 5, 6, 3)
    step = 0
    while pos < len(text):
        size = sizes[step % len(sizes)]
        out.append(text[pos : pos + size])
        pos += size
        step += 1
    return out


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------

_STATUS_DEFAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to sample from this model.", "permission_error", None),
    404: (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    409: ("The request conflicts with another request.", "invalid_request_error", None),
    422: ("Unprocessable request.", "invalid_request_error", None),
    429: (
        "Rate limit reached for requests. Please try again later.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


def error_body(
    message: str,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """The error object OpenAI returns, field for field."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------

FaultAction = Literal["drop", "stall", "malformed", "error", "oversized"]


@dataclass(frozen=True)
class Fault:
    """One request's misbehaviour; build it with the class methods and combine with ``+``.

    Header-level parts (``status_code``, ``headers_delay``, ``content_type``) and one in-stream
    ``action`` can be combined, e.g. ``Fault.delay_headers(0.5) + Fault.drop_after(3)``.
    ``after`` counts data chunks already sent; a count past the end of the reply fires just
    before ``[DONE]``.
    """

    status_code: int | None = None
    error: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    headers_delay: float = 0.0
    content_type: str | None = None
    body: bytes | None = None
    action: FaultAction | None = None
    after: int = 0
    seconds: float | None = None
    size: int = 0
    data: str | None = None
    send_done: bool = True

    @classmethod
    def status(
        cls,
        status: int,
        message: str | None = None,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        retry_after_ms: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """Answer with ``status`` and an OpenAI error body instead of a reply."""
        d_message, d_type, d_code = _STATUS_DEFAULTS.get(
            status,
            _STATUS_DEFAULTS[500] if status >= 500 else _STATUS_DEFAULTS[400],
        )
        extra = dict(headers or {})
        if retry_after is not None:
            extra["retry-after"] = _number(retry_after)
        if retry_after_ms is not None:
            extra["retry-after-ms"] = str(int(retry_after_ms))
        return cls(
            status_code=status,
            error=error_body(message or d_message, type or d_type, code or d_code, param),
            headers=extra,
        )

    @classmethod
    def delay_headers(cls, seconds: float) -> Fault:
        """Hold the response headers back, to exercise connect / first-byte timeouts."""
        return cls(headers_delay=seconds)

    @classmethod
    def stall_after(cls, after: int, seconds: float | None = None) -> Fault:
        """Go silent after ``after`` chunks for ``seconds`` (None: until the client leaves)."""
        return cls(action="stall", after=after, seconds=seconds)

    @classmethod
    def drop_after(cls, after: int) -> Fault:
        """Abort the connection after ``after`` chunks, with no chunked-encoding terminator."""
        return cls(action="drop", after=after)

    @classmethod
    def malformed_after(cls, after: int, data: str | None = None) -> Fault:
        """Insert one event whose data is not valid JSON, then carry on with the reply."""
        return cls(action="malformed", after=after, data=data)

    @classmethod
    def error_after(
        cls,
        after: int,
        message: str = "The server had an error while processing your request.",
        *,
        type: str = "server_error",
        code: str | None = None,
        param: str | None = None,
        done: bool = False,
    ) -> Fault:
        """Send ``data: {"error": ...}`` mid-stream and end there (with ``[DONE]`` if ``done``)."""
        return cls(
            action="error",
            after=after,
            error=error_body(message, type, code, param),
            send_done=done,
        )

    @classmethod
    def oversized_after(cls, after: int, size: int) -> Fault:
        """Insert one valid chunk whose ``data`` is ``size`` bytes, to exercise size caps."""
        return cls(action="oversized", after=after, size=size)

    @classmethod
    def no_done(cls) -> Fault:
        """End the stream cleanly but without ``data: [DONE]``."""
        return cls(send_done=False)

    @classmethod
    def wrong_content_type(
        cls, content_type: str = "text/plain", body: bytes | str | None = None
    ) -> Fault:
        """Answer 200 with another content type.

        Without ``body`` a JSON type gets the non-streaming completion and any other type
        the event stream bytes, which is what misconfigured proxies do.
        """
        raw = body.encode() if isinstance(body, str) else body
        return cls(content_type=content_type, body=raw)

    def __add__(self, other: Fault) -> Fault:
        if not isinstance(other, Fault):
            return NotImplemented
        if self.action is not None and other.action is not None:
            raise ValueError("a Fault can hold only one in-stream action")
        changes: dict[str, Any] = {}
        default = Fault()
        for f in dataclasses.fields(self):
            value = getattr(other, f.name)
            if value != getattr(default, f.name):
                changes[f.name] = value
        if other.headers:
            changes["headers"] = {**self.headers, **other.headers}
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | Sequence[Mapping[str, Any]] | str) -> Fault:
        """Build from script form: ``{"fault": "drop_after", "after": 3}``, a name, or a list."""
        if isinstance(spec, str):
            spec = {"fault": spec}
        if not isinstance(spec, Mapping):
            combined = cls()
            for part in spec:
                combined = combined + cls.from_dict(part)
            return combined
        kwargs = dict(spec)
        name = kwargs.pop("fault", None)
        if name not in _FAULT_BUILDERS:
            raise ValueError(f"unknown fault {name!r}; expected one of {sorted(_FAULT_BUILDERS)}")
        builder = getattr(cls, name)
        result: Fault = builder(**kwargs)
        return result


_FAULT_BUILDERS = frozenset(
    {
        "status",
        "delay_headers",
        "stall_after",
        "drop_after",
        "malformed_after",
        "error_after",
        "oversized_after",
        "no_done",
        "wrong_content_type",
    }
)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# --------------------------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    """A function call the model makes; ``arguments`` as a JSON string or a mapping.

    ``fragments`` fixes exactly how the arguments are streamed; by default they are cut into
    short uneven pieces like OpenAI's.
    """

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    id: str | None = None
    fragments: Sequence[str] | None = None

    @property
    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> ToolCall:
        fn = spec.get("function")
        if isinstance(fn, Mapping):
            spec = {**spec, "name": fn.get("name"), "arguments": fn.get("arguments", "{}")}
        return cls(
            name=str(spec["name"]),
            arguments=spec.get("arguments", "{}"),
            id=spec.get("id"),
            fragments=spec.get("fragments"),
        )


@dataclass(frozen=True)
class Reply:
    """What the mock model answers to one request.

    ``text``, ``refusal`` and ``reasoning`` take a string (tokenised automatically) or an exact
    list of tokens. ``usage`` follows the request's ``stream_options.include_usage`` when None,
    is always sent when True or a mapping (the mapping verbatim), and never when False.
    ``choices`` gives each of several choices its own reply and overrides the request's ``n``.
    ``keep_alive`` sends a ``: keep-alive`` comment after every that many chunks.
    A ``Reply()`` with no content is answered with the default reply for the prompt.
    """

    text: str | Sequence[str] | None = None
    tool_calls: Sequence[ToolCall] = ()
    refusal: str | Sequence[str] | None = None
    reasoning: str | Sequence[str] | None = None
    reasoning_field: Literal["reasoning_content", "reasoning"] = "reasoning_content"
    usage: Mapping[str, Any] | bool | None = None
    finish_reason: str | None = None
    dialect: Dialect = "openai"
    keep_alive: int = 0
    model: str | None = None
    choices: Sequence[Reply] = ()
    fault: Fault | None = None

    def __post_init__(self) -> None:
        if self.dialect not in _DIALECTS:
            raise ValueError(f"dialect must be one of {_DIALECTS}, not {self.dialect!r}")
        if self.reasoning_field not in ("reasoning_content", "reasoning"):
            raise ValueError("reasoning_field must be 'reasoning_content' or 'reasoning'")

    @property
    def has_content(self) -> bool:
        return bool(
            self.text is not None
            or self.tool_calls
            or self.refusal is not None
            or self.reasoning is not None
            or self.choices
        )

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Reply:
        """Build from script form; see ``docs/testing.md`` for the keys."""
        kwargs: dict[str, Any] = {}
        for key, value in spec.items():
            if key == "tokens":
                kwargs["text"] = list(value)
            elif key == "tool_calls":
                kwargs["tool_calls"] = tuple(ToolCall.from_dict(t) for t in value)
            elif key == "choices":
                kwargs["choices"] = tuple(cls.from_dict(c) for c in value)
            elif key == "fault":
                kwargs["fault"] = Fault.from_dict(value)
            elif key in _REPLY_KEYS:
                kwargs[key] = list(value) if isinstance(value, list) else value
            else:
                raise ValueError(f"unknown reply key {key!r}")
        return cls(**kwargs)


_REPLY_KEYS = frozenset(f.name for f in dataclasses.fields(Reply))


@dataclass(frozen=True)
class Raw:
    """Bytes sent verbatim, one block per write (paced like chunks): replays recordings."""

    blocks: Sequence[bytes]
    status: int = 200
    content_type: str = "text/event-stream; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)
    fault: Fault | None = None

    def __init__(
        self,
        blocks: Iterable[bytes | str],
        *,
        status: int = 200,
        content_type: str = "text/event-stream; charset=utf-8",
        headers: Mapping[str, str] | None = None,
        fault: Fault | None = None,
    ) -> None:
        encoded = tuple(b.encode() if isinstance(b, str) else bytes(b) for b in blocks)
        object.__setattr__(self, "blocks", encoded)
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "content_type", content_type)
        object.__setattr__(self, "headers", dict(headers or {}))
        object.__setattr__(self, "fault", fault)

    @classmethod
    def from_sse(cls, source: bytes | str | Path, **kwargs: Any) -> Raw:
        """Split a recorded event stream (bytes, or a file path) into one block per event."""
        data = Path(source).read_bytes() if isinstance(source, Path) else source
        if isinstance(data, str):
            data = data.encode()
        blocks = [b + b"\n\n" for b in re.split(rb"\r?\n\r?\n", data) if b.strip()]
        return cls(blocks, **kwargs)

    @classmethod
    def from_chunks(
        cls, chunks: Iterable[str | Mapping[str, Any]] | Path, *, done: bool = True, **kwargs: Any
    ) -> Raw:
        """Frame JSON chunks (objects, JSON lines, or a JSONL file) as ``data:`` events."""
        if isinstance(chunks, Path):
            chunks = [line for line in chunks.read_text("utf-8").splitlines() if line.strip()]
        blocks = [
            encode_event(c if isinstance(c, str) else json.dumps(c, separators=(",", ":")))
            for c in chunks
        ]
        if done:
            blocks.append(encode_event("[DONE]"))
        return cls(blocks, **kwargs)


ScriptItem = Reply | Raw | Fault


def load_script(source: str | Path | Sequence[Any]) -> list[ScriptItem]:
    """Read a reply script: a JSON list, or JSON lines, of reply / raw / fault objects.

    An object with ``"raw"`` is a :class:`Raw` (list of strings sent verbatim), one with a
    top-level ``"fault"`` and no content is a bare :class:`Fault` (applied to the default
    reply), anything else a :class:`Reply`. A bare string is shorthand for ``{"text": ...}``.
    """
    if isinstance(source, (str, Path)):
        text = Path(source).read_text("utf-8")
        stripped = text.lstrip()
        if stripped.startswith("["):
            entries = json.loads(text)
        else:
            entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        entries = list(source)
    return [_script_item(entry) for entry in entries]


def _script_item(entry: Any) -> ScriptItem:
    if isinstance(entry, str):
        return Reply(text=entry)
    if not isinstance(entry, Mapping):
        raise ValueError(f"script entries must be objects or strings, not {entry!r}")
    if "raw" in entry:
        rest = {k: v for k, v in entry.items() if k != "raw"}
        fault = Fault.from_dict(rest.pop("fault")) if "fault" in rest else None
        return Raw(entry["raw"], fault=fault, **rest)
    if "fault" in entry and set(entry) - {"fault"} and isinstance(entry["fault"], str):
        return Fault.from_dict(entry)
    if set(entry) == {"fault"}:
        return Fault.from_dict(entry["fault"])
    return Reply.from_dict(entry)


# --------------------------------------------------------------------------------------------
# Default replies
# --------------------------------------------------------------------------------------------

_GREETINGS_ZH = ("你好", "您好", "嗨", "哈喽", "哈啰", "早上好", "下午好", "晚上好", "大家好")
_GREETINGS_EN = ("hello", "hi", "hey", "good morning", "good afternoon", "good evening", "howdy")
_GREETING_TAIL = re.compile(r"[\s!！。.,，~～?？呀啊吖哇👋😊]+$")
_CJK_CHAR = re.compile(f"[{_CJK}]")


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") in ("text", "input_text")
        )
    return ""


def _last_user_text(messages: Sequence[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return _message_text(message.get("content")).strip()
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
    prompt = _last_user_text(messages)
    if isinstance(last, Mapping) and last.get("role") == "tool":
        result = _message_text(last.get("content")).strip()
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


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

_ALNUM = string.ascii_letters + string.digits
_SAFE = {"filtered": False, "severity": "safe"}
_SAFE_RESULTS = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
_PROMPT_FILTER = [
    {
        "prompt_index": 0,
        "content_filter_results": {
            "hate": _SAFE,
            "jailbreak": {"filtered": False, "detected": False},
            "self_harm": _SAFE,
            "sexual": _SAFE,
            "violence": _SAFE,
        },
    }
]


def _random_id(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


@dataclass
class _Piece:
    delta: dict[str, Any]
    cost: int = 1


@dataclass
class _ChoicePlan:
    index: int
    first: dict[str, Any]
    pieces: list[_Piece]
    finish_reason: str
    reasoning_tokens: int = 0
    has_reasoning: bool = False
    text: str = ""
    refusal: str | None = None
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Plan:
    """A reply resolved against one request: what every choice says, ready to render."""

    reply: Reply
    choices: list[_ChoicePlan]
    model: str
    include_usage: bool
    prompt_tokens: int
    id: str
    created: int
    fingerprint: str

    @property
    def completion_tokens(self) -> int:
        return sum(p.cost for c in self.choices for p in c.pieces)

    @property
    def send_usage(self) -> bool:
        usage = self.reply.usage
        if usage is None:
            return self.include_usage
        return usage is not False

    def usage(self) -> dict[str, Any]:
        if isinstance(self.reply.usage, Mapping):
            return dict(self.reply.usage)
        completion = self.completion_tokens
        reasoning = sum(c.reasoning_tokens for c in self.choices)
        total = self.prompt_tokens + completion
        if self.reply.dialect == "deepseek":
            return {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": total,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": reasoning},
                "prompt_cache_hit_tokens": 0,
                "prompt_cache_miss_tokens": self.prompt_tokens,
            }
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": total,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


def _prompt_tokens(body: Mapping[str, Any]) -> int:
    total = 3
    for message in body.get("messages") or ():
        if isinstance(message, Mapping):
            total += 4 + len(tokenize(_message_text(message.get("content"))))
    if body.get("tools"):
        total += len(tokenize(json.dumps(body["tools"])))
    return total


def plan_reply(reply: Reply | None, body: Mapping[str, Any]) -> Plan:
    """Resolve a scripted (or default) reply against the request body."""
    reply = reply or Reply()
    messages = body.get("messages") or []
    prompt = _last_user_text(messages)
    per_choice: list[Reply]
    if reply.choices:
        per_choice = list(reply.choices)
    else:
        n = body.get("n")
        count = n if isinstance(n, int) and 1 <= n <= 128 else 1
        per_choice = [reply] * count
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    limit = limit if isinstance(limit, int) and limit >= 0 else None
    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, Mapping) and stream_options.get("include_usage")
    dialect = reply.dialect
    model = reply.model or str(body.get("model") or "gpt-4o-mini")
    if dialect == "deepseek":
        ident = str(uuid.uuid4())
        fingerprint = "fp_" + secrets.token_hex(5) + "_prod0820_fp8_kvcache"
    else:
        ident = _random_id("chatcmpl-", 29)
        fingerprint = "fp_" + secrets.token_hex(5)
    choices = [
        _plan_choice(index, sub, body, prompt, messages, limit, dialect, reply)
        for index, sub in enumerate(per_choice)
    ]
    return Plan(
        reply=reply,
        choices=choices,
        model=model,
        include_usage=bool(include_usage),
        prompt_tokens=_prompt_tokens(body),
        id=ident,
        created=int(time.time()),
        fingerprint=fingerprint,
    )


def _plan_choice(
    index: int,
    reply: Reply,
    body: Mapping[str, Any],
    prompt: str,
    messages: Sequence[Any],
    limit: int | None,
    dialect: Dialect,
    outer: Reply,
) -> _ChoicePlan:
    text_tokens = _pieces(reply.text)
    refusal_tokens = _pieces(reply.refusal)
    reasoning_tokens = _pieces(reply.reasoning)
    tool_calls = list(reply.tool_calls)
    if not reply.has_content:
        tool_calls = default_tool_calls(body, prompt)
        if not tool_calls:
            text_tokens = tokenize(default_text(messages))
    rfield = reply.reasoning_field
    has_reasoning = reply.reasoning is not None
    deepseek = dialect == "deepseek"

    first: dict[str, Any] = {"role": "assistant"}
    if has_reasoning:
        first["content"] = None
        first[rfield] = ""
    elif reply.refusal is not None and reply.text is None:
        first["content"] = None
        first["refusal"] = ""
    elif tool_calls and not text_tokens:
        first["content"] = None
    else:
        first["content"] = ""
    if not deepseek and "refusal" not in first and not tool_calls:
        first["refusal"] = None

    pieces: list[_Piece] = []
    for tok in reasoning_tokens:
        pieces.append(_Piece({"content": None, rfield: tok} if deepseek else {rfield: tok}))
    for tok in text_tokens:
        delta: dict[str, Any] = {"content": tok}
        if deepseek and has_reasoning:
            delta[rfield] = None
        pieces.append(_Piece(delta))
    for tok in refusal_tokens:
        pieces.append(_Piece({"refusal": tok}))
    for i, call in enumerate(tool_calls):
        call_id = call.id or _random_id("call_", 24)
        header = {
            "index": i,
            "id": call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        pieces.append(_Piece({"tool_calls": [header]}, cost=0))
        frags = call.fragments if call.fragments is not None else _fragments(call.arguments_json)
        for frag in frags:
            pieces.append(_Piece({"tool_calls": [{"index": i, "function": {"arguments": frag}}]}))

    truncated = False
    if limit is not None:
        spent = 0
        for cut, piece in enumerate(pieces):
            if spent + piece.cost > limit:
                pieces = pieces[:cut]
                truncated = True
                break
            spent += piece.cost

    finish = reply.finish_reason or outer.finish_reason
    if finish is None:
        if truncated:
            finish = "length"
        elif tool_calls:
            finish = "tool_calls"
        else:
            finish = "stop"
    plan = _ChoicePlan(
        index=index, first=first, pieces=pieces, finish_reason=finish, has_reasoning=has_reasoning
    )
    _accumulate(plan, rfield)
    return plan


def _accumulate(plan: _ChoicePlan, rfield: str) -> None:
    calls: dict[int, dict[str, Any]] = {}
    text: list[str] = []
    refusal: list[str] | None = (
        [] if "refusal" in plan.first and plan.first["refusal"] == "" else None
    )
    reasoning: list[str] = []
    for piece in plan.pieces:
        d = piece.delta
        if isinstance(d.get("content"), str):
            text.append(d["content"])
        if isinstance(d.get("refusal"), str):
            refusal = (refusal or []) + [d["refusal"]]
        if isinstance(d.get(rfield), str):
            reasoning.append(d[rfield])
            plan.reasoning_tokens += piece.cost
        for tc in d.get("tool_calls", ()):
            slot = calls.get(tc["index"])
            if slot is None:
                calls[tc["index"]] = {
                    "id": tc["id"],
                    "type": "function",
                    "function": {"name": tc["function"]["name"], "arguments": ""},
                }
            else:
                slot["function"]["arguments"] += tc["function"]["arguments"]
    plan.text = "".join(text)
    plan.refusal = "".join(refusal) if refusal is not None else None
    plan.reasoning = "".join(reasoning)
    plan.tool_calls = [calls[i] for i in sorted(calls)]


Block = tuple[Literal["chunk", "comment", "done"], bytes]


def _encode(obj: Any) -> bytes:
    return encode_event(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))


def render_chunk(
    plan: Plan, choices: list[dict[str, Any]], usage: Any = _MISSING
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` envelope in the plan's dialect."""
    dialect = plan.reply.dialect
    if dialect == "azure":
        chunk: dict[str, Any] = {
            "choices": choices,
            "created": plan.created,
            "id": plan.id,
            "model": plan.model,
            "object": "chat.completion.chunk",
            "system_fingerprint": plan.fingerprint,
        }
    else:
        chunk = {
            "id": plan.id,
            "object": "chat.completion.chunk",
            "created": plan.created,
            "model": plan.model,
        }
        if dialect == "openai":
            chunk["service_tier"] = "default"
        chunk["system_fingerprint"] = plan.fingerprint
        chunk["choices"] = choices
    if usage is not _MISSING:
        chunk["usage"] = usage
    elif plan.send_usage or dialect == "deepseek":
        chunk["usage"] = None
    return chunk


def _choice(
    plan: Plan, index: int, delta: dict[str, Any], finish: str | None, safe: bool
) -> dict[str, Any]:
    if plan.reply.dialect == "azure":
        return {
            "content_filter_results": _SAFE_RESULTS if safe else {},
            "delta": delta,
            "finish_reason": finish,
            "index": index,
            "logprobs": None,
        }
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}


def render_stream(plan: Plan) -> list[Block]:
    """Every event of the streamed answer, in order, ending with ``[DONE]``."""
    dialect = plan.reply.dialect
    events: list[bytes] = []
    if dialect == "azure":
        events.append(
            _encode(
                {
                    "choices": [],
                    "created": 0,
                    "id": "",
                    "model": "",
                    "object": "",
                    "prompt_filter_results": _PROMPT_FILTER,
                }
            )
        )
    rounds = max((len(c.pieces) for c in plan.choices), default=0)
    for step in range(max(rounds, 1)):
        for c in plan.choices:
            if step == 0:
                events.append(
                    _encode(render_chunk(plan, [_choice(plan, c.index, c.first, None, False)]))
                )
            if step < len(c.pieces):
                choice = _choice(plan, c.index, c.pieces[step].delta, None, True)
                events.append(_encode(render_chunk(plan, [choice])))
    usage_on_finish = dialect == "deepseek" and plan.send_usage
    for pos, c in enumerate(plan.choices):
        delta: dict[str, Any] = {}
        if dialect == "deepseek":
            delta = {"content": ""}
            if c.has_reasoning:
                delta[plan.reply.reasoning_field] = None
        choice = _choice(plan, c.index, delta, c.finish_reason, False)
        if usage_on_finish and pos == len(plan.choices) - 1:
            events.append(_encode(render_chunk(plan, [choice], usage=plan.usage())))
        else:
            events.append(_encode(render_chunk(plan, [choice])))
    if dialect == "azure":
        for c in plan.choices:
            length = len(c.text or c.refusal or "")
            annotation = {
                "choices": [
                    {
                        "content_filter_offsets": {
                            "check_offset": 0,
                            "start_offset": 0,
                            "end_offset": length,
                        },
                        "content_filter_results": _SAFE_RESULTS,
                        "finish_reason": None,
                        "index": c.index,
                    }
                ],
                "created": plan.created,
                "id": plan.id,
                "model": plan.model,
                "object": "chat.completion.chunk",
                "system_fingerprint": plan.fingerprint,
            }
            events.append(_encode(annotation))
    if plan.send_usage and not usage_on_finish:
        events.append(_encode(render_chunk(plan, [], usage=plan.usage())))

    blocks: list[Block] = []
    every = plan.reply.keep_alive
    for i, event in enumerate(events):
        if every > 0 and i > 0 and i % every == 0:
            blocks.append(("comment", encode_comment("keep-alive")))
        blocks.append(("chunk", event))
    blocks.append(("done", encode_event("[DONE]")))
    return blocks


def render_completion(plan: Plan) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` object for the same answer."""
    choices = []
    for c in plan.choices:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": c.text if (c.text or not (c.refusal or c.tool_calls)) else None,
            "refusal": c.refusal or None,
            "annotations": [],
        }
        if c.has_reasoning:
            message[plan.reply.reasoning_field] = c.reasoning
        if c.tool_calls:
            message["tool_calls"] = c.tool_calls
        choice: dict[str, Any] = {
            "index": c.index,
            "message": message,
            "logprobs": None,
            "finish_reason": c.finish_reason,
        }
        if plan.reply.dialect == "azure":
            choice["content_filter_results"] = _SAFE_RESULTS
        choices.append(choice)
    completion: dict[str, Any] = {
        "id": plan.id,
        "object": "chat.completion",
        "created": plan.created,
        "model": plan.model,
        "choices": choices,
        "usage": plan.usage(),
    }
    if plan.reply.dialect == "openai":
        completion["service_tier"] = "default"
    completion["system_fingerprint"] = plan.fingerprint
    if plan.reply.dialect == "azure":
        completion["prompt_filter_results"] = _PROMPT_FILTER
    return completion


def special_chunk(plan: Plan, fault: Fault) -> bytes:
    """The one odd event a malformed / error / oversized fault inserts."""
    if fault.action == "malformed":
        data = fault.data
        if data is None:
            data = (
                f'{{"id":"{plan.id}","object":"chat.completion.chunk","created":{plan.created},'
                '"choices":[{"index":0,"delta":{"content":"'
            )
        return encode_event(data)
    if fault.action == "error":
        return _encode(dict(fault.error or error_body("error", "server_error")))
    skeleton = render_chunk(plan, [_choice(plan, 0, {"content": ""}, None, True)])
    overhead = len(json.dumps(skeleton, separators=(",", ":")).encode())
    skeleton["choices"][0]["delta"]["content"] = "x" * max(0, fault.size - overhead)
    return _encode(skeleton)
