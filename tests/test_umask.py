"""Files and directories a program creates get the mode its umask gives at that moment.

The shim knows the program's umask (read once from /proc, kept by its umask() wrapper) and every
call says it, so the master never reads /proc/PID/status for a create. Each script and program
runs natively in a real directory and in a Sandbox, and the modes must agree: the umask is the
process's (its threads share it), a fork or vfork child's is its own, and exec keeps it.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from libcfake import LibcService, Sandbox, request
from libcfake.errors import ProtocolError
from libcfake.protocol import UMASK_KNOWN, decode_call, decode_hello, encode_call, encode_hello

from .conftest import run_served

SCRIPTS = {
    "the default umask": "touch f; mkdir d",
    "a umask set before creating": "umask 077; touch f; mkdir d",
    "a umask changed between creations": "umask 077; touch f; umask 002; touch g; mkdir d",
    "an existing file keeps its mode": "touch f; umask 077; touch f; echo x >> f",
    "a subshell's umask": "(umask 027; touch f; mkdir d); touch g",
}
#: Print the mode and name of every entry, sorted.
LIST = "for x in *; do stat -c '%a %n' \"$x\"; done"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(reply_timeout=20) as sandbox:
        yield sandbox


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_created_modes_follow_the_umask_as_natively(
    sb: Sandbox, tmp_path: Path, script: str
) -> None:
    code = f"umask 022; {SCRIPTS[script]}; {LIST}"
    native = subprocess.run(["sh", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert native.returncode == 0, native.stderr
    sb.fs.create_dir("/scratch")
    sandboxed = sb.run(["sh", "-c", code], cwd="/scratch", capture_output=True, text=True)
    assert sandboxed.returncode == 0, sandboxed.stderr
    assert sandboxed.stdout == native.stdout
    assert not sb.violations


#: Every entry below the current directory: its mode, type and path, sorted.
TREE = "find . -mindepth 1 -exec stat -c '%a %F %n' {} + | sort"


def _native_and_sandboxed(
    sb: Sandbox, tmp_path: Path, command: list[str]
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    native = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert native.returncode == 0, native.stderr
    sb.fs.create_dir("/scratch")
    sandboxed = sb.run(command, cwd="/scratch", capture_output=True, text=True)
    assert sandboxed.returncode == 0, sandboxed.stderr
    return native, sandboxed


def _check_suffixes(tree: str) -> None:
    """Each entry named ``NAME-UMASK`` (octal) has the mode that umask gives (the test's check of
    itself: the scenario did what it says, natively too)."""
    for line in tree.splitlines():
        mode, *kind, name = line.split()
        umask = name.rpartition("-")[2]
        if len(umask) == 3 and umask.isdigit():
            full = 0o777 if kind[0] in ("directory", "socket") else 0o666
            assert int(mode, 8) == full & ~int(umask, 8), line


@pytest.fixture
def program(compile_c: Callable[[str], Path]) -> Path:
    return compile_c("umask_creates")


@pytest.fixture
def proc_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids whose umask the master read from /proc (it should not: every call says it)."""
    reads: list[int] = []
    real = request._umask

    def counting(pid: int) -> int:
        reads.append(pid)
        return real(pid)

    monkeypatch.setattr(request, "_umask", counting)
    return reads


@pytest.mark.parametrize("scenario", ["set", "between", "threads", "fork", "vfork", "exec"])
def test_a_c_program_gets_the_modes_of_its_umask_as_natively(
    tmp_path: Path, program: Path, proc_reads: list[int], scenario: str
) -> None:
    command = ["sh", "-c", f"umask 022; {program} {scenario}; {TREE}"]
    with Sandbox(reply_timeout=20, mounts=[str(program.parent)]) as sb:
        native, sandboxed = _native_and_sandboxed(sb, tmp_path, command)
        assert not sb.violations
    assert sandboxed.stdout == native.stdout
    assert len(native.stdout.splitlines()) >= 2
    _check_suffixes(native.stdout)
    assert proc_reads == []


def test_threads_changing_the_umask_at_once_leave_the_kernels_umask(
    tmp_path: Path, program: Path
) -> None:
    """Overlapping umask() calls: the kernel keeps one of them; the shim reads which."""
    command = ["sh", "-c", f"umask 022; {program} race; {TREE}"]
    with Sandbox(reply_timeout=20, mounts=[str(program.parent)]) as sb:
        native, sandboxed = _native_and_sandboxed(sb, tmp_path, command)
        assert not sb.violations
    assert native.stdout == sandboxed.stdout == "race: 0 wrong\n", sandboxed.stderr


PYTHON = """
import os, socket, subprocess, threading
os.umask(0o077)
open("a-077", "w").close()
os.mkdir("b-077")
os.umask(0o002)
open("c-002", "w").close()
ready, changed = threading.Event(), threading.Event()
def other():
    open("t1-002", "w").close()
    ready.set()
    changed.wait()
    open("t2-027", "w").close()
    os.mkdir("t3-027")
thread = threading.Thread(target=other)
thread.start()
ready.wait()
os.umask(0o027)
changed.set()
thread.join()
pid = os.fork()
if pid == 0:
    open("f1-027", "w").close()
    os.umask(0o070)
    open("f2-070", "w").close()
    os._exit(0)
assert os.waitpid(pid, 0)[1] == 0
open("p1-027", "w").close()
subprocess.run(["touch", "x1-027"], check=True)
subprocess.run(["touch", "x2-077"], check=True, umask=0o077)
open("p2-027", "w").close()
sock = socket.socket(socket.AF_UNIX)
sock.bind("s-027")
sock.close()
os.mkfifo("q-027")
"""


def test_a_python_program_gets_the_modes_of_its_umask_as_natively(
    sb: Sandbox, tmp_path: Path, proc_reads: list[int]
) -> None:
    command = ["sh", "-c", f"umask 022; {sys.executable} -c '{PYTHON}'; {TREE}"]
    native, sandboxed = _native_and_sandboxed(sb, tmp_path, command)
    assert sandboxed.stdout == native.stdout
    assert len(native.stdout.splitlines()) == 14
    _check_suffixes(native.stdout)
    assert not sb.violations
    assert proc_reads == []


def test_the_hello_says_the_umask_at_connection_and_each_call_the_current_one(
    service: LibcService,
) -> None:
    seen = []

    def handler(svc: LibcService) -> None:
        if svc.call.raw.string1 == b"/v/made":
            seen.append((svc.process.umask, svc.call.raw.said_umask))
            svc.send(-1, errno=errno.ENOENT)
        else:
            svc.use_slave_credentials()

    code = "import os; os.umask(0o077); open('/v/made', 'w')"
    command = ["sh", "-c", f'umask 027; exec {sys.executable} -c "{code}"']
    ran = run_served(service, command, handler)
    assert ran.returncode == 1, ran.stderr  # FileNotFoundError
    assert seen == [(0o027, 0o077)]


def test_the_umask_on_the_wire() -> None:
    assert decode_hello(encode_hello(umask=0o027)).umask == 0o027
    assert decode_hello(encode_hello(umask=0)).umask == 0
    assert decode_hello(encode_hello()).umask is None  # not said: the master reads /proc
    assert UMASK_KNOWN & 0o777 == 0
    with pytest.raises(ProtocolError, match="not a umask"):
        decode_hello(encode_hello(umask=0o1000))
    call = encode_call("mkdir", b"/d", mode=0o777, umask=UMASK_KNOWN | 0o027)
    assert decode_call(call, 0).said_umask == 0o027
    assert decode_call(encode_call("mkdir", b"/d"), 0).said_umask is None
    with pytest.raises(ProtocolError, match="not a umask"):
        decode_call(encode_call("mkdir", b"/d", umask=UMASK_KNOWN | 0o1000), 0)


def test_a_call_that_does_not_say_its_umask_has_it_read_from_proc(sb: Sandbox) -> None:
    """The seccomp supervisor's calls do not carry the umask: the master reads it."""
    process = decode_hello(encode_hello(pid=os.getpid()))
    old = os.umask(0o037)
    try:
        views = request.Views(sb.fs)
        assert views.caller(process, with_umask=True).umask == 0o037
        assert views.caller(process, with_umask=True, said=0o002).umask == 0o002
    finally:
        os.umask(old)
