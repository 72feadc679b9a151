"""The exceptions libcfake raises, each saying what went wrong in words a test author can act on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .journal import Violation


class LibcfakeError(Exception):
    """Base class of every libcfake error."""


class ShimNotBuiltError(LibcfakeError):
    """The preload shim was not found next to the package: the install did not build it."""


class ViolationError(LibcfakeError, AssertionError):
    """Programs made calls that no model or rule covered (raised by a strict Sandbox, and by
    ``Sandbox.check()``). The message is the report: each call, its answer, why, and a hint."""

    def __init__(self, report: str, violations: Sequence[Violation]) -> None:
        super().__init__(report)
        self.violations = list(violations)


class ProtocolError(LibcfakeError):
    """A program sent a message the master cannot read (wrong magic, version, size or content).

    The master closes that program's connection (its call fails with EIO) and keeps serving
    every other process.
    """
