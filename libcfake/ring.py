"""The master's end of a connection's note ring: the notes a program's shim appends there.

When a Sandbox shares a metadata snapshot, the shim answers stat-like calls of published entries
itself and tells the master in a note. Sending each note as a message would cost the master a
wake-up, a receive and a decode per note, on the program's critical path; instead each
connection gets a :class:`NoteRing` (a memfd sent with its welcome, mapped by both ends) that the
shim appends to, and the master takes everything appended in one copy before it reads that
connection's next message, when the connection ends and when the journal is read. The layout
and the C code are the shim's own (``shim/libcfake_wire.h``, ``shim/ring.c``), reached through
cffi; the master trusts nothing a program could have written there.
"""

from __future__ import annotations

import fcntl
import mmap
import os

from ._wire import ffi, lib
from .errors import ProtocolError
from .protocol import Notes

#: Bytes of records per ring: about a thousand notes (a note is 72 bytes and its path). The memfd
#: is sparse, so only what the ring goes through costs memory.
DATA_BYTES = 1 << 17
_HEADER_BYTES = ffi.sizeof("struct lcf_ring")
_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL


class NoteRing:
    """One connection's ring, empty; its memfd (``fd``) goes with the welcome, then
    :meth:`close_fd` (the mapping stays)."""

    def __init__(self, data_bytes: int = DATA_BYTES) -> None:
        self.size = _HEADER_BYTES + data_bytes
        self.fd = os.memfd_create("libcfake-notes", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(self.fd, self.size)
            # the program writes the ring, but may not shrink it under the master's mapping
            # (the master's next read would die of SIGBUS)
            fcntl.fcntl(self.fd, fcntl.F_ADD_SEALS, _SEALS)
            self._map = mmap.mmap(self.fd, self.size)
        except OSError:
            os.close(self.fd)
            raise
        self._base = ffi.from_buffer(self._map)
        if lib.lcf_ring_init(self._base, self.size) != 0:
            self.close()
            raise ValueError(f"a note ring needs a power of two of data bytes, not {data_bytes}")
        self._data_bytes = data_bytes
        self._taken = 0  # our own count: the ring's tail is writable by the program

    def take(self) -> Notes | None:
        """The notes appended since the last take (None if there are none), checked."""
        pending = lib.lcf_ring_pending(self._base, self._data_bytes, self._taken)
        if pending == 0:
            return None
        if pending < 0:
            raise ProtocolError("its note ring is garbled (an impossible count of bytes)")
        records = bytearray(pending)
        lib.lcf_ring_take(self._base, self._data_bytes, self._taken, ffi.from_buffer(records),
                          pending)  # fmt: skip
        self._taken += pending
        return Notes(bytes(records))

    def close_fd(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def close(self) -> None:
        ffi.release(self._base)
        self._map.close()
        self.close_fd()
