"""The seccomp supervisor's adapter: trapped system calls as the shim's requests.

A program started with :func:`libcfake._seccomp.spawn` (a static binary, a Go program, anything
the preload shim cannot reach) traps its path, socket and process calls to the master. The
:class:`Supervisor` turns each trapped call into the same :class:`~libcfake.calls.Call` the shim
sends (the same ``function`` names, fields and descriptor bits, ``symbol`` being the system
call's name) and hands the handler a :class:`TrappedCall`, which has the surface a handler uses
of a :class:`~libcfake.service.LibcService` while it serves one call::

    proc, listener = _seccomp.spawn(["./static-tool"])
    with Supervisor(listener, handler, on_error=errors.append) as supervisor:
        supervisor.serve(until=proc)

    def handler(trapped):
        if trapped.function_ == "open" and trapped.arguments()[0] == PurePosixPath("/etc/x"):
            trapped.send_with_fds(0, [memfd])     # the program's open returns a copy
        else:
            trapped.use_slave_credentials()       # the master performs it, as the program

Answers become the kernel's: a value or an errno; a stat table written into the program's
``struct stat`` or ``struct statx``; readlink's text into its buffer; an open's descriptor put in
the program (``SECCOMP_IOCTL_NOTIF_ADDFD``); a connect's or bind's replacement socket put at the
program's socket's number.

Passthrough (:meth:`TrappedCall.use_slave_credentials`) never lets a call that names a path or an
address go on in the kernel: a thread of the program could rewrite that memory between the
master's reading and the kernel's. The master performs the call itself, on what it read, in a
worker thread that takes the caller's filesystem ids, groups and umask (``setfsuid``,
``setfsgid``, ``setgroups`` and ``umask`` through raw system calls, which Linux applies to the
calling thread only; the worker unshares its filesystem context for the umask), and gives the
program the outcome: a descriptor, a stat buffer, the link text, or the call's result on the
program's own socket (``pidfd_getfd`` gives the same open file description).

The one exception is exec (``execve``, ``execveat``): only the kernel can replace the program's
image, so an allowed exec goes on (``SECCOMP_USER_NOTIF_FLAG_CONTINUE``). That is a race: a
second thread of the program may change the path between the master's check and the kernel's
read of it, and execute another file than the one allowed. The new image stays under the
filter, so what it does is still trapped; only the choice of the file is not enforced. An exec
of a descriptor (``execveat(fd, "", AT_EMPTY_PATH)``, or its ``/proc/self/fd/N``) goes on
without asking when the file is one of the handler's memfds (the shim runs a program of the
model so, after the handler answered its exec with it); any other descriptor's file is asked
about as an exec of the path /proc gives it, as the shim's fexecve asks.

Calls on a descriptor (fstat, which static glibc makes as ``newfstatat(fd, "", AT_EMPTY_PATH)``,
fchmod, fchown, futimens and the empty-path forms of their ``*at`` calls) reach the handler, as
"fstat", "fchmod", "fchown" or "futimens" with the file in FD_FILE, only for a file on one of the
``file_devices`` (the handler's memfds and shadow directories, as LibcService's ``file_devices``);
on the program's own files the master performs them on its copy of the descriptor.

Every notification is checked with ``is_valid`` after its memory was read and before it is
acted on; a call whose thread vanished is dropped quietly. A call the adapter cannot decode is
refused (ENOSYS) and reported to ``on_error``.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno as _errno
import functools
import itertools
import os
import queue
import re
import resource
import select
import socket
import stat as stat_module
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import _seccomp, protocol
from ._seccomp import FastPath, Listener, Notification
from ._wire import ffi
from .calls import Call
from .protocol import FD_DIR1, FD_DIR2, FD_FILE, FD_SOCKET, PackedStat, ProcessInfo, RawCall
from .snapshot import Snapshot
from .stat import StatResult

__all__ = ["Deferred", "Supervisor", "SupervisorError", "TrappedCall"]

_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_AT_REMOVEDIR = 0x200
_AT_SYMLINK_FOLLOW = 0x400
_AT_EMPTY_PATH = 0x1000
_AT_EACCESS = 0x200
_UTIME_NOW = (1 << 30) - 1
_STATX_BASIC_STATS = 0x7FF
_O_TMPFILE = os.O_TMPFILE
_O_PATH = os.O_PATH

# x86_64 struct stat, struct statx, struct open_how, struct timespec/timeval pairs
_KSTAT = struct.Struct("=QQQIIIiQqqqqqqqqq24x")
_STATX_SIZE = 256
_STATX_HEAD = struct.Struct("=IIQIIIHxxQQQQ")  # up to stx_attributes_mask
_STATX_TIME = struct.Struct("=qIi")
_STATX_DEVS = struct.Struct("=IIII")
_OPEN_HOW = struct.Struct("=QQQ")
_TIMESPECS = struct.Struct("=qqqq")
_STATFS_SIZE = 120  # x86_64 struct statfs
_MSGHDR = struct.Struct("=QI4xQQQQi4x")  # name, namelen, iov, iovlen, control, controllen, flags
_IOVEC = struct.Struct("=QQ")
_CMSG_HEAD = struct.Struct("=Qii")  # len, level, type
_MAX_DATAGRAM = 1 << 20  # what the master copies of a datagram a program sends
_MSG_FASTOPEN = 0x20000000
_MMSGHDR_SIZE = 64  # struct mmsghdr: a msghdr, msg_len, padding
#: a program's own descriptor by name, once _own_proc spelled /proc/self by number
_OWN_DESCRIPTOR = re.compile(rb"/(?:dev|proc/(?P<pid>\d+)(?:/task/\d+)?)/fd/(?P<fd>\d+)")


class _Continue:
    """What :meth:`_Decoder.decode` returns for a call that goes on in the kernel as made:
    nothing in the program's memory decides its outcome."""


CONTINUE = _Continue()

#: For a datagram socket (by inode), the addresses the programs named in their sends to it,
#: by the real address each was sent to: ``{(real ip, port): (virtual ip, port)}``, or None.
DatagramSources = Callable[[int], Mapping[tuple[str, int], tuple[str, int]] | None]
assert _KSTAT.size == 144 and _STATX_HEAD.size == 64

_SYS = _seccomp.SYSCALLS
_NR_SETGROUPS, _NR_SETFSUID, _NR_SETFSGID, _NR_UMASK, _NR_UNSHARE = 116, 122, 123, 95, 272
_CLONE_FS = 0x200

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _syscall(number: int, *args: Any) -> int:
    """A raw system call; OSError on failure. Integers travel as longs (never truncated)."""
    converted = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    result = int(_libc.syscall(ctypes.c_long(number), *converted))
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


@dataclasses.dataclass(frozen=True)
class SupervisorError:
    """A trapped call the supervisor refused by itself (one it cannot decode, or a handler that
    failed), or trouble of its own; the program saw its call fail and the supervisor went on."""

    syscall: str
    pid: int
    message: str

    def __str__(self) -> str:
        return f"{self.syscall}: pid {self.pid}: {self.message}"


class _Refusal(Exception):
    """Decoding stops: the call fails with ``code``; ``report`` says whether on_error hears."""

    def __init__(self, code: int, reason: str = "", report: bool = False) -> None:
        super().__init__(reason or os.strerror(code))
        self.code = code
        self.report = report


@dataclasses.dataclass(frozen=True)
class _Credentials:
    """Who the caller is for the kernel's permission checks."""

    uid: int
    gid: int
    euid: int
    egid: int
    fsuid: int
    fsgid: int
    groups: tuple[int, ...]
    umask: int


def _status(tid: int) -> tuple[ProcessInfo, _Credentials]:
    fd = os.open(f"/proc/{tid}/status", os.O_RDONLY | os.O_CLOEXEC)
    try:
        text = os.read(fd, 16384)
    finally:
        os.close(fd)
    fields: dict[bytes, bytes] = {}
    for line in text.split(b"\n"):
        key, _, value = line.partition(b":")
        if key in _STATUS_KEYS:
            fields[key] = value.strip()
    uids = [int(v) for v in fields[b"Uid"].split()]
    gids = [int(v) for v in fields[b"Gid"].split()]
    pid = int(fields[b"Tgid"])
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = ""
    info = ProcessInfo(protocol.VERSION, pid, int(fields[b"PPid"]), tid, uids[0], gids[0],
                       uids[1], gids[1], 0, exe)  # fmt: skip
    credentials = _Credentials(
        uids[0], gids[0], uids[1], gids[1], uids[3], gids[3],
        tuple(int(g) for g in fields.get(b"Groups", b"").split()),
        int(fields.get(b"Umask", b"022"), 8),
    )  # fmt: skip
    return info, credentials


_STATUS_KEYS = frozenset({b"Uid", b"Gid", b"Tgid", b"PPid", b"Groups", b"Umask"})


class _IoVec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("length", ctypes.c_size_t))


_libc.process_vm_writev.restype = ctypes.c_ssize_t
_libc.process_vm_writev.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong,
                                    ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong)  # fmt: skip


class _Memory:
    """The program's memory, through a /proc/<tid>/mem descriptor opened before the call was
    checked valid (so it is the caller's, even if the id is reused later)."""

    def __init__(self, tid: int) -> None:
        self.tid = tid
        self.fd = os.open(f"/proc/{tid}/mem", os.O_RDONLY | os.O_CLOEXEC)

    def read(self, address: int, length: int) -> bytes:
        """Exactly ``length`` bytes, or OSError EFAULT."""
        if address == 0 and length:
            raise OSError(_errno.EFAULT, os.strerror(_errno.EFAULT))
        try:
            data = os.pread(self.fd, length, address) if length else b""
        except OSError:
            data = b""
        if len(data) != length:
            raise OSError(_errno.EFAULT, os.strerror(_errno.EFAULT))
        return data

    def string(self, address: int) -> bytes:
        """A NUL-terminated path (EFAULT, ENAMETOOLONG as the kernel says)."""
        if address == 0:
            raise OSError(_errno.EFAULT, os.strerror(_errno.EFAULT))
        collected = b""
        page = os.sysconf("SC_PAGE_SIZE")
        while len(collected) <= protocol.MAX_PATH:
            want = page - (address % page)
            try:
                chunk = os.pread(self.fd, want, address)
            except OSError:
                chunk = b""
            end = chunk.find(b"\0")
            if end >= 0:
                collected += chunk[:end]
                break
            if len(chunk) < want:
                raise OSError(_errno.EFAULT, os.strerror(_errno.EFAULT))
            collected += chunk
            address += want
        if len(collected) > protocol.MAX_PATH:
            raise OSError(_errno.ENAMETOOLONG, os.strerror(_errno.ENAMETOOLONG))
        return collected

    def write(self, address: int, data: bytes) -> None:
        """Write an answer into the caller's buffer (see _write_memory)."""
        _write_memory(self.tid, address, data)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclasses.dataclass
class _Path:
    """A path as the program named it: ``text`` (bytes read from its memory), and ``dirfd``: the
    master's copy of the program's directory descriptor, or of its cwd, or None (absolute)."""

    text: bytes
    dirfd: int | None
    cwd: bool = False  # relative to the program's working directory


@dataclasses.dataclass
class _Decoded:
    """A trapped call decoded: the shim's request, and what answering it needs."""

    note: Notification
    raw: RawCall
    process: ProcessInfo
    credentials: _Credentials
    memory: _Memory
    paths: list[_Path]
    descriptors: list[int]  # the handler's copies (FD_DIR1, FD_DIR2, FD_SOCKET order)
    owned: list[int]  # the master's own copies, closed when answered
    kind: str = ""  # "stat", "statx", "readlink", "open", "socket", "exec", "plain", "chdir"
    buffer: int = 0  # stat/statx/readlink: where the answer goes
    size: int = 0  # readlink: the buffer's size
    at_flags: int = 0  # stat/statx/access/chmod/chown/utimens: the AT_* flags as given
    statx_mask: int = 0
    cloexec: bool = False  # open: the new descriptor's; connect/bind: the program's socket's
    socket_number: int = -1  # connect/bind: the program's descriptor
    sockaddr: bytes = b""  # connect/bind: the address as given
    socket_copy: int = -1  # connect/bind: the master's copy of the program's socket
    cwd: int = -1  # connect/bind of a relative unix path: the program's working directory
    backlog: int = 0  # listen
    payload: bytes = b""  # sendto/sendmsg of a datagram: what is sent
    control: bytes = b""  # sendmsg: its control messages (descriptors: the master's copies)
    send_flags: int = 0
    count_at: int = 0  # sendmmsg: where the message's msg_len goes (the call then returns 1)
    #: a call on a descriptor: the call itself on the master's copy (passthrough)
    perform: Callable[[], Any] | None = None

    def close(self) -> None:
        for fd in self.owned:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.owned = []
        self.memory.close()


#: Calls that change a caller's credentials: trapped to forget what was kept, then let go on.
_CREDENTIAL_CALLS = frozenset(
    {"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid",
     "setfsgid", "setgroups", "umask"}
)  # fmt: skip

#: The system calls the adapter decodes (by their x86_64 names); any other is refused.
SERVED: frozenset[str] = frozenset(
    {"open", "creat", "openat", "openat2", "stat", "lstat", "newfstatat", "statx", "access",
     "faccessat", "faccessat2", "mkdir", "mkdirat", "unlink", "rmdir", "unlinkat", "rename",
     "renameat", "renameat2", "readlink", "readlinkat", "symlink", "symlinkat", "link", "linkat",
     "chmod", "fchmodat", "fchmodat2", "chown", "lchown", "fchownat", "utimensat", "utimes",
     "futimesat", "truncate", "mknod", "mknodat", "chdir", "execve", "execveat", "connect",
     "bind", "listen", "fstat", "fchmod", "fchown", "statfs", "getxattr", "lgetxattr",
     "listxattr", "llistxattr", "setxattr", "lsetxattr", "fsetxattr", "removexattr",
     "lremovexattr", "fremovexattr", "sendto", "sendmsg", "sendmmsg", "recvfrom",
     "name_to_handle_at", "open_by_handle_at"}
)  # fmt: skip


class _Decoder:
    """Reads one notification into a :class:`_Decoded`."""

    def __init__(
        self, file_devices: Sequence[int] = (), datagram_sources: DatagramSources | None = None
    ) -> None:
        #: each thread's ProcessInfo and credentials, read from /proc once (it costs 100 us) and
        #: forgotten when any thread of the tree changes its ids or umask, or executes
        self._who: dict[int, tuple[ProcessInfo, _Credentials]] = {}
        self._seq = itertools.count(1)
        self.file_devices = frozenset(file_devices)
        self.datagram_sources = datagram_sources

    def decode(
        self, note: Notification
    ) -> _Decoded | Callable[[], tuple[int, int]] | _Continue | _Received:
        """The decoded call, or for a call the adapter answers by itself (an fstat of a program's
        descriptor), a function that performs it (returning (value, errno))."""
        name = note.name
        if name in _CREDENTIAL_CALLS:  # trapped only to know their callers' ids changed
            self._who.clear()
            return CONTINUE
        method = getattr(self, f"_{name}", None) if name in SERVED else None
        if method is None:
            raise _Refusal(_errno.ENOSYS, f"the supervisor does not serve {name}", report=True)
        if name in _CREDENTIAL_CALLS or name in ("execve", "execveat"):
            self._who.clear()  # what was kept is stale (umask is the whole process's)
        try:
            return self._decode(note, method)
        except OSError as error:
            if error.errno not in (_errno.EMFILE, _errno.ENFILE):
                raise
            # the master's own limit, not the program's or the model's answer: said as such
            # (a memfd per virtual file programs opened is what usually exhausts it)
            limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            why = f"the master ran out of file descriptors (ulimit -n is {limit}) reading the call"
            raise _Refusal(error.errno, why, report=True) from None

    def _decode(
        self, note: Notification, method: Callable[[_Decoded, tuple[int, ...]], Any]
    ) -> _Decoded | Callable[[], tuple[int, int]] | _Continue:
        who = self._who.get(note.pid)
        if who is None:
            if len(self._who) > 4096:
                self._who.clear()
            who = self._who[note.pid] = _status(note.pid)
        info, credentials = who
        memory = _Memory(note.pid)
        decoded = _Decoded(note, _EMPTY, info, credentials, memory, [], [], [])
        try:
            result = method(decoded, note.args)
        except BaseException:
            decoded.close()
            raise
        if result is not None:
            decoded.close()
            return result  # type: ignore[no-any-return]
        return decoded

    # -- helpers -----------------------------------------------------------------------------

    def _pidfd_getfd(self, d: _Decoded, number: int) -> int:
        pidfd = _thread_pidfd(d.note.pid, d.process.pid)
        try:
            fd = _syscall(_seccomp._SYS_PIDFD_GETFD, pidfd, number, 0)
        except OSError as error:
            raise _Refusal(error.errno or _errno.EBADF) from None
        finally:
            os.close(pidfd)
        d.owned.append(fd)
        return fd

    def _path(self, d: _Decoded, dirfd: int, address: int, *, empty_ok: bool = False) -> _Path:
        """Read a path argument; relative ones get the master's copy of their directory."""
        text = d.memory.string(address)
        if not text and not empty_ok:
            raise _Refusal(_errno.ENOENT)
        dirfd = ctypes.c_int(dirfd & 0xFFFFFFFF).value  # the kernel reads an int
        if text.startswith(b"/"):
            path = _Path(text, None)
        elif dirfd == _AT_FDCWD:
            cwd = os.open(f"/proc/{d.note.pid}/cwd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            d.owned.append(cwd)
            path = _Path(text, cwd, cwd=True)
        else:
            if dirfd < 0:
                raise _Refusal(_errno.EBADF)
            path = _Path(text, self._pidfd_getfd(d, dirfd))
        d.paths.append(path)
        return path

    def _as_sent(self, d: _Decoded, path: _Path, bit: int) -> tuple[bytes, int]:
        """The path as the shim sends it: absolute as given, cwd-relative joined with the cwd,
        dirfd-relative as given with a copy of the dirfd for the handler (``bit``)."""
        if path.dirfd is None:
            return path.text, 0
        if path.cwd:
            cwd = os.fsencode(os.readlink(f"/proc/{d.note.pid}/cwd"))
            joined = cwd.rstrip(b"/") + b"/" + path.text
            if len(joined) > protocol.MAX_PATH:
                raise _Refusal(_errno.ENAMETOOLONG)
            return joined, 0
        d.descriptors.append(os.dup(path.dirfd))
        return path.text, bit

    def _request(
        self, d: _Decoded, function: str, kind: str, p1: _Path | None = None,
        p2: _Path | None = None, *, string1: bytes | None = None, flags: int = 0, mode: int = 0,
        resolve: int = 0, values: tuple[int, int, int, int] = (0, 0, 0, 0),
    ) -> None:  # fmt: skip
        fds, string2 = 0, None
        if p1 is not None:
            string1, bit = self._as_sent(d, p1, FD_DIR1)
            fds |= bit
        if p2 is not None:
            string2, bit = self._as_sent(d, p2, FD_DIR2)
            fds |= bit
        d.raw = RawCall(
            next(self._seq) & 0xFFFFFFFF, function, d.note.name, flags, mode, resolve, fds,
            0, 0, 0, 0, 0, 0, bytes(16), string1, string2, values,
        )  # fmt: skip
        d.kind = kind

    def _on_descriptor(
        self, d: _Decoded, fd: int, function: str, kind: str, perform: Callable[[int], Any], *,
        mode: int = 0, values: tuple[int, int, int, int] = (0, 0, 0, 0), buffer: int = 0,
        statx_mask: int = 0, as_caller: bool = True, ask: bool = True,
    ) -> Callable[[], tuple[int, int]] | None:  # fmt: skip
        """A call on a descriptor (fstat, fchmod, fchown, futimens: also their *at forms with an
        empty path). On a file of the handler's (its st_dev in ``file_devices``) it is asked as
        the shim asks it, the file in FD_FILE; on one of the program's own it is performed on
        the master's copy of it (as the program), with no handler: nothing in memory decides."""
        fd = ctypes.c_int(fd & 0xFFFFFFFF).value
        if fd == _AT_FDCWD:
            copy = os.open(f"/proc/{d.note.pid}/cwd", os.O_PATH | os.O_CLOEXEC)
            d.owned.append(copy)
        elif fd < 0:
            raise _Refusal(_errno.EBADF)
        else:
            copy = self._pidfd_getfd(d, fd)
        d.buffer, d.statx_mask = buffer, statx_mask
        d.perform = functools.partial(perform, copy)
        if ask and os.fstat(copy).st_dev in self.file_devices:
            d.descriptors.append(os.dup(copy))
            d.raw = RawCall(
                next(self._seq) & 0xFFFFFFFF, function, d.note.name, 0, mode, 0, FD_FILE, 0, 0,
                0, 0, 0, 0, bytes(16), None, None, values,
            )  # fmt: skip
            d.kind = kind
            return None
        owned, d.owned = d.owned, []  # the closure's now
        memory, credentials, call = d.memory, d.credentials, d.perform

        def performed() -> tuple[int, int]:
            value = _WORKER.run(call, credentials) if as_caller else call()
            if kind in ("stat", "statx"):
                memory.write(buffer, value)
                return 0, 0
            return int(value), 0

        return _answered_by(performed, owned)

    def _performed(self, d: _Decoded, perform: Callable[[], Any]) -> Callable[[], tuple[int, int]]:
        """A call the shim leaves to libc: the master performs it as the program, no handler."""
        owned, d.owned = d.owned, []
        credentials = d.credentials
        return _answered_by(lambda: (int(_WORKER.run(perform, credentials)), 0), owned)

    def _empty_path(self, d: _Decoded, address: int, flags: int) -> bool:
        """Whether (path, flags) names the descriptor itself: "" with AT_EMPTY_PATH."""
        return bool(flags & _AT_EMPTY_PATH) and address != 0 and d.memory.string(address) == b""

    # -- the calls, by system call name ------------------------------------------------------

    def _open(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._opening(d, "open", _AT_FDCWD, a[0], a[1], a[2])

    def _creat(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._opening(d, "open", _AT_FDCWD, a[0], os.O_CREAT | os.O_WRONLY | os.O_TRUNC, a[1])

    def _openat(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._opening(d, "openat", a[0], a[1], a[2], a[3])

    def _openat2(self, d: _Decoded, a: tuple[int, ...]) -> None:
        if a[3] < _OPEN_HOW.size:
            raise _Refusal(_errno.EINVAL)
        flags, mode, resolve = _OPEN_HOW.unpack(d.memory.read(a[2], _OPEN_HOW.size))
        self._opening(d, "openat", a[0], a[1], flags, mode, resolve)

    def _opening(self, d: _Decoded, function: str, dirfd: int, address: int, flags: int,
                 mode: int, resolve: int = 0) -> None:  # fmt: skip
        flags &= 0xFFFFFFFF
        needs_mode = bool(flags & os.O_CREAT) or flags & _O_TMPFILE == _O_TMPFILE
        p = self._path(d, dirfd, address)
        self._request(d, function, "open", p, flags=flags, mode=(mode & 0o7777) if needs_mode
                      else 0, resolve=resolve)  # fmt: skip
        d.cloexec = bool(flags & os.O_CLOEXEC)

    def _stat(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._stating(d, "stat", _AT_FDCWD, a[0], a[1], 0)

    def _lstat(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._stating(d, "lstat", _AT_FDCWD, a[0], a[1], _AT_SYMLINK_NOFOLLOW)

    def _fstat(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        return self._on_descriptor(d, a[0], "fstat", "stat",
                                   lambda fd: _host_stat(fd, b"", _AT_EMPTY_PATH, None),
                                   buffer=a[1], as_caller=False)  # fmt: skip

    def _newfstatat(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        flags = a[3] & 0xFFFFFFFF
        if self._empty_path(d, a[1], flags):
            return self._on_descriptor(d, a[0], "fstat", "stat",
                                       lambda fd: _host_stat(fd, b"", flags, None),
                                       buffer=a[2], as_caller=False)  # fmt: skip
        function = "lstat" if flags & _AT_SYMLINK_NOFOLLOW else "stat"
        self._stating(d, function, a[0], a[1], a[2], flags)
        return None

    def _statx(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        flags, mask = a[2] & 0xFFFFFFFF, a[3] & 0xFFFFFFFF
        if self._empty_path(d, a[1], flags):
            return self._on_descriptor(d, a[0], "fstat", "statx",
                                       lambda fd: _host_stat(fd, b"", flags, (mask, flags)),
                                       buffer=a[4], statx_mask=mask, as_caller=False)  # fmt: skip
        function = "lstat" if flags & _AT_SYMLINK_NOFOLLOW else "stat"
        self._stating(d, function, a[0], a[1], a[4], flags)
        d.kind, d.statx_mask = "statx", a[3] & 0xFFFFFFFF
        return None

    def _stating(self, d: _Decoded, function: str, dirfd: int, address: int, buffer: int,
                 flags: int) -> None:  # fmt: skip
        p = self._path(d, dirfd, address)
        self._request(d, function, "stat", p)
        d.buffer, d.at_flags = buffer, flags

    def _access(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._accessing(d, _AT_FDCWD, a[0], a[1], 0)

    def _faccessat(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._accessing(d, a[0], a[1], a[2], 0)

    def _faccessat2(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._accessing(d, a[0], a[1], a[2], a[3] & 0xFFFFFFFF)

    def _accessing(self, d: _Decoded, dirfd: int, address: int, amode: int, flags: int) -> Any:
        if self._empty_path(d, address, flags):  # no function of the shim's: performed
            return self._on_descriptor(
                d, dirfd, "access", "plain", ask=False,
                perform=lambda fd: _syscall(_SYS["faccessat2"], fd, b"", amode, flags),
            )  # fmt: skip
        p = self._path(d, dirfd, address)
        function = "eaccess" if flags & _AT_EACCESS else "access"
        self._request(d, function, "plain", p, flags=amode & 0xFFFFFFFF)
        d.at_flags = flags
        return None

    def _mkdir(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._request(d, "mkdir", "plain", self._path(d, _AT_FDCWD, a[0]), mode=a[1] & 0o7777)

    def _mkdirat(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._request(d, "mkdir", "plain", self._path(d, a[0], a[1]), mode=a[2] & 0o7777)

    def _unlink(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._request(d, "unlink", "plain", self._path(d, _AT_FDCWD, a[0]))

    def _rmdir(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._request(d, "rmdir", "plain", self._path(d, _AT_FDCWD, a[0]))

    def _unlinkat(self, d: _Decoded, a: tuple[int, ...]) -> None:
        flags = a[2] & 0xFFFFFFFF
        if flags & ~_AT_REMOVEDIR:
            raise _Refusal(_errno.EINVAL)
        function = "rmdir" if flags & _AT_REMOVEDIR else "unlink"
        self._request(d, function, "plain", self._path(d, a[0], a[1]))

    def _rename(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._renaming(d, _AT_FDCWD, a[0], _AT_FDCWD, a[1], 0)

    def _renameat(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._renaming(d, a[0], a[1], a[2], a[3], 0)

    def _renameat2(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._renaming(d, a[0], a[1], a[2], a[3], a[4] & 0xFFFFFFFF)

    def _renaming(self, d: _Decoded, olddir: int, old: int, newdir: int, new: int,
                  flags: int) -> None:  # fmt: skip
        p1, p2 = self._path(d, olddir, old), self._path(d, newdir, new)
        self._request(d, "rename", "plain", p1, p2, flags=flags)

    def _readlink(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._reading_link(d, _AT_FDCWD, a[0], a[1], a[2])

    def _readlinkat(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._reading_link(d, a[0], a[1], a[2], a[3])

    def _reading_link(self, d: _Decoded, dirfd: int, address: int, buffer: int,
                      size: int) -> None:  # fmt: skip
        size = ctypes.c_int(size & 0xFFFFFFFF).value
        if size <= 0:
            raise _Refusal(_errno.EINVAL)
        self._request(d, "readlink", "readlink", self._path(d, dirfd, address))
        d.buffer, d.size = buffer, size

    def _symlink(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._linking_symbolically(d, a[0], _AT_FDCWD, a[1])

    def _symlinkat(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._linking_symbolically(d, a[0], a[1], a[2])

    def _linking_symbolically(self, d: _Decoded, target: int, dirfd: int, address: int) -> None:
        text = d.memory.string(target)
        if not text:
            raise _Refusal(_errno.ENOENT)
        d.paths.append(_Path(text, None))  # paths[0]: the target, as given
        link = self._path(d, dirfd, address)
        self._request(d, "symlink", "plain", None, link, string1=text)

    def _link(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._linking(d, _AT_FDCWD, a[0], _AT_FDCWD, a[1], 0)

    def _linkat(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._linking(d, a[0], a[1], a[2], a[3], a[4] & 0xFFFFFFFF)

    def _linking(self, d: _Decoded, olddir: int, old: int, newdir: int, new: int,
                 flags: int) -> None:  # fmt: skip
        if flags & ~_AT_SYMLINK_FOLLOW:
            raise _Refusal(_errno.ENOSYS, "linkat with AT_EMPTY_PATH", report=True)
        p1, p2 = self._path(d, olddir, old), self._path(d, newdir, new)
        self._request(d, "link", "plain", p1, p2, flags=flags)

    def _chmod(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._request(d, "chmod", "plain", self._path(d, _AT_FDCWD, a[0]), mode=a[1] & 0o7777)

    def _fchmodat(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._request(d, "chmod", "plain", self._path(d, a[0], a[1]), mode=a[2] & 0o7777)

    def _fchmod(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        mode = a[1] & 0o7777
        return self._on_descriptor(
            d, a[0], "fchmod", "plain", mode=mode,
            perform=lambda fd: _syscall(_SYS["fchmod"], fd, mode),
        )  # fmt: skip

    def _fchmodat2(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        flags, mode = a[3] & 0xFFFFFFFF, a[2] & 0o7777
        if self._empty_path(d, a[1], flags):
            return self._on_descriptor(
                d, a[0], "fchmod", "plain", mode=mode,
                perform=lambda fd: _syscall(_SYS["fchmodat2"], fd, b"", mode, flags),
            )  # fmt: skip
        if flags & ~_AT_SYMLINK_NOFOLLOW:
            raise _Refusal(_errno.EINVAL)
        p = self._path(d, a[0], a[1])
        self._request(d, "chmod", "plain", p, mode=mode, flags=flags)
        d.at_flags = flags
        return None

    def _chown(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._owning(d, _AT_FDCWD, a[0], a[1], a[2], 0)

    def _lchown(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._owning(d, _AT_FDCWD, a[0], a[1], a[2], _AT_SYMLINK_NOFOLLOW)

    def _fchown(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        uid, gid = _ids(a[1], a[2])
        return self._on_descriptor(
            d, a[0], "fchown", "plain", values=(uid, gid, 0, 0),
            perform=lambda fd: _syscall(_SYS["fchown"], fd, a[1] & 0xFFFFFFFF, a[2] & 0xFFFFFFFF),
        )  # fmt: skip

    def _fchownat(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        flags = a[4] & 0xFFFFFFFF
        if self._empty_path(d, a[1], flags):
            uid, gid = _ids(a[2], a[3])
            return self._on_descriptor(
                d, a[0], "fchown", "plain", values=(uid, gid, 0, 0),
                perform=lambda fd: _syscall(_SYS["fchownat"], fd, b"", a[2] & 0xFFFFFFFF,
                                            a[3] & 0xFFFFFFFF, flags),
            )  # fmt: skip
        self._owning(d, a[0], a[1], a[2], a[3], flags)
        return None

    def _owning(self, d: _Decoded, dirfd: int, address: int, uid: int, gid: int,
                flags: int) -> None:  # fmt: skip
        if flags & ~_AT_SYMLINK_NOFOLLOW:
            raise _Refusal(_errno.EINVAL)
        ids = _ids(uid, gid)
        p = self._path(d, dirfd, address)
        self._request(d, "chown", "plain", p, flags=flags, values=(ids[0], ids[1], 0, 0))
        d.at_flags = flags

    def _utimensat(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        flags = a[3] & 0xFFFFFFFF
        if a[2] == 0:
            times = (0, _UTIME_NOW, 0, _UTIME_NOW)
        else:
            times = _TIMESPECS.unpack(d.memory.read(a[2], _TIMESPECS.size))
        if a[1] == 0 or self._empty_path(d, a[1], flags):  # futimens
            path = None if a[1] == 0 else b""
            packed = ctypes.create_string_buffer(_TIMESPECS.pack(*times))
            return self._on_descriptor(
                d, a[0], "futimens", "plain", values=(times[0], times[1], times[2], times[3]),
                perform=lambda fd: _syscall(_SYS["utimensat"], fd, path, packed, flags),
            )  # fmt: skip
        self._timing(d, a[0], a[1], times, flags)
        return None

    def _utimes(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._timing_micro(d, _AT_FDCWD, a[0], a[1])

    def _futimesat(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._timing_micro(d, a[0], a[1], a[2])

    def _timing_micro(self, d: _Decoded, dirfd: int, address: int, times: int) -> None:
        if times == 0:
            values = (0, _UTIME_NOW, 0, _UTIME_NOW)
        else:
            s1, u1, s2, u2 = _TIMESPECS.unpack(d.memory.read(times, _TIMESPECS.size))
            values = (s1, u1 * 1000, s2, u2 * 1000)
        self._timing(d, dirfd, address, values, 0)

    def _timing(self, d: _Decoded, dirfd: int, address: int, times: tuple[int, ...],
                flags: int) -> None:  # fmt: skip
        p = self._path(d, dirfd, address)
        values = (times[0], times[1], times[2], times[3])
        self._request(d, "utimens", "plain", p, flags=flags & _AT_SYMLINK_NOFOLLOW, values=values)
        d.at_flags = flags & _AT_SYMLINK_NOFOLLOW

    def _truncate(self, d: _Decoded, a: tuple[int, ...]) -> None:
        length = ctypes.c_long(a[1]).value
        p = self._path(d, _AT_FDCWD, a[0])
        self._request(d, "truncate", "plain", p, values=(length, 0, 0, 0))

    def _mknod(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._making_node(d, _AT_FDCWD, a[0], a[1], a[2])

    def _mknodat(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._making_node(d, a[0], a[1], a[2], a[3])

    def _making_node(self, d: _Decoded, dirfd: int, address: int, mode: int, dev: int) -> None:
        p = self._path(d, dirfd, address)
        self._request(d, "mknod", "plain", p, mode=mode & 0xFFFFFFFF,
                      values=(dev & 0xFFFFFFFF, 0, 0, 0))  # fmt: skip

    def _chdir(self, d: _Decoded, a: tuple[int, ...]) -> None:
        self._request(d, "chdir", "chdir", self._path(d, _AT_FDCWD, a[0]))

    def _statfs(self, d: _Decoded, a: tuple[int, ...]) -> Callable[[], tuple[int, int]]:
        """statfs, which the shim leaves to libc: performed by the master as the program."""
        p = self._path(d, _AT_FDCWD, a[0])
        text = _own_proc(p.text, d.process)
        path = text if p.dirfd is None else b"/proc/self/fd/%d/%s" % (p.dirfd, text)
        owned, d.owned = d.owned, []
        memory, credentials, buffer = d.memory, d.credentials, a[1]

        def performed() -> tuple[int, int]:
            data = ctypes.create_string_buffer(_STATFS_SIZE)
            _WORKER.run(lambda: _syscall(_SYS["statfs"], path, data), credentials)
            memory.write(buffer, data.raw)
            return 0, 0

        return _answered_by(performed, owned)

    def _getxattr(self, d: _Decoded, a: tuple[int, ...]) -> None:
        raise _Refusal(_errno.ENOTSUP)  # as the shim on the model's files: no attributes

    _lgetxattr = _listxattr = _llistxattr = _getxattr

    def _setxattr(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        return self._changing_attribute(d, a, "setxattr", 0)

    def _lsetxattr(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        return self._changing_attribute(d, a, "setxattr", _AT_SYMLINK_NOFOLLOW)

    def _fsetxattr(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        return self._changing_attribute(d, a, "fsetxattr", 0)

    def _removexattr(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        return self._changing_attribute(d, a, "removexattr", 0)

    def _lremovexattr(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        return self._changing_attribute(d, a, "removexattr", _AT_SYMLINK_NOFOLLOW)

    def _fremovexattr(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        return self._changing_attribute(d, a, "fremovexattr", 0)

    def _changing_attribute(self, d: _Decoded, a: tuple[int, ...], function: str,
                            nofollow: int) -> Any:  # fmt: skip
        """setxattr and removexattr, as the shim asks them: the name in string2, XATTR_* flags
        in mode, AT_SYMLINK_NOFOLLOW in flags for the l-forms; the file in FD_FILE for the
        f-forms. The value travels only to the passthrough."""
        name = d.memory.string(a[1])
        if not 0 < len(name) <= 255:
            raise _Refusal(_errno.ERANGE)
        setting = "setxattr" in function
        value = b""
        xflags = 0
        if setting:
            size = a[3]
            if size > 65536:
                raise _Refusal(_errno.E2BIG)
            value = d.memory.read(a[2], size)
            xflags = a[4] & 0xFFFFFFFF
        if function.startswith("f"):
            fd = ctypes.c_int(a[0] & 0xFFFFFFFF).value
            if fd < 0:
                raise _Refusal(_errno.EBADF)
            copy = self._pidfd_getfd(d, fd)
            perform = functools.partial(_attribute_call, copy, name, value, xflags, setting)
            if stat_module.S_IFMT(os.fstat(copy).st_mode) in (stat_module.S_IFIFO,
                                                               stat_module.S_IFSOCK):  # fmt: skip
                return self._performed(d, perform)  # anonymous: the shim's real call
            d.perform = perform
            d.descriptors.append(os.dup(copy))
            d.raw = RawCall(
                next(self._seq) & 0xFFFFFFFF, function, d.note.name, 0, xflags, 0, FD_FILE, 0, 0,
                0, 0, 0, 0, bytes(16), None, name, (0, 0, 0, 0),
            )  # fmt: skip
            d.kind = "plain"
            return None
        p = self._path(d, _AT_FDCWD, a[0])
        self._request(d, function, "plain", p, flags=nofollow, mode=xflags)
        d.raw = d.raw._replace(string2=name)
        path = (
            _own_proc(p.text, d.process)
            if p.dirfd is None
            else b"/proc/self/fd/%d/%s" % (p.dirfd, p.text)  # the master's copy of the cwd
        )
        d.perform = functools.partial(_attribute_call, path, name, value, xflags, setting,
                                      not nofollow)  # fmt: skip
        return None

    def _name_to_handle_at(self, d: _Decoded, a: tuple[int, ...]) -> None:
        """A file handle names a file whatever path leads to it, and only the kernel's
        filesystems make them: the model's have none, as a filesystem without export
        operations (/proc, FUSE) answers. Programs that use them (systemd's mount checks) fall
        back to paths then."""
        raise _Refusal(_errno.EOPNOTSUPP)

    def _open_by_handle_at(self, d: _Decoded, a: tuple[int, ...]) -> None:
        """Asked as the shim asks it: the mount descriptor in FD_FILE, the flags (a handle,
        forged or not, is no path to decide on: the Sandbox refuses it)."""
        fd = ctypes.c_int(a[0] & 0xFFFFFFFF).value
        if fd < 0:
            raise _Refusal(_errno.EBADF)
        d.descriptors.append(os.dup(self._pidfd_getfd(d, fd)))
        d.raw = RawCall(
            next(self._seq) & 0xFFFFFFFF, "open_by_handle_at", d.note.name, a[2] & 0xFFFFFFFF, 0,
            0, FD_FILE, 0, 0, 0, 0, 0, 0, bytes(16), None, None, (0, 0, 0, 0),
        )  # fmt: skip
        d.kind = "plain"

    def _execve(self, d: _Decoded, a: tuple[int, ...]) -> _Continue | None:
        return self._executing(d, _AT_FDCWD, a[0], 0)

    def _execveat(self, d: _Decoded, a: tuple[int, ...]) -> _Continue | None:
        flags = a[4] & 0xFFFFFFFF
        if self._empty_path(d, a[1], flags):
            return self._executing_descriptor(d, a[0])
        return self._executing(d, a[0], a[1], flags)

    def _executing_descriptor(self, d: _Decoded, fd: int) -> _Continue | None:
        """fexecve: ``execveat(fd, "", AT_EMPTY_PATH)``. The kernel runs the open file the
        descriptor is, read from the program's descriptor table, not from its memory. A memfd
        of the master's (the shim runs a program of the model so, after the master answered its
        exec with that memfd) goes on: the master already decided. Any other file is asked as
        the shim's fexecve asks it: an exec of the path /proc gives the descriptor, with its
        mode. (A racing thread may dup2 another file over the number before the kernel reads
        it, as it may swap a path: the new image is still under the filter.)"""
        copy = self._pidfd_getfd(d, fd)
        info = os.fstat(copy)
        link = os.fsencode(os.readlink(f"/proc/self/fd/{copy}"))
        if (stat_module.S_ISREG(info.st_mode) and info.st_dev in self.file_devices
                and link.startswith(b"/memfd:")):  # fmt: skip
            return CONTINUE
        d.paths = [_Path(link, None)]
        self._request(d, "exec", "exec", d.paths[0], mode=info.st_mode)
        d.at_flags = _AT_EMPTY_PATH
        return None

    def _executing(self, d: _Decoded, dirfd: int, address: int, flags: int) -> _Continue | None:
        p = self._path(d, dirfd, address)
        own = _OWN_DESCRIPTOR.fullmatch(_own_proc(p.text, d.process)) if p.dirfd is None else None
        if own is not None and int(own["pid"] or d.process.pid) == d.process.pid:
            # its own descriptor by name (glibc's posix_spawn of the shim's model program, and
            # fexecve without execveat): the kernel follows the magic link to that open file
            return self._executing_descriptor(d, int(own["fd"]))
        try:  # (/proc/self: the program's, not the master's)
            mode = os.stat(_own_proc(p.text, d.process), dir_fd=p.dirfd).st_mode
        except OSError:
            mode = 0
        self._request(d, "exec", "exec", p, mode=mode)
        d.at_flags = flags
        return None

    def _connect(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        return self._addressing(d, "connect", a[0], a[1], a[2])

    def _bind(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        return self._addressing(d, "bind", a[0], a[1], a[2])

    def _addressing(self, d: _Decoded, verb: str, fd: int, address: int, length: int) -> Any:
        fd = ctypes.c_int(fd & 0xFFFFFFFF).value
        length = ctypes.c_int(length & 0xFFFFFFFF).value
        if length < 0 or length > 128:
            raise _Refusal(_errno.EINVAL)
        if fd < 0:
            raise _Refusal(_errno.EBADF)
        sockaddr = d.memory.read(address, length)
        copy, domain, socktype, proto = self._socket(d, fd)
        return self._asking(d, verb, d.note.name, fd, copy, sockaddr, domain, socktype, proto)

    def _socket(self, d: _Decoded, fd: int) -> tuple[int, int, int, int]:
        """The master's copy of the program's socket ``fd``, its domain, type and protocol."""
        copy = self._pidfd_getfd(d, fd)
        try:
            domain = _sockopt(copy, socket.SO_DOMAIN)
            socktype = _sockopt(copy, socket.SO_TYPE)
            proto = _sockopt(copy, socket.SO_PROTOCOL)
        except OSError as error:
            raise _Refusal(error.errno or _errno.ENOTSOCK) from None
        return copy, domain, socktype, proto

    def _asking(self, d: _Decoded, verb: str, symbol: str, fd: int, copy: int, sockaddr: bytes,
                domain: int, socktype: int, proto: int) -> Any:  # fmt: skip
        """connect or bind (or a send with a destination, asked as a connect named ``symbol``)
        as the shim asks it: the address decoded, the program's socket in FD_SOCKET."""
        length = len(sockaddr)
        d.socket_number, d.sockaddr, d.socket_copy = fd, sockaddr, copy
        d.cloexec = _descriptor_cloexec(d.note.pid, fd)
        family = struct.unpack_from("=H", sockaddr)[0] if length >= 2 else -1
        fields: dict[str, Any] = {}
        string1 = None
        if family == socket.AF_UNIX and length > 2:
            name = sockaddr[2:]
            if name.startswith(b"\0"):
                string1 = name
            else:
                text = name.split(b"\0", 1)[0]
                if not text.startswith(b"/"):
                    d.cwd = os.open(f"/proc/{d.note.pid}/cwd", os.O_PATH | os.O_DIRECTORY)
                    d.owned.append(d.cwd)
                    cwd = os.fsencode(os.readlink(f"/proc/{d.note.pid}/cwd"))
                    text = cwd.rstrip(b"/") + b"/" + text
                string1 = text
            function = f"{verb}_unix"
        elif family == socket.AF_INET and length >= 16:
            port, packed = struct.unpack_from("!H4s", sockaddr, 2)
            fields = {"port": port, "address": packed + bytes(12)}
            function = f"{verb}_inet"
        elif family == socket.AF_INET6 and length >= 24:
            port, flowinfo, packed = struct.unpack_from("!HI16s", sockaddr, 2)
            scope = struct.unpack_from("=I", sockaddr, 24)[0] if length >= 28 else 0
            fields = {"port": port, "flowinfo": flowinfo, "address": packed, "scope_id": scope}
            function = f"{verb}_inet6"
        else:
            # what the shim leaves to libc (autobind, AF_UNSPEC, a short address): performed
            # as given on the program's socket, with its credentials
            return self._as_given(d, verb)
        d.descriptors.append(os.dup(copy))
        d.raw = RawCall(
            next(self._seq) & 0xFFFFFFFF, function, symbol, 0, 0, 0, FD_SOCKET, domain,
            socktype, proto, fields.get("port", 0), fields.get("flowinfo", 0),
            fields.get("scope_id", 0), fields.get("address", bytes(16)), string1, None,
            (0, 0, 0, 0),
        )  # fmt: skip
        d.kind = "socket"
        return None

    def _listen(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        """listen on an unbound inet stream socket binds it to the wildcard address first: asked
        as that bind (symbol "listen"), as the shim asks it; any other listen is performed."""
        fd = ctypes.c_int(a[0] & 0xFFFFFFFF).value
        backlog = ctypes.c_int(a[1] & 0xFFFFFFFF).value
        if fd < 0:
            raise _Refusal(_errno.EBADF)
        copy = self._pidfd_getfd(d, fd)
        try:
            domain = _sockopt(copy, socket.SO_DOMAIN)
            socktype = _sockopt(copy, socket.SO_TYPE)
            proto = _sockopt(copy, socket.SO_PROTOCOL)
        except OSError as error:
            raise _Refusal(error.errno or _errno.ENOTSOCK) from None
        d.socket_number, d.socket_copy, d.backlog = fd, copy, backlog
        if not (
            domain in (socket.AF_INET, socket.AF_INET6)
            and socktype in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET)
            and _unbound(copy)
        ):
            d.owned.remove(copy)

            def perform() -> tuple[int, int]:
                try:
                    return _listen_on(copy, backlog), 0
                except OSError as error:
                    return -1, error.errno or _errno.EIO
                finally:
                    os.close(copy)

            return perform
        d.cloexec = _descriptor_cloexec(d.note.pid, fd)
        d.descriptors.append(os.dup(copy))
        function = "bind_inet" if domain == socket.AF_INET else "bind_inet6"
        d.raw = RawCall(
            next(self._seq) & 0xFFFFFFFF, function, "listen", 0, 0, 0, FD_SOCKET, domain,
            socktype, proto, 0, 0, 0, bytes(16), None, None, (0, 0, 0, 0),
        )  # fmt: skip
        d.kind = "listen"
        return None

    def _sendto(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        length = min(a[2], _MAX_DATAGRAM)
        return self._sending(d, a[0], a[3], a[4], a[5], lambda: d.memory.read(a[1], length), 0, 0)

    def _sendmsg(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        if a[1] == 0:
            raise _Refusal(_errno.EFAULT)
        name, namelen, iov, iovlen, control, controllen, _ = _MSGHDR.unpack(
            d.memory.read(a[1], _MSGHDR.size)
        )

        return self._sending(d, a[0], a[2], name, namelen, lambda: self._gather(d, iov, iovlen),
                             control, controllen)  # fmt: skip

    def _sendmmsg(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        """sendmmsg: on a stream socket as sendmsg; of datagrams, those without a destination
        (a connected socket's: glibc's resolver) are all sent by the master, else the first one
        alone as sendmsg (the call returns 1, which callers handle as a partial send)."""
        vector, count = a[1], min(a[2] & 0xFFFFFFFF, 1024)
        if count == 0:
            return lambda: (0, 0)
        headers = [
            _MSGHDR.unpack(d.memory.read(vector + i * _MMSGHDR_SIZE, _MSGHDR.size))
            for i in range(count)
        ]
        d.count_at = vector + _MSGHDR.size  # the first message's msg_len
        if (headers[0][0] and headers[0][1]) or any(not h[0] or not h[1] for h in headers):
            count = 1
        if count == 1:
            name, namelen, iov, iovlen, control, controllen, _ = headers[0]
            return self._sending(d, a[0], a[3], name, namelen,
                                 lambda: self._gather(d, iov, iovlen), control,
                                 controllen)  # fmt: skip
        fd = ctypes.c_int(a[0] & 0xFFFFFFFF).value
        if fd < 0:
            raise _Refusal(_errno.EBADF)
        copy, _, socktype, _ = self._socket(d, fd)
        if socktype in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET):
            return CONTINUE
        flags = a[3] & 0xFFFFFFFF & ~_MSG_FASTOPEN
        messages = [
            (self._gather(d, h[2], h[3]),
             self._ancillary(d, d.memory.read(h[4], min(h[5], 4096))) if h[4] and h[5] else b"")
            for h in headers
        ]  # fmt: skip
        keep, d.owned = d.owned, []
        memory = d.memory

        def perform() -> tuple[int, int]:
            sent = 0
            try:
                for index, (payload, control) in enumerate(messages):
                    n = _send_message(copy, payload, control, flags, None)
                    memory.write(vector + index * _MMSGHDR_SIZE + _MSGHDR.size,
                                 struct.pack("=I", n))  # fmt: skip
                    sent += 1
            except OSError as error:
                if not sent:
                    return -1, error.errno or _errno.EIO
            finally:
                for owned in keep:
                    os.close(owned)
            return sent, 0

        return perform

    def _recvfrom(self, d: _Decoded, a: tuple[int, ...]) -> Any:
        """recvfrom with a source buffer (the filter lets the others go on): on a datagram socket
        that sent to a routed address (``datagram_sources`` knows it), the master receives the
        datagram itself, so that its source reads as the address the program sent to, not the
        real one behind it (a resolver that checks where its answer came from, musl's or
        dnspython's, accepts it). Any other goes on in the kernel: nothing in memory decides."""
        fd = ctypes.c_int(a[0] & 0xFFFFFFFF).value
        buffer, size, flags, source, length_at = a[1], a[2], a[3] & 0xFFFFFFFF, a[4], a[5]
        if fd < 0 or length_at == 0:
            return CONTINUE
        if self.datagram_sources is None:
            return CONTINUE
        copy, domain, socktype, _ = self._socket(d, fd)
        d.owned.append(copy)
        if socktype != socket.SOCK_DGRAM or domain not in (socket.AF_INET, socket.AF_INET6):
            return CONTINUE
        sources = self.datagram_sources(os.fstat(copy).st_ino)
        if not sources:
            return CONTINUE
        room = struct.unpack("=i", d.memory.read(length_at, 4))[0]
        if room < 0:
            raise _Refusal(_errno.EINVAL)
        wait = not flags & socket.MSG_DONTWAIT and os.get_blocking(copy)
        received = _Received(os.dup(copy), sources, d.memory.tid, buffer, min(size, 1 << 16),
                             flags, source, length_at, room, wait)  # fmt: skip
        return received

    def _gather(self, d: _Decoded, iov: int, iovlen: int) -> bytes:
        """The bytes of an iovec array in the program's memory (at most _MAX_DATAGRAM)."""
        if iovlen > 1024:
            raise _Refusal(_errno.EMSGSIZE)
        chunks, total = [], 0
        for index in range(iovlen):
            base, size = _IOVEC.unpack(d.memory.read(iov + index * _IOVEC.size, _IOVEC.size))
            size = min(size, _MAX_DATAGRAM - total)
            chunks.append(d.memory.read(base, size))
            total += size
        return b"".join(chunks)

    def _sending(self, d: _Decoded, fd: int, flags: int, address: int, length: int,
                 data: Callable[[], bytes], control: int, control_length: int) -> Any:  # fmt: skip
        """sendto and sendmsg. On a stream or seqpacket socket the kernel ignores or refuses a
        destination (connected or not), so the call goes on as made (MSG_FASTOPEN aside, which
        connects: refused). A datagram's destination is asked as a connect named after the call
        (the shim's way); the master sends the datagram itself from its copy of the socket, on
        what it read, so a racing thread changes nothing."""
        fd = ctypes.c_int(fd & 0xFFFFFFFF).value
        flags &= 0xFFFFFFFF
        length = ctypes.c_int(length & 0xFFFFFFFF).value
        if fd < 0:
            raise _Refusal(_errno.EBADF)
        copy, domain, socktype, proto = self._socket(d, fd)
        if socktype in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET):
            if flags & _MSG_FASTOPEN and address and length:
                raise _Refusal(_errno.EOPNOTSUPP, "sendto with MSG_FASTOPEN", report=True)
            return CONTINUE
        d.payload = data()
        if control and control_length:
            if control_length > 4096:
                raise _Refusal(_errno.ENOBUFS)
            d.control = self._ancillary(d, d.memory.read(control, control_length))
        d.send_flags = flags & ~_MSG_FASTOPEN
        if address == 0 or length <= 0:  # connected (decided at its connect), or EDESTADDRREQ
            return self._send_as_given(d, copy, None)
        if length > 128:
            raise _Refusal(_errno.EINVAL)
        sockaddr = d.memory.read(address, length)
        asked = self._asking(d, "connect", d.note.name, fd, copy, sockaddr, domain, socktype, proto)
        if asked is None:
            d.kind = "send"
            return None
        d.owned.append(copy)  # an address the shim leaves to libc (AF_UNSPEC...): sent as given
        return self._send_as_given(d, copy, sockaddr)

    def _ancillary(self, d: _Decoded, control: bytes) -> bytes:
        """Control messages as the program gave them, its descriptors (SCM_RIGHTS) replaced by
        the master's copies."""
        out, offset = [], 0
        while offset + _CMSG_HEAD.size <= len(control):
            size, level, kind = _CMSG_HEAD.unpack_from(control, offset)
            if size < _CMSG_HEAD.size or offset + size > len(control):
                raise _Refusal(_errno.EINVAL)
            body = control[offset + _CMSG_HEAD.size : offset + size]
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                numbers = struct.unpack(f"={len(body) // 4}i", body[: len(body) // 4 * 4])
                body = struct.pack(f"={len(numbers)}i",
                                   *(self._pidfd_getfd(d, n) for n in numbers))  # fmt: skip
            item = _CMSG_HEAD.pack(_CMSG_HEAD.size + len(body), level, kind) + body
            out.append(item + bytes(-len(item) % 8))
            offset += (size + 7) & ~7
        return b"".join(out)

    def _send_as_given(self, d: _Decoded, copy: int, sockaddr: bytes | None) -> Any:
        payload, control, flags = d.payload, d.control, d.send_flags
        keep = list(d.owned)  # the SCM_RIGHTS copies and the socket: closed after the send
        d.owned = []
        memory, count_at = d.memory, d.count_at

        def perform() -> tuple[int, int]:
            sent = _send_message(copy, payload, control, flags, sockaddr)
            if count_at:
                memory.write(count_at, struct.pack("=I", sent))
                return 1, 0
            return sent, 0

        return _answered_by(perform, keep)

    def _as_given(self, d: _Decoded, verb: str) -> Callable[[], tuple[int, int]]:
        copy, sockaddr, credentials = d.socket_copy, d.sockaddr, d.credentials
        d.owned.remove(copy)

        def perform() -> tuple[int, int]:
            _WORKER.run(lambda: _socket_call(verb, copy, sockaddr), credentials)
            return 0, 0

        return _answered_by(perform, [copy])


_EMPTY = RawCall(0, "", "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, bytes(16), None, None, (0, 0, 0, 0))


_PIDFD_THREAD = os.O_EXCL  # Linux 6.9: a pidfd of one thread


def _answered_by(
    work: Callable[[], tuple[int, int]], owned: Sequence[int]
) -> Callable[[], tuple[int, int]]:
    """A call the adapter answers by itself: ``work``'s (value, errno), an OSError as its errno,
    and the master's descriptors ``owned`` closed once it ran."""

    def performed() -> tuple[int, int]:
        try:
            return work()
        except OSError as error:
            return -1, error.errno or _errno.EIO
        finally:
            for fd in owned:
                os.close(fd)

    return performed


def _thread_pidfd(tid: int, pid: int) -> int:
    """A pidfd of the calling thread, whose descriptor table is the one its call uses (a thread
    may have its own, after unshare(CLONE_FILES)); of its process before Linux 6.9."""
    try:
        return int(_syscall(_SYS_PIDFD_OPEN, tid, _PIDFD_THREAD))
    except OSError:
        return os.pidfd_open(pid)


_SYS_PIDFD_OPEN = 434


def _attribute_call(
    target: int | bytes, name: bytes, value: bytes, xflags: int, setting: bool,
    follow: bool = True,
) -> int:  # fmt: skip
    if setting:
        os.setxattr(target, name, value, xflags, follow_symlinks=follow)
    else:
        os.removexattr(target, name, follow_symlinks=follow)
    return 0


def _ids(uid: int, gid: int) -> tuple[int, int]:
    """chown's ids as the shim sends them: -1 for "unchanged"."""
    low = (uid & 0xFFFFFFFF, gid & 0xFFFFFFFF)
    return (-1 if low[0] == 0xFFFFFFFF else low[0], -1 if low[1] == 0xFFFFFFFF else low[1])


def _sockopt(fd: int, option: int) -> int:
    value = ctypes.c_int(0)
    size = ctypes.c_uint(ctypes.sizeof(value))
    if _libc.getsockopt(fd, socket.SOL_SOCKET, option, ctypes.byref(value), ctypes.byref(size)):
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return value.value


def _descriptor_cloexec(pid: int, fd: int) -> bool:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as file:
            for line in file:
                if line.startswith(b"flags:"):
                    return bool(int(line.split()[1], 8) & os.O_CLOEXEC)
    except OSError:
        pass
    return False


def _unbound(fd: int) -> bool:
    """Whether an inet socket has no port yet."""
    sock = socket.socket(fileno=os.dup(fd))
    try:
        return int(sock.getsockname()[1]) == 0
    except OSError:
        return False
    finally:
        sock.close()


def _listen_on(fd: int, backlog: int) -> int:
    if _libc.listen(fd, backlog) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return 0


def _socket_call(verb: str, fd: int, sockaddr: bytes) -> int:
    function = _libc.connect if verb == "connect" else _libc.bind
    buffer = ctypes.create_string_buffer(sockaddr, len(sockaddr))
    if function(fd, buffer, len(sockaddr)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return 0


class _MsgHdr(ctypes.Structure):
    _fields_ = (("name", ctypes.c_void_p), ("namelen", ctypes.c_uint), ("iov", ctypes.c_void_p),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p),
                ("controllen", ctypes.c_size_t), ("flags", ctypes.c_int))  # fmt: skip


_libc.sendmsg.restype = ctypes.c_ssize_t


def _send_message(fd: int, data: bytes, control: bytes, flags: int, sockaddr: bytes | None) -> int:
    """sendmsg on the master's copy of a socket, the destination as raw sockaddr bytes."""
    payload = ctypes.create_string_buffer(data, len(data))
    iov = _IoVec(ctypes.cast(payload, ctypes.c_void_p), len(data))
    name = ctypes.create_string_buffer(sockaddr, len(sockaddr)) if sockaddr else None
    ancillary = ctypes.create_string_buffer(control, len(control)) if control else None
    header = _MsgHdr(
        ctypes.cast(name, ctypes.c_void_p) if name is not None else None,
        len(sockaddr) if sockaddr else 0, ctypes.cast(ctypes.byref(iov), ctypes.c_void_p), 1,
        ctypes.cast(ancillary, ctypes.c_void_p) if ancillary is not None else None,
        len(control), 0,
    )  # fmt: skip
    sent = _libc.sendmsg(fd, ctypes.byref(header), flags | socket.MSG_NOSIGNAL)
    if sent < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return int(sent)


def _peer_address(fd: int) -> bytes:
    """A socket's peer address as raw sockaddr bytes."""
    buffer = ctypes.create_string_buffer(128)
    size = ctypes.c_uint(128)
    if _libc.getpeername(fd, buffer, ctypes.byref(size)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return buffer.raw[: size.value]


def _host_stat(dirfd: int | None, path: bytes, flags: int, statx: tuple[int, int] | None) -> bytes:
    """The kernel's own struct stat (or statx) of (dirfd, path), as the program would get it."""
    directory = _AT_FDCWD if dirfd is None else dirfd
    if statx is None:
        kbuffer = ctypes.create_string_buffer(_KSTAT.size)
        _syscall(_SYS["newfstatat"], directory, ctypes.c_char_p(path), kbuffer, flags)
        return kbuffer.raw
    xbuffer = ctypes.create_string_buffer(_STATX_SIZE)
    _syscall(_SYS["statx"], directory, ctypes.c_char_p(path), statx[1], statx[0], xbuffer)
    return xbuffer.raw


# -- the master's calls made as the program ---------------------------------------------------


def _write_memory(tid: int, address: int, data: bytes) -> None:
    """Write an answer into thread tid's buffer, as the kernel would: EFAULT for memory the
    program may not write (/proc/<pid>/mem would force the write into read-only pages). The
    caller checked the call still waits: its thread, hence its id, is alive."""
    local = _IoVec(ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p), len(data))
    remote = _IoVec(ctypes.c_void_p(address), len(data))
    written = _libc.process_vm_writev(tid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if written != len(data):
        raise OSError(_errno.EFAULT, os.strerror(_errno.EFAULT))


class _Received:
    """A recvfrom the master performs on its copy of the program's socket: the datagram into
    the program's buffer, its source as the program named it when it sent there."""

    def __init__(self, copy: int, sources: Mapping[tuple[str, int], tuple[str, int]], tid: int,
                 buffer: int, size: int, flags: int, source: int, length_at: int, room: int,
                 wait: bool) -> None:  # fmt: skip
        self.copy, self.sources, self.tid, self.wait = copy, sources, tid, wait
        self.buffer, self.size, self.flags = buffer, size, flags
        self.source, self.length_at, self.room = source, length_at, room

    def perform(self) -> tuple[int, int]:
        """(value, errno) of the call, its results written into the program."""
        sock = socket.socket(fileno=os.dup(self.copy))
        family, data = sock.family, bytearray(self.size)
        try:
            count, address = sock.recvfrom_into(data, self.size, self.flags | socket.MSG_DONTWAIT)
        except OSError as error:
            return -1, error.errno or _errno.EIO
        finally:
            sock.close()
        virtual = self.sources.get((address[0], address[1]))
        if virtual is not None:
            ip = virtual[0]
            if family == socket.AF_INET6 and ":" not in ip:
                ip = "::ffff:" + ip  # an IPv6 socket's view of an IPv4 address
            address = (ip, virtual[1], *address[2:])
        named = _inet_sockaddr(family, address)
        try:
            _write_memory(self.tid, self.buffer, bytes(data[: min(count, self.size)]))
            _write_memory(self.tid, self.source, named[: self.room])
            _write_memory(self.tid, self.length_at, struct.pack("=i", len(named)))
        except OSError:
            return -1, _errno.EFAULT
        return count, 0


def _inet_sockaddr(family: int, address: tuple[Any, ...]) -> bytes:
    """The sockaddr bytes of a Python AF_INET or AF_INET6 address tuple."""
    head = struct.pack("=H", family) + struct.pack("!H", address[1])
    if family == socket.AF_INET:
        return head + socket.inet_pton(family, address[0]) + bytes(8)
    flowinfo, scope = (address[2], address[3]) if len(address) >= 4 else (0, 0)
    ip = socket.inet_pton(family, address[0].split("%")[0])
    return head + struct.pack("!I", flowinfo) + ip + struct.pack("=I", scope)


class _Worker:
    """One thread that performs the master's calls with a caller's credentials.

    Its filesystem ids, groups and umask are its own (raw system calls, and an unshared
    filesystem context), so nothing else in the master changes identity meanwhile.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[
            tuple[Callable[[], Any], _Credentials, queue.SimpleQueue[Any]]
        ]
        self._jobs = queue.SimpleQueue()
        self._own: tuple[int, int, frozenset[int]] | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run(self, job: Callable[[], Any], credentials: _Credentials, inline: bool = False) -> Any:
        """``job()`` as ``credentials``; ``inline``: a job that creates nothing (the umask does
        not matter), which runs in the calling thread when the caller's filesystem ids and
        groups are the master's own (no thread handoff: most calls of most tests)."""
        if inline and self._own is None:
            self._own = (os.geteuid(), os.getegid(), frozenset(os.getgroups()))
        if inline and self._own == (credentials.fsuid, credentials.fsgid,
                                    frozenset(credentials.groups)):  # fmt: skip
            return job()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="libcfake-as-caller",
                                                daemon=True)  # fmt: skip
                self._thread.start()
        answer: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._jobs.put((job, credentials, answer))
        ok, value = answer.get()
        if ok:
            return value
        raise value

    def _loop(self) -> None:
        _syscall(_NR_UNSHARE, _CLONE_FS)
        own_groups = tuple(os.getgroups())
        own_uid, own_gid = os.geteuid(), os.getegid()
        while True:
            job, who, answer = self._jobs.get()
            try:
                try:
                    self._become(who, own_uid)
                    value = job()
                finally:
                    self._restore(own_uid, own_gid, own_groups)
                answer.put((True, value))
            except BaseException as error:
                answer.put((False, error))

    @staticmethod
    def _set_groups(groups: Sequence[int]) -> None:
        """The thread's supplementary groups, set only when they differ: root of a user
        namespace (``unshare -r``) may not call setgroups at all (/proc/self/setgroups says
        "deny"), and its programs mostly keep its groups."""
        if set(groups) != set(os.getgroups()):  # (getgroups(2): this thread's)
            array = (ctypes.c_uint * max(1, len(groups)))(*groups)
            _syscall(_NR_SETGROUPS, len(groups), array)

    @staticmethod
    def _become(who: _Credentials, own_uid: int) -> None:
        if own_uid == 0:
            _Worker._set_groups(who.groups)
        _libc.syscall(ctypes.c_long(_NR_SETFSGID), ctypes.c_long(who.fsgid))
        _libc.syscall(ctypes.c_long(_NR_SETFSUID), ctypes.c_long(who.fsuid))
        # setfsuid answers the previous id whether or not it changed: ask again to know
        fsuid = _libc.syscall(ctypes.c_long(_NR_SETFSUID), ctypes.c_long(-1))
        fsgid = _libc.syscall(ctypes.c_long(_NR_SETFSGID), ctypes.c_long(-1))
        if (fsuid, fsgid) != (who.fsuid, who.fsgid) or (
            own_uid != 0 and set(who.groups) != set(os.getgroups())
        ):
            raise PermissionError(
                _errno.EPERM,
                f"the master cannot act as uid {who.fsuid} gid {who.fsgid} (it runs as "
                f"uid {own_uid}); run it as root or as the program's user",
            )
        _syscall(_NR_UMASK, who.umask)

    @staticmethod
    def _restore(uid: int, gid: int, groups: tuple[int, ...]) -> None:
        _libc.syscall(ctypes.c_long(_NR_SETFSUID), ctypes.c_long(uid))
        _libc.syscall(ctypes.c_long(_NR_SETFSGID), ctypes.c_long(gid))
        if uid == 0:
            _Worker._set_groups(groups)


_WORKER = _Worker()


# -- answers ----------------------------------------------------------------------------------


def _stat_fields(result: Any) -> Any:
    """A stat answer as ``struct lcf_stat`` fields (a cffi view)."""
    if isinstance(result, PackedStat):
        data = result.data
    elif isinstance(result, (StatResult, Mapping)):
        data = protocol.encode_stat(StatResult.coerce(result))
    else:
        raise TypeError(
            "a stat answer is a StatResult, a mapping of its fields, a PackedStat or -1, "
            f"not {result!r}"
        )
    return ffi.from_buffer("struct lcf_stat *", data)


def _kernel_stat(s: Any) -> bytes:
    return _KSTAT.pack(
        s.dev, s.ino, s.nlink, s.mode, s.uid, s.gid, 0, s.rdev, s.size, s.blksize, s.blocks,
        s.atime_sec, s.atime_nsec, s.mtime_sec, s.mtime_nsec, s.ctime_sec, s.ctime_nsec,
    )  # fmt: skip


def _kernel_statx(s: Any, mask: int) -> bytes:
    del mask  # the basic fields are always there, as the kernel fills them whatever was asked
    head = _STATX_HEAD.pack(
        _STATX_BASIC_STATS, s.blksize, 0, s.nlink, s.uid, s.gid, s.mode & 0xFFFF, s.ino,
        s.size, s.blocks, 0,
    )  # fmt: skip
    times = b"".join(
        _STATX_TIME.pack(sec, nsec, 0)
        for sec, nsec in ((s.atime_sec, s.atime_nsec), (0, 0), (s.ctime_sec, s.ctime_nsec),
                          (s.mtime_sec, s.mtime_nsec))
    )  # fmt: skip
    devs = _STATX_DEVS.pack(os.major(s.rdev), os.minor(s.rdev), os.major(s.dev), os.minor(s.dev))
    data = head + times + devs
    return data + bytes(_STATX_SIZE - len(data))


def _errno_number(value: int | OSError) -> int:
    if isinstance(value, OSError):
        if value.errno is None:
            raise ValueError(f"{value!r} carries no errno")
        return int(value.errno)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"errno must be a non-negative int or an OSError, not {value!r}")
    return value


class _Pending:
    """One decoded call waiting for its answer; answered once, from any thread."""

    def __init__(self, supervisor: Supervisor, decoded: _Decoded) -> None:
        self.supervisor = supervisor
        self.decoded = decoded
        self.call = Call(decoded.process, decoded.raw)
        self._lock = threading.Lock()
        self.answered = False

    def _take(self) -> bool:
        with self._lock:
            if self.answered:
                raise RuntimeError(f"{self.call.describe()} was answered already")
            self.answered = True
            return True

    def answer(self, result: Any, fds: Sequence[int], error: int) -> bool:
        d = self.decoded
        plan = self._plan(result, fds, error)  # raises before anything is done
        self._take()
        try:
            return plan()
        finally:
            d.close()

    def passthrough(self) -> bool:
        self._take()
        try:
            return self._perform()
        finally:
            self.decoded.close()

    def refuse(self, code: int) -> bool:
        with self._lock:
            if self.answered:
                return False
            self.answered = True
        try:
            return self._reply(-1, code)
        finally:
            self.decoded.close()

    # -- the kernel's side ---------------------------------------------------------------

    def _reply(self, result: int, error: int = 0) -> bool:
        listener = self.supervisor.listener
        if error:
            return listener.reply(self.decoded.note.id, error=error)
        return listener.reply(self.decoded.note.id, value=result)

    def _valid(self) -> bool:
        return self.supervisor.listener.is_valid(self.decoded.note.id)

    def _write(self, data: bytes) -> bool:
        """Write an answer into the program's buffer and reply 0 (EFAULT for a bad buffer)."""
        if not self._valid():
            return False
        try:
            self.decoded.memory.write(self.decoded.buffer, data)
        except OSError:
            return self._reply(-1, _errno.EFAULT)
        return self._reply(0)

    def _add_fd(self, fd: int) -> bool:
        d = self.decoded
        try:
            if d.kind in ("socket", "listen"):
                self.supervisor.listener.add_fd(
                    d.note.id, fd, cloexec=d.cloexec, answer=False, target=d.socket_number
                )
                if d.kind == "listen":  # the replacement is bound: it listens
                    return self._listen_then_reply(fd)
                return self._reply(0)
            self.supervisor.listener.add_fd(d.note.id, fd, cloexec=d.cloexec)
            return True
        except OSError as error:
            if error.errno == _errno.ENOENT:  # the call is gone
                return False
            if error.errno == _errno.EINPROGRESS:  # answered meanwhile: cannot happen here
                return False
            return self._reply(-1, error.errno or _errno.EIO)

    def _listen_then_reply(self, fd: int) -> bool:
        try:
            _listen_on(fd, self.decoded.backlog)
        except OSError as error:
            return self._reply(-1, error.errno or _errno.EIO)
        return self._reply(0)

    def _plan(self, result: Any, fds: Sequence[int], error: int) -> Callable[[], bool]:
        d = self.decoded
        function = d.raw.function
        is_int = isinstance(result, int) and not isinstance(result, bool)
        if is_int and result == -1:
            if error <= 0:
                raise ValueError(f"a failed {function} (-1) needs an errno")
            if fds:
                raise ValueError(f"a failed {function} (-1) carries no descriptor")
            return lambda: self._reply(-1, error)
        if error:
            raise ValueError(f"errno {error} given with a successful {function} result {result!r}")
        if function == "open_by_handle_at":  # (as the shim: an answer is a refusal)
            return lambda: self._reply(-1, _errno.EPERM)
        if d.kind == "exec" and fds and not error:  # a program that exists only in the model

            def unexecutable() -> bool:
                self.supervisor.report(d.note, f"{os.fsdecode(d.paths[0].text)!r} exists only in "
                                       "the model: only the shim can execute it (the kernel of "
                                       "a trapped exec needs a real file)")  # fmt: skip
                return self._reply(-1, _errno.ENOEXEC)

            return unexecutable
        if len(fds) > 1 or (fds and d.kind not in ("open", "socket", "listen", "chdir", "send")):
            raise ValueError(
                f"{function} replies carry at most one descriptor, and only "
                "open, openat, chdir, connect and bind take one"
            )
        if d.kind in ("stat", "statx"):
            fields = _stat_fields(result)
            data = _kernel_stat(fields) if d.kind == "stat" else _kernel_statx(fields, d.statx_mask)
            return lambda: self._write(data)
        if d.kind == "readlink":
            if isinstance(result, (str, os.PathLike)):
                result = os.fsencode(result)
            if not isinstance(result, bytes) or not result or b"\0" in result:
                raise TypeError(f"readlink answers text of 1 or more bytes without NUL, or -1; "
                                f"not {result!r}")  # fmt: skip
            text = result[: d.size]

            def write_link() -> bool:
                if not self._valid():
                    return False
                try:
                    d.memory.write(d.buffer, text)
                except OSError:
                    return self._reply(-1, _errno.EFAULT)
                return self._reply(len(text))

            return write_link
        if not is_int or result < 0:
            raise TypeError(f"{function} answers an integer >= 0 or -1, not {result!r}")
        if d.kind == "send":  # a probe connected to where the datagram goes, or as given
            return lambda: self._send(_peer_address(fds[0]) if fds else d.sockaddr)
        if d.kind == "chdir" and fds:
            return lambda: self._enter(fds[0])
        if d.kind == "chdir":
            raise NotImplementedError(
                "a supervised program's working directory cannot be changed from the master: "
                "answer chdir with -1 and an errno, or use_slave_credentials()"
            )
        if d.kind == "open":
            if not fds:
                raise ValueError(
                    f"a successful {function} needs the file: use send_with_fds(0, [fd])"
                )
            return lambda: self._add_fd(fds[0])
        if d.kind in ("socket", "listen") and fds:
            return lambda: self._add_fd(fds[0])
        if d.kind == "listen":  # the model bound the program's own socket (or let it be)
            return lambda: self._listen_then_reply(d.socket_copy)
        if d.kind == "exec":
            return lambda: self.supervisor.listener.reply_continue(d.note.id)
        return lambda: self._reply(result)

    def _send(self, sockaddr: bytes) -> bool:
        """A datagram sent by the master from its copy of the program's socket."""
        d = self.decoded
        if not self._valid():
            return False
        try:
            sent = _send_message(d.socket_copy, d.payload, d.control, d.send_flags, sockaddr)
            if d.count_at:
                d.memory.write(d.count_at, struct.pack("=I", sent))
                sent = 1
        except OSError as error:
            return self._reply(-1, error.errno or _errno.EIO)
        return self._reply(sent)

    def _enter(self, fd: int) -> bool:
        """chdir answered with a directory: only the kernel can change a process's working
        directory, so the call goes on when the path, resolved as the kernel will (from the
        program's working directory), is that very directory (a shadow directory entered by a
        relative path, a host directory); otherwise it fails with ENOSYS, reported (a static
        program cannot enter a model directory by its virtual name: start it there, cwd=)."""
        d = self.decoded
        p = d.paths[0]
        try:
            reached = os.stat(p.text, dir_fd=p.dirfd)
            wanted = os.fstat(fd)
            same = (reached.st_dev, reached.st_ino) == (wanted.st_dev, wanted.st_ino)
        except OSError:
            same = False
        if same:
            return self.supervisor.listener.reply_continue(d.note.id)
        self.supervisor.report(
            d.note, f"chdir {os.fsdecode(p.text)!r}: a supervised program's working directory "
            "can be a model directory only if it started there (cwd=) or enters it relatively",
        )  # fmt: skip
        return self._reply(-1, _errno.ENOSYS)

    def _perform(self) -> bool:
        """Passthrough: the master makes the call, as the program, on what it read."""
        d = self.decoded
        raw = d.raw
        function = raw.function
        if d.kind == "send":
            return self._send(d.sockaddr)
        if d.kind == "exec":  # only the kernel can: see the module's docstring for the race
            return self.supervisor.listener.reply_continue(d.note.id)
        if d.kind == "chdir":
            if self.supervisor.chdir_continues:  # see Supervisor: the kernel's own chdir
                return self.supervisor.listener.reply_continue(d.note.id)
            self.supervisor.report(d.note, "chdir cannot be performed for a supervised program")
            return self._reply(-1, _errno.ENOSYS)
        who = d.credentials
        if function == "access":  # access checks with the real ids, eaccess with the fs ids
            who = dataclasses.replace(who, fsuid=who.uid, fsgid=who.gid)
        try:
            reads = d.kind in ("stat", "statx", "readlink") or function in ("access", "eaccess")
            reads = reads or (d.kind == "open" and not raw.flags & (os.O_CREAT | _O_TMPFILE))
            value = _WORKER.run(lambda: self._host_call(), who, inline=reads)
        except OSError as error:
            return self._reply(-1, error.errno or _errno.EIO) if self._valid() else False
        if d.kind in ("stat", "statx"):
            return self._write(value)
        if d.kind == "readlink":
            return self._write_text(value)
        if d.kind == "open":
            if raw.flags & _O_PATH:  # the kernel puts no O_PATH file in another process
                value = self._without_o_path(value, who)
                if value < 0:
                    return self._reply(-1, -value) if self._valid() else False
            try:
                return self._add_fd(value)
            finally:
                os.close(value)
        return self._reply(value) if self._valid() else False

    def _without_o_path(self, fd: int, who: _Credentials) -> int:
        """An O_PATH descriptor opened again for reading, as the caller (SECCOMP_IOCTL_NOTIF_ADDFD
        refuses O_PATH files with EBADF): a directory or file the caller may read gets a
        descriptor of the same file (which, unlike O_PATH, could read it: the caller may);
        anything else (a symlink, a file it may not read) -errno, as before."""
        try:
            info = os.fstat(fd)
            flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
            if stat_module.S_ISDIR(info.st_mode):
                flags |= os.O_DIRECTORY
            elif not stat_module.S_ISREG(info.st_mode):
                return -_errno.EBADF
            return int(_WORKER.run(lambda: os.open(f"/proc/self/fd/{fd}", flags), who))
        except OSError as error:
            return -(error.errno or _errno.EBADF)
        finally:
            os.close(fd)

    def _write_text(self, text: bytes) -> bool:
        d = self.decoded
        text = text[: d.size]
        if not self._valid():
            return False
        try:
            d.memory.write(d.buffer, text)
        except OSError:
            return self._reply(-1, _errno.EFAULT)
        return self._reply(len(text))

    def _host_call(self) -> Any:
        """The call itself, in the worker (as the program). Its value for the answer."""
        d = self.decoded
        raw = d.raw
        function = raw.function
        p = d.paths[0] if d.paths else None
        if d.perform is not None:  # a call on a descriptor
            return d.perform()
        if d.kind == "listen":  # the kernel binds it, as the shim's passthrough lets it
            return _listen_on(d.socket_copy, d.backlog)
        if d.kind == "socket":
            if d.cwd >= 0:  # a relative unix path: the worker's own cwd is its to change
                os.fchdir(d.cwd)
            verb = "connect" if function.startswith("connect") else "bind"
            privileged = function != "bind_unix" and 0 < raw.port < _unprivileged_port()
            if verb == "bind" and privileged and d.credentials.euid != 0:
                raise PermissionError(_errno.EACCES, "a privileged port")
            return _socket_call(verb, d.socket_copy, d.sockaddr)
        assert p is not None
        for path in d.paths[1:] if function == "symlink" else d.paths:  # a target is text
            path.text = _own_proc(path.text, d.process)
        directory = _AT_FDCWD if p.dirfd is None else p.dirfd
        if d.kind == "open":
            if raw.resolve:
                how = ctypes.create_string_buffer(
                    _OPEN_HOW.pack(raw.flags | os.O_CLOEXEC, raw.mode, raw.resolve)
                )
                return _syscall(_SYS["openat2"], directory, ctypes.c_char_p(p.text), how,
                                _OPEN_HOW.size)  # fmt: skip
            return os.open(p.text, raw.flags | os.O_CLOEXEC, raw.mode, dir_fd=p.dirfd)
        if d.kind in ("stat", "statx"):
            statx = (d.statx_mask, d.at_flags) if d.kind == "statx" else None
            return _host_stat(p.dirfd, p.text, d.at_flags, statx)
        if d.kind == "readlink":
            buffer = ctypes.create_string_buffer(d.size)
            n = _syscall(_SYS["readlinkat"], directory, ctypes.c_char_p(p.text), buffer, d.size)
            return buffer.raw[:n]
        if function in ("access", "eaccess"):
            flags = (d.at_flags & _AT_SYMLINK_NOFOLLOW) | _AT_EACCESS
            return _syscall(_SYS["faccessat2"], directory, ctypes.c_char_p(p.text), raw.flags,
                            flags)  # fmt: skip
        if function == "mkdir":
            os.mkdir(p.text, raw.mode, dir_fd=p.dirfd)
        elif function == "unlink":
            os.unlink(p.text, dir_fd=p.dirfd)
        elif function == "rmdir":
            os.rmdir(p.text, dir_fd=p.dirfd)
        elif function == "rename":
            q = d.paths[1]
            _syscall(_SYS["renameat2"], directory, ctypes.c_char_p(p.text),
                     _AT_FDCWD if q.dirfd is None else q.dirfd, ctypes.c_char_p(q.text),
                     raw.flags)  # fmt: skip
        elif function == "symlink":
            q = d.paths[1]
            os.symlink(p.text, q.text, dir_fd=q.dirfd)
        elif function == "link":
            q = d.paths[1]
            os.link(p.text, q.text, src_dir_fd=p.dirfd, dst_dir_fd=q.dirfd,
                    follow_symlinks=bool(raw.flags & _AT_SYMLINK_FOLLOW))  # fmt: skip
        elif function == "chmod":
            _syscall(_SYS["fchmodat2"] if d.at_flags else _SYS["fchmodat"], directory,
                     ctypes.c_char_p(p.text), raw.mode, d.at_flags)  # fmt: skip
        elif function == "chown":
            uid, gid = raw.values[0], raw.values[1]
            os.chown(p.text, uid, gid, dir_fd=p.dirfd,
                     follow_symlinks=not d.at_flags & _AT_SYMLINK_NOFOLLOW)  # fmt: skip
        elif function == "utimens":
            times = ctypes.create_string_buffer(_TIMESPECS.pack(*raw.values))
            _syscall(_SYS["utimensat"], directory, ctypes.c_char_p(p.text), times, d.at_flags)
        elif function == "truncate":
            fd = os.open(p.text, os.O_WRONLY | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=p.dirfd)
            try:
                os.ftruncate(fd, raw.values[0])
            finally:
                os.close(fd)
        elif function == "mknod":
            os.mknod(p.text, raw.mode, raw.values[0], dir_fd=p.dirfd)
        else:
            raise OSError(_errno.ENOSYS, f"no passthrough for {function}")
        return 0


def _own_proc(path: bytes, process: ProcessInfo) -> bytes:
    """/proc/self and /proc/thread-self name the caller's entries: in the master they would
    name its own, so they become the program's by number."""
    for name, own in (
        (b"/proc/self", b"/proc/%d" % process.pid),
        (b"/proc/thread-self", b"/proc/%d/task/%d" % (process.pid, process.tid)),
    ):
        if path == name or path.startswith(name + b"/"):
            return own + path[len(name) :]
    return path


def _unprivileged_port() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start", "rb") as file:
            return int(file.read())
    except (OSError, ValueError):
        return 1024


# -- what the handler sees --------------------------------------------------------------------


class TrappedCall:
    """One trapped call being served: the surface of a LibcService serving one call."""

    def __init__(self, pending: _Pending) -> None:
        self._pending: _Pending | None = pending
        self.call: Call = pending.call
        self._descriptors = list(pending.decoded.descriptors)
        pending.decoded.descriptors = []

    @property
    def function_(self) -> str:
        """The seed's name of the call: "open", "stat", "connect_inet", "exec", ..."""
        return self.call.raw.function

    @property
    def process(self) -> ProcessInfo:
        """Which process and thread made the call."""
        return self.call.process

    def arguments(self) -> tuple[Any, ...]:
        """The arguments as ``libcfake.calls`` lists them."""
        return self.call.arguments()

    def descriptors(self) -> list[int]:
        """The master's copies of the program's directory descriptors (FD_DIR1, FD_DIR2) and
        socket (FD_SOCKET) this call names; yours to close. A second call returns []."""
        fds, self._descriptors = self._descriptors, []
        return fds

    def send(
        self, result: Any, errno: int | OSError = 0, *, canonical_name: str | None = None
    ) -> bool:
        """As :meth:`LibcService.send`; False if the program's call is gone."""
        del canonical_name  # getaddrinfo's only: never trapped
        return self._active().answer(result, (), _errno_number(errno))

    def send_with_fds(
        self, result: Any, fds: Sequence[int | Any], errno: int | OSError = 0, *, watch: int = 0
    ) -> bool:
        """As :meth:`LibcService.send_with_fds`: an open returns a copy of ``fds[0]``; a
        connect or bind's socket is replaced by it. The descriptors stay yours. ``watch`` is
        accepted and has no effect: only the shim watches a descriptor's reads and writes; a
        trapped program's are the kernel's."""
        numbers = [fd if isinstance(fd, int) else fd.fileno() for fd in fds]
        return self._active().answer(result, numbers, _errno_number(errno))

    def use_slave_credentials(self) -> bool:
        """Passthrough: the master performs the call as the program (see the module's doc)."""
        return self._active().passthrough()

    def defer(self) -> Deferred:
        """Set the call aside, to answer it later from any thread."""
        pending = self._active()
        self._pending = None
        return Deferred(pending)

    @property
    def answered(self) -> bool:
        return self._pending is None or self._pending.answered

    def _active(self) -> _Pending:
        if self._pending is None:
            raise RuntimeError(f"{self.call.describe()} was deferred")
        return self._pending


class Deferred:
    """A trapped call set aside by :meth:`TrappedCall.defer`, answered once, from any thread."""

    def __init__(self, pending: _Pending) -> None:
        self._pending = pending
        self.call = pending.call

    def send(
        self, result: Any, errno: int | OSError = 0, *, canonical_name: str | None = None
    ) -> bool:
        del canonical_name
        return self._pending.answer(result, (), _errno_number(errno))

    def send_with_fds(
        self, result: Any, fds: Sequence[int | Any], errno: int | OSError = 0, *, watch: int = 0
    ) -> bool:
        numbers = [fd if isinstance(fd, int) else fd.fileno() for fd in fds]
        return self._pending.answer(result, numbers, _errno_number(errno))

    def use_slave_credentials(self) -> bool:
        return self._pending.passthrough()


# -- the serving loop -------------------------------------------------------------------------


class Supervisor:
    """Serves one launched tree's trapped calls with ``handler(trapped_call)``.

    :meth:`serve` runs the loop in the calling thread (until a process exits, or :meth:`stop`
    from another thread); :meth:`serve_one` answers at most one call. ``on_error`` hears of
    every call the supervisor refused by itself (a :class:`SupervisorError`).

    ``file_devices``: the st_dev of the descriptors the handler hands out (memfds, shadow
    directories); calls on those descriptors are asked, calls on others performed.

    ``intercept(notification)``: asked first about every trapped call; True when it answered
    the call itself (on ``listener``), so the adapter does nothing more with it.

    ``passthrough``: the mounts, host path prefixes whose read-only calls the loop answers
    without the handler and unjournaled, as the shim passes them through itself
    (:class:`~libcfake._seccomp.FastPath`); ``root``: the tree's first process (its ids are read
    once for that); ``snapshot``: the model's metadata snapshot, which answers stats of shadow
    directories' descriptors there; ``datagram_sources``: where each datagram socket's sends
    were routed (see :data:`DatagramSources`), for the sources its recvfrom reports.

    ``chdir_continues``: a passed-through chdir goes on in the kernel (only the kernel can change
    a process's working directory) instead of failing with ENOSYS. Off by default: it is a
    second exception to "never go on with a path the master read". It grants nothing, as every
    later relative path is resolved again from /proc/<pid>/cwd and asked with that directory,
    but a racing thread can make the program enter another directory than the handler saw.
    """

    def __init__(
        self,
        listener: Listener,
        handler: Callable[[TrappedCall], object],
        *,
        on_error: Callable[[SupervisorError], object] | None = None,
        file_devices: Sequence[int] = (),
        chdir_continues: bool = False,
        intercept: Callable[[Notification], bool] | None = None,
        passthrough: Sequence[str] = (),
        root: int = 0,
        snapshot: Snapshot | None = None,
        datagram_sources: DatagramSources | None = None,
    ) -> None:
        self.listener = listener
        listener.wake_synchronously()  # master and program take turns: one CPU, no wake-ups
        self.fast = FastPath(passthrough, file_devices, root, snapshot)
        self.intercept = intercept
        self.chdir_continues = chdir_continues
        self.handler = handler
        self.on_error = on_error
        self._decoder = _Decoder(file_devices, datagram_sources)
        self._wakeup = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._wakeup_lock = threading.Lock()  # stop() from one thread, close() from another
        self._stopped = False
        self._closed = False
        self._serving = 0  # serve() calls running: the fast path is released after the last

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def serve(
        self, until: subprocess.Popen[Any] | None = None, timeout: float | None = None
    ) -> int | None:
        """Answer calls until the process ``until`` (a Popen) exits (its returncode), or until
        :meth:`stop`; after ``timeout`` seconds, TimeoutError (the process is killed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pidfd = os.pidfd_open(until.pid) if until is not None else -1
        with self._wakeup_lock:
            self._serving += 1
        try:
            while not self._stopped and self.listener.fileno() >= 0:
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                if wait == 0.0:
                    if until is not None:
                        until.kill()
                        until.wait()
                    raise TimeoutError(f"still running after {timeout} s")
                # the fast path answers the mounts' reads meanwhile, without the GIL
                event = self.fast.wait(self.listener.fileno(), self._wakeup, pidfd, wait)
                if isinstance(event, Notification):
                    self.dispatch(event)
                elif event != "timeout":
                    break  # woken by stop(), the process exited, or every process is gone
            if until is None:
                return None
            return until.poll() if self._stopped else until.wait()
        finally:
            if pidfd >= 0:
                os.close(pidfd)
            with self._wakeup_lock:
                self._serving -= 1
                if self._closed and not self._serving:
                    self.fast.close()

    def serve_one(self) -> bool:
        """Receive and answer one trapped call (blocks until there is one). False when the
        call vanished before it could be read."""
        note = self.listener.receive()
        if note is None:
            return False
        self.dispatch(note)
        return True

    def dispatch(self, note: Notification) -> None:
        """Decode one notification and answer it through the handler (or refuse it)."""
        if self.intercept is not None:
            try:
                if self.intercept(note):
                    return
            except Exception as error:
                self.report(note, f"deciding failed: {error!r}")
                if self.listener.is_valid(note.id):
                    self.listener.reply(note.id, error=_errno.EIO)
                return
        try:
            decoded = self._decoder.decode(note)
        except _Refusal as refusal:
            if refusal.report:
                self.report(note, str(refusal))
            if self.listener.is_valid(note.id):
                self.listener.reply(note.id, error=refusal.code)
            return
        except OSError as error:  # its memory, its /proc entries: it died, or a bad pointer
            if self.listener.is_valid(note.id):
                code = error.errno or _errno.EIO
                if code not in (_errno.EFAULT, _errno.ENAMETOOLONG, _errno.ENOENT):
                    self.report(note, f"decoding failed: {error}")
                self.listener.reply(note.id, error=code)
            return
        except Exception as error:
            self.report(note, f"decoding failed: {error!r}")
            if self.listener.is_valid(note.id):
                self.listener.reply(note.id, error=_errno.EIO)
            return
        if isinstance(decoded, _Continue):
            self.listener.reply_continue(note.id)
            return
        if isinstance(decoded, _Received):  # performed in a thread of its own: it may wait
            thread = threading.Thread(target=self._receive, args=(note, decoded), daemon=True,
                                      name=f"libcfake-recvfrom-{note.pid}")  # fmt: skip
            thread.start()
            return
        if not isinstance(decoded, _Decoded):  # answered by the adapter itself
            if self.listener.is_valid(note.id):
                value, code = decoded()
                self.listener.reply(note.id, value=value, error=code)
            return
        if not self.listener.is_valid(note.id):  # it vanished while its memory was read
            decoded.close()
            for fd in decoded.descriptors:
                os.close(fd)
            return
        pending = _Pending(self, decoded)
        trapped = TrappedCall(pending)
        try:
            self.handler(trapped)
        except Exception as error:
            if not trapped.answered:
                pending.refuse(_errno.EIO)
            self.report(note, f"the handler failed on {trapped.call.describe()}: {error!r}")
            return
        finally:
            for fd in trapped._descriptors:  # the ones the handler did not take
                os.close(fd)
            trapped._descriptors = []
        if trapped._pending is not None and not pending.answered:
            pending.refuse(_errno.EIO)
            self.report(note, f"the handler did not answer {trapped.call.describe()}")

    def _receive(self, note: Notification, received: _Received) -> None:
        """A recvfrom the master performs (see _Decoder._recvfrom): waits for a datagram (while
        the call still waits and the supervisor serves), receives it, answers."""
        try:
            readable = select.poll()
            readable.register(received.copy, select.POLLIN)
            while True:
                while received.wait and not self._stopped and not readable.poll(200):
                    if not self.listener.is_valid(note.id):
                        return  # the program's thread is gone (killed)
                try:
                    value, code = received.perform()
                except Exception as error:  # a bug of ours: the call fails, never hangs
                    self.report(note, f"receiving failed: {error!r}")
                    value, code = -1, _errno.EIO
                if not (code == _errno.EAGAIN and received.wait and not self._stopped):
                    break  # (EAGAIN: another thread took the datagram; a blocking call waits on)
            if self.listener.fileno() >= 0 and self.listener.is_valid(note.id):
                self.listener.reply(note.id, value=value, error=code)
        except OSError:
            pass  # the listener closed under it: the call failed with ENOSYS
        finally:
            os.close(received.copy)

    def report(self, note: Notification, message: str) -> None:
        if self.on_error is not None:
            self.on_error(SupervisorError(note.name, note.pid, message))

    def stop(self) -> None:
        """Make :meth:`serve` return (from any thread)."""
        self._stopped = True
        with self._wakeup_lock:  # (never a descriptor close() gave back, which may be reused)
            if self._wakeup >= 0:
                os.eventfd_write(self._wakeup, 1)

    def close(self) -> None:
        """Stop, and close the listener: every trapped call fails with ENOSYS from now on."""
        self.stop()
        self.listener.close()
        with self._wakeup_lock:
            self._closed = True
            if not self._serving:  # else the last serve() releases it, its C wait over
                self.fast.close()
            if self._wakeup >= 0:
                os.close(self._wakeup)
                self._wakeup = -1
