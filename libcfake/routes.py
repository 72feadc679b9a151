"""The host routes: paths that live outside the model, and what a call on one may do.

Three kinds of path are the host's, not the model's (:meth:`HostRoutes.route`):

- **mounts**: host directories visible read-only at the same path (``/usr``, the interpreter's
  own paths, ``mounts=``). Reading is the program's real call (a passthrough); a change is
  refused with EROFS, after the path's own errors (ENOENT, EACCES...), as the kernel resolves a
  path before it asks the filesystem. A symlink that leads out of every mount is not followed to
  the host: the model answers instead.
- **devices** (``/dev/null``, ``/dev/tty``...) and a program's own descriptors reopened
  (``/proc/self/fd/N``, ``/dev/stdout``): the real call, with the model's permissions deciding
  when the descriptor is one of the model's files.
- **/proc**: the program's own processes' entries, read-only; magic links that lead to other
  host files (``root``, ``cwd``, ``exe``, ``fd/N`` in a path) and other processes are refused.

One change under a mount is not a violation: Python's bytecode cache. An interpreter that
imports a module whose ``__pycache__`` is missing or stale (the user's own code, edited since
it last ran, or never imported by the test process) tries to write it next to the source, and
ignores the EROFS a read-only filesystem answers. It gets that answer, journaled, and the test
is not failed for what the program never asked for.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
from collections.abc import Callable
from typing import Any

from ._paths import MAGIC_LINK, OWN_DESCRIPTOR, PROC_OTHER, descriptor_entry, one_spelling, where
from ._shadow import ShadowTree
from .fs import DEVICES, FileSystem
from .outcomes import PASSTHROUGH, Refused
from .protocol import PackedStat, pack_stat_ns
from .request import Request

#: A process's own executable's link (/proc/self/exe in its one spelling): readlink may read it.
OWN_EXE = re.compile(r"^/proc/(self|thread-self)/exe$")

#: Python's bytecode cache: importlib's mkdir of ``__pycache__``, and the temporary file it
#: writes a ``.pyc`` through (``name.cpython-311.pyc.<id>``, O_CREAT|O_EXCL, then renamed).
_PYCACHE_DIR = re.compile(r"/__pycache__\Z")
_PYC_TEMPORARY = re.compile(r"/__pycache__/[^/]+\.pyc\.[0-9]+\Z")
_BYTECODE_CACHE = {"mkdir": _PYCACHE_DIR, "open": _PYC_TEMPORARY, "openat": _PYC_TEMPORARY}

#: A thread's name (/proc/self/comm, /proc/thread-self/comm, /proc/self/task/N/comm in the one
#: spelling): a program may rename its own threads. glibc's pthread_setname_np of another thread
#: opens it for writing with its internal open (the shim sees it only under the hybrid backend:
#: bind's dig names its workers so), and the kernel lets only the threads' own process write it.
OWN_COMM = re.compile(r"^/proc/(self|thread-self|self/task/\d+)/comm$")

#: What a program may do with a device or one of its own descriptors, reopened.
_DEVICE_CALLS = frozenset(
    {"open", "openat", "stat", "lstat", "access", "eaccess", "readlink", "realpath", "statfs"}
)


class HostRoutes:
    """Decides the calls whose path is the host's (see the module)."""

    def __init__(self, fs: FileSystem, shadow: ShadowTree, serves: Callable[[int], bool]) -> None:
        self.fs = fs
        self._shadow = shadow
        self._serves = serves  # whether a pid is a program of this sandbox

    def route(self, path: str) -> str | None:
        """Where a path (in its one spelling) lives outside the model: "device", "proc" or a
        mount; None: the model."""
        if path.startswith("/proc/") and "/../" in path + "/":
            return "proc"  # ".." after a magic link is the kernel's to follow: never ours
        norm = path if "/.." not in path else where(path)
        if norm.startswith(("/dev/", "/proc")):  # devices and /proc are all under these
            norm = one_spelling(norm)  # (a path from elsewhere: a descriptor's target, an entry)
            if norm in DEVICES or OWN_DESCRIPTOR.fullmatch(norm):
                return "device"
            if norm in ("/dev/fd", "/proc") or norm.startswith(("/dev/fd/", "/proc/")):
                return "proc"
        return self.fs.mount_of(norm)

    def check_writable(self, path: str, follow: bool) -> None:
        """Refuse (EROFS, a violation) a change to a path that resolves into the host's files;
        ``follow``: the change is made where a symlink at its end leads, not to the link."""
        self.check_canonical(path, self.fs.canonical(path, follow))

    def check_canonical(self, path: str, canonical: str) -> None:
        """:meth:`check_writable` of a path whose walk led to ``canonical`` (the model's
        :meth:`~libcfake.fs.FileSystem.canonical` of it)."""
        protection = self.fs.protection_of(canonical)
        if protection is not None:
            where_to = path if canonical == path else f"{path} leads to {canonical}, which"
            raise Refused(errno.EROFS, f"{where_to} is in {protection}")

    def answer(self, request: Request, route: str) -> Any:
        """The outcome of a call whose subject is the host's (``route``, see :meth:`route`);
        None: the model answers after all (a symlink in a mount that leads out of every
        mount)."""
        path = request.path
        assert path is not None
        if request.name == "readdir":  # a mount or a device the model lists: the host's inode
            return _host_lstat(path)
        if route == "device":
            return self._device(request, path)
        if route == "proc":
            return self._proc(request, path)
        if request.changes:  # the path's own errors come first, as the kernel
            request.view().parent(path)  # resolves it before it asks the mount (ENOENT...)
            cache = _BYTECODE_CACHE.get(request.name)
            if cache is not None and cache.search(path):  # not a violation (see the module)
                return OSError(errno.EROFS, os.strerror(errno.EROFS))
            raise Refused(
                errno.EROFS, f"{request.name} writes under the read-only host mount {route}"
            )
        kernel = self._kernel_path(request)
        real = _host_realpath(request, kernel)  # where the kernel would really go
        if any(real == m or real.startswith(m.rstrip("/") + "/") for m in self.fs.real_mounts):
            return PASSTHROUGH
        # A symlink inside the mount leads out of every mount (/usr/lib/ssl/private ->
        # /etc/ssl/private): the kernel must not follow it to the host. The model answers
        # instead, where the mount's symlinks are symlinks too and their targets are the model's
        # (usually ENOENT). Running a program found that way is refused.
        if request.name == "exec" and self._shadow.virtual_path(kernel) is not None:
            raise Refused(errno.EACCES, f"running {path} by a path relative to a virtual "
                          f"directory: the kernel would look in its shadow, {kernel}")  # fmt: skip
        if request.name == "exec":
            raise Refused(errno.EACCES, f"{path} leads out of the host mount {route} to {real}")
        return None

    def _device(self, request: Request, path: str) -> Any:
        """Reopening a device or one's own descriptor, in any mode: the real call."""
        if request.name not in _DEVICE_CALLS:
            raise Refused(errno.EACCES, f"{request.name} on the host device {path}")
        writes = request.changes
        target = self._descriptor_target(request, where(path))
        if target is not None and writes:
            mount = self.route(target)
            if mount not in (None, "device"):
                raise Refused(errno.EROFS, f"{path} reopens {target}, in the host's {mount}")
        if writes:
            self._reopened_for_writing(request, where(path))
        return PASSTHROUGH

    def _proc(self, request: Request, path: str) -> Any:
        if request.name in ("readlink", "exec") and OWN_EXE.match(path):
            # the text of the link (static glibc's start-up asks it), or the program running
            # itself again (busybox's applets): nothing else is reached through it
            return PASSTHROUGH
        if "/../" in path + "/" or MAGIC_LINK.search(where(path)):
            raise Refused(errno.EACCES, f"{path} leads through a /proc magic link to the host")
        other = PROC_OTHER.match(where(path))
        if other is not None and not self._serves(int(other.group(1))):
            outside = f"pid {other.group(1)} is not a program of this sandbox"
            raise Refused(errno.EACCES, f"{path}: {outside} (the test's, or another's)")
        if request.name in ("open", "openat") and OWN_COMM.match(path):
            return PASSTHROUGH  # its own thread's name, read or written
        if request.changes:
            raise Refused(errno.EACCES, "writing under /proc is not modelled")
        return PASSTHROUGH

    def _kernel_path(self, request: Request) -> str:
        """The path the kernel resolves if the program makes the call itself (a passthrough):
        its text, from its directory descriptor's real path when relative (a shadow directory's
        is not the virtual one it stands for)."""
        raw = request.call.raw
        link = request.name == "symlink"  # (its subject is the link path, the second string)
        text = os.fsdecode((raw.string2 if link else raw.string1) or b"")
        fd = request.dir2 if link else request.dir1
        if text.startswith("/") or fd is None:
            return text
        return os.readlink(f"/proc/self/fd/{fd}") + "/" + text

    def _descriptor_target(self, request: Request, path: str) -> str | None:
        """The host file a reopened descriptor (/proc/self/fd/N, /proc/thread-self/fd/N) names,
        if any: in the descriptor table the path names, which the kernel will look in."""
        table = descriptor_entry(request.process, path)
        if table is None:
            return None
        try:
            target = os.readlink(table)
        except OSError:
            return None
        # pipes, sockets, memfds (the model's files) and anonymous inodes are no host files
        return (
            target if target.startswith("/") and self._shadow.virtual_path(target) is None else None
        )

    def _reopened_for_writing(self, request: Request, path: str) -> None:
        """A program reopens one of its own descriptors (/dev/fd/N, /proc/self/fd/N, /dev/stdout)
        for writing. If that is the memfd of a file it opened read-only (or O_PATH), the model's
        permissions decide, as the kernel's would for a real file; if they let it, it may now
        change the file unseen: the file is published no more. (The snapshot was emptied before
        this call, as before any call that may write.)"""
        table = descriptor_entry(request.process, path)
        if table is None:
            return
        try:
            info = os.stat(table)
        except OSError:
            return  # no such descriptor (now): the program's open fails
        file = self.fs.file_of_descriptor(info)
        if file is not None:  # the kernel checks the memfd's mode (0777): the model's counts
            self.fs.check(file, request.caller(), os.W_OK, path)
            self.fs.written_unseen(file)


def _host_lstat(path: str) -> PackedStat:
    """What lstat says of a host path (readdir's answer for a mount point or a device that a
    shadow directory lists: its d_ino is then the host's)."""
    st = os.lstat(path)
    return pack_stat_ns(st.st_mode, st.st_size, st.st_dev, st.st_ino, st.st_nlink, st.st_uid,
                        st.st_gid, st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns)  # fmt: skip


def _host_realpath(request: Request, path: str) -> str:
    """Where a host path really leads; the last component is kept when the call does not follow
    it (lstat, readlink, O_NOFOLLOW)."""
    name = request.name
    nofollow = name in ("lstat", "readlink") or (
        name in ("open", "openat") and bool(request.call.raw.flags & os.O_NOFOLLOW)
    )
    parent, last = posixpath.split(path)
    if not nofollow or last in ("", ".", ".."):
        return os.path.realpath(path)
    return posixpath.join(os.path.realpath(parent or "/"), last)
