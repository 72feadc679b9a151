"""The master's side of a trapped call on the host: the calling process's credentials and memory,
and the thread that performs calls as that caller.

A call the handler lets through (``use_slave_credentials``) never goes on in the kernel when it
names a path or an address: a thread of the program could rewrite that memory between the
master's reading and the kernel's. The master performs it itself, on what it read, in
:data:`WORKER`, a thread that takes the caller's filesystem ids, groups and umask (``setfsuid``,
``setfsgid``, ``setgroups`` and ``umask`` through raw system calls, which Linux applies to the
calling thread only; the worker unshares its filesystem context for the umask). What the
program's memory holds is read and written through :class:`ProcessMemory` and
:func:`write_process_memory` (``process_vm_readv``, ``process_vm_writev``); its descriptors are
reached with ``pidfd_getfd`` (:func:`thread_pidfd`). The kernel's structs the supervisor reads and
writes are laid out here too (``KSTAT``, ``STATX_HEAD``, ``MSGHDR`` ...).
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno as _errno
import os
import queue
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from typing import Any

from . import _seccomp, protocol
from .protocol import ProcessInfo

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_REMOVEDIR = 0x200
AT_SYMLINK_FOLLOW = 0x400
AT_EMPTY_PATH = 0x1000
AT_EACCESS = 0x200
UTIME_NOW = (1 << 30) - 1
STATX_BASIC_STATS = 0x7FF
O_TMPFILE = os.O_TMPFILE
O_PATH = os.O_PATH


# x86_64 struct stat, struct statx, struct open_how, struct timespec/timeval pairs
KSTAT = struct.Struct("=QQQIIIiQqqqqqqqqq24x")
STATX_SIZE = 256
STATX_HEAD = struct.Struct("=IIQIIIHxxQQQQ")  # up to stx_attributes_mask
STATX_TIME = struct.Struct("=qIi")
STATX_DEVS = struct.Struct("=IIII")
OPEN_HOW = struct.Struct("=QQQ")
TIMESPECS = struct.Struct("=qqqq")
STATFS_SIZE = 120  # x86_64 struct statfs
MSGHDR = struct.Struct("=QI4xQQQQi4x")  # name, namelen, iov, iovlen, control, controllen, flags
IOVEC = struct.Struct("=QQ")
CMSG_HEAD = struct.Struct("=Qii")  # len, level, type
MAX_DATAGRAM = 1 << 20  # what the master copies of a datagram a program sends
MSG_FASTOPEN = 0x20000000
MMSGHDR_SIZE = 64  # struct mmsghdr: a msghdr, msg_len, padding
assert KSTAT.size == 144 and STATX_HEAD.size == 64

SYS = _seccomp.SYSCALLS
_NR_SETGROUPS, _NR_SETFSUID, _NR_SETFSGID, _NR_UMASK, _NR_UNSHARE = 116, 122, 123, 95, 272
_CLONE_FS = 0x200

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def raw_syscall(number: int, *args: Any) -> int:
    """A raw system call; OSError on failure. Integers travel as longs (never truncated)."""
    converted = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    result = int(_libc.syscall(ctypes.c_long(number), *converted))
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Who the caller is for the kernel's permission checks."""

    uid: int
    gid: int
    euid: int
    egid: int
    fsuid: int
    fsgid: int
    groups: tuple[int, ...]
    umask: int


def process_status(tid: int) -> tuple[ProcessInfo, Credentials]:
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
    credentials = Credentials(
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


class ProcessMemory:
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
        """Write an answer into the caller's buffer (see write_process_memory)."""
        write_process_memory(self.tid, address, data)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


_PIDFD_THREAD = os.O_EXCL  # Linux 6.9: a pidfd of one thread


def thread_pidfd(tid: int, pid: int) -> int:
    """A pidfd of the calling thread, whose descriptor table is the one its call uses (a thread
    may have its own, after unshare(CLONE_FILES)); of its process before Linux 6.9."""
    try:
        return int(raw_syscall(_SYS_PIDFD_OPEN, tid, _PIDFD_THREAD))
    except OSError:
        return os.pidfd_open(pid)


_SYS_PIDFD_OPEN = 434


def attribute_call(
    target: int | bytes, name: bytes, value: bytes, xflags: int, setting: bool,
    follow: bool = True,
) -> int:  # fmt: skip
    if setting:
        os.setxattr(target, name, value, xflags, follow_symlinks=follow)
    else:
        os.removexattr(target, name, follow_symlinks=follow)
    return 0


def chown_ids(uid: int, gid: int) -> tuple[int, int]:
    """chown's ids as the shim sends them: -1 for "unchanged"."""
    low = (uid & 0xFFFFFFFF, gid & 0xFFFFFFFF)
    return (-1 if low[0] == 0xFFFFFFFF else low[0], -1 if low[1] == 0xFFFFFFFF else low[1])


def socket_option(fd: int, option: int) -> int:
    value = ctypes.c_int(0)
    size = ctypes.c_uint(ctypes.sizeof(value))
    if _libc.getsockopt(fd, socket.SOL_SOCKET, option, ctypes.byref(value), ctypes.byref(size)):
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return value.value


def descriptor_cloexec(pid: int, fd: int) -> bool:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as file:
            for line in file:
                if line.startswith(b"flags:"):
                    return bool(int(line.split()[1], 8) & os.O_CLOEXEC)
    except OSError:
        pass
    return False


def socket_unbound(fd: int) -> bool:
    """Whether an inet socket has no port yet."""
    sock = socket.socket(fileno=os.dup(fd))
    try:
        return int(sock.getsockname()[1]) == 0
    except OSError:
        return False
    finally:
        sock.close()


def listen_on(fd: int, backlog: int) -> int:
    if _libc.listen(fd, backlog) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return 0


def socket_call(verb: str, fd: int, sockaddr: bytes) -> int:
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


def send_message(fd: int, data: bytes, control: bytes, flags: int, sockaddr: bytes | None) -> int:
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


def peer_address(fd: int) -> bytes:
    """A socket's peer address as raw sockaddr bytes."""
    buffer = ctypes.create_string_buffer(128)
    size = ctypes.c_uint(128)
    if _libc.getpeername(fd, buffer, ctypes.byref(size)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return buffer.raw[: size.value]


def host_stat(dirfd: int | None, path: bytes, flags: int, statx: tuple[int, int] | None) -> bytes:
    """The kernel's own struct stat (or statx) of (dirfd, path), as the program would get it."""
    directory = AT_FDCWD if dirfd is None else dirfd
    if statx is None:
        kbuffer = ctypes.create_string_buffer(KSTAT.size)
        raw_syscall(SYS["newfstatat"], directory, ctypes.c_char_p(path), kbuffer, flags)
        return kbuffer.raw
    xbuffer = ctypes.create_string_buffer(STATX_SIZE)
    raw_syscall(SYS["statx"], directory, ctypes.c_char_p(path), statx[1], statx[0], xbuffer)
    return xbuffer.raw


def write_process_memory(tid: int, address: int, data: bytes) -> None:
    """Write an answer into thread tid's buffer, as the kernel would: EFAULT for memory the
    program may not write (/proc/<pid>/mem would force the write into read-only pages). The
    caller checked the call still waits: its thread, hence its id, is alive."""
    local = _IoVec(ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p), len(data))
    remote = _IoVec(ctypes.c_void_p(address), len(data))
    written = _libc.process_vm_writev(tid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if written != len(data):
        raise OSError(_errno.EFAULT, os.strerror(_errno.EFAULT))


def inet_sockaddr(family: int, address: tuple[Any, ...]) -> bytes:
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
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Credentials, queue.SimpleQueue[Any]]]
        self._jobs = queue.SimpleQueue()
        self._own: tuple[int, int, frozenset[int]] | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run(self, job: Callable[[], Any], credentials: Credentials, inline: bool = False) -> Any:
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
        raw_syscall(_NR_UNSHARE, _CLONE_FS)
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
            raw_syscall(_NR_SETGROUPS, len(groups), array)

    @staticmethod
    def _become(who: Credentials, own_uid: int) -> None:
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
        raw_syscall(_NR_UMASK, who.umask)

    @staticmethod
    def _restore(uid: int, gid: int, groups: tuple[int, ...]) -> None:
        _libc.syscall(ctypes.c_long(_NR_SETFSUID), ctypes.c_long(uid))
        _libc.syscall(ctypes.c_long(_NR_SETFSGID), ctypes.c_long(gid))
        if uid == 0:
            _Worker._set_groups(groups)


WORKER = _Worker()
