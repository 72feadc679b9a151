"""The metadata snapshot's writer: answers the shim may give without asking the master.

A :class:`Snapshot` is a memfd the master fills and every program behind it maps read-only. It
maps virtual paths to what lstat says of them, and symlinks to their targets; the shim answers
stat, lstat, access(F_OK) and readlink of a published entry (and fstat of a listed directory,
opening a directory marked listed, and ENOENT for a name a directory marked complete lacks: see
:meth:`Snapshot.mark`) itself and tells the master in a note, so the journal still sees every
call. The layout and the writer's C code are the shim's own (``shim/libcfake_wire.h``,
``shim/snapshot.c``), reached through cffi.

Programs are outside the trust boundary. They get :attr:`Snapshot.reader_fd` with the welcome: a
read-only descriptor of a memfd sealed against writes and resizing, so a program can neither make
its mapping writable, nor write, shrink or grow the file (reopened through /proc too). The writer
keeps the layout and its counts in the master's own memory (``struct lcf_snapshot_writer``)
besides, and checks every offset it reads back from the shared table.

Whoever publishes keeps the snapshot exact: an entry may be published only while nothing can
change it unseen, and it must be withdrawn (:meth:`Snapshot.withdraw`, or all of them with
:meth:`Snapshot.clear`) before a change to it becomes visible. A missing entry is always safe: the
call then goes to the master.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct

from ._wire import ffi, lib

#: Flags of a directory's entry (see :meth:`Snapshot.mark`).
LISTED: int = lib.LCF_SNAPSHOT_LISTED
COMPLETE: int = lib.LCF_SNAPSHOT_COMPLETE
#: The flag of a descriptor's record (see :func:`descriptor_key`).
DESCRIPTOR: int = lib.LCF_SNAPSHOT_DESCRIPTOR
#: Once laid out, the memfd may not change size, and only the master's own mapping (made before
#: the seal) can write it: F_SEAL_FUTURE_WRITE, Linux 5.1.
_SEALS = (
    fcntl.F_SEAL_SHRINK
    | fcntl.F_SEAL_GROW
    | getattr(fcntl, "F_SEAL_FUTURE_WRITE", 0x10)
    | fcntl.F_SEAL_SEAL
)
#: Slots of the hash table (at most half are filled) and bytes of the whole memfd; the memfd is
#: sparse, so only what is written costs memory.
SLOTS = 1 << 16
BYTES = 32 << 20

#: A ``struct lcf_snapshot_record`` (shim/snapshot.h), in the order of its ``_FIELDS``: what
#: :meth:`Snapshot.put_many` takes, one after another, each followed by its path's bytes and a
#: symlink's target's. The times are nanoseconds; the C writer makes them into seconds and
#: nanoseconds as the master's stat answers do.
RECORD = struct.Struct("=QQQIIIiQqqqqqqII")
_FIELDS = [
    "dev", "ino", "nlink", "mode", "uid", "gid", "target_length", "rdev", "size", "blksize",
    "blocks", "atime_ns", "mtime_ns", "ctime_ns", "path_length", "flags",
]  # fmt: skip
if (
    RECORD.size != ffi.sizeof("struct lcf_snapshot_record")
    or [name for name, _ in ffi.typeof("struct lcf_snapshot_record").fields] != _FIELDS
):
    raise ImportError(
        "struct lcf_snapshot_record in shim/snapshot.h and libcfake/snapshot.py disagree: "
        "update both together"
    )


def descriptor_key(dev: int, ino: int) -> bytes:
    """The key of the record that answers fstat of the memfd of st_dev ``dev``, st_ino ``ino``:
    no path a call names has this form (``LCF_SNAPSHOT_DESCRIPTOR`` in shim/libcfake_wire.h)."""
    return b"//memfd/%x/%x" % (dev, ino)


class Snapshot:
    """A shared, versioned table of virtual paths' metadata (see the module's text)."""

    def __init__(self, root: str, *, slots: int = SLOTS, size: int = BYTES) -> None:
        root_bytes = os.fsencode(root)
        self.size = size
        self.fd = os.memfd_create("libcfake-snapshot", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        self.reader_fd = -1
        try:
            os.ftruncate(self.fd, size)
            self._map = mmap.mmap(self.fd, size)
        except OSError:
            os.close(self.fd)
            raise
        self._base = ffi.from_buffer(self._map)
        self._writer = ffi.new("struct lcf_snapshot_writer *")
        if lib.lcf_snapshot_init(self._writer, self._base, size, slots, root_bytes,
                                 len(root_bytes)) != 0:  # fmt: skip
            self.close()
            raise ValueError(f"a snapshot of {slots} slots does not fit in {size} bytes")
        try:
            fcntl.fcntl(self.fd, fcntl.F_ADD_SEALS, _SEALS)
            self.reader_fd = os.open(f"/proc/self/fd/{self.fd}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.close()
            raise
        self.published = 0  # entries put in this epoch
        self.root = root  # the real directory whose tree the paths stand for (the shadows')
        self._crowded = False
        # (kept: put_many runs for every file a program opens)
        self._published_out = ffi.new("uint32_t *")
        self._most_live = self._writer.slot_count * 3 // 8
        self._most_pool = self._writer.pool_bytes * 3 // 4

    def clear(self) -> None:
        """Empty the snapshot: from now on the shim asks the master again."""
        if self.published:
            lib.lcf_snapshot_clear(self._writer)
            self.published = 0
            self._count_room()

    def put(self, path: str, stat: bytes, target: str | None = None) -> bool:
        """Publish ``stat`` (a ``struct lcf_stat``, as ``protocol.encode_stat`` packs it) for the
        virtual ``path``, with a symlink's ``target``. False when the snapshot is full."""
        encoded = os.fsencode(path)
        link = os.fsencode(target) if target is not None else b""
        done = lib.lcf_snapshot_put(
            self._writer,
            encoded,
            len(encoded),
            ffi.from_buffer("struct lcf_stat *", stat),
            link,
            len(link) if target is not None else -1,
        )
        self.published += done == 1
        self._count_room()
        return bool(done >= 0)

    def put_many(self, records: bytes) -> bool:
        """Publish ``records`` (bytes: each a :data:`RECORD` followed by its path and a
        symlink's target), as many as fit; one call for a whole directory. False when the
        snapshot is full."""
        published = self._published_out
        done = lib.lcf_snapshot_put_many(self._writer, records, len(records), published)
        self.published += published[0]  # also when a broken record ends the batch: clear() counts
        self._count_room()
        if done == -2:
            raise ValueError("not a sequence of snapshot records")
        return bool(done == 0)

    @property
    def crowded(self) -> bool:
        """Whether most of the room of this epoch is taken (withdrawn entries keep theirs until
        the snapshot is emptied): time to empty it rather than withdraw one more entry. (Kept
        up to date by every call that takes room, as every change a program makes asks.)"""
        return self._crowded

    def _count_room(self) -> None:
        writer = self._writer
        self._crowded = writer.live >= self._most_live or writer.pool_used >= self._most_pool

    def withdraw(self, path: str) -> bool:
        """Take one entry back (the others stay): from now on the shim asks the master about
        ``path``. False when it is not published."""
        encoded = os.fsencode(path)
        return bool(lib.lcf_snapshot_withdraw(self._writer, encoded, len(encoded)))  # (no room)

    def withdraw_key(self, key: bytes) -> bool:
        """:meth:`withdraw` of an entry by its key's bytes (a descriptor's record's)."""
        return bool(lib.lcf_snapshot_withdraw(self._writer, key, len(key)))

    def mark(self, directory: str, flags: int) -> bool:
        """Add flags to a published directory's entry: :data:`LISTED` (its shadow directory lists
        exactly its entries, so the shim may open it for a program) or :data:`COMPLETE` (every
        entry is published, so the shim answers ENOENT for a name it lacks). False when
        ``directory`` is not published."""
        encoded = os.fsencode(directory)
        return bool(lib.lcf_snapshot_mark(self._writer, encoded, len(encoded), flags))

    def unmark(self, directory: str, flags: int) -> bool:
        """Take flags off a published directory's entry (see :meth:`mark`). False when
        ``directory`` is not published."""
        encoded = os.fsencode(directory)
        return bool(lib.lcf_snapshot_unmark(self._writer, encoded, len(encoded), flags))

    def close(self) -> None:
        ffi.release(self._base)
        self._map.close()
        os.close(self.fd)
        if self.reader_fd >= 0:
            os.close(self.reader_fd)
            self.reader_fd = -1
