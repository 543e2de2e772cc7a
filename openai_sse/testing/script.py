"""What a script says the mock model answers: replies, tool calls, raw bytes, script files.

A ``Reply`` is API-neutral: the same object is rendered as a chat completion stream or as a
Responses stream depending on the endpoint that consumes it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..sse.encoder import encode_event
from .faults import Fault

__all__ = ["Dialect", "Raw", "Reply", "ScriptItem", "ToolCall", "load_script"]

Dialect = Literal["openai", "azure", "deepseek"]
_DIALECTS = ("openai", "azure", "deepseek")


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
