"""The Makefile's set-up: a `.venv` made by another Python is made again, not left to fail."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
WANTED = f"{sys.version_info.major}.{sys.version_info.minor}"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def fake_venv(folder: Path, version: str) -> Path:
    """A venv whose python reports `version`, as one made by that Python would."""
    python = folder / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\necho {version}\n")
    python.chmod(0o755)
    return folder


def venv_check(venv: Path, python: str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "venv-check", f"VENV={venv}", f"PYTHON={python}"],
        capture_output=True, text=True, check=False, cwd=REPO_ROOT,
    )  # fmt: skip


def test_a_venv_of_another_python_is_deleted_to_be_made_again(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path / "venv", "3.11")
    completed = venv_check(venv)
    assert completed.returncode == 0, completed.stderr
    assert f"made by Python 3.11, not {WANTED}: deleting it to make it again" in completed.stdout
    assert not venv.exists()


def test_a_venv_of_the_wanted_python_is_kept(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path / "venv", WANTED)
    completed = venv_check(venv)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "" and (venv / "bin" / "python").is_file()


def test_a_missing_python_stops_with_one_line_saying_what_to_install(tmp_path: Path) -> None:
    completed = venv_check(tmp_path / "venv", python="python-that-is-not-here")
    assert completed.returncode != 0
    assert "python-that-is-not-here not found: install Python 3.12" in completed.stderr
