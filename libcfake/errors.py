"""The exceptions libcfake raises, each saying what went wrong in words a test author can act on
(and :class:`~libcfake.journal.ViolationError`, beside the violations it reports)."""

from __future__ import annotations


class LibcfakeError(Exception):
    """Base class of every libcfake error."""


class ShimNotBuiltError(LibcfakeError):
    """The preload shim was not found next to the package: the install did not build it."""


class ProtocolError(LibcfakeError):
    """A program sent a message the master cannot read (wrong magic, version, size or content).

    The master closes that program's connection (its call fails with EIO) and keeps serving
    every other process.
    """
