"""A forwarded call as the master sees it, and its arguments in the seed's vocabulary.

:class:`Call` is the record that crosses layers: the service hands it out, the sandbox journals
it. ``Call.arguments()`` gives the argument list of Emilua's ``libc_service.master``::

    open, openat          (path, flags, mode)  mode only with "create" or "temporary"
    unlink, stat, lstat, rmdir   (path,)
    rename                (path1, path2)
    access, eaccess       (path, amode)        amode "f" or a list of "r" "w" "x"
    mkdir                 (path, mode)
    connect_unix, bind_unix      (path,)       bytes starting with b"\\0" for an abstract name
    connect_inet*, bind_inet*    (ip_address, port)
    getaddrinfo           (node, service, protocol)   protocol "tcp", "udp" or None

libcfake's extensions, for programs living in a virtual filesystem::

    readlink, chdir, getcwd, realpath, exec   (path,)   getcwd's path is the real cwd
    symlink               (target, link_path)
    link                  (path, new_path)
    chmod                 (path, mode)             fchmod (mode,)
    chown                 (path, uid, gid)         fchown (uid, gid)   None: unchanged
    utimens               (path, atime, mtime)     futimens (atime, mtime)
                          each seconds (float), "now" or None (left as it is)
    truncate              (path, length)
    fstat                 ()                       the file is in descriptors()
    getnameinfo           (ip_address, port, ni_flags)     answered with a host name
    res_query             (name, rdclass, rdtype)          answered with a DNS message (bytes)
    mknod                 (path, mode, device)     mode holds the file type (S_IF*)
    setxattr              (path, name, flags)      fsetxattr (name, flags)   flags XATTR_*
    removexattr           (path, name)             fremovexattr (name,)
    getxattr              (path, name, size)       fgetxattr (name, size)   size: the buffer's
    listxattr             (path, size)             flistxattr (size,)
    fsioctl               (request, value)         an ioctl changing a file's attributes
    open_by_handle_at     (flags,)                 the mount_fd is in descriptors()
    mount                 (target, source, flags)  also umount, umount2, chroot (see symbol)
"""

from __future__ import annotations

import os
import socket
from pathlib import PurePosixPath
from typing import Any, NamedTuple

from .protocol import CHANGING_FUNCTIONS, ProcessInfo, RawCall

#: O_* bits and the seed's names for them (the access mode is handled apart).
OPEN_FLAG_NAMES: tuple[tuple[int, str], ...] = (
    (os.O_APPEND, "append"),
    (os.O_CREAT, "create"),
    (os.O_DIRECTORY, "directory"),
    (os.O_EXCL, "exclusive"),
    (os.O_NOFOLLOW, "no_follow"),
    (os.O_PATH, "path"),
    (os.O_SYNC, "sync_all_on_write"),
    (os.O_TMPFILE, "temporary"),
    (os.O_TRUNC, "truncate"),
)
_ACCESS_MODE_NAMES = {os.O_RDONLY: "read_only", os.O_WRONLY: "write_only", os.O_RDWR: "read_write"}

#: openat2's RESOLVE_* bits (linux/openat2.h) and the seed's names for them.
RESOLVE_FLAG_NAMES: tuple[tuple[int, str], ...] = (
    (0x08, "resolve_beneath"),
    (0x10, "resolve_in_root"),
    (0x02, "resolve_no_magiclinks"),
    (0x04, "resolve_no_symlinks"),
    (0x01, "resolve_no_xdev"),
    (0x20, "resolve_cached"),
)


def open_flag_names(flags: int, resolve: int = 0) -> list[str]:
    """The seed's names for O_* ``flags`` (and RESOLVE_* ``resolve``), in the seed's order."""
    names = []
    if not flags & os.O_PATH:
        names.append(_ACCESS_MODE_NAMES.get(flags & os.O_ACCMODE, "read_write"))
    temporary = flags & os.O_TMPFILE == os.O_TMPFILE
    for bits, name in OPEN_FLAG_NAMES:
        if flags & bits != bits:
            continue
        if name == "directory" and temporary:
            continue  # O_TMPFILE contains O_DIRECTORY's bit
        names.append(name)
    names.extend(name for bits, name in RESOLVE_FLAG_NAMES if resolve & bits)
    return sorted(names)


def access_mode_names(amode: int) -> str | list[str]:
    """The seed's amode: "f" for F_OK, else the list of "r", "w", "x" requested."""
    if amode == os.F_OK:
        return "f"
    return [name for bits, name in ((os.R_OK, "r"), (os.W_OK, "w"), (os.X_OK, "x")) if amode & bits]


def _path(raw: bytes | None) -> PurePosixPath:
    return PurePosixPath(os.fsdecode(raw or b""))


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "surrogateescape")


def _unix_name(raw: bytes | None) -> PurePosixPath | bytes:
    raw = raw or b""
    return raw if raw.startswith(b"\0") else _path(raw)


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _utime(seconds: int, nanoseconds: int) -> float | str | None:
    """A utimensat time: seconds as float, "now" (UTIME_NOW) or None (UTIME_OMIT)."""
    if nanoseconds == _UTIME_NOW:
        return "now"
    if nanoseconds == _UTIME_OMIT:
        return None
    return seconds + nanoseconds / 1e9


_UTIME_NOW = (1 << 30) - 1
_UTIME_OMIT = (1 << 30) - 2


def _protocol_name(raw: RawCall) -> str | None:
    if raw.protocol == socket.IPPROTO_TCP or raw.socktype == socket.SOCK_STREAM:
        return "tcp"
    if raw.protocol == socket.IPPROTO_UDP or raw.socktype == socket.SOCK_DGRAM:
        return "udp"
    return None


class Call(NamedTuple):
    """One call a program forwarded: who made it, and what it asked.

    A named tuple, as :class:`~libcfake.protocol.RawCall`: the master makes one per call, and a
    tuple is the cheapest immutable record Python builds.
    """

    process: ProcessInfo
    raw: RawCall

    @property
    def function(self) -> str:
        """The seed's name of the call: "open", "stat", "connect_inet", "getaddrinfo", ..."""
        return self.raw.function

    @property
    def creates(self) -> bool:
        """True for an open that may create a file (its arguments carry a mode)."""
        return bool(self.raw.flags & os.O_CREAT) or (self.raw.flags & os.O_TMPFILE == os.O_TMPFILE)

    @property
    def changes_filesystem(self) -> bool:
        """Whether the call would change files (as opposed to reading or asking about them)."""
        function = self.raw.function
        if function in ("open", "openat"):
            return bool(self.raw.flags & _WRITE_FLAGS) or self.creates
        return function in CHANGING_FUNCTIONS

    def arguments(self) -> tuple[Any, ...]:
        """The call's arguments as the seed lists them, as Python values."""
        raw = self.raw
        function = raw.function
        if function in ("open", "openat"):
            flags = open_flag_names(raw.flags, raw.resolve)
            if self.creates:
                return (_path(raw.string1), flags, raw.mode)
            return (_path(raw.string1), flags)
        if function == "rename":
            return (_path(raw.string1), _path(raw.string2))
        if function in ("access", "eaccess"):
            return (_path(raw.string1), access_mode_names(raw.flags))
        if function == "mkdir":
            return (_path(raw.string1), raw.mode)
        if function in ("connect_unix", "bind_unix"):
            return (_unix_name(raw.string1),)
        if function.startswith(("connect_inet", "bind_inet")):
            return (raw.ip_address(), raw.port)
        if function == "getaddrinfo":
            return (_text(raw.string1), _text(raw.string2), _protocol_name(raw))
        return self._extension_arguments()

    def _extension_arguments(self) -> tuple[Any, ...]:
        raw = self.raw
        function = raw.function
        if function in ("symlink", "link"):
            return (_path(raw.string1), _path(raw.string2))
        if function == "getnameinfo":
            return (raw.ip_address(), raw.port, raw.flags)
        if function == "res_query":
            return (_text(raw.string1), raw.mode, raw.flags)
        if function == "open_by_handle_at":
            return (open_flag_names(raw.flags),)
        if function == "mount":
            return (_path(raw.string1), _text(raw.string2), raw.flags)
        if function in ("chmod", "fchmod"):
            args: tuple[Any, ...] = (raw.mode,)
        elif function in ("chown", "fchown"):
            args = tuple(None if value == -1 else value for value in raw.values[:2])
        elif function in ("utimens", "futimens"):
            args = (_utime(*raw.values[:2]), _utime(*raw.values[2:]))
        elif function in ("truncate", "ftruncate"):
            args = (raw.values[0],)
        elif function in ("read", "write"):  # the file travels as a descriptor
            return (None if raw.values[0] < 0 else raw.values[0], raw.values[1])  # offset, bytes
        elif function == "close":
            return ()
        elif function == "mknod":
            args = (raw.mode, raw.values[0])
        elif function in ("setxattr", "fsetxattr"):
            args = (_text((raw.string2 or b"").partition(b"\0")[0]), raw.mode)  # (not the value)
        elif function in ("removexattr", "fremovexattr"):
            args = (_text(raw.string2),)
        elif function in ("getxattr", "fgetxattr"):
            args = (_text(raw.string2), raw.values[0])
        elif function in ("listxattr", "flistxattr"):
            args = (raw.values[0],)
        elif function == "fsioctl":
            args = (raw.values[0], raw.values[1])
        else:  # readlink, chdir, getcwd, realpath, exec: a path; fstat: nothing
            args = ()
        if function.startswith("f"):  # the file travels as a descriptor
            return args
        return (_path(raw.string1), *args)

    def describe(self) -> str:
        """One line for reports: ``pid 123 (/usr/bin/cat) open("/x", ["read_only"])``."""
        args = ", ".join(
            repr(str(a)) if isinstance(a, PurePosixPath) else repr(a) for a in self.arguments()
        )
        return f"pid {self.process.pid} ({self.process.exe}) {self.raw.symbol}({args})"
