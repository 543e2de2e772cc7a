"""The mock server under test and a session with a bounded timeout to talk to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from openai_sse.testing import MockServer


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer(delay=0) as srv:
        yield srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as sess:
        yield sess
