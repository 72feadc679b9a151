"""The kernel side of the seccomp supervisor: start a program under ``libcfake-launch`` and take
what traps.

``libcfake-launch`` (``shim/launcher/launch.c``) installs a seccomp filter whose user-notification
listener it hands to the master, then executes the program; every process of that tree stays
under the filter. Calls that name a path, an address or another process trap (unless the shim
makes them through its gate); the master receives each as a :class:`Notification` and answers
it on the :class:`Listener`: a return value or an errno, a descriptor placed in the program
(:meth:`Listener.add_fd`), bytes written into its memory (:func:`write_memory`), or, where
nothing in the program's memory decides the outcome, letting the call go on
(:meth:`Listener.reply_continue`).

    proc, listener = spawn(["./static-tool", "/etc/app.conf"])
    while (note := listener.receive()) is not None:
        path = read_path(note.pid, note.args[1])      # openat(dirfd, path, flags, mode)
        listener.reply(note.id, error=errno.EACCES)

Arguments in the program's memory are read through ``/proc/<pid>/mem``; a thread of the program
may change them after they were read, so an answer never lets such a call go on with what was
checked (the master performs it itself, or refuses it). Closing the listener fails every
trapped call with ENOSYS from then on: the design fails closed.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import socket
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _realos
from ._wire import ffi, lib
from .errors import ShimNotBuiltError
from .protocol import FUNCTIONS
from .snapshot import Snapshot

#: The launcher, built beside the shim by the install.
LAUNCHER_NAME = "libcfake-launch"
#: The variable naming the descriptor the launcher sends the listener on.
CHANNEL_VARIABLE = "LIBCFAKE_SUPERVISOR_FD"
#: The variable naming the file the launcher executes, when it is not argv[0].
EXECUTABLE_VARIABLE = "LIBCFAKE_LAUNCH_EXECUTABLE"

# <linux/seccomp.h>: the ioctls on a listener, and the layouts they exchange
_NOTIF = struct.Struct("=QIIiIQ6Q")  # id, pid, flags; data: nr, arch, instruction_pointer, args
_RESPONSE = struct.Struct("=QqiI")  # id, val, error, flags
_ADDFD = struct.Struct("=QIIII")  # id, flags, srcfd, newfd, newfd_flags
_IOCTL_RECV = 0xC0502100  # _IOWR('!', 0, struct seccomp_notif)
_IOCTL_SEND = 0xC0182101  # _IOWR('!', 1, struct seccomp_notif_resp)
_IOCTL_ID_VALID = 0x40082102  # _IOW('!', 2, __u64)
_IOCTL_ADDFD = 0x40182103  # _IOW('!', 3, struct seccomp_notif_addfd)
_IOCTL_SET_FLAGS = 0x40082104  # _IOW('!', 4, __u64): SECCOMP_IOCTL_NOTIF_SET_FLAGS (Linux 6.6)
_FD_SYNC_WAKE_UP = 1  # SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
_FLAG_CONTINUE = 1  # SECCOMP_USER_NOTIF_FLAG_CONTINUE
_ADDFD_FLAG_SETFD = 1  # SECCOMP_ADDFD_FLAG_SETFD: at the number given (dup2-like)
_ADDFD_FLAG_SEND = 2  # SECCOMP_ADDFD_FLAG_SEND: add the descriptor and answer with its number
AUDIT_ARCH_X86_64 = 0xC000003E

_PAGE = os.sysconf("SC_PAGE_SIZE")
_PATH_MAX = 4096


@dataclass(frozen=True)
class Notification:
    """One trapped system call: ``id`` names it in the answer; ``args`` are the six registers."""

    id: int
    pid: int  # the calling thread's id (its process's pid for a single-threaded program)
    nr: int
    arch: int
    instruction_pointer: int
    args: tuple[int, ...]

    @property
    def name(self) -> str:
        """The system call's name ("openat"), or "syscall_NNN" for one this module does not know."""
        return SYSCALL_NAMES.get(self.nr, f"syscall_{self.nr}")


@dataclass(frozen=True)
class FastAnswer:
    """A call the fast path answered from the model's metadata snapshot (a stat of a model
    file's descriptor made inside libc, a static program's stat-like call of a model path), for
    the journal: what the program got, as the shim's note says it."""

    pid: int  # the calling thread's id
    name: str  # the system call's ("newfstatat", "statx")
    function: str  # the call's, as the shim's note names it ("fstat", "lstat", "access")
    flags: int  # access: the amode
    result: int  # 0, or -1 with error
    error: int  # ENOENT: a name a complete directory lacks
    mode: int  # the st_mode and st_size answered (0 for a missing name)
    size: int
    path: str  # the virtual path


class Listener:
    """A seccomp user-notification listener: the master's end of one launched tree."""

    def __init__(self, fd: int, *, killable: bool = True) -> None:
        self.fd = fd
        #: whether the kernel took SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19): a signal
        #: arriving while a call waits for the master does not interrupt it
        self.killable = killable

    def fileno(self) -> int:
        return self.fd

    def wake_synchronously(self) -> bool:
        """Ask the kernel to hand each trapped call to the master, and its answer back to the
        program, as a direct switch on one CPU (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux
        6.6): on an idle machine a round trip otherwise waits for a sleeping CPU to wake, 96
        against 21 us. False where the kernel lacks it (every answer is the same, slower)."""
        try:
            fcntl.ioctl(self.fd, _IOCTL_SET_FLAGS, _FD_SYNC_WAKE_UP)
        except OSError:
            return False
        return True

    def receive(self) -> Notification | None:
        """The next trapped call (blocks until there is one; poll :meth:`fileno` first to wait
        without holding the GIL). None when the call vanished before it was read (its thread
        was killed, or the pending notification was taken back)."""
        buffer = bytearray(_NOTIF.size)
        try:
            fcntl.ioctl(self.fd, _IOCTL_RECV, buffer, True)
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.EINTR):
                return None
            raise
        id_, pid, _flags, nr, arch, ip, *args = _NOTIF.unpack(buffer)
        return Notification(id_, pid, nr, arch, ip, tuple(args))

    def is_valid(self, id_: int) -> bool:
        """Whether the call is still waiting (its thread alive, not answered): check after
        reading its memory, before trusting what was read came from that call."""
        try:
            fcntl.ioctl(self.fd, _IOCTL_ID_VALID, bytearray(struct.pack("=Q", id_)), True)
        except OSError as error:
            if error.errno == errno.ENOENT:
                return False
            raise
        return True

    def reply(self, id_: int, value: int = 0, error: int = 0) -> bool:
        """Answer the call: it returns ``value``, or fails with ``error`` (an errno). False if the
        call no longer waits (its thread is gone)."""
        return self._send(_RESPONSE.pack(id_, 0 if error else value, -error if error else 0, 0))

    def reply_continue(self, id_: int) -> bool:
        """Let the call go on in the kernel as the program made it. Only for a call whose
        outcome nothing in the program's memory decides (a signal's target, say): a racing
        thread could change a path or an address between the check and the call."""
        return self._send(_RESPONSE.pack(id_, 0, 0, _FLAG_CONTINUE))

    def add_fd(
        self,
        id_: int,
        fd: int,
        *,
        cloexec: bool = False,
        answer: bool = True,
        target: int | None = None,
    ) -> int:
        """Put a copy of ``fd`` in the calling process; with ``answer`` (default) the call
        returns its number at once (an open, an accept). ``target``: at that number, replacing
        what the process had there (a connect's socket). The number it got."""
        flags = (_ADDFD_FLAG_SEND if answer else 0) | (
            _ADDFD_FLAG_SETFD if target is not None else 0
        )
        newfd = 0 if target is None else target
        request = _ADDFD.pack(id_, flags, fd, newfd, os.O_CLOEXEC if cloexec else 0)
        # a mutable buffer makes fcntl.ioctl return the ioctl's own result: the new number
        return int(fcntl.ioctl(self.fd, _IOCTL_ADDFD, bytearray(request), True))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _send(self, response: bytes) -> bool:
        try:
            fcntl.ioctl(self.fd, _IOCTL_SEND, bytearray(response), True)
        except OSError as error:
            if error.errno == errno.ENOENT:
                return False
            raise
        return True


class FastPath:
    """Waits for a listener's trapped calls without the GIL, and answers the read-only calls
    under ``passthrough`` (the mounts) itself, by the shim's passthrough rule, unjournaled as
    the shim's are (``shim/launcher/fastpath.h`` says which and how); every other call comes
    back from :meth:`wait` as a :class:`Notification` for the caller to answer.

    ``devices``: the st_dev of the master's own files (never passed through); ``root``: the
    tree's first process, whose ids are read once (0: every caller's are read); ``snapshot``:
    the model's metadata snapshot, mapped here again (read-only, for as long as this lives),
    from which a stat of a shadow directory's descriptor is answered.
    """

    def __init__(
        self,
        passthrough: Sequence[str],
        devices: Sequence[int],
        root: int = 0,
        snapshot: Snapshot | None = None,
    ) -> None:
        self._state = ffi.new("struct lcf_fast *")
        self._note = ffi.new("struct lcf_fast_note *")
        prefixes = b"".join(os.fsencode(prefix) + b"\0" for prefix in passthrough)
        numbers = ffi.new("uint64_t[]", list(devices)[: lib.LCF_FAST_DEVICES] or [0])
        count = min(len(devices), lib.LCF_FAST_DEVICES)
        self._map: mmap.mmap | None = None
        view, size = ffi.NULL, 0
        if snapshot is not None and snapshot.reader_fd >= 0:
            self._map = mmap.mmap(snapshot.reader_fd, snapshot.size, prot=mmap.PROT_READ)
            view, size = ffi.from_buffer(self._map), snapshot.size
        # -1 (the table does not fit, the master's ids differ): enabled stays 0, all go to Python
        lib.lcf_fast_init(self._state, prefixes, len(passthrough), numbers, count, root, view, size)
        self._view = view  # (kept alive with the mapping it points into)

    def finish(self, listener: int) -> None:
        """Give the program the answer a :class:`FastAnswer` was about, once it is journaled
        (the pipeline's rule: a call is recorded before the program sees its answer)."""
        lib.lcf_fast_finish(self._state, listener)

    def close(self) -> None:
        """Release the snapshot's mapping (and the descriptor mmap keeps); call only while no
        :meth:`wait` runs. Every call goes to the caller from then on."""
        self._state.enabled = 0
        self._state.has_snapshot = 0
        if self._map is not None:
            ffi.release(self._view)
            self._map.close()
            self._map, self._view = None, ffi.NULL

    @property
    def answered(self) -> int:
        """Calls answered here."""
        return int(self._state.answered)

    @property
    def passed_on(self) -> int:
        """Calls returned by :meth:`wait`."""
        return int(self._state.passed_on)

    def wait(
        self, listener: int, wakeup: int, pidfd: int, timeout: float | None
    ) -> Notification | FastAnswer | str:
        """The next call to answer, a call answered here that the journal must see (then call
        :meth:`finish`: its program waits until then), or why the wait ended: "wakeup"
        (``wakeup`` is readable), "exited" (``pidfd`` is: -1 for none), "hangup" (every process
        of the tree is gone), "timeout" (``timeout`` seconds passed; None: never)."""
        milliseconds = -1 if timeout is None else int(timeout * 1000) + 1
        event = lib.lcf_fast_serve(self._state, listener, wakeup, pidfd, milliseconds, self._note)
        if event == lib.LCF_FAST_NOTE:
            n = self._note
            return Notification(
                int(n.id), int(n.pid), int(n.nr), int(n.arch), int(n.instruction_pointer),
                tuple(int(argument) for argument in n.args),
            )  # fmt: skip
        if event == lib.LCF_FAST_ANSWERED:
            j = self._state.journal
            path = os.fsdecode(ffi.unpack(j.path, max(0, min(int(j.path_length), len(j.path)))))
            name = SYSCALL_NAMES.get(int(j.nr), f"syscall_{int(j.nr)}")
            function = FUNCTIONS.get(int(j.function), "fstat")
            return FastAnswer(int(j.pid), name, function, int(j.flags), int(j.result),
                              int(j.error), int(j.mode), int(j.size), path)  # fmt: skip
        if event < 0:
            raise OSError(-event, os.strerror(-event))
        return _FAST_EVENTS[event]


_FAST_EVENTS = {
    lib.LCF_FAST_WAKEUP: "wakeup",
    lib.LCF_FAST_EXITED: "exited",
    lib.LCF_FAST_HANGUP: "hangup",
    lib.LCF_FAST_TIMEOUT: "timeout",
}


def read_memory(pid: int, address: int, length: int) -> bytes:
    """``length`` bytes of the process's memory at ``address`` (fewer at an unmapped page)."""
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while length > 0:
            try:
                chunk = os.pread(fd, length, address)
            except OSError as error:
                if error.errno == errno.EIO:  # an unmapped page
                    break
                raise
            if not chunk:
                break
            chunks.append(chunk)
            address += len(chunk)
            length -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_path(pid: int, address: int) -> bytes:
    """The NUL-terminated string at ``address``; OSError EFAULT for a bad pointer, ENAMETOOLONG
    for one longer than PATH_MAX, as the kernel would answer the call."""
    if address == 0:
        raise OSError(errno.EFAULT, os.strerror(errno.EFAULT))
    collected = b""
    while len(collected) < _PATH_MAX:
        want = min(_PAGE - (address % _PAGE), _PATH_MAX - len(collected))
        chunk = read_memory(pid, address, want)
        end = chunk.find(b"\0")
        if end >= 0:
            return collected + chunk[:end]
        if len(chunk) < want:
            raise OSError(errno.EFAULT, os.strerror(errno.EFAULT))
        collected += chunk
        address += len(chunk)
    raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))


def write_memory(pid: int, address: int, data: bytes) -> None:
    """Write ``data`` into the process's memory at ``address`` (a stat buffer, say)."""
    fd = os.open(f"/proc/{pid}/mem", os.O_WRONLY | os.O_CLOEXEC)
    try:
        if os.pwrite(fd, data, address) != len(data):
            raise OSError(errno.EFAULT, os.strerror(errno.EFAULT))
    finally:
        os.close(fd)


def launcher_path() -> Path:
    """``libcfake-launch``, built beside the package by the install."""
    path = Path(__file__).resolve().parent / LAUNCHER_NAME
    if not path.is_file():
        raise ShimNotBuiltError(
            f"the libcfake launcher is not at {path}; run `pip install -e '.[test]'` in the "
            "libcfake checkout (it compiles shim/launcher/ with gcc)"
        )
    return path


def spawn(
    args: Sequence[str | os.PathLike[str]], *, env: dict[str, str] | None = None, **popen: Any
) -> tuple[_realos.Popen, Listener]:
    """Start ``args`` under the launcher; the process and its tree's listener. Popen's arguments
    (``pass_fds`` is added to; ``executable=`` is the file the launcher executes)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    with ours, theirs:
        environment = launch_environment(env, theirs.fileno(), popen.pop("executable", None))
        pass_fds = (*popen.pop("pass_fds", ()), theirs.fileno())
        proc = _realos.Popen(launch_arguments(args), env=environment, pass_fds=pass_fds, **popen)
        theirs.close()
        try:
            listener = take_listener(ours, proc.pid)
        except OSError as error:
            _, stderr = proc.communicate()  # (closes the pipes Popen made)
            said = stderr.decode(errors="replace").strip() if isinstance(stderr, bytes) else ""
            said = said or (stderr.strip() if isinstance(stderr, str) else "")
            raise OSError(error.errno, f"{error.strerror}{': ' + said if said else ''}") from None
    return proc, listener


def launch_arguments(args: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The launcher's command line for ``args``."""
    return [str(launcher_path()), *(os.fspath(arg) for arg in args)]


def launch_environment(
    env: Mapping[str, str] | None, channel: int, executable: str | os.PathLike[str] | None = None
) -> dict[str, str]:
    """``env`` (default: this process's) with what the launcher needs: the channel's number, and
    the file to execute when it is not argv[0] (Popen's ``executable=``)."""
    environment = dict(os.environ if env is None else env)
    environment[CHANNEL_VARIABLE] = str(channel)
    environment.pop(EXECUTABLE_VARIABLE, None)
    if executable is not None:
        environment[EXECUTABLE_VARIABLE] = os.fspath(executable)
    return environment


def take_listener(channel: socket.socket, pid: int) -> Listener:
    """The listener the launcher ``pid`` reports on ``channel`` (a copy taken with
    pidfd_getfd); OSError EPROTO if it set up no filter (its stderr says why)."""
    message = channel.recv(8)
    if len(message) < 4:
        raise OSError(errno.EPROTO, "libcfake-launch set up no filter")
    number = struct.unpack_from("=i", message)[0]
    killable = len(message) >= 8 and struct.unpack_from("=i", message, 4)[0] == 1
    pidfd = os.pidfd_open(pid)
    try:
        listener = _pidfd_getfd(pidfd, number)
    finally:
        os.close(pidfd)
    channel.send(b"T")
    return Listener(listener, killable=killable)


_libc = ctypes.CDLL(None, use_errno=True)
_SYS_PIDFD_GETFD = 438


def _pidfd_getfd(pidfd: int, target: int) -> int:
    """A copy of descriptor ``target`` of the process behind ``pidfd`` (close-on-exec)."""
    fd = int(_libc.syscall(_SYS_PIDFD_GETFD, pidfd, target, 0))
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"pidfd_getfd: {os.strerror(code)}")
    return fd


#: x86_64 system call numbers by name, for the calls the supervisor meets (reports name them).
SYSCALLS: dict[str, int] = {
    "read": 0, "write": 1, "open": 2, "close": 3, "stat": 4, "fstat": 5, "lstat": 6,
    "ioctl": 16, "access": 21, "sendto": 44, "recvfrom": 45, "sendmsg": 46, "socket": 41,
    "connect": 42,
    "bind": 49, "listen": 50, "clone": 56, "execve": 59, "kill": 62, "truncate": 76,
    "chdir": 80, "rename": 82, "mkdir": 83, "rmdir": 84, "creat": 85, "link": 86, "unlink": 87,
    "symlink": 88, "readlink": 89, "chmod": 90, "fchmod": 91, "chown": 92, "fchown": 93,
    "lchown": 94, "ptrace": 101, "mknod": 133, "statfs": 137, "chroot": 161, "acct": 163,
    "mount": 165, "umount2": 166, "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190,
    "getxattr": 191, "lgetxattr": 192, "listxattr": 194, "llistxattr": 195, "removexattr": 197,
    "lremovexattr": 198, "fremovexattr": 199, "tkill": 200, "utimes": 235, "tgkill": 234,
    "inotify_add_watch": 254, "openat": 257, "mkdirat": 258, "mknodat": 259, "fchownat": 260,
    "futimesat": 261, "newfstatat": 262, "unlinkat": 263, "renameat": 264, "linkat": 265,
    "symlinkat": 266, "readlinkat": 267, "fchmodat": 268, "faccessat": 269, "unshare": 272,
    "utimensat": 280, "sendmmsg": 307, "setns": 308, "process_vm_readv": 310,
    "process_vm_writev": 311, "renameat2": 316, "execveat": 322, "statx": 332,
    "name_to_handle_at": 303, "open_by_handle_at": 304, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "pidfd_send_signal": 424, "pidfd_open": 434,
    "clone3": 435, "openat2": 437, "pidfd_getfd": 438, "faccessat2": 439, "fchmodat2": 452,
    "prlimit64": 302, "shmget": 29, "semget": 64, "msgget": 68, "umask": 95, "setuid": 105,
    "setgid": 106, "setreuid": 113, "setregid": 114, "setgroups": 116, "setresuid": 117,
    "setresgid": 119, "setfsuid": 122, "setfsgid": 123,
}  # fmt: skip
SYSCALL_NAMES: dict[int, str] = {number: name for name, number in SYSCALLS.items()}
