"""The virtual filesystem programs see: names and metadata in pyfakefs, contents in memfds.

:class:`FileSystem` is what a test arranges (``sb.fs`` of a Sandbox)::

    sb.fs.create_file("/etc/app.conf", contents="port = 8080\\n")
    sb.fs.create_dir("/var/log/app")
    sb.fs.create_symlink("/etc/app.d/current", "/etc/app.conf")
    sb.run(["./app"])
    assert sb.fs.read_text("/var/log/app/app.log").startswith("started")

The namespace and the metadata (modes, owners, links, the errno a Linux kernel would give) are a
pyfakefs ``FakeFilesystem``, available as ``fs.fake`` for anything this class does not wrap.
A regular file's contents move into a memfd the master owns the first time a program opens it;
each open hands the program its own open file description of that memfd, so offsets are
independent, read-only opens cannot write, and whatever a program writes is visible here at once.

Host directories a program needs to start (``/usr``, the Python installation, ...) are *mounts*:
present in the namespace read-only and loaded lazily, and read by the shim itself without a round
trip. Everything else exists only here.
"""

from __future__ import annotations

import errno
import functools
import os
import posixpath
import stat
import struct
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from os import stat_result
from typing import Any, NamedTuple, cast

from pyfakefs import helpers
from pyfakefs.fake_file import (
    FakeDirectory,
    FakeDirectoryFromRealDirectory,
    FakeFile,
    FakeFileFromRealFile,
)
from pyfakefs.fake_filesystem import FakeFilesystem
from pyfakefs.fake_os import FakeOsModule
from pyfakefs.helpers import FakeStatResult

from .protocol import MAX_BYTES, MAX_XATTR_VALUE, PackedStat, pack_stat_ns
from .snapshot import DESCRIPTOR, RECORD, descriptor_key
from .stat import FsStats, StatResult

#: Host paths mounted read-only by default: what programs need to start.
DEFAULT_MOUNTS: tuple[str, ...] = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    sys.base_prefix,
    sys.prefix,
)
#: Host devices a program may open in any mode: they reach no persistent state.
DEVICES: frozenset[str] = frozenset(
    {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}
)

AnyPath = str | os.PathLike[str]


def _error(code: int, path: object = None) -> OSError:
    return OSError(code, os.strerror(code), None if path is None else str(path))


@dataclass(frozen=True)
class Caller:
    """Whose permissions a filesystem operation is checked with."""

    uid: int
    gid: int
    umask: int = 0o022

    @property
    def is_root(self) -> bool:
        return self.uid == 0


def _absolute(path: AnyPath, what: str = "path") -> str:
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str or PathLike of str, not {type(text).__name__}")
    if not text.startswith("/"):
        raise ValueError(f"{what} {text!r} must be absolute: the virtual filesystem has no cwd")
    return text


# A note on speed: pyfakefs forwards a file's st_mode, st_uid, st_size... to its ``stat_result``
# through ``FakeFile.__getattr__``, at about a microsecond a read. The master's hot path (lookup,
# stat, permission checks) reads ``obj.stat_result``'s attributes directly; the size and times
# of a file whose contents are in a memfd are the memfd's (see _MemfdBacked and _stat_values).
# The size and the times (nanoseconds) are read from the fields behind FakeStatResult's
# properties, ``_st_size`` and ``_st_atime_ns``...: publishing reads them for every entry of a
# directory, and a property costs several times more (tests/test_snapshot.py checks that the
# snapshot says what stat says, so a pyfakefs that renames them fails there).


class FileSystem:
    """The filesystem model one Sandbox serves (thread-safe: calls hold ``lock``)."""

    def __init__(
        self,
        mounts: Iterable[str] = DEFAULT_MOUNTS,
        *,
        umask: int = 0o022,
        fake: FakeFilesystem | None = None,
    ) -> None:
        """``fake``: serve an existing pyfakefs filesystem (pyfakefs's ``fs`` fixture, say)."""
        # The package's own handles on pyfakefs. A test gets them as ``fake`` and ``os``, which
        # also mark the model as changeable behind this class's back (see ``edited_directly``).
        self._fake = fake if fake is not None else FakeFilesystem(path_separator="/")
        if fake is None:
            self._fake.umask = umask
        self._os = FakeOsModule(self._fake)
        #: Whether pyfakefs itself (``fake``, ``os``) was handed out: changes made through it are
        #: not heard of, so the Sandbox then empties its snapshot at every program start.
        self.edited_directly = False
        self.lock = threading.RLock()
        self.mounts: tuple[str, ...] = ()
        self.real_mounts: tuple[str, ...] = ()  # the mounts' realpaths, symlinks resolved
        self.read_only: tuple[str, ...] = ()  # host copies programs may read but not change
        self._memfds: dict[int, tuple[FakeFile, int]] = {}  # id(file) -> (file, memfd)
        self._disk_sizes: dict[int, int] = {}  # set_disk_usage: pyfakefs device -> bytes
        self._by_inode: dict[int, FakeFile] = {}  # memfd inode -> file
        # memfd inode -> (file, memfd_made) of a file that lost its last name (see forget)
        self._nameless: dict[int, tuple[FakeFile, int]] = {}
        #: Called (with ``lock`` held) before this API changes the model: the Sandbox empties
        #: its snapshot. (Moving a file into a memfd changes no answer about it, as a rule; when
        #: it does, this is called right after, before anyone could see the new answer.)
        self.on_change: Callable[[], None] = _nothing
        #: Called (with ``lock`` held) when a program may now write a file unseen (see
        #: :meth:`written_unseen`), before it can: the Sandbox withdraws what it published of
        #: that file. By default, the same as a change of the whole model.
        self.on_written: Callable[[FakeFile], None] = lambda file: self.on_change()
        #: Subdirectories counted per directory, for its link count: id -> (directory, count).
        #: Emptied by :meth:`model_changed`; not used once pyfakefs was handed out.
        self._subdirectories: dict[int, tuple[FakeDirectory, int]] = {}
        self._views: dict[Caller, CallerView] = {}  # see as_caller
        self._prototype: FakeFile | None = None  # see _new_file
        self._fake.root.st_mode = stat.S_IFDIR | 0o755
        for path, bits in (("/tmp", 0o1777), ("/var/tmp", 0o1777), ("/root", 0o700)):
            if not self._fake.exists(path):
                self._fake.create_dir(path, perm_bits=bits, apply_umask=False)
            self._fake.resolve(path).st_mode = stat.S_IFDIR | bits
        for mount in mounts:
            self.mount(mount)

    def model_changed(self) -> None:
        """Forget what was counted of the model: call (with ``lock`` held) before a change that
        is not made through this API (the Sandbox does, before each call a program makes that
        may change files)."""
        self._subdirectories.clear()

    def _changing(self) -> None:
        """Called (with ``lock`` held) before this API changes the model."""
        self.model_changed()
        self.on_change()

    # -- what a test arranges -------------------------------------------------------------

    @property
    def fake(self) -> FakeFilesystem:
        """pyfakefs's filesystem itself, for anything this class does not wrap."""
        self.edited_directly = True
        return self._fake

    @property
    def os(self) -> FakeOsModule:
        """pyfakefs's ``os`` module over the model."""
        self.edited_directly = True
        return self._os

    def mount(self, host_path: str) -> None:
        """Make a host file or directory visible read-only at the same path (loaded lazily).

        Its realpath is recorded in ``real_mounts``: a host path is the mount's only if its
        realpath lies under one of them (a symlink inside a mount may lead out of every mount).
        """
        path = _absolute(host_path, "mount")
        path = posixpath.normpath(path)
        if path in self.mounts or not os.path.lexists(path):
            return
        with self.lock:
            self._changing()
            if any(path == m or path.startswith(m.rstrip("/") + "/") for m in self.mounts):
                return  # already inside a mount
            if os.path.islink(path):
                self._fake.add_real_symlink(path)
            elif os.path.isdir(path):
                _loaded_fast(self._fake.add_real_directory(path, read_only=False, lazy_read=True))
            else:
                self._fake.add_real_file(path, read_only=False)
            self.mounts = (*self.mounts, path)
            self.real_mounts = (*self.real_mounts, os.path.realpath(path))

    def create_file(
        self,
        path: AnyPath,
        contents: str | bytes = b"",
        st_mode: int = stat.S_IFREG | 0o644,
        encoding: str = "utf-8",
        uid: int | None = None,
        gid: int | None = None,
    ) -> None:
        """Create a regular file (and missing parent directories) holding ``contents``."""
        target = _absolute(path)
        if not isinstance(contents, (str, bytes)):
            raise TypeError(
                f"contents of {target} must be str or bytes, not {type(contents).__name__}"
            )
        data = contents.encode(encoding) if isinstance(contents, str) else contents
        with self.lock:
            self._changing()
            self._check_not_mounted(target)
            made = self._fake.create_file(
                target, st_mode=stat.S_IFREG | stat.S_IMODE(st_mode), contents=data,
                apply_umask=False,
            )  # fmt: skip
            self._own(made, uid, gid)

    def create_socket(
        self, path: AnyPath, perm_bits: int = 0o755, uid: int | None = None, gid: int | None = None
    ) -> FakeFile:
        """The file a bound unix socket leaves at ``path`` (and missing parents); an entry already
        there is kept as it is."""
        target = _absolute(path)
        with self.lock:
            if self._fake.exists(target, check_link=True):
                return self._fake.resolve(target, follow_symlinks=False)
            self._changing()
            self._check_not_mounted(target)
            made: FakeFile = self._fake.create_file(
                target, st_mode=stat.S_IFSOCK | perm_bits, apply_umask=False
            )
            self._own(made, uid, gid)
            return made

    def create_dir(
        self, path: AnyPath, perm_bits: int = 0o755, uid: int | None = None, gid: int | None = None
    ) -> None:
        """Create a directory and any missing parents; an existing one gets these bits and owner."""
        target = _absolute(path)
        with self.lock:
            self._changing()
            self._check_not_mounted(target)
            if self._fake.isdir(target):
                made = self._fake.resolve(target)
                made.st_mode = stat.S_IFDIR | perm_bits
            else:
                made = self._fake.create_dir(target, perm_bits=perm_bits, apply_umask=False)
            self._own(made, uid, gid)

    def create_symlink(
        self, path: AnyPath, target: AnyPath, uid: int | None = None, gid: int | None = None
    ) -> None:
        """Create a symbolic link at ``path`` pointing at ``target`` (kept exactly as given)."""
        link = _absolute(path)
        with self.lock:
            self._changing()
            self._check_not_mounted(link)
            self._own(self._fake.create_symlink(link, os.fspath(target)), uid, gid)

    def remove(self, path: AnyPath) -> None:
        """Remove a file, a symlink or an empty directory."""
        target = _absolute(path)
        with self.lock:
            self._changing()
            if self._fake.isdir(target) and not self._fake.islink(target):
                self._fake.rmdir(target)
            else:
                self._fake.remove(target)

    def add_real_file(
        self, source: AnyPath, target_path: AnyPath | None = None, read_only: bool = True
    ) -> None:
        """Show a host file in the model (read lazily) at ``target_path`` or its own path.

        Read-only by default: a program writing it gets EROFS and a violation. With
        ``read_only=False`` programs change the model's copy, never the host file.
        """
        target = _absolute(target_path if target_path is not None else source)
        with self.lock:
            self._changing()
            self._fake.add_real_file(os.fspath(source), read_only=False, target_path=target)
            self._protect(target, read_only)

    def add_real_directory(
        self, source: AnyPath, target_path: AnyPath | None = None, read_only: bool = True
    ) -> None:
        """Show a host directory tree in the model (read lazily), like :meth:`add_real_file`."""
        target = _absolute(target_path if target_path is not None else source)
        with self.lock:
            self._changing()
            _loaded_fast(
                self._fake.add_real_directory(
                    os.fspath(source), read_only=False, lazy_read=True, target_path=target
                )
            )
            self._protect(target, read_only)

    def _protect(self, path: str, read_only: bool) -> None:
        if read_only:
            self.read_only = (*self.read_only, posixpath.normpath(path))

    def exists(self, path: AnyPath) -> bool:
        with self.lock:
            return bool(self._fake.exists(_absolute(path)))

    def read_bytes(self, path: AnyPath) -> bytes:
        """The file's current contents, including what programs wrote."""
        with self.lock:
            file = self._regular(self._fake.resolve(_absolute(path)), _absolute(path))
            return file.byte_contents or b""

    def read_text(self, path: AnyPath, encoding: str = "utf-8") -> str:
        return self.read_bytes(path).decode(encoding)

    def listdir(self, path: AnyPath) -> list[str]:
        with self.lock:
            return sorted(self._fake.listdir(_absolute(path)))

    def stat(self, path: AnyPath, *, follow_symlinks: bool = True) -> StatResult:
        """What a program's ``stat`` (or, without following, ``lstat``) of ``path`` says now:
        the size and times of a file programs wrote included (FileNotFoundError if missing)."""
        with self.lock:
            return self.stat_of(self.resolve(_absolute(path), follow=follow_symlinks))

    def lstat(self, path: AnyPath) -> StatResult:
        return self.stat(path, follow_symlinks=False)

    def readlink(self, path: AnyPath) -> str:
        """A symlink's target, as a program's ``readlink`` gives it (OSError EINVAL if not one)."""
        with self.lock:
            target = _absolute(path)
            obj = self.resolve(target, follow=False)
            if not stat.S_ISLNK(obj.stat_result.st_mode):
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), target)
            return os.fsdecode(obj.contents or "")

    def is_dir(self, path: AnyPath) -> bool:
        return self._is(path, stat.S_IFDIR, follow=True)

    def is_file(self, path: AnyPath) -> bool:
        return self._is(path, stat.S_IFREG, follow=True)

    def is_symlink(self, path: AnyPath) -> bool:
        return self._is(path, stat.S_IFLNK, follow=False)

    def _is(self, path: AnyPath, kind: int, *, follow: bool) -> bool:
        with self.lock:
            try:
                obj = self.resolve(_absolute(path), follow=follow)
            except OSError:
                return False
            return stat.S_IFMT(obj.stat_result.st_mode) == kind

    def close(self) -> None:
        """Give the model its contents back and close the memfds (programs keep their copies)."""
        with self.lock:
            for file, _ in self._memfds.values():
                if isinstance(file, _MemfdBacked):
                    file.detach()
            self._memfds.clear()
            self._by_inode.clear()
            self._nameless.clear()

    # -- extended attributes --------------------------------------------------------------

    def setxattr(
        self,
        path: AnyPath,
        name: str | bytes,
        value: bytes,
        flags: int = 0,
        *,
        follow_symlinks: bool = True,
    ) -> None:
        """Give the model object at ``path`` the extended attribute ``name`` ("user.origin")
        with ``value``, as root's setxattr would: ``flags`` ``os.XATTR_CREATE`` (FileExistsError
        if it has one) or ``os.XATTR_REPLACE`` (OSError ENODATA if not). Programs see it with
        getxattr, listxattr (``getfattr``, ``os.getxattr``). ValueError for a name outside the
        modelled namespaces (user., trusted.) or a value over ``MAX_XATTR_VALUE`` bytes."""
        key = _xattr_key(name)
        data = bytes(value)
        if not _in_namespace(key, _MODELLED_NAMESPACES):
            raise ValueError(f"{key!r}: the model keeps user. and trusted. attributes")
        with self.lock:
            obj = self.resolve(_absolute(path), follow=follow_symlinks)
            self._changing()
            self.set_xattr(obj, key, data, flags, path)

    def getxattr(self, path: AnyPath, name: str | bytes, *, follow_symlinks: bool = True) -> bytes:
        """The value of the extended attribute ``name`` of ``path`` (OSError ENODATA if none),
        including what programs set."""
        key = _xattr_key(name)
        with self.lock:
            value = self.xattrs(self.resolve(_absolute(path), follow=follow_symlinks)).get(key)
            if value is None:
                raise _error(errno.ENODATA, path)
            return value

    def listxattr(self, path: AnyPath, *, follow_symlinks: bool = True) -> list[str]:
        """The names of the extended attributes of ``path``, in the order Linux's tmpfs lists
        them."""
        with self.lock:
            return _xattr_order(self.xattrs(self.resolve(_absolute(path), follow=follow_symlinks)))

    def removexattr(
        self, path: AnyPath, name: str | bytes, *, follow_symlinks: bool = True
    ) -> None:
        """Remove the extended attribute ``name`` of ``path`` (OSError ENODATA if none)."""
        key = _xattr_key(name)
        with self.lock:
            obj = self.resolve(_absolute(path), follow=follow_symlinks)
            self._changing()
            self.set_xattr(obj, key, None, 0, path)

    @staticmethod
    def xattrs(obj: FakeFile) -> dict[str, bytes]:
        """A model object's extended attributes, name -> value (pyfakefs's own store, which
        ``fs.os.getxattr`` reads too). Change them through :meth:`set_xattr`."""
        return cast("dict[str, bytes]", obj.xattr)

    def set_xattr(
        self, obj: FakeFile, name: str, value: bytes | None, flags: int, path: object
    ) -> None:
        """Set (``value`` None: remove) an attribute of ``obj`` as tmpfs does, with no permission
        checks (see :meth:`CallerView.setxattr`): ``flags`` XATTR_CREATE (EEXIST if it exists),
        XATTR_REPLACE (ENODATA if not); removing a missing one is ENODATA; its ctime becomes
        now. ValueError for a value over ``MAX_XATTR_VALUE`` bytes, or names whose list would
        not fit in a reply (``MAX_BYTES``)."""
        store = self.xattrs(obj)
        exists = name in store
        if value is None:
            if not exists:
                raise _error(errno.ENODATA, path)
            del store[name]
        else:
            if len(value) > MAX_XATTR_VALUE:
                raise ValueError(f"values of at most {MAX_XATTR_VALUE} bytes are modelled")
            if exists and flags & os.XATTR_CREATE:
                raise _error(errno.EEXIST, path)
            if not exists and flags & os.XATTR_REPLACE:
                raise _error(errno.ENODATA, path)
            if not exists and _list_bytes([*store, name]) > MAX_BYTES:
                raise ValueError(f"the names of a file's attributes fit in {MAX_BYTES} bytes")
            store[name] = value
        obj.st_ctime = time.time()

    # -- namespace -----------------------------------------------------------------------

    def set_disk_usage(self, total_size: int, path: AnyPath | None = None) -> None:
        """The size of the model's disk (of the pyfakefs mount point at ``path``), which statfs
        and statvfs answer with; 1 TiB unless set. Programs' writes that would make the model's
        files larger than it fail with ENOSPC, after a short write that fills it, as Linux's;
        what counts is the size of the files made in the model (:meth:`disk_usage`). (Kept
        here, not given to pyfakefs, whose count also takes in the host files it lists.)"""
        if isinstance(total_size, bool) or not isinstance(total_size, int) or total_size < 0:
            raise ValueError(f"total_size must be an integer >= 0, not {total_size!r}")
        with self.lock:
            self._disk_sizes[self._device_at(path)] = total_size

    def _device_at(self, path: AnyPath | None) -> int:
        point = self._fake._mount_point_for_path(_absolute(path) if path is not None else "/")
        return int(point["idev"])

    @property
    def disk_limited(self) -> bool:
        """Whether the model's disk has a size (:meth:`set_disk_usage`): the master then watches
        the descriptors programs may write model files with."""
        return bool(self._disk_sizes)

    def disk_sized(self, path: str) -> bool:
        """Whether the disk ``path`` lies on (a pyfakefs mount point) has a size."""
        return bool(self._disk_sizes) and self._device_at(path) in self._disk_sizes

    def disk_usage(self, path: str) -> tuple[int, int]:
        """The size of the model's disk at ``path`` (1 TiB unless set) and the bytes its files
        use now, counted from their sizes: what programs wrote into memfds included. Counted
        only for a disk with a size (else 0)."""
        with self.lock:
            device = self._device_at(path)
            total = self._disk_sizes.get(device)
            if total is None:
                return _UNSIZED_DISK, 0
            return total, self._used_bytes(device)

    def _used_bytes(self, device: int) -> int:
        """The bytes of the regular files (each once, however many names) on ``device`` that
        were made in the model: host mounts and copies of host files are not on its disk."""
        used = 0
        seen: set[int] = set()
        stack: list[FakeDirectory] = [self._fake.root]
        while stack:
            for obj in stack.pop().entries.values():
                if isinstance(obj, FakeDirectoryFromRealDirectory | FakeFileFromRealFile):
                    continue  # the host's (a mount, a copy): not on the model's disk
                if isinstance(obj, FakeDirectory):
                    stack.append(obj)
                    continue
                meta = obj.stat_result
                if id(obj) in seen or meta.st_dev != device or not stat.S_ISREG(meta.st_mode):
                    continue
                seen.add(id(obj))
                if isinstance(obj, _MemfdBacked):
                    used += os.fstat(obj.memfd_fd).st_size
                else:
                    used += meta._st_size or 0
        return used

    def statfs(self, path: str) -> FsStats:
        """What statfs says of the model's filesystem at ``path``: an in-memory filesystem (as
        tmpfs), read-only (ST_RDONLY) for a read-only host copy."""
        total, used = self.disk_usage(path)
        free_bytes = max(0, total - used)
        flags = _ST_VALID | (_ST_RDONLY if self.protection_of(path) is not None else 0)
        free = free_bytes // _BLOCK
        return FsStats(_TMPFS_MAGIC, _BLOCK, total // _BLOCK, free, free, _INODES, _INODES,
                       0, _NAME_MAX, _BLOCK, flags)  # fmt: skip

    def mount_of(self, path: str) -> str | None:
        """The mount a (normalized, absolute) path lies in, if any."""
        return _prefix_of(path, self.mounts)

    def protection_of(self, path: str) -> str | None:
        """Why programs may not change ``path``, if they may not: the mount or read-only copy."""
        mount = _prefix_of(path, self.mounts)
        if mount is not None:
            return f"the read-only host mount {mount}"
        copy = _prefix_of(path, self.read_only)
        return None if copy is None else f"the read-only host copy {copy}"

    def _check_not_mounted(self, path: str) -> None:
        mount = self.mount_of(posixpath.normpath(path))
        if mount is not None:
            raise ValueError(f"{path} is inside the read-only host mount {mount}")

    def _own(self, obj: FakeFile, uid: int | None, gid: int | None) -> None:
        if uid is not None:
            obj.st_uid = uid
        if gid is not None:
            obj.st_gid = gid

    def as_caller(self, caller: Caller) -> CallerView:
        """The model as ``caller`` sees it: every path walked with the kernel's permission checks
        (see :class:`CallerView`). What programs' calls are answered through::

            nobody = fs.as_caller(Caller(65534, 65534))
            nobody.lookup("/root/notes.txt")  # PermissionError: /root is 0700, root's
            fs.lookup("/root/notes.txt")      # the test's own view: no check
        """
        view = self._views.get(caller)
        if view is None:  # made once per caller: nearly every call asks
            view = self._views[caller] = CallerView(self, caller)
        return view

    def resolve(self, path: str, follow: bool = True) -> FakeFile:
        """The object at ``path``; OSError with the kernel's errno if there is none.

        This is the test's view (no permission is checked); a program's call is answered through
        :meth:`as_caller`.
        """
        return self._walk(path, follow, None)[0]

    def lookup(self, path: str, follow: bool = True) -> tuple[FakeFile, str]:
        """The object at an absolute ``path`` and its canonical path, resolved as the kernel
        does: ".." is the parent of what was reached, symlinks on the way are followed (the
        last one too when ``follow``), a trailing "/" asks for a directory, 40 links at most.
        The test's view, as for :meth:`resolve`.
        """
        obj, reached = self._walk(path, follow, None)
        return obj, "/" + "/".join([name for name, _ in reached])

    def locate(self, path: str, follow: bool = True) -> tuple[FakeFile | None, str]:
        """As :meth:`lookup`, for a call that may create ``path``: when only its last name is
        missing, None and the canonical path that name would have. With ``follow``, that may be
        the end of a dangling symlink, where open(O_CREAT) makes the file, as the kernel does.
        """
        found = self._locate(path, follow, None)
        return found.obj, found.canonical

    def _locate(self, path: str, follow: bool, search: Caller | None) -> Located:
        missing: list[str] = []
        obj, reached = self._walk(path, follow, search, missing)
        canonical = "/" + "/".join([name for name, _ in reached] + missing)
        return Located(None if missing else obj, canonical, obj)

    def _walk(
        self, path: str, follow: bool, search: Caller | None, missing: list[str] | None = None
    ) -> tuple[FakeFile, list[tuple[str, FakeFile]]]:
        """The object at ``path`` and the canonical (name, object) components leading to it.
        Given a ``missing`` list, a last name that is not there is put in it instead of raising
        ENOENT, and the directory it would be in is returned. ``search``: the caller who must
        have search (x) permission on every directory the path leads through (EACCES
        otherwise), as the kernel checks for any path; None for the test, who may do anything.

        This walks pyfakefs's directory objects directly; it is the master's hot path, an order
        of magnitude faster than pyfakefs's general resolver.
        """
        if not path.startswith("/"):
            raise ValueError(f"not an absolute path: {path!r}")
        if search is not None and search.is_root:
            search = None  # root may search every directory
        root: FakeDirectory = self._fake.root
        reached: list[tuple[str, FakeFile]] = []  # the canonical components so far
        pending = _components(path)  # a stack: the next component is the last
        must_be_dir = path.endswith("/") or path.endswith("/.")
        links = 0
        current: FakeFile = root
        while pending:
            name = pending.pop()
            directory = current if isinstance(current, FakeDirectory) else None
            if search is not None and directory is not None and not self.may(directory, search, 1):
                raise _error(errno.EACCES, path)  # looking a name up needs x (1), ".." too
            if name == "..":
                if reached:
                    reached.pop()
                current = reached[-1][1] if reached else root
                continue
            if directory is None:
                raise _error(errno.ENOTDIR, path)
            # (a model directory's entries without the call of their property; a host
            # directory's property loads them on first use)
            entries = directory._entries if type(directory) is FakeDirectory else directory.entries
            entry = entries.get(name)
            if entry is None:  # as the kernel's lookup says
                if _too_long(name):
                    raise _error(errno.ENAMETOOLONG, path)
                if missing is None or pending:
                    raise _error(errno.ENOENT, path)
                # a name to create that must be a directory keeps its slash: open(O_CREAT)
                # answers EISDIR for it (the end of a dangling "target/" symlink too)
                missing.append(name + "/" if must_be_dir else name)
                return current, reached
            if entry.stat_result.st_mode & _S_IFMT == _S_IFLNK and (
                pending or follow or must_be_dir
            ):
                links += 1
                if links > _MAX_SYMLINKS:
                    raise _error(errno.ELOOP, path)
                target = os.fsdecode(entry.contents or "")
                if not pending and target.endswith(("/", "/.")):
                    must_be_dir = True  # the link's target asks for a directory
                if target.startswith("/"):
                    reached, current = [], root
                pending += _components(target)
                continue
            reached.append((name, entry))
            current = entry
        if must_be_dir and not isinstance(current, FakeDirectory):
            raise _error(errno.ENOTDIR, path)
        return current, reached

    def canonical(self, path: str, follow: bool = True) -> str:
        """The canonical form of ``path`` (its last symlink followed if ``follow``); for a path
        whose last name does not exist (yet), where that name would be (see :meth:`locate`)."""
        try:
            return self.locate(path, follow)[1]
        except OSError:
            return posixpath.normpath(path)

    def lexists(self, path: str) -> bool:
        """Whether ``path`` names something, a dangling symlink included."""
        try:
            self.lookup(path, follow=False)
        except OSError:
            return False
        return True

    def _regular(self, obj: FakeFile, path: str) -> FakeFile:
        if isinstance(obj, FakeDirectory):
            raise _error(errno.EISDIR, path)
        return obj

    # -- contents ------------------------------------------------------------------------

    def memfd(self, file: FakeFile, *, writable: bool = True) -> int:
        """The memfd holding ``file``'s contents, made from the model's copy on first use.

        From then on the memfd is the file's contents, size, mtime and ctime, for programs and
        for pyfakefs alike (the object becomes a :class:`_MemfdBacked` file). ``writable``: a
        descriptor that may write it will be made from it, so programs may change the file
        without the master seeing it, for good (see :meth:`changes_unseen`).
        """
        with self.lock:
            if isinstance(file, _MemfdBacked):
                backed = file
            else:
                self._move_to_memfd(file)
                backed = cast(_MemfdBacked, file)
            if writable:
                self.written_unseen(backed)
            return backed.memfd_fd

    def _move_to_memfd(self, file: FakeFile) -> None:
        """Make ``file`` a :class:`_MemfdBacked` one, with the same contents and stat answer."""
        before = _stat_ns(file)
        self._back_with_memfd(file, file.byte_contents or b"")  # (a host file is read now)
        if _stat_ns(file) != before:  # a pyfakefs "large file" of no contents, say
            self._changing()  # before the master answers anyone: no one saw the new answer yet

    def _back_with_memfd(self, file: FakeFile, data: bytes) -> None:
        """Make ``file`` a :class:`_MemfdBacked` one holding ``data``, its times the model's."""
        meta = file.stat_result
        memfd = os.memfd_create(f"libcfake:{os.fsdecode(file.name)}", os.MFD_CLOEXEC)
        if data:
            _write_all(memfd, data)
        os.utime(memfd, ns=(meta._st_atime_ns, meta._st_mtime_ns))  # to the nanosecond
        file.__class__ = _memfd_class(type(file))
        fields = file.__dict__
        fields.pop("_byte_contents", None)
        info = os.fstat(memfd)
        fields["memfd_fd"], fields["memfd_made"] = memfd, info.st_ctime_ns
        fields["memfd_key"] = descriptor_key(info.st_dev, info.st_ino)  # (its record's)
        self._memfds[id(file)] = (file, memfd)
        self._by_inode[info.st_ino] = file

    @property
    def memfd_count(self) -> int:
        """How many files' contents are in memfds: descriptors the master holds."""
        return len(self._memfds)

    @staticmethod
    def changes_unseen(obj: FakeFile) -> bool:
        """Whether programs may change the object's size or times without the master seeing it:
        a file whose memfd was handed out with write access (a program may hold it still, or
        have passed it on). A file only ever opened read-only changes only through the master;
        its atime is the model's, not the memfd's (see :class:`_MemfdBacked`)."""
        return isinstance(obj, _MemfdBacked) and obj.memfd_writable

    def written_unseen(self, file: FakeFile) -> None:
        """Record that a program may write ``file``'s memfd: it got a descriptor with write
        access, from the master or behind it (reopening its own read-only one through
        /proc/self/fd, say). What was published of it is withdrawn first."""
        if isinstance(file, _MemfdBacked) and not file.memfd_writable:
            self.model_changed()
            self.on_written(file)
            object.__setattr__(file, "memfd_writable", True)

    def file_of_memfd(self, inode: int) -> FakeFile | None:
        return self._by_inode.get(inode)

    def file_of_descriptor(self, info: stat_result) -> FakeFile | None:
        """The file whose memfd a descriptor is, given the descriptor's fstat (any descriptor)."""
        file = self._by_inode.get(info.st_ino)
        if isinstance(file, _MemfdBacked) and os.fstat(file.memfd_fd).st_dev == info.st_dev:
            return file
        return None

    def stat_of(self, obj: FakeFile) -> StatResult:
        """The stat table of a model object."""
        meta = obj.stat_result
        mode, size, atime, mtime, ctime = _stat_values(obj)
        return StatResult(
            type=_TYPES[stat.S_IFMT(mode)],
            mode=stat.S_IMODE(mode),
            size=size,
            dev=meta.st_dev,
            ino=cast(int, meta.st_ino),  # None only for an object in no directory: refused
            nlink=self._nlink(obj),
            uid=meta.st_uid,
            gid=meta.st_gid,
            atime=atime,
            mtime=mtime,
            ctime=ctime,
        )

    def packed_stat(self, obj: FakeFile) -> PackedStat:
        """:meth:`stat_of` in wire form, as the master sends it, made without a StatResult."""
        meta = obj.stat_result
        mode, size, atime, mtime, ctime = _stat_ns(obj)
        return pack_stat_ns(mode, size, meta.st_dev, cast(int, meta.st_ino), self._nlink(obj),
                            meta.st_uid, meta.st_gid, atime, mtime, ctime)  # fmt: skip

    def set_times(self, obj: FakeFile, atime_ns: int | None, mtime_ns: int | None) -> None:
        """Set a model object's atime and mtime to the nanosecond (None: leave it), as
        utimensat does; its ctime becomes now."""
        meta = obj.stat_result
        if atime_ns is not None:
            meta._st_atime_ns = atime_ns
        if mtime_ns is not None:
            if isinstance(obj, _MemfdBacked):  # the memfd's mtime is the file's
                os.utime(obj.memfd_fd, ns=(os.fstat(obj.memfd_fd).st_atime_ns, mtime_ns))
            else:
                meta._st_mtime_ns = mtime_ns
        obj.st_ctime = time.time()

    def _nlink(self, obj: FakeFile) -> int:
        """st_nlink as Linux shows it (see :func:`_nlink`); a directory's count is kept until
        the model changes, as a large directory takes a while to count."""
        if not isinstance(obj, FakeDirectory) or self.edited_directly:
            return _nlink(obj)  # (pyfakefs handed out: a change may go unheard, so count anew)
        counted = self._subdirectories.get(id(obj))
        if counted is None or counted[0] is not obj:
            counted = self._subdirectories[id(obj)] = (obj, _subdirectories(obj))
        return 2 + counted[1]

    def path_of(self, obj: FakeFile) -> str:
        """The path of a model object: pyfakefs's ``obj.path``, without its costly normalizing."""
        names: list[str] = []
        current: FakeFile | None = obj
        while current is not None and current is not self._fake.root:
            names.append(os.fsdecode(current.name))
            current = current.parent_dir() if current.parent_dir is not None else None
        return "/" + "/".join(reversed(names))

    def truncate_file(self, file: FakeFile, length: int) -> None:
        if length < 0:
            raise _error(errno.EINVAL)
        if isinstance(file, _MemfdBacked):
            os.ftruncate(file.memfd_fd, length)
        else:
            data = file.byte_contents or b""
            file.set_contents(data[:length].ljust(length, b"\0"))

    def forget(self, file: FakeFile) -> None:
        """Drop the memfd of a file that no longer has a name (programs keep their copies)."""
        if file.st_nlink > 0:
            return
        entry = self._memfds.pop(id(file), None)
        if entry is not None and isinstance(file, _MemfdBacked):
            inode = os.fstat(entry[1]).st_ino
            self._by_inode.pop(inode, None)
            self._nameless[inode] = (file, file.memfd_made)
            file.detach()

    def nameless_stat(self, info: stat_result) -> PackedStat | None:
        """fstat of a descriptor of a model file that lost its last name while a program held
        it (mkstemp, then unlink), given the descriptor's own fstat: the model's values, with
        the size and times of the memfd the program still writes (see :class:`_MemfdBacked`).
        None for a descriptor of no such file."""
        entry = self._nameless.get(info.st_ino)
        if entry is None:
            return None
        file, made = entry
        meta = file.stat_result
        ctime = _memfd_ctime(meta._st_ctime_ns, made, info)
        return pack_stat_ns(meta.st_mode, info.st_size, meta.st_dev, cast(int, meta.st_ino),
                            int(meta.st_nlink), meta.st_uid, meta.st_gid, meta._st_atime_ns,
                            info.st_mtime_ns, ctime)  # fmt: skip

    # -- permissions -----------------------------------------------------------------------

    @staticmethod
    def may(obj: FakeFile, caller: Caller, want: int) -> bool:
        """Whether ``caller`` has the ``want`` bits (os.R_OK|W_OK|X_OK) on ``obj``."""
        meta = obj.stat_result
        mode = meta.st_mode
        if caller.is_root:
            # root may read and write anything; it may execute what anyone may execute
            return not (want & os.X_OK) or stat.S_ISDIR(mode) or bool(mode & 0o111)
        if meta.st_uid == caller.uid:
            bits = (mode >> 6) & 7
        elif meta.st_gid == caller.gid:
            bits = (mode >> 3) & 7
        else:
            bits = mode & 7
        return bool(bits & want == want)

    def check(self, obj: FakeFile, caller: Caller, want: int, path: object) -> None:
        if not self.may(obj, caller, want):
            raise _error(errno.EACCES, path)

    def check_parent_writable(self, path: str, caller: Caller) -> FakeDirectory:
        """The parent directory of ``path``, after checking the caller may reach it and add or
        remove names in it (and that the name is not too long to be one)."""
        view = self.as_caller(caller)
        directory, _, _ = view.parent(path)
        view.may_change(directory, path)
        return directory

    @staticmethod
    def entries_changed(*directories: FakeDirectory) -> None:
        """Mark directories whose entries changed (a name made, removed or renamed): their
        mtime and ctime are now, as the kernel's. pyfakefs leaves them as they were."""
        now = int(time.time() * 1e9)  # as pyfakefs's setters of st_mtime and st_ctime keep it
        for directory in directories:
            meta = directory.stat_result  # (not through FakeFile.__setattr__'s forwarding)
            meta._st_mtime_ns = meta._st_ctime_ns = now

    def add_entry(self, parent: FakeDirectory, name: str, mode: int, caller: Caller) -> FakeFile:
        """A new, empty file (or directory, for S_IFDIR modes) in ``parent``, owned by ``caller``.

        The fast path for programs creating files: the checks are the caller's business.
        """
        if stat.S_ISDIR(mode) or not self._in_one_go(parent):
            made: FakeFile = (
                FakeDirectory(name, perm_bits=stat.S_IMODE(mode), filesystem=self._fake)
                if stat.S_ISDIR(mode)
                else FakeFile(name, st_mode=mode, filesystem=self._fake)
            )
            parent.add_entry(made)
            made.st_uid, made.st_gid = caller.uid, caller.gid
        else:
            made = self._new_file(parent, name, mode, caller)
        self.entries_changed(parent)
        return made

    def new_file(self, parent: FakeDirectory, name: str, mode: int, caller: Caller) -> FakeFile:
        """:meth:`add_entry` of a regular file that a program opens at once (open with O_CREAT):
        its contents are a memfd from the start (see :meth:`memfd`)."""
        made = self.add_entry(parent, name, mode, caller)
        self._back_with_memfd(made, b"")
        return made

    def _in_one_go(self, parent: FakeDirectory) -> bool:
        """Whether :meth:`_new_file` may make a file in ``parent``: pyfakefs was not handed out
        (a test may have changed its settings), and its own add_entry's check passes (that its
        user, the test process's, may write ``parent``: always for root)."""
        return not self.edited_directly and (
            helpers.is_root()
            or self._fake.is_windows_fs
            or parent.has_permission(helpers.PERM_WRITE)
        )

    def _new_file(self, parent: FakeDirectory, name: str, mode: int, caller: Caller) -> FakeFile:
        """A new, empty, non-directory ``FakeFile`` of ``mode``, owned by ``caller``, named
        ``name`` in ``parent``: what ``FakeFile(name, mode)``, ``parent.add_entry(file)`` and
        setting its owner make, made in one go. pyfakefs sets two dozen attributes one at a time
        there, each through ``FakeFile.__setattr__``, which looks its name up among the stat
        fields it forwards: a third of a program's create. This copies the attributes of a file
        pyfakefs made (:attr:`_prototype`) and sets those of the new one as pyfakefs would
        (tests/test_fs_create.py checks the two are alike)."""
        if name in parent.entries:  # as pyfakefs's add_entry (the callers checked already)
            self._fake.raise_os_error(errno.EEXIST, parent.path)
        prototype = self._prototype
        if prototype is None:
            prototype = self._prototype = FakeFile("prototype", filesystem=self._fake)
        made = object.__new__(FakeFile)
        fields = made.__dict__
        fields.update(prototype.__dict__)
        meta = object.__new__(FakeStatResult)
        meta.__dict__.update(prototype.stat_result.__dict__)
        fake = self._fake
        fake.last_ino += 1
        parent_meta = parent.stat_result
        meta.st_mode = mode if mode >> 12 else mode | stat.S_IFREG
        meta.st_ino, meta.st_dev, meta.st_nlink = fake.last_ino, parent_meta.st_dev, 1
        meta.st_uid, meta.st_gid = caller.uid, caller.gid
        now = int(time.time() * 1e9)  # pyfakefs's helpers.now(), in nanoseconds as it keeps it
        meta._st_atime_ns = meta._st_mtime_ns = meta._st_ctime_ns = now
        fields["name"], fields["stat_result"], fields["xattr"] = name, meta, {}
        fields["parent_dir"] = weakref.ref(parent)
        parent.entries[name] = made
        parent_meta.st_nlink += 1
        fake.change_disk_usage(0, name, parent_meta.st_dev)
        return made


class Located(NamedTuple):
    """Where a path leads, for a call that may create it: ``obj`` (None when only its last name
    is missing), its canonical path, and the directory ``obj`` is, or would be, in."""

    obj: FakeFile | None
    canonical: str
    directory: FakeFile


class CallerView:
    """The model as one caller sees it: what programs' calls are answered through.

    Like pyfakefs's ``FakeOsModule`` over its filesystem, each method is one call's rules over
    one walk of the path (:meth:`FileSystem._walk`), which checks the caller's search (x)
    permission on every directory it goes through, as the kernel does for every path of every
    call. There is no way to walk a path as a caller without that check; the test's own view is
    :class:`FileSystem`'s ``resolve`` and ``lookup``. Each method takes the model's ``lock``'s
    holder's word that it is held. The changes act on the canonical paths the walk found, so
    pyfakefs never normalises a path a second, different way.
    """

    def __init__(self, fs: FileSystem, caller: Caller) -> None:
        self.fs = fs
        self.caller = caller
        self._search: Caller | None = None if caller.is_root else caller

    # -- looking paths up --

    def lookup(self, path: str, follow: bool = True) -> tuple[FakeFile, str]:
        """The object at ``path`` and its canonical path (see :meth:`FileSystem.lookup`)."""
        obj, reached = self.fs._walk(path, follow, self._search)
        return obj, "/" + "/".join([name for name, _ in reached])

    def resolve(self, path: str, follow: bool = True) -> FakeFile:
        return self.fs._walk(path, follow, self._search)[0]

    def locate(self, path: str, follow: bool = True) -> Located:
        """As :meth:`lookup`, for a call that may create ``path``: see
        :meth:`FileSystem.locate`."""
        return self.fs._locate(path, follow, self._search)  # (x on where it was looked for too)

    def entry(self, path: str) -> FakeFile | None:
        """What ``path`` names, its last symlink not followed; None if only its last name is
        missing."""
        return self.locate(path, follow=False).obj

    def parent(self, path: str) -> tuple[FakeDirectory, str, str]:
        """The directory ``path``'s last name is in, its canonical path, and that name, for a
        call that adds, removes or renames that name. The name may be "." or ".." (the caller's
        call decides what that means), or "" for "/"."""
        head, name = posixpath.split(path.rstrip("/") or "/")
        if name == "" and head == "/":
            return self.fs._fake.root, "/", ""
        directory, canonical = self.lookup(head or "/")
        if not isinstance(directory, FakeDirectory):
            raise _error(errno.ENOTDIR, path)
        if _too_long(name):
            raise _error(errno.ENAMETOOLONG, path)
        return directory, canonical, name

    @staticmethod
    def join(directory: str, name: str) -> str:
        return directory.rstrip("/") + "/" + name

    # -- permissions --

    def check(self, obj: FakeFile, want: int, path: object) -> None:
        """EACCES unless the caller has the ``want`` bits (os.R_OK|W_OK|X_OK) on ``obj``."""
        self.fs.check(obj, self.caller, want, path)

    def may_search(self, directory: FakeFile, path: object) -> None:
        """EACCES unless the caller may look names up in ``directory``."""
        if self._search is not None and isinstance(directory, FakeDirectory):
            self.fs.check(directory, self.caller, os.X_OK, path)

    def may_change(self, directory: FakeDirectory, path: object) -> None:
        """EACCES unless the caller may add or remove names in ``directory``."""
        self.fs.check(directory, self.caller, os.W_OK | os.X_OK, path)

    def may_delete(self, directory: FakeDirectory, obj: FakeFile, path: object) -> None:
        """The kernel's may_delete: the caller may change ``directory`` (EACCES) and, if it is
        sticky (/tmp), owns ``obj`` or the directory (EPERM)."""
        self.may_change(directory, path)
        caller = self.caller
        if (
            not caller.is_root
            and directory.stat_result.st_mode & stat.S_ISVTX
            and caller.uid not in (obj.stat_result.st_uid, directory.stat_result.st_uid)
        ):
            raise _error(errno.EPERM, path)

    # -- the calls --

    def create(self, directory: FakeFile, path: str, mode: int) -> FakeFile:
        """A new regular file at ``path`` (canonical), in ``directory``, where the walk of
        :meth:`locate` that found it missing ended: a create walks its path once. ``mode`` as
        open(2)'s, the caller's umask applied."""
        name = path[path.rfind("/") + 1 :]  # posixpath.basename
        if _too_long(name):
            raise _error(errno.ENAMETOOLONG, path)
        if not isinstance(directory, FakeDirectory):
            raise _error(errno.ENOTDIR, path)
        self.may_change(directory, path)
        caller = self.caller
        return self.fs.new_file(
            directory, name, stat.S_IFREG | (stat.S_IMODE(mode) & ~caller.umask), caller
        )

    def readlink(self, path: str) -> str:
        obj = self.resolve(path, follow=False)
        if not stat.S_ISLNK(obj.stat_result.st_mode):
            raise _error(errno.EINVAL, path)
        return os.fsdecode(obj.contents or "")

    def unlink(self, path: str) -> FakeFile:
        """Remove the name ``path``, not a directory; the object it named."""
        directory, where, name = self.parent(path)
        if name in ("", ".", ".."):
            raise _error(errno.EISDIR, path)
        self.may_search(directory, path)
        obj = directory.entries.get(name)
        if obj is None:
            raise _error(errno.ENOENT, path)
        self.may_delete(directory, obj, path)
        if isinstance(obj, FakeDirectory):
            raise _error(errno.EISDIR, path)
        self.fs._fake.remove(self.join(where, name) + ("/" if path.endswith("/") else ""))
        self.fs.entries_changed(directory)
        obj.st_ctime = time.time()  # one link fewer: a change of the inode, as the kernel's
        return obj

    def rmdir(self, path: str) -> None:
        """Remove the empty directory ``path`` ("." ".." and "/" are the caller's to refuse)."""
        directory, where, name = self.parent(path)
        self.may_search(directory, path)
        obj = directory.entries.get(name)
        if obj is None:
            raise _error(errno.ENOENT, path)
        self.may_delete(directory, obj, path)
        self.fs._fake.rmdir(self.join(where, name))
        self.fs.entries_changed(directory)

    def rename(self, old: str, new: str, noreplace: bool = False) -> FakeFile | None:
        """Rename ``old`` to ``new`` (the caller refuses "." ".." and "/" ends); the object
        ``new`` named before, if it was replaced."""
        old_directory, old_where, old_name = self.parent(old)
        new_directory, new_where, new_name = self.parent(new)
        self.may_search(old_directory, old)
        obj = old_directory.entries.get(old_name)
        if obj is None:
            raise _error(errno.ENOENT, old)
        # a trailing slash asks for a directory, and rename does not follow a symlink to one
        if (old.endswith("/") or new.endswith("/")) and not isinstance(obj, FakeDirectory):
            raise _error(errno.ENOTDIR, old)
        self.may_search(new_directory, new)
        replaced = new_directory.entries.get(new_name)
        if noreplace and replaced is not None:
            raise _error(errno.EEXIST, new)
        if replaced is obj:
            return None  # two names of one file (hard links): rename leaves both, as POSIX says
        self.may_delete(old_directory, obj, old)
        if replaced is not None:
            self.may_delete(new_directory, replaced, new)
        else:
            self.may_change(new_directory, new)
        if isinstance(obj, FakeDirectory) and old_directory is not new_directory:
            self.check(obj, os.W_OK, old)  # its ".." changes
        self.fs._fake.rename(
            self.join(old_where, old_name) + ("/" if old.endswith("/") else ""),
            self.join(new_where, new_name) + ("/" if new.endswith("/") else ""),
        )
        self.fs.entries_changed(old_directory, new_directory)
        now = time.time()  # Linux's filesystems change the moved inode's ctime (and the
        obj.st_ctime = now  # replaced one's: one link fewer), as tmpfs and ext4 do
        if replaced is not None:
            replaced.st_ctime = now
        return replaced

    def new_name(
        self, path: str, *, directory_wanted: bool = False
    ) -> tuple[FakeDirectory, str, str]:
        """Where a call that makes a new name (mkdir, mknod, symlink, link) puts it, with the
        kernel's checks in its order (filename_create): the walk to its directory (ENOENT,
        ENOTDIR, EACCES), EEXIST for "." and ".." and a name that exists, ENOENT for a name
        followed by "/" unless a directory is made, then the permission to add a name. The
        directory, its canonical path and the name."""
        directory, where, name = self.parent(path)
        self.may_search(directory, path)
        if name in ("", ".", "..") or name in directory.entries:
            raise _error(errno.EEXIST, path)
        if path.endswith("/") and not directory_wanted:
            raise _error(errno.ENOENT, path)
        self.may_change(directory, path)
        return directory, where, name

    def symlink(self, target: str, path: str) -> None:
        """Make a symlink at ``path`` holding ``target`` as given."""
        directory, where, name = self.new_name(path)
        link = self.fs._fake.create_symlink(self.join(where, name), target)
        link.st_uid, link.st_gid = self.caller.uid, self.caller.gid
        self.fs.entries_changed(directory)

    def link(self, old: str, new: str, follow: bool) -> None:
        """Make ``new`` another name of what ``old`` names (its last symlink followed if
        ``follow``)."""
        obj, old_canonical = self.lookup(old, follow)
        directory, where, name = self.new_name(new)
        if isinstance(obj, FakeDirectory):
            raise _error(errno.EPERM, old)
        if not self._may_hardlink(obj):
            raise _error(errno.EPERM, old)
        self.fs._fake.link(old_canonical, self.join(where, name), follow_symlinks=False)
        self.fs.entries_changed(directory)
        obj.st_ctime = time.time()  # one link more: a change of the inode, as the kernel's

    # -- extended attributes: the kernel's xattr_permission and tmpfs's handlers --

    def getxattr(self, obj: FakeFile, name: str, path: object) -> bytes:
        """The value of the attribute ``name`` of ``obj`` as the caller may read it (ENODATA,
        EACCES, EOPNOTSUPP, EINVAL as Linux's tmpfs; see :meth:`_xattr_allowed`)."""
        if not self._xattr_allowed(obj, name, False, path):
            raise _error(errno.ENODATA, path)
        value = self.fs.xattrs(obj).get(name)
        if value is None:
            raise _error(errno.ENODATA, path)
        return value

    def listxattr(self, obj: FakeFile) -> bytes:
        """The names of ``obj``'s attributes the caller may see, each ending in a NUL, as
        tmpfs lists them (trusted. only to root; no permission needed on the file)."""
        names = _xattr_order(self.fs.xattrs(obj))
        if not self.caller.is_root:
            names = [name for name in names if not name.startswith("trusted.")]
        return b"".join(os.fsencode(name) + b"\0" for name in names)

    def setxattr(
        self, obj: FakeFile, name: str, value: bytes | None, flags: int, path: object
    ) -> bool:
        """Set (``value`` None: remove) the attribute ``name`` of ``obj`` as the caller may;
        False: the kernel would succeed without storing anything (removing or emptying a POSIX
        ACL the model has none of). ValueError for what the model does not keep (a POSIX ACL
        beyond the mode bits, root's security. attributes, a value over ``MAX_XATTR_VALUE``
        bytes)."""
        if not self._xattr_allowed(obj, name, True, path):
            if name.startswith("security."):
                if value is None:
                    raise _error(errno.ENODATA, path)
                raise ValueError(f"{name}: security. attributes are not modelled")
            if not value:  # removing or emptying an ACL: the model has none
                return False
            bits = _acl_mode(value, path)
            if name != "system.posix_acl_access" or bits is None:
                raise ValueError(f"{name}: POSIX ACLs beyond the mode bits are not modelled")
            # an ACL the mode bits say all of (cp -a sets one): the kernel sets the mode
            meta = obj.stat_result
            meta.st_mode = (meta.st_mode & ~0o777) | bits
            obj.st_ctime = time.time()
            return True
        self.fs.set_xattr(obj, name, value, flags, path)
        return True

    def _xattr_allowed(self, obj: FakeFile, name: str, write: bool, path: object) -> bool:
        """The kernel's checks of an attribute call, in its order (xattr_permission, the
        security hook, the filesystem's handler for the name): an OSError, or True when the
        model keeps the name, False for a name of which it keeps none, POSIX ACLs and security.
        attributes (reading is ENODATA: the shim answers ls -l's lgetxattr of security.selinux
        and getxattr of system.posix_acl_access so from the snapshot; see :meth:`setxattr`)."""
        caller, mode = self.caller, obj.stat_result.st_mode
        owner = caller.is_root or caller.uid == obj.stat_result.st_uid
        if name.startswith(("security.", "system.")):  # no VFS permission check
            if name.startswith("security."):
                if write and not caller.is_root:
                    raise _error(errno.EPERM, path)  # cap_inode_setxattr
                if name == "security.":
                    raise _error(errno.EINVAL, path)
                return False
            if name not in _POSIX_ACLS or stat.S_ISLNK(mode):
                raise _error(errno.EOPNOTSUPP, path)
            if write and not owner:
                raise _error(errno.EPERM, path)
            return False
        if name.startswith("trusted.") and not caller.is_root:
            raise _error(errno.EPERM if write else errno.ENODATA, path)
        if name.startswith("user."):
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise _error(errno.EPERM if write else errno.ENODATA, path)
            if write and stat.S_ISDIR(mode) and mode & stat.S_ISVTX and not owner:
                raise _error(errno.EPERM, path)
        self.check(obj, os.W_OK if write else os.R_OK, path)
        if not _in_namespace(name, _MODELLED_NAMESPACES):
            raise _error(errno.EINVAL if name in _MODELLED_NAMESPACES else errno.EOPNOTSUPP, path)
        return True

    def _may_hardlink(self, obj: FakeFile) -> bool:
        """The kernel's may_linkat under fs.protected_hardlinks (as the host has it): the caller
        owns the file, or it is a regular file it may read and write, not setuid nor setgid."""
        caller, meta = self.caller, obj.stat_result
        if caller.is_root or meta.st_uid == caller.uid or not _protected_hardlinks():
            return True
        mode = meta.st_mode
        return (
            stat.S_ISREG(mode)
            and not mode & stat.S_ISUID
            and not (mode & stat.S_ISGID and mode & stat.S_IXGRP)
            and self.fs.may(obj, caller, os.R_OK | os.W_OK)
        )


@functools.lru_cache(maxsize=1)
def _protected_hardlinks() -> bool:
    """Whether the host's kernel keeps others from hard-linking files they may not write."""
    try:
        with open("/proc/sys/fs/protected_hardlinks") as file:
            return file.read().strip() == "1"
    except OSError:
        return False


#: The attribute namespaces the model keeps (as tmpfs: user. for everyone, trusted. for root);
#: it keeps no security. attributes (only root may set one; the shim answers reads of them from
#: the snapshot) and no POSIX ACLs (system.).
_MODELLED_NAMESPACES = ("user.", "trusted.")
_POSIX_ACLS = frozenset({"system.posix_acl_access", "system.posix_acl_default"})


_ACL_VERSION = 2
_ACL_ENTRY = struct.Struct("<HHI")  # tag, permissions, id: one entry of a POSIX ACL's xattr
_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP = 0x01, 0x02, 0x04, 0x08
_ACL_MASK, _ACL_OTHER = 0x10, 0x20
_ACL_TAGS = frozenset({_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK, _ACL_OTHER})


def _acl_mode(value: bytes, path: object) -> int | None:
    """The permission bits a POSIX ACL's xattr value says all of (the kernel's
    posix_acl_equiv_mode: owner, group or mask, and other entries only), None if it names users
    or groups; EINVAL for a malformed value or an invalid ACL (posix_acl_valid: one entry of
    each kind, a mask beside named entries), EOPNOTSUPP for another version (as Linux)."""
    if len(value) < 4 or (len(value) - 4) % _ACL_ENTRY.size:
        raise _error(errno.EINVAL, path)
    if struct.unpack_from("<I", value)[0] != _ACL_VERSION:
        raise _error(errno.EOPNOTSUPP, path)
    perms: dict[int, int] = {}
    named = False
    for tag, perm, _ in _ACL_ENTRY.iter_unpack(value[4:]):
        if tag not in _ACL_TAGS or perm & ~7 or tag in perms:
            raise _error(errno.EINVAL, path)
        if tag in (_ACL_USER, _ACL_GROUP):
            named = True
        else:
            perms[tag] = perm
    required = {_ACL_USER_OBJ, _ACL_GROUP_OBJ, _ACL_OTHER} | ({_ACL_MASK} if named else set())
    if not required <= perms.keys():
        raise _error(errno.EINVAL, path)
    if named:
        return None
    group = perms.get(_ACL_MASK, perms[_ACL_GROUP_OBJ])
    return perms[_ACL_USER_OBJ] << 6 | group << 3 | perms[_ACL_OTHER]


def _xattr_key(name: str | bytes) -> str:
    """An attribute name as the model keeps it (pyfakefs's keys: str)."""
    text = os.fsdecode(name)
    if not 0 < len(os.fsencode(text)) <= 255:
        raise ValueError(f"attribute name {text!r}: 1 to 255 bytes")
    return text


def _in_namespace(name: str, namespaces: tuple[str, ...]) -> bool:
    """Whether ``name`` is a name of one of ``namespaces`` (not the bare prefix)."""
    return name.startswith(namespaces) and name not in namespaces


def _xattr_order(store: dict[str, bytes]) -> list[str]:
    """Attribute names in the order tmpfs lists them: by their bytes, last first."""
    return sorted(store, key=os.fsencode, reverse=True)


def _list_bytes(names: Iterable[str]) -> int:
    """listxattr's length for these names: each and its NUL."""
    return sum(len(os.fsencode(name)) + 1 for name in names)


def _nothing() -> None:
    pass


def _stat_values(obj: FakeFile) -> tuple[int, int, float, float, float]:
    """st_mode, size, atime, mtime and ctime of a model object, as stat shows them."""
    mode, size, atime, mtime, ctime = _stat_ns(obj)
    return mode, size, atime / 1e9, mtime / 1e9, ctime / 1e9


def _stat_ns(obj: FakeFile) -> tuple[int, int, int, int, int]:
    """st_mode, size, and atime, mtime and ctime in nanoseconds, of a model object as stat shows
    them: what :func:`_stat_values` and :func:`lstat_records` answer with."""
    meta = obj.stat_result  # not obj.st_*: see the note above FileSystem
    mode = meta.st_mode
    if isinstance(obj, _MemfdBacked):  # size, mtime and ctime are the memfd's: one fstat
        info = os.fstat(obj.memfd_fd)
        size, atime, mtime = info.st_size, meta._st_atime_ns, info.st_mtime_ns
        ctime = obj.ctime_ns(info)
    else:  # pyfakefs's own fields, behind its properties (see the note above FileSystem)
        size, atime = meta._st_size, meta._st_atime_ns
        mtime, ctime = meta._st_mtime_ns, meta._st_ctime_ns
    kind = mode & 0o170000
    if kind == stat.S_IFLNK:
        size = len(os.fsencode(obj.contents or ""))
    elif kind == stat.S_IFDIR:
        size = 4096
    return mode, size, atime, mtime, ctime


def _nlink(obj: FakeFile) -> int:
    """st_nlink as Linux shows it. A directory's links are its parent's entry, its own "." and
    each subdirectory's ".."; pyfakefs counts one for every entry instead."""
    if isinstance(obj, FakeDirectory):
        return 2 + _subdirectories(obj)
    return int(obj.stat_result.st_nlink)


def _subdirectories(directory: FakeDirectory) -> int:
    return sum(isinstance(child, FakeDirectory) for child in directory.entries.values())


def lstat_records(
    entries: Iterable[tuple[str, FakeFile | None]],
    unseen: Callable[[FakeFile], bool] | None = None,
) -> bytes:
    """What :meth:`FileSystem.packed_stat` says of each (path, object) that is not followed,
    as snapshot records for :meth:`Snapshot.put_many <libcfake.snapshot.Snapshot.put_many>`.

    An object of None, one ``unseen`` says a program may change unseen (its size and times), or
    one whose values a stat answer cannot carry (no file type, a uid of 2**32, ...), gets a
    record of mode 0: the name exists, and the master answers for it. Such a record still
    carries the object's inode number (0 for None), which no program can change: a listing's
    d_ino (shim/listing.c). This runs for every entry of every directory published, so it packs
    straight from pyfakefs's values; the times stay nanoseconds, which the C writer makes into
    the seconds and nanoseconds ``packed_stat`` would send.
    """
    parts: list[bytes] = []
    for path, obj in entries:
        encoded = _fsencode(path)
        named_only = obj is None or (unseen is not None and unseen(obj))
        entry = _record_of(obj, encoded) if obj is not None and not named_only else None
        if entry is None:  # mode 0 and no target: the name (and its inode number) only
            ino = _record_ino(obj) if obj is not None else 0
            entry = (
                RECORD.pack(0, ino, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0, len(encoded), 0) + encoded
            )
        parts.append(entry)
    return b"".join(parts)


def descriptor_record(obj: FakeFile, path: str) -> tuple[bytes, bytes] | None:
    """The key (:func:`~libcfake.snapshot.descriptor_key`) and the record of the snapshot's entry
    that answers fstat of a model file's memfd, ``path`` the file's canonical path; None for an
    object that is not a regular file in a memfd, or of values a stat answer cannot carry.

    The memfd is the file's contents: the shim takes its size and mtime from the memfd's own
    fstat, and its ctime from there once the memfd changed (:meth:`_MemfdBacked.ctime_ns`), so
    the record carries the model's ctime, and in its mtime the memfd's ctime when it was made."""
    if not isinstance(obj, _MemfdBacked):
        return None
    meta = obj.stat_result
    mode = meta.st_mode
    if mode & 0o170000 != stat.S_IFREG:
        return None
    encoded = _fsencode(path)
    try:
        record = RECORD.pack(meta.st_dev, meta.st_ino, _nlink(obj), mode, meta.st_uid,
                             meta.st_gid, len(encoded), 0, 0, 4096, 0, meta._st_atime_ns,
                             obj.memfd_made, meta._st_ctime_ns, len(obj.memfd_key),
                             DESCRIPTOR)  # fmt: skip
    except struct.error:
        return None
    return obj.memfd_key, record + obj.memfd_key + encoded


def _record_ino(obj: FakeFile) -> int:
    """The inode number a record carries: the object's, if it fits (else 0: not known)."""
    ino = obj.stat_result.st_ino
    return ino if isinstance(ino, int) and 0 < ino < 2**64 else 0


def _record_of(obj: FakeFile, encoded_path: bytes) -> bytes | None:
    """The snapshot entry of ``obj``: its record, its path and a symlink's target; None when a
    stat answer cannot carry its values."""
    meta = obj.stat_result
    mode, size, atime, mtime, ctime = _stat_ns(obj)
    kind = mode & 0o170000
    if kind not in _TYPES:
        return None
    link = kind == stat.S_IFLNK
    try:
        record = RECORD.pack(meta.st_dev, meta.st_ino, _nlink(obj), mode, meta.st_uid,
                             meta.st_gid, size if link else -1, 0, size, 4096,
                             -(-size // 4096) * 8, atime, mtime, ctime, len(encoded_path),
                             0)  # fmt: skip
    except struct.error:
        return None
    return record + encoded_path + (_fsencode(obj.contents or "") if link else b"")


def _fsencode(text: str) -> bytes:
    return text.encode(_FS_ENCODING, _FS_ERRORS)  # os.fsencode, without its checks


_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_all(fd: int) -> bytes:
    return os.pread(fd, os.fstat(fd).st_size, 0)


class _HostDirectory(FakeDirectoryFromRealDirectory):
    """A host directory shown in the model (a mount, ``add_real_directory``), whose entries are
    made on first use as pyfakefs's own class makes them, but directly: pyfakefs resolves each
    new entry's path three times over (whether it exists, its parent, the parent again), so the
    first walk through a large host directory cost each Sandbox 100-350 ms (a program's locale
    lookup through ``/usr/share/locale``: 315 entries, under the hybrid backend)."""

    @property
    def entries(self) -> dict[str, FakeFile]:
        if not self.contents_read:
            self.contents_read = True
            _read_host_entries(self)
        return self._entries


def _read_host_entries(directory: _HostDirectory) -> None:
    """What pyfakefs's ``add_real_symlink``, ``add_real_directory`` (lazily) and
    ``add_real_file`` make of each entry of the host directory, in the host's order."""
    fs = directory.filesystem
    base = cast(str, directory.path).rstrip("/")
    with os.scandir(directory.source_path) as listing:
        for entry in listing:
            source, target = entry.path, f"{base}/{entry.name}"
            try:
                if entry.is_symlink():
                    link = FakeFile(entry.name, stat.S_IFLNK | helpers.PERM_DEF, filesystem=fs)
                    directory.add_entry(link)
                    link.set_initial_contents(os.readlink(source))
                elif entry.is_dir():
                    directory.add_entry(_HostDirectory(source, fs, directory.read_only, target))
                else:
                    real = os.stat(source)
                    file = FakeFileFromRealFile(target, filesystem=fs)
                    directory.add_entry(file)
                    file.stat_result.set_from_stat_result(real)
                    if directory.read_only:
                        file.st_mode &= 0o777444  # as add_real_file: no write permission
                    file.file_path = source
                    fs.change_disk_usage(file.size, file.name, file.st_dev)
            except FileNotFoundError:  # gone since the listing
                continue


def _memfd_ctime(model: int, made: int, info: os.stat_result) -> int:
    """The ctime (ns) of a file whose contents are a memfd, given the model's ctime, the memfd's
    when it was made, and the memfd's fstat: the model's until the memfd changes, then the later
    of the two (shim/snapshot.c's lcf_snapshot_descriptor says the same in C)."""
    return model if info.st_ctime_ns == made else max(model, info.st_ctime_ns)


def _loaded_fast(obj: object) -> None:
    """Make a host directory pyfakefs just added (and, where it merged one into a directory of
    the model, each host directory it added there) load its entries as :class:`_HostDirectory`."""
    if type(obj) is FakeDirectoryFromRealDirectory and not obj.contents_read:
        obj.__class__ = _HostDirectory
    elif type(obj) is FakeDirectory:
        for child in obj._entries.values():
            if type(child) is FakeDirectoryFromRealDirectory and not child.contents_read:
                child.__class__ = _HostDirectory


class _MemfdBacked(FakeFile):
    """A model file whose contents, size, mtime and ctime are those of a memfd the master owns.

    Programs read and write the memfd directly; pyfakefs (and so the test) sees the same bytes
    through these overrides. Objects get this class (mixed with their own) when first opened.

    The atime stays the model's: a memfd's changes on every read (its filesystem is strictatime),
    and no one could keep an answer about a file a program reads exact. So the model behaves as a
    filesystem mounted noatime: reads leave the atime alone; utimensat and the test set it.
    """

    memfd_fd: int
    memfd_made: int  # the memfd's ctime (ns) when it was made from the model's copy
    memfd_key: bytes  # the key of its record in the snapshot (descriptor_record)
    memfd_writable = False  # see FileSystem.changes_unseen

    @property
    def _byte_contents(self) -> bytes:
        return _read_all(self.memfd_fd)

    @_byte_contents.setter
    def _byte_contents(self, data: bytes | None) -> None:
        os.ftruncate(self.memfd_fd, 0)
        _write_all(self.memfd_fd, data or b"")

    @property
    def st_size(self) -> int:
        return os.fstat(self.memfd_fd).st_size

    @st_size.setter
    def st_size(self, value: int) -> None:
        os.ftruncate(self.memfd_fd, value)

    @property
    def st_mtime(self) -> float:
        return os.fstat(self.memfd_fd).st_mtime_ns / 1e9

    @st_mtime.setter
    def st_mtime(self, value: float) -> None:
        os.utime(self.memfd_fd, (self.st_atime, value))

    @property
    def st_ctime(self) -> float:
        return self.ctime_ns(os.fstat(self.memfd_fd)) / 1e9

    @st_ctime.setter
    def st_ctime(self, value: float) -> None:
        self.stat_result.st_ctime = value

    def ctime_ns(self, info: os.stat_result) -> int:
        """The file's ctime, given the memfd's fstat: the model's, until the memfd changes (it
        was written, truncated or had its mtime set); then the later of the two. Making the
        memfd is no change: opening a file leaves its ctime alone."""
        return _memfd_ctime(self.stat_result._st_ctime_ns, self.memfd_made, info)

    def __setattr__(self, key: str, value: Any) -> None:
        if key in _MEMFD_ATTRIBUTES:  # ours, not pyfakefs's stat_result
            object.__setattr__(self, key, value)
        else:
            super().__setattr__(key, value)

    def detach(self) -> None:
        """Give the object its contents back as plain pyfakefs data and close the memfd."""
        memfd = self.memfd_fd
        data, info = _read_all(memfd), os.fstat(memfd)
        ctime = self.ctime_ns(info)
        self.__class__ = _ORIGINAL_CLASSES[type(self)]
        for key in ("memfd_fd", "memfd_made", "memfd_key", "memfd_writable"):
            self.__dict__.pop(key, None)
        FakeFile.__setattr__(self, "_byte_contents", data)
        meta = self.stat_result
        meta.st_size, meta.st_mtime_ns, meta.st_ctime_ns = len(data), info.st_mtime_ns, ctime
        os.close(memfd)


_MEMFD_ATTRIBUTES = frozenset({"st_size", "st_mtime", "st_ctime", "_byte_contents"})
_MEMFD_CLASSES: dict[type, type] = {}  # a pyfakefs file class -> its memfd-backed version
_ORIGINAL_CLASSES: dict[type, type] = {}  # and back


def _memfd_class(original: type) -> type:
    """``original`` with :class:`_MemfdBacked` in front (made once per class)."""
    if original not in _MEMFD_CLASSES:
        backed = type(f"Memfd{original.__name__}", (_MemfdBacked, original), {})
        _MEMFD_CLASSES[original] = backed
        _ORIGINAL_CLASSES[backed] = original
    return _MEMFD_CLASSES[original]


def _prefix_of(path: str, prefixes: tuple[str, ...]) -> str | None:
    """The first of ``prefixes`` (normalized paths) that is ``path`` or one of its parents."""
    if not path.startswith(prefixes):  # one test in C rules out most paths
        return None
    for prefix in prefixes:
        if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
            return prefix
    return None


_MAX_SYMLINKS = 40  # as Linux
_S_IFMT, _S_IFLNK = 0o170000, stat.S_IFLNK
_NAME_MAX = 255  # bytes of one name, as Linux
# what statfs answers of the model (see FileSystem.statfs)
_TMPFS_MAGIC = 0x01021994  # linux/magic.h: an in-memory filesystem, as the model is
_BLOCK = 4096
_INODES = 1 << 20  # the model has no inode limit: a count programs take as plenty
_UNSIZED_DISK = 1 << 40  # statfs of a disk the test gave no size (pyfakefs says the same)
_ST_RDONLY, _ST_VALID = 0x0001, 0x0020


def _too_long(name: str) -> bool:
    """Whether ``name`` is too long to be one entry's (a character is at most 4 bytes)."""
    return len(name) > _NAME_MAX // 4 and len(_fsencode(name)) > _NAME_MAX


def _components(path: str) -> list[str]:
    """The names in ``path`` ("." and empty ones left out), last first: a stack to walk."""
    return [name for name in reversed(path.split("/")) if name and name != "."]


_TYPES = {
    stat.S_IFREG: "regular",
    stat.S_IFDIR: "directory",
    stat.S_IFLNK: "symlink",
    stat.S_IFBLK: "block",
    stat.S_IFCHR: "character",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}


def object_type(obj: Any) -> str:
    return _TYPES[stat.S_IFMT(obj.st_mode)]
