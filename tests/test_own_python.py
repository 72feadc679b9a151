"""The user's own Python code, as a sandboxed interpreter meets it: read-only, and importable."""

from __future__ import annotations

import errno
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from libcfake import Sandbox


def test_importing_code_without_bytecode_is_no_violation_and_writes_nothing(
    tmp_path: Path,
) -> None:
    # Python writes a module's bytecode next to its source when it is missing or stale (code
    # just edited): into a mount, which answers EROFS, as a read-only filesystem; Python goes on.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "__init__.py").write_text("VALUE = 1\n")
    stale = tmp_path / "stale"
    (stale / "__pycache__").mkdir(parents=True)
    (stale / "__init__.py").write_text("VALUE = 2\n")
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tmp_path)
    code = "import fresh, stale; print(fresh.VALUE + stale.VALUE)"

    with Sandbox(mounts=[str(tmp_path)], strict=True) as sb:
        result = sb.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)

    assert result.stdout == "3\n", result.stderr
    refused = [(e.call, Path(e.path)) for e in sb.journal if e.errno == errno.EROFS]
    assert ("mkdir", fresh / "__pycache__") in refused
    assert any(call == "open" and path.parent == stale / "__pycache__" for call, path in refused)
    assert not (fresh / "__pycache__").exists()
    assert list((stale / "__pycache__").iterdir()) == []


def test_other_writes_beside_the_sources_are_still_violations(tmp_path: Path) -> None:
    (tmp_path / "__pycache__").mkdir()
    target = tmp_path / "__pycache__" / "notes.txt"
    with Sandbox(mounts=[str(tmp_path)]) as sb:
        sb.run([sys.executable, "-c", f"open({str(target)!r}, 'w')"], capture_output=True)
    assert [(v.call, v.path) for v in sb.violations] == [("open", str(target))]
    assert not target.exists()


def _installed_through_a_finder(name: str) -> Path | None:
    """The project directory of ``name`` when it is installed in development mode through
    setuptools' import hook (PEP 660: a ``__editable__`` finder whose mapping names the source
    tree, which is on no ``sys.path``): how a flat-layout project, libcfake, installs."""
    for distribution in importlib.metadata.distributions(name=name):  # an .egg-info too
        direct = json.loads(distribution.read_text("direct_url.json") or "{}")
        finder = any(
            file.name.startswith("__editable__") and file.name.endswith("_finder.py")
            for file in distribution.files or ()
        )
        if finder and direct.get("dir_info", {}).get("editable"):
            return Path(unquote(urlparse(direct["url"]).path))
    return None


def test_an_editable_install_imports_through_its_finder_from_its_source_tree(
    tmp_path: Path,
) -> None:
    project = _installed_through_a_finder("libcfake")
    if project is None:
        pytest.skip("libcfake is not installed by pip install -e through setuptools' finder")
    # A fresh interpreter away from the checkout (pytest puts it on sys.path): the source tree
    # is reached only through the finder, and mounted only as an editable install's source.
    code = """if True:
        import os, sys
        from libcfake import Sandbox
        package = os.path.join(sys.argv[1], "libcfake")  # found through no sys.path entry
        assert not any(package.startswith(os.path.abspath(p or ".") + "/") for p in sys.path)
        with Sandbox(strict=True) as sb:
            imported = sb.run([sys.executable, "-c", "import libcfake; print(libcfake.__file__)"],
                              capture_output=True, text=True)
        print(imported.stdout + imported.stderr, end="")
    """
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code, str(project)], cwd=tmp_path, env=env,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{project / 'libcfake' / '__init__.py'}\n"
