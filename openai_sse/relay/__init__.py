"""The relay: streams answers to browsers, stops them, and resumes them on any instance.

``Relay`` (or :func:`create_app`) is an aiohttp application in front of an upstream
OpenAI-compatible API: a byte-for-byte pass-through of ``/v1/chat/completions`` and
``/v1/responses``, resumable streams under ``/v1/streams`` kept in a store
(:class:`MemoryStore`, :class:`RedisStore` to share them between processes, or any other
:class:`Store`; one kept in this process may also offer :class:`LocalStore`, the relay's
fast path), and a chat page at ``/``. ``RedisStore`` needs the ``openai-sse[redis]`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from .app import DEFAULT_GRACE, DEFAULT_KEEPALIVE, Relay, create_app
    from .memory_store import MemoryStore
    from .redis_store import RedisStore
    from .store import (
        FrameSink,
        InvalidEventId,
        LocalStore,
        Store,
        StoreUnavailable,
        StreamEvent,
        event_frame,
    )

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_KEEPALIVE",
    "FrameSink",
    "InvalidEventId",
    "LocalStore",
    "MemoryStore",
    "RedisStore",
    "Relay",
    "Store",
    "StoreUnavailable",
    "StreamEvent",
    "create_app",
    "event_frame",
]


# Loaded on first use: the command line stays quick to start, and redis stays optional.
_HOMES = {
    "DEFAULT_GRACE": "app",
    "DEFAULT_KEEPALIVE": "app",
    "Relay": "app",
    "create_app": "app",
    "MemoryStore": "memory_store",
    "RedisStore": "redis_store",
    "FrameSink": "store",
    "InvalidEventId": "store",
    "LocalStore": "store",
    "Store": "store",
    "StoreUnavailable": "store",
    "StreamEvent": "store",
    "event_frame": "store",
}


__getattr__ = lazy_attributes(__name__, _HOMES, globals())
