"""Partial JSON in one-character deltas: the incremental parser against re-parsing.

A structured answer or tool-call arguments stream as small deltas, and a UI wants the partial
value after each one. Re-parsing the text from the start on every delta (jiter's partial mode,
partial-json-parser) costs time quadratic in the text; :class:`PartialJSONParser` reads each
delta once. The document is JSON shaped like a structured answer: records with strings,
numbers, booleans, nested lists, and one long free-text field.

Each contender reads the document one character at a time and produces the partial value
after every delta. The incremental parser runs every delta of every size. Re-parsing 100,000
prefixes of up to 100 KB is too slow to run in full (hours for partial-json-parser), so the
baselines run in full at the small size only; at the larger sizes they parse ``--sample``
evenly spaced prefixes and the total is extrapolated as mean time per parse x number of
deltas (marked "extrapolated"). Medians of ``--rounds`` rounds, with min and max.

    python benchmarks/bench_partial_json.py [--sizes 10,100,200] [--rounds 5] [--sample 200]

Needs the ``bench`` extra (``jiter``, ``partial-json-parser``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jiter  # noqa: E402
import partial_json_parser  # type: ignore[import-untyped]  # noqa: E402  # ships no py.typed

from openai_sse.listeners.partial_json import PartialJSONParser  # noqa: E402

KB = 1000


def build_document(size: int) -> str:
    """About ``size`` characters of JSON: records, then one long text field."""
    records: list[dict[str, Any]] = []
    summary = "The quick brown fox jumps over the lazy dog, says the r\u00e9sum\u00e9. "
    doc: dict[str, Any] = {"title": "Quarterly report", "records": records, "summary": ""}
    i = 0
    while len(json.dumps(doc)) < size * 0.8:
        records.append(
            {
                "id": i,
                "name": f"item {i}",
                "price": round(i * 1.25 + 0.1, 2),
                "in_stock": i % 3 != 0,
                "tags": ["alpha", "beta", "gamma"][: i % 3 + 1],
                "dimensions": {"w": i % 17, "h": i % 11, "unit": "cm"},
                "note": None,
            }
        )
        i += 1
    room = size - len(json.dumps(doc))
    doc["summary"] = (summary * (room // len(summary) + 1))[: max(room, 0)]
    return json.dumps(doc)


def run_incremental(text: str) -> tuple[float, Any, bool]:
    parser = PartialJSONParser()
    started = time.perf_counter()
    for char in text:
        parser.feed(char)
        _ = parser.value
    value = parser.end()
    return time.perf_counter() - started, value, False  # every delta: never extrapolated


def reparse_jiter(prefix: str) -> Any:
    return jiter.from_json(prefix.encode(), partial_mode="trailing-strings")


def reparse_pjp(prefix: str) -> Any:
    return partial_json_parser.loads(prefix)


def run_reparse(
    text: str, parse: Callable[[str], Any], sample: int | None
) -> tuple[float, Any, bool]:
    """Total seconds for every prefix (or extrapolated from ``sample`` prefixes)."""
    n = len(text)
    ends = range(1, n + 1) if sample is None or sample >= n else _spaced(n, sample)
    started = time.perf_counter()
    for end in ends:
        parse(text[:end])
    elapsed = time.perf_counter() - started
    value = parse(text)
    if sample is None or sample >= n:
        return elapsed, value, False
    return elapsed / len(ends) * n, value, True


def _spaced(n: int, count: int) -> list[int]:
    return [max(1, round((k + 0.5) * n / count)) for k in range(count)]


def summarise(times: list[float]) -> tuple[float, float, float]:
    return statistics.median(times), min(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,200", help="document sizes in KB")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sample", type=int, default=200, help="prefixes per baseline round")
    parser.add_argument(
        "--full-below", type=int, default=20, help="run baselines on every prefix below this KB"
    )
    args = parser.parse_args()

    rows: list[tuple[str, int, str, float, float, float, bool]] = []
    for kb in (int(s) for s in args.sizes.split(",")):
        text = build_document(kb * KB)
        expected = json.loads(text)
        full = kb < args.full_below
        # partial binds this size's text now, as default arguments did; mypy cannot type those
        contenders: list[tuple[str, Callable[[], tuple[float, Any, bool]]]] = [
            ("PartialJSONParser (incremental)", partial(run_incremental, text)),
            (
                "jiter partial_mode, re-parse",
                partial(run_reparse, text, reparse_jiter, None if full else args.sample),
            ),
            (
                "partial-json-parser, re-parse",
                partial(run_reparse, text, reparse_pjp, None if full else args.sample // 4),
            ),
        ]
        for name, run in contenders:
            rounds = args.rounds if not full or name.startswith("Partial") else min(args.rounds, 3)
            times = []
            extrapolated = False
            for _ in range(rounds):
                seconds, value, extrapolated = run()
                if value != expected:
                    raise SystemExit(f"{name} disagrees with json.loads at {kb} KB")
                times.append(seconds)
            median, low, high = summarise(times)
            rows.append((name, len(text), "", median, low, high, extrapolated))
            print(
                f"{kb:>4} KB {name:<34} {median:9.3f} s{' (extrapolated)' if extrapolated else ''}",
                file=sys.stderr,
            )

    print("| document | contender | deltas | total (median) | min | max | per delta |")
    print("|---|---|---|---|---|---|---|")
    for name, length, _, median, low, high, extrapolated in rows:
        mark = " *" if extrapolated else ""
        print(
            f"| {length / KB:.0f} KB | {name} | {length:,} | {median:.3f} s{mark} | "
            f"{low:.3f} s | {high:.3f} s | {median / length * 1e6:.2f} µs |"
        )
    print("\n\\* extrapolated: mean time of evenly spaced prefix parses x number of deltas.")
    ours = {length: median for name, length, _, median, *_ in rows if name.startswith("Partial")}
    sizes = sorted(ours)
    for small, large in itertools.pairwise(sizes):
        print(
            f"PartialJSONParser: {large / small:.1f}x the text took "
            f"{ours[large] / ours[small]:.2f}x the time ({small / KB:.0f} -> {large / KB:.0f} KB)"
        )


if __name__ == "__main__":
    main()
