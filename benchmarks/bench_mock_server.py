"""The embedded server (``MockServer``) under load, measured from clients on 127.0.0.1.

* unpaced: ``--clients`` concurrent aiohttp clients each stream ``--requests`` chat
  completions in a row (``delay=0``); chunks per second over the round, and per second of
  server CPU time;
* paced: ``--streams`` concurrent streams at ``--rate`` tokens per second each, read by plain
  asyncio protocols (see ``_Arrivals``); how well the server keeps the schedule: a stream's
  span from its request to its last chunk against the ideal ``chunks / rate`` (1.00 is
  exact), and each chunk's lateness against ``sent + k / rate``.

The server runs in a child process, so the clients' work does not share its event loop. It
imports ``openai_sse`` the usual way, so putting another version of the package first on
``PYTHONPATH`` measures that version with the same clients. Medians with min and max over
``--rounds`` rounds::

    .venv/bin/python benchmarks/bench_mock_server.py [--rounds 5] [--only unpaced|paced]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

PROMPT = (
    "Please describe, in a few friendly sentences, how a streaming chat completion reaches "
    "a browser through a relay, what happens when the connection drops, and how resuming works"
)
BODY = json.dumps(
    {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": PROMPT}]}
).encode()
CHUNK = b"data: {"


# -- the server process -----------------------------------------------------------------------


async def serve(delay: float, tokens: int, count: int) -> None:
    from openai_sse.testing import MockServer, Reply

    async with MockServer(delay=delay) as server:
        if tokens:
            # one reply object queued many times: works with every version of the server
            reply = Reply(text=[f" word{i % 10}" for i in range(tokens)])
            server.enqueue(*[reply] * count)
        print(f"PORT {server.port}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


class ServerProcess:
    def __init__(self, delay: float, tokens: int = 0, count: int = 0) -> None:
        command = [sys.executable, __file__, "--serve", "--delay", repr(delay)]
        command += ["--tokens", str(tokens), "--count", str(count)]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}/v1/chat/completions"

    def cpu(self) -> float:
        """CPU seconds the server process has used so far (user + system)."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)


# -- unpaced ----------------------------------------------------------------------------------


async def unpaced_round(server: ServerProcess, clients: int, requests: int) -> tuple[float, float]:
    """Chunks per second delivered to ``clients`` clients streaming ``requests`` answers each,
    and chunks per second of server CPU time (what the server could do on a core of its own).
    """
    url = server.url
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        headers = {"Content-Type": "application/json"}

        async def client() -> int:
            chunks = 0
            for _ in range(requests):
                async with session.post(url, data=BODY, headers=headers) as resp:
                    chunks += (await resp.read()).count(CHUNK)
            return chunks

        await client()  # warm the connection pool and any cache alike for every version
        started, cpu = time.perf_counter(), server.cpu()
        total = sum(await asyncio.gather(*(client() for _ in range(clients))))
        return total / (time.perf_counter() - started), total / (server.cpu() - cpu)


# -- paced ------------------------------------------------------------------------------------


class _Arrivals(asyncio.Protocol):
    """One paced stream read at the socket: the arrival time of every ``data: {`` chunk.

    aiohttp's client spends tens of microseconds per chunk, so 1,000 aiohttp streams at 50
    chunks/s would measure the client, not the server; a protocol only counts bytes.
    """

    def __init__(self, request: bytes, done: asyncio.Future[None]) -> None:
        self.request, self.done = request, done
        self.arrivals: list[float] = []
        self.tail = b""
        self.sent = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.sent = asyncio.get_running_loop().time()
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        seen = self.tail + data
        count = seen.count(CHUNK) - self.tail.count(CHUNK)
        self.arrivals.extend([asyncio.get_running_loop().time()] * count)
        self.tail = seen[-(len(CHUNK) - 1) :]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def paced_round(
    server: ServerProcess, streams: int, rate: float, ramp: float
) -> dict[str, float]:
    """Schedule keeping of ``streams`` concurrent streams paced at ``rate`` chunks per second,
    started evenly over ``ramp`` seconds. Chunk ``k`` (from 1) is due ``k / rate`` after its
    request was sent; a stream's span is its last chunk's time over that ideal. Also the
    server's CPU time per chunk, and how late the clients' own event loop ran (if that is
    large, the clients and not the server are behind).
    """
    host, port = "127.0.0.1", int(server.url.split(":")[2].split("/")[0])
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
    )
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    finished = False

    async def watch_loop() -> None:
        while not finished:
            due = loop.time() + 0.01
            await asyncio.sleep(0.01)
            lags.append(loop.time() - due)

    async def stream(number: int) -> _Arrivals:
        await asyncio.sleep(number * ramp / streams)
        done: asyncio.Future[None] = loop.create_future()
        transport, protocol = await loop.create_connection(
            lambda: _Arrivals(request, done), host, port
        )
        await done
        transport.close()
        return protocol

    watcher = asyncio.ensure_future(watch_loop())
    cpu = server.cpu()
    results = await asyncio.gather(*(stream(n) for n in range(streams)))
    cpu = server.cpu() - cpu
    finished = True
    await watcher
    period = 1.0 / rate
    spans, lateness = [], []
    for result in results:
        arrivals = result.arrivals
        spans.append((arrivals[-1] - result.sent) / (len(arrivals) * period))
        lateness.extend(t - (result.sent + k * period) for k, t in enumerate(arrivals, 1))
    lateness.sort()
    spans.sort()
    lags.sort()
    return {
        "span_median": statistics.median(spans),
        "span_p99": spans[int(len(spans) * 0.99) - 1],
        "late_p50_ms": 1000 * lateness[len(lateness) // 2],
        "late_p99_ms": 1000 * lateness[int(len(lateness) * 0.99) - 1],
        "server_cpu_us_per_chunk": 1e6 * cpu / sum(len(r.arrivals) for r in results),
        "client_loop_lag_p99_ms": 1000 * lags[int(len(lags) * 0.99) - 1],
    }


# -- reporting --------------------------------------------------------------------------------


def spread(values: Sequence[float], fmt: Callable[[float], str]) -> str:
    return f"{fmt(statistics.median(values))} (min {fmt(min(values))}, max {fmt(max(values))})"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--tokens",
        type=int,
        default=0,
        help="unpaced answers of this many tokens (default: the default reply, 84 chunks)",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--requests", type=int, default=20, help="per client and round")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="tokens per second")
    parser.add_argument("--paced-tokens", type=int, default=500, help="tokens per paced answer")
    parser.add_argument("--ramp", type=float, default=1.0, help="seconds to start all streams")
    parser.add_argument("--only", choices=("unpaced", "paced"))
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.delay, args.tokens, args.count))
        return
    report: dict[str, Any] = {}
    if args.only != "paced":
        count = (args.clients + 1) * args.requests * args.rounds if args.tokens else 0
        server = ServerProcess(0.0, args.tokens, count)
        try:
            results = [
                asyncio.run(unpaced_round(server, args.clients, args.requests))
                for _ in range(args.rounds)
            ]
        finally:
            server.close()
        rates, per_cpu = [r[0] for r in results], [r[1] for r in results]
        report["unpaced_chunks_per_s"] = rates
        report["unpaced_chunks_per_server_cpu_s"] = per_cpu
        answer = f"{args.tokens}-token answers" if args.tokens else "default answers"
        print(f"unpaced, {args.clients} clients, {answer}:")
        print(f"  chunks/s: {spread(rates, lambda v: f'{v:,.0f}')}")
        print(f"  chunks per server CPU second: {spread(per_cpu, lambda v: f'{v:,.0f}')}")
    if args.only != "unpaced":
        count = (args.streams + 1) * args.rounds
        server = ServerProcess(1.0 / args.rate, args.paced_tokens, count)
        try:
            rounds = [
                asyncio.run(paced_round(server, args.streams, args.rate, args.ramp))
                for _ in range(args.rounds)
            ]
        finally:
            server.close()
        report["paced"] = rounds
        print(
            f"paced, {args.streams} streams x {args.rate:g} tokens/s, "
            f"{args.paced_tokens}-token answers:"
        )
        for key, label in (
            ("span_median", "span / ideal, median stream"),
            ("span_p99", "span / ideal, p99 stream"),
            ("late_p50_ms", "chunk lateness p50 (ms)"),
            ("late_p99_ms", "chunk lateness p99 (ms)"),
            ("server_cpu_us_per_chunk", "server CPU per chunk (us)"),
            ("client_loop_lag_p99_ms", "client event loop lag p99 (ms)"),
        ):
            print(f"  {label}: {spread([r[key] for r in rounds], lambda v: f'{v:.3f}')}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
