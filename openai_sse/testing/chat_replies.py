"""Chat Completions rendering: a reply resolved against a request, as chunks or a completion.

Three dialects (OpenAI, Azure, DeepSeek) differ only in envelope details, kept field for field
as the real services send them.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..sse.encoder import encode_comment, encode_event
from .defaults import default_text, default_tool_calls, last_user_text, message_text
from .delivery import Block
from .faults import Fault, error_body
from .script import Dialect, Reply
from .tokens import as_tokens, fragments, random_id, tokenize

__all__ = [
    "Block",
    "Plan",
    "plan_reply",
    "render_chunk",
    "render_completion",
    "render_stream",
    "special_chunk",
]

_MISSING: Any = object()
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
            total += 4 + len(tokenize(message_text(message.get("content"))))
    if body.get("tools"):
        total += len(tokenize(json.dumps(body["tools"])))
    return total


def plan_reply(reply: Reply | None, body: Mapping[str, Any]) -> Plan:
    """Resolve a scripted (or default) reply against the request body."""
    reply = reply or Reply()
    messages = body.get("messages") or []
    prompt = last_user_text(messages)
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
        ident = random_id("chatcmpl-", 29)
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
    text_tokens = as_tokens(reply.text)
    refusal_tokens = as_tokens(reply.refusal)
    reasoning_tokens = as_tokens(reply.reasoning)
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
        call_id = call.id or random_id("call_", 24)
        header = {
            "index": i,
            "id": call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        pieces.append(_Piece({"tool_calls": [header]}, cost=0))
        frags = call.fragments if call.fragments is not None else fragments(call.arguments_json)
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
