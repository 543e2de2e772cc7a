"""Running a command's coroutine on the event loop it asks for: uvloop or asyncio.

The servers (``openai-sse relay`` and ``openai-sse serve``) spend most of their time in the
loop's transports and callbacks, a few system calls and wake-ups per chunk; uvloop's cost a
fraction of asyncio's. uvloop is optional (``pip install 'openai-sse[uvloop]'``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

__all__ = ["LOOPS", "loop_name", "run", "uvloop_installed"]

_T = TypeVar("_T")

LOOPS: Final = ("auto", "asyncio", "uvloop")
"""``auto``: uvloop when installed, else asyncio."""


def uvloop_installed() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def loop_name() -> str:
    """``uvloop`` or ``asyncio``: what the running loop is, for a server's start-up line."""
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]


def run(main: Coroutine[Any, Any, _T], loop: str = "auto") -> _T:
    """``asyncio.run`` on uvloop when installed (``auto``) or asked for, else on asyncio."""
    if loop not in LOOPS:
        main.close()
        raise ValueError(f"loop must be one of {', '.join(LOOPS)}, not {loop!r}")
    if loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if loop == "uvloop":
                main.close()
                raise RuntimeError(
                    "--loop uvloop needs uvloop: pip install 'openai-sse[uvloop]'"
                ) from None
        else:
            return uvloop.run(main)
    return asyncio.run(main)
