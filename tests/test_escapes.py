"""Escapes: real programs in a Sandbox try to reach the real host, and nothing may get there.

Every row of :data:`CORPUS` is one attempt by a real program (Python, sh, bash, or a C program
using the libc wrappers) to read, write or connect past the models: ``..`` past the root or out
of a mount, symlinks in the model pointing at host paths, ``/proc/*/root`` and ``cwd``, magic
links under ``/proc/self/fd``, directory descriptors of mounts and of shadow directories, rename,
link and symlink across the mount boundary, metadata changes of host files, shell redirections,
and connections to a real listener the test runs. Each row is judged from OUTSIDE the sandbox:

- the host tree the test made (a host-only directory with a canary file, and a directory
  mounted read-only into the sandbox) is unchanged: the same entries, contents, modes, owners
  and mtimes, and no new file anywhere in it;
- the canary's secret does not appear in anything the program printed (atime is unreliable);
- no stray file named after this run appeared in /tmp, /usr, /dev, / or a shadow directory;
- the test's real TCP, UDP, abstract and path unix listeners accepted and received nothing;
- the program saw the answer the row expects (an errno, a model answer) and a violation was or
  was not recorded, as the row says.

A row marked ``xfail(strict=True)`` with a reason starting ``REACHES THE HOST`` is an escape that
works today: the suite shows it until the shim or the Sandbox closes it (the reason names the
fix), and then the strict xfail fails so the mark gets removed.

What a preload cannot reach (README "Limits"): a test each below, first in this file:

- **static binaries** (and Go programs, which make system calls directly; no Go toolchain is
  installed here, so only the static C binary is shown): no ld.so, no LD_PRELOAD;
- **raw syscall(2)**: no libc wrapper runs;
- **io_uring**: the kernel performs the queued openat itself;
- **setuid/setgid programs** run without LD_PRELOAD in secure mode: the shim reports their exec
  with the file's mode and the Sandbox refuses it as a violation (this one is detected);
- ``mkfifo``/``mknod``, once calls glibc did not route through a wrapped public symbol, are
  wrapped now: a FIFO is made in the model and nothing reaches the disk (the ``mkstemp``
  family and ``tmpfile`` are wrapped too, rows in the corpus).

The first three *do* reach the host under the preload backend; they are ``xfail(strict=True)``
as documented limits, so the suite shows them. They write only into the test's own tmp_path.
Under the hybrid backend (``Sandbox(backend="hybrid")``, the seccomp supervisor) each is a pass,
tested below them, with children that run without ``LD_PRELOAD`` and a signal aimed at the test
process; ``test_escape_under_hybrid`` runs the whole corpus under it.
"""

from __future__ import annotations

import dataclasses
import errno
import glob
import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from libcfake import Sandbox, _hybrid
from libcfake.fs import DEFAULT_MOUNTS

#: Names of anything an escape might create outside tmp_path: unique to this test run.
NAME = f"libcfake-escape-{os.getpid()}-{uuid.uuid4().hex[:8]}"
#: Where such a name must never appear (globs); whatever matches is removed after the row.
STRAY_GLOBS = (
    f"/tmp/{NAME}*",
    f"/usr/{NAME}*",
    f"/dev/std{NAME}*",
    f"/dev/shm/{NAME}*",
    f"/{NAME}*",
    f"/dev/shm/libcfake-shadow-*/**/{NAME}*",
)

PYTHON_PRELUDE = """\
import errno, json, os, shutil, socket, subprocess, sys
W = json.loads(sys.argv[1])
H, M, NAME = W["host"], W["mount"], W["name"]
CANARY = H + "/canary"


def report(fn):
    try:
        got = fn()
    except OSError as error:
        print("RESULT", errno.errorcode.get(error.errno, error.errno))
        return
    print("RESULT OK", got)


def read(path):
    with open(path) as f:
        return f.read()


def write(path, mode="w"):
    with open(path, mode) as f:
        return f.write("pwned")


def dirfd(path):
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


def opath(path):
    return os.open(path, os.O_PATH)


def sock(family=socket.AF_INET, kind=socket.SOCK_STREAM):
    return socket.socket(family, kind)


"""
#: A C program making one attempt through the libc wrappers: ESCAPE COMMAND HOST MOUNT [ARG].
ESCAPE_C = r"""/* One escape attempt per command: escape COMMAND HOSTDIR MOUNTDIR [PORT].
 * Prints one line, "RESULT OK <what it got>" or "RESULT <errno name>". */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>
#include <utime.h>

static char host[1024], mnt[1024];

static const char *at(const char *dir, const char *name)
{
    static char buf[4][PATH_MAX];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, PATH_MAX, "%s/%s", dir, name);
    return b;
}

static int result(int ok, const char *what)
{
    if (ok)
        printf("RESULT OK %s\n", what ? what : "");
    else
        printf("RESULT %s\n", strerrorname_np(errno));
    return 0;
}

static int slurp_fd(int fd)
{
    char buf[256] = {0};
    if (fd < 0)
        return result(0, NULL);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    return n < 0 ? result(0, NULL) : result(1, buf);
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    const char *cmd = argv[1];
    snprintf(host, sizeof host, "%s", argv[2]);
    snprintf(mnt, sizeof mnt, "%s", argv[3]);
    const char *canary = at(host, "canary");
    if (!strcmp(cmd, "fopen")) {
        FILE *f = fopen(canary, "r");
        char line[256] = {0};
        return f && fgets(line, sizeof line, f) ? result(1, line) : result(0, NULL);
    }
    if (!strcmp(cmd, "fopen-write")) {
        FILE *f = fopen(canary, "w");
        return f ? result(fputs("pwned", f) >= 0 && fclose(f) == 0, "wrote") : result(0, NULL);
    }
    if (!strcmp(cmd, "opendir")) {
        DIR *d = opendir(host);
        if (!d)
            return result(0, NULL);
        char names[1024] = "";
        for (struct dirent *e; (e = readdir(d)) != NULL;)
            strncat(names, e->d_name, sizeof names - strlen(names) - 2), strcat(names, " ");
        return result(1, names);
    }
    if (!strcmp(cmd, "realpath")) {
        char out[PATH_MAX];
        return result(realpath(canary, out) != NULL, out);
    }
    if (!strcmp(cmd, "readlink")) {
        char out[PATH_MAX] = {0};
        return result(readlink(at(host, "link"), out, sizeof out - 1) >= 0, out);
    }
    if (!strcmp(cmd, "stat")) {
        struct stat st;
        char what[64];
        int ok = stat(canary, &st) == 0;
        snprintf(what, sizeof what, "size %lld", ok ? (long long)st.st_size : -1LL);
        return result(ok, what);
    }
    if (!strcmp(cmd, "creat"))
        return result(creat(at(host, "new"), 0644) >= 0, "created");
    if (!strcmp(cmd, "truncate"))
        return result(truncate(canary, 0) == 0, "truncated");
    if (!strcmp(cmd, "chmod"))
        return result(chmod(canary, 0600) == 0, "chmod");
    if (!strcmp(cmd, "chown"))
        return result(chown(canary, 1, 1) == 0, "chown");
    if (!strcmp(cmd, "utime"))
        return result(utime(canary, &(struct utimbuf){1, 1}) == 0, "utime");
    if (!strcmp(cmd, "unlink-mount"))
        return result(unlink(at(mnt, "mcanary")) == 0, "unlinked");
    if (!strcmp(cmd, "openat-usr")) { /* a dirfd of a passthrough mount, used to create */
        int dir = open("/usr", O_RDONLY | O_DIRECTORY);
        if (dir < 0)
            return result(0, NULL);
        return result(openat(dir, argv[4], O_CREAT | O_WRONLY, 0644) >= 0, "created");
    }
    if (!strcmp(cmd, "mkstemp")) {
        char tmpl[PATH_MAX];
        snprintf(tmpl, sizeof tmpl, "%s/tmpXXXXXX", host);
        return result(mkstemp(tmpl) >= 0, tmpl);
    }
    if (!strcmp(cmd, "mkdtemp")) {
        char tmpl[PATH_MAX];
        snprintf(tmpl, sizeof tmpl, "%s/dirXXXXXX", host);
        return result(mkdtemp(tmpl) != NULL, tmpl);
    }
    if (!strcmp(cmd, "mkfifo"))
        return result(mkfifo(at(host, "fifo"), 0644) == 0, "fifo");
    if (!strcmp(cmd, "syscall-openat")) /* raw syscall(2): no libc wrapper to intercept */
        return slurp_fd((int)syscall(SYS_openat, AT_FDCWD, canary, O_RDONLY));
    if (!strcmp(cmd, "open")) /* the same through the libc wrapper */
        return slurp_fd(open(canary, O_RDONLY));
    return 2;
}
"""

#: io_uring: an openat the kernel performs with no libc call at all.
URING_C = r"""/* io_uring: an IORING_OP_OPENAT the kernel performs, no libc call. uring PATH */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int ring = (int)syscall(__NR_io_uring_setup, 4, &p);
    if (ring < 0) {
        printf("RESULT UNAVAILABLE %s\n", strerrorname_np(errno));
        return 0;
    }
    size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (cq_size > sq_size)
        sq_size = cq_size; /* IORING_FEAT_SINGLE_MMAP: one mapping holds both rings */
    char *sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
                    IORING_OFF_SQ_RING);
    struct io_uring_sqe *sqes = mmap(NULL, p.sq_entries * sizeof *sqes, PROT_READ | PROT_WRITE,
                                     MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
    if (sq == MAP_FAILED || sqes == MAP_FAILED) {
        printf("RESULT UNAVAILABLE mmap\n");
        return 0;
    }
    char *cq = sq;
    memset(&sqes[0], 0, sizeof sqes[0]);
    sqes[0].opcode = IORING_OP_OPENAT;
    sqes[0].fd = AT_FDCWD;
    sqes[0].addr = (unsigned long)argv[1];
    sqes[0].len = 0644;
    sqes[0].open_flags = O_CREAT | O_WRONLY;
    unsigned *tail = (unsigned *)(sq + p.sq_off.tail);
    unsigned *mask = (unsigned *)(sq + p.sq_off.ring_mask);
    unsigned *array = (unsigned *)(sq + p.sq_off.array);
    array[*tail & *mask] = 0;
    __atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
    if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) {
        printf("RESULT UNAVAILABLE %s\n", strerrorname_np(errno));
        return 0;
    }
    unsigned head = *(unsigned *)(cq + p.cq_off.head);
    unsigned cmask = *(unsigned *)(cq + p.cq_off.ring_mask);
    struct io_uring_cqe *cqe = (struct io_uring_cqe *)(cq + p.cq_off.cqes) + (head & cmask);
    if (cqe->res < 0)
        printf("RESULT %s\n", strerrorname_np(-cqe->res));
    else
        printf("RESULT OK created\n");
    return 0;
}
"""


# -- the host the test makes, and how it is judged from outside ----------------------------


@dataclasses.dataclass
class World:
    """The real host around one sandbox: ``host`` exists only on the real disk (the canary and
    its secret), ``mount`` is mounted read-only into the sandbox; and real listeners."""

    root: Path
    host: Path
    mount: Path
    secret: str
    tcp: socket.socket
    udp: socket.socket
    abstract: socket.socket
    unix: socket.socket
    abstract_name: bytes

    def argument(self) -> str:
        """What a program is told about the world (the secret excluded), as JSON."""
        return json.dumps(
            {
                "host": str(self.host),
                "mount": str(self.mount),
                "name": NAME,
                "tcp": self.tcp.getsockname()[1],
                "udp": self.udp.getsockname()[1],
                "abstract": self.abstract_name.decode(),
                "unix": str(self.host / "sock"),
            }
        )

    def snapshot(self) -> dict[str, tuple[Any, ...]]:
        """Every entry under ``root``: type, mode, owner, size, mtime and contents' digest."""
        seen: dict[str, tuple[Any, ...]] = {}
        for directory, dirs, files in os.walk(self.root):
            for name in [*dirs, *files, ""]:
                path = os.path.join(directory, name) if name else directory
                info = os.lstat(path)
                digest: str | None = None
                if stat.S_ISREG(info.st_mode):
                    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                elif stat.S_ISLNK(info.st_mode):
                    digest = os.readlink(path)
                seen[os.path.relpath(path, self.root)] = (
                    info.st_mode, info.st_uid, info.st_gid, info.st_size, info.st_mtime_ns,
                    info.st_nlink, digest,
                )  # fmt: skip
        return seen

    def connections(self) -> list[str]:
        """What reached the real listeners: should stay empty."""
        reached = []
        for name, listener in (("tcp", self.tcp), ("abstract", self.abstract), ("unix", self.unix)):
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                continue
            reached.append(f"{name} listener accepted a connection")
            conn.close()
        try:
            data, peer = self.udp.recvfrom(4096)
        except BlockingIOError:
            pass
        else:
            reached.append(f"udp socket received {data!r} from {peer}")
        return reached

    def close(self) -> None:
        for sock in (self.tcp, self.udp, self.abstract, self.unix):
            sock.close()


def _listener(family: int, kind: int, address: Any) -> socket.socket:
    sock = socket.socket(family, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    sock.bind(address)
    if kind == socket.SOCK_STREAM:
        sock.listen(8)
    return sock


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    yield w
    w.close()


def make_world(tmp_path: Path) -> World:
    """The host directory (with the canary), the mounted one and the listeners, in tmp_path."""
    host, mount = tmp_path / "host", tmp_path / "mnt"
    host.mkdir()
    mount.mkdir()
    secret = f"HOST-SECRET-{uuid.uuid4().hex}"
    (host / "canary").write_text(secret + "\n")
    (host / "link").symlink_to(host / "canary")
    (mount / "mcanary").write_text("mounted, readable, never writable\n")
    (mount / "out").symlink_to(host)  # a symlink inside a mount that leads out of it
    abstract_name = f"\0{NAME}".encode()
    return World(
        root=tmp_path,
        host=host,
        mount=mount,
        secret=secret,
        tcp=_listener(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 0)),
        udp=_listener(socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 0)),
        abstract=_listener(socket.AF_UNIX, socket.SOCK_STREAM, abstract_name),
        unix=_listener(socket.AF_UNIX, socket.SOCK_STREAM, str(host / "sock")),
        abstract_name=abstract_name,
    )


def _strays() -> list[str]:
    return sorted({path for pattern in STRAY_GLOBS for path in glob.glob(pattern, recursive=True)})


def _remove(paths: list[str]) -> None:
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.unlink(path)


@pytest.fixture
def sb(world: World) -> Iterator[Sandbox]:
    with Sandbox(mounts=(*DEFAULT_MOUNTS, str(world.mount)), reply_timeout=20) as sandbox:
        yield sandbox


@pytest.fixture
def preload_sb(world: World) -> Iterator[Sandbox]:
    """The preload backend's Sandbox, whatever the default: its documented limits."""
    mounts = (*DEFAULT_MOUNTS, str(world.mount))
    with Sandbox(mounts=mounts, reply_timeout=20, backend="preload") as sandbox:
        yield sandbox


@pytest.fixture(scope="session")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The C programs: ``escape`` (dynamic), ``escape-static``, ``uring``."""
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        pytest.skip("no C compiler")
    out = tmp_path_factory.mktemp("escape-programs")
    (out / "escape.c").write_text(ESCAPE_C)
    (out / "uring.c").write_text(URING_C)
    flags = [cc, "-O1", "-Wall", "-Werror"]
    built = {
        "escape": [*flags, "-o", str(out / "escape"), str(out / "escape.c")],
        "uring": [*flags, "-o", str(out / "uring"), str(out / "uring.c")],
        "escape-static": [
            *flags,
            "-static",
            "-o",
            str(out / "escape-static"),
            str(out / "escape.c"),
        ],
    }
    paths = {}
    for name, command in built.items():
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode == 0:
            paths[name] = out / name
    if "escape" not in paths:
        pytest.skip("cannot compile the escape programs")
    return paths


@dataclasses.dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    result: str  # the first word after RESULT on the last RESULT line; "" if none
    violations: int


def attempt(sb: Sandbox, world: World, args: list[str]) -> Outcome:
    """Run one attempt and judge it from outside; the program's outcome for the row to check."""
    before = world.snapshot()
    try:
        done = sb.run(args, capture_output=True, text=True, timeout=60)
        after = world.snapshot()
    finally:
        strays = _strays()
        _remove(strays)
    reached = world.connections()
    output = done.stdout + done.stderr
    lines = [line.split() for line in done.stdout.splitlines() if line.startswith("RESULT")]
    result = lines[-1][1] if lines and len(lines[-1]) > 1 else ""
    changed = {
        path: (before.get(path), after.get(path))
        for path in before.keys() | after.keys()
        if before.get(path) != after.get(path)
    }
    assert not changed, f"the program changed the real disk: {changed}\n{output}"
    assert not strays, f"the program created real files: {strays}\n{output}"
    assert world.secret not in output, f"the program read the host's canary:\n{output}"
    assert not reached, f"the program reached a real listener: {reached}\n{output}"
    return Outcome(done.returncode, done.stdout, done.stderr, result, len(sb.violations))


# -- the corpus -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Row:
    """One attempt: ``kind`` "py" (Python code after PYTHON_PRELUDE), "sh"/"bash" (a script;
    $1 is the host directory, $2 the mount, $3 the stray NAME) or "c" (a command of ESCAPE_C);
    the RESULT words it may end with; whether a violation must (True), must not (False) or may
    (None) be recorded; and what the test arranges in the model first."""

    kind: str
    code: str
    results: frozenset[str]
    violation: bool | None = None
    setup: Callable[[Sandbox, World], None] | None = None


def py(code: str, *results: str, violation: bool | None = None, **kw: Any) -> Row:
    return Row("py", code, frozenset(results), violation, **kw)


def sh(script: str, *results: str, violation: bool | None = None, shell: str = "sh") -> Row:
    return Row(shell, script, frozenset(results), violation)


def c(command: str, *results: str, violation: bool | None = None) -> Row:
    return Row("c", command, frozenset(results), violation)


def reaches(row: Row, id: str, why: str) -> Any:
    """A row that reaches the host today: strict xfail naming the gap and the fix."""
    return pytest.param(
        row, id=id, marks=pytest.mark.xfail(strict=True, reason=f"REACHES THE HOST: {why}")
    )


def symlink(path: str, target: str) -> Callable[[Sandbox, World], None]:
    """Setup: a symlink in the model; ``{H}``, ``{M}`` in ``target``: the host dir, the mount."""

    def arrange(sandbox: Sandbox, w: World) -> None:
        sandbox.fs.create_symlink(path, target.format(H=w.host, M=w.mount))

    return arrange


ENOENT, EACCES, EROFS, EXDEV = "ENOENT", "EACCES", "EROFS", "EXDEV"
#: A thread with a descriptor table of its own (unshare(CLONE_FILES)) opens a mounted file
#: read-only, then reopens it for writing through /proc/thread-self/fd/N: that number names
#: nothing, or something else, in the process's (the main thread's) table.
THREAD_SELF_REOPEN = """\
import ctypes, threading
libc = ctypes.CDLL(None, use_errno=True)
def thread():
    if libc.unshare(0x400) != 0:  # CLONE_FILES
        print("RESULT UNSHARE", ctypes.get_errno())
        return
    fd = os.open(M + '/mcanary', os.O_RDONLY)
    report(lambda: os.write(os.open(f'/proc/thread-self/fd/{fd}', os.O_RDWR), b'pwned'))
t = threading.Thread(target=thread)
t.start()
t.join()
"""
REFUSED = ("ECONNREFUSED", "ENOENT", "EACCES", "EPERM", "ENETUNREACH")
PID = "os.getpid()"

CORPUS = [
    # .. past the root and out of mounts
    pytest.param(
        py("report(lambda: read('/../../..' + CANARY))", ENOENT, violation=False),
        id="dotdot-past-root",
    ),
    pytest.param(
        py("report(lambda: read('/usr/../..' + CANARY))", ENOENT, violation=False),
        id="dotdot-out-of-usr",
    ),
    pytest.param(
        py("report(lambda: write(M + '/../host/canary'))", ENOENT, violation=False),
        id="dotdot-out-of-mount-write",
    ),
    pytest.param(
        py("report(lambda: read('/' + CANARY))", ENOENT, violation=False), id="double-slash"
    ),
    pytest.param(
        py("os.chdir('/'); report(lambda: read('../../..' + CANARY))", ENOENT, violation=False),
        id="chdir-root-then-relative",
    ),
    pytest.param(
        sh('cd / && cd ../../.. && cat ".$1/canary"', "FAIL", violation=False),
        id="sh-cd-dotdot-relative",
    ),
    pytest.param(
        py(
            "fd = dirfd(M); report(lambda: os.open('../host/canary', os.O_RDONLY, dir_fd=fd))",
            ENOENT,
            violation=False,
        ),
        id="openat-mount-dirfd-dotdot",
    ),
    # libc wrappers from C, on host-only paths
    pytest.param(c("fopen", ENOENT, violation=False), id="c-fopen-read"),
    pytest.param(c("fopen-write", ENOENT, violation=False), id="c-fopen-write"),
    pytest.param(c("open", ENOENT, violation=False), id="c-open"),
    pytest.param(c("opendir", ENOENT, violation=False), id="c-opendir"),
    pytest.param(c("realpath", ENOENT, violation=False), id="c-realpath"),
    pytest.param(c("readlink", ENOENT, violation=False), id="c-readlink"),
    pytest.param(c("stat", ENOENT, violation=False), id="c-stat"),
    pytest.param(c("creat", ENOENT, violation=False), id="c-creat"),
    pytest.param(c("truncate", ENOENT, violation=False), id="c-truncate"),
    pytest.param(c("chmod", ENOENT, violation=False), id="c-chmod"),
    pytest.param(c("chown", ENOENT, violation=False), id="c-chown"),
    pytest.param(c("utime", ENOENT, violation=False), id="c-utime"),
    pytest.param(c("unlink-mount", EROFS, violation=True), id="c-unlink-in-mount"),
    pytest.param(c("openat-usr", EROFS, violation=True), id="c-openat-usr-dirfd-create"),
    pytest.param(c("mkstemp", ENOENT), id="c-mkstemp"),
    pytest.param(c("mkdtemp", ENOENT), id="c-mkdtemp"),
    # Python os.* and shutil
    pytest.param(
        py("report(lambda: os.listdir(H))", ENOENT, violation=False), id="py-listdir-host"
    ),
    pytest.param(
        py("report(lambda: shutil.copy(CANARY, '/tmp/c'))", ENOENT, violation=False),
        id="py-shutil-copy-out",
    ),
    pytest.param(
        py("report(lambda: shutil.rmtree(H))", ENOENT, violation=False), id="py-shutil-rmtree-host"
    ),
    pytest.param(
        py("report(lambda: shutil.move(M + '/mcanary', '/tmp/m'))", EROFS, violation=True),
        id="py-shutil-move-out-of-mount",
    ),
    pytest.param(
        py("report(lambda: os.truncate(M + '/mcanary', 0))", EROFS, violation=True),
        id="py-truncate-in-mount",
    ),
    pytest.param(
        py("report(lambda: os.chmod(M + '/mcanary', 0o600))", EROFS, violation=True),
        id="py-chmod-in-mount",
    ),
    pytest.param(
        py("report(lambda: os.chown(M + '/mcanary', 1, 1))", EROFS, violation=True),
        id="py-chown-in-mount",
    ),
    pytest.param(
        py("report(lambda: os.utime(M + '/mcanary', (1, 1)))", EROFS, violation=True),
        id="py-utime-in-mount",
    ),
    pytest.param(
        py(
            "open('/f', 'w').close(); report(lambda: os.rename('/f', M + '/f'))",
            EROFS,
            EXDEV,
            violation=True,
        ),
        id="rename-into-mount",
    ),
    pytest.param(
        py("report(lambda: os.rename(M + '/mcanary', '/m'))", EROFS, EXDEV, violation=True),
        id="rename-out-of-mount",
    ),
    pytest.param(
        py("report(lambda: os.link(M + '/mcanary', '/l'))", EROFS, EXDEV, violation=True),
        id="link-out-of-mount",
    ),
    pytest.param(
        py("report(lambda: os.symlink('/x', M + '/l'))", EROFS, violation=True),
        id="symlink-into-mount",
    ),
    pytest.param(
        py("fd = dirfd('/usr'); report(lambda: os.mkdir(NAME, dir_fd=fd))", EROFS, violation=True),
        id="mkdirat-usr-dirfd",
    ),
    # shell redirections and tools
    pytest.param(
        sh('echo pwned > "$1/canary"', "FAIL", violation=False), id="sh-redirect-truncate"
    ),
    pytest.param(sh('echo pwned >> "$1/canary"', "FAIL", violation=False), id="sh-redirect-append"),
    pytest.param(sh('cat < "$1/canary"', "FAIL", violation=False), id="sh-redirect-read"),
    pytest.param(
        sh('echo pwned > "$2/mcanary"', "FAIL", violation=True), id="sh-redirect-into-mount"
    ),
    pytest.param(sh('mkdir -p "/usr/$3/a/b"', "FAIL", violation=True), id="sh-mkdir-p-under-usr"),
    pytest.param(sh('touch "$2/mcanary"', "FAIL", violation=True), id="sh-touch-in-mount"),
    pytest.param(sh('rm -rf "$2/mcanary" "$1"', "FAIL"), id="sh-rm-rf"),
    pytest.param(
        sh('echo pwned > "/dev/tcp/127.0.0.1/$4"', "FAIL", violation=True, shell="bash"),
        id="bash-dev-tcp",
    ),
    # symlinks in the model that point at the host
    pytest.param(
        py(
            "report(lambda: read('/x'))",
            ENOENT,
            violation=False,
            setup=symlink("/x", "/etc/shadow"),
        ),
        id="model-symlink-etc-shadow",
    ),
    pytest.param(
        py(
            "report(lambda: read('/y'))", ENOENT, violation=False, setup=symlink("/y", "{H}/canary")
        ),
        id="model-symlink-host-file-read",
    ),
    pytest.param(
        py(
            "report(lambda: write('/y', 'r+'))",
            ENOENT,
            violation=False,
            setup=symlink("/y", "{H}/canary"),
        ),
        id="model-symlink-host-file-write",
    ),
    pytest.param(
        py("report(lambda: write('/d/new'))", ENOENT, violation=False, setup=symlink("/d", "{H}")),
        id="model-symlink-host-dir-create",
    ),
    pytest.param(
        py(
            "report(lambda: read('/pr' + CANARY))",
            ENOENT,
            EACCES,
            setup=symlink("/pr", "/proc/self/root"),
        ),
        id="model-symlink-proc-root",
    ),
    pytest.param(
        py(
            "report(lambda: write('/w'))",
            EROFS,
            violation=True,
            setup=symlink("/w", "{M}/mcanary"),
        ),
        id="model-symlink-into-mount-write",
    ),
    pytest.param(
        py("os.symlink(CANARY, '/s'); report(lambda: read('/s'))", ENOENT, violation=False),
        id="program-symlink-to-host",
    ),
    # /proc
    pytest.param(
        py("report(lambda: read('/proc/self/root' + CANARY))", EACCES, violation=True),
        id="proc-self-root",
    ),
    pytest.param(
        py("report(lambda: read('/proc/1/root' + CANARY))", EACCES, violation=True),
        id="proc-1-root",
    ),
    pytest.param(
        py("report(lambda: read('/proc/thread-self/root' + CANARY))", EACCES, violation=True),
        id="proc-thread-self-root",
    ),
    pytest.param(
        py("os.chdir('/'); report(lambda: os.listdir('/proc/self/cwd'))", EACCES, violation=True),
        id="proc-self-cwd",
    ),
    pytest.param(
        py(
            f"report(lambda: read(f'/proc/self/task/{{{PID}}}/root' + CANARY))",
            EACCES,
            violation=True,
        ),
        id="proc-task-root",
    ),
    pytest.param(
        py(
            "os.chdir('/'); "
            f"report(lambda: read(f'/proc/self/task/{{{PID}}}/cwd/../../..' + CANARY))",
            EACCES,
            ENOENT,
        ),
        id="proc-task-cwd-dotdot",
    ),
    pytest.param(
        py(
            "os.chdir('/'); report(lambda: sorted(os.listdir('/proc/self/cwd/..')))",
            EACCES,
            violation=True,
        ),
        id="proc-cwd-dotdot-lists-dev-shm",
    ),
    # magic links of real descriptors: /proc/self/fd/N, /dev/fd/N
    pytest.param(
        py(
            "fd = dirfd('/'); report(lambda: read(f'/proc/self/fd/{fd}/../../..' + CANARY))",
            EACCES,
            ENOENT,
        ),
        id="proc-fd-shadow-dotdot",
    ),
    pytest.param(
        py(
            "fd = dirfd(M); report(lambda: write(f'/proc/self/fd/{fd}/mcanary'))",
            EROFS,
            EACCES,
            violation=True,
        ),
        id="proc-fd-mount-dirfd-write",
    ),
    pytest.param(
        py(
            "fd = dirfd(M); report(lambda: write(f'/dev/fd/{fd}/new'))",
            EROFS,
            EACCES,
            violation=True,
        ),
        id="dev-fd-mount-dirfd-create",
    ),
    pytest.param(
        py(
            "fd = opath(M + '/mcanary'); report(lambda: write(f'/proc/self/fd/{fd}'))",
            EROFS,
            violation=True,
        ),
        id="opath-then-proc-fd-write",
    ),
    pytest.param(
        py(
            "fd = os.open(M + '/mcanary', os.O_RDONLY)\n"
            "report(lambda: os.write(os.open(f'/proc/self/fd/{fd}', os.O_RDWR), b'x'))",
            EROFS,
            violation=True,
        ),
        id="rdonly-fd-reopened-rdwr",
    ),
    pytest.param(
        py(
            "fd = opath(M + '/mcanary'); report(lambda: os.truncate(f'/proc/self/fd/{fd}', 0))",
            EROFS,
            EACCES,
            violation=True,
        ),
        id="opath-then-proc-fd-truncate",
    ),
    pytest.param(
        py(
            "fd = opath(M + '/mcanary'); report(lambda: os.chmod(f'/proc/self/fd/{fd}', 0o600))",
            EROFS,
            EACCES,
            violation=True,
        ),
        id="opath-then-proc-fd-chmod",
    ),
    pytest.param(
        # refused: paths through a descriptor's /proc link are not followed into the model either
        py(
            "fd = dirfd('/tmp'); report(lambda: write(f'/proc/self/fd/{fd}/' + NAME))", "OK", EACCES
        ),
        id="proc-fd-shadow-dir-create",
    ),
    pytest.param(
        py("report(lambda: write('/dev/std' + NAME))", EACCES, ENOENT),
        id="dev-std-prefix-create",
    ),
    # shadow directories
    pytest.param(
        py(
            "fd = dirfd('/')\nfor _ in range(6):\n    fd = os.open('..', os.O_RDONLY, dir_fd=fd)\n"
            "report(lambda: os.open(CANARY[1:], os.O_RDONLY, dir_fd=fd))",
            ENOENT,
            violation=False,
        ),
        id="shadow-openat-dotdot-repeatedly",
    ),
    pytest.param(
        py(
            "os.fchdir(dirfd('/'))\nfor _ in range(6):\n    os.chdir('..')\n"
            "report(lambda: read(CANARY[1:]))",
            ENOENT,
            violation=False,
        ),
        id="shadow-fchdir-dotdot",
    ),
    pytest.param(
        py("fd = dirfd('/'); report(lambda: os.mkdir('../../../' + NAME, dir_fd=fd))", "OK"),
        id="shadow-mkdirat-dotdot",
    ),
    # symlinks inside a mount that lead out of it
    pytest.param(
        py("report(lambda: read(M + '/out/canary'))", ENOENT, EACCES),
        id="mount-symlink-out",
    ),
    pytest.param(
        py("report(lambda: read(M + '/out/../host/canary'))", ENOENT, EACCES),
        id="mount-symlink-dotdot",
    ),
    # the path a call is routed by must be the one it changes
    pytest.param(
        py("report(lambda: os.symlink('/dev/null', H + '/sym'))", ENOENT, violation=False),
        id="symlink-with-device-target",
    ),
    pytest.param(
        py(
            "fd = dirfd(M); report(lambda: os.unlink(f'/proc/self/fd/{fd}/mcanary'))",
            EROFS,
            EACCES,
            violation=True,
        ),
        id="proc-fd-mount-dirfd-unlink",
    ),
    pytest.param(
        py(
            "fd = opath(M + '/mcanary')\n"
            "report(lambda: os.link(f'/proc/self/fd/{fd}', H + '/hard', follow_symlinks=True))",
            EROFS,
            EACCES,
            violation=True,
        ),
        id="proc-fd-linkat-follow",
    ),
    pytest.param(
        py("os.chdir(M); report(lambda: write('mcanary'))", EROFS, violation=True),
        id="chdir-mount-relative-write",
    ),
    pytest.param(
        py("os.chdir(M); report(lambda: read('out/canary'))", ENOENT, EACCES),
        id="chdir-mount-relative-symlink-out",
    ),
    pytest.param(
        py(
            "open('/f', 'w').close(); a, b = dirfd('/'), dirfd(M)\n"
            "report(lambda: os.rename('f', 'g', src_dir_fd=a, dst_dir_fd=b))",
            EROFS,
            EXDEV,
            violation=True,
        ),
        id="renameat-dirfd-into-mount",
    ),
    pytest.param(
        py("s = sock(socket.AF_UNIX); report(lambda: s.bind(H + '/bound'))", ENOENT),
        id="bind-unix-host-path",
    ),
    # one spelling for every path: each is reduced once, and every check made on that result
    pytest.param(
        sh('cat "//proc/self/root$1/canary"', "FAIL", violation=True),
        id="cat-double-slash-proc-root",
    ),
    pytest.param(
        sh('ls "//proc/self/root$1"', "FAIL", violation=True), id="ls-double-slash-proc-root"
    ),
    pytest.param(
        py("report(lambda: read('//proc/self/root' + CANARY))", EACCES, violation=True),
        id="double-slash-proc-self-root",
    ),
    pytest.param(
        py("report(lambda: os.listdir('//proc/self/root' + H))", EACCES, violation=True),
        id="double-slash-proc-root-listdir",
    ),
    pytest.param(
        py("report(lambda: read('//proc/thread-self/root' + CANARY))", EACCES, violation=True),
        id="double-slash-proc-thread-self-root",
    ),
    pytest.param(
        py("report(lambda: read('//proc/self/cwd/..' + CANARY))", EACCES, violation=True),
        id="double-slash-proc-cwd-dotdot",
    ),
    pytest.param(
        py(f"report(lambda: read(f'//proc/{{{PID}}}/root' + CANARY))", EACCES, violation=True),
        id="double-slash-proc-own-pid-root",
    ),
    pytest.param(
        py("report(lambda: read('/proc/./self/./root/.' + CANARY))", EACCES, violation=True),
        id="dot-components-proc-root",
    ),
    pytest.param(
        py("report(lambda: read('/.//proc///self//root' + CANARY))", EACCES, violation=True),
        id="slashes-and-dots-proc-root",
    ),
    pytest.param(
        py("report(lambda: read('//dev/../proc/self/root' + CANARY))", EACCES, violation=True),
        id="double-slash-dev-dotdot-proc-root",
    ),
    pytest.param(
        py(
            "fd = dirfd('/proc'); report(lambda: read(f'/dev/fd/{fd}/self/root' + CANARY))",
            EACCES,
            violation=True,
        ),
        id="dev-fd-of-proc-then-root",
    ),
    pytest.param(
        py(
            "fd = dirfd('//proc')\n"
            "report(lambda: os.open('self/root' + CANARY, os.O_RDONLY, dir_fd=fd))",
            EACCES,
            violation=True,
        ),
        id="openat-double-slash-proc-dirfd",
    ),
    pytest.param(
        py(
            "os.chdir('//proc'); report(lambda: read('self/root' + CANARY))", EACCES, violation=True
        ),
        id="chdir-double-slash-proc-relative",
    ),
    pytest.param(
        py(
            "os.chdir('//proc/self'); report(lambda: read('./root' + CANARY))",
            EACCES,
            violation=True,
        ),
        id="chdir-double-slash-proc-self-relative",
    ),
    pytest.param(
        py(
            "fd = opath(M + '/mcanary'); report(lambda: write(f'//dev/fd/{fd}'))",
            EROFS,
            violation=True,
        ),
        id="double-slash-dev-fd-reopen-mount-write",
    ),
    pytest.param(
        py(
            f"fd = opath(M + '/mcanary'); report(lambda: write(f'/proc/{{{PID}}}/fd/{{fd}}'))",
            EROFS,
            EACCES,
            violation=True,
        ),
        id="own-pid-fd-reopen-mount-write",
    ),
    pytest.param(
        py(THREAD_SELF_REOPEN, EROFS, violation=True),
        id="thread-self-fd-after-unshare-files-write",
    ),
    # a spelling must not pass the shim's passthrough table as "under the mount"
    pytest.param(
        py("report(lambda: read('/' + M + '/../host/canary'))", ENOENT, violation=False),
        id="double-slash-mount-dotdot",
    ),
    pytest.param(
        py("report(lambda: read(M + '/./../host/canary'))", ENOENT, violation=False),
        id="mount-dot-dotdot",
    ),
    pytest.param(
        py("report(lambda: read(M + '//..//host//canary'))", ENOENT, violation=False),
        id="mount-slashes-dotdot",
    ),
    pytest.param(
        py("report(lambda: read('/usr/./../' + CANARY))", ENOENT, violation=False),
        id="usr-dot-dotdot",
    ),
    pytest.param(
        py("report(lambda: write('/' + M + '/mcanary', 'r+'))", EROFS, violation=True),
        id="double-slash-mount-write",
    ),
    pytest.param(
        py("report(lambda: write(M + '/./mcanary', 'r+'))", EROFS, violation=True),
        id="dot-mount-write",
    ),
    # connections: refused and reported, the real listener accepts nothing
    pytest.param(
        py(
            "s = sock(); report(lambda: s.connect(('127.0.0.1', W['tcp'])))",
            *REFUSED,
            violation=True,
        ),
        id="connect-loopback-tcp",
    ),
    pytest.param(
        py(
            "s = sock(socket.AF_INET6); report(lambda: s.connect(('::ffff:127.0.0.1', W['tcp'])))",
            *REFUSED,
            violation=True,
        ),
        id="connect-v4-mapped-v6",
    ),
    pytest.param(
        py(
            "s = sock(kind=socket.SOCK_DGRAM); report(lambda: s.connect(('127.0.0.1', W['udp'])))",
            *REFUSED,
            violation=True,
        ),
        id="connect-udp",
    ),
    pytest.param(
        py(
            "s = sock(socket.AF_UNIX); report(lambda: s.connect('\\0' + W['abstract'][1:]))",
            *REFUSED,
            violation=True,
        ),
        id="connect-abstract-unix",
    ),
    pytest.param(
        py(
            "s = sock(socket.AF_UNIX); report(lambda: s.connect(W['unix']))",
            *REFUSED,
            violation=True,
        ),
        id="connect-unix-host-path",
    ),
    pytest.param(
        py(
            "s = sock(kind=socket.SOCK_DGRAM)\n"
            "report(lambda: s.sendto(b'x', ('127.0.0.1', W['udp'])))",
            *REFUSED,
            violation=True,
        ),
        id="udp-sendto-unconnected",
    ),
    pytest.param(
        py(
            "s = sock()\n"
            "report(lambda: s.sendto(b'x', socket.MSG_FASTOPEN, ('127.0.0.1', W['tcp'])))",
            *REFUSED,
            violation=True,
        ),
        id="tcp-fastopen-sendto",
    ),
]


def _args(row: Row, world: World, binaries: dict[str, Path]) -> list[str]:
    if row.kind == "py":
        return [sys.executable, "-c", PYTHON_PRELUDE + row.code, world.argument()]
    if row.kind in ("sh", "bash"):
        script = f"( {row.code} ) && echo 'RESULT OK' || echo 'RESULT FAIL'"
        port = str(world.tcp.getsockname()[1])
        return [row.kind, "-c", script, row.kind, str(world.host), str(world.mount), NAME, port]
    return [str(binaries["escape"]), row.code, str(world.host), str(world.mount), NAME]


@pytest.mark.parametrize("row", CORPUS)
def test_escape(row: Row, sb: Sandbox, world: World, binaries: dict[str, Path]) -> None:
    _escape(row, sb, world, binaries)


@pytest.mark.parametrize("row", CORPUS)
def test_escape_under_hybrid(
    row: Row, hybrid_sb: Sandbox, world: World, binaries: dict[str, Path]
) -> None:
    _escape(row, hybrid_sb, world, binaries)


def _escape(row: Row, sb: Sandbox, world: World, binaries: dict[str, Path]) -> None:
    if row.setup is not None:
        row.setup(sb, world)
    outcome = attempt(sb, world, _args(row, world, binaries))
    assert outcome.result in row.results, outcome
    if row.violation is not None:
        assert bool(outcome.violations) == row.violation, (outcome, sb.violations)


#: Spellings of /d/app.conf (the model holds /d/sub and the symlink /d/link -> sub), each read
#: by cat in /d: relative, absolute, with slashes, "." and ".." (after a symlink: the parent
#: of its target).
SPELLINGS = [
    "app.conf",
    "/d/app.conf",
    "//d/app.conf",
    "/d//app.conf",
    "/./d/./app.conf",
    "./app.conf",
    "sub/../app.conf",
    "/d/sub/../app.conf",
    "/d/link/../app.conf",
    "link/../app.conf",
    "//d/sub/..//./app.conf",
]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_meets_the_same_fault_rule_and_journal_subject(
    sb: Sandbox, world: World, spelling: str
) -> None:
    """The path a call names is reduced once: a fault rule on /d/app.conf refuses every
    spelling of it (its secret never reaches the output), and the journal names it so."""
    sb.fs.create_dir("/d/sub")
    sb.fs.create_symlink("/d/link", "sub")
    sb.fs.create_file("/d/app.conf", contents=world.secret)
    sb.fail("open", "/d/app.conf", errno.EACCES)
    done = sb.run(["cat", spelling], cwd="/d", capture_output=True, text=True, timeout=60)
    assert world.secret not in done.stdout + done.stderr
    assert "Permission denied" in done.stderr
    opened = [entry for entry in sb.journal if entry.call in ("open", "openat")]
    assert [entry.path for entry in opened if entry.fault] == ["/d/app.conf"], opened


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 40


# -- what a preload cannot reach (README "Limits") -------------------------------------------


@pytest.mark.xfail(
    strict=True,
    reason="DOCUMENTED LIMIT: raw syscall(2) bypasses libc and the shim (preload backend; "
    "the hybrid backend answers it: test_hybrid_raw_syscall_is_answered_by_the_model)",
)
def test_limit_raw_syscall_reaches_the_host(
    preload_sb: Sandbox, world: World, binaries: dict[str, Path]
) -> None:
    args = [str(binaries["escape"]), "syscall-openat", str(world.host), str(world.mount)]
    attempt(preload_sb, world, args)


@pytest.mark.xfail(
    strict=True,
    reason="DOCUMENTED LIMIT: a static binary has no ld.so and no LD_PRELOAD (Go programs too) "
    "(preload backend; the hybrid backend serves it: "
    "test_hybrid_static_binary_is_answered_by_the_model)",
)
def test_limit_static_binary_reaches_the_host(
    preload_sb: Sandbox, world: World, binaries: dict[str, Path]
) -> None:
    if "escape-static" not in binaries:
        pytest.skip("no static libc to link against")
    # started from inside the sandbox (sh execs it), as a program under test would be
    args = ["sh", "-c", f"{binaries['escape-static']} open {world.host} {world.mount}"]
    attempt(preload_sb, world, args)


@pytest.mark.xfail(
    strict=True,
    reason="DOCUMENTED LIMIT: io_uring operations are done by the kernel (preload "
    "backend; the hybrid backend refuses io_uring: test_hybrid_io_uring_is_refused_as_a_violation)",
)
def test_limit_io_uring_reaches_the_host(
    preload_sb: Sandbox, world: World, binaries: dict[str, Path]
) -> None:
    if "uring" not in binaries:
        pytest.skip("cannot build the io_uring program")
    probe = subprocess.run(
        [str(binaries["uring"]), str(world.root / "probe")], capture_output=True, text=True
    )
    if "UNAVAILABLE" in probe.stdout:
        pytest.skip(f"io_uring is not available here: {probe.stdout.strip()}")
    os.unlink(world.root / "probe")
    attempt(preload_sb, world, [str(binaries["uring"]), str(world.host / "uring-created")])


def test_limit_setuid_programs_are_refused_as_a_violation(
    sb: Sandbox, world: World, binaries: dict[str, Path]
) -> None:
    """A setuid program would run without the shim: its exec is refused and reported."""
    suid = world.host / "escape-suid"
    shutil.copy(binaries["escape"], suid)
    suid.chmod(0o4755)
    code = "report(lambda: subprocess.run([H + '/escape-suid', 'open', H, M]))"
    outcome = attempt(sb, world, [sys.executable, "-c", PYTHON_PRELUDE + code, world.argument()])
    assert outcome.result == "EPERM", outcome
    assert any(v.call == "exec" for v in sb.violations), sb.violations


def test_limit_mkfifo_reaches_the_host(
    sb: Sandbox, world: World, binaries: dict[str, Path]
) -> None:
    attempt(sb, world, [str(binaries["escape"]), "mkfifo", str(world.host), str(world.mount)])


# -- under the hybrid backend: the kernel's filter closes what the preload cannot reach ------


@pytest.fixture
def hybrid_sb(world: World) -> Iterator[Sandbox]:
    why = _hybrid.unavailable()
    if why is not None:
        pytest.skip(f"no hybrid backend here: {why}")
    mounts = (*DEFAULT_MOUNTS, str(world.mount))
    with Sandbox(mounts=mounts, reply_timeout=20, backend="hybrid") as sandbox:
        yield sandbox


def test_hybrid_raw_syscall_is_answered_by_the_model(
    hybrid_sb: Sandbox, world: World, binaries: dict[str, Path]
) -> None:
    args = [str(binaries["escape"]), "syscall-openat", str(world.host), str(world.mount)]
    assert attempt(hybrid_sb, world, args).result == "ENOENT"  # the model has no such file
    assert any(e.symbol == "openat" for e in hybrid_sb.journal)


def test_hybrid_static_binary_is_answered_by_the_model(
    hybrid_sb: Sandbox, world: World, binaries: dict[str, Path]
) -> None:
    if "escape-static" not in binaries:
        pytest.skip("no static libc to link against")
    args = ["sh", "-c", f"{binaries['escape-static']} open {world.host} {world.mount}"]
    assert attempt(hybrid_sb, world, args).result == "ENOENT"


def test_hybrid_io_uring_is_refused_as_a_violation(
    hybrid_sb: Sandbox, world: World, binaries: dict[str, Path]
) -> None:
    if "uring" not in binaries:
        pytest.skip("cannot build the io_uring program")
    outcome = attempt(hybrid_sb, world, [str(binaries["uring"]), str(world.host / "created")])
    assert outcome.stdout.strip() == "RESULT UNAVAILABLE EPERM", outcome
    assert [v.call for v in hybrid_sb.violations] == ["io_uring_setup"]
    assert "io_uring" in hybrid_sb.violations[0].reason


def test_hybrid_a_signal_to_the_test_process_is_refused(hybrid_sb: Sandbox, world: World) -> None:
    """kill(getppid(), SIGSTOP) would stop the test (under the preload it does: not run)."""
    code = "import signal\nreport(lambda: os.kill(os.getppid(), signal.SIGSTOP))"
    outcome = attempt(hybrid_sb, world, [sys.executable, "-c", PYTHON_PRELUDE + code,
                                         world.argument()])  # fmt: skip
    assert outcome.result == "EPERM", outcome
    assert [v.call for v in hybrid_sb.violations] == ["kill"]


@pytest.mark.parametrize(
    ("call", "code"),
    [
        ("ptrace", "report(lambda: check(libc.ptrace(16, os.getppid(), 0, 0)))"),
        ("process_vm_readv",
         "report(lambda: check(libc.process_vm_readv(os.getppid(), None, 0, None, 0, 0)))"),
        ("pidfd_open", "report(lambda: os.pidfd_open(os.getppid()))"),
        ("tgkill", "report(lambda: check(libc.tgkill(os.getppid(), os.getppid(), 19)))"),
    ],
)  # fmt: skip
def test_hybrid_calls_aimed_at_the_test_process_are_refused(
    call: str, code: str, hybrid_sb: Sandbox, world: World
) -> None:
    """ptrace, process_vm_*, pidfd_* and signals at the test process: refused, violations (their
    target is a register: aimed inside the sandbox's tree, they go on)."""
    prelude = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "def check(r):\n    if r == -1:\n        e = ctypes.get_errno()\n"
        "        raise OSError(e, os.strerror(e))\n    return r\n"
    )
    args = [sys.executable, "-c", PYTHON_PRELUDE + prelude + code, world.argument()]
    outcome = attempt(hybrid_sb, world, args)
    assert outcome.result == "EPERM", outcome
    assert [v.call for v in hybrid_sb.violations] == [call]


#: Children started without LD_PRELOAD, each printing RESULT OK if it read the canary.
WITHOUT_PRELOAD = {
    "system-after-unsetenv": py(
        "import ctypes\nlibc = ctypes.CDLL(None)\nlibc.unsetenv(b'LD_PRELOAD')\n"
        "rc = libc.system(('cat ' + CANARY).encode())\nprint('RESULT', 'OK' if rc == 0 else 'FAIL')"
    ),
    "env-i": sh('env -i /bin/cat "$1/canary"'),
}


@pytest.mark.parametrize(
    ("name", "backend"),
    [
        pytest.param("system-after-unsetenv", "preload", marks=pytest.mark.xfail(
            strict=True, reason="DOCUMENTED LIMIT: system() after unsetenv runs without the "
            "shim (closed by the hybrid backend)")),
        ("system-after-unsetenv", "hybrid"),
        ("env-i", "preload"),  # the exec family keeps LD_PRELOAD in a scrubbed environment
        ("env-i", "hybrid"),
    ],
)  # fmt: skip
def test_children_without_ld_preload_stay_served(
    name: str, backend: str, world: World, binaries: dict[str, Path]
) -> None:
    if backend == "hybrid" and _hybrid.unavailable() is not None:
        pytest.skip(f"no hybrid backend here: {_hybrid.unavailable()}")
    mounts = (*DEFAULT_MOUNTS, str(world.mount))
    with Sandbox(mounts=mounts, reply_timeout=20, backend=backend) as sandbox:
        outcome = attempt(sandbox, world, _args(WITHOUT_PRELOAD[name], world, binaries))
    assert outcome.result == "FAIL", outcome
