"""The supervisor's adapter (libcfake._supervisor) on a real static program under libcfake-launch.

A handler answers the trapped calls from a small dict model, in the shim's vocabulary (the same
``function`` names and arguments), and each test checks from outside what the program printed
and what is (not) on the real disk.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from libcfake import _seccomp, protocol
from libcfake._supervisor import Supervisor, SupervisorError, TrappedCall
from libcfake.stat import StatResult

PROGRAMS = Path(__file__).resolve().parent / "programs"
SETPRIV = shutil.which("setpriv")


@pytest.fixture(scope="module")
def program() -> Iterator[Path]:
    """tests/programs/static_adapter.c linked statically, where every user may run it."""
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        pytest.skip("no C compiler")
    directory = Path(tempfile.mkdtemp(prefix="libcfake-adapter-"))
    directory.chmod(0o755)
    exe = directory / "static_adapter"
    source = PROGRAMS / "static_adapter.c"
    command = [cc, "-static", "-O1", "-Wall", "-Werror", "-o", str(exe), str(source)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(directory)
        pytest.skip(f"no static libc here: {result.stderr.strip()[:200]}")
    yield exe
    shutil.rmtree(directory)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A real directory every user may write in."""
    directory = Path(tempfile.mkdtemp(prefix="libcfake-adapter-scratch-"))
    directory.chmod(0o777)
    yield directory
    shutil.rmtree(directory)


class Model:
    """A dict model of a few virtual paths; everything else passes through to the host."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, int] = {}
        self.links: dict[str, str] = {}
        self.dirs: set[str] = set()
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []
        self.sockets: dict[int, Callable[[], socket.socket]] = {}

    def __call__(self, trapped: TrappedCall) -> None:
        function, arguments = trapped.function_, trapped.arguments()
        self.calls.append((trapped.call.raw.symbol, function, arguments))
        for fd in trapped.descriptors():
            os.close(fd)
        if function == "exec":
            trapped.send(0)
            return
        if function.startswith("connect_inet"):
            replacement = self.sockets.get(arguments[1])
            if replacement is None:
                trapped.use_slave_credentials()
                return
            with replacement() as sock:
                trapped.send_with_fds(0, [sock])
            return
        path = str(arguments[0]) if arguments and isinstance(arguments[0], PurePosixPath) else ""
        if path in self.faults:
            trapped.send(-1, self.faults[path])
        elif function in ("open", "openat") and path in self.files:
            memfd = os.memfd_create("virtual", os.MFD_CLOEXEC)
            try:
                os.write(memfd, self.files[path])
                os.lseek(memfd, 0, os.SEEK_SET)
                trapped.send_with_fds(0, [memfd])
            finally:
                os.close(memfd)
        elif function in ("open", "openat") and trapped.call.creates and path in self.dirs_of():
            self.files[path] = b""
            memfd = os.memfd_create("created", os.MFD_CLOEXEC)
            try:
                trapped.send_with_fds(0, [memfd])
            finally:
                os.close(memfd)
        elif function in ("stat", "lstat") and path in self.files:
            trapped.send(StatResult("regular", 0o640, len(self.files[path]), ino=4242,
                                    uid=1234, mtime=1_000_000_000))  # fmt: skip
        elif function == "fstat":  # one of our memfds (a file device of the supervisor's)
            trapped.send(StatResult("regular", 0o600, 77, ino=99))
        elif function == "readlink" and path in self.links:
            trapped.send(self.links[path])
        elif function == "mkdir" and path.startswith("/virtual/"):
            self.dirs.add(path)
            trapped.send(0)
        elif function == "rename" and str(arguments[1]).startswith("/virtual/"):
            self.dirs.discard(path)
            self.dirs.add(str(arguments[1]))
            trapped.send(0)
        elif function == "unlink" and path in self.files:
            del self.files[path]
            trapped.send(0)
        else:
            trapped.use_slave_credentials()

    def dirs_of(self) -> set[str]:
        """Paths that may be created: any name under a virtual directory."""
        return {f"{d}/{name}" for d in self.dirs for name in ("new", "created")} | {
            path for path in self.files
        }


def supervise(
    args: list[str],
    handler: Callable[[TrappedCall], object],
    file_devices: tuple[int, ...] = (),
    chdir_continues: bool = False,
    **popen: Any,
) -> tuple[subprocess.CompletedProcess[str], list[SupervisorError]]:
    errors: list[SupervisorError] = []
    proc, listener = _seccomp.spawn(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, **popen)  # fmt: skip
    try:
        with Supervisor(listener, handler, on_error=errors.append, file_devices=file_devices,
                        chdir_continues=chdir_continues) as supervisor:  # fmt: skip
            returncode = supervisor.serve(until=proc, timeout=60)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert returncode is not None
    return subprocess.CompletedProcess(args, returncode, stdout, stderr), errors


def test_the_program_reads_stats_and_readlinks_the_model(program: Path, scratch: Path) -> None:
    model = Model()
    virtual = str(scratch / "app.conf")  # a real directory: the file must not appear in it
    model.files[virtual] = b"from the model\n"
    model.links["/virtual/link"] = "/virtual/target-of-the-link"
    result, errors = supervise(
        [str(program), "read", virtual, "stat", virtual, "statx", virtual, "fstat", "/",
         "readlink", "/virtual/link", "9", "readlink", "/virtual/link", "100"],
        model,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "read: from the model"
    assert lines[1] == "stat: size=15 mode=100640 uid=1234 ino=4242 mtime=1000000000"
    assert lines[2] == "statx: size=15 mode=100640 uid=1234 ino=4242 mtime=1000000000"
    assert lines[3].startswith("fstat: size=") and "mode=40" in lines[3]  # the real /
    assert lines[4] == "readlink: 9 /virtual/"  # truncated to the buffer, as the kernel does
    assert lines[5] == "readlink: 27 /virtual/target-of-the-link"
    assert errors == []
    assert not (scratch / "app.conf").exists()
    symbols = {(symbol, function) for symbol, function, _ in model.calls}
    # (the launcher's exec of the program goes through the shim's gate: not asked)
    assert {("openat", "openat"), ("newfstatat", "stat"), ("statx", "stat"),
            ("readlink", "readlink")} <= symbols  # fmt: skip


def test_changes_are_answered_by_the_model_and_nothing_reaches_the_disk(
    program: Path, scratch: Path
) -> None:
    model = Model()
    created = scratch / "created"
    model.files[str(created)] = b""
    model.files["/virtual/old"] = b"x"
    result, errors = supervise(
        [str(program), "create", str(created), "mkdir", "/virtual/d", "rename", "/virtual/d",
         "/virtual/e", "unlink", "/virtual/old", "read", "/virtual/old"],
        model,
    )  # fmt: skip
    assert result.stdout.splitlines() == [
        "create: ok",
        "mkdir: ok",
        "rename: ok",
        "unlink: ok",
        "read: No such file or directory",  # gone from the model: passed through, not on disk
    ], result.stderr
    assert errors == []
    assert not created.exists()
    assert model.dirs == {"/virtual/e"}
    functions = [(f, a) for _, f, a in model.calls if f != "exec"]
    assert ("mkdir", (PurePosixPath("/virtual/d"), 0o755)) in functions
    assert ("rename", (PurePosixPath("/virtual/d"), PurePosixPath("/virtual/e"))) in functions
    assert ("open", (PurePosixPath(created), ["create", "truncate", "write_only"], 0o644)) in [
        (f if f != "openat" else "open", a) for f, a in functions
    ]


def test_injected_errors_reach_the_program(program: Path, scratch: Path) -> None:
    model = Model()
    model.faults["/virtual/missing"] = errno.ENOENT
    model.faults[str(scratch / "secret")] = errno.EACCES
    (scratch / "secret").write_text("real secret\n")
    result, _ = supervise(
        [str(program), "read", "/virtual/missing", "read", str(scratch / "secret"),
         "stat", "/virtual/missing", "mkdir", str(scratch / "secret")],
        model,
    )  # fmt: skip
    assert result.stdout.splitlines() == [
        "read: No such file or directory",
        "read: Permission denied",
        "stat: No such file or directory",
        "mkdir: Permission denied",
    ], result.stderr


def test_relative_paths_bring_the_directory_or_join_the_cwd(program: Path, scratch: Path) -> None:
    (scratch / "real.txt").write_text("real by dirfd\n")
    seen: list[tuple[str, tuple[Any, ...], int, list[int]]] = []

    def handler(trapped: TrappedCall) -> None:
        fds = trapped.descriptors()
        kinds = [stat.S_IFMT(os.fstat(fd).st_mode) for fd in fds]
        seen.append((trapped.function_, trapped.arguments(), trapped.call.raw.fds, kinds))
        for fd in fds:
            os.close(fd)
        if trapped.function_ == "exec":
            trapped.send(0)
        else:
            trapped.use_slave_credentials()

    result, errors = supervise(
        [str(program), "openat", str(scratch), "real.txt", "read", "real.txt"], handler,
        cwd=scratch,
    )  # fmt: skip
    assert result.stdout.splitlines() == ["openat: real by dirfd", "read: real by dirfd"]
    assert errors == []
    relative = [entry for entry in seen if entry[1][0] == PurePosixPath("real.txt")]
    assert relative == [("openat", relative[0][1], protocol.FD_DIR1, [stat.S_IFDIR])]
    joined = [entry for entry in seen if entry[1][0] == PurePosixPath(scratch / "real.txt")]
    assert joined and joined[0][2] == 0  # cwd-relative: joined, no descriptor, as the shim


def test_passthrough_reads_a_host_file_through_the_master(program: Path, scratch: Path) -> None:
    host = scratch / "host.txt"
    host.write_text("from the host\n")
    result, errors = supervise(
        [str(program), "read", str(host), "stat", str(host), "access", str(host),
         "readlink", "/proc/self/exe", "200"],
        Model(),
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[0] == "read: from the host", result.stderr
    assert lines[1].startswith(f"stat: size=14 mode=100{host.stat().st_mode & 0o777:o}")
    assert lines[2] == "access: ok"
    assert lines[3] == f"readlink: {len(str(program))} {program}"  # the program's, not ours
    assert errors == []


def test_passthrough_changes_the_host_as_the_program(program: Path, scratch: Path) -> None:
    result, errors = supervise(
        [str(program), "mkdir", str(scratch / "d"), "rename", str(scratch / "d"),
         str(scratch / "e"), "create", str(scratch / "e" / "f"), "rmdir", str(scratch / "e")],
        Model(),
    )  # fmt: skip
    assert result.stdout.splitlines() == [
        "mkdir: ok",
        "rename: ok",
        "create: ok",
        "rmdir: Directory not empty",
    ], result.stderr
    assert (scratch / "e" / "f").read_text() == "written\n"
    assert errors == []


def unprivileged(program: Path, *args: str) -> list[str]:
    if os.geteuid() != 0 or SETPRIV is None:
        pytest.skip("needs root and setpriv to run the program as nobody")
    return [SETPRIV, "--reuid=nobody", "--regid=nogroup", "--clear-groups", str(program), *args]


def test_passthrough_checks_permissions_as_the_unprivileged_caller(
    program: Path, scratch: Path
) -> None:
    private = scratch / "private.txt"
    private.write_text("root only\n")
    private.chmod(0o600)
    group = scratch / "group.txt"  # readable by root's group: nobody without groups may not
    group.write_text("root's group\n")
    group.chmod(0o640)
    public = scratch / "public.txt"
    public.write_text("for everyone\n")
    public.chmod(0o644)
    made = scratch / "made"
    result, errors = supervise(
        unprivileged(program, "read", str(private), "read", str(group), "access", str(private),
                     "read", str(public), "create", str(made), "stat", str(private)),
        Model(),
    )  # fmt: skip
    assert result.stdout.splitlines() == [
        "read: Permission denied",
        "read: Permission denied",
        "access: Permission denied",
        "read: for everyone",
        "create: ok",
        f"stat: size=10 mode=100600 uid=0 ino={private.stat().st_ino} "
        f"mtime={int(private.stat().st_mtime)}",
    ], result.stderr
    assert made.stat().st_uid == 65534  # created by the master with the caller's fsuid
    assert errors == []


@pytest.fixture
def listeners() -> Iterator[tuple[int, int]]:
    """Two TCP listeners on loopback, each greeting with its own line; their ports."""
    servers = []
    for greeting in (b"real listener\n", b"replacement listener\n"):
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)

        def accept(server: socket.socket = server, greeting: bytes = greeting) -> None:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                with conn:
                    conn.sendall(greeting)

        threading.Thread(target=accept, daemon=True).start()
    yield servers[0].getsockname()[1], servers[1].getsockname()[1]
    for server in servers:
        server.close()


def test_connect_passes_through_or_gets_a_replacement_socket(
    program: Path, listeners: tuple[int, int]
) -> None:
    real, other = listeners
    model = Model()
    decoy = 9  # a port nothing listens on: the model connects the program to `other` instead
    model.sockets[decoy] = lambda: socket.create_connection(("127.0.0.1", other))
    result, errors = supervise(
        [str(program), "connect", "127.0.0.1", str(real), "connect", "127.0.0.1", str(decoy)],
        model,
    )  # fmt: skip
    assert result.stdout.splitlines() == [
        "connect: real listener",
        "connect: replacement listener",
    ], result.stderr
    assert errors == []
    connects = [(f, a, symbol) for symbol, f, a in model.calls if f.startswith("connect")]
    assert [(f, a[1], symbol) for f, a, symbol in connects] == [
        ("connect_inet", real, "connect"),
        ("connect_inet", decoy, "connect"),
    ]


def test_a_program_killed_mid_call_leaves_the_supervisor_serving(program: Path) -> None:
    answered: list[bool] = []
    proc_box: list[subprocess.Popen[str]] = []

    def handler(trapped: TrappedCall) -> None:
        if trapped.function_ == "exec":
            trapped.send(0)
        elif trapped.arguments()[0] == PurePosixPath("/virtual/slow"):
            deferred = trapped.defer()
            proc_box[0].kill()
            proc_box[0].wait()
            answered.append(deferred.send(-1, errno.EIO))  # nobody is waiting any more
        else:
            trapped.use_slave_credentials()

    proc, listener = _seccomp.spawn([str(program), "read", "/virtual/slow"],
                                    stdout=subprocess.PIPE, text=True)  # fmt: skip
    proc_box.append(proc)
    errors: list[SupervisorError] = []
    with Supervisor(listener, handler, on_error=errors.append) as supervisor:
        returncode = supervisor.serve(until=proc, timeout=60)
    assert returncode == -9
    assert answered == [False]
    assert errors == []
    assert proc.stdout is not None and proc.stdout.read() == ""
    proc.stdout.close()


def test_a_bad_pointer_is_efault_and_an_unknown_call_is_refused(program: Path) -> None:
    model = Model()
    model.files["/virtual/f"] = b"x"
    result, errors = supervise(
        [str(program), "bad", "statro", "/virtual/f", "statro", "/", "kill", "read",
         "/nonexistent"],
        model,
    )  # fmt: skip
    assert result.stdout.splitlines() == [
        "bad: Bad address",
        "statro: Bad address",  # the model's answer does not go into read-only memory
        "statro: Bad address",  # nor the master's own stat of a host file
        "kill: Function not implemented",
        "read: No such file or directory",  # still served after both
    ], result.stderr
    assert [(e.syscall, "does not serve kill" in e.message) for e in errors] == [("kill", True)]


def test_a_handler_that_fails_or_does_not_answer_fails_the_call(program: Path) -> None:
    def handler(trapped: TrappedCall) -> None:
        if trapped.function_ == "exec":
            trapped.send(0)
        elif trapped.arguments()[0] == PurePosixPath("/virtual/raises"):
            raise RuntimeError("model trouble")
        elif trapped.arguments()[0] == PurePosixPath("/virtual/silent"):
            return
        else:
            trapped.use_slave_credentials()

    result, errors = supervise(
        [str(program), "read", "/virtual/raises", "read", "/virtual/silent"], handler
    )
    assert result.stdout.splitlines() == ["read: Input/output error"] * 2
    assert "model trouble" in errors[0].message
    assert "did not answer" in errors[1].message


def test_every_served_call_has_a_name_the_listener_knows() -> None:
    from libcfake._syscalls import SERVED

    assert not SERVED - _seccomp.SYSCALLS.keys()


def test_answers_that_do_not_fit_the_call_raise_in_the_handler(program: Path) -> None:
    problems: list[str] = []

    def handler(trapped: TrappedCall) -> None:
        if trapped.function_ == "exec":
            trapped.send(0)
            return
        if trapped.function_ in ("open", "openat"):
            for wrong in (0, -1):
                try:
                    trapped.send(wrong)
                except ValueError as error:
                    problems.append(str(error))
        trapped.send(-1, errno.ENOENT)

    result, _ = supervise([str(program), "read", "/x"], handler)
    assert result.stdout == "read: No such file or directory\n"
    assert problems == [
        "a successful openat needs the file: use send_with_fds(0, [fd])",
        "a failed openat (-1) needs an errno",
    ]


METADATA_SCRIPT = """
import os, socket, sys
d = sys.argv[1]
os.close(os.open(d + "/f", os.O_WRONLY | os.O_CREAT, 0o644))
os.symlink("f", d + "/s")
os.link(d + "/f", d + "/h")
os.chmod(d + "/f", 0o600)
os.chown(d + "/f", 1, 2)
os.truncate(d + "/f", 0)
os.utime(d + "/f", (1000, 2000))
os.mkfifo(d + "/p")
fd = os.open(d, os.O_RDONLY)
os.rename("h", "h2", src_dir_fd=fd, dst_dir_fd=fd)
os.unlink("h2", dir_fd=fd)
server = socket.socket(socket.AF_UNIX)
server.bind(d + "/sock")
server.listen()
client = socket.socket(socket.AF_UNIX)
client.connect(d + "/sock")
tcp = socket.socket()
tcp.listen()
print("done", os.readlink(d + "/s"), tcp.getsockname()[1] != 0)
"""


def test_metadata_and_socket_calls_of_a_dynamic_program(scratch: Path) -> None:
    python = shutil.which("python3")
    if python is None:
        pytest.skip("no python3")
    d = str(scratch)
    model = Model()
    result, errors = supervise([python, "-S", "-c", METADATA_SCRIPT, d], model)
    assert result.stdout == "done f True\n", result.stderr
    assert errors == []
    seen = {(f, a) for _, f, a in model.calls if f not in ("open", "openat", "access")}
    p = PurePosixPath
    assert {
        ("symlink", (p("f"), p(f"{d}/s"))),
        ("link", (p(f"{d}/f"), p(f"{d}/h"))),
        ("chmod", (p(f"{d}/f"), 0o600)),
        ("chown", (p(f"{d}/f"), 1, 2)),
        ("utimens", (p(f"{d}/f"), 1000.0, 2000.0)),
        ("truncate", (p(f"{d}/f"), 0)),
        ("mknod", (p(f"{d}/p"), stat.S_IFIFO | 0o666, 0)),
        ("rename", (p("h"), p("h2"))),
        ("unlink", (p("h2"),)),
        ("bind_unix", (p(f"{d}/sock"),)),
        ("connect_unix", (p(f"{d}/sock"),)),
    } <= seen
    listen = [c for c in model.calls if c[0] == "listen"]
    assert [(f, str(a[0]), a[1]) for _, f, a in listen] == [("bind_inet", "0.0.0.0", 0)]
    f = scratch / "f"
    assert (stat.S_IMODE(f.stat().st_mode), f.stat().st_uid, f.stat().st_mtime) == (0o600, 1, 2000)
    assert stat.S_ISFIFO((scratch / "p").stat().st_mode)
    assert not (scratch / "h2").exists()


def test_a_call_that_vanished_before_it_is_served_is_dropped_quietly(program: Path) -> None:
    proc, listener = _seccomp.spawn([str(program), "read", "/virtual/gone"],
                                    stdout=subprocess.PIPE, text=True)  # fmt: skip
    handled: list[str] = []
    errors: list[SupervisorError] = []
    with Supervisor(listener, lambda t: handled.append(t.function_),
                    on_error=errors.append) as supervisor:  # fmt: skip
        note = None
        while note is None or note.name != "openat":
            if note is not None and note.name == "execve":  # the launcher's exec
                listener.reply_continue(note.id)
            elif note is not None:  # the program's start-up calls
                listener.reply(note.id, error=errno.ENOENT)
            note = listener.receive()
        proc.kill()
        proc.wait()
        supervisor.dispatch(note)  # its thread is gone: nothing to read, nobody to answer
    assert handled == []
    assert errors == []
    assert proc.stdout is not None
    proc.stdout.close()


def test_the_supervisor_serves_from_a_thread_until_stopped(program: Path) -> None:
    model = Model()
    model.files["/virtual/app.conf"] = b"threaded\n"
    proc, listener = _seccomp.spawn([str(program), "read", "/virtual/app.conf"],
                                    stdout=subprocess.PIPE, text=True)  # fmt: skip
    supervisor = Supervisor(listener, model)
    thread = threading.Thread(target=supervisor.serve)
    thread.start()
    try:
        stdout, _ = proc.communicate(timeout=60)
    finally:
        supervisor.stop()
        thread.join(timeout=10)
        supervisor.close()
    assert not thread.is_alive()
    assert stdout == "read: threaded\n"


def test_calls_on_descriptors_ask_for_the_handlers_files_and_perform_the_programs(
    program: Path, scratch: Path
) -> None:
    model = Model()
    model.files["/virtual/app.conf"] = b"virtual\n"
    memfd = os.memfd_create("probe")
    device = os.fstat(memfd).st_dev
    os.close(memfd)
    host = scratch / "host.txt"
    host.write_text("twelve bytes")
    result, errors = supervise(
        [str(program), "fstat", "/virtual/app.conf", "fstat", str(host)], model, (device,)
    )
    assert result.stdout.splitlines() == [
        "fstat: size=77 mode=100600 uid=0 ino=99 mtime=0",  # the model's table
        f"fstat: size=12 mode=100644 uid=0 ino={host.stat().st_ino} "
        f"mtime={int(host.stat().st_mtime)}",  # the real file's, performed by the master
    ], result.stderr
    assert [a for _, f, a in model.calls if f == "fstat"] == [()]
    assert errors == []


DESCRIPTOR_SCRIPT = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.fchmod(fd, 0o604)
os.fchown(fd, 3, 4)
os.utime(fd, (100, 200))
print(os.stat(fd).st_mtime, os.access(sys.argv[1], os.W_OK))
"""


def test_calls_on_the_programs_own_descriptors_are_performed(scratch: Path) -> None:
    python = shutil.which("python3")
    if python is None:
        pytest.skip("no python3")
    target = scratch / "f"
    target.write_text("")
    result, errors = supervise([python, "-S", "-c", DESCRIPTOR_SCRIPT, str(target)], Model())
    assert result.stdout == "200.0 True\n", result.stderr
    assert errors == []
    st = target.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime) == (0o604, 3, 4, 200)


ATTRIBUTES_SCRIPT = """
import os, sys
d = sys.argv[1]
open(d + "/f", "w").close()
for call in (lambda: os.getxattr(d + "/f", "user.k"), lambda: os.listxattr(d + "/f"),
             lambda: os.setxattr(d + "/f", "user.k", b"v"),
             lambda: os.removexattr(d + "/f", "user.k")):
    try:
        call()
        print("ok")
    except OSError as error:
        print(error.errno)
print(os.statvfs(d).f_bsize > 0)
try:
    os.chdir(d)
    open("relative", "w").close()
    print("entered", os.getcwd())
except OSError as error:
    print("chdir", error.errno)
"""


@pytest.mark.parametrize("chdir_continues", [False, True])
def test_attributes_statfs_and_chdir(scratch: Path, chdir_continues: bool) -> None:
    python = shutil.which("python3")
    if python is None:
        pytest.skip("no python3")
    d = str(scratch)
    model = Model()
    result, errors = supervise([python, "-S", "-c", ATTRIBUTES_SCRIPT, d], model,
                               chdir_continues=chdir_continues)  # fmt: skip
    lines = result.stdout.splitlines()
    # reading attributes: none, as the shim answers on the model's files
    assert lines[:2] == [str(errno.ENOTSUP)] * 2, result.stderr
    assert lines[2] in ("ok", str(errno.ENOTSUP)) and lines[3] in ("ok", str(errno.ENOTSUP))
    assert lines[4] == "True"  # statfs, performed by the master
    p = PurePosixPath
    changes = [(f, a) for _, f, a in model.calls if "xattr" in f]
    assert changes == [("setxattr", (p(f"{d}/f"), "user.k", 0)),
                       ("removexattr", (p(f"{d}/f"), "user.k"))]  # fmt: skip
    if chdir_continues:
        assert lines[5] == f"entered {d}"
        assert (scratch / "relative").exists()
        opened = [a[0] for _, f, a in model.calls if f in ("open", "openat")]
        assert p(f"{d}/relative") in opened  # joined with the cwd the kernel entered
        assert errors == []
    else:
        assert lines[5] == f"chdir {errno.ENOSYS}"
        assert [e.syscall for e in errors] == ["chdir"]
