"""The user's own Python code, as a sandboxed interpreter meets it: read-only, and importable."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

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
