"""A fast OpenAI-compatible streaming server for the benchmark suite, run in its own process.

``POST /v1/chat/completions`` answers with pre-rendered chat chunks (from the real OpenAI
recording in ``tests/recordings``) and then
``data: [DONE]``. What to stream is chosen per request by headers (or query parameters of the
same name without the ``x-bench-`` prefix):

* ``x-bench-n``: number of chat chunks before ``[DONE]`` (default 20);
* ``x-bench-mode``:
  ``fast`` writes the whole pre-framed body in 64 KiB batches, honouring flow control;
  ``paced`` writes one chunk at a time, ``x-bench-rate`` chunks per second, the chunk ``id``
  being ``chatcmpl-<time.time_ns() at the write>``;
  ``hold`` writes the first chunk and then nothing until the client disconnects (bounded);
* ``x-bench-text``: ``en`` (the recording, default) or ``cjk`` (Chinese words as content);
* ``x-bench-id``: a label; the moment (``time.monotonic_ns()``) at which the server sees the
  client go away is recorded under it.

``GET /bench/stats`` returns the counters as JSON, ``POST /bench/reset`` clears them.

    python benchmarks/server.py [--port 0]

prints ``PORT <n>`` once listening and serves until its standard input closes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import heapq
import itertools
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

FIXTURE = (
    Path(__file__).resolve().parents[1]
    / "tests/recordings/compat/10_openai_obfuscation_service_tier.chunks.jsonl"
)

BATCH = 64 * 1024
HOLD_LIMIT = 120.0
MAX_LIFETIME = 3600.0
MAX_HEADER = 64 * 1024
EARLY = 0.001  # paced writes due within this many seconds go out in the current tick


# -- the stream ------------------------------------------------------------------------------


# The CJK shape: the same chunks with Chinese words as content, the way a Chinese answer
# streams (one to three characters per chunk, three UTF-8 bytes per character).
CJK_WORDS = [
    "春节",
    "是",
    "中国",
    "最",
    "重要",
    "的",
    "传统",
    "节日",
    "，",
    "人们",
    "喜欢",
    "它",
    "因为",
    "可以",
    "和",
    "家人",
    "团聚",
    "。",
    "大家",
    "一起",
    "吃",
    "饺子",
    "、",
    "放",
    "鞭炮",
    "、",
    "贴",
    "春联",
    "，",
    "孩子们",
    "还",
    "能",
    "收到",
    "红包",
    "。",
    "这个",
    "节日",
    "象征",
    "着",
    "新",
    "的",
    "开始",
    "和",
    "希望",
    "。",
]
TEXT_SHAPES = ("en", "cjk")


class Shape:
    """The chunks a stream is made of: a head chunk, content chunks tiled, and the tail.

    ``text="cjk"`` replaces each content delta of the recording with a Chinese word.
    """

    def __init__(self, text: str = "en") -> None:
        payloads = [line for line in FIXTURE.read_text("utf-8").splitlines() if line.strip()]
        self.text = text
        self.source = f"{FIXTURE.name} ({len(payloads)} recorded chunks)"
        parsed = [json.loads(p) for p in payloads]
        body = [
            i
            for i, chunk in enumerate(parsed)
            if chunk.get("choices")
            and chunk["choices"][0].get("delta", {}).get("content")
            and chunk["choices"][0].get("finish_reason") is None
        ]
        if text == "cjk":
            for k, i in enumerate(body):
                parsed[i]["choices"][0]["delta"]["content"] = CJK_WORDS[k % len(CJK_WORDS)]
                payloads[i] = json.dumps(parsed[i], separators=(",", ":"), ensure_ascii=False)
        elif text != "en":
            raise ValueError(f"unknown text shape {text!r}")
        head = list(range(body[0]))
        tail = list(range(body[-1] + 1, len(parsed)))
        self.payloads = payloads
        self.head = head
        self.body = body
        self.tail = tail
        self._contents = [
            (c["choices"][0]["delta"].get("content") or "") if c.get("choices") else ""
            for c in parsed
        ]
        self._id = parsed[0]["id"]

    @property
    def minimum(self) -> int:
        return len(self.head) + len(self.tail) + 1

    def indices(self, n: int) -> list[int]:
        """Payload indices of a stream of ``n`` chunks (at least :attr:`minimum`)."""
        n = max(n, self.minimum)
        middle = n - len(self.head) - len(self.tail)
        return self.head + [self.body[i % len(self.body)] for i in range(middle)] + self.tail

    def expected(self, n: int) -> tuple[int, int]:
        """(chunks, characters of answer text) that a reader of ``n`` chunks must see."""
        indices = self.indices(n)
        return len(indices), sum(len(self._contents[i]) for i in indices)

    def events(self, n: int) -> list[bytes]:
        return [f"data: {self.payloads[i]}\n\n".encode() for i in self.indices(n)]

    def templates(self, n: int) -> list[tuple[bytes, bytes]]:
        """``(before, after)`` around the id value, for chunks stamped at write time."""
        marker = f'"id":"{self._id}"'
        out = []
        for i in self.indices(n):
            payload = self.payloads[i]
            before, found, after = payload.partition(marker)
            if found:
                prefix, suffix = f'{before}"id":"chatcmpl-', f'"{after}'
            else:
                prefix, suffix = '{"id":"chatcmpl-', '",' + payload[1:]
            out.append((f"data: {prefix}".encode(), f"{suffix}\n\n".encode()))
        return out


DONE = b"data: [DONE]\n\n"


def frame(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%b\r\n" % (len(data), data)


SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"x-request-id: req_bench\r\n"
    b"\r\n"
)
LAST = b"0\r\n\r\n"


# -- the server ------------------------------------------------------------------------------


class _Paced:
    __slots__ = ("conn", "interval", "next", "templates")

    def __init__(self, conn: _Connection, templates: list[tuple[bytes, bytes]], rate: float):
        self.conn = conn
        self.templates = templates
        self.next = 0
        self.interval = 1.0 / rate


class BenchServer:
    def __init__(self) -> None:
        self.shapes = {text: Shape(text) for text in TEXT_SHAPES}
        self.connections: set[_Connection] = set()
        self._fast: dict[tuple[str, int], list[bytes]] = {}
        self._heap: list[tuple[float, int, _Paced]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self.accepted = 0
        self.requests = 0
        self.disconnects: dict[str, int] = {}
        self.lateness: list[int] = []  # microseconds behind schedule, per paced write

    def reset(self) -> None:
        self.accepted = 0
        self.requests = 0
        self.disconnects.clear()
        self.lateness.clear()

    def fast_body(self, shape: Shape, n: int) -> list[bytes]:
        body = self._fast.get((shape.text, n))
        if body is None:
            raw = b"".join(shape.events(n)) + DONE
            body = [frame(raw[i : i + BATCH]) for i in range(0, len(raw), BATCH)]
            body[-1] += LAST
            if len(self._fast) > 8:
                self._fast.clear()
            self._fast[shape.text, n] = body
        return body

    def stats(self) -> dict[str, Any]:
        late = sorted(self.lateness)

        def pct(q: float) -> float | None:
            return late[min(len(late) - 1, int(q * len(late)))] / 1000 if late else None

        return {
            "open_connections": len(self.connections),
            "open_stream_connections": sum(1 for c in self.connections if c.streamed),
            "accepted": self.accepted,
            "requests": self.requests,
            "disconnects": self.disconnects,
            "paced_writes": len(late),
            "lateness_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
        }

    # paced streams share one timer: a heap of due times

    def start_paced(self, stream: _Paced) -> None:
        now = time.monotonic()
        stream.conn.write_stamped(stream, SSE_HEAD)
        if stream.next < len(stream.templates):
            heapq.heappush(self._heap, (now + stream.interval, next(self._seq), stream))
            self._wake.set()
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        heap = self._heap
        lateness = self.lateness
        while True:
            if not heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            now = time.monotonic()
            wait = heap[0][0] - now
            if wait > EARLY:
                await asyncio.sleep(wait)
                continue
            horizon = now + EARLY
            while heap and heap[0][0] <= horizon:
                due, seq, stream = heapq.heappop(heap)
                if stream.conn.closed:
                    continue
                if now > due:
                    lateness.append(int((now - due) * 1e6))
                else:
                    lateness.append(0)
                stream.conn.write_stamped(stream, b"")
                if stream.next < len(stream.templates):
                    heapq.heappush(heap, (due + stream.interval, seq, stream))
            await asyncio.sleep(0)


class _Connection(asyncio.Protocol):
    def __init__(self, server: BenchServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.busy = False
        self.closed = False
        self.streamed = False
        self.label: str | None = None
        self.paused = False
        self.pending: collections.deque[bytes] = collections.deque()
        self.hold: asyncio.TimerHandle | None = None

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=256 * 1024)
        self.server.connections.add(self)
        self.server.accepted += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._parse()

    def eof_received(self) -> bool:
        self._gone()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()
        self.closed = True
        self.server.connections.discard(self)
        if self.hold is not None:
            self.hold.cancel()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._pump()

    # requests

    def _gone(self) -> None:
        if self.label is not None and self.label not in self.server.disconnects:
            self.server.disconnects[self.label] = time.monotonic_ns()

    def _parse(self) -> None:
        while not self.busy and not self.closed:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER:
                    self._close()
                return
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            try:
                method, target, _ = lines[0].split(" ", 2)
            except ValueError:
                self._close()
                return
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self._handle(method, target, headers)

    def _handle(self, method: str, target: str, headers: dict[str, str]) -> None:
        server = self.server
        url = urlsplit(target)
        if url.path.rstrip("/").endswith("/chat/completions") and method == "POST":
            server.requests += 1
            params = dict(parse_qsl(url.query))
            for name, value in headers.items():
                if name.startswith("x-bench-"):
                    params[name[8:]] = value
            self._stream(params)
        elif url.path == "/bench/stats":
            self._json(server.stats())
        elif url.path == "/bench/reset" and method == "POST":
            server.reset()
            self._json({"ok": True})
        else:
            self._json({"error": {"message": f"no route {method} {url.path}"}}, status=404)

    def _json(self, payload: Any, status: int = 200) -> None:
        body = json.dumps(payload).encode()
        reason = b"OK" if status == 200 else b"Not Found"
        assert self.transport is not None
        self.transport.write(
            b"HTTP/1.1 %d %b\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
            % (status, reason, len(body), body)
        )

    def _stream(self, params: dict[str, str]) -> None:
        server = self.server
        n = int(params.get("n", "20"))
        mode = params.get("mode", "fast")
        shape = server.shapes.get(params.get("text", "en"), server.shapes["en"])
        self.label = params.get("id")
        self.streamed = True
        self.busy = True
        if mode == "paced":
            rate = float(params.get("rate", "50"))
            stream = _Paced(self, shape.templates(n), rate)
            server.start_paced(stream)
        elif mode == "hold":
            events = shape.events(n)
            assert self.transport is not None
            self.transport.write(SSE_HEAD + frame(events[0]))
            self.hold = asyncio.get_running_loop().call_later(
                HOLD_LIMIT, self._finish_hold, b"".join(events[1:]) + DONE
            )
        else:
            body = server.fast_body(shape, n)
            self.pending = collections.deque(body)
            self.pending[0] = SSE_HEAD + body[0]
            self._pump()

    def _finish_hold(self, rest: bytes) -> None:
        self.hold = None
        if not self.closed and self.transport is not None:
            self.transport.write(frame(rest) + LAST)
            self._done()

    def _pump(self) -> None:
        pending = self.pending
        transport = self.transport
        while pending and not self.paused and not self.closed:
            assert transport is not None
            transport.write(pending.popleft())
        if not pending and self.busy and not self.closed and not self.paused:
            self._done()

    def write_stamped(self, stream: _Paced, head: bytes) -> None:
        before, after = stream.templates[stream.next]
        stream.next += 1
        event = b"%b%d%b" % (before, time.time_ns(), after)
        data = head + frame(event)
        if stream.next == len(stream.templates):
            data += frame(DONE) + LAST
        assert self.transport is not None
        self.transport.write(data)
        if stream.next == len(stream.templates):
            self._done()

    def _done(self) -> None:
        self.busy = False
        self.label = None
        if self.buffer:
            self._parse()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def serve(host: str, port: int) -> None:
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    bench = BenchServer()
    server = await loop.create_server(
        lambda: _Connection(bench), host, port, backlog=4096, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"PORT {bound}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    class _Stdin(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            stop.set()

    if not sys.stdin.isatty():
        await loop.connect_read_pipe(_Stdin, sys.stdin)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), MAX_LIFETIME)
    server.close()
    for conn in list(bench.connections):
        conn._close()


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


# -- the parent side -------------------------------------------------------------------------


_Process = TypeVar("_Process", bound="ServerProcess")


class ServerProcess:
    """Starts ``server.py`` in a child process; ``with ServerProcess() as server:``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def root(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    name = "benchmark server"

    def command(self) -> list[str]:
        """The child's command line; it prints ``PORT n`` once it listens."""
        return [sys.executable, str(Path(__file__).resolve()), "--host", self.host, "--port", "0"]

    def start(self: _Process) -> _Process:
        process = subprocess.Popen(self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._process = process
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server process so far (Linux)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        ticks = int(fields[11]) + int(fields[12])
        return ticks / _CLOCK_TICKS

    def stop(self) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self: _Process) -> _Process:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


try:
    _CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
except (ValueError, OSError, AttributeError):
    _CLOCK_TICKS = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
