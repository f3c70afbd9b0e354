"""Where trasgi spends its time under the keep-alive hello load, by py-spy.

py-spy samples the server's Python stacks (by function: ``--function``)
while wrk runs the keep-alive hello scenario; this module ranks the functions
by own time (samples where the function is the innermost frame) and by total
time (samples where it is anywhere on the stack). Samples are taken only
while the thread runs Python or holds the CPU; the share of expected samples
that are missing is time the server spent idle, waiting in the kernel.
Sampling pauses the server, so requests per second during profiling are
lower than in the scenarios: the profile tells where, not how fast.
"""

from __future__ import annotations

import subprocess
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from harness import (
    RESULTS,
    VENV,
    VENV_PYTHON,
    Load,
    RunningServer,
    Target,
    pinned,
    run_wrk,
    running_server,
)
from scenarios import TRASGI_HTTPTOOLS, Settings

TOP = 15
RATE = 200
#: Outer frames on every stack (runpy, the CLI, trio's run loop) that say nothing.
_SCAFFOLD = ("<frozen runpy>", "trasgi/__main__.py", "trasgi/_cli.py")


def parse_raw(text: str) -> list[tuple[list[str], int]]:
    """Collapsed stacks (``frame;frame;... count``) as (frames, count) pairs."""
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def rank(stacks: list[tuple[list[str], int]]) -> tuple[Counter[str], Counter[str], int]:
    """Own and total samples per function, and the number of samples."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for frames, count in stacks:
        own[frames[-1]] += count
        for frame in set(frames):
            if not any(part in frame for part in _SCAFFOLD):
                total[frame] += count
    return own, total, sum(count for _, count in stacks)


def summary_text(
    text: str, seconds: float, wrk: dict[str, float] | None, name: str = "trasgi"
) -> str:
    """The ranked tables of one raw profile, as plain text."""
    own, total, samples = rank(parse_raw(text))
    expected = RATE * seconds
    idle = max(0.0, 1 - samples / expected) if expected else 0.0
    lines = [
        f"py-spy profile of {name}: keep-alive hello, 64 connections (wrk on CPU 1)",
        f"{samples} samples at {RATE} Hz over {seconds:g} s; "
        f"about {idle:.0%} of the time idle (waiting in the kernel)",
    ]
    if wrk:
        lines.append(
            f"wrk during sampling: {wrk['rps']:,.0f} req/s (sampling slows it)"
        )
    lines += ["", f"Top {TOP} functions by own time:", _header()]
    lines += [_line(f, n, total[f], samples) for f, n in own.most_common(TOP)]
    lines += ["", f"Top {TOP} functions by total time (own + callees):", _header()]
    lines += [_line(f, own[f], n, samples) for f, n in total.most_common(TOP)]
    return "\n".join(lines) + "\n"


def _header() -> str:
    return f"{'own %':>6} {'total %':>7}  function (file:first line)"


def _line(frame: str, own: int, total: int, samples: int) -> str:
    return f"{own / samples:6.1%} {total / samples:7.1%}  {frame}"


def _load_in_background(
    server: RunningServer, seconds: float, settings: Settings
) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def load() -> None:
        result["wrk"] = run_wrk(server, Load("/", 64), seconds, settings.pinning)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    return thread, result


#: What ``--profile`` profiles: trasgi with each of its HTTP/1.1 parsers,
#: the second where llhttp is installed.
PROFILED = (Target("trasgi", "trasgi"), TRASGI_HTTPTOOLS)


def profile_all(settings: Settings, seconds: float) -> dict[str, Any]:
    """Profile each of :data:`PROFILED` that can run here, one after the other."""
    profiles = {}
    for target in PROFILED:
        if target.requires and _fails(target.requires):
            continue
        profiles[target.name] = profile_keepalive(settings, seconds, target)
    return profiles


def _fails(code: str) -> bool:
    return subprocess.run([str(VENV_PYTHON), "-c", code], check=False).returncode != 0


def profile_keepalive(
    settings: Settings, seconds: float, target: Target = PROFILED[0]
) -> dict[str, Any]:
    """Profile ``target`` under the keep-alive hello load; write and return the summary.

    The files are ``profile-keepalive.txt`` and ``.raw`` for trasgi, with
    the target's name after ``keepalive-`` for the others.
    """
    stem = "profile-keepalive"
    if target.name != "trasgi":
        stem += "-" + target.name.removeprefix("trasgi-")
    raw = RESULTS / f"{stem}.raw"
    summary = RESULTS / f"{stem}.txt"
    RESULTS.mkdir(parents=True, exist_ok=True)
    with running_server(target, settings.pinning) as server:
        run_wrk(server, Load("/", 64), settings.warmup, settings.pinning)
        thread, result = _load_in_background(server, seconds + 2, settings)
        _record(server.pid, raw, seconds, settings)
        thread.join()
    text = summary_text(raw.read_text(), seconds, result.get("wrk"), target.name)
    summary.write_text(text)
    print("\n" + text, flush=True)
    return {"summary": str(summary), "raw": str(raw), "text": text}


def _record(pid: int, output: Path, seconds: float, settings: Settings) -> None:
    argv = [str(VENV / "bin" / "py-spy"), "record", "--pid", str(pid)]
    argv += ["--duration", f"{max(1, round(seconds))}", "--rate", str(RATE)]
    argv += ["--function", "--format", "raw", "--output", str(output)]
    subprocess.run(
        pinned(argv, settings.pinning.client),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=seconds + 60,
    )
