"""The filesystem model's stat replies are packed without a StatResult; they must be the bytes a
StatResult with the same values encodes to."""

from __future__ import annotations

import os
import stat
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libcfake import StatResult, protocol
from libcfake.fs import FileSystem

U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**63 - 1)
TIMES = st.one_of(st.integers(0, 2**40), st.floats(0, 2**40, allow_nan=False))
KINDS = st.sampled_from([stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK, stat.S_IFIFO, stat.S_IFSOCK])


@given(KINDS, st.integers(0, 0o7777), U64, U64, U64, U64, U32, U32, TIMES, TIMES, TIMES)
def test_pack_stat_is_what_a_stat_result_encodes_to(
    kind: int, bits: int, size: int, dev: int, ino: int, nlink: int, uid: int, gid: int,
    atime: float, mtime: float, ctime: float,
) -> None:  # fmt: skip
    packed = protocol.pack_stat(kind | bits, size, dev, ino, nlink, uid, gid, atime, mtime, ctime)
    table = StatResult(
        type=packed.type, mode=bits, size=size, dev=dev, ino=ino, nlink=nlink, uid=uid, gid=gid,
        atime=atime, mtime=mtime, ctime=ctime,
    )  # fmt: skip
    assert (packed.type, packed.mode, packed.size) == (table.type, table.mode, table.size)
    assert protocol.encode_reply(7, protocol.ANSWER, stat=packed) == protocol.encode_reply(
        7, protocol.ANSWER, stat=table
    )


def test_the_model_packs_what_stat_of_gives() -> None:
    fs = FileSystem(mounts=())
    fs.create_file("/d/plain.txt", contents="twelve bytes", uid=5, gid=6)
    fs.create_file("/d/opened.txt", contents="in a memfd")
    fs.create_symlink("/d/link", "plain.txt")
    opened = fs.resolve("/d/opened.txt")
    os.write(fs.memfd(opened), b"longer now")  # contents, size and times: the memfd's
    try:
        for path in ("/", "/d", "/d/plain.txt", "/d/opened.txt", "/d/link"):
            obj = fs.resolve(path, follow=False)
            expected = _fields(protocol.encode_reply(1, protocol.ANSWER, stat=fs.stat_of(obj)))
            packed = _fields(protocol.encode_reply(1, protocol.ANSWER, stat=fs.packed_stat(obj)))
            assert packed[:-6] == expected[:-6]
            # the times: packed to the nanosecond, stat_of's StatResult in float seconds
            got = [packed[i] * 10**9 + packed[i + 1] for i in range(-6, 0, 2)]
            assert all(
                abs(g - (expected[i] * 10**9 + expected[i + 1])) < 1000
                for g, i in zip(got, range(-6, 0, 2), strict=True)
            )
    finally:
        fs.close()


def test_a_value_out_of_range_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="out of range"):
        protocol.pack_stat(stat.S_IFREG | 0o644, 1, 1, 1, 1, 2**32, 0, 0, 0, 0)  # uid: 32 bits


def _fields(reply: bytes) -> tuple[int, ...]:
    """The struct lcf_stat of a stat reply, field by field (the six times last)."""
    payload = protocol.decode_reply(reply)["payload"]
    return struct.unpack("=QQQIIIIQqqq6q", payload)
