"""Calls the shim used to let through to the host (issue 16, section 5), checked from outside.

Each test runs a real program (``tests/programs/host_doors.c``, Python, coreutils) in a Sandbox
and judges it from outside, as ``tests/test_escapes.py`` does: the real files of a read-only
mount keep their mode, owner, times, extended attributes and attribute flags; no FIFO, node or
hard link appears on the real disk; no real listener answers on any interface; a secret never
reaches the program's output. On the model's files the same calls are answered by the model.
"""

from __future__ import annotations

import array
import fcntl
import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from libcfake import Sandbox
from libcfake.fs import DEFAULT_MOUNTS

from .conftest import AS_NOBODY
from .test_escapes import NAME, PYTHON_PRELUDE, World, attempt, make_world

FS_IOC_GETFLAGS = 0x80086601


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    yield w
    w.close()


@pytest.fixture
def sb(world: World) -> Iterator[Sandbox]:
    with Sandbox(mounts=(*DEFAULT_MOUNTS, str(world.mount)), reply_timeout=20) as sandbox:
        yield sandbox


@pytest.fixture(scope="session")
def doors(compile_c: Callable[[str], Path]) -> Path:
    return compile_c("host_doors")


def _result(stdout: str) -> list[str]:
    lines = [line.split() for line in stdout.splitlines() if line.startswith("RESULT")]
    return lines[-1][1:] if lines else []


def _attributes(path: Path) -> tuple[Any, ...]:
    """What a metadata change would alter: mode, owner, mtime, ctime (any change of the inode),
    xattrs, attribute flags, links."""
    info = os.lstat(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags)
    except OSError:
        flags = array.array("i", [-1])
    finally:
        os.close(fd)
    xattrs = {name: os.getxattr(path, name) for name in os.listxattr(path)}
    return (info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns, info.st_ctime_ns,
            info.st_nlink, xattrs, flags[0])  # fmt: skip


# -- 1. metadata changes through a descriptor or path of a read-only mount ------------------

FD_CALLS = [
    "fchmod",
    "fchown",
    "futimens",
    "futimes",
    "futimesat-null",
    "fchownat-empty",
    "utimensat-empty",
    "fsetxattr",
    "fremovexattr",
    "chattr",
    "fsxattr",
]
PATH_CALLS = ["setxattr", "lsetxattr", "removexattr", "lremovexattr"]


@pytest.mark.parametrize("call", FD_CALLS + PATH_CALLS)
def test_metadata_change_of_a_mount_file_is_refused(
    call: str, sb: Sandbox, world: World, doors: Path
) -> None:
    target = world.mount / "mcanary"
    os.setxattr(target, "user.keep", b"1")
    before = _attributes(target)
    outcome = attempt(sb, world, [str(doors), call, str(target)])
    assert _attributes(target) == before
    assert outcome.result == "EROFS", outcome
    assert outcome.violations, sb.violations


def test_linkat_of_a_mount_descriptor_makes_no_real_link(
    sb: Sandbox, world: World, doors: Path
) -> None:
    target, link = world.mount / "mcanary", world.host / "hard"
    outcome = attempt(sb, world, [str(doors), "linkat-empty", str(target), str(link)])
    assert not link.exists() and os.stat(target).st_nlink == 1
    assert outcome.result in ("EROFS", "ENOENT"), outcome
    assert outcome.violations, sb.violations


def test_linkat_of_a_mount_descriptor_into_tmp_makes_no_real_link(
    sb: Sandbox, world: World, doors: Path
) -> None:
    sb.fs.create_dir("/tmp")
    target = world.mount / "mcanary"
    outcome = attempt(sb, world, [str(doors), "linkat-empty", str(target), f"/tmp/{NAME}"])
    assert os.stat(target).st_nlink == 1
    assert outcome.result == "EROFS", outcome
    assert outcome.violations, sb.violations


@pytest.mark.parametrize("call", ["fchmod", "futimens", "fsetxattr", "chattr"])
def test_metadata_change_of_a_mount_file_is_refused_as_its_owner(
    call: str, doors: Path, tmp_path: Path
) -> None:
    """As nobody, owner of the mounted file: the kernel would let the change through."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("dropping to another user needs root and setpriv")
    mount = Path(_shared_dir(tmp_path))
    target = mount / "owned"
    target.write_text("nobody's\n")
    os.chown(target, 65534, 65534)
    exe = mount / "host_doors"
    shutil.copy(doors, exe)
    before = _attributes(target)
    with Sandbox(mounts=(*DEFAULT_MOUNTS, str(mount))) as sandbox:
        done = sandbox.run([*AS_NOBODY, str(exe), call, str(target)], capture_output=True,
                           text=True, timeout=60)  # fmt: skip
        violations = list(sandbox.violations)
    assert _attributes(target) == before
    assert _result(done.stdout)[:1] == ["EROFS"], (done.stdout, done.stderr)
    assert violations


def _shared_dir(tmp_path: Path) -> str:
    """A directory under /dev/shm that nobody can reach (tmp_path's parents are root's)."""
    path = Path("/dev/shm") / f"{NAME}-{tmp_path.name}"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    _cleanups.append(str(path))
    return str(path)


_cleanups: list[str] = []


@pytest.fixture(autouse=True)
def _clean_shared() -> Iterator[None]:
    yield
    while _cleanups:
        shutil.rmtree(_cleanups.pop(), ignore_errors=True)


def test_metadata_of_a_model_file_is_the_models(sb: Sandbox, world: World, doors: Path) -> None:
    sb.fs.create_file("/data/f", contents="model\n", st_mode=stat.S_IFREG | 0o644)
    for call, expected in [("fchmod", "OK"), ("futimens", "OK"), ("fsetxattr", "OK"),
                           ("chattr", "ENOTTY"), ("linkat-empty", "OK")]:  # fmt: skip
        outcome = attempt(sb, world, [str(doors), call, "/data/f", "/data/hard"])
        assert outcome.result == expected, (call, outcome)
    seen = sb.run(["stat", "-c", "%a %Y %h", "/data/f"], capture_output=True, text=True)
    assert seen.stdout.split() == ["600", "1", "2"], seen
    assert sb.fs.read_text("/data/hard") == "model\n"
    assert not sb.violations, sb.violations


def test_setxattr_of_a_model_path_is_the_models(sb: Sandbox, world: World, doors: Path) -> None:
    sb.fs.create_file("/data/f", contents="model\n")
    outcome = attempt(sb, world, [str(doors), "setxattr", "/data/f"])
    assert outcome.result == "OK", outcome
    assert sb.fs.getxattr("/data/f", "user.libcfake") == b"x"
    outcome = attempt(sb, world, [str(doors), "setxattr", "/data/missing"])
    assert outcome.result == "ENOENT", outcome
    assert not sb.violations, sb.violations


def test_touch_and_chmod_of_a_host_file_through_its_descriptor(sb: Sandbox, world: World) -> None:
    """Python's os.fchmod/os.utime(fd) on a mount file: refused, the file unchanged."""
    target = world.mount / "mcanary"
    before = _attributes(target)
    code = (
        "fd = os.open(M + '/mcanary', os.O_RDONLY)\n"
        "report(lambda: os.fchmod(fd, 0o600))\n"
        "report(lambda: os.utime(fd, (1, 1)))\n"
    )
    outcome = attempt(sb, world, [sys.executable, "-c", PYTHON_PRELUDE + code, world.argument()])
    assert outcome.stdout.count("RESULT EROFS") == 2, outcome
    assert _attributes(target) == before


@pytest.mark.parametrize("backend", ["preload", "hybrid"])
def test_open_by_handle_reaches_no_host_file(backend: str, world: World, doors: Path) -> None:
    """A file handle names any file of a filesystem: open_by_handle_at is refused. (Under the
    hybrid backend name_to_handle_at answers EOPNOTSUPP, and the program forges the handle.)"""
    if os.geteuid() != 0:
        pytest.skip("open_by_handle_at needs CAP_DAC_READ_SEARCH")
    args = [str(doors), "by-handle", str(world.host / "canary"), str(world.mount)]
    mounts = (*DEFAULT_MOUNTS, str(world.mount))
    with Sandbox(mounts=mounts, reply_timeout=20, backend=backend) as sb:
        outcome = attempt(sb, world, args)  # (fails if the secret was printed)
    assert outcome.result == "EPERM", outcome
    assert [v.call for v in sb.violations] == ["open_by_handle_at"], sb.violations


@pytest.mark.parametrize("call", ["mount-tmpfs", "chroot", "umount2"])
def test_mount_and_chroot_are_refused(call: str, sb: Sandbox, world: World, doors: Path) -> None:
    """As root, mount(2) over a mounted directory would change the host's mount table."""
    target = str(world.mount)  # (never a real mount point: on today's main umount2 is real)
    was_mount = os.path.ismount(target)
    try:
        outcome = attempt(sb, world, [str(doors), call, target])
    finally:
        if os.path.ismount(world.mount):  # (today's main mounts it: undo that)
            subprocess.run(["umount", "-l", str(world.mount)], check=False)
    assert os.path.ismount(target) == was_mount
    assert outcome.result == "EPERM", outcome
    assert any(v.call == "mount" for v in sb.violations), sb.violations


# -- 2. mknod and mkfifo ---------------------------------------------------------------------


@pytest.mark.parametrize("call", ["mkfifo", "mkfifoat", "mknodat", "mknod-fifo", "xmknod"])
def test_fifo_is_made_in_the_model_never_on_the_host(
    call: str, sb: Sandbox, world: World, doors: Path
) -> None:
    sb.fs.create_dir("/tmp")
    outcome = attempt(sb, world, [str(doors), call, f"/tmp/{NAME}"])
    assert not os.path.lexists(f"/tmp/{NAME}")
    if outcome.result == "NOSYMBOL":
        pytest.skip("no __xmknod to call")
    assert outcome.result == "OK", outcome
    seen = sb.run(["stat", "-c", "%F %a", f"/tmp/{NAME}"], capture_output=True, text=True)
    assert seen.stdout.split() == ["fifo", "644"], seen
    assert not sb.violations, sb.violations


def test_mknod_of_a_device_is_refused(sb: Sandbox, world: World, doors: Path) -> None:
    sb.fs.create_dir("/tmp")
    outcome = attempt(sb, world, [str(doors), "mknod-chr", f"/tmp/{NAME}"])
    assert outcome.result == "EPERM" and outcome.violations, outcome


@pytest.mark.parametrize("call", ["mknod-reg", "mknod-zero", "xmknod-reg"])
def test_mknod_of_a_regular_file_is_made_in_the_model(
    call: str, sb: Sandbox, world: World, doors: Path
) -> None:
    sb.fs.create_dir("/tmp")
    outcome = attempt(sb, world, [str(doors), call, f"/tmp/{NAME}"])
    if outcome.result == "NOSYMBOL":
        pytest.skip("no __xmknod to call")
    assert outcome.result == "OK", outcome
    assert not os.path.lexists(f"/tmp/{NAME}")
    info = sb.fs.os.stat(f"/tmp/{NAME}")
    assert stat.S_ISREG(info.st_mode)
    assert stat.S_IMODE(info.st_mode) in (0o640 & ~0o022, 0o644 & ~0o022)
    again = attempt(sb, world, [str(doors), call, f"/tmp/{NAME}"])
    assert again.result == "EEXIST", again
    assert not sb.violations, sb.violations


def test_mkfifo_in_a_mount_is_erofs(sb: Sandbox, world: World, doors: Path) -> None:
    outcome = attempt(sb, world, [str(doors), "mkfifo", str(world.mount / "fifo")])
    assert outcome.result == "EROFS" and outcome.violations, outcome
    assert not (world.mount / "fifo").exists()


def test_a_model_fifo_carries_data_between_programs(sb: Sandbox, world: World) -> None:
    """mkfifo, a writer in the background and a reader: the FIFO is the model's, and a real FIFO
    the master owns carries the bytes; nothing appears on the real disk."""
    sb.fs.create_dir("/tmp")
    script = f"mkfifo /tmp/{NAME} && {{ echo hello > /tmp/{NAME} & }} && cat /tmp/{NAME}"
    outcome = attempt(sb, world, ["sh", "-c", script])
    assert outcome.stdout == "hello\n", outcome
    assert not os.path.lexists(f"/tmp/{NAME}")
    assert not sb.violations, sb.violations


def test_a_fifo_open_waiting_for_its_other_end_holds_up_no_one(sb: Sandbox) -> None:
    sb.fs.create_dir("/q")
    assert sb.run(["mkfifo", "/q/p"]).returncode == 0
    reader = sb.popen(["cat", "/q/p"], stdout=subprocess.PIPE, text=True)
    try:
        assert sb.run(["ls", "/q"], capture_output=True, text=True).stdout == "p\n"
        assert sb.run(["sh", "-c", "echo late > /q/p"]).returncode == 0
        out, _ = reader.communicate(timeout=30)
        assert out == "late\n"
    finally:
        reader.kill()
        reader.wait()
    waiting = sb.popen(["cat", "/q/p"])  # never gets a writer: closing the Sandbox ends it
    sb.close()
    waiting.kill()
    waiting.wait()


# -- 3. sockets that get a real address ------------------------------------------------------


def _outside_addresses() -> list[str]:
    """This machine's addresses other than loopback (where a wildcard listener answers too)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: it picks the outgoing address
        ip = probe.getsockname()[0]
    except OSError:
        return []
    finally:
        probe.close()
    return [] if ip.startswith("127.") else [ip]


def _wildcard_listeners(port: int) -> list[str]:
    """Lines of /proc/net/{tcp,tcp6,udp,udp6} for a socket bound to a wildcard on ``port``."""
    found = []
    for name in ("tcp", "tcp6", "udp", "udp6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local = line.split()[1]
            address, _, hex_port = local.partition(":")
            if int(hex_port, 16) == port and set(address) == {"0"}:
                found.append(f"{name}: {line.strip()}")
    return found


def _reachable(port: int, family: int = socket.AF_INET) -> list[str]:
    reached = []
    for ip in ["::1"] if family == socket.AF_INET6 else ["127.0.0.1", *_outside_addresses()]:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.settimeout(2)
            if probe.connect_ex((ip, port)) == 0:
                reached.append(ip)
    return reached


def _listening(sb: Sandbox, args: list[str]) -> tuple[list[str], str, list[str], list[str]]:
    """Run a program that makes a listener and waits; what it said, and who reached it."""
    proc = sb.popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdin is not None
        result = _result(proc.stdout.readline())
        reached: list[str] = []
        wildcard: list[str] = []
        if result[:1] == ["OK"]:
            port = int(result[1].rpartition(":")[2])
            reached = _reachable(port, socket.AF_INET6 if "listen6" in args else socket.AF_INET)
            wildcard = _wildcard_listeners(port)
        if result[:1] == ["OK"]:  # it waits for a line; otherwise it has ended
            proc.stdin.write("done\n")
            proc.stdin.flush()
    finally:
        _, err = proc.communicate(timeout=30)
    return result, err, reached, wildcard


@pytest.mark.parametrize("call", ["listen", "listen6", "bind-unspec"])
def test_listener_on_all_interfaces_is_refused(sb: Sandbox, doors: Path, call: str) -> None:
    result, err, reached, wildcard = _listening(sb, [str(doors), call, "x"])
    assert not wildcard, wildcard
    assert not reached, reached
    assert result[:1] != ["OK"], (result, err)
    assert sb.violations, sb.violations


@pytest.mark.parametrize("call", ["listen", "bind-unspec"])
def test_allowed_listener_is_bound_on_loopback_only(sb: Sandbox, doors: Path, call: str) -> None:
    sb.net.allow_bind(("0.0.0.0", 0))
    result, err, reached, wildcard = _listening(sb, [str(doors), call, "x"])
    assert result[:1] == ["OK"], (result, err)
    assert not wildcard, wildcard
    assert reached == ["127.0.0.1"]  # through the model's real loopback address only
    assert not sb.violations, sb.violations


def test_bind_unspec_to_a_specific_address_is_the_kernels_error(sb: Sandbox, doors: Path) -> None:
    result, err, _, wildcard = _listening(sb, [str(doors), "bind-unspec-loopback", "x"])
    assert result[:1] == ["EAFNOSUPPORT"], (result, err)
    assert not wildcard


def test_routed_udp_send_binds_no_wildcard_port(sb: Sandbox, doors: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        sb.net.route(("10.0.0.9", 53), to=server)
        result, err, _, wildcard = _listening(sb, [str(doors), "udp-sendto", "10.0.0.9", "53"])
        assert result[:1] == ["OK"], (result, err)
        assert result[1].startswith("127.0.0.1:"), result
        assert not wildcard, wildcard
        data, _ = server.recvfrom(16)
        assert data == b"x"
    assert not sb.violations, sb.violations


# -- 4. setuid and setgid programs inside a mount -----------------------------------------


@pytest.mark.parametrize("program", ["/usr/bin/passwd", "/usr/bin/mount", "/usr/bin/ssh-agent"])
def test_setuid_program_in_a_mount_is_refused(sb: Sandbox, world: World, program: str) -> None:
    if not os.path.exists(program) or not os.stat(program).st_mode & (stat.S_ISUID | stat.S_ISGID):
        pytest.skip(f"{program} is not setuid/setgid here")
    code = f"report(lambda: subprocess.run([{program!r}, '--help'], capture_output=True))"
    outcome = attempt(sb, world, [sys.executable, "-c", PYTHON_PRELUDE + code, world.argument()])
    assert outcome.result == "EPERM", outcome
    assert any(v.call == "exec" for v in sb.violations), sb.violations


@pytest.mark.parametrize("call", ["execveat", "execveat-fd"])
def test_setuid_program_run_with_execveat_is_refused(
    call: str, sb: Sandbox, world: World, doors: Path
) -> None:
    program = "/usr/bin/passwd"
    if not os.path.exists(program) or not os.stat(program).st_mode & stat.S_ISUID:
        pytest.skip(f"{program} is not setuid here")
    outcome = attempt(sb, world, [str(doors), call, program])
    assert outcome.result == "EPERM", outcome
    assert any(v.call == "exec" for v in sb.violations), sb.violations


def test_setuid_copy_in_a_test_mount_is_refused(sb: Sandbox, world: World, doors: Path) -> None:
    suid = world.mount / "suid"
    shutil.copy(doors, suid)
    suid.chmod(0o4755)
    code = "report(lambda: subprocess.run([M + '/suid', 'fchmod', M + '/mcanary']))"
    outcome = attempt(sb, world, [sys.executable, "-c", PYTHON_PRELUDE + code, world.argument()])
    assert outcome.result == "EPERM", outcome
    assert any(v.call == "exec" for v in sb.violations), sb.violations


# -- 5. a signal handler interrupting the shim's own real call ------------------------------


@pytest.mark.parametrize("how", ["signal-window", "signal-window-signal"])
def test_signal_handler_inside_a_real_call_is_served(
    how: str, sb: Sandbox, world: World, doors: Path
) -> None:
    """realpath of a mount path runs libc's realpath inside the shim (its real-call window);
    SIGALRM every 500 us opens the host's canary from the handler: always the model's ENOENT."""
    mounted = "/usr/lib/x86_64-linux-gnu" if os.path.isdir("/usr/lib/x86_64-linux-gnu") else "/usr"
    args = [str(doors), how, str(world.host / "canary"), mounted, "1500"]
    outcome = attempt(sb, world, args)  # (fails if the secret was printed)
    assert outcome.result == "NONE", outcome
    handled = int(outcome.stdout.split(" signals handled")[0].rsplit(" ", 1)[1])
    assert handled > 100, outcome  # the race was run


def test_program_sees_its_own_handler(sb: Sandbox, world: World) -> None:
    """The trampoline stays the shim's: the program reads back the handler it installed."""
    code = (
        "import signal\n"
        "def h(*a): pass\n"
        "signal.signal(signal.SIGUSR1, h)\n"
        "report(lambda: signal.getsignal(signal.SIGUSR1) is h)\n"
    )
    outcome = attempt(sb, world, [sys.executable, "-c", PYTHON_PRELUDE + code, world.argument()])
    assert outcome.stdout.strip().endswith("RESULT OK True"), outcome


# -- 6. check-then-use: a second thread rewrites the path or address after the check --------


def test_race_on_an_open_path_reads_no_secret(sb: Sandbox, world: World, doors: Path) -> None:
    args = [str(doors), "race-open", str(world.host / "canary"), "/proc/self/status"]
    outcome = attempt(sb, world, [*args, "20000"])  # (fails if the secret was printed)
    assert outcome.result == "NONE", outcome


def test_race_on_a_create_path_makes_no_real_file(sb: Sandbox, world: World, doors: Path) -> None:
    args = [str(doors), "race-create", "/dev/null", str(world.host / "created"), "3000"]
    outcome = attempt(sb, world, args)  # (fails if the host directory changed)
    assert outcome.result == "NONE", outcome


def test_race_on_a_connect_address_reaches_no_listener(
    sb: Sandbox, world: World, doors: Path
) -> None:
    port = str(world.tcp.getsockname()[1])
    outcome = attempt(sb, world, [str(doors), "race-connect", port, "3000"])
    assert outcome.result == "NONE", outcome  # (attempt fails if the listener accepted)


def test_race_on_a_descriptor_changes_no_mount_file(sb: Sandbox, world: World, doors: Path) -> None:
    """fchmod(N) while another thread dup2s a pipe and a mount file over N in turn."""
    target = world.mount / "mcanary"
    before = _attributes(target)
    outcome = attempt(sb, world, [str(doors), "race-fchmod", str(target), "3000"])
    assert outcome.result == "NONE", outcome
    assert _attributes(target) == before


def test_paths_longer_than_path_max_are_enametoolong(sb: Sandbox, world: World) -> None:
    code = "report(lambda: os.open('/' + 'a/' * 2100, os.O_RDONLY))"
    outcome = attempt(sb, world, [sys.executable, "-c", PYTHON_PRELUDE + code, world.argument()])
    assert outcome.result == "ENAMETOOLONG", outcome
