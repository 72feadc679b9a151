"""The request: one call as every stage of the Sandbox sees it, made once per call.

A :class:`Request` holds the :class:`~libcfake.calls.Call`, its :class:`~libcfake.protocol.Function`
(the row of the call table), the descriptors that came with it by role, its *subject* (what
fault rules and the journal name it by, decided by the table's subject column: the resolved
virtual path of a path call, a link's own path for symlink, ``ip:port`` for connect...), and
who made it (the caller's ids; the umask, as the call says it, when the call creates something).
Fault matching, the host routes, the answers and the journal all read the same request, so a
rule cannot be applied to one spelling of a path and missed for another.

:class:`Requests` makes them: it knows the master's descriptors (shadow directories, memfds)
and turns each back into the virtual path it stands for.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from ._paths import one_spelling
from ._shadow import ShadowTree
from .calls import Call
from .fs import Caller, CallerView, FileSystem
from .protocol import FD_DIR1, FD_DIR2, FD_FILE, FD_SOCKET, Family, Function, ProcessInfo, Subject

_FD_ORDER = (FD_DIR1, FD_DIR2, FD_SOCKET, FD_FILE)
#: Each call's name -> its Function and the columns of its row every call reads (its family
#: and subject), looked up once per call: an enum member's properties cost a call each.
_ROWS: dict[str, tuple[Function, Family, Subject]] = {
    function.text: (function, function.family, function.subject) for function in Function
}
_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()


class Request:
    """One call, with its descriptors by role, its subject and its caller (see the module)."""

    __slots__ = (
        "_maker", "call", "changes", "dir1", "dir2", "family", "fds", "file", "function", "name",
        "path", "socket", "subject",
    )  # fmt: skip

    def __init__(self, maker: Requests, call: Call, fds: list[int]) -> None:
        self._maker = maker
        self.call = call
        #: the seed's name of the call ("open", "stat", ...)
        self.name = call.raw.function
        self.function, self.family, self.subject = _ROWS[self.name]
        #: whether the call would change files (:attr:`Call.changes_filesystem`)
        self.changes = call.changes_filesystem
        #: every descriptor that came with the call, in the wire's order; the master closes them
        self.fds = fds
        self.dir1 = self.dir2 = self.socket = self.file = None
        if fds:
            self.dir1, self.dir2, self.socket, self.file = _by_role(call.raw.fds, fds)
        #: the subject (see the module); None when there is none (getaddrinfo of no node)
        self.path: str | None = None

    @property
    def process(self) -> ProcessInfo:
        return self.call.process

    def second_path(self) -> str:
        """The second path of rename and link (the new name), in its one spelling."""
        return self._maker.resolve(self, self.call.raw.string2, self.dir2)

    def caller(self, *, with_umask: bool = False, real_ids: bool = False) -> Caller:
        """Whose permissions the call has: the process's effective ids, or its ``real_ids``
        (access); ``with_umask`` for calls that create something."""
        if with_umask:  # the umask the call says, if it does
            said = self.call.raw.said_umask
            return self._maker.views.caller(self.process, with_umask=True, said=said)
        return self._maker.views.caller(self.process, real_ids=real_ids)

    def view(self, *, with_umask: bool = False, real_ids: bool = False) -> CallerView:
        """The model as the caller sees it (:meth:`caller`'s ids): every filesystem answer walks
        its paths through this, so the kernel's permission checks on the way (search permission
        on every directory) are made for every call."""
        if with_umask:  # the umask the call says, if it does
            said = self.call.raw.said_umask
            return self._maker.views.view(self.process, with_umask=True, said=said)
        return self._maker.views.view(self.process, real_ids=real_ids)


def _by_role(bits: int, fds: list[int]) -> list[int | None]:
    """The descriptors of a call as (dir1, dir2, socket, file), from the bits that announce them."""
    given = iter(fds)
    return [next(given) if bits & bit else None for bit in _FD_ORDER]


class Views:
    """The model as each caller sees it: one :class:`~libcfake.fs.CallerView` per pair of ids,
    made once (nearly every call asks); with the umask, one per ids and umask.

    The umask is the one the call says (``said``: the shim puts the program's umask in every
    call); only a call that does not say it (the seccomp supervisor's) has it read from
    ``/proc/PID/status``, as it is at that moment."""

    def __init__(self, fs: FileSystem) -> None:
        self._fs = fs
        self._callers: dict[tuple[int, int], Caller] = {}  # (uid, gid) -> Caller, default umask
        self._views: dict[tuple[int, int], CallerView] = {}
        self._umasked: dict[tuple[int, int, int], Caller] = {}  # (euid, egid, umask) -> Caller
        self._umasked_views: dict[tuple[int, int, int], CallerView] = {}  # the same -> its view

    def caller(
        self,
        process: ProcessInfo,
        *,
        with_umask: bool = False,
        real_ids: bool = False,
        said: int | None = None,
    ) -> Caller:
        if with_umask:
            key = (process.euid, process.egid, _umask(process.pid) if said is None else said)
            caller = self._umasked.get(key)
            if caller is None:  # at most 512 per pair of ids
                caller = self._umasked[key] = Caller(*key)
            return caller
        ids = (process.uid, process.gid) if real_ids else (process.euid, process.egid)
        caller = self._callers.get(ids)
        if caller is None:
            caller = self._callers[ids] = Caller(*ids)
        return caller

    def view(
        self,
        process: ProcessInfo,
        *,
        with_umask: bool = False,
        real_ids: bool = False,
        said: int | None = None,
    ) -> CallerView:
        if with_umask:
            key = (process.euid, process.egid, _umask(process.pid) if said is None else said)
            view = self._umasked_views.get(key)
            if view is None:  # at most 512 per pair of ids
                caller = self.caller(process, with_umask=True, said=key[2])
                view = self._umasked_views[key] = self._fs.as_caller(caller)
            return view
        ids = (process.uid, process.gid) if real_ids else (process.euid, process.egid)
        view = self._views.get(ids)
        if view is None:
            view = self._views[ids] = self._fs.as_caller(self.caller(process, real_ids=real_ids))
        return view


class Requests:
    """Makes the :class:`Request` of each call: its subject, in the one spelling every decision
    is made on (see :func:`libcfake._paths.one_spelling`), with the master's descriptors (a
    shadow directory, a memfd) turned back into the virtual paths they stand for."""

    def __init__(
        self,
        fs: FileSystem,
        shadow: ShadowTree,
        memfd_device: int,
        route: Callable[[str], str | None],
    ) -> None:
        self.fs = fs
        self.views = Views(fs)
        self._shadow = shadow
        self._shadow_root = shadow.root  # every shadow directory's path starts with it
        self._memfd_device = memfd_device
        self._route = route

    def make(self, call: Call, fds: list[int]) -> Request:
        request = Request(self, call, fds)
        request.path = self._subject(request)
        return request

    def _subject(self, request: Request) -> str | None:
        raw = request.call.raw
        subject = request.subject
        if subject is Subject.PATH:
            return self.resolve(request, raw.string1, request.dir1)
        if subject is Subject.FILE:
            return self.fd_path(request.file)
        if subject is Subject.LINK:  # a symlink lives where its link path is; its target is text
            return self.resolve(request, raw.string2, request.dir2)
        if subject is Subject.ADDRESS:
            return f"{raw.ip_address()}:{raw.port}"
        if subject is Subject.HOST:
            return None if raw.string1 is None else os.fsdecode(raw.string1)
        if subject is Subject.IP:
            return str(raw.ip_address())
        if subject is Subject.SOCKET_NAME:
            name = raw.string1 or b""
            return "@" + os.fsdecode(name[1:]) if name.startswith(b"\0") else os.fsdecode(name)
        assert subject is Subject.CWD
        real = os.fsdecode(raw.string1 or b"/")
        return self._shadow.virtual_path(real) or real

    def resolve(self, request: Request, raw: bytes | None, fd: int | None) -> str:
        """A path the call names, from its directory descriptor when relative, in its one
        spelling, its ".." resolved by the model's walk (see :meth:`_dotdot`)."""
        path = self.join(None if fd is None else self.fd_path(fd), raw, request.process)
        return path if "/.." not in path else self._dotdot(request, path)

    def join(self, base: str | None, raw: bytes | None, process: ProcessInfo | None) -> str:
        """The one spelling of the path a call names (see :func:`~libcfake._paths.one_spelling`):
        ``raw`` from the virtual or host path of its directory descriptor, ``base``, a shadow
        directory's path made the virtual path it stands for. Every decision about the call (the
        fault rules, the route, a magic link, the model's answer, the journal) is made on it."""
        text = raw.decode(_FS_ENCODING, _FS_ERRORS) if raw else ""  # os.fsdecode of bytes
        if base is not None and not text.startswith("/"):
            text = base + "/" + text if text else base
        if "//" in text or "/./" in text or text.startswith(("/dev/", "/proc/")):
            text = one_spelling(text, process)  # (the rest are in their one spelling already)
        if not text.startswith(self._shadow_root):  # (most paths: no shadow directory's)
            return text
        translated = self._shadow.virtual_path(text.rstrip("/") or "/")
        if translated is not None:
            text = translated + ("/" if text.endswith("/") and translated != "/" else "")
        return text

    def _dotdot(self, request: Request, path: str) -> str:
        """A path of the model with its ".." components resolved by the model's walk, as the
        calling program's (the parent of a symlink's target, not of the link), so that fault
        rules and the journal name the file the call reaches: the walk to the last ".." and
        the rest as given. Left as it is when that walk fails (the answer's walk meets the same
        error), when the path ends in ".." (which rmdir, rename and unlink treat specially),
        and on the host's side (mounts, /proc, devices: their own checks resolve it)."""
        names = path.split("/")
        last = max((index for index, name in enumerate(names) if name == ".."), default=0)
        rest = names[last + 1 :]
        if not last or rest in ([], [""]):
            return path
        prefix = "/".join(names[: last + 1])
        if self._route(prefix) is not None:
            return path
        try:
            with self.fs.lock:
                view = request.view(real_ids=request.name == "access")
                _, reached = view.lookup(prefix)
        except OSError:
            return path
        return reached.rstrip("/") + "/" + "/".join(rest)

    def fd_path(self, fd: int | None) -> str | None:
        """The virtual path of a directory or file descriptor the master handed out."""
        if fd is None:
            return None
        info = os.fstat(fd)
        if info.st_dev == self._shadow.device:
            virtual = self._shadow.virtual_of_inode(info.st_ino)
            if virtual is not None:
                return virtual
        file = self.fs.file_of_memfd(info.st_ino) if info.st_dev == self._memfd_device else None
        if file is not None:
            return self.fs.path_of(file)
        return os.readlink(f"/proc/self/fd/{fd}")  # a host directory, e.g. under a mount


def _umask(pid: int) -> int:
    """A process's umask as it is now (the Umask line of /proc/PID/status; 022 if unreadable).

    For a call that does not say its umask (the seccomp supervisor's): read afresh for each
    call that creates something, since a program may change it any time.
    """
    try:
        fd = os.open(f"/proc/{pid}/status", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return 0o022
    try:
        status = os.read(fd, 4096)
    except OSError:
        return 0o022
    finally:
        os.close(fd)
    start = status.find(b"\nUmask:")
    if start < 0:
        return 0o022
    return int(status[start + 7 : status.index(b"\n", start + 1)], 8)
