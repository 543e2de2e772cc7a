"""Throughput of the layer-1 event-stream decoder against the decoders of other SDKs.

Every decoder gets the same bytes in the same reads, in interleaved rounds; the table shows the
median of the rounds. The stream is a real OpenAI chat completion (the recording's ``data:``
payloads, from ``tests/recordings``, tiled to about 20,000 events).

    python benchmarks/bench_decoder.py [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import codecs
import importlib
import importlib.util
import random
import statistics
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from openai_sse.sse import SSEDecoder  # noqa: E402

FIXTURE = REPO / "tests/recordings/compat/10_openai_obfuscation_service_tier.chunks.jsonl"

Reads = list[bytes]
Runner = Callable[[Reads], int]


# Stream construction.


def build_stream(events: int) -> tuple[bytes, str]:
    payloads = [line for line in FIXTURE.read_text("utf-8").splitlines() if line.strip()]
    source = f"{FIXTURE.name} ({len(payloads)} payloads tiled)"
    body = [f"data: {payloads[i % len(payloads)]}\n\n" for i in range(events - 1)]
    body.append("data: [DONE]\n\n")
    return "".join(body).encode("utf-8"), source


def network_reads(raw: bytes, seed: int = 42) -> Reads:
    """Random read sizes between 1 and 16 KiB, as a socket hands them out."""
    rng = random.Random(seed)
    reads = []
    pos = 0
    while pos < len(raw):
        size = rng.randint(1024, 16 * 1024)
        reads.append(raw[pos : pos + size])
        pos += size
    return reads


def event_reads(raw: bytes) -> Reads:
    """One read per event, as a server that flushes after every chunk is usually read."""
    return [block + b"\n\n" for block in raw[:-2].split(b"\n\n")]


# Decoders, each driven the way its own SDK drives it.


def run_ours(reads: Reads) -> int:
    decoder = SSEDecoder()
    count = 0
    for chunk in reads:
        count += len(decoder.feed(chunk))
    decoder.end()
    return count


def collect_ours(reads: Reads) -> list[str]:
    decoder = SSEDecoder()
    return [event.data for chunk in reads for event in decoder.feed(chunk)]


def _openai_runner() -> tuple[Runner, Callable[[Reads], list[str]]] | None:
    try:
        from openai._streaming import SSEDecoder as OpenAIDecoder
    except ImportError:
        return None

    def run(reads: Reads) -> int:
        # Stream._iter_events: decoder.iter_bytes(response.iter_bytes())
        count = 0
        for _ in OpenAIDecoder().iter_bytes(iter(reads)):
            count += 1
        return count

    def collect(reads: Reads) -> list[str]:
        return [sse.data for sse in OpenAIDecoder().iter_bytes(iter(reads))]

    return run, collect


def _import_httpx_sse_decoders() -> Any:
    """``httpx_sse._decoders``, without the package ``__init__`` if httpx itself is missing."""
    try:
        return importlib.import_module("httpx_sse._decoders")
    except ImportError:
        pass
    spec = importlib.util.find_spec("httpx_sse")
    if spec is None or not spec.submodule_search_locations:
        return None
    for name in [n for n in sys.modules if n == "httpx_sse" or n.startswith("httpx_sse.")]:
        del sys.modules[name]
    package = types.ModuleType("httpx_sse")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["httpx_sse"] = package
    try:
        return importlib.import_module("httpx_sse._decoders")
    except ImportError:
        return None


def _httpx_sse_runner() -> tuple[Runner, Callable[[Reads], list[str]]] | None:
    module = _import_httpx_sse_decoders()
    if module is None:
        return None
    line_decoder_cls = module.SSELineDecoder
    decoder_cls = module.SSEDecoder

    def events(reads: Reads) -> Iterator[Any]:
        # EventSource.iter_sse: response.iter_text() (an incremental UTF-8 decoder with
        # errors="replace"), then SSELineDecoder, then rstrip("\n") and SSEDecoder.decode.
        text_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        lines = line_decoder_cls()
        decoder = decoder_cls()
        for chunk in reads:
            text = text_decoder.decode(chunk)
            if not text:
                continue
            for line in lines.decode(text):
                sse = decoder.decode(line.rstrip("\n"))
                if sse is not None:
                    yield sse
        for line in lines.flush():
            sse = decoder.decode(line.rstrip("\n"))
            if sse is not None:
                yield sse

    def run(reads: Reads) -> int:
        count = 0
        for _ in events(reads):
            count += 1
        return count

    def collect(reads: Reads) -> list[str]:
        return [sse.data for sse in events(reads)]

    return run, collect


# Measurement.


def measure(
    runners: dict[str, Runner], reads: Reads, rounds: int, expected: int
) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for r in range(rounds):
        # Rotate the order each round so no decoder always runs first or last.
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            count = runners[name](reads)
            times[name].append(time.perf_counter() - start)
            if count != expected:
                raise SystemExit(f"{name} decoded {count} events, expected {expected}")
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    raw, source = build_stream(args.events)
    runners: dict[str, Runner] = {"openai_sse.SSEDecoder": run_ours}
    collectors: dict[str, Callable[[Reads], list[str]]] = {"openai_sse.SSEDecoder": collect_ours}
    for name, factory in (
        ("openai._streaming.SSEDecoder", _openai_runner),
        ("httpx_sse.SSEDecoder", _httpx_sse_runner),
    ):
        pair = factory()
        if pair is None:
            print(f"({name} is not installed; skipped)")
            continue
        runners[name], collectors[name] = pair

    patterns = {
        "network reads, 1-16 KiB": network_reads(raw),
        "one event per read": event_reads(raw),
    }
    reference = collect_ours([raw])
    for label, reads in patterns.items():
        assert b"".join(reads) == raw
        for name, collect in collectors.items():
            if collect(reads) != reference:
                raise SystemExit(f"{name} decoded different events for {label!r}")

    mb = len(raw) / 1e6
    print(f"Python {sys.version.split()[0]}; stream: {source}")
    print(f"{args.events} events, {mb:.2f} MB; median of {args.rounds} interleaved rounds\n")
    baseline = "openai._streaming.SSEDecoder"
    header = f"{'reads':<26} {'decoder':<30} {'events/s':>12} {'MB/s':>8} {'vs openai':>10}"
    print(header)
    print("-" * len(header))
    for label, reads in patterns.items():
        medians = measure(runners, reads, args.rounds, len(reference))
        base = medians.get(baseline)
        for name, seconds in medians.items():
            ratio = f"{base / seconds:.2f}x" if base else "-"
            print(
                f"{label:<26} {name:<30} {len(reference) / seconds:>12,.0f} "
                f"{mb / seconds:>8.1f} {ratio:>10}"
            )
        print()


if __name__ == "__main__":
    main()
