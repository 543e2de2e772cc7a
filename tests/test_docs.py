"""The documentation holds: runnable snippets run, examples run, the reference covers the API.

A Python block in a Markdown file that follows a ``<!-- runnable ... -->`` comment is run as
a script, with ``OPENAI_BASE_URL`` pointing at a MockServer, so snippets that use ``Client()``
from the environment stay offline.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import sys
from pathlib import Path

import pytest

from openai_sse.testing import MockServer

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0
RUNNABLE = re.compile(r"<!-- runnable\b[^>]*-->\s*\n```python\n(.*?)\n```", re.S)


def runnable_blocks() -> list[tuple[str, str]]:
    blocks = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, match in enumerate(RUNNABLE.finditer(path.read_text("utf-8")), 1):
            blocks.append((f"{path.relative_to(ROOT)}#{number}", match.group(1)))
    return blocks


BLOCKS = runnable_blocks()


def test_the_readme_and_both_quickstarts_have_runnable_blocks() -> None:
    sources = {name.split("#")[0] for name, _ in BLOCKS}
    assert {"README.md", "docs/quickstart.md", "docs/quickstart.zh.md"} <= sources


async def run_python(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        *args,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.communicate()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def offline_env(base_url: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(OPENAI_BASE_URL=base_url, OPENAI_API_KEY="sk-docs", PYTHONIOENCODING="utf-8")
    return env


@pytest.mark.parametrize(("name", "code"), BLOCKS, ids=[name for name, _ in BLOCKS])
async def test_runnable_snippet(name: str, code: str) -> None:
    async with MockServer(delay=0) as server:
        code_, out, err = await run_python("-c", code, env=offline_env(server.base_url))
    assert code_ == 0, err
    assert out.strip(), "the snippet printed nothing"
    assert err == ""


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.py")), ids=lambda p: p.name)
async def test_example_runs(example: Path) -> None:
    async with MockServer(delay=0) as server:
        code, out, err = await run_python(str(example), env=offline_env(server.base_url))
    assert code == 0, err
    assert out.strip()
    assert "Traceback" not in err


# --------------------------------------------------------------------------------------------
# API reference
# --------------------------------------------------------------------------------------------


def documented_modules() -> set[str]:
    found = set()
    for page in (ROOT / "docs" / "reference").glob("*.md"):
        found.update(re.findall(r"^::: ([\w.]+)\s*$", page.read_text("utf-8"), re.M))
    return found


PUBLIC_PACKAGES = [
    name
    for name in (
        "openai_sse",
        "openai_sse.testing",
        "openai_sse.responses",
        "openai_sse.listeners",
        "openai_sse.relay",
    )
    if importlib.util.find_spec(name) is not None
]


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_the_reference_covers_every_public_name(package: str) -> None:
    """Each name in ``__all__`` is rendered by a ``:::`` directive of docs/reference.

    A directive for a module renders the names it defines, and the names of its ``__all__``
    (which is how a package's re-exports and type aliases appear).
    """
    documented = documented_modules()
    module = importlib.import_module(package)
    missing = []
    for name in module.__all__:
        if name.startswith("__"):
            continue
        where = getattr(getattr(module, name), "__module__", None)
        exported = any(
            name in getattr(importlib.import_module(m), "__all__", ()) for m in documented
        )
        if where not in documented and not exported:
            missing.append(f"{name} ({where})")
    assert not missing, f"not in docs/reference: {missing}"


def test_every_docs_page_is_in_the_site_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text("utf-8").split("\nnav:\n", 1)[1]
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    missing = sorted(page for page in pages if page not in nav)
    assert not missing, f"add these pages to the nav in mkdocs.yml: {missing}"


async def test_the_websocket_relay_example_serves_a_browser_without_warnings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The listeners.md WebSocket app, run as written (web.AppKey: no NotAppKeyWarning)."""
    import warnings

    import aiohttp
    from aiohttp import web

    from openai_sse.testing import default_text

    text = (ROOT / "docs" / "listeners.md").read_text("utf-8")
    match = re.search(r"<!-- websocket-example\b[^>]*-->\s*\n```python\n(.*?)\n```", text, re.S)
    assert match is not None
    namespace: dict[str, object] = {"__name__": "websocket_example"}
    async with MockServer(delay=0) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-docs")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            exec(compile(match.group(1), "listeners.md", "exec"), namespace)
            make_app = namespace["make_app"]
            assert callable(make_app)
            runner = web.AppRunner(make_app())
            await runner.setup()  # runs the cleanup context that stores the Client
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            url = f"http://127.0.0.1:{runner.addresses[0][1]}/chat"
            async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
                await ws.send_str("hello")
                messages = [await asyncio.wait_for(ws.receive_json(), TIMEOUT)]
                while messages[-1]["type"] == "token":
                    messages.append(await asyncio.wait_for(ws.receive_json(), TIMEOUT))
        finally:
            await runner.cleanup()
    assert messages[-1]["type"] == "done" and messages[-1]["tokens"] > 0
    answer = "".join(m["text"] for m in messages[:-1])
    assert answer == default_text([{"role": "user", "content": "hello"}])
