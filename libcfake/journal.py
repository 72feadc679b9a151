"""The record of what programs did: every forwarded call with its answer, and the violations.

A :class:`JournalEntry` is written for every call a Sandbox serves; the calls no model or rule
covered are also :class:`Violation` records, which fail a pytest test at teardown.
"""

from __future__ import annotations

import dataclasses
import errno
import os
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol, cast

from .errors import LibcfakeError
from .faults import calls_named


class _MakesArguments(Protocol):
    """What :meth:`JournalEntry.deferred` takes: a :class:`~libcfake.calls.Call`, say."""

    def arguments(self) -> tuple[Any, ...]: ...


class _Arguments:
    """The ``arguments`` field of a JournalEntry: kept as given, or made on first read.

    A Sandbox records every call, and making the arguments of each (PurePosixPath objects, flag
    names) cost a fifth of the master's time for a stat, while most entries are never read.
    So :meth:`JournalEntry.deferred` keeps the Call instead; the first read asks it for its
    ``arguments()`` and keeps the tuple. (A data descriptor: reads come here although the value
    lives in the entry's ``__dict__``.)
    """

    def __get__(self, entry: object, owner: type | None = None) -> Any:
        if entry is None:
            raise AttributeError("arguments")  # tells dataclasses the field has no default
        value = entry.__dict__["arguments"]
        if type(value) is not tuple:  # a source (a Call, itself a named tuple): make them now
            value = entry.__dict__["arguments"] = value.arguments()
        return value

    def __set__(self, entry: object, value: Any) -> None:
        entry.__dict__["arguments"] = value


@dataclasses.dataclass(frozen=True, init=False)
class JournalEntry:
    """One forwarded call and how it was answered."""

    pid: int
    tid: int
    exe: str
    call: str  # the seed's (or libcfake's) name: "open", "stat", "connect_inet", ...
    symbol: str  # the libc entry point the program called: "fopen", "__xstat64", ...
    if TYPE_CHECKING:
        arguments: tuple[Any, ...]  # as libcfake.calls lists them
    else:
        arguments: _Arguments = _Arguments()
    path: str | None  # the virtual path(s) the call named, resolved
    answer: str  # "fd", "ok", "stat", "-1 ENOENT", "passthrough", ...
    errno: int = 0
    fault: bool = False  # answered by a fault rule (sb.fail)
    violation: bool = False
    from_snapshot: bool = False  # answered by the shim from the metadata snapshot (no round trip)

    def __init__(
        self, pid: int, tid: int, exe: str, call: str, symbol: str, arguments: tuple[Any, ...],
        path: str | None, answer: str, errno: int = 0, fault: bool = False,
        violation: bool = False, from_snapshot: bool = False,
    ) -> None:  # fmt: skip
        # Written out: the __init__ dataclasses generate for a frozen class sets each field
        # with object.__setattr__, which doubled the cost of the entry made for every call.
        self.__dict__.update(
            pid=pid, tid=tid, exe=exe, call=call, symbol=symbol, arguments=arguments, path=path,
            answer=answer, errno=errno, fault=fault, violation=violation,
            from_snapshot=from_snapshot,
        )  # fmt: skip

    @classmethod
    def deferred(
        cls, source: _MakesArguments, *, pid: int, tid: int, exe: str, call: str, symbol: str,
        path: str | None, answer: str, errno: int = 0, fault: bool = False,
        violation: bool = False, from_snapshot: bool = False,
    ) -> JournalEntry:  # fmt: skip
        """An entry whose ``arguments`` are ``source.arguments()`` (a Call's), made when first
        read. (The fields are spelled out: passing them on as ``**fields`` more than doubled the
        cost of the entry made for every call.)"""
        arguments = cast(Any, source)
        return cls(pid, tid, exe, call, symbol, arguments, path, answer, errno, fault, violation,
                   from_snapshot)  # fmt: skip

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
    #: The call's subject as a fault rule matches it: the absolute model path (a dirfd- or
    #: cwd-relative argument resolved), the host name or the address; None if it has none.
    path: str | None = None

    def shown_arguments(self) -> str:
        """The arguments for a person: the absolute path, modes in octal."""
        shown: list[str] = []
        for index, argument in enumerate(self.arguments):
            if index == 0 and isinstance(argument, PurePosixPath) and self.path is not None:
                shown.append(self.path)
            elif isinstance(argument, int) and (self.call, index) in _MODE_ARGUMENTS:
                shown.append(oct(argument))
            else:
                shown.append(str(argument))
        return ", ".join(shown)

    def __str__(self) -> str:
        return (
            f"pid {self.pid} ({self.exe}) {self.symbol}({self.shown_arguments()}) -> "
            f"{self.answer}: {self.reason}"
        )


#: (call, index) of the arguments that are file modes, shown in octal.
_MODE_ARGUMENTS = frozenset(
    {("open", 2), ("openat", 2), ("mkdir", 1), ("chmod", 1), ("fchmod", 0), ("mknod", 1)}
)


_WRITING = frozenset({"write_only", "read_write", "create", "truncate", "append", "temporary"})


class ViolationError(LibcfakeError, AssertionError):
    """Programs made calls that no model or rule covered (raised by a strict Sandbox, and by
    ``Sandbox.check()``). The message is the report: each call, its answer, why, and a hint."""

    def __init__(self, report: str, violations: Sequence[Violation]) -> None:
        super().__init__(report)
        self.violations = list(violations)


class Journal(list[JournalEntry]):
    """Every call a Sandbox served, in order, with helpers for assertions::

    assert "/etc/app.conf" in sb.journal.files_read()
    sb.journal.assert_called("open", "/var/log/*.log")
    sb.journal.assert_not_called("connect")
    """

    def matching(self, call: str | None = None, pattern: str | None = None) -> list[JournalEntry]:
        """Entries of ``call`` (a name or group such as "open", "stat", "connect") whose path or
        host matches the glob ``pattern``."""
        names = calls_named(call) if call is not None else None
        return [
            entry
            for entry in list(self)
            if (names is None or entry.call in names)
            and (pattern is None or (entry.path is not None and fnmatchcase(entry.path, pattern)))
        ]

    def files_read(self) -> list[str]:
        """Paths programs opened for reading (and not writing), in order, once each; only the
        opens that succeeded (see :meth:`files_missing` and :meth:`files_refused`)."""
        return _unique(e.path for e in self.matching("open") if not _writes(e) and not e.errno)

    def files_written(self) -> list[str]:
        """Paths programs opened to write or create and got, in order, once each."""
        return _unique(e.path for e in self.matching("open") if _writes(e) and not e.errno)

    def files_missing(self) -> list[str]:
        """Paths programs tried to open or stat and found missing (ENOENT), once each: the
        config files, plugins and caches a program looks for."""
        looking = calls_named("open") | calls_named("stat") | calls_named("access")
        return _unique(e.path for e in list(self) if e.call in looking and e.errno == errno.ENOENT)

    def files_refused(self) -> list[str]:
        """Paths whose open failed for another reason (EACCES, EROFS, a fault...), once each."""
        return _unique(e.path for e in self.matching("open") if e.errno and e.errno != errno.ENOENT)

    def names_resolved(self) -> list[str]:
        """Host names programs looked up."""
        return _unique(e.path for e in self.matching("getaddrinfo"))

    def connections(self) -> list[str]:
        """Addresses programs connected to ("ip:port", unix paths, "@abstract")."""
        return _unique(e.path for e in self.matching("connect"))

    def assert_called(self, call: str, pattern: str | None = None) -> JournalEntry:
        """The first matching entry; AssertionError listing what was called instead."""
        found = self.matching(call, pattern)
        if not found:
            seen = "\n  ".join(str(e) for e in self.matching(call)[:20]) or "(none)"
            target = f" on {pattern}" if pattern else ""
            raise AssertionError(f"no {call} call{target}; the {call} calls were:\n  {seen}")
        return found[0]

    def assert_not_called(self, call: str, pattern: str | None = None) -> None:
        found = self.matching(call, pattern)
        if found:
            listed = "\n  ".join(str(e) for e in found[:20])
            target = f" on {pattern}" if pattern else ""
            raise AssertionError(f"{len(found)} unexpected {call} call(s){target}:\n  {listed}")


def _writes(entry: JournalEntry) -> bool:
    flags = entry.arguments[1] if len(entry.arguments) > 1 else []
    return bool(_WRITING.intersection(flags))


def _unique(paths: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(p for p in paths if p is not None))


def errno_name(code: int) -> str:
    """ "ENOENT" for 2; the number itself for codes Python does not name."""
    return errno.errorcode.get(code, str(code)) if code > 0 else str(code)


def errno_number(text: str) -> int | None:
    """2 for "ENOENT" or "2"; None for a name Python does not know."""
    if text.isdigit():
        return int(text)
    code = getattr(errno, text, None)
    return code if isinstance(code, int) else None


def describe_error(code: int) -> str:
    return f"-1 {errno_name(code)} ({os.strerror(code)})"


def _hint(violation: Violation, sb: str) -> str:
    """What to write in the test: ``sb`` is the Sandbox's name there (``libcfake`` in pytest)."""
    call, args = violation.call, violation.arguments
    subject = violation.path if violation.path is not None else str(args[0]) if args else ""
    if call == "getaddrinfo":
        return (
            f"model it: {sb}.dns.add({subject!r}, '10.0.0.1'), or {sb}.dns.fail({subject!r}, ...)"
        )
    if call.startswith(("connect", "bind")):
        return (
            f"model it: {sb}.net.route(...) to a server the test runs, or {sb}.fail('connect', ...)"
        )
    if "read-only host" in violation.reason:
        return (
            f"write where the model owns the path ({sb}.fs.create_dir(...)), or copy the host "
            f"tree in writable: {sb}.fs.add_real_directory(src, target, read_only=False)"
        )
    if call == "exec" and "setuid" in violation.reason:
        return "run a program without the setuid/setgid bits (they cannot apply under the shim)"
    if call == "exec":
        return f"put the program in the model: {sb}.fs.add_real_file(host_path, {subject!r})"
    return (
        f"model it in {sb}.fs, or inject the answer: {sb}.fail({call!r}, {subject!r}, errno.E...)"
    )


def _command_line_hint(violation: Violation) -> str:
    """What to add to a ``libcfake run`` command line."""
    call, args = violation.call, violation.arguments
    subject = violation.path if violation.path is not None else str(args[0]) if args else ""
    if call == "getaddrinfo":
        return f"add --hosts FILE with '10.0.0.1 {subject}', or --fail getaddrinfo:{subject}:again"
    if call.startswith(("connect", "bind")):
        return "add --route HOST:PORT=127.0.0.1:PORT, or --fail connect:HOST:PORT:ECONNREFUSED"
    if "read-only host" in violation.reason or call == "exec":
        return "give the program a writable tree: --fs-dir DIR, or --file VPATH=HOSTPATH"
    return f"add --file {subject}=HOSTPATH, or --fail {call}:{subject}:ERRNO"


def format_report(
    violations: list[Violation], limit: int = 50, *, sandbox_name: str = "sb",
    command_line: bool = False,
) -> str:  # fmt: skip
    """A readable table of violations, each with what to do about it: a line of Python naming
    the Sandbox ``sandbox_name``, or with ``command_line`` the options of ``libcfake run``."""
    rows = [("pid", "executable", "call", "arguments", "answer")]
    for v in violations[:limit]:
        arguments = v.shown_arguments()
        rows.append((str(v.pid), v.exe, v.symbol, arguments[:60], v.answer))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [f"libcfake: {len(violations)} call(s) that no model or rule covered:", ""]
    for index, row in enumerate(rows):
        lines.append(
            "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        )
        if index:
            violation = violations[index - 1]
            lines.append(f"      why: {violation.reason}")
            hint = _command_line_hint(violation) if command_line else _hint(violation, sandbox_name)
            lines.append(f"      {hint}")
    if len(violations) > limit:
        lines.append(f"  ... and {len(violations) - limit} more")
    return "\n".join(lines)


def format_journal(entries: list[JournalEntry]) -> str:
    """The journal, one call a line, like strace at the libc level."""
    return "\n".join(str(entry) for entry in entries)
