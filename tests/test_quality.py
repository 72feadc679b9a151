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


@pytest.mark.parametrize("source", ["launcher/fastpath.c", "snapshot.c", "ring.c"])
def test_the_masters_c_builds_with_warnings_as_errors(tmp_path: Path, source: str) -> None:
    """The C compiled into libcfake._wire (by cffi, with its own flags) meets the shim's rule."""
    command = ["gcc", *shim_build.WARNINGS, "-O2", "-I", str(ROOT / "shim"), "-c",
               str(ROOT / "shim" / source), "-o", str(tmp_path / "object.o")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


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


def _imports() -> dict[str, set[str]]:
    """Each module of the package and the modules of the package it imports (any import, those
    made for type checking or inside functions included)."""
    import ast

    graph: dict[str, set[str]] = {}
    for path in (ROOT / "libcfake").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [node.module] if node.module else [alias.name for alias in node.names]
                imported.update(name.split(".")[0] for name in names)
        graph[path.stem] = imported - {path.stem}
    return graph


def test_the_package_has_no_import_cycle() -> None:
    """ARCHITECTURE.md's layers: every dependency points down, so none comes back round."""
    graph = _imports()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            pytest.fail("import cycle: " + " -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for imported in sorted(graph.get(module, ())):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_no_module_uses_another_modules_private_names() -> None:
    """A name with a leading underscore is its module's own: another module that imports one
    (``from .fs import _walk``) depends on what may change without notice. The package's private
    modules (``_paths``, ``_shadow``...) are modules, not names, and may be imported."""
    import ast

    offenders = []
    for path in (ROOT / "libcfake").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                offenders += [
                    f"{path.name}: from .{node.module} import {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    assert not offenders, "\n".join(offenders)
