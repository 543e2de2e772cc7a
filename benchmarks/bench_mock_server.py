"""The embedded server (``MockServer``) under load, measured from clients on 127.0.0.1.

* unpaced: ``--clients`` keep-alive connections each stream ``--requests`` chat completions
  in a row (``delay=0``), read by plain asyncio protocols that count chunks at the socket (see
  ``_Client``; every answer must have the right number of chunks, and a sample is checked in
  full); chunks per second over the round, and the server's CPU time per chunk;
* paced: ``--streams`` concurrent streams at ``--rate`` tokens per second each, read by plain
  asyncio protocols (see ``_Arrivals``); how well the server keeps the schedule: a stream's
  span from its request to its last chunk against the ideal ``chunks / rate`` (1.00 is
  exact), and each chunk's lateness against ``sent + k / rate``.

The server runs in a child process, so the clients' work does not share its event loop. It
imports ``openai_sse`` the usual way; ``--baseline DIR`` also runs a server with ``DIR`` first
on its ``PYTHONPATH`` (say a ``git worktree`` of an older commit), in rounds taking turns with
this tree's, and reports the ratios round by round. Medians with min and max over
``--rounds`` rounds::

    .venv/bin/python benchmarks/bench_mock_server.py [--rounds 5] [--only unpaced|paced]
        [--baseline DIR]
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
    """The server in a child process; ``path`` first on its ``PYTHONPATH`` picks the version."""

    def __init__(self, delay: float, tokens: int = 0, count: int = 0, path: str = "") -> None:
        command = [sys.executable, __file__, "--serve", "--delay", repr(delay)]
        command += ["--tokens", str(tokens), "--count", str(count)]
        env = dict(os.environ)
        if path:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}/v1/chat/completions"

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

_END = b"\r\n0\r\n\r\n"  # the last chunk of a chunked HTTP body
_TAIL = max(len(CHUNK), len(_END)) - 1


class _Client(asyncio.Protocol):
    """One keep-alive connection streaming ``requests`` answers back to back, read at the socket.

    aiohttp's client costs more per answer than the server does, so 100 of them in one process
    would measure themselves; this counts ``data: {`` chunks as bytes arrive and takes an answer
    as complete at the last chunk of its chunked body. Each answer must hold ``expected``
    chunks, and the bytes of the first and last answers are kept for a full check afterwards.
    """

    def __init__(
        self, request: bytes, requests: int, expected: int, done: asyncio.Future[None]
    ) -> None:
        self.request, self.left, self.expected, self.done = request, requests, expected, done
        self.transport: asyncio.Transport | None = None
        self.chunks = 0  # in the answer being read
        self.total = 0
        self.tail = b""
        self.parts: list[bytes] | None = []
        self.kept: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.parts is not None:
            self.parts.append(data)
        seen = self.tail + data
        self.chunks += seen.count(CHUNK) - self.tail.count(CHUNK)
        if not seen.endswith(_END):
            self.tail = seen[-_TAIL:]
            return
        self.tail = b""
        if self.chunks != self.expected:
            self._fail(f"an answer had {self.chunks} chunks, not {self.expected}")
            return
        self.total += self.chunks
        self.chunks = 0
        self.left -= 1
        if self.parts is not None:
            self.kept.append(b"".join(self.parts))
        self.parts = [] if self.left == 1 else None
        assert self.transport is not None
        if self.left:
            self.transport.write(self.request)
        elif not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"the server closed a connection with {self.left} answers to go ({exc})")

    def _fail(self, message: str) -> None:
        if not self.done.done():
            self.done.set_exception(RuntimeError(message))


def check_answer(raw: bytes) -> tuple[str, str]:
    """The id and text of one raw HTTP answer, after checking all of it: status, headers, the
    chunked framing, every event a chat.completion.chunk of one id, ``[DONE]`` last."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    if lines[0] != "HTTP/1.1 200 OK":
        raise RuntimeError(f"unexpected status line {lines[0]!r}")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if not headers.get("content-type", "").startswith("text/event-stream"):
        raise RuntimeError(f"unexpected content type {headers.get('content-type')!r}")
    payload, rest = bytearray(), memoryview(body)
    while True:
        size_line, _, _ = bytes(rest[:20]).partition(b"\r\n")
        size = int(size_line, 16)
        start = len(size_line) + 2
        if bytes(rest[start + size : start + size + 2]) != b"\r\n":
            raise RuntimeError("broken chunked framing")
        if size == 0:
            break
        payload += rest[start : start + size]
        rest = rest[start + size + 2 :]
    if len(rest) != 5:
        raise RuntimeError("bytes after the end of the answer")
    events = payload.decode().split("\n\n")
    if events[-2:] != ["data: [DONE]", ""]:
        raise RuntimeError("the answer does not end with [DONE]")
    ids: set[str] = set()
    text: list[str] = []
    for event in events[:-2]:
        if not event.startswith("data: "):
            raise RuntimeError(f"unexpected event {event[:40]!r}")
        chunk = json.loads(event[6:])
        if chunk["object"] != "chat.completion.chunk":
            raise RuntimeError(f"unexpected object {chunk['object']!r}")
        ids.add(chunk["id"])
        text.extend(c["delta"].get("content") or "" for c in chunk["choices"])
    if len(ids) != 1:
        raise RuntimeError(f"an answer with {len(ids)} ids")
    return ids.pop(), "".join(text)


async def unpaced_round(
    server: ServerProcess, clients: int, requests: int
) -> tuple[float, float, float]:
    """Chunks per second delivered to ``clients`` keep-alive connections streaming ``requests``
    answers each, and the server's and the clients' CPU time per chunk (microseconds): with
    less client than server CPU per chunk, the server is what is measured.

    One answer first, read and checked, gives the chunk count every answer must have (and
    warms any cache alike for every version); afterwards the kept answers are checked in full:
    same text, fresh ids.
    """
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
    )
    loop = asyncio.get_running_loop()

    async def connect(requests: int, expected: int) -> _Client:
        done: asyncio.Future[None] = loop.create_future()
        transport, protocol = await loop.create_connection(
            lambda: _Client(request, requests, expected, done), "127.0.0.1", server.port
        )
        try:
            await asyncio.wait_for(done, 120)
        finally:
            transport.close()
        return protocol

    async with aiohttp.ClientSession() as session, session.post(server.url, data=BODY) as reply:
        expected = (await reply.read()).count(CHUNK)
    first = await connect(1, expected)
    first_id, text = check_answer(first.kept[0])
    started, cpu, own = time.perf_counter(), server.cpu(), time.process_time()
    done = await asyncio.gather(*(connect(requests, expected) for _ in range(clients)))
    elapsed, cpu = time.perf_counter() - started, server.cpu() - cpu
    own = time.process_time() - own
    total = sum(c.total for c in done)
    ids = {first_id}
    for client in done:
        for raw in client.kept:
            ident, said = check_answer(raw)
            if said != text:
                raise RuntimeError("an answer's text differs from the first answer's")
            ids.add(ident)
    if len(ids) != 1 + sum(len(c.kept) for c in done):
        raise RuntimeError("answers share an id")
    return total / elapsed, 1e6 * cpu / total, 1e6 * own / total


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
    host, port = "127.0.0.1", server.port
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
    spans: list[float] = []
    lateness: list[float] = []
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


def interleaved(
    servers: dict[str, ServerProcess], rounds: int, run: Callable[[ServerProcess], Any]
) -> dict[str, list[Any]]:
    """``rounds`` results of ``run`` per server, the servers taking turns (ABBA order), so
    a change in the machine's load falls on every version alike."""
    results: dict[str, list[Any]] = {name: [] for name in servers}
    names = list(servers)
    for number in range(rounds):
        for name in names if number % 2 == 0 else names[::-1]:
            results[name].append(run(servers[name]))
    return results


def start_servers(
    versions: dict[str, str], delay: float, tokens: int, count: int
) -> dict[str, ServerProcess]:
    servers: dict[str, ServerProcess] = {}
    try:
        for name, path in versions.items():
            servers[name] = ServerProcess(delay, tokens, count, path)
    except BaseException:
        for server in servers.values():
            server.close()
        raise
    return servers


def ratios(results: dict[str, list[Any]], pick: Callable[[Any], float]) -> list[float]:
    """Per round, this tree's figure over the baseline's."""
    return [
        pick(a) / pick(b) for a, b in zip(results["this tree"], results["baseline"], strict=True)
    ]


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
    parser.add_argument("--requests", type=int, default=100, help="per client and round")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="tokens per second")
    parser.add_argument("--paced-tokens", type=int, default=500, help="tokens per paced answer")
    parser.add_argument("--ramp", type=float, default=1.0, help="seconds to start all streams")
    parser.add_argument("--only", choices=("unpaced", "paced"))
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also measure the openai_sse package in DIR (e.g. a git worktree of an older "
        "commit), rounds interleaved with this tree's, and report the ratios",
    )
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.delay, args.tokens, args.count))
        return
    versions = {"this tree": ""}
    if args.baseline:
        versions["baseline"] = os.path.abspath(args.baseline)
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    report: dict[str, Any] = {}
    if args.only != "paced":
        count = (args.clients + 2) * args.requests * args.rounds if args.tokens else 0
        servers = start_servers(versions, 0.0, args.tokens, count)
        try:
            unpaced = interleaved(
                servers,
                args.rounds,
                lambda s: asyncio.run(unpaced_round(s, args.clients, args.requests)),
            )
        finally:
            for server in servers.values():
                server.close()
        report["unpaced"] = unpaced
        answer = f"{args.tokens}-token answers" if args.tokens else "default answers"
        print(f"unpaced, {args.clients} clients x {args.requests} answers, {answer}:")
        for name, results in unpaced.items():
            print(f"  {name}: chunks/s {spread([r[0] for r in results], lambda v: f'{v:,.0f}')}")
            cpu = spread([r[1] for r in results], lambda v: f"{v:.2f}")
            print(f"  {name}: server CPU per chunk (us) {cpu}")
            cpu = spread([r[2] for r in results], lambda v: f"{v:.2f}")
            print(f"  {name}: clients' CPU per chunk (us) {cpu}")
        if args.baseline:
            print(f"  ratio, chunks/s: {spread(ratios(unpaced, lambda r: r[0]), fmt_ratio)}")
            print(f"  ratio, CPU/chunk: {spread(ratios(unpaced, lambda r: r[1]), fmt_ratio)}")
    if args.only != "unpaced":
        count = (args.streams + 1) * args.rounds
        servers = start_servers(versions, 1.0 / args.rate, args.paced_tokens, count)
        try:
            paced = interleaved(
                servers,
                args.rounds,
                lambda s: asyncio.run(paced_round(s, args.streams, args.rate, args.ramp)),
            )
        finally:
            for server in servers.values():
                server.close()
        report["paced"] = paced
        print(
            f"paced, {args.streams} streams x {args.rate:g} tokens/s, "
            f"{args.paced_tokens}-token answers:"
        )
        for name, rounds in paced.items():
            for key, label in (
                ("span_median", "span / ideal, median stream"),
                ("span_p99", "span / ideal, p99 stream"),
                ("late_p50_ms", "chunk lateness p50 (ms)"),
                ("late_p99_ms", "chunk lateness p99 (ms)"),
                ("server_cpu_us_per_chunk", "server CPU per chunk (us)"),
                ("client_loop_lag_p99_ms", "client event loop lag p99 (ms)"),
            ):
                values = [r[key] for r in rounds]
                print(f"  {name}: {label}: {spread(values, lambda v: f'{v:.3f}')}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(json.dumps(report))


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x"


if __name__ == "__main__":
    main()
