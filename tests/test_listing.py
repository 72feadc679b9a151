"""Listing a virtual directory again after it changed shows the change.

The master remembers what it last put in each shadow directory (libcfake/_shadow.py) and skips
the disk when a directory is listed again unchanged; these cases change the model between two
listings, the ways a test or a program does, and check that ``ls`` sees the model each time.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Callable, Iterator

import pytest

from libcfake import Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(reply_timeout=20) as sandbox:
        sandbox.fs.create_file("/d/keep.txt")
        sandbox.fs.create_file("/d/gone.txt")
        sandbox.fs.create_dir("/d/sub")
        sandbox.fs.create_file("/d/sub/inner.txt")
        yield sandbox


def listing(sb: Sandbox, path: str) -> list[str]:
    """What ``ls -A -F`` shows of ``path``: names, "/" after directories, "@" after symlinks."""
    result = sb.run(["ls", "-A", "-F", path], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def model_listing(sb: Sandbox, path: str) -> list[str]:
    """The same from the model."""
    names = []
    for name in sb.fs.listdir(path):
        mode = sb.fs.os.lstat(f"{path}/{name}").st_mode
        names.append(name + ("/" if stat.S_ISDIR(mode) else "@" if stat.S_ISLNK(mode) else ""))
    return sorted(names)


CHANGES: dict[str, Callable[[Sandbox], object]] = {
    "a file removed by the test": lambda sb: sb.fs.remove("/d/gone.txt"),
    "a file added by the test": lambda sb: sb.fs.create_file("/d/new.txt"),
    "a file removed by a program": lambda sb: sb.run(["rm", "/d/gone.txt"], check=True),
    "a directory made by a program": lambda sb: sb.run(["mkdir", "/d/made"], check=True),
    "a directory replaced by a file": lambda sb: (
        sb.run(["rm", "-r", "/d/sub"], check=True),
        sb.fs.create_file("/d/sub"),
    ),
    "a file replaced by a directory": lambda sb: (
        sb.fs.remove("/d/gone.txt"),
        sb.fs.create_dir("/d/gone.txt"),
    ),
    "a file replaced by a symlink": lambda sb: (
        sb.fs.remove("/d/gone.txt"),
        sb.fs.create_symlink("/d/gone.txt", "keep.txt"),
    ),
    "nothing": lambda sb: None,
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_directory_listed_again_shows_the_change(sb: Sandbox, change: str) -> None:
    assert listing(sb, "/d") == model_listing(sb, "/d")
    CHANGES[change](sb)
    assert listing(sb, "/d") == model_listing(sb, "/d")


def test_a_directory_made_again_lists_its_entries(sb: Sandbox) -> None:
    assert listing(sb, "/d/sub") == ["inner.txt"]
    sb.run(["rm", "-r", "/d/sub"], check=True)
    sb.fs.create_file("/d/sub")
    assert listing(sb, "/d") == model_listing(sb, "/d")  # sub: a file now
    sb.fs.remove("/d/sub")
    sb.fs.create_file("/d/sub/inner.txt")  # the same directory as at first
    assert listing(sb, "/d") == model_listing(sb, "/d")
    assert listing(sb, "/d/sub") == ["inner.txt"]


def test_entering_a_directory_does_not_leave_it_in_its_parents_listing(sb: Sandbox) -> None:
    sb.fs.create_dir("/e")
    assert listing(sb, "/e") == []
    sb.fs.create_dir("/e/a/b")
    assert sb.run(["pwd"], cwd="/e/a/b", capture_output=True, text=True).stdout == "/e/a/b\n"
    sb.fs.remove("/e/a/b")
    sb.fs.remove("/e/a")
    assert listing(sb, "/e") == []


# -- inode numbers (shim/listing.c): the model's in every listing ---------------------------

#: Prints, for each entry os.scandir lists in a directory, its name and whether its inode
#: number is the one lstat gives.
SCANDIR_AGREES = (
    "import os, sys\n"
    "for d in sys.argv[1:]:\n"
    "  print(sorted((e.name, e.inode() == os.lstat(e.path).st_ino) for e in os.scandir(d)))"
)


def scandir_agrees(sb: Sandbox, *directories: str) -> list[str]:
    argv = [sys.executable, "-c", SCANDIR_AGREES, *directories]
    result = sb.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def readdir_trips(sb: Sandbox) -> list[str | None]:
    """The entries whose inode numbers the shim asked the master for (not in the snapshot)."""
    return [entry.path for entry in sb.journal if entry.call == "readdir"]


def test_a_listing_takes_inode_numbers_from_the_snapshot(sb: Sandbox) -> None:
    written = "for n in 1 2 3; do echo $n > /d/w$n; done; ln /d/w1 /d/sub/w1"
    sb.run(["sh", "-c", written], check=True)
    sb.fs.create_file("/d/sub/made.txt")
    sb.fs.os.link("/d/keep.txt", "/d/sub/keep.txt")
    before = len(readdir_trips(sb))
    assert scandir_agrees(sb, "/d", "/d/sub") == [
        "[('gone.txt', True), ('keep.txt', True), ('sub', True), "
        "('w1', True), ('w2', True), ('w3', True)]",
        "[('inner.txt', True), ('keep.txt', True), ('made.txt', True), ('w1', True)]",
    ]
    # files programs wrote are published by name and inode number only: no round trip for
    # them (nor for "." and "..": a listed directory's parent is published with it)
    assert readdir_trips(sb)[before:] == []


def test_a_listing_asks_the_master_what_the_snapshot_does_not_say(sb: Sandbox) -> None:
    sb.fs.os.chmod("/d/sub", 0o750)  # not searchable by all: not published
    sb.fs.os.link("/d/keep.txt", "/d/sub/keep.txt")
    assert scandir_agrees(sb, "/d/sub") == ["[('inner.txt', True), ('keep.txt', True)]"]
    assert sorted(readdir_trips(sb)) == ["/d/sub/.", "/d/sub/..", "/d/sub/inner.txt",
                                         "/d/sub/keep.txt"]  # fmt: skip


def test_under_a_fault_rule_on_stat_a_listing_still_needs_no_round_trip(sb: Sandbox) -> None:
    sb.fail("lstat", "/d/keep.txt", errno.EIO)
    assert scandir_agrees(sb, "/d/sub") == ["[('inner.txt', True)]"]
    assert readdir_trips(sb) == []  # entries named with their inode numbers only
    listed = sb.run(["ls", "-l", "/d"], capture_output=True, text=True)
    assert "'/d/keep.txt': Input/output error" in listed.stderr  # every stat still the master's
    assert [
        e.from_snapshot for e in sb.journal if e.call == "lstat" and e.path == "/d/sub/inner.txt"
    ] == [False]


def test_a_listing_shows_a_host_mount_by_the_hosts_inode_number() -> None:
    with Sandbox(reply_timeout=20) as sb:
        listed = sb.run(["ls", "-ai", "/"], capture_output=True, text=True, check=True).stdout
        inodes = {name: int(ino) for ino, name in (line.split() for line in listed.splitlines())}
        assert inodes["usr"] == os.lstat("/usr").st_ino  # a mount: the host's directory
        assert inodes["etc"] == sb.fs.os.lstat("/etc").st_ino  # the model's, with mounts in it
        assert not sb.violations
