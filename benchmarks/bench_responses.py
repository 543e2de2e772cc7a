"""Responses API throughput: ``ResponseStream`` with a listener against the official package's
``responses.stream()`` helper, reading the same bytes from the same local server.

    python benchmarks/bench_responses.py [--deltas 5000] [--rounds 5]

The server runs in its own process (``--serve``) and answers ``POST /v1/responses`` with a
pre-rendered stream shaped like the real recording
``tests/recordings/responses/05_openai_web_search_annotations.sse``: ``response.created``,
``response.in_progress``, a message item and its text part, ``--deltas`` text deltas (their
texts tiled from the 320 deltas of ``04_openai_reasoning_summary_deltas.sse``, each with
``logprobs`` and ``obfuscation`` as OpenAI sends them), the ``*.done`` events and
``response.completed`` carrying the whole text. The body goes out in 64 KiB writes.

Both contenders are checked first to see the same number of events and the same text. Then
rounds are interleaved (ours, theirs, ours, theirs, ...) and the table shows the median
events per second with the fastest and slowest round, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from contenders import official_client, openai_sse_client  # noqa: E402
from run import markdown  # noqa: E402

from openai_sse import ResponseListener  # noqa: E402

RECORDINGS = REPO / "tests" / "recordings" / "responses"
SHAPE = RECORDINGS / "05_openai_web_search_annotations.sse"
TEXTS = RECORDINGS / "04_openai_reasoning_summary_deltas.sse"
BATCH = 64 * 1024
MODEL = "gpt-5.2"
TARGET = 25.0


# -- the stream ------------------------------------------------------------------------------


def _payloads(path: Path) -> list[dict[str, Any]]:
    blocks = path.read_text("utf-8").split("\n\n")
    out = []
    for block in blocks:
        for line in block.split("\n"):
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
    return out


def build_stream(deltas: int) -> tuple[bytes, int, str]:
    """The SSE body, its number of events and the answer text."""
    shape = {p["type"]: p for p in _payloads(SHAPE)}
    texts = [
        p["delta"] for p in _payloads(TEXTS) if p["type"] == "response.reasoning_summary_text.delta"
    ]
    pieces = [texts[i % len(texts)] for i in range(deltas)]
    text = "".join(pieces)
    created = shape["response.created"]["response"]
    item = shape["response.output_item.added"]["item"]
    item_id = item["id"]
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
    done_part = {**part, "text": text}
    done_item = {**item, "status": "completed", "content": [done_part]}
    final = {
        **shape["response.completed"]["response"],
        "output": [done_item],
        "usage": {
            "input_tokens": 20,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": deltas,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 20 + deltas,
        },
    }
    common = {"item_id": item_id, "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": created},
        {"type": "response.in_progress", "response": created},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.content_part.added", **common, "part": part},
    ]
    obfuscation = "Ll9YM13tlUL"
    events += [
        {
            "type": "response.output_text.delta",
            **common,
            "delta": piece,
            "logprobs": [],
            "obfuscation": obfuscation[: 1 + i % len(obfuscation)],
        }
        for i, piece in enumerate(pieces)
    ]
    events += [
        {"type": "response.output_text.done", **common, "logprobs": [], "text": text},
        {"type": "response.content_part.done", **common, "part": done_part},
        {"type": "response.output_item.done", "output_index": 0, "item": done_item},
        {"type": "response.completed", "response": final},
    ]
    out = []
    for number, event in enumerate(events):
        event["sequence_number"] = number
        data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        out.append(f"event: {event['type']}\ndata: {data}\n\n".encode())
    return b"".join(out), len(events), text


# -- the server (its own process) ------------------------------------------------------------


def serve(deltas: int) -> None:
    from aiohttp import web

    body, _, _ = build_stream(deltas)

    async def responses(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for start in range(0, len(body), BATCH):
            await response.write(body[start : start + BATCH])
        await response.write_eof()
        return response

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/responses", responses)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]  # the port the OS picked for port 0
        print(f"PORT {port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
        await runner.cleanup()

    asyncio.run(main())


# -- the contenders --------------------------------------------------------------------------


class _Text(ResponseListener):
    def __init__(self) -> None:
        self.parts: list[str] = []

    def on_content(self, stream: Any, delta: str, index: int) -> None:
        self.parts.append(delta)


async def run_ours(client: Any) -> tuple[int, str]:
    listener = _Text()
    stream = client.responses.stream(model=MODEL, input="Tell me.", listeners=[listener])
    response = await stream
    text = "".join(listener.parts)
    if response.output_text != text:
        raise AssertionError("the final response differs from the streamed text")
    return stream.metrics.chunks, text


async def run_official(client: Any) -> tuple[int, str]:
    parts = []
    count = 0
    async with client.responses.stream(model=MODEL, input="Tell me.") as stream:
        async for event in stream:
            count += 1
            if event.type == "response.output_text.delta":
                parts.append(event.delta)
        response = await stream.get_final_response()
    text = "".join(parts)
    if response.output_text != text:
        raise AssertionError("the final response differs from the streamed text")
    return count, text


async def measure(base_url: str, deltas: int, rounds: int) -> dict[str, Any]:
    _, events, text = build_stream(deltas)
    ours = openai_sse_client(base_url)
    theirs = official_client(base_url)
    contenders = {
        "openai_sse": ("openai_sse, ResponseStream + ResponseListener", run_ours, ours),
        "openai": ("openai, responses.stream() helper", run_official, theirs),
    }
    try:
        for _, run, client in contenders.values():
            if await run(client) != (events, text):
                raise AssertionError(f"{run.__name__} did not see the recorded stream")
        times: dict[str, list[float]] = {key: [] for key in contenders}
        for round_ in range(rounds):
            for key, (_, run, client) in contenders.items():
                started = time.perf_counter()
                await run(client)
                times[key].append(time.perf_counter() - started)
            print(f"  round {round_ + 1}/{rounds} done", flush=True)
    finally:
        await ours.close()
        await theirs.close()
    rows: dict[str, dict[str, Any]] = {
        key: {
            "name": name,
            "seconds": times[key],
            "events_per_s": events / statistics.median(times[key]),
            "slowest_events_per_s": events / max(times[key]),
            "fastest_events_per_s": events / min(times[key]),
        }
        for key, (name, _, _) in contenders.items()
    }
    ratio = rows["openai_sse"]["events_per_s"] / rows["openai"]["events_per_s"]
    return {"events": events, "rounds": rounds, "rows": rows, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deltas", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.deltas)
        return
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--deltas", str(args.deltas)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the server did not start: {line!r}")
        base_url = f"http://127.0.0.1:{int(line.split()[1])}/v1"
        result = asyncio.run(measure(base_url, args.deltas, args.rounds))
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)
    table = [
        (
            row["name"],
            round(row["events_per_s"]),
            f"{round(row['slowest_events_per_s'])} - {round(row['fastest_events_per_s'])}",
        )
        for row in result["rows"].values()
    ]
    print(
        f"\nResponses stream of {result['events']:,} events, median of "
        f"{result['rounds']} interleaved rounds\n"
    )
    print(markdown(["reader", "events/s (median)", "slowest - fastest round"], table))
    verdict = "meets" if result["ratio"] >= TARGET else "misses"
    print(f"\nratio of the medians: {result['ratio']:.1f}x ({verdict} the {TARGET:.0f}x target)")


if __name__ == "__main__":
    main()
