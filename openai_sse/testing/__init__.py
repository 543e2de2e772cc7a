"""Test helpers: an embedded OpenAI-compatible streaming server with scripts and faults.

It serves ``/v1/chat/completions`` and ``/v1/responses`` (streamed or not, background mode
and resume); one script of :class:`Reply` / :class:`Raw` / :class:`Fault` items drives both.

``MockServer`` pulls in aiohttp's server side, so it is loaded on first use; that keeps the
auto-loaded pytest plugin cheap for suites that never touch it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from .defaults import default_text
from .faults import Fault, error_body
from .script import Raw, Reply, ScriptItem, ToolCall, load_script
from .tokens import tokenize

if TYPE_CHECKING:
    from .server import MockServer, RecordedRequest

__all__ = [
    "Fault",
    "MockServer",
    "Raw",
    "RecordedRequest",
    "Reply",
    "ScriptItem",
    "ToolCall",
    "default_text",
    "error_body",
    "load_script",
    "tokenize",
]


__getattr__ = lazy_attributes(
    __name__, {"MockServer": "server", "RecordedRequest": "server"}, globals()
)
