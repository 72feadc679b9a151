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

Passthrough (:meth:`TrappedCall.use_slave_credentials`) is performed by the master, as the
caller, on what it read (``_host.py``); decoding is ``_syscalls.py``'s.

Every notification is checked with ``is_valid`` after its memory was read and before it is
acted on; a call whose thread vanished is dropped quietly. A call the adapter cannot decode is
refused (ENOSYS) and reported to ``on_error``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno as _errno
import os
import select
import stat as stat_module
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from . import protocol
from ._host import (
    AT_EACCESS,
    AT_FDCWD,
    AT_SYMLINK_FOLLOW,
    AT_SYMLINK_NOFOLLOW,
    KSTAT,
    O_PATH,
    O_TMPFILE,
    OPEN_HOW,
    STATX_BASIC_STATS,
    STATX_DEVS,
    STATX_HEAD,
    STATX_SIZE,
    STATX_TIME,
    SYS,
    TIMESPECS,
    WORKER,
    Credentials,
    host_stat,
    listen_on,
    peer_address,
    raw_syscall,
    send_message,
    socket_call,
)
from ._seccomp import FastAnswer, FastPath, Listener, Notification
from ._syscalls import (
    CallRefused,
    Continue,
    DatagramSources,
    Decoded,
    Decoder,
    Received,
    own_proc,
)
from ._wire import ffi
from .calls import Call
from .protocol import VERSION, Note, PackedStat, ProcessInfo
from .snapshot import Snapshot
from .stat import StatResult

__all__ = ["Deferred", "Supervisor", "SupervisorError", "TrappedCall"]


@dataclasses.dataclass(frozen=True)
class SupervisorError:
    """A trapped call the supervisor refused by itself (one it cannot decode, or a handler that
    failed), or trouble of its own; the program saw its call fail and the supervisor went on."""

    syscall: str
    pid: int
    message: str

    def __str__(self) -> str:
        return f"{self.syscall}: pid {self.pid}: {self.message}"


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
    return KSTAT.pack(
        s.dev, s.ino, s.nlink, s.mode, s.uid, s.gid, 0, s.rdev, s.size, s.blksize, s.blocks,
        s.atime_sec, s.atime_nsec, s.mtime_sec, s.mtime_nsec, s.ctime_sec, s.ctime_nsec,
    )  # fmt: skip


def _kernel_statx(s: Any, mask: int) -> bytes:
    del mask  # the basic fields are always there, as the kernel fills them whatever was asked
    head = STATX_HEAD.pack(
        STATX_BASIC_STATS, s.blksize, 0, s.nlink, s.uid, s.gid, s.mode & 0xFFFF, s.ino,
        s.size, s.blocks, 0,
    )  # fmt: skip
    times = b"".join(
        STATX_TIME.pack(sec, nsec, 0)
        for sec, nsec in ((s.atime_sec, s.atime_nsec), (0, 0), (s.ctime_sec, s.ctime_nsec),
                          (s.mtime_sec, s.mtime_nsec))
    )  # fmt: skip
    devs = STATX_DEVS.pack(os.major(s.rdev), os.minor(s.rdev), os.major(s.dev), os.minor(s.dev))
    data = head + times + devs
    return data + bytes(STATX_SIZE - len(data))


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

    def __init__(self, supervisor: Supervisor, decoded: Decoded) -> None:
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
            listen_on(fd, self.decoded.backlog)
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
            return lambda: self._send(peer_address(fds[0]) if fds else d.sockaddr)
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
            sent = send_message(d.socket_copy, d.payload, d.control, d.send_flags, sockaddr)
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
            reads = reads or (d.kind == "open" and not raw.flags & (os.O_CREAT | O_TMPFILE))
            value = WORKER.run(lambda: self._host_call(), who, inline=reads)
        except OSError as error:
            return self._reply(-1, error.errno or _errno.EIO) if self._valid() else False
        if d.kind in ("stat", "statx"):
            return self._write(value)
        if d.kind == "readlink":
            return self._write_text(value)
        if d.kind == "open":
            if raw.flags & O_PATH:  # the kernel puts no O_PATH file in another process
                value = self._without_o_path(value, who)
                if value < 0:
                    return self._reply(-1, -value) if self._valid() else False
            try:
                return self._add_fd(value)
            finally:
                os.close(value)
        return self._reply(value) if self._valid() else False

    def _without_o_path(self, fd: int, who: Credentials) -> int:
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
            return int(WORKER.run(lambda: os.open(f"/proc/self/fd/{fd}", flags), who))
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
            return listen_on(d.socket_copy, d.backlog)
        if d.kind == "socket":
            if d.cwd >= 0:  # a relative unix path: the worker's own cwd is its to change
                os.fchdir(d.cwd)
            verb = "connect" if function.startswith("connect") else "bind"
            privileged = function != "bind_unix" and 0 < raw.port < _unprivileged_port()
            if verb == "bind" and privileged and d.credentials.euid != 0:
                raise PermissionError(_errno.EACCES, "a privileged port")
            return socket_call(verb, d.socket_copy, d.sockaddr)
        assert p is not None
        for path in d.paths[1:] if function == "symlink" else d.paths:  # a target is text
            path.text = own_proc(path.text, d.process)
        directory = AT_FDCWD if p.dirfd is None else p.dirfd
        if d.kind == "open":
            if raw.resolve:
                how = ctypes.create_string_buffer(
                    OPEN_HOW.pack(raw.flags | os.O_CLOEXEC, raw.mode, raw.resolve)
                )
                return raw_syscall(SYS["openat2"], directory, ctypes.c_char_p(p.text), how,
                                OPEN_HOW.size)  # fmt: skip
            return os.open(p.text, raw.flags | os.O_CLOEXEC, raw.mode, dir_fd=p.dirfd)
        if d.kind in ("stat", "statx"):
            statx = (d.statx_mask, d.at_flags) if d.kind == "statx" else None
            return host_stat(p.dirfd, p.text, d.at_flags, statx)
        if d.kind == "readlink":
            buffer = ctypes.create_string_buffer(d.size)
            n = raw_syscall(SYS["readlinkat"], directory, ctypes.c_char_p(p.text), buffer, d.size)
            return buffer.raw[:n]
        if function in ("access", "eaccess"):
            flags = (d.at_flags & AT_SYMLINK_NOFOLLOW) | AT_EACCESS
            return raw_syscall(SYS["faccessat2"], directory, ctypes.c_char_p(p.text), raw.flags,
                            flags)  # fmt: skip
        if function == "mkdir":
            os.mkdir(p.text, raw.mode, dir_fd=p.dirfd)
        elif function == "unlink":
            os.unlink(p.text, dir_fd=p.dirfd)
        elif function == "rmdir":
            os.rmdir(p.text, dir_fd=p.dirfd)
        elif function == "rename":
            q = d.paths[1]
            raw_syscall(SYS["renameat2"], directory, ctypes.c_char_p(p.text),
                     AT_FDCWD if q.dirfd is None else q.dirfd, ctypes.c_char_p(q.text),
                     raw.flags)  # fmt: skip
        elif function == "symlink":
            q = d.paths[1]
            os.symlink(p.text, q.text, dir_fd=q.dirfd)
        elif function == "link":
            q = d.paths[1]
            os.link(p.text, q.text, src_dir_fd=p.dirfd, dst_dir_fd=q.dirfd,
                    follow_symlinks=bool(raw.flags & AT_SYMLINK_FOLLOW))  # fmt: skip
        elif function == "chmod":
            raw_syscall(SYS["fchmodat2"] if d.at_flags else SYS["fchmodat"], directory,
                     ctypes.c_char_p(p.text), raw.mode, d.at_flags)  # fmt: skip
        elif function == "chown":
            uid, gid = raw.values[0], raw.values[1]
            os.chown(p.text, uid, gid, dir_fd=p.dirfd,
                     follow_symlinks=not d.at_flags & AT_SYMLINK_NOFOLLOW)  # fmt: skip
        elif function == "utimens":
            times = ctypes.create_string_buffer(TIMESPECS.pack(*raw.values))
            raw_syscall(SYS["utimensat"], directory, ctypes.c_char_p(p.text), times, d.at_flags)
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


def _unprivileged_port() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start", "rb") as file:
            return int(file.read())
    except (OSError, ValueError):
        return 1024


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

    ``on_note(process, notes)``: hears of the calls the loop answered from the snapshot (a stat
    of a model file's descriptor made inside libc; a static program's stat-like calls of model
    paths and opens of listed directories), as a master hears the shim's notes.

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
        on_note: Callable[[ProcessInfo, Iterable[Note]], object] | None = None,
    ) -> None:
        self.listener = listener
        self.on_note = on_note
        listener.wake_synchronously()  # master and program take turns: one CPU, no wake-ups
        self.fast = FastPath(passthrough, file_devices, root, snapshot)
        self.intercept = intercept
        self.chdir_continues = chdir_continues
        self.handler = handler
        self.on_error = on_error
        self._decoder = Decoder(file_devices, datagram_sources)
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
                elif isinstance(event, FastAnswer):
                    try:
                        self._journal(event)
                    finally:  # (the program gets its answer once the journal has it)
                        self.fast.finish(self.listener.fileno())
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

    def _journal(self, answer: FastAnswer) -> None:
        """Tell ``on_note`` of a call the fast path answered from the snapshot, as the shim
        tells the master of the calls it answers from there."""
        if self.on_note is None:
            return
        try:
            process = self._decoder.who(answer.pid)[0]
        except OSError:  # the thread is gone already: what is known of it
            process = ProcessInfo(VERSION, answer.pid, 0, answer.pid, 0, 0, 0, 0, 0, "")
        note = Note(answer.function, answer.name, answer.flags, answer.result, answer.mode,
                    answer.size, answer.path, None, answer.error)  # fmt: skip
        self.on_note(process, [note])

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
        except CallRefused as refusal:
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
        if isinstance(decoded, Continue):
            self.listener.reply_continue(note.id)
            return
        if isinstance(decoded, Received):  # performed in a thread of its own: it may wait
            thread = threading.Thread(target=self._receive, args=(note, decoded), daemon=True,
                                      name=f"libcfake-recvfrom-{note.pid}")  # fmt: skip
            thread.start()
            return
        if not isinstance(decoded, Decoded):  # answered by the adapter itself
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

    def _receive(self, note: Notification, received: Received) -> None:
        """A recvfrom the master performs (see Decoder._recvfrom): waits for a datagram (while
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
