"""The filesystem answers: each call on a path of the model (and on a descriptor of the
master's), answered as the kernel would, from :class:`~libcfake.fs.FileSystem`.

Like pyfakefs's ``fake_os`` beside its filesystem: this module knows the calls, ``fs.py`` knows
the model. Every answer walks its paths once through the caller's view of the model
(:meth:`Request.view <libcfake.request.Request.view>`), which applies the kernel's rules on the
way (search permission, symlinks followed per flag, the last-link rule); changes to what
resolves into a host mount are refused before any answer (:meth:`FsAnswers.answer`). Each
``_fs_NAME`` answers the call NAME and returns an outcome of :mod:`libcfake.outcomes`.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from collections.abc import Callable
from typing import Any

from pyfakefs.fake_file import FakeDirectory, FakeFile

from ._fifos import Fifos
from ._paths import AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW, follows_last_link, special_end
from ._shadow import ShadowTree
from .faults import DATA_CALLS, FaultRule
from .fs import CallerView, FileSystem
from .outcomes import PASSTHROUGH, Descriptor, Refused
from .protocol import MAX_XATTR_VALUE, WATCH_CLOSE, WATCH_READS, WATCH_WRITES, PackedStat
from .publish import Publisher
from .request import Request
from .routes import HostRoutes
from .stat import FILE_TYPES, FsStats

_TYPE_NAMES = {bits: name for name, bits in FILE_TYPES.items()}
_UTIME_NOW = (1 << 30) - 1
_UTIME_OMIT = (1 << 30) - 2
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
#: The most one read or write moves on Linux (MAX_RW_COUNT): a count a reply always carries.
_MAX_RW_COUNT = 0x7FFFF000
#: The data calls (faults.DATA_CALLS) by the LCF_WATCH_* bit that makes the shim ask about them.
_WATCHED_BY = (
    (WATCH_READS, frozenset({"read"})),
    (WATCH_WRITES, frozenset({"write", "fsync", "fdatasync", "ftruncate"})),
    (WATCH_CLOSE, frozenset({"close"})),
)
_S_IFMT = 0o170000
#: The permission an open's access mode needs (O_RDWR, and the invalid 3: both).
_WANTED = {os.O_RDONLY: os.R_OK, os.O_WRONLY: os.W_OK}
#: The opens: they check that they change no host file after their walk (FsAnswers._fs_open).
_OPENS = frozenset({"open", "openat"})
#: The calls on a host file's descriptor that read it: the program's real call.
_HOST_FILE_READS = frozenset({"fstat", "fgetxattr", "flistxattr"})


class FsAnswers:
    """Answers the calls on paths of the model and on the master's descriptors."""

    def __init__(
        self,
        fs: FileSystem,
        shadow: ShadowTree,
        fifos: Fifos,
        routes: HostRoutes,
        publisher: Publisher,
        memfd_device: int,
    ) -> None:
        self._fs = fs
        self._shadow = shadow
        self._fifos = fifos
        self._routes = routes
        self._publisher = publisher
        self._memfd_device = memfd_device
        #: the Sandbox's fault rules: an open of a file a rule on data calls covers is watched
        self.faults: list[FaultRule] = []
        self._answers: dict[str, Callable[[Request, str], Any]] = {
            name.removeprefix("_fs_"): getattr(self, name)
            for name in dir(self)
            if name.startswith("_fs_")
        }

    def answer(self, request: Request) -> Any:
        """The outcome of a call on a path of the model (``request.path``)."""
        name, path = request.name, request.path
        assert path is not None
        # nothing that resolves into a mount changes (an open checks it after its walk)
        if request.changes and name not in _OPENS:
            follow = name != "symlink" and follows_last_link(request.call)
            self._routes.check_writable(path, follow)
            if name in ("rename", "link"):
                self._routes.check_writable(request.second_path(), follow=False)
        answer = self._answers.get(name)
        if answer is None:
            raise Refused(errno.ENOSYS, f"the filesystem model does not answer {name}")
        return answer(request, path)

    def _fs_open(self, request: Request, path: str) -> Any:
        flags = request.call.raw.flags
        view = request.view()
        fs = self._fs
        follow = follows_last_link(request.call)
        writes = request.changes  # then nothing that resolves into a mount
        if flags & os.O_CREAT and flags & os.O_DIRECTORY:  # O_TMPFILE holds O_DIRECTORY too
            if writes:
                self._routes.check_writable(path, follow)
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)  # as Linux since 6.4
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            if writes:
                self._routes.check_writable(path, follow)
            return self._tmpfile(path, flags, view)
        try:
            found, canonical, directory = view.locate(path, follow=follow)
        except OSError:
            if writes:  # the answer the test's walk (no permission checked) leads to comes first
                self._routes.check_writable(path, follow)
            raise
        if writes:  # where the walk led: the canonical path the test's walk finds too
            self._routes.check_canonical(path, canonical)
        if found is None:
            if not flags & os.O_CREAT:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
            if canonical.endswith("/"):  # a name to create a file by, with a slash after it
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
            # at the canonical path: the end of a dangling symlink, as the kernel creates it
            obj = request.view(with_umask=True).create(directory, canonical, request.call.raw.mode)
        elif flags & os.O_CREAT and flags & os.O_EXCL:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
        else:
            obj = found
        mode = obj.stat_result.st_mode  # not obj.st_mode: see the note in libcfake.fs
        kind = mode & _S_IFMT
        if kind == stat.S_IFLNK:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
        accmode = flags & os.O_ACCMODE
        if isinstance(obj, FakeDirectory):
            if flags & os.O_PATH:  # names the directory, lists nothing: no access checked
                return Descriptor(self._shadow.open(canonical, None, path_only=True))
            if accmode != os.O_RDONLY or flags & (os.O_TRUNC | os.O_CREAT):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
            view.check(obj, os.R_OK, path)
            descriptor = Descriptor(self._shadow.open(canonical, _entries(obj)))
            self._publisher.publish(canonical, obj, listed=True)
            return descriptor
        if flags & os.O_DIRECTORY:
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        if kind == stat.S_IFIFO:
            return self._open_fifo(obj, flags, view, path)
        if kind != stat.S_IFREG:
            raise Refused(errno.ENXIO, "opening fifos, sockets and devices of the model")
        if flags & os.O_PATH:  # names the file, reads and writes nothing: no access checked
            memfd = fs.memfd(obj, writable=False)
            return Descriptor(os.open(f"/proc/self/fd/{memfd}", os.O_PATH | os.O_CLOEXEC))
        want = _WANTED.get(accmode, os.R_OK | os.W_OK)
        if flags & os.O_TRUNC:  # Linux truncates with O_RDONLY too, if the caller may write
            want |= os.W_OK
        if found is not None:  # a file the call created may be written, whatever its mode
            view.check(obj, want, path)
        memfd = fs.memfd(obj, writable=accmode != os.O_RDONLY)  # (read-only: still published)
        if flags & os.O_TRUNC:
            os.ftruncate(memfd, 0)
        reopen = accmode | (flags & os.O_APPEND) | os.O_CLOEXEC
        writable = accmode != os.O_RDONLY
        watched = self.faults or (writable and self._fs.disk_limited)  # (else _watch says 0)
        watch = self._watch((path, canonical), writable) if watched else 0
        if watch:  # (O_NOATIME: how a program that inherits it across exec knows it)
            reopen |= os.O_NOATIME
        descriptor = Descriptor(os.open(f"/proc/self/fd/{memfd}", reopen), watch)
        if not canonical.endswith("/"):
            self._publisher.publish_descriptor(obj, canonical)
        return descriptor

    def _watch(self, paths: tuple[str, str], writable: bool) -> int:
        """The LCF_WATCH_* bits of an open of a model file by these paths (as the program
        spelled it, canonical): the data calls a fault rule covers, and writes when the disk
        has a size. Every other descriptor's data calls never reach the master."""
        bits = WATCH_WRITES if writable and self._fs.disk_sized(paths[1]) else 0
        for rule in self.faults:
            for bit, calls in _WATCHED_BY:
                if not bits & bit and any(rule.covers(calls, path) for path in paths):
                    bits |= bit
        return bits

    _fs_openat = _fs_open

    def _open_fifo(self, obj: FakeFile, flags: int, view: CallerView, path: str) -> Any:
        """A FIFO of the model: a descriptor of the real FIFO behind it (see libcfake._fifos)."""
        if flags & os.O_PATH:
            real = self._fifos.real_path(obj)
            return Descriptor(os.open(real, os.O_PATH | os.O_CLOEXEC))
        accmode = flags & os.O_ACCMODE
        want = {os.O_RDONLY: os.R_OK, os.O_WRONLY: os.W_OK}.get(accmode, os.R_OK | os.W_OK)
        view.check(obj, want, path)
        return self._fifos.open(obj, flags, Descriptor)

    def _tmpfile(self, path: str, flags: int, view: CallerView) -> Descriptor:
        """O_TMPFILE: an unnamed file in a directory; here, a fresh memfd of no name."""
        directory = view.resolve(path)
        if not isinstance(directory, FakeDirectory):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        if flags & os.O_ACCMODE not in (os.O_WRONLY, os.O_RDWR):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
        view.may_change(directory, path)
        return Descriptor(os.memfd_create("libcfake-tmpfile", os.MFD_CLOEXEC))

    def _fs_stat(self, request: Request, path: str) -> PackedStat:
        follow = request.name != "lstat"
        return self._fs.packed_stat(request.view().resolve(path, follow))

    _fs_lstat = _fs_stat

    def _fs_readdir(self, request: Request, path: str) -> PackedStat:
        """What lstat says of an entry of a shadow directory a program lists, for its d_ino
        (shim/listing.c asks when the snapshot does not say). No permission is checked: the
        program's descriptor of the directory is its right to read the names and their inode
        numbers, as getdents shows them (a directory it may read but not search included)."""
        return self._fs.packed_stat(self._fs.resolve(path, follow=False))

    def _fs_access(self, request: Request, path: str) -> int:
        # access asks with the real ids (the hello carries them beside the effective ones),
        # its walk too
        view = request.view(real_ids=request.name == "access")
        amode = request.call.raw.flags & (os.R_OK | os.W_OK | os.X_OK)
        if amode & os.W_OK:
            obj, resolved = view.lookup(path)
            if self._fs.protection_of(resolved) is not None:  # a question, not a change
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        else:
            obj = view.resolve(path)
        if amode:
            view.check(obj, amode, path)
        return 0

    _fs_eaccess = _fs_access

    def _fs_mkdir(self, request: Request, path: str) -> int:
        view = request.view(with_umask=True)
        caller = view.caller
        parent, _, name = view.new_name(path, directory_wanted=True)
        mode = stat.S_IFDIR | (stat.S_IMODE(request.call.raw.mode) & ~caller.umask & 0o7777)
        self._fs.add_entry(parent, name, mode, caller)
        return 0

    def _fs_rmdir(self, request: Request, path: str) -> int:
        end = special_end(path)  # the kernel refuses these before looking at the directory
        if end is not None:
            code = {".": errno.EINVAL, "..": errno.ENOTEMPTY, "/": errno.EBUSY}[end]
            raise OSError(code, os.strerror(code), path)
        request.view().rmdir(path)
        return 0

    def _fs_unlink(self, request: Request, path: str) -> int:
        self._fs.forget(request.view().unlink(path))
        return 0

    def _fs_rename(self, request: Request, path: str) -> int:
        new = request.second_path()
        route = self._routes.route(new)
        if route is not None:
            raise Refused(errno.EXDEV, f"rename into the host ({route}) is not allowed")
        flags = request.call.raw.flags
        if flags & _RENAME_EXCHANGE:
            raise Refused(errno.EINVAL, "RENAME_EXCHANGE is not modelled yet")
        if special_end(path) or special_end(new):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), path)
        replaced = request.view().rename(path, new, noreplace=bool(flags & _RENAME_NOREPLACE))
        # pyfakefs counted the replaced file's lost name; it lives on under its other names
        last_name = replaced is not None and replaced.st_nlink <= 0
        if last_name and replaced is not None and not isinstance(replaced, FakeDirectory):
            self._fs.forget(replaced)  # no name left: its memfd goes (a directory has none)
        return 0

    def _fs_readlink(self, request: Request, path: str) -> str:
        return request.view().readlink(path)

    def _fs_symlink(self, request: Request, path: str) -> int:
        """``path`` is the link's own path (the call's subject); its target is kept as given."""
        if self._routes.route(path) is not None:
            raise Refused(errno.EROFS, "a symlink in a read-only host mount")
        request.view().symlink(os.fsdecode(request.call.raw.string1 or b""), path)
        return 0

    def _fs_link(self, request: Request, path: str) -> int:
        new = request.second_path()
        if self._routes.route(new) is not None:
            raise Refused(errno.EXDEV, "a hard link into a read-only host mount")
        request.view().link(path, new, follow=bool(request.call.raw.flags & AT_SYMLINK_FOLLOW))
        return 0

    def _fs_chdir(self, request: Request, path: str) -> Descriptor:
        view = request.view()
        obj, canonical = view.lookup(path)
        if not isinstance(obj, FakeDirectory):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        view.check(obj, os.X_OK, path)
        return Descriptor(self._shadow.open(canonical, None))

    def _fs_realpath(self, request: Request, path: str) -> str:
        return request.view().lookup(path)[1]  # every component must exist

    def _fs_chmod(self, request: Request, path: str) -> int:
        obj = request.view().resolve(path, follow=not request.call.raw.flags & AT_SYMLINK_NOFOLLOW)
        return self._chmod(obj, request, path)

    def _chmod(self, obj: FakeFile, request: Request, path: str) -> int:
        caller = request.caller()
        if not caller.is_root and obj.st_uid != caller.uid:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), path)
        if stat.S_ISLNK(obj.st_mode):
            # what Linux answers (a symlink's mode is fixed): a right answer, not a violation
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP), path)
        obj.st_mode = stat.S_IFMT(obj.st_mode) | (request.call.raw.mode & 0o7777)
        obj.st_ctime = time.time()  # a change of the inode, as the kernel's
        return 0

    def _fs_chown(self, request: Request, path: str) -> int:
        obj = request.view().resolve(path, follow=not request.call.raw.flags & AT_SYMLINK_NOFOLLOW)
        return self._chown(obj, request, path)

    def _chown(self, obj: FakeFile, request: Request, path: str) -> int:
        uid, gid = request.call.raw.values[:2]
        if not all(value == -1 or 0 <= value < 2**32 - 1 for value in (uid, gid)):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)  # as the kernel
        caller = request.caller()
        owner = caller.uid == obj.st_uid
        # only root gives files away; the owner may give one to its own group (or keep them)
        gives_uid = uid != -1 and (uid != obj.st_uid or not owner)
        gives_gid = gid != -1 and (gid not in (obj.st_gid, caller.gid) or not owner)
        if not caller.is_root and (gives_uid or gives_gid):
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), path)
        if uid != -1:
            obj.st_uid = uid
        if gid != -1:
            obj.st_gid = gid
        obj.st_ctime = time.time()
        return 0

    def _fs_utimens(self, request: Request, path: str) -> int:
        obj = request.view().resolve(path, follow=not request.call.raw.flags & AT_SYMLINK_NOFOLLOW)
        return self._utimens(obj, request)

    def _utimens(self, obj: FakeFile, request: Request) -> int:
        asec, ansec, msec, mnsec = request.call.raw.values
        if ansec == mnsec == _UTIME_OMIT:
            return 0
        caller = request.caller()
        if not caller.is_root and caller.uid != obj.st_uid:  # as the kernel's utimes_common
            if {ansec, mnsec} <= {_UTIME_NOW, _UTIME_OMIT}:  # "now": the owner or a writer
                self._fs.check(obj, caller, os.W_OK, self._fs.path_of(obj))
            else:  # given times: the owner only
                raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))
        now = time.time_ns()
        times = [
            None if nsec == _UTIME_OMIT else now if nsec == _UTIME_NOW else sec * 10**9 + nsec
            for sec, nsec in ((asec, ansec), (msec, mnsec))
        ]
        self._fs.set_times(obj, times[0], times[1])  # to the nanosecond
        return 0

    def _fs_truncate(self, request: Request, path: str) -> int:
        view = request.view()
        obj = view.resolve(path)
        if isinstance(obj, FakeDirectory):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        view.check(obj, os.W_OK, path)
        self._fs.truncate_file(obj, request.call.raw.values[0])
        return 0

    def _fs_exec(self, request: Request, path: str) -> Any:
        """exec of a path the model knows: the file to run, as a descriptor the shim executes
        (``execveat(fd, "", AT_EMPTY_PATH)``; a script's ``#!`` line it reads from the
        descriptor, and asks about the interpreter in turn). That is the model's file (its
        memfd, read-only), or the host file in a mount a model symlink leads to (a venv's
        ``bin/python``). A path the model does not know is the host's program: passed through.
        """
        view = request.view()
        try:
            known = view.entry(path) is not None
        except FileNotFoundError:  # a directory on the way is not the model's either
            known = False
        if not known:  # not in the model: the host's program, passed through
            return PASSTHROUGH
        obj, canonical = view.lookup(path)  # its symlinks followed (ENOENT, ELOOP, EACCES)
        mode = obj.stat_result.st_mode
        if not stat.S_ISREG(mode):  # a directory, a FIFO...: what Linux answers
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        view.check(obj, os.X_OK, path)
        in_mount = self._fs.mount_of(canonical) is not None
        if mode & (stat.S_ISUID | stat.S_ISGID):
            raise Refused(errno.EPERM, f"{path} is setuid/setgid: " + (
                "setuid/setgid programs run without the shim (LD_PRELOAD)" if in_mount else
                "a program of the model runs with the caller's ids, not those its mode gives"
            ))  # fmt: skip
        if in_mount:
            return Descriptor(self._host_program(path, canonical))
        memfd = self._fs.memfd(obj, writable=False)
        return Descriptor(os.open(f"/proc/self/fd/{memfd}", os.O_RDONLY | os.O_CLOEXEC))

    def _host_program(self, path: str, canonical: str) -> int:
        """A descriptor of the host program in a mount that the model's ``path`` leads to (at
        ``canonical``): readable when the master may read it (the shim reads a script's ``#!``
        line), else O_PATH (enough to run a binary)."""
        real = os.path.realpath(canonical)
        if not any(real == m or real.startswith(m.rstrip("/") + "/") for m in self._fs.real_mounts):
            raise Refused(errno.EACCES, f"{path} leads to {canonical}, out of every host mount")
        try:
            return os.open(real, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except PermissionError:
            return os.open(real, os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)

    def file_call(self, request: Request) -> Any:
        """fstat, fchmod, fchown, futimens, fsetxattr, fremovexattr and the attribute ioctls on
        a descriptor: the master's (the model answers), or a host file's (changes refused)."""
        fd = request.file
        if fd is None:
            return PASSTHROUGH
        info = os.fstat(fd)
        virtual = None
        obj: FakeFile | None = None
        if info.st_dev == self._memfd_device:
            obj = self._fs.file_of_memfd(info.st_ino)
            if obj is None and request.name == "fstat":  # a file whose names are all gone?
                nameless = self._fs.nameless_stat(info)
                if nameless is not None:
                    return nameless
        elif info.st_dev == self._shadow.device:
            virtual = self._shadow.virtual_of_inode(info.st_ino)
            obj = self._fs.resolve(virtual) if virtual is not None else None
        else:
            obj = self._fifos.file_of(info)
        function = request.name
        if function in DATA_CALLS:
            return self._data_call(request, obj, fd, info)
        if obj is None:
            return self._host_file_call(request, fd)
        if function == "fstat":
            return self._fs.packed_stat(obj)
        path = virtual or self._fs.path_of(obj)
        if function == "fstatfs":
            return self._fs.statfs(path)
        if function == "fchmod":
            return self._chmod(obj, request, path)
        if function == "fchown":
            return self._chown(obj, request, path)
        if function in ("fgetxattr", "flistxattr"):
            return self._xattr_read(request.view(), obj, request, path)
        if function in ("fsetxattr", "fremovexattr"):
            protection = self._fs.protection_of(path)
            if protection is not None:
                raise Refused(errno.EROFS, f"{function} of {path}, in {protection}")
            return self._xattr_change(request.view(), obj, request, path)
        if function == "fsioctl":  # nor attribute flags (chattr)
            raise OSError(errno.ENOTTY, os.strerror(errno.ENOTTY), path)
        return self._utimens(obj, request)

    def _data_call(
        self, request: Request, obj: FakeFile | None, fd: int, info: os.stat_result
    ) -> Any:
        """read, write, fsync, fdatasync, ftruncate, close on a watched descriptor that no
        fault rule failed: the program's real call, except what would make the model's files
        larger than its disk: ENOSPC, after a short write that fills it (as Linux does)."""
        name = request.name
        if obj is None or name not in ("write", "ftruncate") or not self._fs.disk_limited:
            return PASSTHROUGH  # (a descriptor the mark outlived: no model file now)
        path = self._fs.path_of(obj)
        if not self._fs.disk_sized(path):
            return PASSTHROUGH
        total, used = self._fs.disk_usage(path)
        size, room = info.st_size, total - used
        values = request.call.raw.values
        if name == "ftruncate":  # a larger file counts, as pyfakefs counts it
            if values[0] - size > room:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return PASSTHROUGH
        offset, count = values[0], values[1]
        if offset < 0:  # at the descriptor's position (the master's copy shares it)
            appends = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND
            offset = size if appends else os.lseek(fd, 0, os.SEEK_CUR)
        if offset + count - size <= room:
            return PASSTHROUGH
        allowed = size + max(room, 0) - offset  # what still fits
        if allowed <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return min(allowed, _MAX_RW_COUNT)

    def _host_file_call(self, request: Request, fd: int) -> Any:
        """A call on a descriptor that is no file of the model: a change of a file with a path
        (a host file: a mount's, a device, a redirection) is refused; the rest (fstat, the
        program's own memfds) is the program's real call."""
        target = os.readlink(f"/proc/self/fd/{fd}")
        if (
            request.name in _HOST_FILE_READS
            or not target.startswith("/")
            or target.startswith("/memfd:")
        ):
            return PASSTHROUGH
        raise Refused(errno.EROFS, f"{request.name} of the host file {target}")

    def _fs_mknod(self, request: Request, path: str) -> int:
        """mknod, mkfifo: regular files and FIFOs are made in the model; devices and sockets
        are not modelled (a violation)."""
        kind = stat.S_IFMT(request.call.raw.mode) or stat.S_IFREG
        if kind == stat.S_IFDIR:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), path)  # as the kernel
        if kind not in (stat.S_IFREG, stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
        view = request.view(with_umask=True)
        directory, _, name = view.new_name(path)  # (ENOENT, EACCES, EEXIST first)
        if kind not in (stat.S_IFREG, stat.S_IFIFO):
            kind_name = _TYPE_NAMES.get(kind, "special file")
            raise Refused(
                errno.EPERM, f"mknod of a {kind_name}: not modelled (regular files, FIFOs)"
            )
        # a FIFO, opened, is a real FIFO the master owns (_open_fifo)
        mode = kind | (stat.S_IMODE(request.call.raw.mode) & ~view.caller.umask)
        self._fs.add_entry(directory, name, mode, view.caller)
        return 0

    def _fs_statfs(self, request: Request, path: str) -> FsStats:
        """statfs, statvfs: the model's filesystem, once the path resolves (ENOENT, EACCES)."""
        _, canonical = request.view().lookup(path)
        return self._fs.statfs(canonical)

    def _fs_getxattr(self, request: Request, path: str) -> Any:
        """getxattr, listxattr (and the l-forms) on a model path."""
        view = request.view()
        obj = view.resolve(path, follow=not request.call.raw.flags & AT_SYMLINK_NOFOLLOW)
        return self._xattr_read(view, obj, request, path)

    _fs_listxattr = _fs_getxattr

    @staticmethod
    def _xattr_read(view: CallerView, obj: FakeFile, request: Request, path: str) -> Any:
        """An attribute's value (getxattr) or the names (listxattr) of ``obj``, sized as Linux
        does: the length alone for a buffer of 0 bytes (``values[0]``), ERANGE for too small a
        buffer."""
        raw = request.call.raw
        if request.name.endswith("getxattr"):
            data = view.getxattr(obj, os.fsdecode(raw.string2 or b""), path)
        else:
            data = view.listxattr(obj)
        asked = raw.values[0]
        if asked == 0:
            return len(data)
        if len(data) > asked:
            raise OSError(errno.ERANGE, os.strerror(errno.ERANGE), path)
        return data

    def _fs_setxattr(self, request: Request, path: str) -> int:
        """setxattr, removexattr (and the l-forms) on a model path."""
        view = request.view()
        obj = view.resolve(path, follow=not request.call.raw.flags & AT_SYMLINK_NOFOLLOW)
        return self._xattr_change(view, obj, request, path)

    _fs_removexattr = _fs_setxattr

    @staticmethod
    def _xattr_change(view: CallerView, obj: FakeFile, request: Request, path: str) -> int:
        """Set or remove an attribute of ``obj``. The shim sends the name, a NUL and the value
        as the second string, values[0] being the value's size; a value larger than one string
        carries (``MAX_XATTR_VALUE``) comes without it, and is refused, as is what the model
        does not keep (POSIX ACLs)."""
        raw = request.call.raw
        setting = request.name.endswith("setxattr")
        name, _, value = (raw.string2 or b"").partition(b"\0")
        size = raw.values[0]
        if setting and len(name) + 1 + size != len(raw.string2 or b""):
            why = (
                f"a value of {size} bytes (attribute values of at most {MAX_XATTR_VALUE} bytes "
                "are modelled)"
                if size > MAX_XATTR_VALUE
                else "the value did not come with the call"
            )
            raise Refused(errno.ENOSPC, f"{request.name} of {path}: {why}")
        try:
            view.setxattr(obj, os.fsdecode(name), value if setting else None, raw.mode, path)
        except ValueError as error:  # too much for the model, a POSIX ACL, a security. name
            code = errno.ENOSPC if name.startswith((b"user.", b"trusted.")) else errno.EOPNOTSUPP
            raise Refused(code, f"{request.name} of {path}: {error}") from None
        return 0


def _entries(directory: FakeDirectory) -> list[tuple[str, int]]:
    return [(name, stat.S_IFMT(obj.stat_result.st_mode)) for name, obj in directory.entries.items()]
