"""Run the hostile-input fuzz test with a long setting.

``python bench/fuzz_deep.py [EXAMPLES]`` runs tests/hostile/test_fuzz.py (with
each HTTP/1.1 parser) and the parsers' differential test with
``TRASGI_FUZZ_EXAMPLES`` (default 20,000) instead of the bounded CI count.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    examples = sys.argv[1] if len(sys.argv) > 1 else "20000"
    env = {**os.environ, "TRASGI_FUZZ_EXAMPLES": examples}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/hostile/test_fuzz.py",
        "tests/protocol/test_h1_differential.py",
    ]
    print(f"fuzzing with {examples} examples: {' '.join(command)}", flush=True)
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
