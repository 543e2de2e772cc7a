"""Draw the benchmark chart from benchmarks/results/latest.json.

python benchmarks/chart.py [--input PATH] [--output PATH] [--docs]

Writes benchmarks/results/performance.png (git-ignored) unless ``--docs`` asks for the tracked
docs/performance.png, so a local run never changes the published chart by accident.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

OURS = "#1f6feb"
OTHERS = "#8b949e"
FLOOR = "#d0d7de"


def _bars(axis: Any, labels: list[str], values: list[float], colors: list[str]) -> None:
    positions = range(len(labels))
    bars = axis.barh(list(positions), values, color=colors)
    axis.set_yticks(list(positions), labels)
    axis.invert_yaxis()
    for bar, value in zip(bars, values, strict=True):
        axis.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f" {value:,.2f}x" if value < 10 else f" {value:,.0f}x",
            va="center",
            fontsize=8,
        )


def draw(report: dict[str, Any], output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    panels = [k for k in ("throughput", "concurrency", "other") if k in results or k == "other"]
    figure, axes = plt.subplots(
        len(panels), 1, figsize=(11, 3.3 * len(panels) + (3.0 if "throughput" in results else 0))
    )
    if len(panels) == 1:
        axes = [axes]
    axes_iter = iter(axes)

    if "throughput" in results:
        axis = next(axes_iter)
        labels, values, colors = [], [], []
        for text, shape in results["throughput"]["shapes"].items():
            rows = sorted(shape["rows"].values(), key=lambda r: -r["chunks_per_s"]["median"])
            for r in rows:
                labels.append(f"{text}: {r['name']}")
                values.append(r["vs_openai"]["median"] if r["vs_openai"] else 0.0)
                colors.append(
                    OURS if r["name"].startswith("openai_sse") else FLOOR if r["floor"] else OTHERS
                )
        _bars(axis, labels, values, colors)
        axis.set_xscale("log")
        axis.axvline(30, color="#cf222e", linestyle="--", linewidth=1)
        axis.set_title(
            f"(a) one stream of {results['throughput']['chunks']:,} chunks, English and CJK text: "
            "median chunks/s vs openai (log; dashed: 30x)",
            fontsize=9,
        )

    if "concurrency" in results:
        axis = next(axes_iter)
        conc = results["concurrency"]
        labels, values, colors = [], [], []
        ramps = conc["ramp"]
        base = ramps.get("openai", {}).get("max_sustained") or 0
        for kind, r in ramps.items():
            labels.append(f"{kind}: {r['max_sustained']:,} streams sustained")
            values.append(r["max_sustained"] / base if base else float(r["max_sustained"] > 0))
            colors.append(OURS if kind == "openai_sse" else FLOOR if kind == "aiohttp" else OTHERS)
        main = conc["main"]
        if "openai_sse" in main and "openai" in main:
            ours = (
                main["openai_sse"]["steady_cpu_us_per_chunk"]
                or main["openai_sse"]["cpu_us_per_chunk"]
            )
            theirs = main["openai"]["steady_cpu_us_per_chunk"] or main["openai"]["cpu_us_per_chunk"]
            if ours and theirs:
                labels.append(f"CPU per chunk: openai {theirs:.0f} µs / openai_sse {ours:.0f} µs")
                values.append(theirs / ours)
                colors.append(OURS)
        _bars(axis, labels, values, colors)
        first = next(iter(main.values()))
        axis.set_title(
            f"(b) streams at {first['rate']:g} chunks/s each on one event loop, vs openai",
            fontsize=9,
        )

    axis = next(axes_iter)
    labels, values, colors = [], [], []
    if "import" in results:
        ratio = results["import"]["vs_aiohttp"]
        for module in ("openai_sse", "openai"):
            if ratio.get(module):
                labels.append(f"import {module} / import aiohttp")
                values.append(ratio[module])
                colors.append(OURS if module == "openai_sse" else OTHERS)
    if "ttft" in results:
        rows = results["ttft"]["rows"]
        base = rows["aiohttp"]["p50_us"]
        for kind in ("openai_sse", "openai"):
            labels.append(f"time to first token, {kind} / aiohttp")
            values.append(rows[kind]["p50_us"] / base)
            colors.append(OURS if kind == "openai_sse" else OTHERS)
    if "cancel" in results:
        c = results["cancel"]
        ours = c["openai_sse"]["disconnect_ms"]["p99"]
        raw = c["aiohttp"]["disconnect_ms"]["p99"]
        if ours and raw:
            labels.append("cancel to disconnect p99, openai_sse / aiohttp")
            values.append(ours / raw)
            colors.append(OURS)
    if "memory" in results:
        m = results["memory"]
        labels.append("RSS per idle stream, openai_sse / aiohttp")
        values.append(m["openai_sse"]["rss_per_stream"] / m["aiohttp"]["rss_per_stream"])
        colors.append(OURS)
    if labels:
        _bars(axis, labels, values, colors)
        axis.axvline(1, color="#57606a", linewidth=0.8)
    axis.set_title("(c)-(f) costs vs the baseline named (lower is better)", fontsize=9)

    machine = report.get("machine", {})
    versions = report.get("versions", {})
    figure.suptitle(
        f"openai_sse {versions.get('openai-sse', '?')} benchmark suite, "
        f"{machine.get('cpus', '?')} cores, Python {versions.get('python', '?')}",
        fontsize=10,
    )
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument("--output", type=Path, help="where to write the PNG")
    parser.add_argument(
        "--docs", action="store_true", help="write the tracked docs/performance.png"
    )
    args = parser.parse_args()
    if args.output is None:
        args.output = (
            REPO / "docs" / "performance.png" if args.docs else HERE / "results" / "performance.png"
        )
    draw(json.loads(args.input.read_text()), args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
