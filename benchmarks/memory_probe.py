"""Memory held by idle open streams, measured in a fresh interpreter.

    python benchmarks/memory_probe.py {openai_sse,aiohttp} STREAMS BASE_URL [--tracemalloc]

Opens ``STREAMS`` streams against the benchmark server in ``hold`` mode (one chunk, then
silence), waits until every stream has received its first chunk, and prints one JSON line with
the growth of the resident set size and, with ``--tracemalloc``, of the memory traced by
Python's allocator. A first stream is opened and cancelled before the baseline, so lazily
imported modules and caches are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402

from openai_sse import ChatListener, Client, Timeout  # noqa: E402

if TYPE_CHECKING:
    from openai_sse.chat.params import ChatCompletionMessageParam

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hi"}]
BODY = {"model": "gpt-4.1-nano", "messages": MESSAGES, "stream": True}
WAIT_LIMIT = 60.0


def rss_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure() -> tuple[int, int]:
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
    return rss_bytes(), traced


class _Opened(ChatListener):
    def __init__(self, counter: list[int], event: asyncio.Event, target: int) -> None:
        self.counter = counter
        self.event = event
        self.target = target

    def on_chunk(self, stream: Any, chunk: Any) -> None:
        self.counter[0] += 1
        if self.counter[0] >= self.target:
            self.event.set()


async def _around(
    streams: int,
    open_many: Callable[[int, str], Awaitable[list[Any]]],
    close_all: Callable[[list[Any]], Awaitable[None]],
) -> dict[str, Any]:
    """Memory before and after opening ``streams`` idle streams, after a warm-up stream."""
    await close_all(await open_many(1, "warm"))
    before = measure()
    handles = await open_many(streams, "m")
    after = measure()
    await close_all(handles)
    return {"before": before, "after": after}


async def hold_openai_sse(base_url: str, streams: int) -> dict[str, Any]:
    client = Client(api_key="x", base_url=base_url, timeout=Timeout(connect=30.0))

    async def open_many(count: int, label: str) -> list[Any]:
        counter = [0]
        ready = asyncio.Event()
        handles = [
            client.chat.stream(
                model="gpt-4.1-nano",
                messages=MESSAGES,
                listeners=[_Opened(counter, ready, count)],
                extra_headers={"x-bench-mode": "hold", "x-bench-id": f"{label}{i}"},
            )
            for i in range(count)
        ]
        await asyncio.wait_for(ready.wait(), WAIT_LIMIT)
        return handles

    async def close_all(handles: list[Any]) -> None:
        for handle in handles:
            handle.cancel()
        await asyncio.gather(*(h.aclose() for h in handles), return_exceptions=True)

    try:
        return await _around(streams, open_many, close_all)
    finally:
        await client.close()


async def hold_aiohttp(base_url: str, streams: int) -> dict[str, Any]:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None)
    )
    url = f"{base_url}/chat/completions"

    async def one(label: str, ready: asyncio.Event, counter: list[int], target: int) -> None:
        headers = {"x-bench-mode": "hold", "x-bench-id": label}
        async with session.post(url, json=BODY, headers=headers) as response:
            await response.content.readany()
            counter[0] += 1
            if counter[0] >= target:
                ready.set()
            while await response.content.readany():
                pass

    async def open_many(count: int, label: str) -> list[asyncio.Task[None]]:
        counter = [0]
        ready = asyncio.Event()
        tasks = [
            asyncio.create_task(one(f"{label}{i}", ready, counter, count)) for i in range(count)
        ]
        await asyncio.wait_for(ready.wait(), WAIT_LIMIT)
        return tasks

    async def close_all(tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        return await _around(streams, open_many, close_all)
    finally:
        await session.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["openai_sse", "aiohttp"])
    parser.add_argument("streams", type=int)
    parser.add_argument("base_url")
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.streams + 256 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.streams + 256, hard))
    if args.tracemalloc:
        tracemalloc.start()
    run = hold_openai_sse if args.kind == "openai_sse" else hold_aiohttp
    started = time.perf_counter()
    result = asyncio.run(run(args.base_url, args.streams))
    (rss0, traced0), (rss1, traced1) = result["before"], result["after"]
    print(
        json.dumps(
            {
                "kind": args.kind,
                "streams": args.streams,
                "tracemalloc": args.tracemalloc,
                "rss_delta": rss1 - rss0,
                "traced_delta": traced1 - traced0,
                "seconds": time.perf_counter() - started,
            }
        )
    )


if __name__ == "__main__":
    main()
