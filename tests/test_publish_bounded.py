"""Changes the snapshot survives: renames, hard links and calls on descriptors withdraw only the
entries they may make wrong (libcfake/publish.py, Publisher.before_change).

Each test runs real programs (python3, coreutils, tar) in a Sandbox that first publish a tree
(a listing, then two stats in each directory), then change it, then stat it again, in the same
process where that matters: every answer must be the model's as it is after the change (the
test compares them with ``sb.fs``), and what the change did not touch must still be answered in
the shim (the snapshot was not emptied).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from libcfake import Sandbox
from libcfake.stat import FILE_TYPES

#: Publishes the directories it is given (a listing and a stat of each entry, twice), runs
#: CHANGE (python source, with os imported), then prints the lstat of each path it is given,
#: or the errno's name, as JSON.
_PROGRAM = """
import errno, json, os, sys
directories, change, paths = json.loads(sys.argv[1])
for directory in directories:
    for _ in range(2):
        for name in os.listdir(directory):
            os.lstat(os.path.join(directory, name))
exec(change)
seen = {}
for path in paths:
    try:
        s = os.lstat(path)
        seen[path] = [s.st_mode, s.st_nlink, s.st_size, s.st_uid, s.st_gid, s.st_ino,
                      s.st_mtime_ns, s.st_ctime_ns]
    except OSError as error:
        seen[path] = errno.errorcode[error.errno]
print(json.dumps(seen))
"""


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        for directory in ("/d", "/e", "/d/sub"):
            for index in range(4):
                sandbox.fs.create_file(f"{directory}/f{index}", contents="x" * index)
        sandbox.fs.create_symlink("/d/link", "f1")
        yield sandbox


def model(sb: Sandbox, paths: list[str]) -> dict[str, object]:
    """What the model says of each path now, as the program prints it."""
    seen: dict[str, object] = {}
    for path in paths:
        try:
            s = sb.fs.lstat(path)
        except FileNotFoundError:
            seen[path] = "ENOENT"
            continue
        seen[path] = [FILE_TYPES[s.type] | s.mode, s.nlink, s.size, s.uid, s.gid, s.ino,
                      float(s.mtime), float(s.ctime)]  # fmt: skip
    return seen


def same(seen: dict[str, object], model: dict[str, object]) -> bool:
    """Whether the program saw what the model says (its times in ns, the model's in seconds)."""
    if seen.keys() != model.keys():
        return False
    for path, values in seen.items():
        expected = model[path]
        if not isinstance(values, list) or not isinstance(expected, list):
            if values != expected:
                return False
            continue
        if values[:6] != expected[:6]:
            return False
        if any(
            abs(ns - seconds * 1e9) > 2000
            for ns, seconds in zip(values[6:], expected[6:], strict=True)
        ):
            return False
    return True


def run(sb: Sandbox, change: str, paths: list[str], directories: tuple[str, ...] = ("/d", "/e",
        "/d/sub")) -> dict[str, object]:  # fmt: skip
    """Run _PROGRAM in the Sandbox; what it printed, checked against the model."""
    done = sb.run([sys.executable, "-c", _PROGRAM, json.dumps([directories, change, paths])],
                  capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen: dict[str, object] = json.loads(done.stdout)
    expected = model(sb, paths)
    assert same(seen, expected), (seen, expected)
    return seen


def from_snapshot(sb: Sandbox, path: str) -> list[bool]:
    """Whether each lstat of ``path`` was answered in the shim, in order."""
    return [e.from_snapshot for e in sb.journal if e.call == "lstat" and e.path == path]


ALL = ["/d", "/e", "/d/sub", "/d/f0", "/d/f1", "/d/f2", "/d/f3", "/d/link", "/e/f0", "/e/f1",
       "/e/f2", "/e/f3", "/d/sub/f0", "/d/sub/f1", "/d/new", "/e/new", "/e/moved"]  # fmt: skip


def test_a_rename_of_a_file_withdraws_its_two_paths_and_keeps_the_rest(sb: Sandbox) -> None:
    seen = run(sb, "os.rename('/d/f1', '/e/moved')", ALL)
    assert seen["/d/f1"] == "ENOENT" and seen["/e/moved"] != "ENOENT"
    assert from_snapshot(sb, "/d/sub/f0")[-1]  # untouched: still the shim's
    assert from_snapshot(sb, "/d/f2")[-1]  # a neighbour: its entry is as it was
    assert from_snapshot(sb, "/e/moved")[-1]  # /e published again, complete, once it moved


@pytest.mark.parametrize(
    "change",
    [
        "os.rename('/d/f1', '/d/new')",
        "os.rename('/d/f1', '/d/f2')",
        "os.link('/d/f1', '/d/new'); os.unlink('/d/f1')",
        "open('/d/new', 'w').close(); os.rename('/d/new', '/e/new'); os.lstat('/e/f0')",
        "os.mkdir('/d/new'); os.rmdir('/d/sub/../new'); os.symlink('f0', '/e/new')",
        # git's loose objects: a temporary file, linked to its name, the temporary unlinked,
        # the name probed before and after, with stats between the steps
        "for i in range(3):\n"
        "    t = f'/e/tmp{i}'; n = f'/d/obj{i}'\n"
        "    assert not os.access(n, os.F_OK)\n"
        "    fd = os.open(t, os.O_CREAT | os.O_WRONLY, 0o644); os.write(fd, b'x' * i)\n"
        "    os.fchmod(fd, 0o444); os.close(fd); os.lstat('/d/f0'); os.lstat('/e/f0')\n"
        "    os.link(t, n); os.unlink(t); os.lstat(n); os.lstat('/d/f2')",
    ],
)
def test_a_directory_changed_by_a_program_is_published_again_as_it_is_now(
    sb: Sandbox, change: str
) -> None:
    """After a change, the directories it touched are published again, complete: the names
    they now have are answered in the shim, and names they no longer have are ENOENT."""
    paths = [*ALL, "/d/obj0", "/d/obj1", "/d/obj2", "/e/tmp0", "/e/tmp2", "/d/f9", "/e/f9"]
    run(sb, change, paths)
    answered = [e for e in sb.journal if e.call == "lstat" and e.path in ("/d/f9", "/e/f9")]
    assert answered and all(e.from_snapshot for e in answered)  # ENOENT: complete again


def test_a_rename_over_a_file_with_another_name_shows_its_link_count_drop(sb: Sandbox) -> None:
    # the program gives /e/f2 a second name, then renames another file over that name
    seen = run(sb, "os.link('/e/f2', '/e/new'); os.lstat('/e/f2'); os.lstat('/e/f2');"
               "os.rename('/d/f3', '/e/new')", ALL)  # fmt: skip
    assert isinstance(seen["/e/f2"], list) and seen["/e/f2"][1] == 1
    assert isinstance(seen["/e/new"], list) and seen["/e/new"][2] == 3  # /d/f3's size


def test_a_hard_link_shows_the_new_count_under_both_names(sb: Sandbox) -> None:
    seen = run(sb, "os.link('/d/f2', '/e/new')", ALL)
    assert isinstance(seen["/d/f2"], list) and seen["/d/f2"][1] == 2
    assert from_snapshot(sb, "/d/sub/f1")[-1]


def test_removing_one_of_two_names_a_program_made_is_seen_through_the_other(sb: Sandbox) -> None:
    """git's loose objects: a temporary file linked to its name, then the temporary unlinked."""
    change = (
        "os.link('/d/f2', '/e/new'); os.chmod('/e/new', 0o600);"
        "[os.lstat(p) for p in ('/d/f2', '/e/new') * 3]; os.unlink('/d/f2')"
    )
    seen = run(sb, change, ALL)
    assert seen["/d/f2"] == "ENOENT"
    assert isinstance(seen["/e/new"], list) and seen["/e/new"][1] == 1
    assert stat.S_IMODE(seen["/e/new"][0]) == 0o600
    assert from_snapshot(sb, "/d/sub/f1")[-1]


def test_a_change_to_a_file_with_names_the_master_never_saw_empties_the_snapshot(
    sb: Sandbox,
) -> None:
    sb.fs.os.link("/d/f2", "/d/sub/f9")  # a name given through pyfakefs, not by a program
    seen = run(sb, "os.chmod('/d/f2', 0o600)", [*ALL, "/d/sub/f9"])
    assert isinstance(seen["/d/sub/f9"], list) and stat.S_IMODE(seen["/d/sub/f9"][0]) == 0o600


@pytest.mark.parametrize(
    "change",
    [
        "fd = os.open('/d/f2', os.O_RDONLY); os.fchmod(fd, 0o640)",
        "fd = os.open('/d/f2', os.O_RDONLY); os.utime(fd, ns=(5 * 10**9, 7 * 10**9))",
        "fd = os.open('/d/f2', os.O_RDONLY); os.chown(fd, 123, 456)",
        "fd = os.open('/d/sub', os.O_RDONLY); os.utime(fd, ns=(5 * 10**9, 7 * 10**9))",
        "fd = os.open('/d/sub', os.O_RDONLY); os.fchmod(fd, 0o751)",
        "os.link('/d/f2', '/e/new'); os.lstat('/e/new'); os.lstat('/e/new');"
        "fd = os.open('/e/new', os.O_RDONLY); os.fchmod(fd, 0o600)",
    ],
)
def test_a_change_by_descriptor_is_seen_by_path(sb: Sandbox, change: str) -> None:
    """tar restores each file's mode, owner and times through its descriptor."""
    run(sb, change, ALL)
    assert from_snapshot(sb, "/e/f1")[-1]


def test_a_directory_that_no_longer_lets_everyone_search_it_is_asked_about(sb: Sandbox) -> None:
    for change in ("os.chmod('/d/sub', 0o700)",
                   "fd = os.open('/d/sub', os.O_RDONLY); os.fchmod(fd, 0o750)"):  # fmt: skip
        sb.fs.os.chmod("/d/sub", 0o755)
        run(sb, change, ALL)
        assert not from_snapshot(sb, "/d/sub/f0")[-1]


def test_a_rename_of_a_directory_moves_everything_below_it(sb: Sandbox) -> None:
    paths = [*ALL, "/e/moved/f0", "/e/moved/f3"]
    seen = run(sb, "os.rename('/d/sub', '/e/moved')", paths)
    assert seen["/d/sub/f0"] == "ENOENT" and isinstance(seen["/e/moved/f0"], list)


def test_coreutils_changes_between_programs_are_seen(sb: Sandbox) -> None:
    """Each program publishes for the next; each change is seen by the one after it."""
    script = (
        "ls -lR / >/dev/null; stat -c '%n %a %h %s' /d/* /e/* >/dev/null;"
        "mv /d/f1 /e/f9; ln /d/f2 /e/f8; chmod 600 /e/f8; touch -d @1000 /d/f3; rm /d/f2;"
        "ln -s f0 /e/l0; mv -f /e/f0 /e/f3"
    )
    done = sb.run(["sh", "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    names = sorted(sb.fs.listdir("/d") + [f"../e/{n}" for n in sb.fs.listdir("/e")])
    listing = sb.run(["sh", "-c", "cd /d && stat -c '%n %f %h %s %Y %Z %i' " + " ".join(names)],
                     capture_output=True, text=True)  # fmt: skip
    assert listing.returncode == 0, listing.stderr
    expected = []
    for name in names:
        s = sb.fs.lstat(os.path.normpath(f"/d/{name}"))
        mode = FILE_TYPES[s.type] | s.mode
        times = f"{int(float(s.mtime))} {int(float(s.ctime))}"
        expected.append(f"{name} {mode:x} {s.nlink} {s.size} {times} {s.ino}")
    assert listing.stdout.splitlines() == expected


def test_tar_over_a_published_tree_leaves_what_the_model_says(sb: Sandbox, tmp_path: Path) -> None:
    """tar xf over existing files: it unlinks, creates, then sets mode, owner and times by
    descriptor, and a directory's at the end; the stats after it are the model's."""
    source = subprocess.run(["sh", "-c", "mkdir -p t/d/sub && cd t && echo a > d/f1 && "
                             "echo bb > d/new && chmod 600 d/f1 && touch -d @2000 d/f1 d/sub && "
                             "tar cf - d"], capture_output=True, check=True, cwd=str(tmp_path)
                            ).stdout  # fmt: skip
    sb.fs.create_file("/t.tar", contents=source)
    paths = ["/d", "/d/f0", "/d/f1", "/d/new", "/d/sub", "/d/sub/f0", "/e/f1"]
    run(sb, "import subprocess; subprocess.run(['tar', 'xf', '/t.tar', '-C', '/'], check=True)",
        paths)  # fmt: skip
    assert from_snapshot(sb, "/e/f1")[-1]


def tree(sb: Sandbox) -> None:
    """A tree of nested directories, one only its owner may search, a symlink to one."""
    for top in range(3):
        for sub in range(4):
            for index in range(3):
                sb.fs.create_file(f"/t/a{top}/b{sub}/f{index}", contents="x" * index)
    sb.fs.create_dir("/t/a1/b2/c/d/e")
    sb.fs.create_file("/t/secret/inside/f", contents="s")
    sb.fs.create_dir("/t/secret", perm_bits=0o700)  # (not through sb.fs.os: see edited_directly)
    sb.fs.create_symlink("/t/a0/to-a1", "../a1")


def find(sb: Sandbox, top: str = "/t") -> list[str]:
    """What find prints of the tree in the Sandbox, sorted; checked against the model."""
    done = sb.run(["find", top, "-printf", "%p %y %m %n %s\\n"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    seen = sorted(done.stdout.splitlines())
    expected = []
    walk = [top]
    while walk:
        path = walk.pop()
        s = sb.fs.lstat(path)
        kind = {"directory": "d", "regular": "f", "symlink": "l", "fifo": "p"}[s.type]
        expected.append(f"{path} {kind} {s.mode:o} {s.nlink} {s.size}")
        if kind == "d":
            walk += [f"{path}/{name}" for name in sb.fs.listdir(path)]
    assert seen == sorted(expected)
    return seen


def test_a_tree_is_listed_ahead_of_a_program_that_walks_it_and_as_the_model_says(
    sb: Sandbox,
) -> None:
    tree(sb)
    find(sb)
    opens = [e for e in sb.journal if e.call in ("open", "openat") and e.path is not None]
    opens = [e for e in opens if e.path.startswith("/t/")]
    # /t and its first directory are the master's; the rest were published ahead, and opened
    # by the shim (but the one only its owner may search, whose entries are never published)
    assert sum(not e.from_snapshot for e in opens) <= 4, [e.path for e in opens]
    sb.journal.clear()
    find(sb)  # a later program: every directory opened by the shim
    opens = [e for e in sb.journal if e.call in ("open", "openat") and e.path is not None]
    asked = [e.path for e in opens if not e.from_snapshot and e.path.startswith("/t")]
    # (not everyone may search /t/secret: the master's; ".." is a name the shim leaves to it)
    assert set(asked) <= {"/t/secret", "/t/secret/inside", "/t/a1/.."}, asked


def test_changes_after_a_listing_ahead_are_listed_by_the_next_program(sb: Sandbox) -> None:
    tree(sb)
    sb.run(["ls", "-lR", "/t"], stdout=subprocess.DEVNULL, check=True)
    script = ("touch /t/a1/b2/c/d/e/new && mv /t/a2/b3/f1 /t/a0/b0/moved && rm /t/a1/b0/f0 &&"
              "mkdir /t/a2/b1/dir && mkfifo /t/a2/fifo && chmod 700 /t/a0/b1 && find /t >/dev/null"
              "&& ln /t/a0/b0/f2 /t/a2/b0/hard && rm -r /t/a1/b2/c/d")  # fmt: skip
    done = sb.run(["sh", "-c", script], capture_output=True, text=True)
    assert done.stderr == ""
    find(sb)
    sb.fs.create_file("/t/a1/b3/by-the-test")
    find(sb)


def test_nothing_is_listed_ahead_under_a_fault_rule_on_open(sb: Sandbox) -> None:
    tree(sb)
    sb.fail("open", "/t/a1/b1*", errno.EIO)
    done = sb.run(["find", "/t"], capture_output=True, text=True)
    assert done.returncode != 0 and "/t/a1/b1" in done.stderr
    assert not any(e.from_snapshot for e in sb.journal if e.call == "open")


def test_names_a_program_finds_missing_publish_their_directory(sb: Sandbox) -> None:
    # git probes its object directories for names that are not there: after the master
    # answered two such lookups, the directory is published complete and the shim answers the
    # others (ENOENT) itself
    probe = (
        "import os\n"
        "for n in range(6):\n"
        "    try:\n"
        "        os.lstat(f'/e/missing{n}')\n"
        "    except FileNotFoundError:\n"
        "        print('ENOENT')\n"
    )
    done = sb.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["ENOENT"] * 6, done.stderr
    asked = [e.from_snapshot for e in sb.journal if (e.path or "").startswith("/e/missing")]
    assert asked[:2] == [False, False] and asked[2:] == [True] * 4, asked
