"""The shim's syscall gate (shim/gate.c) under libcfake-launch, on real programs.

A dynamic program served by the shim runs under the launcher's seccomp filter with a Sandbox as
its master; a thread takes every trapped call, notes where it came from (the mapping its
instruction pointer lies in: the shim, libc, the loader), and lets it go on. With the gate the
shim's own real calls (the connection to the master, the passthrough table's checks, every call
the master or the table let through) never trap; what the program does without the shim (a raw
syscall(), the loader, libc's internal opens and stats) still does. LIBCFAKE_NO_GATE=1 shows what
the gate saves: the same calls, made from the shim's text, trap.

Answering with reply_continue is for these tests only: it lets a path another thread may change
go on (see libcfake._seccomp).
"""

from __future__ import annotations

import collections
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from libcfake import Sandbox, _seccomp
from libcfake._seccomp import Notification

#: The calls that name a path, by the register that holds it.
PATH_ARGUMENT = {"openat": 1, "newfstatat": 1, "statx": 1, "readlinkat": 1, "faccessat2": 1,
                 "access": 0, "execve": 0, "getxattr": 0, "lgetxattr": 0}  # fmt: skip

PYTHON_IMPORTS = "import json, email.mime.text, http.client, decimal, sqlite3, tomllib; print('ok')"


@dataclass
class Traced:
    """A program's run under the launcher: what it printed, and every call that trapped."""

    returncode: int
    stdout: str
    stderr: str
    traps: list[tuple[str, str, bytes | None]] = field(default_factory=list)  # origin, call, path

    def by_origin(self) -> collections.Counter[str]:
        return collections.Counter(origin for origin, _, _ in self.traps)

    def summary(self) -> str:
        calls = collections.Counter((origin, name) for origin, name, _ in self.traps)
        top = ", ".join(f"{o}:{n}={k}" for (o, n), k in calls.most_common(8))
        return f"{len(self.traps)} traps {dict(self.by_origin())} [{top}]"


def origin(pid: int, address: int) -> str:
    """Which mapping of the process holds address: "shim", "libc", "ld.so", or a file's name."""
    try:
        with open(f"/proc/{pid}/maps") as maps:
            for line in maps:
                fields = line.split()
                low, high = (int(x, 16) for x in fields[0].split("-"))
                if low <= address < high:
                    name = os.path.basename(fields[5]) if len(fields) > 5 else "[anonymous]"
                    if name.startswith("libcfake_preload"):
                        return "shim"
                    if name.startswith("ld-linux"):
                        return "ld.so"
                    if name.startswith("libc.so"):
                        return "libc"
                    return name
    except OSError:
        return "?"  # the thread is gone
    return "unmapped"


def path_of(note: Notification) -> bytes | None:
    index = PATH_ARGUMENT.get(note.name)
    if index is None:
        return None
    try:
        return _seccomp.read_path(note.pid, note.args[index])
    except OSError:
        return None


def traced(sb: Sandbox, args: Sequence[str], *, gate: bool = True) -> Traced:
    """Run args behind sb's shim under the launcher, letting every trapped call go on."""
    env = sb.environment()
    if not gate:
        env["LIBCFAKE_NO_GATE"] = "1"
    real_cwd = sb._enter(sb.cwd)  # what Sandbox.popen starts programs in
    proc, listener = _seccomp.spawn(args, env=env, cwd=real_cwd, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)  # fmt: skip
    traps: list[tuple[str, str, bytes | None]] = []
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([listener], [], [], 0.05)
            if not ready:
                continue
            note = listener.receive()
            if note is None:
                continue
            traps.append((origin(note.pid, note.instruction_pointer), note.name, path_of(note)))
            listener.reply_continue(note.id)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        listener.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Traced(proc.returncode, stdout, stderr, traps)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    try:
        _seccomp.launcher_path()
    except Exception as error:  # not built here
        pytest.skip(str(error))
    with Sandbox(reply_timeout=60) as sandbox:
        yield sandbox


def both(sb: Sandbox, args: Sequence[str]) -> tuple[Traced, Traced]:
    """The program with the gate and without it; the counts go to the test's output."""
    with_gate, without = traced(sb, args), traced(sb, args, gate=False)
    print(f"\n{' '.join(args)[:60]}")
    print(f"  gate:    {with_gate.summary()}\n  no gate: {without.summary()}")
    return with_gate, without


def test_python_importing_modules_pays_no_trap_for_the_shims_calls(sb: Sandbox) -> None:
    with_gate, without = both(sb, [sys.executable, "-c", PYTHON_IMPORTS])
    assert with_gate.stdout == without.stdout == "ok\n", (with_gate.stderr, without.stderr)
    assert with_gate.by_origin()["shim"] == 0, with_gate.summary()
    # the same calls, made from the shim's own text: the connection, stats and opens of sys.path
    assert without.by_origin()["shim"] > 100, without.summary()
    calls = {name for origin, name, _ in without.traps if origin == "shim"}
    assert {"connect", "sendmsg", "openat", "newfstatat", "readlinkat"} <= calls
    # what the gate does not cover is the same either way: the loader, libc's internal calls
    assert without.by_origin()["ld.so"] == with_gate.by_origin()["ld.so"] > 0


def test_ls_long_listing_pays_no_trap_for_the_shims_calls(sb: Sandbox) -> None:
    # (ls's libselinux calls wrapped functions from its constructor, before the shim's run)
    with_gate, without = both(sb, ["/bin/ls", "-l", "/usr/lib"])
    assert with_gate.returncode == without.returncode == 0, with_gate.stderr
    assert with_gate.stdout == without.stdout
    assert with_gate.by_origin()["shim"] == 0, with_gate.summary()
    calls = {name for origin, name, _ in without.traps if origin == "shim"}
    assert {"statx", "lgetxattr", "getxattr"} <= calls, without.summary()


def test_cat_of_a_model_file(sb: Sandbox) -> None:
    sb.fs.create_dir("/data")
    sb.fs.create_file("/data/model.txt", contents="from the model\n")
    with_gate, without = both(sb, ["/bin/cat", "/data/model.txt"])
    assert with_gate.stdout == without.stdout == "from the model\n", with_gate.stderr
    assert with_gate.by_origin()["shim"] == 0, with_gate.summary()
    assert without.by_origin()["shim"] > 0, without.summary()
    # the master answered the open: no trap names the file, with the gate or without
    assert not [t for t in with_gate.traps + without.traps if t[2] == b"/data/model.txt"]


RAW_OPENAT = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(257, -100, b"/usr/lib/os-release", os.O_RDONLY)  # SYS_openat, AT_FDCWD
print("raw", fd >= 0)
print("open", len(open("/usr/lib/os-release").read()) > 0)
"""


def test_a_raw_syscall_from_the_program_still_traps(sb: Sandbox) -> None:
    if not Path("/usr/lib/os-release").exists():
        pytest.skip("no /usr/lib/os-release here")
    result = traced(sb, [sys.executable, "-c", RAW_OPENAT])
    print(f"\nraw syscall: {result.summary()}")
    assert result.stdout == "raw True\nopen True\n", result.stderr
    named = [(o, name) for o, name, path in result.traps if path == b"/usr/lib/os-release"]
    # the raw openat traps (from libc's syscall()); open() went through the shim: the
    # passthrough table let it through, and its real call went through the gate
    assert named == [("libc", "openat")], result.summary()
    assert result.by_origin()["shim"] == 0


@pytest.mark.parametrize("lister", [["/bin/ls", "-R"], ["find"]])
def test_listing_directories_pays_no_trap_per_directory(sb: Sandbox, lister: list[str]) -> None:
    # glibc's opendir (ls) and fdopendir (find's fts) stat their descriptor inside libc; the
    # shim makes the streams itself (shim/dir.c) after checking glibc's layout on the first.
    # libc's other descriptor stats (of locale files, say) are the same for both trees.
    for index in range(30):
        sb.fs.create_file(f"/tree/d{index}/f")
    sb.fs.create_file("/small/d0/f")

    def descriptor_stats(tree: str) -> int:
        result = traced(sb, [*lister, tree])
        assert result.returncode == 0, result.stderr
        assert f"{tree}/d0" in result.stdout, result.stdout
        return sum(t[:2] == ("libc", "newfstatat") and t[2] == b"" for t in result.traps)

    small, large = descriptor_stats("/small"), descriptor_stats("/tree")
    assert large <= small + 1, (small, large)  # (29 more directories: 29 more traps before)
