"""Draw a saved benchmark run as one SVG (or PNG) figure with matplotlib.

Four panels: throughput of every server relative to trasgi (trasgi = 1, from
the paired ratios), p99 latency at 64 and 1,000 connections, memory per idle
connection, and the JSON route per framework on trasgi. Run it in the bench
venv (``bench/run.py --chart`` does): ``python bench/chart.py RUN.json OUT.svg``.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

THROUGHPUT = (
    ("keepalive", "rps", "keep-alive hello"),
    ("close", "rps", "connection per request"),
    ("stream", "mib_s", "1 MiB streamed"),
    ("upload", "upload_mib_s", "10 MiB upload"),
    ("c1000", "rps", "1,000 connections"),
)
COLOURS = {
    "trasgi": "#d62728",
    "trasgi-httptools": "#ff9896",
    "uvicorn-h11": "#1f77b4",
    "uvicorn-httptools": "#aec7e8",
    "uvicorn-wsproto": "#17becf",
    "hypercorn-trio": "#9467bd",
    "anycorn-trio": "#c5b0d5",
    "gunicorn-asgi": "#8c564b",
    "bare-h11": "#7f7f7f",
    "bare-raw": "#c7c7c7",
    "bare-h2": "#a0a0a0",
    "trasgi_web": "#d62728",
    "starlette": "#2ca02c",
    "plain-asgi": "#ff7f0e",
}


def metric(record: dict[str, Any], scenario: str, key: str) -> dict[str, Any] | None:
    """The summary of one metric of one scenario, None if it was not run."""
    entry = record["scenarios"].get(scenario)
    if not entry:
        return None
    for found in entry["summary"]["metrics"]:
        if found["key"] == key:
            result: dict[str, Any] = found
            return result
    return None


def _servers(record: dict[str, Any]) -> list[str]:
    for name in ("keepalive", "close", "stream", "c1000", "idle"):
        if name in record["scenarios"]:
            return list(record["scenarios"][name]["all_targets"])
    return []


def draw_throughput(ax: Any, record: dict[str, Any]) -> None:
    """Each server's throughput relative to trasgi, scenario by scenario."""
    servers = _servers(record)
    found = [(label, metric(record, s, k)) for s, k, label in THROUGHPUT]
    rows = [(label, m) for label, m in found if m is not None]
    height = 0.8 / max(1, len(servers))
    for index, server in enumerate(servers):
        ys = [row + index * height for row in range(len(rows))]
        xs = [_relative(m, server) for _, m in rows]
        ax.barh(ys, xs, height, label=server, color=COLOURS.get(server))
    ax.set_yticks([row + 0.4 - height / 2 for row in range(len(rows))])
    ax.set_yticklabels([label for label, _ in rows])
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log", base=2)
    ticks = [2.0**n for n in range(-4, 6)]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlim(1 / 16, 32)
    ax.set_title("throughput relative to trasgi", fontsize="medium")
    ax.set_xlabel("times trasgi (log scale; trasgi = 1, higher is faster)")


def _relative(summary: dict[str, Any], server: str) -> float:
    if server == "trasgi":
        return 1.0 if summary["median"].get("trasgi") else float("nan")
    ratio = summary["ratios"].get(server)
    return 1 / ratio if ratio else float("nan")


def draw_bars(
    ax: Any,
    summary: dict[str, Any] | None,
    title: str,
    xlabel: str,
    skipped: dict[str, str] | None = None,
) -> None:
    """One bar per target with its median, labelled; skipped targets noted."""
    ax.set_title(title, fontsize="medium")
    if not summary:
        ax.text(0.5, 0.5, "not run", ha="center", transform=ax.transAxes)
        return
    names = [n for n, v in summary["median"].items() if v is not None]
    values = [summary["median"][n] for n in names]
    bars = ax.barh(names, values, color=[COLOURS.get(n, "#333333") for n in names])
    ax.bar_label(bars, fmt="%.1f" if max(values, default=0) < 100 else "%.0f")
    ax.margins(x=0.15)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    for row, (name, reason) in enumerate((skipped or {}).items()):
        note = f"{name} skipped: {reason}"
        ax.text(0.02, 0.02 + 0.06 * row, note, fontsize="small", transform=ax.transAxes)


def draw_latency(ax: Any, record: dict[str, Any]) -> None:
    """p99 latency at 64 and at 1,000 connections, per server."""
    ax.set_title("p99 latency, keep-alive hello", fontsize="medium")
    at_64, at_1000 = (
        metric(record, "keepalive", "p99_ms"),
        metric(record, "c1000", "p99_ms"),
    )
    servers = _servers(record)
    longest = 1.0
    for offset, (summary, label) in enumerate(
        ((at_64, "64 conns"), (at_1000, "1,000 conns"))
    ):
        if summary:
            ys = [i + offset * 0.4 for i in range(len(servers))]
            xs = [summary["median"].get(s) or float("nan") for s in servers]
            ax.barh(ys, xs, 0.4, label=label, color=("#aec7e8", "#1f77b4")[offset])
            longest = max([longest, *(x for x in xs if x == x)])
    ax.set_yticks([i + 0.2 for i in range(len(servers))])
    ax.set_yticklabels(servers)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(right=longest * 30)
    ax.set_xlabel("ms (log scale, lower is better)")
    ax.legend(fontsize="small")


def draw(record: dict[str, Any], output: Path) -> None:
    """Lay out the four panels and save the figure."""
    plt = importlib.import_module("matplotlib")
    plt.use("Agg")
    pyplot = importlib.import_module("matplotlib.pyplot")
    pyplot.rcParams["svg.hashsalt"] = "trasgi-bench"
    fig, axes = pyplot.subplots(2, 2, figsize=(13, 9))
    draw_throughput(axes[0][0], record)
    draw_latency(axes[0][1], record)
    idle = metric(record, "idle", "kib_per_conn")
    draw_bars(
        axes[1][0],
        idle,
        "memory per idle keep-alive connection",
        "KiB (lower is better)",
    )
    json_rps = metric(record, "json", "rps")
    skipped = record["scenarios"].get("json", {}).get("skipped")
    title = "GET /json on trasgi, per framework"
    draw_bars(axes[1][1], json_rps, title, "req/s", skipped)
    handles, labels = axes[0][0].get_legend_handles_labels()
    # At most six servers a row: nine in one row overflow the figure.
    columns = min(len(labels), 6)
    fig.legend(handles, labels, loc="lower center", ncol=columns, frameon=False)
    fig.suptitle(_title(record))
    rows = -(-len(labels) // max(1, columns))
    fig.tight_layout(rect=(0, 0.03 * rows + 0.01, 1, 1))
    fig.savefig(output, metadata={"Date": None} if output.suffix == ".svg" else None)


def _title(record: dict[str, Any]) -> str:
    started = record.get("started", "")[:10]
    return (
        f"trasgi benchmark, {record['mode']} run of {started}: "
        f"medians of {record['round_count']} interleaved rounds, server on 1 CPU"
    )


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit("usage: chart.py RUN.json OUTPUT.svg")
    record = json.loads(Path(sys.argv[1]).read_text())
    draw(record, Path(sys.argv[2]))


if __name__ == "__main__":
    main()
