"""Responses API rendering: a reply resolved against a ``/v1/responses`` request.

The events follow the official API field for field (see the real recordings in
``tests/recordings/responses``): ``response.created``, ``response.in_progress``, then per
output item ``output_item.added`` / parts / deltas / ``.done`` events, then one terminal
``response.completed`` / ``response.incomplete`` / ``response.failed`` carrying the whole
``Response`` object. Every event has an ``event:`` line and a ``sequence_number``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .defaults import default_text, default_tool_calls, last_user_text, message_text
from .faults import Fault, error_body
from .script import Reply, ToolCall
from .tokens import as_tokens, fragments, tokenize

__all__ = [
    "Event",
    "ResponsePlan",
    "apply_fault",
    "as_chat_request",
    "encode_events",
    "plan_response",
    "render_events",
]

Event = dict[str, Any]
"""One event payload without its ``sequence_number`` (numbered when encoded)."""


# -- the request, seen as a chat request ------------------------------------------------------


def as_chat_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The chat-shaped messages and tools a Responses request means, for the default replies.

    ``input`` is a string or a list of message / ``function_call`` / ``function_call_output``
    items; tools are flat (``{"type": "function", "name": ...}``) in this API.
    """
    raw_input = body.get("input")
    messages: list[dict[str, Any]] = []
    if isinstance(raw_input, str):
        messages.append({"role": "user", "content": raw_input})
    elif isinstance(raw_input, list):
        for item in raw_input:
            if not isinstance(item, Mapping):
                continue
            kind = item.get("type", "message")
            if kind == "message" or (kind is None and "role" in item):
                messages.append({"role": item.get("role"), "content": item.get("content")})
            elif kind == "function_call":
                call = {"id": item.get("call_id"), "function": {"name": item.get("name")}}
                messages.append({"role": "assistant", "tool_calls": [call]})
            elif kind == "function_call_output":
                output = item.get("output")
                content = output if isinstance(output, str) else json.dumps(output)
                messages.append(
                    {"role": "tool", "tool_call_id": item.get("call_id"), "content": content}
                )
    tools = [
        {"type": "function", "function": {"name": t.get("name"), "parameters": t.get("parameters")}}
        for t in body.get("tools") or ()
        if isinstance(t, Mapping) and t.get("type") == "function"
    ]
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") == "function":
        choice = {"type": "function", "function": {"name": choice.get("name")}}
    return {
        "messages": messages,
        "tools": tools,
        "tool_choice": choice,
        "parallel_tool_calls": body.get("parallel_tool_calls"),
    }


# -- planning ---------------------------------------------------------------------------------


@dataclass
class _Item:
    """One output item: its ``added`` form, its delta events, and what it holds when done."""

    kind: str  # "reasoning" | "message" | "function_call"
    id: str
    tokens: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    call: ToolCall | None = None
    call_id: str = ""
    complete: bool = True


@dataclass
class ResponsePlan:
    """A reply resolved against one request: the output items, the status, the usage."""

    reply: Reply
    body: Mapping[str, Any]
    id: str
    model: str
    created_at: int
    items: list[_Item]
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    incomplete: bool

    @property
    def status(self) -> str:
        return "incomplete" if self.incomplete else "completed"

    def usage(self) -> dict[str, Any] | None:
        usage = self.reply.usage
        if isinstance(usage, Mapping):
            return dict(usage)
        if usage is False:
            return None
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.input_tokens + self.output_tokens,
        }

    def response(
        self, status: str, output: list[dict[str, Any]], error: Any = None
    ) -> dict[str, Any]:
        """The ``Response`` object in a given state; request parameters are echoed back."""
        body = self.body
        final = status not in ("in_progress", "queued")
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": bool(body.get("background")),
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error,
            "incomplete_details": (
                {"reason": "max_output_tokens"} if status == "incomplete" else None
            ),
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "service_tier": "default" if final else "auto",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_logprobs": body.get("top_logprobs", 0),
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": self.usage() if final else None,
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }


def _item_id(prefix: str) -> str:
    return prefix + secrets.token_hex(25)


def plan_response(reply: Reply | None, body: Mapping[str, Any]) -> ResponsePlan:
    """Resolve a scripted (or default) reply against a Responses request body."""
    reply = reply or Reply()
    chat = as_chat_request(body)
    messages = chat["messages"]
    text, refusal = as_tokens(reply.text), as_tokens(reply.refusal)
    calls = list(reply.tool_calls)
    if not reply.has_content:
        calls = default_tool_calls(chat, last_user_text(messages))
        if not calls:
            text = tokenize(default_text(messages))

    items: list[_Item] = []
    if reply.reasoning is not None:
        items.append(_Item("reasoning", _item_id("rs_"), as_tokens(reply.reasoning)))
    if text or refusal or not calls:
        items.append(_Item("message", _item_id("msg_"), text, refusal))
    for call in calls:
        call_id = call.id or "call_" + secrets.token_urlsafe(18).replace("-", "x")[:24]
        pieces = list(call.fragments) if call.fragments is not None else None
        items.append(
            _Item(
                "function_call",
                _item_id("fc_"),
                pieces if pieces is not None else fragments(call.arguments_json),
                call=call,
                call_id=call_id,
            )
        )

    limit = body.get("max_output_tokens")
    budget = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    spent = reasoning = 0
    incomplete = False
    kept: list[_Item] = []
    for item in items:
        if budget is not None and spent >= budget:
            incomplete = True
            break
        for attr in ("tokens", "refusal"):
            tokens: list[str] = getattr(item, attr)
            if budget is not None and spent + len(tokens) > budget:
                setattr(item, attr, tokens[: budget - spent])
                item.complete = False
                incomplete = True
            spent += len(getattr(item, attr))
            if item.kind == "reasoning":
                reasoning += len(getattr(item, attr))
        kept.append(item)
        if incomplete:
            break

    prompt = sum(len(tokenize(message_text(m.get("content")))) + 4 for m in messages)
    return ResponsePlan(
        reply=reply,
        body=body,
        id=_item_id("resp_"),
        model=reply.model or str(body.get("model") or "gpt-4o-mini"),
        created_at=int(time.time()),
        items=kept,
        input_tokens=prompt + 3,
        output_tokens=spent,
        reasoning_tokens=reasoning,
        incomplete=incomplete,
    )


# -- rendering --------------------------------------------------------------------------------


def _done_item(item: _Item) -> dict[str, Any]:
    status = "completed" if item.complete else "incomplete"
    if item.kind == "reasoning":
        return {
            "id": item.id,
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "".join(item.tokens)}],
        }
    if item.kind == "function_call":
        assert item.call is not None
        return {
            "id": item.id,
            "type": "function_call",
            "status": status,
            "arguments": "".join(item.tokens),
            "call_id": item.call_id,
            "name": item.call.name,
        }
    return {
        "id": item.id,
        "type": "message",
        "status": status,
        "content": _parts(item),
        "role": "assistant",
    }


def _parts(item: _Item) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if item.tokens or not item.refusal:
        parts.append(_text_part("".join(item.tokens)))
    if item.refusal:
        parts.append({"type": "refusal", "refusal": "".join(item.refusal)})
    return parts


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _added_item(item: _Item) -> dict[str, Any]:
    if item.kind == "reasoning":
        return {"id": item.id, "type": "reasoning", "summary": []}
    if item.kind == "function_call":
        assert item.call is not None
        return {
            "id": item.id,
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": item.call_id,
            "name": item.call.name,
        }
    return {
        "id": item.id,
        "type": "message",
        "status": "in_progress",
        "content": [],
        "role": "assistant",
    }


def _item_events(item: _Item, index: int) -> Iterator[Event]:
    where = {"item_id": item.id, "output_index": index}
    yield {"type": "response.output_item.added", "output_index": index, "item": _added_item(item)}
    if item.kind == "reasoning":
        summary = {**where, "summary_index": 0}
        text = "".join(item.tokens)
        empty = {"type": "summary_text", "text": ""}
        yield {"type": "response.reasoning_summary_part.added", **summary, "part": empty}
        for token in item.tokens:
            yield {"type": "response.reasoning_summary_text.delta", **summary, "delta": token}
        yield {"type": "response.reasoning_summary_text.done", **summary, "text": text}
        part = {"type": "summary_text", "text": text}
        yield {"type": "response.reasoning_summary_part.done", **summary, "part": part}
    elif item.kind == "function_call":
        for token in item.tokens:
            yield {"type": "response.function_call_arguments.delta", **where, "delta": token}
        arguments = "".join(item.tokens)
        yield {"type": "response.function_call_arguments.done", **where, "arguments": arguments}
    else:
        for content_index, part in enumerate(_parts(item)):
            at = {**where, "content_index": content_index}
            if part["type"] == "refusal":
                yield {
                    "type": "response.content_part.added",
                    **at,
                    "part": {"type": "refusal", "refusal": ""},
                }
                for token in item.refusal:
                    yield {"type": "response.refusal.delta", **at, "delta": token}
                yield {"type": "response.refusal.done", **at, "refusal": part["refusal"]}
            else:
                yield {"type": "response.content_part.added", **at, "part": _text_part("")}
                for token in item.tokens:
                    yield {
                        "type": "response.output_text.delta",
                        **at,
                        "delta": token,
                        "logprobs": [],
                    }
                text = part["text"]
                yield {"type": "response.output_text.done", **at, "text": text, "logprobs": []}
            yield {"type": "response.content_part.done", **at, "part": part}
    yield {"type": "response.output_item.done", "output_index": index, "item": _done_item(item)}


def final_response(plan: ResponsePlan) -> dict[str, Any]:
    """The ``Response`` object the terminal event carries (and a non-streamed call returns)."""
    return plan.response(plan.status, [_done_item(item) for item in plan.items])


def render_events(plan: ResponsePlan) -> list[Event]:
    """Every event of the streamed answer, in order, the terminal one last.

    A background response starts ``queued`` (``response.created``, ``response.queued``).
    """
    events: list[Event] = []
    if plan.body.get("background"):
        queued = plan.response("queued", [])
        events += [
            {"type": "response.created", "response": queued},
            {"type": "response.queued", "response": queued},
        ]
    else:
        events.append({"type": "response.created", "response": plan.response("in_progress", [])})
    events.append({"type": "response.in_progress", "response": plan.response("in_progress", [])})
    for index, item in enumerate(plan.items):
        events.extend(_item_events(item, index))
    events.append({"type": f"response.{plan.status}", "response": final_response(plan)})
    return events


def apply_fault(plan: ResponsePlan, events: list[Event], fault: Fault) -> list[Event]:
    """Put a fault's odd event into the stream: ``after`` counts events already sent.

    ``error`` sends an ``error`` event then ``response.failed`` and ends there, like the real
    API; ``no_done`` leaves out the terminal event. Connection faults (drop, stall) are the
    server's business, not the rendering's.
    """
    terminal = events[-1:] if fault.send_done else []
    body = events[:-1]
    at = min(fault.after, len(body))
    if fault.action == "error":
        error = dict((fault.error or error_body("error", "server_error"))["error"])
        failed = plan.response(
            "failed", [], {"code": error.get("code"), "message": error.get("message")}
        )
        return [
            *body[:at],
            {"type": "error", "error": error},
            {"type": "response.failed", "response": failed},
        ]
    if fault.action == "oversized":
        filler = "x" * max(0, fault.size - 200)
        odd: Event | None = {
            "type": "response.output_text.delta",
            "item_id": plan.items[0].id if plan.items else "msg_",
            "output_index": 0,
            "content_index": 0,
            "delta": filler,
            "logprobs": [],
        }
    elif fault.action == "malformed":
        odd = None
    else:
        return body + terminal
    return [*body[:at], odd or {"malformed": fault.data}, *body[at:], *terminal]


def encode_events(events: Sequence[Event]) -> list[bytes]:
    """SSE blocks with ``event:`` lines, ``sequence_number`` counting from 0.

    A malformed event (a fault) carries no number, so the numbering stays gapless.
    """
    blocks: list[bytes] = []
    number = 0
    for event in events:
        if "malformed" in event:
            data = event["malformed"] or '{"type":"response.output_text.delta","delta":"'
            blocks.append(f"event: response.output_text.delta\ndata: {data}\n\n".encode())
            continue
        payload = {"type": event["type"], "sequence_number": number, **event}
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        blocks.append(f"event: {event['type']}\ndata: {data}\n\n".encode())
        number += 1
    return blocks
