"""Shared fixtures: a LibcService per test, a way to run a program under a handler, and a C
compiler for the small programs some tests build."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from libcfake import LibcService

pytest_plugins = ["pytester"]

PROGRAMS = Path(__file__).resolve().parent / "programs"
ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """With LIBCFAKE_SANITIZE=1, every program runs behind the ASan+UBSan build of the shim."""
    if os.environ.get("LIBCFAKE_SANITIZE") != "1":
        return
    sys.path.insert(0, str(ROOT / "shim"))
    import build as shim_build

    output = Path(tempfile.mkdtemp(prefix="libcfake-asan-")) / "libcfake_preload_asan.so"
    output.parent.chmod(0o755)  # programs that drop to another user must still load it
    shim_build.build(output, sanitize=True)
    cc = os.environ.get("CC", "gcc")
    runtime = subprocess.run(
        [cc, "-print-file-name=libasan.so"], capture_output=True, text=True, check=True
    ).stdout.strip()
    os.environ["LIBCFAKE_SHIM"] = str(output)
    os.environ["LIBCFAKE_PRELOAD_FIRST"] = runtime  # ASan's runtime must be loaded first
    # the programs under test are not ours to leak-check; our own errors abort with a report
    os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=0:halt_on_error=1")
    os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    config.stash[_SANITIZED] = str(output)


_SANITIZED = pytest.StashKey[str]()


@dataclasses.dataclass
class Ran:
    """What a program did: its exit status and output, and the calls its handler saw."""

    returncode: int
    stdout: str
    stderr: str
    calls: list[tuple[str, str, tuple[Any, ...]]]  # (symbol, function_, arguments)


@pytest.fixture
def service() -> Iterator[LibcService]:
    with LibcService(reply_timeout=20) as svc:
        yield svc


def run_served(
    svc: LibcService,
    args: Sequence[str],
    handler: Callable[[LibcService], object],
    timeout: float = 60,
    **popen_kwargs: Any,
) -> Ran:
    """Run ``args`` behind the shim, answering with ``handler``; record every call it made."""
    calls: list[tuple[str, str, tuple[Any, ...]]] = []

    def recording(svc: LibcService) -> None:
        calls.append((svc.call.raw.symbol, svc.function_, svc.arguments()))
        handler(svc)

    proc = svc.spawn(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen_kwargs)
    try:
        returncode = svc.serve(recording, until=proc, timeout=timeout)
        stdout, stderr = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Ran(returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace"), calls)


#: The prefix that runs a command as nobody (uid and gid 65534, no groups): needs root.
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def as_nobody() -> list[str]:
    """AS_NOBODY, after skipping the test if setpriv is not installed."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    return AS_NOBODY


def build_static(name: str, directory: Path) -> Path:
    """``tests/programs/NAME.c`` linked statically into ``directory`` (a program no preload
    reaches); the test is skipped where the machine has no static libc."""
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        pytest.skip("no C compiler")
    exe = directory / name
    command = [cc, "-static", "-O1", "-Wall", "-Werror", "-o",
               str(exe), str(PROGRAMS / f"{name}.c")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"no static libc here: {done.stderr.strip()[:200]}")
    return exe


def program_steps(sb: Any, program: Path) -> Callable[..., list[str]]:
    """Run ``program`` (tests/programs/snapshot.c, say) in the Sandbox ``sb`` with the given
    steps, checking it exits 0 and writes nothing on stderr; its output lines."""

    def run(*args: str) -> list[str]:
        done = sb.run([str(program), *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", done.stderr
        return list(done.stdout.splitlines())

    return run


def hybrid_sandbox() -> Any:
    """A Sandbox of the hybrid backend (a context manager); the test is skipped where the kernel
    cannot give one."""
    from libcfake import Sandbox, _hybrid

    if _hybrid.unavailable() is not None:
        pytest.skip(f"no hybrid backend here: {_hybrid.unavailable()}")
    return Sandbox(backend="hybrid")


def passthrough(svc: LibcService) -> None:
    """A handler that lets every call through to the real libc."""
    svc.use_slave_credentials()


@pytest.fixture(scope="session")
def compile_c(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Compile ``tests/programs/NAME.c`` once per session; the executable's path."""
    if shutil.which(os.environ.get("CC", "gcc")) is None:
        pytest.skip("no C compiler")
    out = tmp_path_factory.mktemp("programs")

    def compile_program(name: str) -> Path:
        source = PROGRAMS / f"{name}.c"
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
        exe = out / f"{name}-{digest}"
        if not exe.exists():
            subprocess.run(
                [
                    os.environ.get("CC", "gcc"),
                    "-O1",
                    "-g",
                    "-Wall",
                    "-Werror",
                    "-pthread",
                    "-o",
                    str(exe),
                    str(source),
                ],
                check=True,
            )
        return exe

    return compile_program
