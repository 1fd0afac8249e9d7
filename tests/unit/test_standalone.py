"""The project stands alone: nothing at run or test time reads outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import CARD_SCHEMA, EXAMPLE_CONFIG, PROJECT_CONFIG, ROOT

SKIP = {".venv", ".git", ".escalator", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
# A path into a folder beside the project: dot-dot-slash, the absolute one, or `.parent / "<name>"`.
OUTSIDE = re.compile("|".join([r"\.\./" + "shared", "/work/" + "shared", r"/\s*[\"']" + "shared" + r"[\"']"]))


def python_files() -> list[Path]:
    return [p for p in ROOT.rglob("*.py") if not SKIP.intersection(p.relative_to(ROOT).parts)]


def test_no_python_file_reads_a_path_beside_the_repository() -> None:
    offenders = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
                 for p in python_files()
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if OUTSIDE.search(line)]
    assert python_files() and not offenders, offenders


def test_the_files_the_tests_read_are_inside_the_repository() -> None:
    for path in (CARD_SCHEMA, EXAMPLE_CONFIG, PROJECT_CONFIG):
        assert path.resolve().is_relative_to(ROOT) and path.is_file(), path
    notice = (CARD_SCHEMA.parent / "LICENSE-adaptivecards.md").read_text(encoding="utf-8")
    assert "MIT License" in notice and "Copyright (c) Microsoft Corporation" in notice
