"""Side-by-side benchmark: trasgi against its peers and two bare trio loops,
in interleaved rounds on pinned CPUs.

The peers: uvicorn (h11 on asyncio, and httptools on uvloop), hypercorn and
anycorn (their trio workers), gunicorn's ASGI worker; trasgi runs with each
of its HTTP/1.1 parsers (h11, and httptools where installed).

Run from anywhere with any Python 3.10+ that has ``venv``::

    python3 bench/run.py --quick          # 3 short rounds, about 20 minutes
    python3 bench/run.py                  # 5 rounds of 10 s, about 90 minutes
    python3 bench/run.py --quick --only keepalive,close --chart --profile
    python3 bench/run.py --quick --only h2hello,h2stall,h2idle  # HTTP/2, 2 min

It creates ``bench/.venv`` (peers, matplotlib, py-spy and the project,
editable), installs ``wrk`` and ``h2load`` (Debian's ``nghttp2-client``)
with apt-get if the scenarios chosen need them and they are missing, runs every
scenario in ``scenarios.py`` round after round (in each round every server
in turn, each freshly started, pinned to CPU 0 with the load on CPU 1), prints
Markdown tables of medians and paired ratios, and writes the raw figures to
``bench/results/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import (
    BENCH,
    HTTP2_ONLY,
    REPO,
    RESULTS,
    VENV_PYTHON,
    BenchError,
    Pinning,
    RunningServer,
    ensure_tools,
    ensure_venv,
    probe,
    raise_file_limit,
    running_server,
    source_state,
    venv_versions,
)
from report import markdown_tables, notes, summarise, targets_table, value
from scenarios import Scenario, Settings, by_name
from spy_profile import profile_all

DEFAULT_CHART = REPO / "docs" / "how-to" / "benchmark-chart.svg"
MODES = {
    "quick": {"rounds": 3, "duration": 3.0, "warmup": 1.0},
    "full": {"rounds": 5, "duration": 10.0, "warmup": 2.0},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description=(__doc__ or "").splitlines()[0]
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="3 rounds of 3 s (default: 5 of 10 s)")
    add("--rounds", type=int, help="rounds (overrides the mode)")
    add("--duration", type=float, help="seconds of measured load per server and round")
    add(
        "--warmup",
        type=float,
        help="seconds of unrecorded load before each measurement",
    )
    add(
        "--only", metavar="A,B", help="run only these scenarios (names in scenarios.py)"
    )
    add("--idle-connections", type=int, default=10_000, metavar="N")
    add(
        "--h2-idle-connections",
        type=int,
        default=2_000,
        metavar="N",
        help="idle HTTP/2 connections held by h2idle (default: 2,000)",
    )
    add(
        "--chart",
        nargs="?",
        const=str(DEFAULT_CHART),
        metavar="PATH",
        help=f"draw the chart (default path: {DEFAULT_CHART.relative_to(REPO)})",
    )
    add("--chart-from", metavar="JSON", help="only draw the chart of a saved run")
    add(
        "--profile",
        action="store_true",
        help="also profile trasgi with py-spy, with each HTTP/1.1 parser",
    )
    add("--profile-seconds", type=float, default=15.0)
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> tuple[Settings, int, str]:
    mode = "quick" if args.quick else "full"
    preset = MODES[mode]
    settings = Settings(
        duration=args.duration or preset["duration"],
        warmup=args.warmup if args.warmup is not None else preset["warmup"],
        idle_connections=args.idle_connections,
        pinning=Pinning.detect(),
        h2_idle_connections=args.h2_idle_connections,
    )
    return settings, int(args.rounds or preset["rounds"]), mode


def machine() -> dict[str, Any]:
    cpu = ""
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "load_average_start": os.getloadavg(),
    }


def new_record(
    scenarios: tuple[Scenario, ...], settings: Settings, rounds: int, mode: str
) -> dict[str, Any]:
    """The JSON document of one run, before any measurement."""
    record: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "mode": mode,
        "round_count": rounds,
        "settings": dataclasses.asdict(settings),
        "machine": machine(),
        "versions": venv_versions(),
        "source_start": source_state(),
        "scenarios": {},
    }
    for scenario in scenarios:
        skipped = {
            t.name: r for t in scenario.targets if (r := scenario.unavailable(t))
        }
        record["scenarios"][scenario.name] = {
            "title": _title(scenario, settings),
            "description": scenario.description,
            "subject": scenario.subject,
            "all_targets": [t.name for t in scenario.targets],
            "targets": [t.name for t in scenario.targets if t.name not in skipped],
            "skipped": skipped,
            "metrics": [dataclasses.asdict(m) for m in scenario.metrics],
            "rounds": {t.name: [] for t in scenario.targets if t.name not in skipped},
        }
    return record


def _title(scenario: Scenario, settings: Settings) -> str:
    if scenario.idle:
        return f"{scenario.title}, {scenario.held(settings):,} held"
    return scenario.title


def measure_once(
    scenario: Scenario, target_name: str, settings: Settings
) -> dict[str, Any]:
    """Start one server, check its route, measure it, stop it."""
    target = next(t for t in scenario.targets if t.name == target_name)
    try:
        with running_server(target, settings.pinning, idle=scenario.idle) as server:
            if target.server not in HTTP2_ONLY:
                _check_route(server, scenario.probe_path, scenario.probe_json)
            return scenario.measure(server, settings)
    except (BenchError, OSError, subprocess.SubprocessError) as exc:
        return {"error": str(exc) or type(exc).__name__}


def _check_route(server: RunningServer, path: str, json_body: str = "") -> None:
    """Fail unless one GET of ``path`` (a POST of ``json_body``) answers 200."""
    status = probe(server, path, json_body)
    if status != 200:
        method = "POST" if json_body else "GET"
        raise BenchError(f"{method} {path} answered {status}")


def run_rounds(
    record: dict[str, Any], scenarios: tuple[Scenario, ...], settings: Settings
) -> None:
    """Round after round, every scenario, every target in turn (A B C A B C)."""
    rounds = record["round_count"]
    for number in range(1, rounds + 1):
        for scenario in scenarios:
            entry = record["scenarios"][scenario.name]
            for target in entry["targets"]:
                result = measure_once(scenario, target, settings)
                entry["rounds"][target].append(result)
                _progress(number, rounds, scenario, target, result)


def _progress(
    number: int, rounds: int, scenario: Scenario, target: str, result: dict[str, Any]
) -> None:
    metric = scenario.metrics[0]
    figure = value(result, metric.key)
    shown = result.get("error") if figure is None else f"{figure:,.{metric.digits}f}"
    print(
        f"[{number}/{rounds}] {scenario.name:<9} {target:<15} {shown} {metric.label}",
        flush=True,
    )


def finish(record: dict[str, Any]) -> Path:
    """Summarise, write the JSON (timestamped and latest.json), return its path."""
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    record["machine"]["load_average_end"] = os.getloadavg()
    record["source_end"] = source_state()
    for entry in record["scenarios"].values():
        entry["summary"] = summarise(entry)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{record['mode']}.json"
    path.write_text(json.dumps(record, indent=1))
    shutil.copyfile(path, RESULTS / "latest.json")
    return path


def print_report(record: dict[str, Any], path: Path) -> None:
    settings = record["settings"]
    print()
    print(
        f"## trasgi benchmark ({record['mode']}: {record['round_count']} rounds of "
        f"{settings['duration']:g} s, medians; ratios are medians of per-round ratios)"
    )
    print()
    print(markdown_tables(record["scenarios"]))
    print("\nTargets (ratios from this run):\n")
    print(targets_table(record["scenarios"]))
    remarks = notes(record["scenarios"])
    if remarks:
        print("\nNotes:\n" + "\n".join(remarks))
    start, end = record["source_start"], record["source_end"]
    print(f"\nMeasured: commit {start['commit']}, code {start['code_sha256']}")
    # The code measured is what matters: a commit of other files (docs,
    # tests) during the run changes nothing that was measured.
    if start["code_sha256"] != end["code_sha256"]:
        print(
            f"Warning: trasgi/ or trasgi_web/ changed during the run (now commit "
            f"{end['commit']}, code {end['code_sha256']}): rounds may differ"
        )
    elif start["commit"] != end["commit"]:
        print(f"(now commit {end['commit']}; trasgi/ and trasgi_web/ unchanged)")
    print(f"\nRaw results: {path.relative_to(REPO)}")


def make_chart(source: Path, output: Path) -> None:
    """Draw the chart of a saved run with matplotlib from the bench venv."""
    subprocess.run(
        [str(VENV_PYTHON), str(BENCH / "chart.py"), str(source), str(output)],
        check=True,
    )
    print(f"Chart: {output}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        ensure_venv()
        if args.chart_from:
            make_chart(Path(args.chart_from), Path(args.chart or DEFAULT_CHART))
            return 0
        scenarios = by_name(args.only)
        tools = [tool for scenario in scenarios for tool in scenario.tools]
        ensure_tools(tools + (["wrk"] if args.profile else []))
        raise_file_limit()
        settings, rounds, mode = settings_from(args)
        record = new_record(scenarios, settings, rounds, mode)
        try:
            run_rounds(record, scenarios, settings)
        except KeyboardInterrupt:
            record["interrupted"] = True
            print("\nbench: interrupted; reporting the rounds done so far")
        if args.profile:
            record["profile"] = profile_all(settings, args.profile_seconds)
        path = finish(record)
        print_report(record, path)
        if args.chart:
            make_chart(path, Path(args.chart))
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
