"""pytest plugin (auto-loaded through the ``pytest11`` entry point): ``openai_mock_server``.

It imports nothing heavy until the fixture is used, and without pytest-asyncio it still loads
(the fixture then fails with a clear message instead of breaking collection).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .server import MockServer

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - exercised only where pytest-asyncio is absent
    pytest_asyncio = None  # type: ignore[assignment]

__all__ = ["openai_mock_server"]


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def openai_mock_server() -> AsyncIterator[MockServer]:
        """A started :class:`~openai_sse.testing.MockServer` with ``delay=0``, closed afterwards."""
        from .server import MockServer

        async with MockServer(delay=0) as server:
            yield server

else:  # pragma: no cover

    @pytest.fixture
    def openai_mock_server() -> None:
        """Needs pytest-asyncio."""
        pytest.fail(
            "the openai_mock_server fixture needs pytest-asyncio (pip install pytest-asyncio)"
        )
