"""Suite-wide guards: anything leaked or never retrieved fails the test that caused it."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from .servers import LocalServer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--uvloop", action="store_true", help="run every test on uvloop's event loop")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--uvloop"):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


@pytest.fixture(autouse=True)
async def _loop_guard() -> AsyncIterator[None]:
    """Fail on unclosed sessions/connectors and 'Task exception was never retrieved'.

    aiohttp and asyncio report those through the loop's exception handler rather than by
    raising, so a test would otherwise pass while leaking.
    """
    loop = asyncio.get_running_loop()
    reports: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reports.append(context))
    yield
    # Let closed transports finish, then finalise garbage so leaks are reported here.
    await asyncio.sleep(0)
    gc.collect()
    await asyncio.sleep(0)
    loop.set_exception_handler(previous)
    messages = [str(r.get("message")) + ": " + repr(r.get("exception")) for r in reports]
    assert not messages, "loop reported problems:\n" + "\n".join(messages)


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    """A loopback server the test gives its routes (modules serving a MockServer override it)."""
    async with LocalServer() as s:
        yield s


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s
