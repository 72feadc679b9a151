"""What the Sandbox answers a call with, in one place: the outcome types every answer returns,
how the journal shows each, and how each is sent to the program.

An answer (a filesystem, network or name answer, a host route, a fault rule) returns one of:

- an int (0, a count), a stat table (:class:`~libcfake.protocol.PackedStat`), a text (a path,
  a host name, a getaddrinfo error name), a DNS message (bytes) or an
  :class:`~libcfake.dns.Answer` (getaddrinfo's addresses): sent as they are;
- :data:`PASSTHROUGH`: the program makes the real call itself (a host file under a mount);
- :class:`Descriptor`: the program gets this descriptor (an open, a chdir, a connected socket);
- an :class:`OSError`: the call fails with its errno, a right answer (ENOENT for a missing file);

or raises :class:`Refused`: a call nothing covers, answered with an error and reported as a
violation, with the reason a test author reads.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from typing import Any, Protocol

from .calls import Call
from .dns import Answer
from .gai import GAI_ERRORS
from .journal import describe_error
from .protocol import PackedStat
from .stat import FsStats


class _Passthrough:
    """Answer: let the program make the real call."""

    def __repr__(self) -> str:
        return "PASSTHROUGH"


PASSTHROUGH = _Passthrough()


class Descriptor:
    """Answer: this descriptor (the master's; closed after sending) is what the program gets.
    ``watch``: for an open, the ``protocol.WATCH_*`` data calls the shim asks about."""

    __slots__ = ("fd", "watch")

    def __init__(self, fd: int, watch: int = 0) -> None:
        self.fd = fd
        self.watch = watch


class Refused(Exception):
    """A call no model covers: answered with ``error`` (an errno, or a getaddrinfo error name)
    and recorded as a violation that says ``reason``."""

    def __init__(self, error: int | str, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason


def describe(outcome: Any) -> tuple[str, int]:
    """How the journal shows an outcome, and its errno."""
    if isinstance(outcome, PackedStat):  # the most common, first
        return f"stat {outcome.type} {outcome.mode:o} {outcome.size}", 0
    if outcome is PASSTHROUGH:
        return "passthrough", 0
    if isinstance(outcome, bytes):  # a res_query answer, an attribute's value, its names
        return f"{len(outcome)} bytes", 0
    if isinstance(outcome, str):  # a getaddrinfo error name, or getnameinfo's host name
        return (f"EAI {outcome}" if outcome in GAI_ERRORS else outcome), 0
    if isinstance(outcome, OSError):
        code = outcome.errno or errno.EIO
        return describe_error(code), code
    if isinstance(outcome, Descriptor):
        return "fd", 0
    if isinstance(outcome, Answer):
        return " ".join(sorted({str(entry[0]) for entry in outcome.entries})), 0
    if isinstance(outcome, FsStats):
        return f"statfs {outcome.bfree * outcome.bsize} bytes free", 0
    return str(outcome), 0


class Served(Protocol):
    """A call to answer: a :class:`~libcfake.LibcService` serving one, a trapped call of the
    seccomp supervisor (:class:`~libcfake._supervisor.TrappedCall`), or either one set aside
    (their ``Deferred``)."""

    def send(
        self, result: Any, errno: int | OSError = 0, *, canonical_name: str | None = None
    ) -> bool: ...

    def send_with_fds(
        self, result: Any, fds: Sequence[int | Any], errno: int | OSError = 0, *, watch: int = 0
    ) -> bool: ...

    def use_slave_credentials(self) -> bool: ...


class Serving(Served, Protocol):
    """A call being served, as the Sandbox's pipeline sees it, whichever backend brought it."""

    @property
    def call(self) -> Call: ...

    def descriptors(self) -> list[int]: ...

    def defer(self) -> Served: ...


def deliver(svc: Served, outcome: Any) -> None:
    """Send the outcome of the call being served (or set aside) to the program."""
    kind = type(outcome)
    if kind is int or kind is PackedStat:  # the most common, first
        svc.send(outcome)
    elif outcome is PASSTHROUGH:
        svc.use_slave_credentials()
    elif isinstance(outcome, OSError):
        svc.send(-1, outcome.errno or errno.EIO)
    elif isinstance(outcome, Descriptor):
        try:
            svc.send_with_fds(0, [outcome.fd], watch=outcome.watch)
        finally:
            os.close(outcome.fd)
    elif isinstance(outcome, Answer):
        svc.send(outcome.entries, canonical_name=outcome.canonical_name)
    else:  # an int, a stat table, a path, or a getaddrinfo error name
        svc.send(outcome)
