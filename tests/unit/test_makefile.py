"""The Makefile a newcomer runs: the console user, keeping the cases, rebuilding a stale venv."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PY_ID = f"{sys.implementation.name}-{'.'.join(str(n) for n in sys.version_info[:3])}"


def make(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), f"PYTHON={sys.executable}", *args],
                          input=stdin, capture_output=True, text=True, timeout=60, check=False)


def built_venv(tmp_path: Path, python_id: str) -> Path:
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").write_text(python_id + "\n")
    return venv


def test_make_console_acts_as_the_person_named_by_who(tmp_path: Path) -> None:
    venv = built_venv(tmp_path, PY_ID)
    ben = make("-n", f"VENV={venv}", "console", "WHO=ben").stdout
    assert "console --config escalator.yaml --as ben" in ben
    default = make("-n", f"VENV={venv}", "console").stdout
    assert "--as alice" in default and "--as as" not in default


def test_make_clean_keeps_the_cases() -> None:
    commands = make("-n", "clean").stdout
    assert "rm -rf" in commands and ".escalator" not in commands


def test_reset_data_asks_first_and_keeps_the_data_unless_told_yes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "appendonly.aof").write_text("cases")
    refused = make(f"DATA={data}", "reset-data", stdin="no\n")
    assert refused.returncode != 0 and data.exists()
    assert "WARNING: this deletes" in refused.stdout and "Kept" in refused.stdout
    asked = make(f"DATA={data}", "reset-data", stdin="yes\n")
    assert asked.returncode == 0 and not data.exists()
    data.mkdir()
    confirmed = make(f"DATA={data}", "reset-data", "CONFIRM=yes")
    assert confirmed.returncode == 0 and not data.exists()


def test_a_venv_built_with_another_python_is_rebuilt_not_reused(tmp_path: Path) -> None:
    stale = built_venv(tmp_path, "cpython-3.9.0")
    plan = make("-n", f"VENV={stale}", f"{stale}/.installed").stdout
    assert f"-m venv {stale}" in plan and f"echo '{PY_ID}' > {stale}/.installed" in plan
    (tmp_path / "again").mkdir()
    fresh = built_venv(tmp_path / "again", PY_ID)
    assert "-m venv" not in make("-n", f"VENV={fresh}", f"{fresh}/.installed").stdout
