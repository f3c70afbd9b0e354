"""mypy --strict on typed handlers: the annotations a handler declares are checked."""

import pathlib
import textwrap

from mypy import api

APP = """
from typing import Annotated

import msgspec

from trasgi_web import App, Depends, Query


class Note(msgspec.Struct):
    id: int
    title: str


app = App()


async def current_user() -> str:
    return "ann"


@app.get("/notes/{note_id:int}")
async def get_note(
    note_id: int,
    user: Annotated[str, Depends(current_user)],
    verbose: Annotated[bool, Query()] = False,
) -> Note:
    return {"id": note_id, "title": user}


@app.get("/count")
def count(limit: int = 10) -> int:
    return limit + "1"
"""


def test_mypy_flags_handlers_returning_the_wrong_type(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "typed_app.py"
    source.write_text(textwrap.dedent(APP))
    stdout, stderr, status = api.run(["--strict", str(source)])
    lines = [
        line.split(": ", 1)[1] for line in stdout.splitlines() if ": error: " in line
    ]
    assert status == 1, stdout + stderr
    assert lines == [
        'error: Incompatible return value type (got "dict[str, object]", expected "Note")  [return-value]',
        'error: Unsupported operand types for + ("int" and "str")  [operator]',
    ]
