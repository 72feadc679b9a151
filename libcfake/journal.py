"""The record of what programs did: every forwarded call with its answer, and the violations.

A :class:`JournalEntry` is written for every call a Sandbox serves; the calls no model or rule
covered are also :class:`Violation` records, which fail a pytest test at teardown.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any


@dataclasses.dataclass(frozen=True)
class JournalEntry:
    """One forwarded call and how it was answered."""

    pid: int
    tid: int
    exe: str
    call: str  # the seed's (or libcfake's) name: "open", "stat", "connect_inet", ...
    symbol: str  # the libc entry point the program called: "fopen", "__xstat64", ...
    arguments: tuple[Any, ...]
    path: str | None  # the virtual path(s) the call named, resolved
    answer: str  # "fd", "ok", "stat", "-1 ENOENT", "passthrough", ...
    errno: int = 0
    fault: bool = False  # answered by a fault rule (sb.fail)
    violation: bool = False

    def __str__(self) -> str:
        marks = " [fault]" if self.fault else " [violation]" if self.violation else ""
        target = f" {self.path}" if self.path else ""
        return f"pid {self.pid} {self.symbol}{target} -> {self.answer}{marks}"


@dataclasses.dataclass(frozen=True)
class Violation:
    """A call no model or rule covered: what was asked, what the program got, and why."""

    pid: int
    exe: str
    call: str
    symbol: str
    arguments: tuple[Any, ...]
    answer: str
    reason: str

    def __str__(self) -> str:
        args = ", ".join(str(a) for a in self.arguments)
        return f"pid {self.pid} ({self.exe}) {self.symbol}({args}) -> {self.answer}: {self.reason}"


def errno_name(code: int) -> str:
    """ "ENOENT" for 2; the number itself for codes Python does not name."""
    import errno as _errno

    return _errno.errorcode.get(code, str(code)) if code > 0 else str(code)


def describe_error(code: int) -> str:
    return f"-1 {errno_name(code)} ({os.strerror(code)})"
