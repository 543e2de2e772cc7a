"""``openai-sse relay`` started as a user would: offline, in memory, with a token."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aiohttp
import pytest

from openai_sse._loops import run
from openai_sse.testing import default_text

from .helpers import CHAT, collect, content, final, relay_process, start

TOKEN = "relay-process-token-0123456789"


async def test_offline_relay_process_with_a_token(http: aiohttp.ClientSession) -> None:
    async with relay_process("--token", TOKEN, "--rate", "0") as url:
        async with http.get(url + "/") as page:
            assert page.status == 200
            assert page.headers["Content-Type"].startswith("text/html")
            assert TOKEN not in await page.text()
        async with http.post(url + "/v1/streams", json=CHAT) as reply:
            assert reply.status == 401
        stream_id = await start(http, url, headers={"Authorization": f"Bearer {TOKEN}"})
        params = {"access_token": TOKEN}
        async with http.get(f"{url}/v1/streams/{stream_id}", params=params) as response:
            got = await collect(response)
    kind, completion = final(got)
    assert kind == "done"
    assert content(got) == completion["choices"][0]["message"]["content"]
    assert content(got) == default_text(CHAT["messages"])


def test_rate_needs_the_embedded_server() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "openai_sse", "relay", "--upstream", "http://x/v1", "--rate", "5"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--rate" in result.stderr


@pytest.mark.parametrize(("choice", "module"), [("asyncio", "asyncio"), ("uvloop", "uvloop")])
def test_the_event_loop_is_chosen(choice: str, module: str) -> None:
    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__.split(".")[0]

    assert run(loop_module(), choice) == module
    assert run(loop_module()) == "uvloop"  # auto: uvloop, installed with the dev extra
    with pytest.raises(ValueError, match="loop"):
        run(loop_module(), "trio")
