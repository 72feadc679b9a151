"""The seccomp supervisor's kernel side (libcfake._seccomp and libcfake-launch), on programs the
shim cannot reach: a static binary, a shell started with an empty environment, the i386 entry.

Each test answers the trapped calls itself, the way the master will, and checks from outside:
a canary file that must not appear on the real disk, the program's own words.
"""

from __future__ import annotations

import errno
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from libcfake import _seccomp
from libcfake._seccomp import Listener, Notification

PROGRAMS = Path(__file__).resolve().parent / "programs"

#: The calls that name a path, by the register that holds it.
PATH_ARGUMENT = {"open": 0, "openat": 1, "execve": 0, "newfstatat": 1, "access": 0, "stat": 0,
                 "lstat": 0, "faccessat": 1, "faccessat2": 1, "readlink": 0, "readlinkat": 1,
                 "statx": 1}  # fmt: skip


@pytest.fixture(scope="module")
def static_open() -> Iterator[Path]:
    """tests/programs/static_open.c linked statically, in a directory every user may reach."""
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        pytest.skip("no C compiler")
    directory = Path(tempfile.mkdtemp(prefix="libcfake-static-"))
    directory.chmod(0o755)
    exe = directory / "static_open"
    command = [cc, "-static", "-O1", "-Wall", "-Werror", "-o", exe, PROGRAMS / "static_open.c"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(directory)
        pytest.skip(f"no static libc here: {result.stderr.strip()[:200]}")
    yield exe
    shutil.rmtree(directory)


@pytest.fixture
def canary() -> Iterator[Path]:
    """A path the program tries to create, in a directory every user may write; it must not
    exist on the real disk afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="libcfake-canary-"))
    directory.chmod(0o777)
    yield directory / "canary"
    shutil.rmtree(directory)


def path_of(note: Notification) -> bytes | None:
    index = PATH_ARGUMENT.get(note.name)
    if index is None:
        return None
    try:
        return _seccomp.read_path(note.pid, note.args[index])
    except OSError:
        return None


Answer = Callable[[Listener, Notification, "bytes | None"], None]


def continue_all(listener: Listener, note: Notification, path: bytes | None) -> None:
    listener.reply_continue(note.id)


def supervise(
    args: list[str], answer: Answer, *, stdin: str | None = None, **popen: object
) -> tuple[subprocess.CompletedProcess[str], list[tuple[str, bytes | None]]]:
    """Run ``args`` under the launcher, answering each trapped call with ``answer``; what the
    program printed, and the (call, path) of every trap."""
    proc, listener = _seccomp.spawn(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, **popen)  # fmt: skip
    seen: list[tuple[str, bytes | None]] = []
    try:
        if stdin is not None and proc.stdin is not None:
            proc.stdin.write(stdin)
            proc.stdin.flush()
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([listener], [], [], 0.05)
            if not ready:
                continue
            note = listener.receive()
            if note is None:
                continue
            path = path_of(note)
            seen.append((note.name, path))
            answer(listener, note, path)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        listener.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr), seen


def refuse_canary(listener: Listener, note: Notification, path: bytes | None) -> None:
    if path is not None and path.endswith(b"canary"):
        listener.reply(note.id, error=errno.EACCES)
    else:
        listener.reply_continue(note.id)


def test_a_static_program_is_trapped_and_refused(static_open: Path, canary: Path) -> None:
    result, seen = supervise([str(static_open), "create", str(canary)], refuse_canary)
    assert result.stdout == "open: Permission denied\n", result.stderr
    assert ("openat", os.fsencode(canary)) in seen
    assert not canary.exists()


def test_a_child_started_without_ld_preload_stays_under_the_filter(canary: Path) -> None:
    script = f"env -i /bin/sh -c 'echo x > {canary}' && echo written"
    result, seen = supervise(["/bin/sh", "-c", script], refuse_canary)
    assert "Permission denied" in result.stderr
    assert "written" not in result.stdout
    # sh's exec of env and env's of sh (the launcher's own goes through the shim's gate)
    assert sum(1 for name, _ in seen if name == "execve") >= 2
    assert not canary.exists()


def test_an_open_answered_with_the_masters_descriptor(static_open: Path) -> None:
    contents = os.memfd_create("virtual")
    os.write(contents, b"from the model\n")

    def answer(listener: Listener, note: Notification, path: bytes | None) -> None:
        if path == b"/etc/app.conf":
            os.lseek(contents, 0, os.SEEK_SET)
            listener.add_fd(note.id, contents, cloexec=True)  # the open returns it
        else:
            listener.reply_continue(note.id)

    try:
        result, _ = supervise([str(static_open), "read", "/etc/app.conf"], answer)
    finally:
        os.close(contents)
    assert result.stdout == "read: from the model\n", result.stderr


def test_the_i386_entry_is_refused_by_the_filter_itself(static_open: Path, canary: Path) -> None:
    result, seen = supervise([str(static_open), "i386", str(canary)], continue_all)
    assert result.stdout == f"i386: -{errno.ENOSYS}\n", result.stderr
    assert not canary.exists()
    assert all(path != os.fsencode(canary) for _, path in seen)  # never even trapped


def test_a_closed_listener_fails_every_trapped_call(static_open: Path, canary: Path) -> None:
    proc, listener = _seccomp.spawn([str(static_open), "wait", str(canary)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        # the launcher executes the program (through the shim's gate: no trap); calls that
        # trap meanwhile go on
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{proc.pid}/exe") != os.path.realpath(static_open):
            assert time.monotonic() < deadline, "the launcher never executed the program"
            if select.select([listener], [], [], 0.01)[0]:
                note = listener.receive()
                if note is not None:
                    listener.reply_continue(note.id)
        listener.close()  # the master is gone
        stdout, _ = proc.communicate("go\n", timeout=30)
    finally:
        listener.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stdout == "open: Function not implemented\n"
    assert not canary.exists()


def test_the_launcher_works_for_an_unprivileged_user(static_open: Path, canary: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to start the program as another user")
    result, seen = supervise([str(static_open), "create", str(canary)], refuse_canary,
                             user=65534, group=65534, extra_groups=[])  # fmt: skip
    assert result.stdout == "open: Permission denied\n", result.stderr
    assert ("openat", os.fsencode(canary)) in seen
    assert not canary.exists()
    # and with the filter answered "go on", the kernel's own check applies to nobody
    root_only = canary.parent / "root-only"
    root_only.mkdir(mode=0o700)
    target = root_only / "canary"
    result, _ = supervise([str(static_open), "create", str(target)], continue_all,
                          user=65534, group=65534, extra_groups=[])  # fmt: skip
    assert result.stdout == "open: Permission denied\n"
    assert not target.exists()


def test_memory_of_a_trapped_call_is_read_and_a_bad_pointer_is_efault(static_open: Path) -> None:
    paths: list[bytes] = []

    def answer(listener: Listener, note: Notification, path: bytes | None) -> None:
        if note.name == "openat":
            paths.append(path or b"")
            with pytest.raises(OSError) as bad:
                _seccomp.read_path(note.pid, 8)  # the first page is never mapped
            assert bad.value.errno == errno.EFAULT
            listener.reply(note.id, error=errno.ENOENT)
        else:
            listener.reply_continue(note.id)

    long_name = "/" + "d" * 200 + "/file"
    result, _ = supervise([str(static_open), "read", long_name], answer)
    assert paths == [long_name.encode()]
    assert result.stdout == "open: No such file or directory\n"


def test_only_sockets_of_other_families_and_chattr_ioctls_trap() -> None:
    code = (
        "import fcntl, socket, sys, termios\n"
        "socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()\n"
        "socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).close()\n"
        "socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close()\n"
        "with open('/dev/null', 'rb') as f:\n"
        "    try: fcntl.ioctl(f, termios.TCGETS, bytes(64))\n"
        "    except OSError: pass\n"
        "    try: fcntl.ioctl(f, 0x40086602, bytes(8))\n"  # FS_IOC_SETFLAGS
        "    except OSError: pass\n"
    )
    sockets: list[int] = []
    ioctls: list[int] = []

    def answer(listener: Listener, note: Notification, path: bytes | None) -> None:
        if note.name == "socket":
            sockets.append(note.args[0])
        elif note.name == "ioctl":
            ioctls.append(note.args[1] & 0xFFFFFFFF)
            listener.reply(note.id, error=errno.EPERM)
            return
        listener.reply_continue(note.id)

    result, _ = supervise([sys.executable, "-c", code], answer)
    assert result.returncode == 0, result.stderr
    assert sockets == [socket.AF_NETLINK]
    assert ioctls == [0x40086602]
