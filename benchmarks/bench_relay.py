"""The relay under load: extra latency, CPU per chunk, and resuming on another instance.

    .venv/bin/python benchmarks/bench_relay.py                 # 1,000 streams, 50 chunks/s, 10 s
    .venv/bin/python benchmarks/bench_relay.py --streams 250 --seconds 5 --only load

Three processes: the benchmark server (``benchmarks/server.py``, paced mode: every chunk's id
is ``chatcmpl-<time.time_ns() at the write>``), one relay process (this file with
``--serve-relay``), and this process reading the streams. A chunk's lag is the time from the
upstream's write to this process reading it, on the shared wall clock.

* **load**: N streams started over 1 s, each ``POST /v1/streams`` then ``GET
  /v1/streams/{id}``, through the relay; then the same N streams read straight from the
  upstream by the same reader. The relay's extra latency is the difference of the two p99s,
  over the steady window (every stream open). Relay CPU per chunk is the relay process's CPU
  time over the chunks relayed in that window. ``--via`` reads the same streams through the
  relay's pass-through instead, or through a floor in place of the relay: a bare forwarder
  that copies bytes between sockets (``socket-forwarder``: what any relay written in Python
  pays) or that reads the upstream with aiohttp's client (``aiohttp-forwarder``: what a relay
  built on the SDK pays before it parses, stores or frames anything).
* **cost**: what the relay adds to the SDK, CPU per chunk, in this one process: chunks handed
  to the store writers of ``--streams`` streams, followed over loopback (see
  :func:`relay_cost`); steadier than the load scenario on a shared machine.
* **resume**: two relay processes on one redis-server. A stream starts on A, 20 events are
  read there, the connection drops, and B is asked for the rest with ``Last-Event-ID``: the
  time to B's first replayed event, repeated ``--resumes`` times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import aiohttp  # noqa: E402
import contenders  # noqa: E402
from run import RAMP_UP, GCWatch, Lags, _drive, markdown, percentile  # noqa: E402
from server import ServerProcess  # noqa: E402

from openai_sse._loops import LOOPS  # noqa: E402
from openai_sse._loops import run as run_on_loop  # noqa: E402

_CHUNK_ID = re.compile(rb'"id":"chatcmpl-(\d+)"')
RESUME_AFTER = 20


# -- the relay process -------------------------------------------------------------------------


async def serve_relay(upstream: str, redis: str | None, n: int, rate: float) -> None:
    """Run a relay whose upstream requests ask the benchmark server for paced streams."""
    from openai_sse import Client, Timeout
    from openai_sse.relay import Relay

    store: Any = None
    if redis:
        from openai_sse.relay import RedisStore

        store = RedisStore(redis)
    headers = contenders.bench_headers(n, "paced", rate=rate)
    timeout = Timeout(connect=60.0, first_event=120.0, idle=120.0)
    client = Client(
        api_key="bench", base_url=upstream, default_headers=headers, timeout=timeout, max_retries=0
    )
    relay = Relay(client=client, store=store, grace=120.0)
    await relay.start()
    collector = GCWatch()  # a full collection stops every stream the relay relays
    print(f"PORT {relay.url.rsplit(':', 1)[1]}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    runs = zip(collector.counts, collector.longest, strict=True)
    summary = [{"runs": count, "max_ms": longest * 1000} for count, longest in runs]
    print(f"GC {json.dumps(summary)}", flush=True)
    await relay.close()
    await client.close()
    if store is not None:
        await store.close()


async def serve_forwarder(upstream: str, n: int, rate: float, *, reader: str) -> None:
    """What any relay costs before it does anything of its own: each browser connection gets
    the upstream's stream, and nothing is parsed, stored or framed.

    ``reader`` ``socket``: the browser's request is copied byte for byte to a connection of
    its own to the upstream, and the answer back (the floor of a relay written in Python).
    ``aiohttp``: the upstream is read with aiohttp's client, as the SDK reads it, and each
    read is written straight to the browser's socket (the floor of a relay built on the SDK).
    Accepting is the relay's own (every waiting connection at once).
    """
    from urllib.parse import urlsplit

    from openai_sse.relay.sites import _Listening

    loop = asyncio.get_running_loop()
    factory: Any
    session = None
    if reader == "aiohttp":
        session = contenders.new_session()
        url = upstream.rstrip("/") + "/chat/completions"
        headers = contenders.bench_headers(n, "paced", rate=rate)
        factory = functools.partial(_ReadByAiohttp, session, url, headers)
    else:
        parts = urlsplit(upstream)
        factory = functools.partial(_Front, (parts.hostname or "127.0.0.1", parts.port or 80))
    sock = socket.create_server(("127.0.0.1", 0), backlog=4096)
    sock.setblocking(False)
    listening = _Listening(loop, [sock], factory, 4096)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    listening.close()
    if session is not None:
        await session.close()


class _ReadByAiohttp(asyncio.Protocol):
    """A browser's connection fed from an upstream response read with aiohttp's client."""

    def __init__(self, session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> None:
        self.session, self.url, self.headers = session, url, headers
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.task = asyncio.get_running_loop().create_task(
            self._copy(cast(asyncio.Transport, transport))
        )

    async def _copy(self, transport: asyncio.Transport) -> None:
        try:
            async with self.session.post(
                self.url, json=contenders.BODY, headers=self.headers
            ) as response:
                transport.write(_HEAD)
                async for data in response.content.iter_any():
                    transport.write(data)
        finally:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self.task.cancel()


_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


class _Front(asyncio.Protocol):
    """A browser's connection: what it sends goes to its upstream connection once open."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.pending: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.back: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        loop = asyncio.get_running_loop()
        opening = loop.create_task(loop.create_connection(lambda: _Back(self), *self.target))
        _OPENING.add(opening)
        opening.add_done_callback(self._opened)

    def _opened(self, opening: asyncio.Task[tuple[asyncio.BaseTransport, Any]]) -> None:
        _OPENING.discard(opening)
        assert self.transport is not None
        if opening.cancelled() or opening.exception() is not None:
            self.transport.close()
            return
        self.back = cast(asyncio.Transport, opening.result()[0])
        self.back.write(b"".join(self.pending))
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        if self.back is None:
            self.pending.append(data)
        else:
            self.back.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.back is not None:
            self.back.close()


class _Back(asyncio.Protocol):
    """The upstream side of a :class:`_Front`: every read written to the browser at once."""

    def __init__(self, front: _Front) -> None:
        self.front = front

    def data_received(self, data: bytes) -> None:
        assert self.front.transport is not None
        self.front.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        assert self.front.transport is not None
        self.front.transport.close()


_OPENING: set[asyncio.Task[Any]] = set()


class RelayProcess(ServerProcess):
    """A relay child process; CPU time read like the benchmark server's."""

    loop = "auto"  # the relay process's event loop, as for ``openai-sse relay --loop``

    def __init__(
        self,
        upstream: str,
        n: int,
        rate: float,
        redis: str | None = None,
        *,
        forwarder: str | None = None,
    ) -> None:
        super().__init__()
        self.args = ["--upstream", upstream, "--n", str(n), "--rate", str(rate)]
        self.args += ["--loop", self.loop]
        if redis:
            self.args += ["--redis", redis]
        if forwarder:  # a forwarder (``socket`` or ``aiohttp``) instead of the relay
            self.args += ["--forwarder", forwarder]
        self.forwarder = forwarder

    name = "relay"
    collections: list[dict[str, float]] | None = None  # as the relay reported at its stop

    def command(self) -> list[str]:
        serve = "--serve-forwarder" if self.forwarder else "--serve-relay"
        return [sys.executable, str(Path(__file__).resolve()), serve, *self.args]

    def stop(self) -> None:
        process = self._process
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                out, _ = process.communicate(timeout=30)  # closes its stdin: the relay reports
                for line in out.decode().splitlines():
                    if line.startswith("GC "):
                        self.collections = json.loads(line[3:])
        super().stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


# -- readers -------------------------------------------------------------------------------------


class RelayLags(Lags):
    """Lags, plus the relay's CPU time at the edges of the steady window.

    The steady window runs from the moment every stream has had its first chunk to the end
    of the first stream. When the last streams start so late that the first has ended by
    then, no moment had every stream open, and the window is empty: said so, not measured.
    """

    def __init__(self, streams: int, relay: RelayProcess | None) -> None:
        super().__init__(streams)
        self.relay = relay
        self.relay_cpu: dict[str, float] = {}
        self.first_done_ns = 0  # when the first stream ended
        self.started_ns = time.time_ns()

    def first(self) -> None:
        super().first()
        if self.waiting == 0 and self.relay is not None:
            self.relay_cpu["start"] = self.relay.cpu_seconds()

    def finished(self) -> None:
        if "end" not in self.window:
            self.first_done_ns = time.time_ns()
            if self.relay is not None:
                self.relay_cpu["end"] = self.relay.cpu_seconds()
        super().finished()

    @property
    def all_open(self) -> bool:
        """Whether every stream was open at once (else the steady window is empty)."""
        ended = self.first_done_ns
        return bool(self.ready_ns) and (not ended or self.ready_ns < ended)

    def relay_cpu_us(self) -> float | None:
        if "start" not in self.window or "end" not in self.window or not self.relay_cpu:
            return None
        if not self.all_open:
            return None
        chunks = self.window["end"][1] - self.window["start"][1]
        spent = self.relay_cpu["end"] - self.relay_cpu["start"]
        return spent / chunks * 1e6 if chunks else None


class _Reader(asyncio.Protocol):
    """One event stream read at the socket: every chunk's lag, and whether all ``n`` came.

    It stands in for browsers on other machines, so it should cost little on this one:
    aiohttp's client spends tens of microseconds per chunk, which on a 2-core machine shared
    with the upstream and the relay would slow both. The same reader reads the relay's
    streams and the upstream's, so both paths pay the same.
    """

    def __init__(self, record: Lags, request: bytes, n: int, done: asyncio.Future[bool]) -> None:
        self.record, self.request, self.n, self.done = record, request, n, done
        self.count = 0
        self.tail = b""
        self.ended = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.ended:
            return
        seen = self.tail + data
        end = seen.find(_END_RELAY)
        if end < 0:
            end = seen.find(_END_DIRECT)
        # The relay's final object carries a chunk id too: read only up to the end.
        scan = seen if end < 0 else seen[:end]
        record = self.record
        at_ns = time.time_ns()
        last = 0
        for match in _CHUNK_ID.finditer(scan):
            at = int(match.group(1))
            record.sent.append(at)
            record.lags.append(at_ns - at)
            if not self.count:
                record.first()
            self.count += 1
            last = match.end()
        if end >= 0:
            self.ended = True
            record.finished()
            if not self.done.done():
                self.done.set_result(self.count == self.n)
            assert self.transport is not None
            self.transport.close()
            return
        self.tail = seen[max(last, len(seen) - _TAIL) :]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if not self.ended:
                self.record.finished()
            self.done.set_result(False)


_END_RELAY = b"event: done"
_END_DIRECT = b"data: [DONE]"
_TAIL = 64  # longer than a chunk id match or an end marker cut by a read


async def read_stream(record: Lags, request: bytes, host: str, port: int, n: int) -> bool:
    """Send ``request`` on a new connection and read its event stream to the end."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bool] = loop.create_future()
    transport, _ = await loop.create_connection(
        lambda: _Reader(record, request, n, done), host, port
    )
    try:
        return await done
    finally:
        transport.close()


def _request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _paced_request(n: int, rate: float) -> bytes:
    """A streamed chat request for the benchmark server's paced stream."""
    headers = contenders.bench_headers(n, "paced", rate=rate)
    return _request("POST", "/v1/chat/completions", headers, json.dumps(contenders.BODY).encode())


async def through_relay(
    relay: RelayProcess, streams: int, n: int, rate: float, deadline: float, via: str
) -> tuple[int, RelayLags]:
    """Read ``streams`` streams through ``relay``: resumable ones (``via`` ``streams``), or
    its pass-through (``pass-through``, and the bare forwarder)."""
    session = contenders.new_session()
    record = RelayLags(streams, relay)
    body = {k: v for k, v in contenders.BODY.items() if k != "stream"}
    passed = _paced_request(n, rate)

    async def one() -> bool:
        if via != "streams":
            return await read_stream(record, passed, relay.host, relay.port, n)
        async with session.post(relay.url + "/v1/streams", json=body) as reply:
            stream_id = (await reply.json())["id"]
        request = _request("GET", f"/v1/streams/{stream_id}", {"Accept": "text/event-stream"})
        return await read_stream(record, request, relay.host, relay.port, n)

    return await _drive(
        record, streams, RAMP_UP, deadline, lambda: asyncio.ensure_future(one()), session.close
    )


async def direct(
    upstream: ServerProcess, streams: int, n: int, rate: float, deadline: float
) -> tuple[int, RelayLags]:
    record = RelayLags(streams, None)
    request = _paced_request(n, rate)

    async def one() -> bool:
        return await read_stream(record, request, upstream.host, upstream.port, n)

    async def close() -> None:
        return None

    return await _drive(
        record, streams, RAMP_UP, deadline, lambda: asyncio.ensure_future(one()), close
    )


def lag_summary(record: RelayLags) -> dict[str, dict[str, float | None]]:
    """Lags (ms) of the chunks written while every stream was open, and of all of them."""
    end = record.first_done_ns or float("inf")
    pairs = list(zip(record.sent, record.lags, strict=True))
    steady = [lag / 1e6 for at, lag in pairs if record.ready_ns <= at < end]
    if not record.all_open:
        steady = []
    return {"steady": _spread(steady), "whole_run": _spread([lag / 1e6 for _, lag in pairs])}


def _spread(lags: list[float]) -> dict[str, float | None]:
    return {
        "p50": percentile(lags, 0.5),
        "p99": percentile(lags, 0.99),
        "max": max(lags) if lags else None,
        "chunks": len(lags),
    }


async def load(
    streams: int, rate: float, seconds: float, store: str, via: str = "streams"
) -> dict[str, Any]:
    if store != "redis" or via not in ("streams", "pass-through"):
        return await _load(streams, rate, seconds, None, via)
    with redis_server() as redis_url:
        return await _load(streams, rate, seconds, redis_url, via)


async def _load(
    streams: int, rate: float, seconds: float, redis: str | None, via: str
) -> dict[str, Any]:
    n = max(int(rate * seconds), 3)
    deadline = seconds * 1.5 + RAMP_UP + 10.0
    forwarder = via.split("-", 1)[0] if via.endswith("forwarder") else None
    with ServerProcess() as upstream:
        with RelayProcess(upstream.base_url, n, rate, redis, forwarder=forwarder) as relay:
            cpu0, wall0 = relay.cpu_seconds(), time.perf_counter()
            completed, relayed = await through_relay(relay, streams, n, rate, deadline, via)
            relay_cpu = relay.cpu_seconds() - cpu0
            relay_share = relay_cpu / (time.perf_counter() - wall0)
        direct_completed, straight = await direct(upstream, streams, n, rate, deadline)
    through, base = lag_summary(relayed), lag_summary(straight)
    p99s = through["steady"]["p99"], base["steady"]["p99"]
    extra = p99s[0] - p99s[1] if p99s[0] is not None and p99s[1] is not None else None
    open_s = [
        round((t - relayed.started_ns) / 1e9, 2) if t else None
        for t in (relayed.ready_ns, relayed.first_done_ns)
    ]
    return {
        "store": "redis" if redis else "memory",
        "via": via,
        "streams": streams,
        "rate": rate,
        "seconds": seconds,
        "completed": completed,
        "direct_completed": direct_completed,
        "chunks": len(relayed.lags),
        "expected_chunks": streams * n,
        "relay_lag_ms": through,
        "direct_lag_ms": base,
        # every stream open at once, and when (the reader's clock, seconds)
        "all_open": relayed.all_open,
        "last_first_chunk_and_first_end_s": open_s,
        "extra_p99_ms": extra,
        "relay_cpu_us_per_chunk": relayed.relay_cpu_us(),
        # everything included: starting the streams, replays, the ends
        "relay_cpu_us_per_chunk_all": relay_cpu / len(relayed.lags) * 1e6 if relayed.lags else None,
        "relay_cpu_share": relay_share,
        "relay_collections": relay.collections,
        "phases_s": relayed.marks,
    }


# -- the relay's own cost ------------------------------------------------------------------------

COST_CHUNK = (
    b'{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1733200000,'
    b'"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" word"},'
    b'"finish_reason":null}]}'
)


class _Counter(asyncio.Protocol):
    """Counts the chunk events of one followed stream."""

    def __init__(self, request: bytes, want: int, done: asyncio.Future[None]) -> None:
        self.request, self.want, self.done = request, want, done
        self.count = 0
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).write(self.request)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        seen = self.tail + data
        self.count += seen.count(b"\ndata: {") - self.tail.count(b"\ndata: {")
        self.tail = seen[-8:]
        if self.count >= self.want and not self.done.done():
            self.done.set_result(None)


async def relay_cost(streams: int, rounds: int) -> dict[str, Any]:
    """CPU per chunk of what the relay adds to the SDK: storing, following, writing.

    One process, no upstream: decoded chunks go straight to each generation's store writer,
    ``streams`` at a time, ``rounds`` times, 2 ms apart; a follower per stream writes them
    over loopback to a counting reader in this process (whose small cost is included). The
    SDK's reading and parsing of the upstream, the same before and after a relay change,
    is left out, and so is most of the machine's noise.
    """
    from openai_sse.chat.models import decode_chunk
    from openai_sse.relay import MemoryStore, Relay
    from openai_sse.relay.errors import Redactor
    from openai_sse.relay.generation import StoreWriter

    store = MemoryStore()
    relay = await Relay(upstream="http://127.0.0.1:9/v1", store=store, grace=600.0).start()
    host, port = relay.url[len("http://") :].rsplit(":", 1)
    loop = asyncio.get_running_loop()
    writers, done = [], []
    for i in range(streams):
        stream_id = f"strm_cost{i}"
        await store.create(stream_id, lease=600.0)
        await store.heartbeat(stream_id, 600.0)
        writers.append(StoreWriter(store, stream_id, Redactor([])))
        finished: asyncio.Future[None] = loop.create_future()
        done.append(finished)
        request = f"GET /v1/streams/{stream_id} HTTP/1.1\r\nHost: relay\r\n\r\n".encode()
        await loop.create_connection(
            functools.partial(_Counter, request, rounds, finished), host, int(port)
        )
    await asyncio.sleep(0.5)  # every follower is waiting
    chunks = [decode_chunk(COST_CHUNK) for _ in range(streams)]
    cpu = time.process_time()
    for _ in range(rounds):
        for writer, chunk in zip(writers, chunks, strict=True):
            writer.on_chunk(None, chunk)
        await asyncio.sleep(0.002)
    await asyncio.wait_for(asyncio.gather(*done), 120)
    spent = time.process_time() - cpu
    for writer in writers:
        await writer.close()
    await relay.close()
    return {
        "streams": streams,
        "rounds": rounds,
        "loop": type(loop).__module__.split(".")[0],
        "cpu_us_per_chunk": spent / (streams * rounds) * 1e6,
    }


# -- resume on another instance ----------------------------------------------------------------


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A private redis-server on a free port, without persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is needed (apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    directory = tempfile.mkdtemp(prefix="bench-redis-")
    options = {"port": str(port), "bind": "127.0.0.1", "save": "", "appendonly": "no"}
    command = [binary, "--dir", directory]
    for name, value in options.items():
        command += [f"--{name}", value]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(5)
        shutil.rmtree(directory, ignore_errors=True)


async def first_event(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    """Seconds from the request to the first event with an id (not the retry hint)."""
    started = time.perf_counter()
    async with session.get(url, headers=headers) as response:
        rest = b""
        async for data in response.content.iter_any():
            *blocks, rest = (rest + data).split(b"\n\n")
            if any(block.startswith(b"id:") for block in blocks):
                return time.perf_counter() - started
    raise RuntimeError("the stream ended without an event")


async def resume(resumes: int, rate: float) -> dict[str, Any]:
    n = int(rate * 4)
    with (
        redis_server() as redis_url,
        ServerProcess() as upstream,
        RelayProcess(upstream.base_url, n, rate, redis_url) as a,
        RelayProcess(upstream.base_url, n, rate, redis_url) as b,
    ):
        async with contenders.new_session() as session:
            times = await _resumes(session, a, b, resumes)
    ms = [t * 1000 for t in times]
    return {
        "resumes": resumes,
        "after_events": RESUME_AFTER,
        "first_replayed_ms": {
            "p50": statistics.median(ms),
            "p99": percentile(ms, 0.99),
            "max": max(ms),
        },
    }


async def _resumes(
    session: aiohttp.ClientSession, a: RelayProcess, b: RelayProcess, count: int
) -> list[float]:
    body = {k: v for k, v in contenders.BODY.items() if k != "stream"}
    times = []
    for _ in range(count):
        async with session.post(a.url + "/v1/streams", json=body) as reply:
            stream_id = (await reply.json())["id"]
        last = None
        seen = 0
        async with session.get(f"{a.url}/v1/streams/{stream_id}") as response:
            rest = b""
            async for data in response.content.iter_any():
                *blocks, rest = (rest + data).split(b"\n\n")
                for block in blocks:
                    if block.startswith(b"id:"):
                        last = block.split(b"\n", 1)[0][3:].strip().decode()
                        seen += 1
                if seen >= RESUME_AFTER:
                    break  # the connection drops mid-answer
        assert last is not None
        url = f"{b.url}/v1/streams/{stream_id}"
        times.append(await first_event(session, url, {"Last-Event-ID": last}))
        async with session.delete(url):
            pass
    return times


# -- report ----------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> None:
    before = ", ".join(f"{v:.1f}" for v in results["load_average_before"])
    after = ", ".join(f"{v:.1f}" for v in results["load_average_after"])
    print(
        f"{results['cpus']} CPUs; relay event loop {results['loop']}; "
        f"load average before {before}, after {after}"
    )
    if "load" in results:
        r = results["load"]
        path = {
            "streams": f"{r['store']} store",
            "pass-through": "the relay's pass-through",
            "socket-forwarder": "a bare byte forwarder (sockets) in place of the relay",
            "aiohttp-forwarder": "a bare forwarder reading with aiohttp in place of the relay",
        }[r["via"]]
        hop = "the forwarder" if r["via"].endswith("forwarder") else "the relay"
        print(
            f"\n### {path}: {r['streams']:,} streams at {r['rate']:g} chunks/s "
            f"for {r['seconds']:g} s "
            f"({r['completed']:,} complete through {hop}, "
            f"{r['chunks']:,}/{r['expected_chunks']:,} chunks)\n"
        )
        last_first, first_end = r["last_first_chunk_and_first_end_s"]
        if r["all_open"]:
            print(f"every stream open at once from {last_first} s to {first_end} s\n")
        else:
            print(
                f"NO moment had every stream open: the last stream's first chunk came at "
                f"{last_first} s, the first stream ended at {first_end} s; no steady window\n"
            )
        rows = [
            [f"{way}, {window}", *(r[key][scope][k] for k in ("p50", "p99", "max", "chunks"))]
            for window, scope in (("every stream open", "steady"), ("whole run", "whole_run"))
            for way, key in ((f"through {hop}", "relay_lag_ms"), ("straight", "direct_lag_ms"))
        ]
        print(markdown(["lag (ms)", "p50", "p99", "max", "chunks"], rows))
        print(
            f"\n{hop} adds p99 {fmt(r['extra_p99_ms'])} ms; its CPU "
            f"{fmt(r['relay_cpu_us_per_chunk'])} us per chunk (steady), "
            f"{fmt(r['relay_cpu_us_per_chunk_all'])} us per chunk (whole run), "
            f"{fmt(r['relay_cpu_share'])} of a core on average"
        )
        if r["relay_collections"]:
            young, middle, full = (
                f"{g['runs']:,} (longest {g['max_ms']:.1f} ms)" for g in r["relay_collections"]
            )
            print(
                f"garbage collections in the relay process, whole run: young {young}, "
                f"middle {middle}, full {full}"
            )
    if "cost" in results:
        r = results["cost"]
        print(
            f"\n### the relay's own cost ({r['streams']:,} streams x {r['rounds']:,} chunks, "
            f"{r['loop']})\n\n{r['cpu_us_per_chunk']:.1f} us of CPU per chunk"
        )
    if "resume" in results:
        r = results["resume"]
        t = r["first_replayed_ms"]
        print(
            f"\n### resume on another instance ({r['resumes']} times, after "
            f"{r['after_events']} events)\n"
        )
        print(
            markdown(
                ["first replayed event (ms)", "p50", "p99", "max"],
                [["B, with Last-Event-ID", t["p50"], t["p99"], t["max"]]],
            )
        )


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:,.2f}"


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "load_average_before": os.getloadavg(),
        "cpus": os.cpu_count(),
        "loop": args.loop,
    }
    if "load" in args.only:
        results["load"] = await load(args.streams, args.rate, args.seconds, args.store, args.via)
    if "resume" in args.only:
        results["resume"] = await resume(args.resumes, args.rate)
    if "cost" in args.only:
        results["cost"] = await relay_cost(args.streams, int(args.rate * args.seconds))
    results["load_average_after"] = os.getloadavg()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="chunks per second per stream")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--resumes", type=int, default=50)
    parser.add_argument(
        "--store", choices=("memory", "redis"), default="memory", help="the relay's store (load)"
    )
    parser.add_argument(
        "--via",
        choices=("streams", "pass-through", "socket-forwarder", "aiohttp-forwarder"),
        default="streams",
        help="load: resumable streams, the pass-through, or a floor: a bare forwarder",
    )
    parser.add_argument("--only", default="load,resume", help="load,resume,cost")
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--loop",
        choices=LOOPS,
        default="auto",
        help="the relay process's event loop (auto: uvloop when installed)",
    )
    parser.add_argument("--serve-relay", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-forwarder", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--forwarder", default="socket", help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=20, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_forwarder:
        forwarding = serve_forwarder(args.upstream, args.n, args.rate, reader=args.forwarder)
        run_on_loop(forwarding, args.loop)
        return 0
    if args.serve_relay:
        run_on_loop(serve_relay(args.upstream, args.redis, args.n, args.rate), args.loop)
        return 0
    RelayProcess.loop = args.loop
    args.only = set(args.only.split(","))
    if args.only == {"cost"}:  # in this process: on the relay's loop
        results = run_on_loop(main_async(args), args.loop)
    else:
        results = asyncio.run(main_async(args))
    report(results)
    if args.output:
        args.output.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
