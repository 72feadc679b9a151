"""``LibcService(backend="hybrid")``: the raw API serves what the shim cannot reach, in the same
vocabulary and with the same methods.

A static program (``tests/programs/hybrid_tool.c``, ``gcc -static``) and a child started without
``LD_PRELOAD`` read a file only the handler knows, from a memfd it sends; the handler sees
the same call names the shim would send ("open", "stat"); a signal aimed at the test process is
refused by the backend and reported as a :class:`ServiceError`; the test process stays alive.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from libcfake import LibcService, _hybrid

from .conftest import build_static

PROGRAMS = Path(__file__).resolve().parent / "programs"
VIRTUAL = "/virtual/app.conf"
CONTENTS = b"port = 8080 (the handler's)\n"

pytestmark = pytest.mark.skipif(
    _hybrid.unavailable() is not None, reason=f"no hybrid backend here: {_hybrid.unavailable()}"
)


@pytest.fixture(scope="module")
def tool() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="libcfake-service-hybrid-"))
    try:
        yield build_static("hybrid_tool", directory)
    finally:
        shutil.rmtree(directory)


def serve_virtual_file(seen: list[tuple[str, object]]) -> object:
    """A handler: VIRTUAL is a memfd of CONTENTS; every other call the program's own."""

    def handler(svc: LibcService) -> None:
        arguments = svc.arguments()
        seen.append((svc.function_, str(arguments[0]) if arguments else None))
        if svc.function_ in ("open", "openat") and VIRTUAL in map(str, arguments):
            memfd = os.memfd_create("virtual", os.MFD_CLOEXEC)
            try:
                os.write(memfd, CONTENTS)
                os.lseek(memfd, 0, os.SEEK_SET)
                svc.send_with_fds(0, [memfd])
            finally:
                os.close(memfd)
        else:
            svc.use_slave_credentials()

    return handler


def test_the_default_is_the_preload_backend() -> None:
    with LibcService() as svc:
        assert svc.backend == "preload"
    with pytest.raises(ValueError, match="backend is one of"):
        LibcService(backend="seccomp")


def test_a_static_program_is_served_through_the_handler(tool: Path) -> None:
    seen: list[tuple[str, object]] = []
    with LibcService(backend="hybrid", passthrough=["/usr", "/lib"]) as svc:
        assert svc.backend == "hybrid"
        proc = svc.spawn([str(tool), "read", VIRTUAL, "raw-read", VIRTUAL],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        assert svc.serve(serve_virtual_file(seen), until=proc, timeout=60) == 0
        stdout = proc.stdout.read().decode() if proc.stdout else ""
    text = CONTENTS.decode().strip()
    assert stdout.splitlines() == [f"read: {text}", f"raw-read: {text}"], stdout
    assert seen.count(("openat", VIRTUAL)) == 2, seen  # the shim's name for both
    assert not os.path.exists(VIRTUAL)


def test_a_child_without_ld_preload_is_served_too() -> None:
    seen: list[tuple[str, object]] = []
    with LibcService(backend="hybrid", passthrough=["/usr", "/lib", "/bin"]) as svc:
        proc = svc.spawn(["sh", "-c", f"env -u LD_PRELOAD cat {VIRTUAL}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        returncode = svc.serve(serve_virtual_file(seen), until=proc, timeout=60)
        stdout = proc.stdout.read() if proc.stdout else b""
    assert returncode == 0
    assert stdout == CONTENTS
    assert [call for call in seen if call[1] == VIRTUAL] == [("open", VIRTUAL)], seen


def test_a_signal_aimed_at_the_test_is_refused_and_reported(tool: Path) -> None:
    seen: list[tuple[str, object]] = []
    with LibcService(backend="hybrid", passthrough=["/usr", "/lib"]) as svc:
        proc = svc.spawn([str(tool), "kill-parent"], stdout=subprocess.PIPE)
        assert svc.serve(serve_virtual_file(seen), until=proc, timeout=60) == 0
        stdout = proc.stdout.read().decode() if proc.stdout else ""
        errors = list(svc.errors)
    assert stdout.strip() == "kill-parent: EPERM", stdout
    assert [error.stage for error in errors] == ["supervisor"], errors
    assert "kill" in errors[0].message
