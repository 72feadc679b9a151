"""The hybrid backend: every program of a Sandbox under the seccomp supervisor, beside the shim.

With ``Sandbox(backend="hybrid")`` each program starts under ``libcfake-launch`` with the shim's
environment: the shim serves what reaches the dynamic libc (the fast path), and the kernel's
filter traps everything else (a static binary, a Go program, a raw ``syscall(2)``, a child
started without ``LD_PRELOAD``) to a supervisor thread per started tree, which hands each
trapped call to the same pipeline as the shim's (``Sandbox._answer``) through the adapter
(:mod:`libcfake._supervisor`). What the pipeline has no vocabulary for is decided here:

- signals, ``ptrace``, ``process_vm_*`` and ``pidfd_*`` aimed at a process of the Sandbox's
  trees go on in the kernel (``SECCOMP_USER_NOTIF_FLAG_CONTINUE``: their target is a register,
  nothing in memory decides); aimed anywhere else (the test process, a process group or ``-1``
  that holds others), they are refused with EPERM and a violation;
- ``unshare`` of a thread's own descriptor table or filesystem context goes on; of namespaces,
  refused (EPERM, a violation);
- io_uring is refused (EPERM, a violation): the kernel would perform the queued operations
  itself, where no model answers them;
- the launcher's exec of the test's command goes on, as Popen's own exec would under the
  preload backend (the command may live anywhere on the host); what it then executes is asked;
- the shim's own connection to its master (a connect to the master's socket) goes on in the
  kernel, so that the master sees the program as its peer, when it traps: the shim makes its
  real calls through the gate (shim/gate.h), which the filter lets through, but a program whose
  gate could not be mapped traps them like its own. That connect is the one call that goes on
  after the master read a path (a racing thread could redirect it: hostile code, outside the
  promise); the shim's packets are sends on a connected socket, which go on.

Where the kernel lacks what this needs (user notification, a second listener in one filter
chain: under another supervisor or another Sandbox's filter, EBUSY) a Sandbox falls back to the
preload backend with one :class:`LibcfakeBackendWarning`; :func:`unavailable` says why, found
once per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import errno
import functools
import os
import queue
import shutil
import socket
import struct
import subprocess
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from . import _seccomp
from ._seccomp import Listener, Notification
from ._supervisor import Supervisor, SupervisorError
from ._syscalls import DatagramSources
from .errors import ShimNotBuiltError
from .protocol import Note, ProcessInfo
from .snapshot import Snapshot

#: The backend a Sandbox uses unless told: the one constant to change.
DEFAULT_BACKEND = "hybrid"
BACKENDS = ("preload", "hybrid")


@dataclasses.dataclass(frozen=True)
class Refusal:
    """A call the hybrid backend refused by itself (its own rules, or a call the supervisor
    cannot serve): the program saw it fail. The Sandbox makes each a violation; a LibcService,
    a :class:`~libcfake.service.ServiceError`."""

    pid: int
    exe: str
    call: str
    arguments: tuple[Any, ...]
    answer: str
    reason: str


class LibcfakeBackendWarning(UserWarning):
    """The hybrid backend cannot run here: the Sandbox uses the preload backend."""


@functools.cache
def unavailable() -> str | None:
    """Why the hybrid backend cannot run in this process (None: it can). Found once, by a
    launcher that sets its filter up, hands the listener over and exits (``--probe``)."""
    try:
        _seccomp.launcher_path()
    except ShimNotBuiltError as error:
        return str(error)
    try:
        proc, listener = _seccomp.spawn(["--probe"], stderr=subprocess.PIPE)
    except OSError as error:
        return f"the kernel gives no seccomp listener here ({error})"
    except Exception as error:  # the probe itself failed: say so, never stop the Sandbox
        return f"probing the seccomp supervisor failed: {error!r}"
    listener.close()
    _, stderr = proc.communicate()
    if proc.returncode != 0:
        return f"libcfake-launch --probe failed: {stderr.decode(errors='replace').strip()}"
    if not listener.killable:
        return "the kernel lacks SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19)"
    return None


def choose(backend: str | None) -> str:
    """The backend a Sandbox asked for ``backend`` runs with (one warning when it falls back)."""
    backend = DEFAULT_BACKEND if backend is None else backend
    if backend not in BACKENDS:
        raise ValueError(f"backend is one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "hybrid":
        why = unavailable()
        if why is not None:
            warnings.warn(
                LibcfakeBackendWarning(
                    f"libcfake: the hybrid backend cannot run here ({why}); this Sandbox uses "
                    "the preload backend, which static binaries, raw system calls and children "
                    "without LD_PRELOAD get past (README, Limits)"
                ),
                stacklevel=3,
            )
            return "preload"
    return backend


#: Calls aimed at another process: which argument names it (a pid, or "fd": a pidfd).
_TARGETS: dict[str, tuple[int, str]] = {
    "kill": (0, "pid"), "tkill": (0, "tid"), "tgkill": (0, "pid"),
    "pidfd_send_signal": (0, "fd"), "pidfd_getfd": (0, "fd"), "pidfd_open": (0, "pid"),
    "ptrace": (1, "pid"), "process_vm_readv": (0, "pid"), "process_vm_writev": (0, "pid"),
}  # fmt: skip
_URING = frozenset({"io_uring_setup", "io_uring_enter", "io_uring_register"})
_PTRACE_TRACEME = 0
#: CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME
_NEW_NAMESPACES = (
    0x00020000
    | 0x02000000
    | 0x04000000
    | 0x08000000
    | 0x10000000
    | 0x20000000
    | 0x40000000
    | 0x00000080
)


class Hybrid:
    """Starts a Sandbox's programs under the launcher and serves each tree's trapped calls with
    ``answer`` (the Sandbox's pipeline). ``socket_path``: the shim's master, whose connections
    go on; ``violation``: records what was refused here; ``on_note``: hears of the calls the
    supervisors answered from the snapshot, as the master hears the shim's notes."""

    def __init__(
        self,
        answer: Callable[[Any], None],
        *,
        file_devices: Sequence[int],
        socket_path: str,
        refused: Callable[[Refusal], None],
        passthrough: Callable[[], Sequence[str]] = tuple,
        snapshot: Snapshot | None = None,
        datagram_sources: DatagramSources | None = None,
        on_note: Callable[[ProcessInfo, Iterable[Note]], object] | None = None,
    ) -> None:
        self._on_note = on_note  # calls each tree's fast path answered from the snapshot
        self._pipeline = threading.Lock()  # one call at a time through the pipeline
        self._passthrough = passthrough  # the mounts when a tree starts (see Supervisor)
        self._snapshot = snapshot
        self._datagram_sources = datagram_sources
        self.lock = threading.Lock()
        self._answer = answer
        self._file_devices = tuple(file_devices)
        self._socket_path = os.fsencode(socket_path)
        self._launcher = str(_seccomp.launcher_path())
        self._refusal = refused
        self._members: dict[int, int] = {}  # pid -> start time: the trees' processes seen
        self._seen: set[int] = set()  # thread ids that trapped (their process is a member)
        self._supervisors: list[Supervisor] = []
        # trees to serve, taken by threads kept from one program to the next (starting a thread
        # and building its supervisor in the test's thread cost each program's start ~0.8 ms)
        self._trees: queue.SimpleQueue[tuple[int, Listener] | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._idle = 0  # workers waiting for a tree
        self._closed = False

    # -- starting ----------------------------------------------------------------------------

    def popen(
        self, args: Any, env: Mapping[str, str], cwd: str, **kwargs: Any
    ) -> subprocess.Popen[Any]:
        args, kwargs = _direct(args, kwargs)
        _find_program(args, kwargs, env, cwd)
        proc, listener = _seccomp.spawn(args, env=dict(env), cwd=cwd, **kwargs)
        self._serve(proc.pid, listener)
        return proc

    def run(
        self, args: Any, env: Mapping[str, str], cwd: str, **kwargs: Any
    ) -> subprocess.CompletedProcess[Any]:
        """``subprocess.run`` over :meth:`popen`."""
        stdin_data = kwargs.pop("input", None)
        timeout = kwargs.pop("timeout", None)
        check = kwargs.pop("check", False)
        if kwargs.pop("capture_output", False):
            kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
        if stdin_data is not None:
            kwargs["stdin"] = subprocess.PIPE
        with self.popen(args, env, cwd, **kwargs) as proc:
            try:
                stdout, stderr = proc.communicate(stdin_data, timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
            except BaseException:
                proc.kill()
                raise
        done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        if check:
            done.check_returncode()
        return done

    async def create_subprocess_exec(
        self, args: Sequence[str], env: Mapping[str, str], cwd: str, **kwargs: Any
    ) -> asyncio.subprocess.Process:
        _find_program(args, kwargs, env, cwd)
        kind = socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC
        ours, theirs = socket.socketpair(socket.AF_UNIX, kind)
        with ours, theirs:
            environment = _seccomp.launch_environment(
                env, theirs.fileno(), kwargs.pop("executable", None)
            )
            pass_fds = (*kwargs.pop("pass_fds", ()), theirs.fileno())
            proc = await asyncio.create_subprocess_exec(
                *_seccomp.launch_arguments(args), env=environment, cwd=cwd, pass_fds=pass_fds,
                **kwargs,
            )  # fmt: skip
            theirs.close()
            loop = asyncio.get_running_loop()
            listener = await loop.run_in_executor(None, _seccomp.take_listener, ours, proc.pid)
        self._serve(proc.pid, listener)
        return proc

    def _serve(self, pid: int, listener: Listener) -> None:
        """Hand the tree of ``pid`` to an idle worker, or to a new one."""
        with self.lock:
            if self._closed:
                listener.close()  # its calls fail (ENOSYS), as when the master is gone
                return
            idle = self._idle > 0
            if idle:
                self._idle -= 1
            else:
                worker = threading.Thread(target=self._work, daemon=True,
                                          name="libcfake-supervisor")  # fmt: skip
                self._workers.append(worker)
        self._trees.put((pid, listener))
        if not idle:
            worker.start()

    def _work(self) -> None:
        """A worker: serves one tree after another until :meth:`close`."""
        while True:
            tree = self._trees.get()
            if tree is None:
                return
            pid, listener = tree
            threading.current_thread().name = f"libcfake-supervisor-{pid}"
            self._loop(pid, listener)
            with self.lock:
                self._idle += 1

    def _loop(self, pid: int, listener: Listener) -> None:
        """Serve one tree until every process of it is gone, or :meth:`close`."""
        with contextlib.suppress(OSError):
            self._members[pid] = _stat(pid)[1]
        try:
            supervisor = Supervisor(
                listener, self.serve_call, on_error=self._refused,
                file_devices=self._file_devices, chdir_continues=True,
                intercept=functools.partial(self._intercept, listener),
                passthrough=self._passthrough(), root=pid, snapshot=self._snapshot,
                datagram_sources=self._datagram_sources, on_note=self._on_note,
            )  # fmt: skip
        except Exception as error:  # a bug of ours: fail the test; the tree's calls fail
            listener.close()
            self._internal_error(error)
            return
        with self.lock:
            self._supervisors.append(supervisor)
        try:
            while not self._closed:
                try:
                    supervisor.serve()
                    return  # every process of the tree is gone, or close()
                except Exception as error:  # a bug of ours: fail the test, keep serving
                    self._internal_error(error)
        finally:
            supervisor.close()
            with self.lock:
                self._supervisors.remove(supervisor)

    def _internal_error(self, error: Exception) -> None:
        self._refusal(Refusal(0, "", "supervisor", (), "EIO",
                              f"libcfake internal error: {error!r}"))  # fmt: skip

    def close(self) -> None:
        """Stop serving: calls still trapped fail (ENOSYS), as when the master is gone."""
        with self.lock:
            self._closed = True
            supervisors, workers = list(self._supervisors), list(self._workers)
        for supervisor in supervisors:
            supervisor.stop()
        for _ in workers:
            self._trees.put(None)
        for worker in workers:
            worker.join(timeout=10)
        while not self._trees.empty():  # trees no worker took: their calls fail (ENOSYS)
            tree = self._trees.get()
            if tree is not None:
                tree[1].close()

    # -- the trees ----------------------------------------------------------------------------

    def contains(self, pid: int) -> bool:
        """Whether ``pid`` (a process or thread) is a process of one of the trees started here:
        one that trapped, a root, or a descendant of one."""
        tgid = _tgid(pid)
        if tgid is None:
            return False
        chain: list[int] = []
        current = tgid
        for _ in range(64):
            try:
                parent, start = _stat(current)
            except OSError:
                return False
            if self._members.get(current) == start:
                for member in chain:
                    with contextlib.suppress(OSError):
                        self._members[member] = _stat(member)[1]
                return True
            if parent <= 1 or current == os.getpid():
                return False
            chain.append(current)
            current = parent
        return False

    def _note_member(self, tid: int) -> None:
        if tid in self._seen:
            return
        self._seen.add(tid)
        tgid = _tgid(tid)
        if tgid is not None:
            with contextlib.suppress(OSError):
                self._members[tgid] = _stat(tgid)[1]

    # -- serving ------------------------------------------------------------------------------

    def serve_call(self, served: Any) -> None:
        """The pipeline, one call at a time: a trapped call, or (from the master's thread) one
        the shim sent."""
        with self._pipeline:
            self._answer(served)

    def _refused(self, error: SupervisorError) -> None:
        self._refusal(Refusal(error.pid, _exe(error.pid), error.syscall, (), "refused",
                              error.message))  # fmt: skip

    def _intercept(self, listener: Listener, note: Notification) -> bool:
        """The calls decided here (see the module's text); False: the adapter's."""
        self._note_member(note.pid)
        name = note.name
        if name == "execve" and _exe(note.pid) == self._launcher:
            return self._go_on(listener, note)  # the test's own command, as Popen would run it
        if name == "connect":
            return self._master_connect(listener, note)
        if name in _URING:
            why = (f"{name}: io_uring is refused, as the kernel would perform the queued "
                   "operations itself, where no model answers them")  # fmt: skip
            return self._refuse(listener, note, errno.EPERM, why)
        if name in _TARGETS:
            return self._aimed(listener, note, *_TARGETS[name])
        if name == "unshare":  # a thread's own descriptor table or fs context: its own business
            if note.args[0] & _NEW_NAMESPACES:
                why = "unshare of namespaces: the host's mounts, network and ids are not modelled"
                return self._refuse(listener, note, errno.EPERM, why)
            return self._go_on(listener, note)
        return False

    def _refuse(self, listener: Listener, note: Notification, code: int, reason: str) -> bool:
        if listener.is_valid(note.id):
            self._refusal(Refusal(note.pid, _exe(note.pid), note.name, note.args[:3],
                                  f"-1 {errno.errorcode.get(code, code)}", reason))  # fmt: skip
            listener.reply(note.id, error=code)
        return True

    @staticmethod
    def _go_on(listener: Listener, note: Notification) -> bool:
        listener.reply_continue(note.id)
        return True

    def _master_connect(self, listener: Listener, note: Notification) -> bool:
        """The shim's connection to its master goes on in the kernel (see the module's text)."""
        length = note.args[2] & 0xFFFFFFFF
        if not 2 < length <= 110:
            return False
        try:
            sockaddr = _seccomp.read_memory(note.pid, note.args[1], length)
        except OSError:
            return False
        family = struct.unpack_from("=H", sockaddr)[0] if len(sockaddr) >= 2 else -1
        if family != socket.AF_UNIX or sockaddr[2:].split(b"\0", 1)[0] != self._socket_path:
            return False
        return self._go_on(listener, note)

    def _aimed(self, listener: Listener, note: Notification, index: int, kind: str) -> bool:
        """A signal, ptrace, process_vm_* or pidfd_* call: on in the kernel when aimed at the
        trees (nothing in memory names the target), refused otherwise."""
        value = note.args[index]
        name = note.name
        if name == "ptrace" and note.args[0] == _PTRACE_TRACEME:
            targets = [_parent(note.pid)]
        elif kind == "fd":
            targets = [_pidfd_target(note.pid, ctypes.c_int(value & 0xFFFFFFFF).value)]
        else:
            number = ctypes.c_int(value & 0xFFFFFFFF).value
            if name == "kill" and number <= 0:
                group = _pgid(note.pid) if number == 0 else -number
                targets = [None] if number == -1 or group is None else _group(group)
            else:
                targets = [number]
        outside = [t for t in targets if t is None or t <= 0 or not self.contains(t)]
        if not outside:
            return self._go_on(listener, note)
        if name == "kill" and ctypes.c_int(value & 0xFFFFFFFF).value == -1:
            what = "every process the caller may signal (-1)"
        else:
            what = ", ".join("an unknown process" if t is None else f"pid {t}" for t in outside)
        why = f"{name} aimed at {what}, outside the sandbox's processes (the test's, or another's)"
        return self._refuse(listener, note, errno.EPERM, why)


def _find_program(
    args: Sequence[str], kwargs: dict[str, Any], env: Mapping[str, str], cwd: str
) -> None:
    """The file the launcher is to execute (``executable=``), found as Popen finds it, or what
    Popen raises when its exec would fail (FileNotFoundError, PermissionError), raised here in
    the test's process: the launcher, which makes that exec under the hybrid backend, can only
    exit 127 and say why on stderr. (A file the kernel cannot run, ENOEXEC, still fails there.)
    The PATH search is made here too: the launcher's own (execvp) would trap once per directory
    tried."""
    program = os.fsdecode(kwargs.get("executable") or (args[0] if args else ""))
    if "executable" not in kwargs and program and "/" not in program:
        found = shutil.which(program, path=os.pathsep.join(os.get_exec_path(env)))
        if found is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
        kwargs["executable"] = program = found
    path = os.path.join(cwd, program)
    if not program or not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)


def _direct(args: Any, kwargs: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Popen's arguments as a command line for the launcher (``shell=True`` made explicit)."""
    if kwargs.pop("shell", False):
        command = args if isinstance(args, (str, bytes)) else " ".join(map(os.fsdecode, args))
        shell = kwargs.pop("executable", None) or "/bin/sh"
        return [os.fsdecode(shell), "-c", os.fsdecode(command)], kwargs
    if isinstance(args, (str, bytes, os.PathLike)):
        return [os.fsdecode(args)], kwargs
    return [os.fsdecode(arg) for arg in args], kwargs


def _stat_fields(pid: int) -> list[bytes]:
    """The fields of /proc/<pid>/stat after the name: state, ppid, pgrp, ... (OSError: gone)."""
    fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    try:
        text = os.read(fd, 4096)
    finally:
        os.close(fd)
    return text[text.rindex(b")") + 2 :].split()  # the name in parentheses may hold anything


def _stat(pid: int) -> tuple[int, int]:
    """(parent pid, start time) of a process; OSError if it is gone."""
    fields = _stat_fields(pid)
    try:
        return int(fields[1]), int(fields[19])
    except (IndexError, ValueError):
        raise OSError(errno.ESRCH, f"/proc/{pid}/stat unreadable") from None


def _tgid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as file:
            for line in file:
                if line.startswith(b"Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _parent(pid: int) -> int | None:
    try:
        return _stat(_tgid(pid) or pid)[0]
    except OSError:
        return None


def _pgid(pid: int) -> int | None:
    try:
        return int(_stat_fields(pid)[2])
    except (OSError, ValueError, IndexError):
        return None


def _group(pgid: int) -> list[int | None]:
    """The processes of a process group (an empty group: [None], refused as ESRCH would be)."""
    members: list[int | None] = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(_stat_fields(int(entry))[2]) == pgid:
                    members.append(int(entry))
    return members or [None]


def _pidfd_target(pid: int, number: int) -> int | None:
    """The process a program's pidfd names (its fdinfo's Pid line), None if it is no pidfd."""
    if number < 0:
        return None
    try:
        with open(f"/proc/{pid}/fdinfo/{number}", "rb") as file:
            for line in file:
                if line.startswith(b"Pid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""
