"""The metadata snapshot: stat, lstat, access(F_OK) and readlink answered in the shim.

When a program lists a virtual directory the master publishes the directory and its entries in
a shared memfd; the shim answers the program's next stats of them itself and tells the master
in a note. These tests run real programs (tests/programs/snapshot.c, ls, find, stat) and check
that what they see is exactly what the master would have answered: after changes made by
programs or by the test, under fault rules, with permissions, with symlinks, relative paths and
concurrent writers; and that the journal still records every call.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libcfake import ProtocolError, Sandbox, protocol
from libcfake.fs import FileSystem, lstat_records
from libcfake.snapshot import RECORD, Snapshot

from .conftest import as_nobody, program_steps

Compile = Callable[[str], Path]


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        sandbox.fs.create_file("/d/f", contents="0123456789")
        sandbox.fs.create_symlink("/d/link", "f")
        sandbox.fs.create_dir("/d/sub")
        yield sandbox


@pytest.fixture
def steps(compile_c: Compile, sb: Sandbox) -> Callable[..., list[str]]:
    """Run tests/programs/snapshot.c with the given steps; its output lines."""
    return program_steps(sb, compile_c("snapshot"))


def noted(sb: Sandbox, call: str, path: str) -> int:
    """How many journal entries of ``call`` name ``path``."""
    return sum(1 for entry in sb.journal if entry.call == call and entry.path == path)


def test_stats_after_a_listing_agree_with_the_masters_answers(
    steps: Callable[..., list[str]],
) -> None:
    before = steps("stat", "/d/f", "lstat", "/d/link", "readlink", "/d/link", "access", "/d/f",
                   "stat", "/d/link", "at", "/d", "f")  # fmt: skip
    after = steps("list", "/d", "stat", "/d/f", "lstat", "/d/link", "readlink", "/d/link",
                  "access", "/d/f", "stat", "/d/link", "at", "/d", "f")  # fmt: skip
    assert after == ["5", *before]
    assert before[0] == "100644 10" and before[1].startswith("120777 ")
    assert before[2:4] == ["f", "ok"]


def test_the_snapshot_answers_without_a_round_trip_and_the_journal_sees_every_call(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    lines = steps("stat", "/d/f", "list", "/d", "stat", "/d/f", "lstat", "/d/link", "readlink",
                  "/d/link", "access", "/d/f", "stat", "/d/link", "fstat", "/d/sub")  # fmt: skip
    assert lines[-1] == "40755 4096"
    # (under the hybrid backend the fstat glibc's opendir makes inside libc, which the shim
    # does not see, traps and is journaled too, by its system call's name)
    journal = [(e.call, e.path, e.answer, e.from_snapshot) for e in sb.journal
               if e.path is not None and e.path.startswith("/d/")
               and e.symbol != "newfstatat"]  # fmt: skip
    assert journal == [
        ("stat", "/d/f", "stat regular 644 10", False),  # not published yet
        ("stat", "/d/f", "stat regular 644 10", True),
        ("lstat", "/d/link", "stat symlink 777 1", True),
        ("readlink", "/d/link", "f", True),
        ("access", "/d/f", "0", True),
        ("stat", "/d/link", "stat regular 644 10", False),  # a symlink to follow: the master's
        ("open", "/d/sub", "fd", False),
        ("fstat", "/d/sub", "stat directory 755 4096", True),  # /d/sub was published with /d
    ]


def test_a_change_made_by_a_program_is_seen_at_once(steps: Callable[..., list[str]]) -> None:
    lines = steps("list", "/d", "stat", "/d/f", "chmod", "/d/f", "600", "stat", "/d/f",
                  "list", "/d", "stat", "/d/f")  # fmt: skip
    assert lines == ["5", "100644 10", "ok", "100600 10", "5", "100600 10"]


def test_a_create_withdraws_its_directory_and_the_rest_stays_published(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    """cp -r, tar x, git add: a program that writes in one directory keeps reading another
    from the snapshot; the directory it writes in is asked for again, and seen as it is."""
    sb.fs.create_dir("/out")
    lines = steps("list", "/d", "list", "/out", "create", "/out/new", "stat", "/d/f",
                  "stat", "/out/new", "stat", "/d/sub", "list", "/out")  # fmt: skip
    assert lines == ["5", "2", "ok", "100644 10", "100644 0", "40755 4096", "3"]
    answered = [(e.path, e.from_snapshot) for e in sb.journal if e.call == "stat"]
    # /d was untouched by the create: still answered in the shim; /out/new is new: the master's
    assert answered == [("/d/f", True), ("/out/new", False), ("/d/sub", True)]


def test_a_name_created_in_a_complete_directory_is_found_by_the_next_program(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    assert steps("list", "/d", "stat", "/d/nope") == ["5", "ENOENT"]  # complete: the shim's
    assert steps("create", "/d/nope", "stat", "/d/nope", "list", "/d") == ["ok", "100644 0", "6"]
    assert steps("stat", "/d/nope") == ["100644 0"]


def test_a_change_to_one_of_several_hard_links_is_seen_through_the_others(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    sb.fs.os.link("/d/f", "/d/hard")
    assert steps("list", "/d", "stat", "/d/hard", "chmod", "/d/f", "600", "stat", "/d/hard") == [
        "6", "100644 10", "ok", "100600 10"
    ]  # fmt: skip


def test_a_withdrawn_entry_leaves_the_entries_after_it_reachable() -> None:
    """Linear probing: an entry withdrawn from the middle of a probe chain (all in one slot
    here: 8 slots, 4 paths) must not hide the ones placed after it."""
    fs = FileSystem(mounts=())
    paths = [f"/p{i}" for i in range(4)]
    for path in paths:
        fs.create_file(path, contents=path)
    snapshot = _publish_all(fs, paths)
    try:
        assert snapshot.withdraw("/p1")
        assert not snapshot.withdraw("/p1")  # (once)
        assert _published(snapshot, "/p1") is None
        assert all(_published(snapshot, p) is not None for p in ("/p0", "/p2", "/p3"))
        entries = [(p, fs.resolve(p, follow=False)) for p in paths]
        assert snapshot.put_many(lstat_records(entries))  # /p1 again, in a slot of its own
        assert all(_published(snapshot, p) is not None for p in paths)
    finally:
        snapshot.close()


def test_a_snapshot_crowded_with_withdrawn_entries_asks_to_be_emptied() -> None:
    fs = FileSystem(mounts=())
    paths = [f"/p{i}" for i in range(5)]
    for path in paths:
        fs.create_file(path)
    snapshot = Snapshot("/shadow", slots=16, size=1 << 16)
    try:
        entries = [(path, fs.resolve(path, follow=False)) for path in paths]
        assert snapshot.put_many(lstat_records(entries))
        assert not snapshot.crowded  # 5 of 16 slots: under 3/8
        assert snapshot.withdraw("/p0") and snapshot.put_many(lstat_records(entries[:1]))
        assert snapshot.crowded  # 6 of 16 slots taken, one by a tombstone
        snapshot.clear()
        assert not snapshot.crowded
    finally:
        snapshot.close()


def test_a_file_a_program_keeps_writing_shows_its_growing_size(
    steps: Callable[..., list[str]],
) -> None:
    lines = steps("append", "/d/f", "5", "list", "/d", "stat", "/d/f", "append", "/d/f", "7",
                  "list", "/d", "stat", "/d/f")  # fmt: skip
    assert lines == ["ok", "5", "100644 15", "ok", "5", "100644 22"]


def test_changes_the_test_makes_while_a_program_runs_are_seen(
    sb: Sandbox, compile_c: Compile
) -> None:
    program = str(compile_c("snapshot"))
    proc = sb.popen([program, "list", "/d", "stat", "/d/f", "wait", "stat", "/d/f",
                     "access", "/d/new", "stat", "/d/sub", "wait", "stat", "/d/sub"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    assert proc.stdout.readline() == "5\n"
    assert proc.stdout.readline() == "100644 10\n"
    sb.fs.remove("/d/f")
    sb.fs.create_file("/d/f", contents="x" * 20, st_mode=0o600)
    sb.fs.create_file("/d/new")
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == "100600 20\n"  # the master's answer publishes /d again
    assert proc.stdout.readline() == "ok\n"
    assert proc.stdout.readline() == "40755 4096\n"
    sb.fs.create_dir("/d/sub", perm_bits=0o700)  # an existing directory gets these bits
    proc.stdin.write("go\n")
    proc.stdin.close()
    assert proc.stdout.readline() == "40700 4096\n"
    assert proc.wait() == 0
    assert [e.from_snapshot for e in sb.journal if e.path == "/d/sub"] == [True, False]


def test_a_new_program_sees_what_was_changed_through_pyfakefs_between_runs(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    assert steps("list", "/d", "stat", "/d/f") == ["5", "100644 10"]
    sb.fs.fake.resolve("/d/f").st_mode = 0o100600
    sb.fs.fake.resolve("/d").entries  # noqa: B018  (the listing below publishes again)
    assert steps("stat", "/d/f", "list", "/d", "stat", "/d/f") == ["100600 10", "5", "100600 10"]


def test_a_directory_is_published_after_two_stats_of_its_entries_not_fstats_of_a_file(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    # cp -r fstats each file it opened after creating the last copy, which empties the
    # snapshot: counting those would publish the whole directory again for every file
    steps("open", "/d/f", "r", "ffull", "ffull", "stat", "/d/sub", "stat", "/d/f", "stat", "/d/f")
    assert [e.from_snapshot for e in sb.journal if e.call == "stat"] == [False, False, True]


def test_a_later_program_is_answered_from_what_an_earlier_one_published(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    assert steps("list", "/d") == ["5"]
    assert steps("stat", "/d/f", "access", "/d/f") == ["100644 10", "ok"]
    later = [e.from_snapshot for e in sb.journal if e.path == "/d/f"]
    assert later == [True, True]  # no round trip: nothing changed between the programs
    sb.fs.remove("/d/f")  # through the API: heard of at once
    sb.fs.create_file("/d/f", contents="changed")
    assert steps("stat", "/d/f") == ["100644 7"]


def test_pyfakefs_taken_before_a_run_and_changed_after_it_is_seen_by_the_next(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    fake = sb.fs.fake  # held on to: any later change through it goes unheard
    assert steps("list", "/d", "stat", "/d/f") == ["5", "100644 10"]
    fake.resolve("/d/f").st_mode = 0o100600
    assert steps("stat", "/d/f") == ["100600 10"]


def opened(sb: Sandbox, path: str) -> list[bool]:
    """Whether each open of ``path`` in the journal was answered in the shim (from_snapshot)."""
    return [e.from_snapshot for e in sb.journal if e.call in ("open", "openat") and e.path == path]


def test_a_listed_directory_is_opened_by_the_next_program_without_a_round_trip(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    assert steps("list", "/d", "list", "/d/sub") == ["5", "2"]
    lines = steps("list", "/d", "fstat", "/d", "at", "/d", "f", "list", "/d/sub", "open", "/d", "r")
    assert lines == ["5", "40755 4096", "100644 10", "2", "ok"]
    assert opened(sb, "/d") == [False, True, True, True, True]
    assert opened(sb, "/d/sub") == [False, True]
    entry = next(e for e in sb.journal if e.path == "/d" and e.from_snapshot and e.call == "open")
    assert (entry.symbol, entry.answer) == ("opendir", "fd")
    assert entry.arguments == (PurePosixPath("/d"), ["directory", "read_only"])


def test_ls_and_find_list_the_same_tree_whether_opened_by_the_master_or_the_shim(
    sb: Sandbox,
) -> None:
    sb.fs.create_file("/d/sub/deeper/g", contents="g")
    runs = [(sb.run(["ls", "-lRa", "/d"], capture_output=True, text=True),
             sb.run(["find", "/d", "-printf", "%p %y %m %s\n"], capture_output=True, text=True))
            for _ in range(2)]  # fmt: skip
    assert [(ls.stdout, find.stdout) for ls, find in runs[1:]] == [
        (ls.stdout, find.stdout) for ls, find in runs[:1]
    ]
    assert "/d/sub/deeper/g f 644 1" in runs[0][1].stdout
    assert all(r.returncode == 0 and r.stderr == "" for pair in runs for r in pair)
    assert opened(sb, "/d/sub/deeper")[-2:] == [True, True]  # (find: openat from /d/sub)


def test_a_listed_directory_is_listed_as_it_is_after_a_change(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    assert steps("list", "/d") == ["5"]
    sb.fs.create_file("/d/new")
    assert steps("list", "/d", "create", "/d/made", "list", "/d", "list", "/d") == [
        "6",
        "ok",
        "7",
        "7",
    ]
    assert opened(sb, "/d") == [False, False, False, True]
    sb.fs.create_file("/d/later")  # /d's shadow lists it only once a program opens /d again
    lines = steps("stat", "/d/f", "stat", "/d/sub", "access", "/d/f", "list", "/d")
    assert lines == ["100644 10", "40755 4096", "ok", "8"]  # /d was published by the stats
    assert opened(sb, "/d")[-1] is False


def test_opens_a_listed_directory_cannot_answer_go_to_the_master(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    sb.fs.create_symlink("/d/to-sub", "sub")
    steps("list", "/d", "list", "/d/sub")
    lines = steps("open", "/d", "w", "open", "/d", "n", "open", "/d", "p", "list", "/d/to-sub")
    assert lines == ["EISDIR", "ok", "ok", "2"]
    assert opened(sb, "/d")[1:] == [False, False, False]
    assert opened(sb, "/d/to-sub") == [False]  # a symlink: the master follows it


def test_a_name_a_complete_directory_lacks_is_enoent_without_a_round_trip(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    missing = ["stat", "/d/nope", "lstat", "/d/nope", "access", "/d/nope", "readlink", "/d/nope",
               "at", "/d", "nope", "open", "/d/nope", "r", "open", "/d/nope", "w"]  # fmt: skip
    assert steps("list", "/d", *missing) == ["5"] + ["ENOENT"] * 7
    entries = [e for e in sb.journal if e.path == "/d/nope"]
    assert [(e.call, e.from_snapshot, e.errno) for e in entries] == [
        (call, True, errno.ENOENT)
        for call in ("stat", "lstat", "access", "readlink", "lstat", "open", "open")
    ]
    assert entries[0].answer == "-1 ENOENT (No such file or directory)"
    assert entries[-1].arguments == (PurePosixPath("/d/nope"), ["write_only"])
    # what the snapshot cannot say goes to the master: below a missing name, below a file
    assert steps("stat", "/d/no/x", "stat", "/d/f/x", "create", "/d/nope", "stat", "/d/nope") == [
        "ENOENT", "ENOTDIR", "ok", "100644 0"]  # fmt: skip
    assert [e.from_snapshot for e in sb.journal][-4:] == [False, False, False, False]


def test_fault_rules_reach_names_a_complete_directory_lacks(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    steps("list", "/d")
    sb.fail("open", "/d/nope", errno.EACCES)
    assert steps("list", "/d", "open", "/d/nope", "r", "stat", "/d/nope") == [
        "5",
        "EACCES",
        "ENOENT",
    ]
    sb.fail("stat", "/d/gone", errno.EIO)
    assert steps("list", "/d", "stat", "/d/gone") == ["5", "EIO"]


def test_a_file_a_program_writes_is_only_named_in_its_directory(
    sb: Sandbox, compile_c: Compile
) -> None:
    program = str(compile_c("snapshot"))
    writer = sb.popen([program, "append", "/d/f", "1", "wait"], stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert writer.stdin is not None and writer.stdout is not None
    assert writer.stdout.readline() == "ok\n"  # /d/f is open for writing: its name only
    done = sb.run([program, "list", "/d", "stat", "/d/f", "stat", "/d/nope"], capture_output=True,
                  text=True)  # fmt: skip
    writer.stdin.write("go\n")
    writer.stdin.close()
    assert writer.wait() == 0
    assert done.stdout.splitlines() == ["5", "100644 11", "ENOENT"]
    # /d is complete all the same: a name it lacks is the shim's ENOENT, /d/f the master's stat
    assert [e.from_snapshot for e in sb.journal if e.path in ("/d/f", "/d/nope")][-2:] == [
        False, True]  # fmt: skip


def test_a_socket_a_program_binds_is_seen_by_the_programs_after_it(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    assert steps("list", "/d", "list", "/d", "stat", "/d/sock") == ["5", "5", "ENOENT"]
    code = "import socket; socket.socket(socket.AF_UNIX).bind('/d/sock')"
    bind = sb.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert bind.returncode == 0, bind.stderr
    assert steps("list", "/d", "stat", "/d/sock") == ["6", "140755 0"]


def test_fault_rules_on_open_reach_every_open_of_a_listed_directory(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    steps("list", "/d", "list", "/d")
    sb.fail("open", "/d", errno.EIO, nth=2)
    assert steps("list", "/d", "list", "/d", "list", "/d", "stat", "/d/f") == [
        "5",
        "EIO",
        "5",
        "100644 10",
    ]
    assert opened(sb, "/d") == [False, True, False, False, False]


def test_a_listed_directory_is_opened_by_the_shim_only_where_everyone_may_read_it(
    sb: Sandbox, compile_c: Compile
) -> None:
    program = str(compile_c("snapshot"))
    sb.fs.create_dir("/d/closed", perm_bits=0o711)  # searchable by all, readable by its owner
    steps = [program, "list", "/d/closed", "list", "/d"]
    assert sb.run(steps, capture_output=True, text=True).stdout == "2\n6\n"  # both listed now
    for _ in range(2):
        nobody = sb.run([*as_nobody(), *steps], capture_output=True, text=True)
        assert nobody.stdout == "EACCES\n6\n", nobody.stderr
    # The shadow tree's root may be searched by all (0711): nobody's shim opens /d itself,
    # and /d/closed never.
    assert opened(sb, "/d/closed") == [False, False, False]
    assert opened(sb, "/d") == [False, True, True]


def test_fault_rules_on_stat_like_calls_see_every_call(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    steps("list", "/d")  # published
    sb.fail("stat", "/d/f", 5, nth=2)  # EIO on the second stat only
    lines = steps("list", "/d", "stat", "/d/f", "stat", "/d/f", "stat", "/d/f")
    assert lines == ["5", "100644 10", "EIO", "100644 10"]
    sb.fail("readlink", "/d/link", 2)
    assert steps("list", "/d", "readlink", "/d/link") == ["5", "ENOENT"]


def test_entries_under_a_directory_not_searchable_by_all_are_asked_for(
    sb: Sandbox, compile_c: Compile
) -> None:
    program = str(compile_c("snapshot"))
    sb.fs.create_dir("/private", perm_bits=0o700)
    sb.fs.create_file("/private/secret", contents="s")
    root = sb.run([program, "list", "/private", "stat", "/private/secret"], capture_output=True,
                  text=True)  # fmt: skip
    assert root.stdout == "3\n100644 1\n"
    nobody = [*as_nobody(), program, "stat", "/private/secret"]
    other = sb.run(nobody, capture_output=True, text=True)
    assert other.stdout == "EACCES\n", other.stderr


def test_relative_paths_from_a_listed_directory_and_the_working_directory(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    assert steps("at", "/d", "f", "at", "/d", "link", "at", "/d", "sub") == [
        "100644 10",
        "120777 1",
        "40755 4096",
    ]
    assert noted(sb, "lstat", "/d/f") >= 1
    assert steps("chdir", "/d", "list", ".", "stat", "f", "lstat", "link", "stat", "sub") == [
        "ok",
        "5",
        "100644 10",
        "120777 1",
        "40755 4096",
    ]


def test_paths_the_snapshot_cannot_name_go_to_the_master(steps: Callable[..., list[str]]) -> None:
    lines = steps("list", "/d", "stat", "/d//f", "stat", "/d/./f", "stat", "/d/sub/../f",
                  "stat", "/d/f/", "stat", "/d/missing", "lstat", "/d/sub/")  # fmt: skip
    assert lines == ["5", "100644 10", "100644 10", "100644 10", "ENOTDIR", "ENOENT", "40755 4096"]


def test_ls_find_and_stat_over_a_tree_agree_with_and_without_the_snapshot(
    tmp_path: Path,
) -> None:
    def tree(sb: Sandbox) -> None:
        for index in range(60):
            sb.fs.create_file(f"/t/d{index % 4}/f{index}", contents="y" * index)
        sb.fs.create_symlink("/t/d0/up", "..")
        sb.fs.create_dir("/t/empty", perm_bits=0o711)
        # one time for all, so that the two trees list alike even across a minute's turn
        paths = ["/t", "/t/empty", "/t/d0/up", *(f"/t/d{index}" for index in range(4)),
                 *(f"/t/d{index % 4}/f{index}" for index in range(60))]  # fmt: skip
        for path in paths:
            sb.fs.resolve(path, follow=False).st_mtime = 1_700_000_000

    script = "ls -lR /t; find /t -printf '%p %m %s %y\\n' | sort; stat -c '%n %a %s %F' /t/d1/*"
    outputs = []
    for snapshot in (True, False):
        with Sandbox() as sb:
            if not snapshot:
                sb._snapshot = None  # publish nothing
            tree(sb)
            done = sb.run(["sh", "-c", script], capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
            outputs.append(done.stdout)
            stats = sum(1 for entry in sb.journal if entry.call in ("stat", "lstat"))
            assert stats >= 60
    assert outputs[0] == outputs[1]


def test_stats_racing_with_changes_never_see_a_state_the_file_never_had(
    sb: Sandbox, compile_c: Compile
) -> None:
    program = str(compile_c("snapshot"))
    sb.fs.remove("/d/f")
    sb.fs.create_file("/d/f", contents="z" * 10)
    stop = threading.Event()
    swaps = 0

    def swap() -> None:
        nonlocal swaps
        big = False
        while not stop.is_set():
            big = not big
            sb.fs.remove("/d/f")
            sb.fs.create_file("/d/f", contents="z" * (20000 if big else 10),
                              st_mode=0o600 if big else 0o644)  # fmt: skip
            swaps += 1
            # A writer that never waits starves the master of the GIL: each call it answers then
            # waits for the writer's switch interval, and the run took from 20 s to past 120 s
            # by the machine's load. A pause this short still swaps the file about once a
            # millisecond while the programs stat it, from the snapshot and from the master.
            time.sleep(0.00002)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    writer = threading.Thread(target=swap)
    writer.start()
    try:
        procs = [sb.popen([program, "race", "/d", "f", "2000"], stdout=subprocess.PIPE, text=True)
                 for _ in range(2)]  # fmt: skip
        outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    finally:
        stop.set()
        writer.join()
        sys.setswitchinterval(interval)
    # the race happened: the file changed under the programs, who were answered both ways
    answered = {entry.from_snapshot for entry in sb.journal if entry.path == "/d/f"}
    assert swaps >= 20 and answered == {True, False}
    assert outputs == ["consistent\n", "consistent\n"]


def test_the_journal_holds_every_note_once_the_program_has_exited(
    sb: Sandbox, compile_c: Compile
) -> None:
    program = str(compile_c("snapshot"))
    args = ["list", "/d"] + ["stat", "/d/f"] * 200
    proc = sb.popen([program, *args], stdout=subprocess.DEVNULL)
    assert proc.wait() == 0
    assert noted(sb, "stat", "/d/f") == 200


def test_a_sandbox_sharing_pyfakefs_publishes_nothing(compile_c: Compile) -> None:
    from pyfakefs.fake_filesystem import FakeFilesystem

    with Sandbox(fake_filesystem=FakeFilesystem(path_separator="/")) as sb:
        sb.fs.create_file("/d/f", contents="a")
        assert sb._publisher.snapshot is None
        done = sb.run([str(compile_c("snapshot")), "list", "/d", "stat", "/d/f"],
                      capture_output=True, text=True)  # fmt: skip
        assert done.stdout == "3\n100644 1\n"


# -- the wire: notes and the snapshot memfd -------------------------------------------------


def _note(function: int, path: bytes, result: int = 0, text: bytes = b"", error: int = 0) -> bytes:
    fields = protocol.ffi.new("struct lcf_note *")
    size = protocol.ffi.sizeof("struct lcf_note")
    fields.header.magic = protocol.MAGIC
    fields.header.version = protocol.VERSION
    fields.header.kind = protocol.lib.LCF_NOTE
    fields.header.length = size + len(path) + len(text)
    fields.function = function
    fields.result = result
    fields.error = error
    fields.length = len(path)
    return bytes(protocol.ffi.buffer(fields)) + path + text


def test_a_note_is_decoded_and_checked() -> None:
    lib = protocol.lib
    note = protocol.decode_note(_note(lib.LCF_READLINK, b"/d/link", 1, b"f"))
    assert (note.function, note.path, note.target) == ("readlink", "/d/link", "f")
    note = protocol.decode_note(_note(lib.LCF_READLINK, b"/d/x", -1, error=errno.ENOENT))
    assert (note.result, note.error, note.target) == (-1, errno.ENOENT, None)
    bad = {
        "a failure but ENOENT": _note(lib.LCF_STAT, b"/d/f", -1, error=errno.EACCES),
        "an errno without a failure": _note(lib.LCF_STAT, b"/d/f", error=errno.ENOENT),
        "a result a stat does not give": _note(lib.LCF_STAT, b"/d/f", 3),
        "a call no snapshot answers": _note(lib.LCF_MKDIR, b"/d/f"),
        "a relative path": _note(lib.LCF_STAT, b"d/f"),
        "no path": _note(lib.LCF_STAT, b""),
        "a target longer than the packet": _note(lib.LCF_READLINK, b"/d/l", 9, b"f"),
        "trailing bytes": _note(lib.LCF_STAT, b"/d/f") + b"junk",
    }
    for case, data in bad.items():
        with pytest.raises(ProtocolError):
            protocol.decode_note(data)
            pytest.fail(case)


def test_a_note_sent_as_a_message_closes_only_its_connection(sb: Sandbox, tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        sock.connect(sb._service.socket_path)
        sock.send(protocol.encode_hello(pid=os.getpid()))
        _, ancillary, _, _ = sock.recvmsg(protocol.MAX_MESSAGE, 64)
        assert len(ancillary) == 1  # the snapshot and note ring memfds
        for _, _, fds in ancillary:
            for index in range(0, len(fds), 4):
                os.close(int.from_bytes(fds[index : index + 4], "little"))
        sock.send(_note(protocol.lib.LCF_STAT, b"relative"))
        assert sock.recv(protocol.MAX_MESSAGE) == b""  # closed
    sb.journal  # noqa: B018  (reading it waits until the master is idle: the error is recorded)
    assert any("notes go through the note ring" in error for error in sb.protocol_errors)
    assert sb.run(["true"]).returncode == 0  # everyone else is still served


def test_the_snapshot_writer_keeps_to_its_limits() -> None:
    snapshot = Snapshot("/shadow", slots=8, size=8192)
    try:
        entry = protocol.encode_stat(__import__("libcfake").StatResult(type="regular", mode=0o644))
        assert [snapshot.put(f"/f{index}", entry) for index in range(5)] == [True] * 4 + [False]
        snapshot.clear()
        assert snapshot.put("/f9", entry)
    finally:
        snapshot.close()
    with pytest.raises(ValueError):
        Snapshot("/shadow", slots=6, size=8192)


# -- the writer: a directory's entries in one batch -----------------------------------------


def _published(snapshot: Snapshot, path: str) -> tuple[bytes, str | None] | None:
    """What the shim reads for ``path``: its struct lcf_stat and a symlink's target, or None."""
    ffi, lib = protocol.ffi, protocol.lib
    view = ffi.new("struct lcf_snapshot_view *")
    assert lib.lcf_snapshot_view_init(view, snapshot._base, snapshot.size) == 0
    found = ffi.new("struct lcf_stat *")
    target = ffi.new("char[]", lib.LCF_MAX_PATH + 1)
    length = ffi.new("int32_t *")
    encoded = os.fsencode(path)
    if not lib.lcf_snapshot_get(view, encoded, len(encoded), found, target, length):
        return None
    link = os.fsdecode(ffi.unpack(target, length[0])) if length[0] >= 0 else None
    return bytes(ffi.buffer(found)), link


def _publish_all(fs: FileSystem, paths: list[str]) -> Snapshot:
    snapshot = Snapshot("/shadow", slots=1024, size=1 << 20)
    entries = [(path, fs.resolve(path, follow=False)) for path in paths]
    assert snapshot.put_many(lstat_records(entries))
    return snapshot


def test_a_published_entry_is_what_the_master_answers(tmp_path: Path) -> None:
    host = tmp_path / "host.txt"
    host.write_text("from the host")
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "inner").write_text("inner")
    fs = FileSystem(mounts=())
    fs.create_file("/d/plain", contents="twelve bytes", st_mode=0o4755, uid=5, gid=6)
    fs.create_file("/d/empty")
    fs.create_file("/d/big", contents=b"x" * 10000)
    fs.create_file("/d/caf\u00e9 \udcff", contents="a name that is not UTF-8")
    fs.create_file("/d/opened", contents="in a memfd")
    fs.create_symlink("/d/link", "plain")
    fs.create_symlink("/d/dangling", "/nowhere/\u00e9")
    fs.create_dir("/d/sub", perm_bits=0o1777)
    fs.add_real_file(host, "/d/host")
    fs.add_real_directory(tmp_path / "tree", "/d/tree")
    fs.fake.create_file("/d/fifo", st_mode=stat.S_IFIFO | 0o600)
    os.write(fs.memfd(fs.resolve("/d/opened")), b"longer now")  # size and times: the memfd's
    times = fs.resolve("/d/plain")
    times.st_atime, times.st_mtime, times.st_ctime = 1e9 + 0.9999999999, -1.5, 2**33 + 0.25
    paths = ["/", "/d", *(f"/d/{name}" for name in fs.listdir("/d")), "/d/tree/inner"]
    snapshot = _publish_all(fs, paths)
    try:
        for path in paths:
            obj = fs.resolve(path, follow=False)
            link = obj.contents if stat.S_ISLNK(obj.stat_result.st_mode) else None
            assert _published(snapshot, path) == (fs.packed_stat(obj).data, link), path
    finally:
        snapshot.close()
        fs.close()


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.integers(-(2**63) + 10**9, 2**63 - 10**9), st.integers(0, 2**61)),
    st.sampled_from([0, 1, 499_999_999, 500_000_000, 999_999_999]),
)
def test_a_published_time_is_the_masters_to_the_nanosecond(ns: int, rest: int) -> None:
    fs = FileSystem(mounts=())
    fs.create_file("/f")
    meta = fs.resolve("/f").stat_result
    meta.st_atime_ns = ns  # any time a record can hold (else the master answers)
    meta.st_mtime_ns = ns - ns % 1_000_000_000 + rest  # and the ones on the edge of a second
    meta.st_ctime_ns = ns - 1
    snapshot = _publish_all(fs, ["/f"])
    try:
        assert _published(snapshot, "/f") == (fs.packed_stat(fs.resolve("/f")).data, None)
    finally:
        snapshot.close()


def test_a_directorys_link_count_follows_every_change() -> None:
    fs = FileSystem(mounts=())
    fs.create_file("/d/f")
    directory = fs.resolve("/d")
    assert fs.stat_of(directory).nlink == 2  # counted once, then kept
    fs.create_dir("/d/sub")  # through the API: the count is made anew
    packed = protocol.ffi.from_buffer("struct lcf_stat *", fs.packed_stat(directory).data)
    assert fs.stat_of(directory).nlink == packed.nlink == 3
    fs.fake.create_dir("/d/other")  # pyfakefs itself: never kept from then on
    assert fs.stat_of(directory).nlink == 4
    fs.fake.remove_object("/d/sub")
    assert fs.stat_of(directory).nlink == 3
    fs.close()


def test_a_value_a_stat_answer_cannot_carry_is_left_to_the_master() -> None:
    fs = FileSystem(mounts=())
    fs.create_file("/d/ok")
    fs.create_file("/d/too-big-an-owner", uid=2**32)
    snapshot = _publish_all(fs, ["/d/ok", "/d/too-big-an-owner"])
    try:
        assert _published(snapshot, "/d/ok") is not None
        named = _published(snapshot, "/d/too-big-an-owner")  # the name only: mode 0
        assert named is not None
        assert protocol.ffi.from_buffer("struct lcf_stat *", bytearray(named[0])).mode == 0
    finally:
        snapshot.close()


def test_a_batch_fills_the_snapshot_up_to_its_limit_and_a_broken_one_is_refused() -> None:
    fs = FileSystem(mounts=())
    for index in range(5):
        fs.create_file(f"/f{index}")
    records = lstat_records([(f"/f{index}", fs.resolve(f"/f{index}")) for index in range(5)])
    snapshot = Snapshot("/shadow", slots=8, size=8192)
    try:
        assert not snapshot.put_many(records)  # half of the slots at most
        assert snapshot.published == 4
        assert [_published(snapshot, f"/f{index}") is not None for index in range(5)] == [
            True, True, True, True, False,
        ]  # fmt: skip
        snapshot.clear()
        assert snapshot.put_many(records[: RECORD.size + 3])  # /f0 alone
        assert snapshot.published == 1 and snapshot.put_many(b"")
        record = RECORD.unpack_from(records)
        broken = {
            "cut short": records[: RECORD.size + 2],
            "a header cut short": records[: RECORD.size - 1],
            "a target that is not there": RECORD.pack(*record[:6], 9, *record[7:]) + b"/f0",
            "a negative target length": RECORD.pack(*record[:6], -2, *record[7:]) + b"/f0",
        }
        for case, data in broken.items():
            with pytest.raises(ValueError, match="not a sequence of snapshot records"):
                snapshot.put_many(data)
                pytest.fail(case)
    finally:
        snapshot.close()


@st.composite
def record_batches(draw: st.DrawFn) -> bytes:
    """Snapshot records with arbitrary fields, paths and targets; maybe cut or with a byte
    overwritten (a broken batch, or one whose lengths now say something else)."""
    parts = []
    for _ in range(draw(st.integers(0, 12))):
        path = draw(st.sampled_from([b"/a", b"/a/b", b""]) | st.binary(max_size=24))
        target = draw(st.none() | st.binary(max_size=24))
        ids = draw(st.lists(st.integers(0, 2**64 - 1), min_size=3, max_size=3))  # dev ino nlink
        owner = draw(st.lists(st.integers(0, 2**32 - 1), min_size=3, max_size=3))  # mode uid gid
        rdev = draw(st.integers(0, 2**64 - 1))
        sizes = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=6, max_size=6))
        length = -1 if target is None else len(target)
        record = RECORD.pack(*ids, *owner, length, rdev, *sizes, len(path), 0)
        parts.append(record + path + (target or b""))
    data = bytearray(b"".join(parts))
    if data and draw(st.booleans()):
        if draw(st.booleans()):
            del data[draw(st.integers(0, len(data) - 1)) :]
        else:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


def _records_in(data: bytes) -> tuple[dict[bytes, tuple[bytes, bytes | None]], bool]:
    """What a batch publishes, read in Python as shim/snapshot.h describes the records: each
    path's first struct lcf_stat and target (a path seen again changes nothing), and whether
    every byte of the batch belongs to a record."""
    published: dict[bytes, tuple[bytes, bytes | None]] = {}
    offset = 0
    while offset < len(data):
        if len(data) - offset < RECORD.size:
            return published, False
        (dev, ino, nlink, mode, uid, gid, target_length, rdev, size, blksize, blocks,
         *times, path_length, _) = RECORD.unpack_from(data, offset)  # fmt: skip
        offset += RECORD.size
        extra = max(target_length, 0)
        if target_length < -1 or path_length + extra > len(data) - offset:
            return published, False
        path = data[offset : offset + path_length]
        target = data[offset + path_length : offset + path_length + extra]
        offset += path_length + extra
        (atime, atime_ns), (mtime, mtime_ns), (ctime, ctime_ns) = (
            divmod(ns, 10**9) for ns in times
        )
        answer = protocol.ffi.new("struct lcf_stat *", {
            "dev": dev, "ino": ino, "nlink": nlink, "mode": mode, "uid": uid, "gid": gid,
            "rdev": rdev, "size": size, "blksize": blksize, "blocks": blocks,
            "atime_sec": atime, "atime_nsec": atime_ns, "mtime_sec": mtime,
            "mtime_nsec": mtime_ns, "ctime_sec": ctime, "ctime_nsec": ctime_ns,
        })  # fmt: skip
        if path not in published:
            stat_bytes = bytes(protocol.ffi.buffer(answer))
            published[path] = (stat_bytes, target if target_length >= 0 else None)
    return published, True


@settings(max_examples=400, deadline=None, derandomize=True)
@given(record_batches())
def test_any_batch_publishes_exactly_its_whole_records(data: bytes) -> None:
    expected, whole = _records_in(data)
    snapshot = Snapshot("/shadow", slots=64, size=1 << 16)  # room for every batch drawn
    try:
        if whole:
            assert snapshot.put_many(data)
            assert snapshot.published == len(expected)
        else:  # the records before the broken one are in
            with pytest.raises(ValueError, match="not a sequence of snapshot records"):
                snapshot.put_many(data)
        for path, (stat_bytes, target) in expected.items():
            link = None if target is None else os.fsdecode(target)
            assert _published(snapshot, path) == (stat_bytes, link)
        snapshot.clear()  # empties what a broken batch published too
        assert [path for path in expected if _published(snapshot, path) is not None] == []
    finally:
        snapshot.close()


# -- files programs opened: published while only ever opened read-only ---------------------


def from_snapshot(sb: Sandbox, call: str, path: str) -> list[bool]:
    """Whether each journaled ``call`` of ``path`` was answered from the snapshot."""
    return [
        entry.from_snapshot for entry in sb.journal if entry.call == call and entry.path == path
    ]


def test_a_file_opened_only_for_reading_is_published_and_reading_it_changes_no_time(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    meta = sb.fs.fake.resolve("/d/f").stat_result
    meta.st_atime_ns, meta.st_mtime_ns = 1_500_000_000_123_456_789, 1_400_000_000_987_654_321
    lines = steps("full", "/d/f", "open", "/d/f", "r", "full", "/d/f", "read", "list", "/d",
                  "full", "/d/f", "ffull", "read", "full", "/d/f")  # fmt: skip
    assert lines[1:4] == ["ok", lines[0], "10"]  # opening and reading change no time, nor ctime
    assert lines[4:] == ["5", lines[0], lines[0], "0", lines[0]]  # the snapshot's, the master's
    atime, mtime = (divmod(ns, 10**9) for ns in (meta.st_atime_ns, meta.st_mtime_ns))
    assert lines[0].startswith(f"100644 10 1 {atime[0]}.{atime[1]:09} {mtime[0]}.{mtime[1]:09} ")
    assert from_snapshot(sb, "stat", "/d/f") == [False, False, True, True]
    assert steps("list", "/d", "full", "/d/f") == ["5", lines[0]]  # the next program too
    assert from_snapshot(sb, "stat", "/d/f")[-1]


def test_a_file_once_opened_for_writing_is_never_published_again(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    lines = steps("list", "/d", "stat", "/d/f", "open", "/d/f", "a", "write", "3", "list", "/d",
                  "stat", "/d/f", "write", "4", "stat", "/d/f")  # fmt: skip
    assert lines == ["5", "100644 10", "ok", "ok", "5", "100644 13", "ok", "100644 17"]
    assert steps("list", "/d", "stat", "/d/f", "stat", "/d/link") == ["5", "100644 17", "100644 17"]
    assert from_snapshot(sb, "stat", "/d/f") == [True, False, False, False]
    rest = steps("list", "/d", "at", "/d", "sub", "lstat", "/d/link")
    assert rest == ["5", "40755 4096", "120777 1"]  # the rest of /d is published still:
    assert from_snapshot(sb, "lstat", "/d/sub") == from_snapshot(sb, "lstat", "/d/link") == [True]


def test_a_read_only_descriptor_reopened_for_writing_through_dev_fd_is_seen(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    lines = steps("open", "/d/f", "r", "list", "/d", "stat", "/d/f", "reopen", "a", "list", "/d",
                  "write", "5", "stat", "/d/f", "ffull")  # fmt: skip
    assert lines[:7] == ["ok", "5", "100644 10", "ok", "5", "ok", "100644 15"]
    assert lines[7].startswith("100644 15 1 ")
    assert from_snapshot(sb, "stat", "/d/f") == [True, False]


def test_reopening_through_dev_fd_for_writing_needs_the_models_write_permission(
    sb: Sandbox, compile_c: Compile
) -> None:
    # the kernel checks the memfd's own mode (0777); the model's 0444 must decide
    program = str(compile_c("snapshot"))
    sb.fs.create_file("/d/ro", contents="keep", st_mode=stat.S_IFREG | 0o444)
    done = sb.run([*as_nobody(), program, "open", "/d/ro", "r", "reopen", "a", "open", "/d/ro", "p",
                   "reopen", "w"], capture_output=True, text=True)  # fmt: skip
    assert done.stdout.splitlines() == ["ok", "EACCES", "ok", "EACCES"], done.stderr
    assert sb.fs.read_text("/d/ro") == "keep"


def test_a_directory_opened_o_path_whatever_access_mode_it_names(
    steps: Callable[..., list[str]],
) -> None:
    # the kernel ignores the access mode of an O_PATH open: a directory is no EISDIR then
    assert steps("open", "/d", "p", "read", "open", "/d", "w") == ["ok", "EBADF", "EISDIR"]


def test_an_o_path_descriptor_cannot_write_whatever_access_mode_it_names(
    sb: Sandbox, steps: Callable[..., list[str]]
) -> None:
    assert steps("open", "/d/f", "p", "write", "3", "stat", "/d/f") == ["ok", "EBADF", "100644 10"]
    assert sb.fs.read_text("/d/f") == "0123456789"


def test_moving_a_file_into_a_memfd_keeps_its_answer_and_the_snapshot() -> None:
    fs = FileSystem(mounts=())
    changes: list[str] = []
    fs.on_change = lambda: changes.append("emptied")
    fs.create_file("/f", contents="abc")
    fs.fake.create_file("/large", st_size=1 << 20)  # a pyfakefs "large file": no contents
    changes.clear()
    try:
        file = fs.resolve("/f")
        before = fs.packed_stat(file)
        fs.memfd(file, writable=False)
        assert (fs.packed_stat(file), fs.changes_unseen(file), changes) == (before, False, [])
        fs.memfd(file)  # a descriptor that writes: what was published of it is withdrawn
        assert (fs.changes_unseen(file), changes) == (True, ["emptied"])
        fs.memfd(fs.resolve("/large"), writable=False)  # 0 bytes now: its answer changed
        assert changes == ["emptied"] * 2
    finally:
        fs.close()
