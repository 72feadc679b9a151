"""The house rules, checked with every test run: the shim builds warning-free in both its
builds, and the Python code is formatted, linted and typed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "shim"))
import build as shim_build  # noqa: E402


@pytest.mark.parametrize("sanitize", [False, True], ids=["optimized", "sanitized"])
def test_the_shim_builds_with_warnings_as_errors(tmp_path: Path, sanitize: bool) -> None:
    assert "-Werror" in shim_build.command(tmp_path / "x.so", sanitize)
    output = tmp_path / "libcfake_preload.so"
    result = subprocess.run(shim_build.command(output, sanitize), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert output.is_file()


def _tool(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]')")


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_is_clean(command: list[str]) -> None:
    _tool("ruff")
    paths = ["libcfake", "pytest_plugin", "tests", "examples", "benchmarks", "shim"]
    result = subprocess.run([sys.executable, "-m", "ruff", *command, *paths], cwd=ROOT,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean_on_the_package() -> None:
    _tool("mypy")
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
