"""The relay: streams answers to browsers, stops them, and resumes them on any instance.

``Relay`` (or :func:`create_app`) is an aiohttp application in front of an upstream
OpenAI-compatible API: a byte-for-byte pass-through of ``/v1/chat/completions`` and
``/v1/responses``, resumable streams under ``/v1/streams`` kept in a store
(:class:`MemoryStore`, or :class:`RedisStore` to share them between processes), and a chat
page at ``/``. ``RedisStore`` needs the ``openai-sse[redis]`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .app import DEFAULT_GRACE, DEFAULT_KEEPALIVE, Relay, create_app
from .memory_store import MemoryStore
from .store import InvalidEventId, Store, StoreUnavailable, StreamEvent

if TYPE_CHECKING:
    from .redis_store import RedisStore

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_KEEPALIVE",
    "InvalidEventId",
    "MemoryStore",
    "RedisStore",
    "Relay",
    "Store",
    "StoreUnavailable",
    "StreamEvent",
    "create_app",
]


def __getattr__(name: str) -> Any:
    if name == "RedisStore":  # loaded on use: redis is an optional dependency
        from .redis_store import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
