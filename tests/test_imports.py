"""``import openai_sse`` loads the chat layer only; the rest of the public names load on use."""

from __future__ import annotations

import json
import subprocess
import sys

import openai_sse

LAZY_MODULES = ("openai_sse.responses", "openai_sse.listeners", "openai_sse.relay", "difflib")


def run(code: str) -> object:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout)


def test_import_leaves_optional_parts_unloaded() -> None:
    loaded = run(
        "import json, sys; import openai_sse; "
        f"print(json.dumps([m for m in {list(LAZY_MODULES)!r} if m in sys.modules]))"
    )
    assert loaded == []


def test_a_client_and_a_chat_stream_leave_them_unloaded() -> None:
    # A plain request with a listener: no response_format, no tool class, no partial hooks.
    code = """
import asyncio, json, sys
from openai_sse import ChatListener, Client
from openai_sse.client import _structured_output

class Printer(ChatListener):
    def on_content(self, stream, delta, index):
        pass

body = {"model": "m", "messages": [], "tools": [{"type": "function", "function": {"name": "f"}}]}
assert _structured_output(body, [Printer()]) is None
Client(api_key="k")
print(json.dumps([m for m in ("openai_sse.responses", "openai_sse.listeners") if m in sys.modules]))
"""
    assert run(code) == []


def test_every_public_name_resolves() -> None:
    code = """
import json, sys
import openai_sse
names = [n for n in openai_sse.__all__ if getattr(openai_sse, n, None) is None]
print(json.dumps([names, "openai_sse.responses" in sys.modules, "openai_sse.listeners" in sys.modules]))
"""
    assert run(code) == [[], True, True]
    assert set(openai_sse.__all__) <= set(dir(openai_sse))
    assert openai_sse.ResponseStream.__module__ == "openai_sse.responses.stream"
    assert openai_sse.StructuredOutputError.__name__ == "StructuredOutputError"


def test_client_responses_is_made_once_on_first_use() -> None:
    client = openai_sse.Client(api_key="k")
    assert "responses" not in vars(client)
    assert client.responses is client.responses


def test_structured_output_still_applies_when_asked() -> None:
    from openai_sse.client import _structured_output

    body = {"model": "m", "response_format": {"type": "json_object"}}
    assert _structured_output(body, ()) is not None
