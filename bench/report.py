"""Medians, paired ratios and the Markdown tables.

A ratio is taken round by round (subject / peer, both measured in the same
round, moments apart) and the median of those is reported; a median of
ratios cancels the drift of a shared machine better than a ratio of medians.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

Round = dict[str, Any]


def value(result: Round | None, key: str) -> float | None:
    """The figure ``key`` of one measurement, None if it failed or lacks it."""
    if not result or "error" in result or key not in result:
        return None
    return float(result[key])


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def paired_ratio(
    subject: Sequence[Round | None], peer: Sequence[Round | None], key: str
) -> float | None:
    """Median over rounds of subject/peer for ``key``."""
    ratios = []
    for mine, theirs in zip(subject, peer, strict=False):
        a, b = value(mine, key), value(theirs, key)
        if a is not None and b:
            ratios.append(a / b)
    return statistics.median(ratios) if ratios else None


def summarise(scenario: dict[str, Any]) -> dict[str, Any]:
    """Medians and ratios of one scenario's recorded rounds."""
    rounds: dict[str, list[Round | None]] = scenario["rounds"]
    subject = scenario["subject"]
    peers = [t for t in scenario["targets"] if t != subject]
    metrics = []
    for metric in scenario["metrics"]:
        key = metric["key"]
        metrics.append(
            {
                **metric,
                "median": {
                    t: median([value(r, key) for r in rounds[t]]) for t in rounds
                },
                "ratios": {
                    p: paired_ratio(rounds[subject], rounds[p], key)
                    for p in peers
                    if subject in rounds and p in rounds
                },
            }
        )
    return {"metrics": metrics, "errors": _errors(rounds)}


def _errors(rounds: dict[str, list[Round | None]]) -> dict[str, list[str]]:
    """Failed measurements, load generator error counts, and resets, by target."""
    found: dict[str, list[str]] = {}
    for target, results in rounds.items():
        for index, result in enumerate(results, 1):
            if result and "error" in result:
                found.setdefault(target, []).append(f"round {index}: {result['error']}")
            elif result and (result.get("errors") or result.get("timeouts")):
                found.setdefault(target, []).append(
                    f"round {index}: {result.get('errors', 0):.0f} errors, "
                    f"{result.get('timeouts', 0):.0f} timeouts"
                )
            elif result and result.get("stalled_resets"):
                found.setdefault(target, []).append(
                    f"round {index}: the server reset the stalled stream "
                    f"{result['stalled_resets']:.0f} times"
                )
    return found


def _number(figure: float | None, digits: int) -> str:
    if figure is None:
        return "n/a"
    return f"{figure:,.{digits}f}"


def _ratio(figure: float | None) -> str:
    return "n/a" if figure is None else f"{figure:.2f}×"  # noqa: RUF001


def markdown_tables(scenarios: dict[str, dict[str, Any]]) -> str:
    """One Markdown table per subject (trasgi; trasgi_web), in scenario order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for scenario in scenarios.values():
        groups.setdefault(scenario["subject"], []).append(scenario)
    return "\n\n".join(_table(subject, group) for subject, group in groups.items())


def _table(subject: str, group: list[dict[str, Any]]) -> str:
    targets = tuple(dict.fromkeys(t for s in group for t in s["all_targets"]))
    peers = [t for t in targets if t != subject]
    head = ["Scenario", "Metric", *targets, *(f"{subject} ÷ {p}" for p in peers)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for scenario in group:
        for metric in scenario["summary"]["metrics"]:
            lines.append(
                "| " + " | ".join(_row(scenario, metric, targets, peers)) + " |"
            )
    return "\n".join(lines)


def _row(
    scenario: dict[str, Any],
    metric: dict[str, Any],
    targets: tuple[str, ...],
    peers: list[str],
) -> list[str]:
    label = metric["label"] + (
        "" if metric["higher_is_better"] else " (lower is better)"
    )
    cells = [scenario["title"], label]
    for target in targets:
        if target in scenario["skipped"]:
            cells.append("skipped")
        elif target not in scenario["targets"]:
            cells.append("—")
        else:
            cells.append(_number(metric["median"].get(target), metric["digits"]))
    cells += [_ratio(metric["ratios"].get(p)) for p in peers]
    return cells


def notes(scenarios: dict[str, dict[str, Any]]) -> list[str]:
    """Skipped targets and failed or erroneous measurements, one line each."""
    lines = []
    for scenario in scenarios.values():
        for target, reason in scenario["skipped"].items():
            lines.append(f"- {scenario['title']}: {target} skipped: {reason}")
        for target, problems in scenario["summary"]["errors"].items():
            lines.append(f"- {scenario['title']}: {target}: " + "; ".join(problems))
    return lines


#: The project's targets: (scenario, metric, peer or None for the subject's
#: own figure, comparison, threshold, and the subject when it is not the
#: scenario's: trasgi-httptools). A peer target compares the paired ratio.
TARGETS: tuple[tuple[str, str, str | None, str, float, str | None], ...] = (
    ("keepalive", "rps", "uvicorn-h11", ">=", 1.4, None),
    ("keepalive", "rps", "anycorn-trio", ">=", 6.0, None),
    ("keepalive", "rps", "hypercorn-trio", ">=", 6.0, None),
    ("keepalive", "rps", "bare-h11", ">=", 1.0, None),
    ("keepalive", "rps", "uvicorn-httptools", ">=", 0.75, "trasgi-httptools"),
    ("keepalive", "rps", "uvicorn-h11", ">=", 2.0, "trasgi-httptools"),
    ("close", "rps", "uvicorn-h11", ">=", 1.5, None),
    ("close", "rps", "uvicorn-httptools", ">=", 1.0, "trasgi-httptools"),
    ("close", "rps", "bare-raw", ">=", 0.75, None),
    ("stream", "mib_s", "uvicorn-h11", ">=", 1.5, None),
    ("stream", "mib_s", "bare-raw", ">=", 0.75, None),
    ("c1000", "p99_ms", "uvicorn-h11", "<=", 1.0, None),
    ("idle", "kib_per_conn", None, "<=", 6.0, None),
    ("json", "rps", "plain-asgi", ">=", 0.85, None),
    ("json", "rps", "starlette", ">=", 1.3, None),
    ("typed", "rps", "fastapi", ">=", 2.0, None),
    ("typed", "rps", "litestar", ">=", 1.2, None),
    ("wsecho", "messages_s", "uvicorn-wsproto", ">=", 1.5, None),
    ("wsecho", "messages_s", "hypercorn-trio", ">=", 3.0, None),
    ("h2hello", "rps", "hypercorn-trio", ">=", 3.0, None),
    ("h2hello", "rps", "anycorn-trio", ">=", 1.5, None),
    ("h2stall", "ratio", None, ">=", 0.9, None),
    ("file", "mib_s", "uvicorn-h11", ">=", 2.0, None),
    ("file", "cpu_s_per_gib", "uvicorn-h11", "<=", 0.5, None),
)


def targets_table(scenarios: dict[str, dict[str, Any]]) -> str:
    """The targets of the scenarios that ran, with the figure and a verdict."""
    lines = ["| Target | Measured | Met |", "|---|---|---|"]
    for name, key, peer, comparison, threshold, mover in TARGETS:
        scenario = scenarios.get(name)
        if not scenario:
            continue
        metric = next(m for m in scenario["summary"]["metrics"] if m["key"] == key)
        subject = mover or scenario["subject"]
        if peer is None:
            figure = metric["median"].get(subject)
            wanted = f"{subject} {metric['label']} {comparison} {threshold:g}"
            shown = _number(figure, metric["digits"])
        else:
            figure = _ratio_of(scenario, metric, subject, peer)
            wanted = f"{scenario['title']}, {metric['label']}: {subject} ÷ {peer} "
            wanted += f"{comparison} {threshold:g}"
            shown = _ratio(figure)
        lines.append(
            f"| {wanted} | {shown} | {_verdict(figure, comparison, threshold)} |"
        )
    return "\n".join(lines)


def _ratio_of(
    scenario: dict[str, Any], metric: dict[str, Any], subject: str, peer: str
) -> float | None:
    """The paired ratio subject ÷ peer: the summary's, or from the rounds."""
    if subject == scenario["subject"]:
        figure: float | None = metric["ratios"].get(peer)
        return figure
    rounds = scenario["rounds"]
    if subject not in rounds or peer not in rounds:
        return None
    return paired_ratio(rounds[subject], rounds[peer], metric["key"])


def _verdict(figure: float | None, comparison: str, threshold: float) -> str:
    if figure is None:
        return "n/a"
    met = figure >= threshold if comparison == ">=" else figure <= threshold
    return "yes" if met else "no"
