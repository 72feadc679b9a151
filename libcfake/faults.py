"""Fault rules: make chosen calls fail, by call, path or host pattern, and occurrence.

    sb.fail("open", "/var/log/*.log", errno.EACCES)          # every matching open
    sb.fail("stat", "/etc/app.conf", errno.EIO, nth=3)       # only the third matching stat
    sb.fail("mkdir", "/data/*", errno.ENOSPC, times=2)       # the first two
    sb.fail("getaddrinfo", "db.internal", "again")           # EAI_AGAIN
    sb.fail("write", "/data/*", errno.ENOSPC)                # data calls on model files
    sb.fail("write", "/data/log", short=100, times=1)        # one short write of 100 bytes

Patterns are shell globs (fnmatch) on the virtual path, the host name, or "ip:port".

Data calls (:data:`DATA_CALLS`: read, write, fsync, fdatasync, ftruncate, close) are asked about
only on descriptors the master *watches*: those of model files opened while a rule on a data
call covered their path (or while the model's disk has a size). A rule made after a program
opened a file does not reach that descriptor.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import threading
from errno import errorcode

from .protocol import FUNCTIONS

#: Names that stand for several calls.
CALL_GROUPS: dict[str, frozenset[str]] = {
    "open": frozenset({"open", "openat"}),
    "stat": frozenset({"stat", "lstat"}),
    "access": frozenset({"access", "eaccess"}),
    "connect": frozenset({"connect_unix", "connect_inet", "connect_inet6"}),
    "bind": frozenset({"bind_unix", "bind_inet", "bind_inet6"}),
}


#: The data calls on descriptors: asked about only on watched ones (see the module).
DATA_CALLS = frozenset({"read", "write", "fsync", "fdatasync", "ftruncate", "close"})
#: The data calls whose answer may be a count of bytes (a short read or write).
COUNTED_CALLS = frozenset({"read", "write"})


def calls_named(name: str) -> frozenset[str]:
    """The calls a rule's ``call`` covers; ValueError naming the choices for an unknown one."""
    if name in CALL_GROUPS:
        return CALL_GROUPS[name]
    if name in FUNCTIONS.values():
        return frozenset({name})
    known = sorted(set(FUNCTIONS.values()) | set(CALL_GROUPS))
    raise ValueError(f"unknown call {name!r} for a fault rule; one of: {', '.join(known)}")


@dataclasses.dataclass
class FaultRule:
    """Fail calls named ``call`` whose subject matches ``pattern`` with ``error``."""

    call: str
    pattern: str
    error: int | str  # an errno, or a getaddrinfo error name
    nth: int | None = None  # only from the nth matching call (1-based) ...
    times: int | None = None  # ... and at most this many times (nth alone means once)
    delay: float = 0.0  # seconds to wait before answering
    short: int | None = None  # read, write: move at most this many bytes instead of failing
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        self.calls = calls_named(self.call)
        for name, value in (("nth", self.nth), ("times", self.times)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if self.short is not None:
            if not isinstance(self.short, int) or not 0 <= self.short < 2**31:
                raise ValueError(f"short must be an integer from 0 to 2**31-1, not {self.short!r}")
            if not self.calls <= COUNTED_CALLS:
                raise ValueError(f"short= makes reads and writes short, not {self.call}")
        if self.nth is not None and self.times is None:
            self.times = 1
        self._lock = threading.Lock()

    def __str__(self) -> str:
        error = self.error if isinstance(self.error, str) else _errno_constant(self.error)
        extras = "".join(
            f", {name}={value!r}"
            for name, value in (("nth", self.nth), ("times", self.times), ("delay", self.delay),
                                ("short", self.short))
            if value is not None and value != 0.0
        )  # fmt: skip
        if self.short is not None:
            return f"fail({self.call!r}, {self.pattern!r}{extras})"
        return f"fail({self.call!r}, {self.pattern!r}, {error}{extras})"

    def covers(self, calls: frozenset[str], subject: str) -> bool:
        """Whether this rule may fail one of ``calls`` on ``subject`` (nothing is counted)."""
        return bool(self.calls & calls) and fnmatch.fnmatchcase(subject, self.pattern)

    def applies(self, call: str, subject: str | None) -> bool:
        """Count a matching call and say whether this rule fails it."""
        if call not in self.calls or subject is None:
            return False
        if not fnmatch.fnmatchcase(subject, self.pattern):
            return False
        with self._lock:
            self.seen += 1
            if self.nth is not None and self.seen < self.nth:
                return False
            if self.times is not None and self.fired >= self.times:
                return False
            self.fired += 1
            return True


def _errno_constant(code: int) -> str:
    """ "errno.EACCES" for 13, as a test writes it."""
    return f"errno.{errorcode[code]}" if code in errorcode else str(code)
