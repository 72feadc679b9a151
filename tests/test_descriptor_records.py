"""fstat of a model file's descriptor answered in the shim from the snapshot (issue 20).

A program that opens a model file holds a memfd; the master publishes the memfd's record
(``LCF_SNAPSHOT_DESCRIPTOR``, shim/libcfake_wire.h) and the shim answers fstat from it and
from the memfd's own size and times, with a note for the journal. These tests check that the
answer is the one the master gives (the model's values after the run), and that every change to
the file, by a program (by path or descriptor, this one or another) or by the test, and every
fault rule, is seen at once: the next fstat goes to the master again.
"""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from libcfake import Sandbox, _hybrid

from .conftest import build_static, hybrid_sandbox, program_steps

Compile = Callable[[str], Path]
BACKENDS = ["preload"] + (["hybrid"] if _hybrid.unavailable() is None else [])


@pytest.fixture(params=BACKENDS)
def sb(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    with Sandbox(backend=request.param) as sandbox:
        sandbox.fs.create_file("/d/f", contents="0123456789")
        yield sandbox


@pytest.fixture
def steps(compile_c: Compile, sb: Sandbox) -> Callable[..., list[str]]:
    """Run tests/programs/snapshot.c with the given steps; its output lines."""
    return program_steps(sb, compile_c("snapshot"))


def fstats(sb: Sandbox, path: str = "/d/f") -> list[bool]:
    """Whether each journaled fstat of ``path`` was answered from the snapshot."""
    return [e.from_snapshot for e in sb.journal if e.call == "fstat" and e.path == path]


def test_an_opened_files_fstat_is_the_models_answered_in_the_shim(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    lines = steps("open", "/d/f", "r", "ffull", "fxfull", "full", "/d/f")
    assert lines[1] == lines[2] == lines[3] == steps("full", "/d/f")[0]
    assert fstats(sb) == [True, True]  # fstat and statx: both with a note for the journal
    entry = next(e for e in sb.journal if e.call == "fstat")
    assert entry.answer == "stat regular 644 10" and entry.arguments == ()


def test_a_written_files_size_and_times_are_its_memfds_answered_in_the_shim(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    lines = steps("create", "/d/g", "open", "/d/g", "w", "ffull", "write", "5", "ffull",
                  "open", "/d/f", "a", "write", "3", "ffull")  # fmt: skip
    assert lines[0:2] == ["ok", "ok"] and lines[2].startswith("100644 0 1 ")
    assert lines[3] == "ok" and lines[5:7] == ["ok", "ok"]
    # size, mtime and ctime moved: as the master answers a stat of each after the run
    assert [lines[4], lines[7]] == steps("full", "/d/g", "full", "/d/f")
    assert fstats(sb, "/d/g") == [True, True] and fstats(sb, "/d/f") == [True]


@pytest.mark.parametrize(
    "change",
    [
        ["chmod", "/d/f", "600"],
        ["fchmod", "600"],
        ["link", "/d/f", "/d/g"],
        ["rename", "/d/f", "/d/g"],
        ["unlink", "/d/f"],
    ],
    ids=lambda change: change[0],
)
def test_a_change_the_program_makes_is_seen_by_its_next_fstat(
    sb: Sandbox, steps: Callable[..., list[str]], change: list[str]
) -> None:
    lines = steps("open", "/d/f", "r", "ffull", *change, "ffull")
    assert lines[2] == "ok"
    before, after = lines[1].split(), lines[3].split()
    nlink = {"link": "2", "unlink": "0"}.get(change[0], "1")
    mode = "100600" if "chmod" in change[0] else "100644"
    assert after[:3] == [mode, "10", nlink]
    assert after[5] > before[5]  # each changes the inode's ctime, as Linux's filesystems do
    answered = [e.from_snapshot for e in sb.journal if e.call == "fstat"]
    assert answered == [True, False]  # the change withdrew the record: the master's answer


def test_a_renamed_directory_and_a_second_name_keep_the_answers_right(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    # a directory's rename empties the snapshot; a record published through the file's second
    # name goes with a change made through its first
    lines = steps("open", "/d/f", "r", "ffull", "rename", "/d", "/e", "ffull",
                  "link", "/e/f", "/e/h", "open", "/e/h", "r", "ffull",
                  "chmod", "/e/f", "600", "ffull")  # fmt: skip
    assert lines[1] == lines[3] and lines[1].startswith("100644 10 1 ")
    assert lines[6].startswith("100644 10 2 ") and lines[8].startswith("100600 10 2 ")
    answered = [e.from_snapshot for e in sb.journal if e.call == "fstat"]
    assert answered == [True, False, True, False]


def test_a_change_by_another_program_or_the_test_is_seen_by_a_program_holding_the_file(
    sb: Sandbox, compile_c: Compile
) -> None:
    program = str(compile_c("snapshot"))
    holder = sb.popen([program, "open", "/d/f", "r", "ffull", "wait", "ffull", "wait", "ffull"],
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdin is not None and holder.stdout is not None
    assert holder.stdout.readline() == "ok\n"
    first = holder.stdout.readline().split()
    other = sb.run([program, "chmod", "/d/f", "600"], capture_output=True, text=True)
    assert other.stdout == "ok\n"
    holder.stdin.write("go\n")
    holder.stdin.flush()
    second = holder.stdout.readline().split()
    sb.fs.setxattr("/d/f", "user.x", b"1")  # the test's own change: heard of at once
    holder.stdin.write("go\n")
    holder.stdin.flush()
    third = holder.stdout.readline().split()
    assert holder.wait(timeout=60) == 0
    assert (first[0], second[0], third[0]) == ("100644", "100600", "100600")
    assert first[5] < second[5] < third[5]  # chmod and setxattr: new ctimes
    assert fstats(sb) == [True, False, False]


def test_a_fault_rule_on_fstat_sees_every_fstat_even_one_added_while_the_file_is_open(
    sb: Sandbox, compile_c: Compile
) -> None:
    program = str(compile_c("snapshot"))
    holder = sb.popen([program, "open", "/d/f", "r", "ffull", "wait", "ffull", "fxfull"],
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdin is not None
    assert holder.stdout is not None
    assert holder.stdout.readline() == "ok\n"
    assert holder.stdout.readline().startswith("100644 10 ")
    sb.fail("fstat", "/d/f", errno.EIO)
    out, _ = holder.communicate("go\n", timeout=60)
    assert out.splitlines() == ["EIO", "EIO"]
    assert fstats(sb) == [True, False, False]


def test_no_record_is_published_while_a_fault_rule_covers_fstat(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    sb.fail("fstat", "/d/elsewhere", errno.EIO)
    lines = steps("open", "/d/f", "r", "ffull", "ffull")
    assert lines[1] == lines[2] == steps("full", "/d/f")[0]
    assert fstats(sb) == [False, False]


def test_cp_r_fstats_both_ends_of_each_copy_in_the_shim(sb: Sandbox) -> None:
    for i in range(20):
        sb.fs.create_file(f"/src/f{i}", contents="x" * i, st_mode=0o100600 + (i % 2) * 0o40)
    done = sb.run(["cp", "-r", "/src", "/dst"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for i in range(20):
        assert sb.fs.read_text(f"/dst/f{i}") == "x" * i
        assert sb.fs.stat(f"/dst/f{i}").mode == 0o600 + (i % 2) * 0o40
    shim = [e for e in sb.journal if e.call == "fstat" and e.from_snapshot]
    assert len(shim) >= 40, [(e.path, e.from_snapshot) for e in sb.journal if e.call == "fstat"]


def test_a_file_written_after_its_last_name_is_gone_keeps_the_models_stat(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    # mkstemp, unlink, write: fstat is the model's file (mode, nlink 0) at the memfd's size
    lines = steps("create", "/d/t", "open", "/d/t", "w", "unlink", "/d/t", "write", "7", "ffull",
                  "fxfull", "full", "/d/t")  # fmt: skip
    assert lines[:4] == ["ok", "ok", "ok", "ok"]
    assert lines[4].startswith("100644 7 0 ") and lines[5] == lines[4]
    assert lines[6] == "ENOENT"


# -- under the hybrid backend, a stat made inside libc or by a static program -----------------


@pytest.fixture
def hybrid() -> Iterator[Sandbox]:
    with hybrid_sandbox() as sandbox:
        sandbox.fs.create_file("/d/f", contents="0123456789")
        yield sandbox


def test_a_static_programs_fstat_is_answered_from_the_record_by_the_supervisor(
    hybrid: Sandbox, compile_c: Compile, tmp_path: Path
) -> None:
    # no shim: each fstat traps, and the supervisor's fast path answers it from the record,
    # with a note for the journal, as the shim answers a dynamic program's
    static = str(build_static("snapshot", tmp_path))
    dynamic = str(compile_c("snapshot"))
    args = ["open", "/d/f", "r", "ffull", "fxfull", "write", "1", "open", "/d/f", "a", "write",
            "4", "ffull", "fxfull"]  # fmt: skip
    lines = hybrid.run([static, *args], capture_output=True, text=True).stdout.splitlines()
    assert lines[0] == "ok" and lines[1] == lines[2] and lines[1].startswith("100644 10 1 ")
    assert lines[3:6] == ["EBADF", "ok", "ok"] and lines[6] == lines[7]
    assert lines[6].startswith("100644 14 1 ")  # the memfd's new size and times
    again = hybrid.run([dynamic, "full", "/d/f"], capture_output=True, text=True).stdout
    assert again == lines[6] + "\n"  # what the master says after the run
    entries = [(e.symbol, e.from_snapshot) for e in hybrid.journal
               if e.call == "fstat" and e.path == "/d/f"]  # fmt: skip
    assert entries == [("newfstatat", True), ("statx", True)] * 2


def test_stdio_fstat_inside_libc_is_answered_from_the_record_and_journaled(
    hybrid: Sandbox,
) -> None:
    # glibc's stdio stats the descriptor it reads from inside libc, where the shim cannot see
    hybrid.fs.create_file("/d/g", contents="line\n" * 3)
    done = hybrid.run(["sed", "-n", "$=", "/d/f", "/d/g"], capture_output=True, text=True)
    assert done.stdout == "4\n", done.stderr
    noted = [(e.path, e.symbol, e.from_snapshot) for e in hybrid.journal if e.call == "fstat"]
    assert noted == [("/d/f", "newfstatat", True), ("/d/g", "newfstatat", True)]


def test_a_fault_rule_on_fstat_sees_a_static_programs_fstat(
    hybrid: Sandbox, tmp_path: Path
) -> None:
    static = str(build_static("snapshot", tmp_path))
    hybrid.fail("fstat", "/d/f", errno.EIO)
    done = hybrid.run([static, "open", "/d/f", "r", "ffull", "fxfull"], capture_output=True,
                      text=True)  # fmt: skip
    assert done.stdout.splitlines() == ["ok", "EIO", "EIO"]
