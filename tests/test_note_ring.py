"""The note ring: how calls answered from the metadata snapshot reach the journal.

The shim appends a note per such call to its connection's ring (a memfd both ends map); the
master takes them before that connection's next message, when it ends and when the journal is
read. These tests run a real program (tests/programs/note_ring.c) and check that no note is
lost or reordered: beyond the ring's capacity (a call whose note does not fit makes a round trip,
before which the master empties the ring), among forwarded calls, from threads, from a program
killed mid-run, and while the program still runs; that a ring the program scribbled over closes
only its connection; and, through the C code itself, that records wrap around the ring's end
intact.
"""

from __future__ import annotations

import errno
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from libcfake import ProtocolError, Sandbox, protocol
from libcfake.protocol import ffi, lib
from libcfake.ring import DATA_BYTES, NoteRing

Compile = Callable[[str], Path]
#: More stats of /d/f than one ring holds (a note of "/d/f" takes 80 bytes).
OVERFLOW = 3 * DATA_BYTES // 80


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        sandbox.fs.create_file("/d/f", contents="0123456789")
        sandbox.fs.create_file("/d/g", contents="x")
        yield sandbox


@pytest.fixture
def program(compile_c: Compile) -> str:
    return str(compile_c("note_ring"))


def calls_on(sb: Sandbox, *paths: str) -> list[tuple[str, str]]:
    """The journal's (call, path) of the given paths, in order."""
    return [(e.call, e.path) for e in sb.journal if e.path in paths]


def test_notes_beyond_the_rings_capacity_keep_their_order_among_calls(
    sb: Sandbox, program: str
) -> None:
    steps = ["stats", "/d/f", str(OVERFLOW), "stats", "/d/g", str(OVERFLOW), "open", "/d/f",
             "stats", "/d/f", "10"]  # fmt: skip
    done = sb.run([program, *steps], capture_output=True, text=True)
    assert done.stdout.splitlines() == [f"{OVERFLOW} 10", f"{OVERFLOW} 1", "ok", "10 10"]
    assert done.stderr == ""
    expected = [("stat", "/d/f")] * OVERFLOW + [("stat", "/d/g")] * OVERFLOW
    expected += [("open", "/d/f")] + [("stat", "/d/f")] * 10
    assert calls_on(sb, "/d/f", "/d/g") == expected
    # all stats but the first two (the second publishes /d) and one each time the ring was full
    stats, capacity = 2 * OVERFLOW + 10, DATA_BYTES // 80
    from_snapshot = sum(e.from_snapshot for e in sb.journal)
    assert stats - 2 - (stats // capacity + 1) <= from_snapshot < stats - 2


def test_the_notes_of_each_thread_are_all_there(sb: Sandbox, program: str) -> None:
    done = sb.run([program, "threads", "4", "/d/f", "3000"], capture_output=True, text=True)
    assert done.stdout == "12000\n", done.stderr
    per_thread: dict[int, int] = {}
    for entry in sb.journal:
        if entry.path == "/d/f":
            per_thread[entry.tid] = per_thread.get(entry.tid, 0) + 1
    assert sorted(per_thread.values()) == [3000] * 4


def test_a_killed_programs_notes_are_kept(sb: Sandbox, program: str) -> None:
    done = sb.run([program, "stats", "/d/f", "500", "kill"], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL
    assert calls_on(sb, "/d/f") == [("stat", "/d/f")] * 500


def test_the_journal_read_while_the_program_runs_has_its_notes(sb: Sandbox, program: str) -> None:
    proc = sb.popen([program, "stats", "/d/f", "300", "wait", "stats", "/d/f", "5"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline() == "300 10\n"
    assert len(calls_on(sb, "/d/f")) == 300  # still in the program's ring: taken for the read
    proc.stdin.write("\n")
    proc.stdin.close()
    assert proc.stdout.read() == "5 10\n"
    assert proc.wait() == 0
    proc.stdout.close()
    assert len(calls_on(sb, "/d/f")) == 305


def test_a_garbled_ring_closes_only_its_connection(sb: Sandbox, program: str) -> None:
    done = sb.run([program, "stats", "/d/f", "10", "garble", "open", "/d/f"],
                  capture_output=True, text=True)  # fmt: skip
    assert done.stdout.splitlines() == ["10 10", "1", "EIO"]
    assert "the master closed the connection" in done.stderr
    (error,) = sb.protocol_errors
    assert "note ring is garbled" in error and "its connection was closed" in error
    again = sb.run([program, "stats", "/d/f", "10", "open", "/d/f"], capture_output=True, text=True)
    assert again.stdout.splitlines() == ["10 10", "ok"] and again.stderr == ""


def _note(
    path: bytes,
    function: int = lib.LCF_STAT,
    *,
    result: int = 0,
    text: bytes = b"",
    error: int = 0,
) -> bytes:
    note = ffi.new("struct lcf_note *")
    note.header.magic = protocol.MAGIC
    note.header.version = protocol.VERSION
    note.header.kind = lib.LCF_NOTE
    note.header.length = ffi.sizeof("struct lcf_note") + len(path) + len(text)
    note.function = function
    note.symbol = b"stat"
    note.result = result
    note.error = error
    note.mode = 0o100644
    note.length = len(path)
    return bytes(ffi.buffer(note)) + path + text


def _append(ring: NoteRing, head: list[int], record: bytes) -> bool:
    """lcf_ring_append, as the shim calls it, of one record in two pieces."""
    pieces = ffi.new("struct lcf_piece[2]")
    first, rest = record[:40], record[40:]
    keep = [ffi.from_buffer(first), ffi.from_buffer(rest)]
    for piece, part, data in zip(pieces, (first, rest), keep, strict=True):
        piece.bytes, piece.length = data, len(part)
    counter = ffi.new("uint64_t *", head[0])
    done = lib.lcf_ring_append(ring._base, ring.size - 64, counter, pieces, 2)
    head[0] = counter[0]
    return bool(done)


def test_records_wrap_around_the_rings_end_intact() -> None:
    ring = NoteRing(data_bytes=1024)
    try:
        head, sent, got = [0], [], []
        for i in range(400):  # paths of 1 to 100 bytes: records of 80 to 176 bytes, any offset
            path = b"/" + bytes(97 + i % 26 for _ in range(i % 100))
            while not _append(ring, head, _note(path)):  # full: the master takes, then room
                notes = ring.take()
                assert notes is not None
                got += [note.path for note in notes]
            sent.append(path.decode())
        last = ring.take()
        got += [note.path for note in last] if last is not None else []
        assert got == sent
        assert ring.take() is None
    finally:
        ring.close()


def test_note_records_are_checked_as_strictly_as_note_messages() -> None:
    good = _note(b"/d/f") + bytes(4)  # padded to 8
    readlink = _note(b"/d/l", lib.LCF_READLINK, result=1, text=b"f") + bytes(3)
    missing = _note(b"/d/x", lib.LCF_OPEN, result=-1, error=errno.ENOENT) + bytes(4)
    notes = protocol.Notes(good + readlink + missing)
    assert len(notes) == 3
    assert [(n.function, n.path, n.target, n.result, n.error) for n in notes] == [
        ("stat", "/d/f", None, 0, 0),
        ("readlink", "/d/l", "f", 1, 0),
        ("open", "/d/x", None, -1, errno.ENOENT),
    ]
    bad = {
        "a call no snapshot answers": _note(b"/d/f", lib.LCF_MKDIR) + bytes(4),
        "a failure but ENOENT": _note(b"/d/f", result=-1, error=errno.EACCES) + bytes(4),
        "an errno without a failure": _note(b"/d/f", error=errno.ENOENT) + bytes(4),
        "a result a stat does not give": _note(b"/d/f", result=3) + bytes(4),
        "a result below -1": _note(b"/d/f", result=-2, error=errno.ENOENT) + bytes(4),
        "a relative path": _note(b"d/f"),
        "no path": _note(b""),
        "a target longer than the record": _note(b"/d/l", lib.LCF_READLINK, result=9, text=b"f"),
        "a record cut short": _note(b"/d/f")[:-1],
        "a header alone": _note(b"/d/f")[:16],
        "a record without its padding": _note(b"/d/f"),
    }
    for case, data in bad.items():
        for records in (data, good + data):  # alone, and after a valid one
            with pytest.raises(ProtocolError, match="note"):
                protocol.Notes(records)
                pytest.fail(case)
