"""Reaching a file needs search (x) permission on every directory the path leads through, as the
kernel checks it: the same stat calls run natively and in a Sandbox, as an unprivileged user."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from libcfake import Sandbox

from .conftest import AS_NOBODY

#: Paths stat'ed (lstat: stat without -L) under the tree that ``build`` makes.
PATHS = [
    "open/f",
    "closed",
    "closed/f",
    "closed/../f2",
    "open/../closed/f",
    "link",
    "link/f",
    "open/inner/../f",
    "missing/f",
]

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="dropping to another user needs root and setpriv",
)


@pytest.fixture
def native_root() -> Iterator[str]:
    root = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.chmod(root, 0o755)
    os.makedirs(f"{root}/open/inner")
    os.mkdir(f"{root}/closed", 0o700)
    for name in ("open/f", "closed/f", "f2"):
        with open(f"{root}/{name}", "w") as file:
            file.write("x")
    os.symlink("closed", f"{root}/link")
    yield root
    shutil.rmtree(root)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(reply_timeout=20) as sandbox:
        sandbox.fs.create_dir("/r/open/inner")
        sandbox.fs.create_dir("/r/closed", perm_bits=0o700)
        for name in ("open/f", "closed/f", "f2"):
            sandbox.fs.create_file(f"/r/{name}", contents="x")
        sandbox.fs.create_symlink("/r/link", "closed")
        yield sandbox


def outcome(result: subprocess.CompletedProcess[str], root: str) -> str:
    if result.returncode == 0:
        return "ok"
    return result.stderr.replace(root, "R").strip()


@pytest.mark.parametrize("path", PATHS)
def test_stat_needs_search_permission_as_natively(sb: Sandbox, native_root: str, path: str) -> None:
    command = [*AS_NOBODY, "stat", "-c", "%a"]
    native = subprocess.run([*command, f"{native_root}/{path}"], capture_output=True, text=True)
    sandboxed = sb.run([*command, f"/r/{path}"], capture_output=True, text=True, timeout=60)
    assert outcome(sandboxed, "/r") == outcome(native, native_root)
    assert sandboxed.stdout == native.stdout
