"""Robustness: real programs that stress the shim the way real programs do — many threads, process
trees, scrubbed environments, closed descriptors, signals mid-call, long runs — are served
correctly, and neither side leaks.

Every program here is a real program under the real shim (tests/programs/robust_*.c, coreutils,
sh, Python), answered by a LibcService handler that computes each answer from the call's path, so
every answer the program gets can be checked by the program itself.

Forwarded calls behave like uninterruptible disk I/O: a signal that arrives while a call waits for
the master runs its handler (which may itself make forwarded calls, on a connection of its own),
and the call then goes on waiting; it never fails with EINTR, with or without SA_RESTART.
"""

from __future__ import annotations

import errno
import itertools
import os
import shlex
import shutil
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from libcfake import LibcService, ProcessInfo, StatResult

from .conftest import run_served

Compile = Callable[[str], Path]

#: errno of open("/r/<thread>/<call>") in robust_threads.c, indexed by (thread + call) % 5.
OPEN_ERRNOS = (errno.ENOENT, errno.EACCES, errno.EISDIR, errno.ENOTDIR, errno.ELOOP)
SEVEN = StatResult(type="regular", mode=0o644, size=7)


@dataclass(frozen=True)
class Seen:
    """One call as the master saw it: who made it (``pid``, ``ppid``, ``tid``, ``level`` of the
    connection) and what it asked."""

    process: ProcessInfo
    function: str
    symbol: str
    path: str
    mode: int

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def ppid(self) -> int:
        return self.process.ppid

    @property
    def tid(self) -> int:
        return self.process.tid

    @property
    def level(self) -> int:
        return self.process.level


class World:
    """Answers every call under /r/ from its path alone, records every call, passes the rest.

    ``/r/<t>/<i>``    stat: size t * 100000 + i; access: 0 if t + i is even, else EACCES;
                      open: -1 with OPEN_ERRNOS[(t + i) % 5]        (robust_threads.c)
    ``/r/sig/slow``   stat, answered after ``delay`` seconds with size 4242
    ``/r/sig/nested`` open: ELOOP
    ``/r/leaf``, ``/r/leak/*`` open: a file holding "served" / "leaked"
    any other ``/r/`` path: stat size 7, access 0
    """

    def __init__(self, delay: float = 0.3) -> None:
        self.delay = delay
        self.seen: list[Seen] = []
        self._files: dict[bytes, int] = {}

    def file(self, contents: bytes) -> int:
        """A memfd holding ``contents``, made once; yours to send, not to close."""
        if contents not in self._files:
            fd = os.memfd_create("robust")
            os.write(fd, contents)
            self._files[contents] = fd
        return self._files[contents]

    def open_file(self, svc: LibcService, contents: bytes) -> None:
        """Answers an open with a fresh open file description of the file: its own offset."""
        fresh = os.open(f"/proc/self/fd/{self.file(contents)}", os.O_RDONLY)
        try:
            svc.send_with_fds(0, [fresh])
        finally:
            os.close(fresh)

    def close(self) -> None:
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()

    def __call__(self, svc: LibcService) -> None:
        raw = svc.call.raw
        path = (raw.string1 or b"").decode(errors="replace")
        self.seen.append(Seen(svc.process, svc.function_, raw.symbol, path, raw.mode))
        if not path.startswith("/r/") or svc.function_ == "exec":
            svc.use_slave_credentials()
            return
        function, parts = svc.function_, path.split("/")[2:]
        if len(parts) == 2 and all(part.isdigit() for part in parts):
            self._numbered(svc, int(parts[0]), int(parts[1]))
        elif path == "/r/sig/slow":
            time.sleep(self.delay)
            svc.send(StatResult(type="regular", mode=0o644, size=4242))
        elif path == "/r/sig/nested":
            svc.send(-1, errno.ELOOP)
        elif function in ("open", "openat"):
            self.open_file(svc, b"leaked" if "leak" in parts else b"served")
        elif function == "stat":
            svc.send(SEVEN)
        else:
            svc.send(0)

    @staticmethod
    def _numbered(svc: LibcService, thread: int, call: int) -> None:
        if svc.function_ == "stat":
            svc.send(StatResult(type="regular", mode=0o644, size=thread * 100000 + call))
        elif svc.function_ == "access":
            svc.send(0) if (thread + call) % 2 == 0 else svc.send(-1, errno.EACCES)
        else:
            svc.send(-1, OPEN_ERRNOS[(thread + call) % 5])

    def paths(self, function: str, prefix: str = "/r/") -> list[Seen]:
        return [s for s in self.seen if s.function == function and s.path.startswith(prefix)]


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- 1. threads --------------------------------------------------------------------------------

# 32 threads x 10,000 calls: the 320,000 round trips take 9-14 s on a 2-core machine (13 s under
# the ASan build), well within budget, so the full load stays.
THREADS, CALLS = 32, 10_000


def test_32_threads_making_10000_calls_each_get_every_answer_right(
    service: LibcService, compile_c: Compile
) -> None:
    tids: Counter[int] = Counter()
    sizes: dict[int, StatResult] = {}  # a lean handler: run_served's recording doubles the time

    def answer(svc: LibcService) -> None:
        raw = svc.call.raw
        path = raw.string1 or b""
        if not path.startswith(b"/r/"):
            svc.use_slave_credentials()
            return
        tids[svc.process.tid] += 1
        _, _, thread, call = path.split(b"/")
        t, i = int(thread), int(call)
        if raw.function == "stat":
            size = t * 100000 + i
            if size not in sizes:
                sizes[size] = StatResult(type="regular", mode=0o644, size=size)
            svc.send(sizes[size])
        elif raw.function == "access":
            svc.send(0) if (t + i) % 2 == 0 else svc.send(-1, errno.EACCES)
        else:
            svc.send(-1, OPEN_ERRNOS[(t + i) % 5])

    exe = compile_c("robust_threads")
    proc = service.spawn([str(exe), str(THREADS), str(CALLS)], stdout=subprocess.PIPE)
    assert service.serve(answer, until=proc, timeout=120) == 0
    assert proc.communicate()[0] == b"wrong 0\n"
    assert sum(tids.values()) == THREADS * CALLS
    assert len(tids) == THREADS  # one connection per thread


# -- 2. process trees ---------------------------------------------------------------------------

TREES = {
    "fork-threads": ["thread", "child", "parent"],
    "vfork-exec": ["parent", "leaf"],
    "spawn": ["parent", "leaf"],
    "daemon": ["parent", "daemon"],
}


@pytest.mark.parametrize("mode", sorted(TREES))
def test_every_process_of_a_tree_is_served(
    service: LibcService, compile_c: Compile, world: World, mode: str
) -> None:
    exe = compile_c("robust_tree")
    ran = run_served(service, [str(exe), mode], world)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    by_role: dict[str, set[int]] = {}
    for s in world.paths("stat", "/r/tree/"):
        by_role.setdefault(s.path.rsplit("/", 1)[1], set()).add(s.pid)
    assert sorted(by_role) == sorted(TREES[mode])
    # the program we started, seen with us as its parent (a daemon is too: the test process
    # adopts the orphans of the programs it serves)
    top = {s.pid for s in world.seen if s.ppid == os.getpid()} - by_role.get("daemon", set())
    assert len(top) == 1
    (root,) = top
    assert by_role.get("thread", {root}) == by_role["parent"] == {root}
    for role in set(by_role) - {"parent", "thread"}:
        assert root not in by_role[role]  # children, leaves and daemons are processes of their own
    for role in ("child", "leaf"):
        for s in world.paths("stat", f"/r/tree/{role}"):
            assert s.ppid == root
    if mode == "daemon":
        (daemon,) = world.paths("stat", "/r/tree/daemon")
        assert daemon.ppid != root  # reparented after its parent exited


def test_a_chain_of_five_shells_is_served_at_every_level(
    service: LibcService, world: World
) -> None:
    script = "true"
    for level in range(5, 0, -1):  # "; true" keeps each shell from exec'ing its last command
        script = f"test -e /r/sh/{level} && sh -c {shlex.quote(script)}; true"
    ran = run_served(service, ["sh", "-c", script], world)
    assert ran.returncode == 0, ran.stderr
    levels = {s.path: s for s in world.seen if s.path.startswith("/r/sh/")}
    assert sorted(levels) == [f"/r/sh/{level}" for level in range(1, 6)]
    chain = [levels[f"/r/sh/{level}"] for level in range(1, 6)]
    assert len({s.pid for s in chain}) == 5
    for parent, child in itertools.pairwise(chain):
        assert child.ppid == parent.pid  # the master saw who started whom


# -- 3. scrubbed environments --------------------------------------------------------------------

SCRUBBERS = [
    "execve-empty",
    "execle-fresh",
    "execve-wrong",
    "execvpe-fresh",
    "execlp",
    "fexecve-empty",
    "spawn-empty",
    "spawnp-fresh",
]
#: the modes whose leaf gets KEEP=1 from the program: other variables pass untouched
KEEPS = {"execle-fresh", "execve-wrong", "execvpe-fresh", "execlp", "spawnp-fresh"}


@pytest.mark.parametrize("mode", SCRUBBERS)
def test_a_program_run_with_a_scrubbed_environment_is_still_served(
    service: LibcService, compile_c: Compile, world: World, mode: str
) -> None:
    exe = compile_c("robust_exec")
    ran = run_served(service, [str(exe), mode], world)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "leaf read served" in ran.stdout  # the new image's open reached our master
    assert len(world.paths("open", "/r/leaf")) == 1
    env = dict(
        line[4:].split("=", 1) for line in ran.stdout.splitlines() if line.startswith("env ")
    )
    assert env["LIBCFAKE_SOCKET"] == service.socket_path
    assert env["LD_PRELOAD"].split()[-1] == service.environment()["LD_PRELOAD"].split()[-1]
    expected = {"LD_PRELOAD", "LIBCFAKE_SOCKET"} | ({"KEEP", "PATH"} & set(env))
    assert set(env) == expected
    if mode in KEEPS:
        assert env["KEEP"] == "1"
    (journaled,) = [s for s in world.seen if s.function == "exec"]
    assert journaled.path == str(exe)  # by its absolute path, whatever the program named it by
    assert stat.S_ISREG(journaled.mode)


LARGE_ENVIRONMENT = """
import os, sys
os.execve(sys.argv[1], [sys.argv[1], "leaf"], {f"V{i}": "x" for i in range(1000)})
"""


def test_a_large_scrubbed_environment_is_repaired_too(
    service: LibcService, compile_c: Compile, world: World
) -> None:
    """1000 variables: too many for the shim's stack copy, so the repaired copy is an mmap. (Small
    ones: the leaf prints them all, and the pipe is only read once the program exits.)"""
    exe = compile_c("robust_exec")
    ran = run_served(service, [sys.executable, "-c", LARGE_ENVIRONMENT, str(exe)], world)
    assert ran.returncode == 0, ran.stderr
    assert "leaf read served" in ran.stdout
    names = [line[4:].split("=", 1)[0] for line in ran.stdout.splitlines() if line[:4] == "env "]
    assert sorted(names) == sorted(
        [f"V{i}" for i in range(1000)] + ["LD_PRELOAD", "LIBCFAKE_SOCKET"]
    )


def test_env_minus_i_cannot_take_a_program_out_of_the_shim(
    service: LibcService, world: World
) -> None:
    ran = run_served(service, ["env", "-i", "cat", "/r/leaf"], world)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "served"
    (cat,) = world.paths("open", "/r/leaf")
    execs = [s for s in world.seen if s.function == "exec"]
    assert [s.path for s in execs] == [shutil.which("cat", path="/bin:/usr/bin")]
    assert cat.pid == execs[0].pid  # env exec'd cat in place, and cat was served


#: mode -> (the path the master is told, what the program prints); "{exe}" is the program
NAMED = {
    "execv-relative": ("{exe}", "leaf read served"),  # "./NAME" from the program's directory
    "execvp-missing": ("robust-no-such-program", f"errno {errno.ENOENT}"),  # not found: as given
}


@pytest.mark.parametrize("mode", sorted(NAMED))
def test_the_master_is_told_the_absolute_path_of_the_program_about_to_run(
    service: LibcService, compile_c: Compile, world: World, mode: str
) -> None:
    exe = compile_c("robust_exec")
    ran = run_served(service, [str(exe), mode], world, cwd=exe.parent)
    path, output = NAMED[mode]
    assert output in ran.stdout, ran.stderr
    (journaled,) = [s for s in world.seen if s.function == "exec"]
    assert journaled.path == path.format(exe=exe)


def test_an_exec_the_master_refuses_fails_with_its_errno(
    service: LibcService, compile_c: Compile, world: World
) -> None:
    exe = compile_c("robust_exec")

    def refuse(svc: LibcService) -> None:
        if svc.function_ == "exec" and svc.call.raw.symbol == "execv":
            svc.send(-1, errno.EPERM)
        else:
            world(svc)

    ran = run_served(service, [str(exe), "exec-refused"], refuse)
    assert ran.stdout == f"errno {errno.EPERM}\n", ran.stderr


def test_an_exec_without_a_master_fails_closed_with_eio(compile_c: Compile, tmp_path: Path) -> None:
    exe = compile_c("robust_exec")
    with LibcService() as svc:
        env = svc.environment()
    env["LIBCFAKE_SOCKET"] = str(tmp_path / "nobody.sock")
    ran = subprocess.run([str(exe), "exec-refused"], env=env, capture_output=True, text=True,
                         timeout=20)  # fmt: skip
    assert ran.stdout == f"errno {errno.EIO}\n"
    assert "libcfake: execv(" in ran.stderr


def test_the_master_sees_the_setuid_bit_of_a_program_about_to_run(
    service: LibcService, compile_c: Compile, world: World, tmp_path: Path
) -> None:
    """The loader ignores LD_PRELOAD in a process that gains privileges (AT_SECURE), so a setuid
    program runs outside the shim; what the master can do is see it coming: the exec call's mode
    carries the file's S_ISUID, and the master refuses the exec or reports a violation."""
    setuid = tmp_path / "robust_exec_setuid"
    shutil.copy(compile_c("robust_exec"), setuid)
    setuid.chmod(0o4755)
    ran = run_served(service, [str(setuid), "exec-refused"], world)
    assert ran.returncode == 0, ran.stderr
    (execv,) = [s for s in world.seen if s.function == "exec"]
    assert execv.path == str(setuid) and execv.symbol == "execv"
    assert execv.mode & stat.S_ISUID
    assert stat.S_IMODE(execv.mode) == 0o4755


# -- 4. programs that close every descriptor -----------------------------------------------------


@pytest.mark.parametrize("mode", ["close_range", "closefrom", "close-loop", "dup2-over"])
def test_the_shim_reconnects_after_the_program_closes_its_socket(
    service: LibcService, compile_c: Compile, world: World, mode: str
) -> None:
    ran = run_served(service, [str(compile_c("robust_fds")), mode], world)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == "before OK after OK\n", ran.stderr
    before, after = world.paths("stat", "/r/fds/before"), world.paths("stat", "/r/fds/after")
    assert len(before) == len(after) == 1 and before[0].pid == after[0].pid


CLOSE_FDS = """
import os, subprocess, sys
print(os.stat("/r/py/before").st_size)
subprocess.run(["cat", "/r/leaf"], close_fds=True, check=True)
print()
print(os.stat("/r/py/after").st_size)
"""


def test_a_python_subprocess_with_close_fds_is_served_and_so_is_its_parent(
    service: LibcService, world: World
) -> None:
    ran = run_served(service, [sys.executable, "-c", CLOSE_FDS], world)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["7", "served", "7"]
    (cat,) = world.paths("open", "/r/leaf")
    (python,) = {s.pid for s in world.paths("stat", "/r/py/")}
    assert cat.pid != python and cat.ppid == python


# -- 5. signals ----------------------------------------------------------------------------------

SIGNALS = {
    "restart": "stat OK signals 1\n",
    "norestart": "stat OK signals 1\n",
    "storm": "stat OK signals 2\n",  # 2: more than one
    "nested": "stat OK signals 1\nnested ELOOP\n",
}


@pytest.mark.parametrize("mode", sorted(SIGNALS))
def test_a_signal_during_a_forwarded_call_does_not_interrupt_it(
    service: LibcService, compile_c: Compile, world: World, mode: str
) -> None:
    ran = run_served(service, [str(compile_c("robust_signals")), mode], world)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == SIGNALS[mode], ran.stderr
    (slow,) = world.paths("stat", "/r/sig/slow")
    assert slow.level == 0
    if mode == "nested":  # asked on the handler's own connection, while the slow call waited
        (nested,) = world.paths("open", "/r/sig/nested")
        assert nested.level == 1 and nested.tid == slow.tid


# -- 6. no leaks ---------------------------------------------------------------------------------

LEAKS = {"calls": 10_000, "threads": 50, "spawn": 50}


@pytest.mark.parametrize("mode", sorted(LEAKS))
def test_forwarded_calls_leak_no_descriptors_on_either_side(
    service: LibcService, compile_c: Compile, world: World, mode: str
) -> None:
    world.file(b"leaked")  # the master's own file, made before counting
    master_before = open_fds()
    ran = run_served(service, [str(compile_c("robust_leaks")), mode, str(LEAKS[mode])], world)
    assert ran.returncode == 0, ran.stderr
    fds, before, after, _, wrong = ran.stdout.split()
    assert (fds, wrong) == ("fds", "0"), ran.stdout + ran.stderr
    assert before == after
    with pytest.raises(TimeoutError):  # lets the master read the end of every connection
        service.receive(timeout=0.2)
    assert open_fds() == master_before


def test_vfork_and_exec_leak_no_descriptors_in_the_parent(
    service: LibcService, compile_c: Compile, world: World
) -> None:
    """Each vfork + execve costs the parent one descriptor (and the master one connection) until
    conn_get stops writing to conns[] in a process that shares its parent's memory."""
    ran = run_served(service, [str(compile_c("robust_leaks")), "vfork", "20"], world)
    assert ran.returncode == 0, ran.stderr
    fds, before, after, _, wrong = ran.stdout.split()
    assert (fds, wrong, before) == ("fds", "0", after)
