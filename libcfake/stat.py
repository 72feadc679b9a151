"""Stat tables: what a stat or lstat reply carries, in the shape of Emilua's ``libc_service``.

A reply may be a :class:`StatResult`, or a mapping with the same field names::

    svc.send({"type": "regular", "mode": 0o644, "size": 12, "mtime": 1_700_000_000})
    svc.send(StatResult.from_os(os.stat("/etc/hostname")))

``type`` is one of :data:`FILE_TYPES`; ``mode`` holds the permission bits (type bits in it are
allowed when they agree with ``type``); times are seconds since the epoch (int or float) or
``datetime`` objects.
"""

from __future__ import annotations

import dataclasses
import math
import os
import stat as _stat
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

Time = int | float | datetime

FILE_TYPES: dict[str, int] = {
    "regular": _stat.S_IFREG,
    "directory": _stat.S_IFDIR,
    "symlink": _stat.S_IFLNK,
    "block": _stat.S_IFBLK,
    "character": _stat.S_IFCHR,
    "fifo": _stat.S_IFIFO,
    "socket": _stat.S_IFSOCK,
}
_TYPE_NAMES = {bits: name for name, bits in FILE_TYPES.items()}
_UINT64 = 2**64
_UNSIGNED_FIELDS = ("mode", "size", "dev", "ino", "nlink", "uid", "gid", "rdev", "blksize")
_JUST_INT = {int}


@dataclasses.dataclass(frozen=True)
class StatResult:
    """One file's metadata as a program's stat() sees it."""

    type: str
    mode: int
    size: int = 0
    dev: int = 0
    ino: int = 0
    nlink: int = 1
    uid: int = 0
    gid: int = 0
    rdev: int = 0
    atime: Time = 0
    mtime: Time = 0
    ctime: Time = 0
    blksize: int = 4096
    blocks: int | None = None  # None: the 512-byte blocks of ``size`` rounded up to ``blksize``

    def __post_init__(self) -> None:
        if self.type not in FILE_TYPES:
            raise ValueError(f"stat type {self.type!r} is not one of {', '.join(FILE_TYPES)}")
        type_bits = _stat.S_IFMT(self.mode)
        if type_bits and type_bits != FILE_TYPES[self.type]:
            raise ValueError(
                f"stat mode {self.mode:#o} says {_TYPE_NAMES.get(type_bits, 'an unknown type')}"
                f" but type is {self.type!r}"
            )
        # Every stat reply is built here, so the checks come in two steps: one quick test that a
        # valid table passes, then, only when it fails, the field by field checks that name the
        # wrong field.
        unsigned = (self.mode, self.size, self.dev, self.ino, self.nlink, self.uid, self.gid,
                    self.rdev, self.blksize)  # fmt: skip
        if set(map(type, unsigned)) != _JUST_INT or min(unsigned) < 0 or max(unsigned) >= _UINT64:
            for name in _UNSIGNED_FIELDS:
                _check_unsigned(name, getattr(self, name))
        if self.blocks is not None:
            _check_unsigned("blocks", self.blocks)
        for name, value in (("atime", self.atime), ("mtime", self.mtime), ("ctime", self.ctime)):
            if type(value) is not int and not (type(value) is float and math.isfinite(value)):
                split_time(name, value)  # a datetime, or raises ValueError naming the field

    @property
    def st_mode(self) -> int:
        """The full st_mode: type bits and permission bits."""
        return FILE_TYPES[self.type] | _stat.S_IMODE(self.mode)

    @property
    def st_blocks(self) -> int:
        """Allocated 512-byte blocks, computed from the size when not given."""
        if self.blocks is not None:
            return self.blocks
        unit = max(self.blksize, 512)
        return -(-self.size // unit) * (unit // 512)

    @classmethod
    def from_os(cls, st: os.stat_result) -> StatResult:
        """The table for a real ``os.stat_result`` (handy to answer with a host file's metadata)."""
        return cls(
            type=_TYPE_NAMES[_stat.S_IFMT(st.st_mode)],
            mode=_stat.S_IMODE(st.st_mode),
            size=st.st_size,
            dev=st.st_dev,
            ino=st.st_ino,
            nlink=st.st_nlink,
            uid=st.st_uid,
            gid=st.st_gid,
            rdev=st.st_rdev,
            atime=st.st_atime_ns / 1e9,
            mtime=st.st_mtime_ns / 1e9,
            ctime=st.st_ctime_ns / 1e9,
            blksize=st.st_blksize,
            blocks=st.st_blocks,
        )

    @classmethod
    def coerce(cls, value: StatResult | Mapping[str, Any]) -> StatResult:
        """Accept a StatResult or a mapping of its fields; raise ValueError naming what is wrong."""
        if isinstance(value, StatResult):
            return value
        if isinstance(value, Mapping):
            known = {field.name for field in dataclasses.fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise ValueError(f"unknown stat fields: {', '.join(map(str, unknown))}")
            missing = [name for name in ("type", "mode") if name not in value]
            if missing:
                raise ValueError(f"a stat table needs {' and '.join(missing)}")
            return cls(**value)
        raise TypeError(
            "a stat reply is a StatResult, a mapping of its fields or -1, "
            f"not {type(value).__name__}"
        )


def _check_unsigned(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < _UINT64:
        raise ValueError(f"stat field {name} must be an integer from 0 to 2**64-1, not {value!r}")


def split_time(name: str, value: object) -> tuple[int, int]:
    """(seconds, nanoseconds) of a stat time given as int, float or datetime."""
    if type(value) is int:  # the common cases first
        return value, 0
    if type(value) is not float:
        if isinstance(value, datetime):
            value = value.timestamp()
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"stat field {name} must be seconds (int or float) or a datetime")
        elif isinstance(value, int):
            return value, 0
    assert isinstance(value, float)
    if not math.isfinite(value):
        raise ValueError(f"stat field {name} must be finite, not {value!r}")
    seconds = math.floor(value)
    nanoseconds = min(round((value - seconds) * 1e9), 999_999_999)
    return seconds, nanoseconds


class FsStats(NamedTuple):
    """What statfs(2) says of a filesystem: the fields of ``struct statfs`` without their ``f_``
    (``fsid`` as one number; ``flags`` the ST_* mount flags, ST_VALID among them)."""

    type: int
    bsize: int
    blocks: int
    bfree: int
    bavail: int
    files: int
    ffree: int
    fsid: int
    namelen: int
    frsize: int
    flags: int
