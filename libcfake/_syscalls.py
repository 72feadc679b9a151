"""Decoding a trapped system call into the shim's vocabulary: :class:`Decoder` reads a
notification's arguments from the program's memory and makes of it the request the shim would
have sent (a :class:`~libcfake.protocol.RawCall`, the same ``function`` names, fields and
descriptor bits, ``symbol`` being the system call's name), or decides it alone: a call that goes
on as made (:data:`CONTINUE`), a refusal (:class:`CallRefused`), a datagram to receive
(:class:`Received`). The supervisor (``_supervisor.py``) answers what it decoded.

The one exception to answering is exec (``execve``, ``execveat``): only the kernel can replace the
program's image, so an allowed exec goes on (``SECCOMP_USER_NOTIF_FLAG_CONTINUE``). That is a
race: a second thread of the program may change the path between the master's check and the
kernel's read of it, and execute another file than the one allowed. The new image stays under
the filter, so what it does is still trapped; only the choice of the file is not enforced. An
exec of a descriptor (``execveat(fd, "", AT_EMPTY_PATH)``, or its ``/proc/self/fd/N``) goes on
without asking when the file is one of the handler's memfds (the shim runs a program of the
model so, after the handler answered its exec with it); any other descriptor's file is asked
about as an exec of the path /proc gives it, as the shim's fexecve asks.

Calls on a descriptor (fstat, which static glibc makes as ``newfstatat(fd, "", AT_EMPTY_PATH)``,
fchmod, fchown, futimens and the empty-path forms of their ``*at`` calls) reach the handler, as
"fstat", "fchmod", "fchown" or "futimens" with the file in FD_FILE, only for a file on one of the
``file_devices`` (the handler's memfds and shadow directories, as LibcService's ``file_devices``);
on the program's own files the master performs them on its copy of the descriptor.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno as _errno
import functools
import itertools
import os
import re
import resource
import socket
import stat as stat_module
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import _seccomp, protocol
from ._host import (
    AT_EACCESS,
    AT_EMPTY_PATH,
    AT_FDCWD,
    AT_REMOVEDIR,
    AT_SYMLINK_FOLLOW,
    AT_SYMLINK_NOFOLLOW,
    CMSG_HEAD,
    IOVEC,
    MAX_DATAGRAM,
    MMSGHDR_SIZE,
    MSG_FASTOPEN,
    MSGHDR,
    O_TMPFILE,
    OPEN_HOW,
    STATFS_SIZE,
    SYS,
    TIMESPECS,
    UTIME_NOW,
    WORKER,
    Credentials,
    ProcessMemory,
    attribute_call,
    chown_ids,
    descriptor_cloexec,
    host_stat,
    inet_sockaddr,
    listen_on,
    process_status,
    raw_syscall,
    send_message,
    socket_call,
    socket_option,
    socket_unbound,
    thread_pidfd,
    write_process_memory,
)
from ._seccomp import Notification
from .protocol import FD_DIR1, FD_DIR2, FD_FILE, FD_SOCKET, ProcessInfo, RawCall

#: a program's own descriptor by name, once own_proc spelled /proc/self by number
_OWN_DESCRIPTOR = re.compile(rb"/(?:dev|proc/(?P<pid>\d+)(?:/task/\d+)?)/fd/(?P<fd>\d+)")


class Continue:
    """What :meth:`Decoder.decode` returns for a call that goes on in the kernel as made:
    nothing in the program's memory decides its outcome."""


CONTINUE = Continue()


#: For a datagram socket (by inode), the addresses the programs named in their sends to it,
#: by the real address each was sent to: ``{(real ip, port): (virtual ip, port)}``, or None.
DatagramSources = Callable[[int], Mapping[tuple[str, int], tuple[str, int]] | None]


class CallRefused(Exception):
    """Decoding stops: the call fails with ``code``; ``report`` says whether on_error hears."""

    def __init__(self, code: int, reason: str = "", report: bool = False) -> None:
        super().__init__(reason or os.strerror(code))
        self.code = code
        self.report = report


@dataclasses.dataclass
class PathArgument:
    """A path as the program named it: ``text`` (bytes read from its memory), and ``dirfd``: the
    master's copy of the program's directory descriptor, or of its cwd, or None (absolute)."""

    text: bytes
    dirfd: int | None
    cwd: bool = False  # relative to the program's working directory


@dataclasses.dataclass
class Decoded:
    """A trapped call decoded: the shim's request, and what answering it needs."""

    note: Notification
    raw: RawCall
    process: ProcessInfo
    credentials: Credentials
    memory: ProcessMemory
    paths: list[PathArgument]
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


class Decoder:
    """Reads one notification into a :class:`Decoded`."""

    def __init__(
        self, file_devices: Sequence[int] = (), datagram_sources: DatagramSources | None = None
    ) -> None:
        #: each thread's ProcessInfo and credentials, read from /proc once (it costs 100 us) and
        #: forgotten when any thread of the tree changes its ids or umask, or executes
        self._who: dict[int, tuple[ProcessInfo, Credentials]] = {}
        self._seq = itertools.count(1)
        self.file_devices = frozenset(file_devices)
        self.datagram_sources = datagram_sources

    def decode(
        self, note: Notification
    ) -> Decoded | Callable[[], tuple[int, int]] | Continue | Received:
        """The decoded call, or for a call the adapter answers by itself (an fstat of a program's
        descriptor), a function that performs it (returning (value, errno))."""
        name = note.name
        if name in _CREDENTIAL_CALLS:  # trapped only to know their callers' ids changed
            self._who.clear()
            return CONTINUE
        method = getattr(self, f"_{name}", None) if name in SERVED else None
        if method is None:
            raise CallRefused(_errno.ENOSYS, f"the supervisor does not serve {name}", report=True)
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
            raise CallRefused(error.errno, why, report=True) from None

    def who(self, tid: int) -> tuple[ProcessInfo, Credentials]:
        """The thread's ProcessInfo and credentials (OSError when it is gone). What was kept is
        read again after the process executed another program: a dynamic program's exec goes
        through the shim's gate, untrapped, so only its /proc/TID/exe tells."""
        who = self._who.get(tid)
        if who is not None and who[0].exe != _exe_of(tid):
            who = None
        if who is None:
            if len(self._who) > 4096:
                self._who.clear()
            who = self._who[tid] = process_status(tid)
        return who

    def _decode(
        self, note: Notification, method: Callable[[Decoded, tuple[int, ...]], Any]
    ) -> Decoded | Callable[[], tuple[int, int]] | Continue:
        info, credentials = self.who(note.pid)
        memory = ProcessMemory(note.pid)
        decoded = Decoded(note, _EMPTY, info, credentials, memory, [], [], [])
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

    def _pidfd_getfd(self, d: Decoded, number: int) -> int:
        pidfd = thread_pidfd(d.note.pid, d.process.pid)
        try:
            fd = raw_syscall(_seccomp._SYS_PIDFD_GETFD, pidfd, number, 0)
        except OSError as error:
            raise CallRefused(error.errno or _errno.EBADF) from None
        finally:
            os.close(pidfd)
        d.owned.append(fd)
        return fd

    def _path(
        self, d: Decoded, dirfd: int, address: int, *, empty_ok: bool = False
    ) -> PathArgument:
        """Read a path argument; relative ones get the master's copy of their directory."""
        text = d.memory.string(address)
        if not text and not empty_ok:
            raise CallRefused(_errno.ENOENT)
        dirfd = ctypes.c_int(dirfd & 0xFFFFFFFF).value  # the kernel reads an int
        if text.startswith(b"/"):
            path = PathArgument(text, None)
        elif dirfd == AT_FDCWD:
            cwd = os.open(f"/proc/{d.note.pid}/cwd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            d.owned.append(cwd)
            path = PathArgument(text, cwd, cwd=True)
        else:
            if dirfd < 0:
                raise CallRefused(_errno.EBADF)
            path = PathArgument(text, self._pidfd_getfd(d, dirfd))
        d.paths.append(path)
        return path

    def _as_sent(self, d: Decoded, path: PathArgument, bit: int) -> tuple[bytes, int]:
        """The path as the shim sends it: absolute as given, cwd-relative joined with the cwd,
        dirfd-relative as given with a copy of the dirfd for the handler (``bit``)."""
        if path.dirfd is None:
            return path.text, 0
        if path.cwd:
            cwd = os.fsencode(os.readlink(f"/proc/{d.note.pid}/cwd"))
            joined = cwd.rstrip(b"/") + b"/" + path.text
            if len(joined) > protocol.MAX_PATH:
                raise CallRefused(_errno.ENAMETOOLONG)
            return joined, 0
        d.descriptors.append(os.dup(path.dirfd))
        return path.text, bit

    def _request(
        self, d: Decoded, function: str, kind: str, p1: PathArgument | None = None,
        p2: PathArgument | None = None, *, string1: bytes | None = None, flags: int = 0,
        mode: int = 0, resolve: int = 0, values: tuple[int, int, int, int] = (0, 0, 0, 0),
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
        self, d: Decoded, fd: int, function: str, kind: str, perform: Callable[[int], Any], *,
        mode: int = 0, values: tuple[int, int, int, int] = (0, 0, 0, 0), buffer: int = 0,
        statx_mask: int = 0, as_caller: bool = True, ask: bool = True,
    ) -> Callable[[], tuple[int, int]] | None:  # fmt: skip
        """A call on a descriptor (fstat, fchmod, fchown, futimens: also their *at forms with an
        empty path). On a file of the handler's (its st_dev in ``file_devices``) it is asked as
        the shim asks it, the file in FD_FILE; on one of the program's own it is performed on
        the master's copy of it (as the program), with no handler: nothing in memory decides."""
        fd = ctypes.c_int(fd & 0xFFFFFFFF).value
        if fd == AT_FDCWD:
            copy = os.open(f"/proc/{d.note.pid}/cwd", os.O_PATH | os.O_CLOEXEC)
            d.owned.append(copy)
        elif fd < 0:
            raise CallRefused(_errno.EBADF)
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
            value = WORKER.run(call, credentials) if as_caller else call()
            if kind in ("stat", "statx"):
                memory.write(buffer, value)
                return 0, 0
            return int(value), 0

        return _answered_by(performed, owned)

    def _performed(self, d: Decoded, perform: Callable[[], Any]) -> Callable[[], tuple[int, int]]:
        """A call the shim leaves to libc: the master performs it as the program, no handler."""
        owned, d.owned = d.owned, []
        credentials = d.credentials
        return _answered_by(lambda: (int(WORKER.run(perform, credentials)), 0), owned)

    def _empty_path(self, d: Decoded, address: int, flags: int) -> bool:
        """Whether (path, flags) names the descriptor itself: "" with AT_EMPTY_PATH."""
        return bool(flags & AT_EMPTY_PATH) and address != 0 and d.memory.string(address) == b""

    # -- the calls, by system call name ------------------------------------------------------

    def _open(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._opening(d, "open", AT_FDCWD, a[0], a[1], a[2])

    def _creat(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._opening(d, "open", AT_FDCWD, a[0], os.O_CREAT | os.O_WRONLY | os.O_TRUNC, a[1])

    def _openat(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._opening(d, "openat", a[0], a[1], a[2], a[3])

    def _openat2(self, d: Decoded, a: tuple[int, ...]) -> None:
        if a[3] < OPEN_HOW.size:
            raise CallRefused(_errno.EINVAL)
        flags, mode, resolve = OPEN_HOW.unpack(d.memory.read(a[2], OPEN_HOW.size))
        self._opening(d, "openat", a[0], a[1], flags, mode, resolve)

    def _opening(self, d: Decoded, function: str, dirfd: int, address: int, flags: int,
                 mode: int, resolve: int = 0) -> None:  # fmt: skip
        flags &= 0xFFFFFFFF
        needs_mode = bool(flags & os.O_CREAT) or flags & O_TMPFILE == O_TMPFILE
        p = self._path(d, dirfd, address)
        self._request(d, function, "open", p, flags=flags, mode=(mode & 0o7777) if needs_mode
                      else 0, resolve=resolve)  # fmt: skip
        d.cloexec = bool(flags & os.O_CLOEXEC)

    def _stat(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._stating(d, "stat", AT_FDCWD, a[0], a[1], 0)

    def _lstat(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._stating(d, "lstat", AT_FDCWD, a[0], a[1], AT_SYMLINK_NOFOLLOW)

    def _fstat(self, d: Decoded, a: tuple[int, ...]) -> Any:
        return self._on_descriptor(d, a[0], "fstat", "stat",
                                   lambda fd: host_stat(fd, b"", AT_EMPTY_PATH, None),
                                   buffer=a[1], as_caller=False)  # fmt: skip

    def _newfstatat(self, d: Decoded, a: tuple[int, ...]) -> Any:
        flags = a[3] & 0xFFFFFFFF
        if self._empty_path(d, a[1], flags):
            return self._on_descriptor(d, a[0], "fstat", "stat",
                                       lambda fd: host_stat(fd, b"", flags, None),
                                       buffer=a[2], as_caller=False)  # fmt: skip
        function = "lstat" if flags & AT_SYMLINK_NOFOLLOW else "stat"
        self._stating(d, function, a[0], a[1], a[2], flags)
        return None

    def _statx(self, d: Decoded, a: tuple[int, ...]) -> Any:
        flags, mask = a[2] & 0xFFFFFFFF, a[3] & 0xFFFFFFFF
        if self._empty_path(d, a[1], flags):
            return self._on_descriptor(d, a[0], "fstat", "statx",
                                       lambda fd: host_stat(fd, b"", flags, (mask, flags)),
                                       buffer=a[4], statx_mask=mask, as_caller=False)  # fmt: skip
        function = "lstat" if flags & AT_SYMLINK_NOFOLLOW else "stat"
        self._stating(d, function, a[0], a[1], a[4], flags)
        d.kind, d.statx_mask = "statx", a[3] & 0xFFFFFFFF
        return None

    def _stating(self, d: Decoded, function: str, dirfd: int, address: int, buffer: int,
                 flags: int) -> None:  # fmt: skip
        p = self._path(d, dirfd, address)
        self._request(d, function, "stat", p)
        d.buffer, d.at_flags = buffer, flags

    def _access(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._accessing(d, AT_FDCWD, a[0], a[1], 0)

    def _faccessat(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._accessing(d, a[0], a[1], a[2], 0)

    def _faccessat2(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._accessing(d, a[0], a[1], a[2], a[3] & 0xFFFFFFFF)

    def _accessing(self, d: Decoded, dirfd: int, address: int, amode: int, flags: int) -> Any:
        if self._empty_path(d, address, flags):  # no function of the shim's: performed
            return self._on_descriptor(
                d, dirfd, "access", "plain", ask=False,
                perform=lambda fd: raw_syscall(SYS["faccessat2"], fd, b"", amode, flags),
            )  # fmt: skip
        p = self._path(d, dirfd, address)
        function = "eaccess" if flags & AT_EACCESS else "access"
        self._request(d, function, "plain", p, flags=amode & 0xFFFFFFFF)
        d.at_flags = flags
        return None

    def _mkdir(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._request(d, "mkdir", "plain", self._path(d, AT_FDCWD, a[0]), mode=a[1] & 0o7777)

    def _mkdirat(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._request(d, "mkdir", "plain", self._path(d, a[0], a[1]), mode=a[2] & 0o7777)

    def _unlink(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._request(d, "unlink", "plain", self._path(d, AT_FDCWD, a[0]))

    def _rmdir(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._request(d, "rmdir", "plain", self._path(d, AT_FDCWD, a[0]))

    def _unlinkat(self, d: Decoded, a: tuple[int, ...]) -> None:
        flags = a[2] & 0xFFFFFFFF
        if flags & ~AT_REMOVEDIR:
            raise CallRefused(_errno.EINVAL)
        function = "rmdir" if flags & AT_REMOVEDIR else "unlink"
        self._request(d, function, "plain", self._path(d, a[0], a[1]))

    def _rename(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._renaming(d, AT_FDCWD, a[0], AT_FDCWD, a[1], 0)

    def _renameat(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._renaming(d, a[0], a[1], a[2], a[3], 0)

    def _renameat2(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._renaming(d, a[0], a[1], a[2], a[3], a[4] & 0xFFFFFFFF)

    def _renaming(self, d: Decoded, olddir: int, old: int, newdir: int, new: int,
                  flags: int) -> None:  # fmt: skip
        p1, p2 = self._path(d, olddir, old), self._path(d, newdir, new)
        self._request(d, "rename", "plain", p1, p2, flags=flags)

    def _readlink(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._reading_link(d, AT_FDCWD, a[0], a[1], a[2])

    def _readlinkat(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._reading_link(d, a[0], a[1], a[2], a[3])

    def _reading_link(self, d: Decoded, dirfd: int, address: int, buffer: int,
                      size: int) -> None:  # fmt: skip
        size = ctypes.c_int(size & 0xFFFFFFFF).value
        if size <= 0:
            raise CallRefused(_errno.EINVAL)
        self._request(d, "readlink", "readlink", self._path(d, dirfd, address))
        d.buffer, d.size = buffer, size

    def _symlink(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._linking_symbolically(d, a[0], AT_FDCWD, a[1])

    def _symlinkat(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._linking_symbolically(d, a[0], a[1], a[2])

    def _linking_symbolically(self, d: Decoded, target: int, dirfd: int, address: int) -> None:
        text = d.memory.string(target)
        if not text:
            raise CallRefused(_errno.ENOENT)
        d.paths.append(PathArgument(text, None))  # paths[0]: the target, as given
        link = self._path(d, dirfd, address)
        self._request(d, "symlink", "plain", None, link, string1=text)

    def _link(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._linking(d, AT_FDCWD, a[0], AT_FDCWD, a[1], 0)

    def _linkat(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._linking(d, a[0], a[1], a[2], a[3], a[4] & 0xFFFFFFFF)

    def _linking(self, d: Decoded, olddir: int, old: int, newdir: int, new: int,
                 flags: int) -> None:  # fmt: skip
        if flags & ~AT_SYMLINK_FOLLOW:
            raise CallRefused(_errno.ENOSYS, "linkat with AT_EMPTY_PATH", report=True)
        p1, p2 = self._path(d, olddir, old), self._path(d, newdir, new)
        self._request(d, "link", "plain", p1, p2, flags=flags)

    def _chmod(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._request(d, "chmod", "plain", self._path(d, AT_FDCWD, a[0]), mode=a[1] & 0o7777)

    def _fchmodat(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._request(d, "chmod", "plain", self._path(d, a[0], a[1]), mode=a[2] & 0o7777)

    def _fchmod(self, d: Decoded, a: tuple[int, ...]) -> Any:
        mode = a[1] & 0o7777
        return self._on_descriptor(
            d, a[0], "fchmod", "plain", mode=mode,
            perform=lambda fd: raw_syscall(SYS["fchmod"], fd, mode),
        )  # fmt: skip

    def _fchmodat2(self, d: Decoded, a: tuple[int, ...]) -> Any:
        flags, mode = a[3] & 0xFFFFFFFF, a[2] & 0o7777
        if self._empty_path(d, a[1], flags):
            return self._on_descriptor(
                d, a[0], "fchmod", "plain", mode=mode,
                perform=lambda fd: raw_syscall(SYS["fchmodat2"], fd, b"", mode, flags),
            )  # fmt: skip
        if flags & ~AT_SYMLINK_NOFOLLOW:
            raise CallRefused(_errno.EINVAL)
        p = self._path(d, a[0], a[1])
        self._request(d, "chmod", "plain", p, mode=mode, flags=flags)
        d.at_flags = flags
        return None

    def _chown(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._owning(d, AT_FDCWD, a[0], a[1], a[2], 0)

    def _lchown(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._owning(d, AT_FDCWD, a[0], a[1], a[2], AT_SYMLINK_NOFOLLOW)

    def _fchown(self, d: Decoded, a: tuple[int, ...]) -> Any:
        uid, gid = chown_ids(a[1], a[2])
        return self._on_descriptor(
            d, a[0], "fchown", "plain", values=(uid, gid, 0, 0),
            perform=lambda fd: raw_syscall(SYS["fchown"], fd, a[1] & 0xFFFFFFFF, a[2] & 0xFFFFFFFF),
        )  # fmt: skip

    def _fchownat(self, d: Decoded, a: tuple[int, ...]) -> Any:
        flags = a[4] & 0xFFFFFFFF
        if self._empty_path(d, a[1], flags):
            uid, gid = chown_ids(a[2], a[3])
            return self._on_descriptor(
                d, a[0], "fchown", "plain", values=(uid, gid, 0, 0),
                perform=lambda fd: raw_syscall(SYS["fchownat"], fd, b"", a[2] & 0xFFFFFFFF,
                                            a[3] & 0xFFFFFFFF, flags),
            )  # fmt: skip
        self._owning(d, a[0], a[1], a[2], a[3], flags)
        return None

    def _owning(self, d: Decoded, dirfd: int, address: int, uid: int, gid: int,
                flags: int) -> None:  # fmt: skip
        if flags & ~AT_SYMLINK_NOFOLLOW:
            raise CallRefused(_errno.EINVAL)
        ids = chown_ids(uid, gid)
        p = self._path(d, dirfd, address)
        self._request(d, "chown", "plain", p, flags=flags, values=(ids[0], ids[1], 0, 0))
        d.at_flags = flags

    def _utimensat(self, d: Decoded, a: tuple[int, ...]) -> Any:
        flags = a[3] & 0xFFFFFFFF
        if a[2] == 0:
            times = (0, UTIME_NOW, 0, UTIME_NOW)
        else:
            times = TIMESPECS.unpack(d.memory.read(a[2], TIMESPECS.size))
        if a[1] == 0 or self._empty_path(d, a[1], flags):  # futimens
            path = None if a[1] == 0 else b""
            packed = ctypes.create_string_buffer(TIMESPECS.pack(*times))
            return self._on_descriptor(
                d, a[0], "futimens", "plain", values=(times[0], times[1], times[2], times[3]),
                perform=lambda fd: raw_syscall(SYS["utimensat"], fd, path, packed, flags),
            )  # fmt: skip
        self._timing(d, a[0], a[1], times, flags)
        return None

    def _utimes(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._timing_micro(d, AT_FDCWD, a[0], a[1])

    def _futimesat(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._timing_micro(d, a[0], a[1], a[2])

    def _timing_micro(self, d: Decoded, dirfd: int, address: int, times: int) -> None:
        if times == 0:
            values = (0, UTIME_NOW, 0, UTIME_NOW)
        else:
            s1, u1, s2, u2 = TIMESPECS.unpack(d.memory.read(times, TIMESPECS.size))
            values = (s1, u1 * 1000, s2, u2 * 1000)
        self._timing(d, dirfd, address, values, 0)

    def _timing(self, d: Decoded, dirfd: int, address: int, times: tuple[int, ...],
                flags: int) -> None:  # fmt: skip
        p = self._path(d, dirfd, address)
        values = (times[0], times[1], times[2], times[3])
        self._request(d, "utimens", "plain", p, flags=flags & AT_SYMLINK_NOFOLLOW, values=values)
        d.at_flags = flags & AT_SYMLINK_NOFOLLOW

    def _truncate(self, d: Decoded, a: tuple[int, ...]) -> None:
        length = ctypes.c_long(a[1]).value
        p = self._path(d, AT_FDCWD, a[0])
        self._request(d, "truncate", "plain", p, values=(length, 0, 0, 0))

    def _mknod(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._making_node(d, AT_FDCWD, a[0], a[1], a[2])

    def _mknodat(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._making_node(d, a[0], a[1], a[2], a[3])

    def _making_node(self, d: Decoded, dirfd: int, address: int, mode: int, dev: int) -> None:
        p = self._path(d, dirfd, address)
        self._request(d, "mknod", "plain", p, mode=mode & 0xFFFFFFFF,
                      values=(dev & 0xFFFFFFFF, 0, 0, 0))  # fmt: skip

    def _chdir(self, d: Decoded, a: tuple[int, ...]) -> None:
        self._request(d, "chdir", "chdir", self._path(d, AT_FDCWD, a[0]))

    def _statfs(self, d: Decoded, a: tuple[int, ...]) -> Callable[[], tuple[int, int]]:
        """statfs, which the shim leaves to libc: performed by the master as the program."""
        p = self._path(d, AT_FDCWD, a[0])
        text = own_proc(p.text, d.process)
        path = text if p.dirfd is None else b"/proc/self/fd/%d/%s" % (p.dirfd, text)
        owned, d.owned = d.owned, []
        memory, credentials, buffer = d.memory, d.credentials, a[1]

        def performed() -> tuple[int, int]:
            data = ctypes.create_string_buffer(STATFS_SIZE)
            WORKER.run(lambda: raw_syscall(SYS["statfs"], path, data), credentials)
            memory.write(buffer, data.raw)
            return 0, 0

        return _answered_by(performed, owned)

    def _getxattr(self, d: Decoded, a: tuple[int, ...]) -> None:
        raise CallRefused(_errno.ENOTSUP)  # as the shim on the model's files: no attributes

    _lgetxattr = _listxattr = _llistxattr = _getxattr

    def _changing_attribute(self, d: Decoded, a: tuple[int, ...], function: str,
                            nofollow: int) -> Any:  # fmt: skip
        """setxattr and removexattr, as the shim asks them: the name in string2, XATTR_* flags
        in mode, AT_SYMLINK_NOFOLLOW in flags for the l-forms; the file in FD_FILE for the
        f-forms. The value travels only to the passthrough."""
        name = d.memory.string(a[1])
        if not 0 < len(name) <= 255:
            raise CallRefused(_errno.ERANGE)
        setting = "setxattr" in function
        value = b""
        xflags = 0
        if setting:
            size = a[3]
            if size > 65536:
                raise CallRefused(_errno.E2BIG)
            value = d.memory.read(a[2], size)
            xflags = a[4] & 0xFFFFFFFF
        if function.startswith("f"):
            fd = ctypes.c_int(a[0] & 0xFFFFFFFF).value
            if fd < 0:
                raise CallRefused(_errno.EBADF)
            copy = self._pidfd_getfd(d, fd)
            perform = functools.partial(attribute_call, copy, name, value, xflags, setting)
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
        p = self._path(d, AT_FDCWD, a[0])
        self._request(d, function, "plain", p, flags=nofollow, mode=xflags)
        d.raw = d.raw._replace(string2=name)
        path = (
            own_proc(p.text, d.process)
            if p.dirfd is None
            else b"/proc/self/fd/%d/%s" % (p.dirfd, p.text)  # the master's copy of the cwd
        )
        d.perform = functools.partial(attribute_call, path, name, value, xflags, setting,
                                      not nofollow)  # fmt: skip
        return None

    # the six calls, each the shim's function with or without AT_SYMLINK_NOFOLLOW
    _setxattr = functools.partialmethod(_changing_attribute, function="setxattr", nofollow=0)
    _lsetxattr = functools.partialmethod(
        _changing_attribute, function="setxattr", nofollow=AT_SYMLINK_NOFOLLOW
    )
    _fsetxattr = functools.partialmethod(_changing_attribute, function="fsetxattr", nofollow=0)
    _removexattr = functools.partialmethod(_changing_attribute, function="removexattr", nofollow=0)
    _lremovexattr = functools.partialmethod(
        _changing_attribute, function="removexattr", nofollow=AT_SYMLINK_NOFOLLOW
    )
    _fremovexattr = functools.partialmethod(
        _changing_attribute, function="fremovexattr", nofollow=0
    )

    def _name_to_handle_at(self, d: Decoded, a: tuple[int, ...]) -> None:
        """A file handle names a file whatever path leads to it, and only the kernel's
        filesystems make them: the model's have none, as a filesystem without export
        operations (/proc, FUSE) answers. Programs that use them (systemd's mount checks) fall
        back to paths then."""
        raise CallRefused(_errno.EOPNOTSUPP)

    def _open_by_handle_at(self, d: Decoded, a: tuple[int, ...]) -> None:
        """Asked as the shim asks it: the mount descriptor in FD_FILE, the flags (a handle,
        forged or not, is no path to decide on: the Sandbox refuses it)."""
        fd = ctypes.c_int(a[0] & 0xFFFFFFFF).value
        if fd < 0:
            raise CallRefused(_errno.EBADF)
        d.descriptors.append(os.dup(self._pidfd_getfd(d, fd)))
        d.raw = RawCall(
            next(self._seq) & 0xFFFFFFFF, "open_by_handle_at", d.note.name, a[2] & 0xFFFFFFFF, 0,
            0, FD_FILE, 0, 0, 0, 0, 0, 0, bytes(16), None, None, (0, 0, 0, 0),
        )  # fmt: skip
        d.kind = "plain"

    def _execve(self, d: Decoded, a: tuple[int, ...]) -> Continue | None:
        return self._executing(d, AT_FDCWD, a[0], 0)

    def _execveat(self, d: Decoded, a: tuple[int, ...]) -> Continue | None:
        flags = a[4] & 0xFFFFFFFF
        if self._empty_path(d, a[1], flags):
            return self._executing_descriptor(d, a[0])
        return self._executing(d, a[0], a[1], flags)

    def _executing_descriptor(self, d: Decoded, fd: int) -> Continue | None:
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
        d.paths = [PathArgument(link, None)]
        self._request(d, "exec", "exec", d.paths[0], mode=info.st_mode)
        d.at_flags = AT_EMPTY_PATH
        return None

    def _executing(self, d: Decoded, dirfd: int, address: int, flags: int) -> Continue | None:
        p = self._path(d, dirfd, address)
        own = _OWN_DESCRIPTOR.fullmatch(own_proc(p.text, d.process)) if p.dirfd is None else None
        if own is not None and int(own["pid"] or d.process.pid) == d.process.pid:
            # its own descriptor by name (glibc's posix_spawn of the shim's model program, and
            # fexecve without execveat): the kernel follows the magic link to that open file
            return self._executing_descriptor(d, int(own["fd"]))
        try:  # (/proc/self: the program's, not the master's)
            mode = os.stat(own_proc(p.text, d.process), dir_fd=p.dirfd).st_mode
        except OSError:
            mode = 0
        self._request(d, "exec", "exec", p, mode=mode)
        d.at_flags = flags
        return None

    def _connect(self, d: Decoded, a: tuple[int, ...]) -> Any:
        return self._addressing(d, "connect", a[0], a[1], a[2])

    def _bind(self, d: Decoded, a: tuple[int, ...]) -> Any:
        return self._addressing(d, "bind", a[0], a[1], a[2])

    def _addressing(self, d: Decoded, verb: str, fd: int, address: int, length: int) -> Any:
        fd = ctypes.c_int(fd & 0xFFFFFFFF).value
        length = ctypes.c_int(length & 0xFFFFFFFF).value
        if length < 0 or length > 128:
            raise CallRefused(_errno.EINVAL)
        if fd < 0:
            raise CallRefused(_errno.EBADF)
        sockaddr = d.memory.read(address, length)
        copy, domain, socktype, proto = self._socket(d, fd)
        return self._asking(d, verb, d.note.name, fd, copy, sockaddr, domain, socktype, proto)

    def _socket(self, d: Decoded, fd: int) -> tuple[int, int, int, int]:
        """The master's copy of the program's socket ``fd``, its domain, type and protocol."""
        copy = self._pidfd_getfd(d, fd)
        try:
            domain = socket_option(copy, socket.SO_DOMAIN)
            socktype = socket_option(copy, socket.SO_TYPE)
            proto = socket_option(copy, socket.SO_PROTOCOL)
        except OSError as error:
            raise CallRefused(error.errno or _errno.ENOTSOCK) from None
        return copy, domain, socktype, proto

    def _asking(self, d: Decoded, verb: str, symbol: str, fd: int, copy: int, sockaddr: bytes,
                domain: int, socktype: int, proto: int) -> Any:  # fmt: skip
        """connect or bind (or a send with a destination, asked as a connect named ``symbol``)
        as the shim asks it: the address decoded, the program's socket in FD_SOCKET."""
        length = len(sockaddr)
        d.socket_number, d.sockaddr, d.socket_copy = fd, sockaddr, copy
        d.cloexec = descriptor_cloexec(d.note.pid, fd)
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

    def _listen(self, d: Decoded, a: tuple[int, ...]) -> Any:
        """listen on an unbound inet stream socket binds it to the wildcard address first: asked
        as that bind (symbol "listen"), as the shim asks it; any other listen is performed."""
        fd = ctypes.c_int(a[0] & 0xFFFFFFFF).value
        backlog = ctypes.c_int(a[1] & 0xFFFFFFFF).value
        if fd < 0:
            raise CallRefused(_errno.EBADF)
        copy, domain, socktype, proto = self._socket(d, fd)
        d.socket_number, d.socket_copy, d.backlog = fd, copy, backlog
        if not (
            domain in (socket.AF_INET, socket.AF_INET6)
            and socktype in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET)
            and socket_unbound(copy)
        ):
            d.owned.remove(copy)

            def perform() -> tuple[int, int]:
                try:
                    return listen_on(copy, backlog), 0
                except OSError as error:
                    return -1, error.errno or _errno.EIO
                finally:
                    os.close(copy)

            return perform
        d.cloexec = descriptor_cloexec(d.note.pid, fd)
        d.descriptors.append(os.dup(copy))
        function = "bind_inet" if domain == socket.AF_INET else "bind_inet6"
        d.raw = RawCall(
            next(self._seq) & 0xFFFFFFFF, function, "listen", 0, 0, 0, FD_SOCKET, domain,
            socktype, proto, 0, 0, 0, bytes(16), None, None, (0, 0, 0, 0),
        )  # fmt: skip
        d.kind = "listen"
        return None

    def _sendto(self, d: Decoded, a: tuple[int, ...]) -> Any:
        length = min(a[2], MAX_DATAGRAM)
        return self._sending(d, a[0], a[3], a[4], a[5], lambda: d.memory.read(a[1], length), 0, 0)

    def _sendmsg(self, d: Decoded, a: tuple[int, ...]) -> Any:
        if a[1] == 0:
            raise CallRefused(_errno.EFAULT)
        name, namelen, iov, iovlen, control, controllen, _ = MSGHDR.unpack(
            d.memory.read(a[1], MSGHDR.size)
        )

        return self._sending(d, a[0], a[2], name, namelen, lambda: self._gather(d, iov, iovlen),
                             control, controllen)  # fmt: skip

    def _sendmmsg(self, d: Decoded, a: tuple[int, ...]) -> Any:
        """sendmmsg: on a stream socket as sendmsg; of datagrams, those without a destination
        (a connected socket's: glibc's resolver) are all sent by the master, else the first one
        alone as sendmsg (the call returns 1, which callers handle as a partial send)."""
        vector, count = a[1], min(a[2] & 0xFFFFFFFF, 1024)
        if count == 0:
            return lambda: (0, 0)
        headers = [
            MSGHDR.unpack(d.memory.read(vector + i * MMSGHDR_SIZE, MSGHDR.size))
            for i in range(count)
        ]
        d.count_at = vector + MSGHDR.size  # the first message's msg_len
        if (headers[0][0] and headers[0][1]) or any(not h[0] or not h[1] for h in headers):
            count = 1
        if count == 1:
            name, namelen, iov, iovlen, control, controllen, _ = headers[0]
            return self._sending(d, a[0], a[3], name, namelen,
                                 lambda: self._gather(d, iov, iovlen), control,
                                 controllen)  # fmt: skip
        fd = ctypes.c_int(a[0] & 0xFFFFFFFF).value
        if fd < 0:
            raise CallRefused(_errno.EBADF)
        copy, _, socktype, _ = self._socket(d, fd)
        if socktype in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET):
            return CONTINUE
        flags = a[3] & 0xFFFFFFFF & ~MSG_FASTOPEN
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
                    n = send_message(copy, payload, control, flags, None)
                    memory.write(vector + index * MMSGHDR_SIZE + MSGHDR.size,
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

    def _recvfrom(self, d: Decoded, a: tuple[int, ...]) -> Any:
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
            raise CallRefused(_errno.EINVAL)
        wait = not flags & socket.MSG_DONTWAIT and os.get_blocking(copy)
        received = Received(os.dup(copy), sources, d.memory.tid, buffer, min(size, 1 << 16),
                             flags, source, length_at, room, wait)  # fmt: skip
        return received

    def _gather(self, d: Decoded, iov: int, iovlen: int) -> bytes:
        """The bytes of an iovec array in the program's memory (at most MAX_DATAGRAM)."""
        if iovlen > 1024:
            raise CallRefused(_errno.EMSGSIZE)
        chunks, total = [], 0
        for index in range(iovlen):
            base, size = IOVEC.unpack(d.memory.read(iov + index * IOVEC.size, IOVEC.size))
            size = min(size, MAX_DATAGRAM - total)
            chunks.append(d.memory.read(base, size))
            total += size
        return b"".join(chunks)

    def _sending(self, d: Decoded, fd: int, flags: int, address: int, length: int,
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
            raise CallRefused(_errno.EBADF)
        copy, domain, socktype, proto = self._socket(d, fd)
        if socktype in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET):
            if flags & MSG_FASTOPEN and address and length:
                raise CallRefused(_errno.EOPNOTSUPP, "sendto with MSG_FASTOPEN", report=True)
            return CONTINUE
        d.payload = data()
        if control and control_length:
            if control_length > 4096:
                raise CallRefused(_errno.ENOBUFS)
            d.control = self._ancillary(d, d.memory.read(control, control_length))
        d.send_flags = flags & ~MSG_FASTOPEN
        if address == 0 or length <= 0:  # connected (decided at its connect), or EDESTADDRREQ
            return self._send_as_given(d, copy, None)
        if length > 128:
            raise CallRefused(_errno.EINVAL)
        sockaddr = d.memory.read(address, length)
        asked = self._asking(d, "connect", d.note.name, fd, copy, sockaddr, domain, socktype, proto)
        if asked is None:
            d.kind = "send"
            return None
        d.owned.append(copy)  # an address the shim leaves to libc (AF_UNSPEC...): sent as given
        return self._send_as_given(d, copy, sockaddr)

    def _ancillary(self, d: Decoded, control: bytes) -> bytes:
        """Control messages as the program gave them, its descriptors (SCM_RIGHTS) replaced by
        the master's copies."""
        out, offset = [], 0
        while offset + CMSG_HEAD.size <= len(control):
            size, level, kind = CMSG_HEAD.unpack_from(control, offset)
            if size < CMSG_HEAD.size or offset + size > len(control):
                raise CallRefused(_errno.EINVAL)
            body = control[offset + CMSG_HEAD.size : offset + size]
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                numbers = struct.unpack(f"={len(body) // 4}i", body[: len(body) // 4 * 4])
                body = struct.pack(f"={len(numbers)}i",
                                   *(self._pidfd_getfd(d, n) for n in numbers))  # fmt: skip
            item = CMSG_HEAD.pack(CMSG_HEAD.size + len(body), level, kind) + body
            out.append(item + bytes(-len(item) % 8))
            offset += (size + 7) & ~7
        return b"".join(out)

    def _send_as_given(self, d: Decoded, copy: int, sockaddr: bytes | None) -> Any:
        payload, control, flags = d.payload, d.control, d.send_flags
        keep = list(d.owned)  # the SCM_RIGHTS copies and the socket: closed after the send
        d.owned = []
        memory, count_at = d.memory, d.count_at

        def perform() -> tuple[int, int]:
            sent = send_message(copy, payload, control, flags, sockaddr)
            if count_at:
                memory.write(count_at, struct.pack("=I", sent))
                return 1, 0
            return sent, 0

        return _answered_by(perform, keep)

    def _as_given(self, d: Decoded, verb: str) -> Callable[[], tuple[int, int]]:
        copy, sockaddr, credentials = d.socket_copy, d.sockaddr, d.credentials
        d.owned.remove(copy)

        def perform() -> tuple[int, int]:
            WORKER.run(lambda: socket_call(verb, copy, sockaddr), credentials)
            return 0, 0

        return _answered_by(perform, [copy])


_EMPTY = RawCall(0, "", "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, bytes(16), None, None, (0, 0, 0, 0))


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


class Received:
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
        named = inet_sockaddr(family, address)
        try:
            write_process_memory(self.tid, self.buffer, bytes(data[: min(count, self.size)]))
            write_process_memory(self.tid, self.source, named[: self.room])
            write_process_memory(self.tid, self.length_at, struct.pack("=i", len(named)))
        except OSError:
            return -1, _errno.EFAULT
        return count, 0


def _exe_of(tid: int) -> str:
    """The program a thread runs ("" when it is gone), as ProcessInfo.exe says it."""
    try:
        return os.readlink(f"/proc/{tid}/exe")
    except OSError:
        return ""


def own_proc(path: bytes, process: ProcessInfo) -> bytes:
    """/proc/self and /proc/thread-self name the caller's entries: in the master they would
    name its own, so they become the program's by number."""
    for name, own in (
        (b"/proc/self", b"/proc/%d" % process.pid),
        (b"/proc/thread-self", b"/proc/%d/task/%d" % (process.pid, process.tid)),
    ):
        if path == name or path.startswith(name + b"/"):
            return own + path[len(name) :]
    return path
