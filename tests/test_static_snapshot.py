"""A static program's stat-like calls answered from the metadata snapshot by the supervisor.

No shim runs in a static program: under the hybrid backend its stat, lstat, statx,
access(F_OK) of a model path and its open of a listed directory trap, and the supervisor's fast
path (shim/launcher/fastpath.c) answers them from the snapshot as the shim answers a dynamic
program's (shim/snapshot_answers.c), telling the journal in a note. The same program, built
both ways, must get the same answers and leave the same journal; fault rules and permissions
must still decide.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from libcfake import Sandbox

from .conftest import as_nobody, build_static, hybrid_sandbox

Compile = Callable[[str], Path]


@pytest.fixture(scope="module")
def programs(compile_c: Compile) -> Iterator[tuple[str, str]]:
    """tests/programs/snapshot.c, dynamic and static, in a directory everyone may read."""
    directory = Path(tempfile.mkdtemp(prefix="libcfake-static-snapshot-"))
    directory.chmod(0o755)
    try:
        dynamic = directory / "snapshot-dynamic"
        shutil.copy(compile_c("snapshot"), dynamic)
        yield str(dynamic), str(build_static("snapshot", directory))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with hybrid_sandbox() as sandbox:
        sandbox.fs.create_file("/d/f", contents="0123456789")
        sandbox.fs.create_symlink("/d/link", "f")
        sandbox.fs.create_dir("/d/sub")
        yield sandbox


STEPS = ["list", "/d", "stat", "/d/f", "lstat", "/d/link", "stat", "/d/link", "access", "/d/f",
         "stat", "/d/nope", "access", "/d/nope", "lstat", "/d/sub", "full", "/d/f"]  # fmt: skip


def run(sb: Sandbox, program: str, *args: str) -> tuple[list[str], list[tuple[object, ...]]]:
    """The program's output lines and its journal entries of /d's stat-like calls."""
    before = len(sb.journal)
    done = sb.run([program, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    entries = [(e.call, e.path, e.answer, e.from_snapshot) for e in sb.journal[before:]
               if e.path is not None and e.path.startswith("/d")
               and e.call in ("stat", "lstat", "access")]  # fmt: skip
    return done.stdout.splitlines(), entries


def test_a_static_program_gets_the_answers_and_the_journal_a_dynamic_one_gets(
    sb: Sandbox, programs: tuple[str, str]
) -> None:
    dynamic, static = programs
    run(sb, dynamic, *STEPS)  # (publishes /d)
    lines, entries = run(sb, dynamic, *STEPS)
    static_lines, static_entries = run(sb, static, *STEPS)
    assert static_lines == lines
    assert lines[:8] == ["5", "100644 10", "120777 1", "100644 10", "ok", "ENOENT", "ENOENT",
                         "40755 4096"]  # fmt: skip
    assert static_entries == entries
    answered = [(call, path, from_snapshot) for call, path, _, from_snapshot in entries]
    assert answered[:7] == [
        ("stat", "/d/f", True), ("lstat", "/d/link", True),
        ("stat", "/d/link", False),  # a symlink to follow: the master's
        ("access", "/d/f", True), ("stat", "/d/nope", True), ("access", "/d/nope", True),
        ("lstat", "/d/sub", True),
    ]  # fmt: skip
    opens = [(e.call, e.from_snapshot) for e in sb.journal if e.exe == static and e.path == "/d"]
    assert opens == [("openat", True)]  # a listed directory: its shadow, opened for it


def test_a_static_programs_calls_reach_a_fault_rule(sb: Sandbox, programs: tuple[str, str]) -> None:
    dynamic, static = programs
    run(sb, dynamic, "list", "/d", "stat", "/d/f")
    sb.fail("stat", "/d/f", errno.EIO)
    lines, entries = run(sb, static, "stat", "/d/f", "lstat", "/d/sub", "stat", "/d/nope")
    assert lines == ["EIO", "40755 4096", "ENOENT"]
    assert [from_snapshot for *_, from_snapshot in entries] == [False, False, False]


def test_a_static_program_of_another_user_meets_the_models_permissions(
    sb: Sandbox, programs: tuple[str, str]
) -> None:
    dynamic, static = programs
    sb.fs.create_dir("/closed", perm_bits=0o700)  # root's alone
    sb.fs.create_file("/closed/f", contents="x")
    for directory in ("/d", "/closed"):
        run(sb, dynamic, "list", directory, "stat", f"{directory}/f", "stat", f"{directory}/f")
    done = sb.run([*as_nobody(), static, "stat", "/d/f", "stat", "/closed/f", "access",
                   "/closed/nope"], capture_output=True, text=True)  # fmt: skip
    assert done.stdout.splitlines() == ["100644 10", "EACCES", "EACCES"], done.stderr
    answered = {(e.path, e.from_snapshot) for e in sb.journal
                if e.exe == static and str(e.path).startswith(("/d", "/c"))}  # fmt: skip
    assert answered == {("/d/f", True), ("/closed/f", False), ("/closed/nope", False)}


def test_a_change_is_seen_by_a_static_programs_next_stat(
    sb: Sandbox, programs: tuple[str, str]
) -> None:
    dynamic, static = programs
    run(sb, dynamic, "list", "/d")
    holder = sb.popen([static, "stat", "/d/f", "wait", "stat", "/d/f", "stat", "/d/g"],
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout is not None
    assert holder.stdout.readline() == "100644 10\n"
    changed = sb.run([dynamic, "chmod", "/d/f", "600", "create", "/d/g"], capture_output=True,
                     text=True)  # fmt: skip
    assert changed.stdout == "ok\nok\n"
    out, _ = holder.communicate("go\n", timeout=60)
    assert out.splitlines() == ["100600 10", "100644 0"]


def test_the_journal_holds_every_answer_once_a_static_program_has_exited(
    sb: Sandbox, programs: tuple[str, str]
) -> None:
    # the supervisor gives the program an answer from the snapshot only once it is journaled,
    # as the pipeline records a call before the program can see its answer
    dynamic, static = programs
    run(sb, dynamic, "list", "/d")
    for _ in range(5):
        before = len(sb.journal)
        proc = sb.popen([static, *["stat", "/d/f"] * 200], stdout=subprocess.DEVNULL)
        assert proc.wait() == 0
        stats = [e.from_snapshot for e in sb.journal[before:] if e.path == "/d/f"]
        assert stats == [True] * 200
