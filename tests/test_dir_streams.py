"""Directory streams the shim makes itself (shim/dir.c, "DIR streams").

glibc's opendir and fdopendir stat their descriptor inside libc, a trap per directory under the
hybrid backend; the shim makes the DIR itself instead, laid out as glibc's, once it has checked
the layout on the first stream glibc made. These run a C program that uses every stream call,
natively on a real directory and in Sandboxes of both backends on the same names in the model,
and expect the same lines: libc's own readdir (found with dlsym) reads the shim's streams too.
The trap counts are tests/test_gate.py's.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from libcfake import Sandbox

NAMES = ["alpha.txt", "beta", "gamma.conf", "delta"]

EXPECTED = """\
opendir: alpha.txt beta delta gamma.conf
seekdir: same
dirfd cloexec: yes
closedir: 0
fdopendir cloexec: yes
fdopendir dirfd: same
libc readdir: alpha.txt beta delta gamma.conf
closed with the stream: yes
fdopendir of a file: Not a directory
the file's descriptor stays open: yes
fdopendir of a closed descriptor: Bad file descriptor
opendir of a file: Not a directory
scandir: alpha.txt delta gamma.conf
scandir's inode numbers: the files'
scandir of a file: Not a directory
"""


def test_natively(compile_c: Callable[[str], Path], tmp_path: Path) -> None:
    """What the expected lines are made of: glibc's own streams."""
    for name in NAMES:
        (tmp_path / "d" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "d" / name).write_text("x")
    run = subprocess.run([str(compile_c("dir_streams")), str(tmp_path / "d"),
                          str(tmp_path / "d" / "alpha.txt")],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (run.returncode, run.stdout) == (0, EXPECTED), run.stderr


@pytest.mark.parametrize("backend", ["preload", "hybrid"])
def test_in_a_sandbox(compile_c: Callable[[str], Path], backend: str) -> None:
    program = compile_c("dir_streams")
    with Sandbox(backend=backend, strict=True, reply_timeout=30) as sb:
        if sb.backend != backend:
            pytest.skip(f"the {backend} backend cannot run here")
        for name in NAMES:
            sb.fs.create_file(f"/d/{name}", contents="x")
        run = sb.run([str(program), "/d", "/d/alpha.txt"], capture_output=True, text=True,
                     timeout=60)  # fmt: skip
        assert (run.returncode, run.stdout) == (0, EXPECTED), run.stderr


def test_python_streams_in_a_sandbox() -> None:
    """os.scandir of a path (opendir) and of a descriptor (fdopendir), os.listdir, os.walk."""
    code = (
        "import os\n"
        "print(sorted(e.name for e in os.scandir('/t')))\n"
        "fd = os.open('/t', os.O_RDONLY)\n"
        "print(sorted(e.name for e in os.scandir(fd)), sorted(os.listdir(fd)))\n"
        "print(sum(len(files) for _, _, files in os.walk('/t')))\n"
    )
    with Sandbox(strict=True, reply_timeout=30) as sb:
        for index in range(12):
            sb.fs.create_file(f"/t/d{index % 3}/f{index}")
        run = sb.run(["python3", "-c", code], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines() == [
            "['d0', 'd1', 'd2']",
            "['d0', 'd1', 'd2'] ['d0', 'd1', 'd2']",
            "12",
        ]
