"""The shim's cache of passthrough verdicts: real programs calling again and again on a mount.

A read-only call on a path under a mount is done by the program itself, after the shim checked
where the kernel really goes (a symlink inside a mount may lead out of every mount). The shim
keeps the paths found to stay under the mounts, keyed by the exact path text and whether the last
symlink is followed, so later calls skip the check. These tests show that the cached calls still
give the real answers, from many threads and from signal handlers, and that a symlink leading out
of a mount is refused on the second and every later call too: only positive verdicts are kept.
"""

from __future__ import annotations

import collections
import errno
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from libcfake import Sandbox
from libcfake.fs import DEFAULT_MOUNTS

PROGRAM_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* One call: "ok DETAIL" or "err ERRNO". DETAIL: the inode for stat, lstat and access; the
 * first line of the file for open. */
static void call(const char *op, const char *path, char *out, size_t size)
{
    struct stat st;
    int r = -1;
    char text[128] = "";
    if (strcmp(op, "stat") == 0 || strcmp(op, "access") == 0)
        r = stat(path, &st);
    if (r == 0 && strcmp(op, "access") == 0)
        r = access(path, R_OK);
    if (strcmp(op, "lstat") == 0)
        r = lstat(path, &st);
    if (strcmp(op, "open") == 0) {
        int fd = open(path, O_RDONLY);
        r = fd < 0 ? -1 : 0;
        if (fd >= 0) {
            ssize_t n = read(fd, text, sizeof text - 1);
            text[n > 0 ? n : 0] = '\0';
            text[strcspn(text, "\n")] = '\0';
            close(fd);
        }
    }
    if (r < 0)
        snprintf(out, size, "err %d", errno);
    else if (strcmp(op, "open") == 0)
        snprintf(out, size, "ok %s", text);
    else
        snprintf(out, size, "ok %lu", (unsigned long)st.st_ino);
}

/* ===== calls N OP PATH [OP PATH ...]: the list N times, one line per call: OP PATH RESULT */
static int calls(int argc, char **argv)
{
    long rounds = atol(argv[2]);
    for (long i = 0; i < rounds; i++)
        for (int a = 3; a + 1 < argc; a += 2) {
            char out[160];
            call(argv[a], argv[a + 1], out, sizeof out);
            printf("%s %s %s\n", argv[a], argv[a + 1], out);
        }
    return 0;
}

/* ===== threads T N DIR FILES: T threads, each N times: stat DIR/same, then one of DIR/f0 ..
 * DIR/f{FILES-1} in turn (each thread starting elsewhere). Prints the inode of every path (from
 * main, before the threads start), then how many of the threads' stats failed or gave another */
static const char *dir;
static long calls_each, files;
static unsigned long *inodes; /* [files + 1]: f0 .. f{files-1}, then same */

static void path_of(long i, char *buf, size_t size)
{
    if (i == files)
        snprintf(buf, size, "%s/same", dir);
    else
        snprintf(buf, size, "%s/f%ld", dir, i);
}

static int stat_is(long i)
{
    char path[512];
    struct stat st;
    path_of(i, path, sizeof path);
    return stat(path, &st) == 0 && st.st_ino == inodes[i];
}

static void *stat_loop(void *start)
{
    long bad = 0;
    for (long k = 0; k < calls_each; k++)
        bad += !stat_is(files) + !stat_is(((long)start + k) % files);
    return (void *)bad;
}

static int threads(char **argv)
{
    int count = atoi(argv[2]);
    calls_each = atol(argv[3]);
    dir = argv[4];
    files = atol(argv[5]);
    inodes = calloc((size_t)files + 1, sizeof *inodes);
    for (long i = 0; i <= files; i++) {
        char path[512];
        struct stat st;
        path_of(i, path, sizeof path);
        if (stat(path, &st) != 0)
            return 1;
        inodes[i] = st.st_ino;
        printf("%s %lu\n", path, (unsigned long)st.st_ino);
    }
    pthread_t ids[64];
    for (long t = 0; t < count && t < 64; t++)
        pthread_create(&ids[t], NULL, stat_loop, (void *)(t * 77));
    long bad = 0;
    for (int t = 0; t < count && t < 64; t++) {
        void *result;
        pthread_join(ids[t], &result);
        bad += (long)result;
    }
    printf("mismatches %ld\n", bad);
    return 0;
}

/* ===== signals PATH ESCAPE N: a timer's signal handler stats PATH while the program stats PATH
 * and, every 100th time, opens ESCAPE (which must fail); prints the counts */
static const char *signal_path;
static volatile sig_atomic_t handled, handler_failed;

static void on_alarm(int sig)
{
    (void)sig;
    int saved = errno;
    struct stat st;
    if (stat(signal_path, &st) != 0)
        handler_failed = 1;
    handled = handled + 1;
    errno = saved;
}

static int signals(char **argv)
{
    signal_path = argv[2];
    long n = atol(argv[4]);
    struct sigaction sa = {.sa_handler = on_alarm, .sa_flags = SA_RESTART};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval every = {{0, 200}, {0, 200}};
    setitimer(ITIMER_REAL, &every, NULL);
    long ok = 0, escaped = 0;
    for (long i = 0; i < n || handled < 10; i++) {
        struct stat st;
        ok += stat(signal_path, &st) == 0;
        if (i % 100 == 0) {
            int fd = open(argv[3], O_RDONLY);
            escaped += fd >= 0;
            if (fd >= 0)
                close(fd);
        }
        if (i > 100 * n)
            break;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("ok %ld escaped %ld handled %d handler_failed %d\n", ok, escaped, (int)handled,
           (int)handler_failed);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (argc >= 3 && strcmp(argv[1], "calls") == 0)
        return calls(argc, argv);
    if (argc == 6 && strcmp(argv[1], "threads") == 0)
        return threads(argv);
    if (argc == 5 && strcmp(argv[1], "signals") == 0)
        return signals(argv);
    fprintf(stderr, "usage: see the test\n");
    return 2;
}
"""


@pytest.fixture(scope="session")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        pytest.skip("no C compiler")
    out = tmp_path_factory.mktemp("passthrough-cache")
    (out / "pcache.c").write_text(PROGRAM_C)
    exe = out / "pcache"
    subprocess.run([cc, "-O1", "-Wall", "-Werror", "-pthread", "-o", exe, f"{exe}.c"], check=True)
    return exe


class World:
    """A host directory never mounted, holding a secret, and a mounted one with symlinks out."""

    def __init__(self, root: Path) -> None:
        self.host = root / "host"
        self.mount = root / "mnt"
        self.secret = f"HOST-SECRET-{uuid.uuid4().hex}"
        self.host.mkdir()
        self.mount.mkdir()
        (self.host / "canary").write_text(self.secret + "\n")
        (self.mount / "same").write_text("mounted\n")
        (self.mount / "inside").symlink_to(self.mount / "same")  # stays in the mount
        (self.mount / "link").symlink_to(self.host / "canary")  # leads out of every mount
        (self.mount / "out").symlink_to(self.host)  # a directory out of every mount


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


@pytest.fixture
def sb(world: World) -> Iterator[Sandbox]:
    with Sandbox(mounts=(*DEFAULT_MOUNTS, str(world.mount)), reply_timeout=20) as sandbox:
        yield sandbox


def run_calls(sb: Sandbox, program: Path, rounds: int, *ops: tuple[str, Path]) -> list[str]:
    """The program's answers, one "OP PATH RESULT" line per call, the list ``rounds`` times."""
    args = [str(program), "calls", str(rounds)]
    for op, path in ops:
        args += [op, str(path)]
    done = sb.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def forwarded(sb: Sandbox, path: Path) -> list[str]:
    """The calls on ``path`` the shim forwarded to the master (not done locally)."""
    return [entry.call for entry in sb.journal if str(path) in map(str, entry.arguments)]


def test_repeated_calls_on_a_mount_give_the_real_answers_without_round_trips(
    sb: Sandbox, world: World, program: Path
) -> None:
    """200 rounds of calls on a file, on a symlink to it inside the mount and on a missing
    name: each call has the host's answer, and none of them reached the master."""
    same, inside, missing = world.mount / "same", world.mount / "inside", world.mount / "missing"
    ino = os.stat(same).st_ino
    lines = run_calls(
        sb, program, 200,
        ("stat", same), ("lstat", same), ("access", same), ("open", same),
        ("stat", inside), ("open", inside), ("lstat", inside),
        ("stat", missing), ("open", missing),
    )  # fmt: skip
    counts = collections.Counter(lines)
    assert counts == {
        f"stat {same} ok {ino}": 200,
        f"lstat {same} ok {ino}": 200,
        f"access {same} ok {ino}": 200,
        f"open {same} ok mounted": 200,
        f"stat {inside} ok {ino}": 200,
        f"open {inside} ok mounted": 200,
        f"lstat {inside} ok {os.lstat(inside).st_ino}": 200,
        f"stat {missing} err {errno.ENOENT}": 200,
        f"open {missing} err {errno.ENOENT}": 200,
    }
    for path in (same, inside, missing):
        assert forwarded(sb, path) == []  # all done by the program itself


@pytest.mark.parametrize("escape", ["link", "out/canary"])
def test_a_symlink_out_of_a_mount_is_refused_on_every_call(
    sb: Sandbox, world: World, program: Path, escape: str
) -> None:
    """What the symlink leads to is out of every mount: each call that follows it is forwarded
    and the model answers, the first time and every later time. ``link`` itself lies in the
    mount, so its lstat passes through and is kept: that verdict must not count for the calls
    that follow the link. Behind ``out/canary`` even the lstat leads out."""
    path = world.mount / escape
    lines = run_calls(
        sb, program, 5, ("lstat", path), ("open", path), ("stat", path), ("lstat", path)
    )
    refused = {f"err {errno.ENOENT}", f"err {errno.EACCES}"}
    for line in lines:
        op, _, result = line.split(" ", 2)
        assert world.secret not in line
        if op == "lstat" and escape == "link":
            assert result.startswith("ok ")  # the symlink in the mount, not its target
        else:
            assert result in refused, line
    following = [call for call in forwarded(sb, path) if call in ("open", "openat", "stat")]
    assert len(following) == 5 * 2  # every open and stat went to the master, none ran locally


def test_many_threads_stat_the_same_and_many_paths_of_a_mount(
    sb: Sandbox, world: World, program: Path
) -> None:
    """8 threads, each with 1000 stats of one path and 1000 more over 600 paths (more than the
    cache holds, so verdicts are replaced all the time): every answer is the real inode."""
    files = 600
    for index in range(files):
        (world.mount / f"f{index}").write_text(str(index))
    done = sb.run(
        [str(program), "threads", "8", "1000", str(world.mount), str(files)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    *seen, last = done.stdout.splitlines()
    assert last == "mismatches 0"
    assert len(seen) == files + 1
    for line in seen:
        path, ino = line.rsplit(" ", 1)
        assert int(ino) == os.stat(path).st_ino
    assert forwarded(sb, world.mount / "same") == []


def test_a_signal_handler_interrupting_a_cached_call_still_gets_its_answer(
    sb: Sandbox, world: World, program: Path
) -> None:
    """A timer fires every 200 us; its handler stats the mount path the program stats in a
    loop, at times while the program's own check holds that path's cache slot: no deadlock,
    no wrong answer, and the symlink out of the mount stays refused throughout."""
    n = 20_000
    done = sb.run(
        [str(program), "signals", str(world.mount / "same"), str(world.mount / "link"), str(n)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    result = dict(zip(words[::2], map(int, words[1::2]), strict=True))
    assert result["ok"] >= n
    assert result["escaped"] == 0
    assert result["handled"] >= 10
    assert result["handler_failed"] == 0
