"""``docs/explanation/security.md`` states every limit and timeout as the code has it.

Each table on that page has a ``Default`` and a ``CLI option`` column. For
every :class:`trasgi.Config` field that is a timeout or a limit, one row's
option cell must be exactly that field's option (```--timeout-keep-alive```),
and its default cell must be the default as ``str(default)`` in backticks
(```unset``` for ``None``), optionally followed by a human form in
parentheses that must agree: ``(5 s)``, ``(16 KiB)``, ``(100 MiB)`` or
``(no limit)`` for ``None``. Every option the page mentions must exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

import trasgi
from trasgi._ops import cli as _cli

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "explanation" / "security.md"

#: Fields documented besides every ``timeout_*`` and ``limit_*`` one.
EXTRA_FIELDS = (
    "h11_max_incomplete_event_size",
    "max_drain_bytes",
    "backlog",
    "ws_max_size",
    "ws_max_queue",
    "ws_ping_interval",
    "ws_ping_timeout",
)
#: What a unit in a human form multiplies its number by.
UNITS = {"s": 1, "KiB": 1024, "MiB": 1024 * 1024}

_DEFAULT_CELL = re.compile(r"`(?P<raw>[^`]+)`(?: \((?P<human>[^)]+)\))?")
_HUMAN = re.compile(r"(?P<number>\d+(?:\.\d+)?) (?P<unit>s|KiB|MiB)")
_OPTION_CELL = re.compile(r"`(?P<option>--[a-z0-9-]+)`")


def documented_fields() -> list[str]:
    names = [field.name for field in attrs.fields(trasgi.Config)]
    chosen = [n for n in names if n.startswith(("timeout_", "limit_"))]
    return chosen + [n for n in EXTRA_FIELDS if n not in chosen]


def option_of(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table of ``text``: its rows of cells, header first."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.lstrip().startswith("|"):
            current.append(cells(line))
        elif current:
            found.append(current)
            current = []
    return found


def default_cells_by_option(text: str) -> dict[str, str]:
    """Map each ```--option``` cell of the page's tables to its default cell."""
    found: dict[str, str] = {}
    for table in tables(text):
        header = table[0]
        if "Default" not in header or "CLI option" not in header:
            continue
        default_at, option_at = header.index("Default"), header.index("CLI option")
        for row in table[2:]:  # past the header and the delimiter row
            match = _OPTION_CELL.fullmatch(row[option_at])
            if match is None:
                continue
            option = match["option"]
            assert option not in found, f"{option} has two rows"
            found[option] = row[default_at]
    return found


def human_value(human: str) -> float | None:
    if human == "no limit":
        return None
    match = _HUMAN.fullmatch(human)
    assert match is not None, f"unreadable human form {human!r}"
    return float(match["number"]) * UNITS[match["unit"]]


def check_default_cell(cell: str, default: object) -> None:
    match = _DEFAULT_CELL.fullmatch(cell)
    assert match is not None, f"default cell {cell!r} is not `value` (human form)"
    expected = "unset" if default is None else str(default)
    assert match["raw"] == expected, f"says {match['raw']!r}, Config has {expected!r}"
    if match["human"] is not None:
        assert human_value(match["human"]) == default, (
            f"{match['human']!r} is not {default!r}"
        )


@pytest.fixture(scope="module")
def page() -> str:
    return PAGE.read_text(encoding="utf-8")


@pytest.mark.parametrize("field_name", documented_fields())
def test_every_limit_and_timeout_is_in_a_table_with_its_default(
    page: str, field_name: str
) -> None:
    rows = default_cells_by_option(page)
    option = option_of(field_name)
    assert option in rows, f"no table row of security.md has `{option}`"
    default = attrs.fields_dict(trasgi.Config)[field_name].default
    check_default_cell(rows[option], default)


def test_every_option_the_page_mentions_exists(page: str) -> None:
    parser = _cli.build_parser()
    known = {
        option
        for action in parser._actions  # argparse exposes no public list
        for option in action.option_strings
    }
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", page))
    assert sorted(mentioned - known) == []


@pytest.mark.parametrize(
    ("cell", "default"),
    [
        ("`5.0` (5 s)", 5.0),
        ("`16384` (16 KiB)", 16384),
        ("`104857600` (100 MiB)", 104857600),
        ("`100`", 100),
        ("`unset` (no limit)", None),
    ],
)
def test_a_matching_default_cell_passes(cell: str, default: object) -> None:
    check_default_cell(cell, default)


@pytest.mark.parametrize(
    ("cell", "default"),
    [
        ("`5` (5 s)", 5.0),  # not str(5.0)
        ("`5.0` (6 s)", 5.0),  # the human form disagrees
        ("`16384` (16 MiB)", 16384),
        ("`unset` (no limit)", 0),
        ("5.0", 5.0),  # not in backticks
    ],
)
def test_a_wrong_default_cell_fails(cell: str, default: object) -> None:
    with pytest.raises(AssertionError):
        check_default_cell(cell, default)
