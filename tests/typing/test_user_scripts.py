"""mypy --strict on a user's script catches misspelled and mistyped request parameters.

Runs mypy once over two small scripts, from the repository root so it shares the project's
mypy configuration and cache.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
GOOD = HERE / "user_script_good.py"
BAD = HERE / "user_script_bad.py"


def expected_errors() -> dict[int, str]:
    lines = BAD.read_text("utf-8").splitlines()
    return {
        number: line.split("# error: ", 1)[1].strip()
        for number, line in enumerate(lines, 1)
        if "# error: " in line
    }


async def test_mypy_reports_the_mistakes_and_accepts_the_docs_patterns() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--no-error-summary",
        "--hide-error-context",
        str(GOOD.relative_to(ROOT)),
        str(BAD.relative_to(ROOT)),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    report = out.decode()
    errors: dict[str, dict[int, list[str]]] = {}
    for match in re.finditer(r"^(\S+?\.py):(\d+): error: (.*)$", report, re.M):
        path, line, message = match.groups()
        errors.setdefault(Path(path).name, {}).setdefault(int(line), []).append(message)

    assert GOOD.name not in errors, report
    found = errors.get(BAD.name, {})
    for line, fragment in expected_errors().items():
        assert any(fragment in message for message in found.get(line, [])), (line, report)
    unexpected = set(found) - set(expected_errors())
    assert not unexpected, report
    assert proc.returncode == 1, err.decode()
