"""How programs spell paths, and the one spelling the Sandbox decides on (see :func:`one_spelling`).

Pure functions of a path's text (and the calling process's ids): no model, no host. The
Sandbox's router (:mod:`libcfake.request`) makes each call's paths with them, the host routes
(:mod:`libcfake.routes`) and the filesystem answers (:mod:`libcfake.fs_answers`) decide on them.
"""

from __future__ import annotations

import os
import posixpath
import re

from .calls import Call
from .protocol import ProcessInfo

#: A program's own descriptors, reopened (any mode), in their one spelling (see one_spelling:
#: /dev/stdin, /dev/fd/3 and /proc/<its pid>/fd/3 are spelled so): in the process's descriptor
#: table (the main thread's), or in the calling thread's.
OWN_DESCRIPTOR = re.compile(r"/proc/(self|thread-self)/fd/(\d+)")
#: /proc entries that lead to other files of the host: any path through one is refused.
MAGIC_LINK = re.compile(r"^/proc/(.+/)?((root|cwd|exe|map_files)|fd/\d+)(/|$)")
#: /proc/<pid> and what is under it (in the one spelling): only the sandbox's own processes may
#: be looked at there.
PROC_OTHER = re.compile(r"/proc/(\d+)(?=/|$)")
#: The spellings one_spelling gives one: a process's own /proc directory, its threads', and the
#: /dev links into /proc/self/fd.
_PROC_PID = re.compile(r"/proc/(\d+|self)(?:/task/(\d+))?(?=/|$)")
_DEV_FD = re.compile(r"/dev/(?:fd(?=/|$)|std(in|out|err)(?=/|$))")
_STD_FD = {"in": "/0", "out": "/1", "err": "/2"}
AT_SYMLINK_NOFOLLOW = 0x100  # the flags of chmod, chown and utimens as the shim sends them
AT_SYMLINK_FOLLOW = 0x400  # of link


def one_spelling(path: str, process: ProcessInfo | None = None) -> str:
    """A path's one spelling, which every decision about a call is made on: repeated slashes
    and "." components dropped (a last "." is kept, and a trailing slash: both ask for a
    directory, and rmdir, rename and unlink treat a last "." as the kernel does); the calling
    process's own /proc directory spelled /proc/self (its thread's, /proc/thread-self), and
    /dev/fd and /dev/std* as the /proc/self/fd they lead to. ".." stays: it is resolved once,
    by the model's walk as the kernel does (after a symlink, the parent of its target), or,
    under /proc, refused (see :meth:`libcfake.routes.HostRoutes.route`).

    ``process``: the caller, whose own pid and tid are recognized (without it, a numeric
    /proc/<pid> stays as it is, and is refused as any other process's would be).
    """
    if not path.startswith("/"):
        return path
    if "//" in path or "/./" in path:
        names = path.split("/")
        last = names[-1]
        names = [name for name in names[:-1] if name and name != "."] + [last]
        path = "/" + "/".join(names)
    if path.startswith("/dev/"):
        match = _DEV_FD.match(path)
        if match is not None:
            path = "/proc/self/fd" + _STD_FD.get(match.group(1) or "", "") + path[match.end() :]
    if path.startswith("/proc/") and process is not None:
        match = _PROC_PID.match(path)
        if match is not None:
            pid, tid = match.group(1), match.group(2)
            if pid in ("self", str(process.pid)):
                if tid == str(process.tid):
                    path = "/proc/thread-self" + path[match.end() :]
                elif pid != "self":
                    path = "/proc/self" + path[len(f"/proc/{pid}") :]
    return path


def where(path: str) -> str:
    """Where a path in its one spelling leads by its text alone (its ".." taken lexically), for
    choosing its route: the model's walk, or the host's checks, then decide on the same path."""
    if "/.." not in path:
        return path
    return one_spelling(posixpath.normpath(path))


def descriptor_entry(process: ProcessInfo, path: str) -> str | None:
    """The entry in the caller's descriptor table that a reopen of one of its own descriptors
    (/proc/self/fd/N, /proc/thread-self/fd/N) names: the process's table (its main thread's) or
    the calling thread's, which differ after the thread called unshare(CLONE_FILES)."""
    match = OWN_DESCRIPTOR.fullmatch(path)
    if match is None:
        return None
    owner, number = match.groups()
    if owner == "thread-self":
        return f"/proc/{process.pid}/task/{process.tid}/fd/{number}"
    return f"/proc/{process.pid}/fd/{number}"


def special_end(path: str) -> str | None:
    """How ``path`` ends when the kernel will not remove or rename what it names by that end:
    ".", "..", or "/" (the root itself); None when it ends in a name."""
    if path and not path.rstrip("/"):
        return "/"
    last = path.rstrip("/").rpartition("/")[2]
    return last if last in (".", "..") else None


def follows_last_link(call: Call) -> bool:
    """Whether a call on a path acts where a symlink at the path's end leads, rather than on the
    link itself (as unlink, rename, mkdir and the like do)."""
    function, flags = call.function, call.raw.flags
    if function in ("open", "openat"):  # O_CREAT | O_EXCL fails on any symlink: EEXIST
        return not flags & os.O_NOFOLLOW and not (flags & os.O_CREAT and flags & os.O_EXCL)
    if function in ("chmod", "chown", "utimens", "setxattr", "removexattr"):
        return not flags & AT_SYMLINK_NOFOLLOW
    if function == "link":
        return bool(flags & AT_SYMLINK_FOLLOW)
    return function == "truncate"
