"""The documentation is tested: its code runs and its references match the code.

The convention for code blocks in ``README.md`` and ``docs/**/*.md`` (stated
for contributors at the top of ``docs/index.md``):

* A block fenced as ``python`` (or ``py``) is a complete module. It is executed
  on its own, in a fresh namespace whose ``__name__`` is not ``"__main__"``;
  then every top-level function named ``test_*`` and a top-level ``main`` are
  called, in definition order. Coroutine functions run under :func:`trio.run`.
  A parameter named ``autojump_clock`` receives a
  ``trio.testing.MockClock(autojump_threshold=0)`` that also drives that run,
  as with pytest-trio's fixture of the same name.
* A block fenced as ``python fragment`` is an excerpt that cannot run alone;
  it is highlighted but not executed. Any other info string after ``python``
  is refused, so that a typo cannot silently skip a block.
* Blocks in any other language (``sh``, ``text``, ``toml``, ``mermaid``...)
  are not executed.

Besides running the code, this module checks that ``docs/reference/cli.md``
documents exactly the options the parser has, with the defaults
:class:`trasgi.Config` has, and the exit statuses the CLI uses; that code spans
citing ``file.py: name`` name something that exists; and that relative links
point to files that exist.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import attrs
import pytest
import trio
import trio.testing

import trasgi
from trasgi import _exits
from trasgi._ops import cli as _cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CLI_PAGE = DOCS / "reference" / "cli.md"
#: Long enough for any snippet; short enough that a hanging one fails.
SNIPPET_DEADLINE = 30.0
#: The same on a mock clock, in virtual seconds: there, a deadlock jumps
#: straight to the deadline, so it can be generous.
VIRTUAL_DEADLINE = 24 * 3600.0
#: The info-string words that make a Python block runnable.
PYTHON_WORDS = frozenset({"python", "py"})
#: The info-string flag for an excerpt that is not run.
FRAGMENT = "fragment"
#: The fixtures a snippet's functions may ask for.
FIXTURES = frozenset({"autojump_clock"})


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("**/*.md"))]


def relative(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)  # a page made by this module's own tests


class Block(NamedTuple):
    """One fenced code block of a Markdown file."""

    path: Path
    line: int  # the 1-based line of the first line of code
    info: str
    code: str

    @property
    def location(self) -> str:
        return f"{relative(self.path)}:{self.line}"

    @property
    def words(self) -> list[str]:
        return self.info.split()


_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def fenced_blocks(path: Path) -> Iterator[Block]:
    """Yield the fenced code blocks of a Markdown file (CommonMark fences)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        indent = len(opening["indent"])
        fence = opening["fence"]
        info = opening["info"].strip()
        start = index
        body: list[str] = []
        while index < len(lines):
            line = lines[index]
            index += 1
            stripped = line.strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(
                fence[0]
            ):
                break
            # Content lines lose up to the fence's indentation (CommonMark).
            removable = len(line) - len(line.lstrip(" "))
            body.append(line[min(indent, removable) :])
        yield Block(path, start + 1, info, "\n".join(body) + "\n")


def all_blocks() -> list[Block]:
    return [block for path in markdown_files() for block in fenced_blocks(path)]


def python_blocks() -> list[Block]:
    return [
        block
        for block in all_blocks()
        if block.words and block.words[0].lower() in PYTHON_WORDS
    ]


def runnable(block: Block) -> bool:
    return block.words[1:] != [FRAGMENT]


@pytest.mark.parametrize("block", python_blocks(), ids=lambda block: block.location)
def test_python_block_follows_the_convention(block: Block) -> None:
    assert block.words[1:] in ([], [FRAGMENT]), (
        f"{block.location}: a Python block is fenced as 'python' (runs) or "
        f"'python {FRAGMENT}' (does not run), not {block.info!r}"
    )


@pytest.mark.parametrize(
    "block",
    [block for block in python_blocks() if runnable(block)],
    ids=lambda block: block.location,
)
def test_python_block_runs(block: Block) -> None:
    module = run_block(block)
    for function in entry_points(module):
        call(function, block)


def run_block(block: Block) -> types.ModuleType:
    """Execute a block as a module; its tracebacks name the Markdown line."""
    name = "docs_snippet_" + re.sub(r"\W", "_", block.location)
    module = types.ModuleType(name)
    module.__file__ = str(block.path)
    # Padding keeps the line numbers of the Markdown file in tracebacks.
    source = "\n" * (block.line - 1) + block.code
    code = compile(source, str(block.path), "exec")
    sys.modules[name] = module  # as for an import: attrs, typing need it
    try:
        exec(code, module.__dict__)
    finally:
        del sys.modules[name]
    return module


def entry_points(module: types.ModuleType) -> list[Callable[..., Any]]:
    return [
        value
        for key, value in vars(module).items()
        if (key.startswith("test_") or key == "main")
        and inspect.isfunction(value)
        and value.__module__ == module.__name__
    ]


def call(function: Callable[..., Any], block: Block) -> None:
    parameters = set(inspect.signature(function).parameters)
    unknown = parameters - FIXTURES
    assert not unknown, (
        f"{block.location}: {function.__name__}() asks for {sorted(unknown)}; "
        f"snippets may only ask for {sorted(FIXTURES)}"
    )
    clock = trio.testing.MockClock(autojump_threshold=0)
    kwargs = {"autojump_clock": clock} if "autojump_clock" in parameters else {}
    if not inspect.iscoroutinefunction(function):
        function(**kwargs)
        return

    async def bounded() -> None:
        with trio.fail_after(VIRTUAL_DEADLINE if kwargs else SNIPPET_DEADLINE):
            await function(**kwargs)

    trio.run(bounded, clock=clock if kwargs else None)


# -- the command-line reference ---------------------------------------------


def parser_options() -> set[str]:
    """Every option string of the parser, checked against its printed help."""
    parser = _cli.build_parser()
    printed = parser.format_help()
    options = {
        option
        for action in parser._actions  # argparse exposes no public list
        for option in action.option_strings
    }
    for option in options:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", printed), option
    return options


def cli_page() -> str:
    return CLI_PAGE.read_text(encoding="utf-8")


def test_cli_page_documents_exactly_the_parsers_options() -> None:
    options = parser_options()
    text = cli_page()
    documented = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))
    long_options = {option for option in options if option.startswith("--")}
    assert sorted(long_options - documented) == [], "missing from cli.md"
    assert sorted(documented - long_options) == [], "in cli.md, unknown to the parser"
    for short in options - long_options:
        assert f"`{short}`" in text, short


def shown_default(value: object) -> str:
    """How cli.md writes a default value in its options table."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    if value == ():
        return "none"
    return str(value)


def table_rows(text: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.lstrip().startswith("|")
    ]


def test_cli_page_states_every_default() -> None:
    rows = {
        match[1]: row
        for row in table_rows(cli_page())
        if (match := re.match(r"`(--[a-z0-9-]+)", row[0]))
    }
    for field in attrs.fields(trasgi.Config):
        flag = "--" + field.name.replace("_", "-")
        assert flag in rows, f"no table row starts with `{flag}` in cli.md"
        assert rows[flag][1].strip("`") == shown_default(field.default), (
            f"{flag}: cli.md says {rows[flag][1]!r}, Config says {field.default!r}"
        )


def test_cli_page_lists_the_exit_statuses() -> None:
    section = cli_page().partition("## Exit statuses")[2].partition("\n## ")[0]
    listed = {
        int(row[0].strip("`"))
        for row in table_rows(section)
        if row[0].strip("`").isdigit()
    }
    assert listed == {
        0,
        _exits.EXIT_FAILURE,
        _exits.EXIT_USAGE,
        _exits.EXIT_STARTUP_FAILED,
        _exits.FORCED_EXIT_STATUS,
    }


# -- the response-cycle diagram --------------------------------------------

EXPLANATION = DOCS / "explanation" / "how-asgi-works.md"


def test_cycle_diagram_draws_the_transition_table() -> None:
    """The state diagram and ``_cycle.TRANSITIONS`` must agree, edge for edge."""
    from trasgi._protocol.cycle import TRANSITIONS, Phase

    (diagram,) = [
        block.code
        for block in fenced_blocks(EXPLANATION)
        if block.info == "mermaid" and "stateDiagram" in block.code
    ]
    edges = re.findall(r"^\s*(\w+) --> (\w+): (\S+?),?\s", diagram, re.MULTILINE)
    drawn = {
        (source, message) for source, target, message in edges if target != "FAILED"
    }
    assert drawn == {(phase.name, message) for phase, message in TRANSITIONS}
    shown = {name for edge in edges for name in edge[:2]}
    assert shown == {phase.name for phase in Phase}


# -- names and links ---------------------------------------------------------

#: A code span citing names in a module: `_io/inbox.py: Inbox.fill → discard`.
#: A path without a package is in trasgi; `trasgi_web/_x.py` names another.
_CITATION = re.compile(
    r"`(?P<file>(?:trasgi(?:_web)?/)?(?:_?\w+/)*_?\w+\.py):\s+(?P<names>[^`]+)`"
)


def citations() -> list[tuple[str, str, str]]:
    found = []
    for path in markdown_files():
        text = path.read_text(encoding="utf-8")
        for match in _CITATION.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{relative(path)}:{line}", match["file"], match["names"]))
    return found


def module_for(file: str) -> types.ModuleType:
    dotted = file.removesuffix(".py").replace("/", ".")
    if not dotted.startswith(("trasgi.", "trasgi_web.")):
        dotted = "trasgi." + dotted
    return importlib.import_module(dotted)


def resolves(module: types.ModuleType, dotted: str) -> bool:
    target: Any = module
    for part in dotted.split("."):
        if hasattr(target, part):
            target = getattr(target, part)
        elif inspect.isclass(target):
            # An instance attribute, assigned in a method.
            source = inspect.getsource(target)
            return re.search(rf"self\.{re.escape(part)}\b\s*[:=]", source) is not None
        else:
            return False
    return True


@pytest.mark.parametrize(
    ("where", "file", "names"), citations(), ids=[c[0] for c in citations()]
)
def test_cited_names_exist(where: str, file: str, names: str) -> None:
    module = module_for(file)
    for name in re.split(r"\s*(?:→|,|/)\s*", names.strip()):
        name = name.removesuffix("()")
        assert resolves(module, name), f"{where}: {file} has no {name!r}"


_LINK = re.compile(r"\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")


@pytest.mark.parametrize("path", markdown_files(), ids=relative)
def test_relative_links_point_to_files(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # no links in code
    for match in _LINK.finditer(text):
        target = match["target"].partition("#")[0]
        if not target or re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # an anchor in the page, or an absolute URL
        assert (path.parent / target).exists(), f"{relative(path)}: {target}"


# -- the runner itself ---------------------------------------------------------


def test_fenced_blocks_are_found_with_their_lines(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Intro\n\n```python\nx = 1\n```\n\n- item\n\n  ````python fragment\n"
        "  y = 2\n  ````\n\n```sh\nls\n```\n"
    )
    blocks = list(fenced_blocks(page))
    assert [(b.line, b.info, b.code) for b in blocks] == [
        (4, "python", "x = 1\n"),
        (10, "python fragment", "y = 2\n"),
        (14, "sh", "ls\n"),
    ]
    assert [runnable(b) for b in blocks[:2]] == [True, False]


def test_entry_points_are_run_with_a_mock_clock(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nimport trio\nRAN = []\n\n"
        "async def test_sleeps(autojump_clock):\n"
        "    await trio.sleep(3600)\n"
        "    RAN.append(trio.current_time())\n\n"
        "def main():\n    RAN.append('main')\n```\n"
    )
    (block,) = fenced_blocks(page)
    module = run_block(block)
    for function in entry_points(module):
        call(function, block)
    assert module.RAN == [3600, "main"]


def test_a_failing_snippet_names_its_markdown_line(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("Text\n\n```python\nx = 1\nassert x == 2\n```\n")
    (block,) = fenced_blocks(page)
    with pytest.raises(AssertionError) as caught:
        run_block(block)
    last = caught.traceback[-1]
    assert (str(last.path), last.lineno + 1) == (str(page), 5)
