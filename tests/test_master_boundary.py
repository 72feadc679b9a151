"""The master is inside the trust boundary; programs are outside (issue 16, section 3).

Each test attacks the master the way a program (or another local user) could, and checks the
result from outside: the test process is still alive and serving, the model is unchanged, a
secret of the test is not in anything the program printed, a connection from outside the
sandbox's tree is refused.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from libcfake import LibcService, Sandbox, StatResult

PYTHON = sys.executable


def run_python(
    sb: Sandbox, code: str, *args: str, prefix: tuple[str, ...] = (), timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return sb.run([*prefix, PYTHON, "-c", textwrap.dedent(code), *args], capture_output=True,
                  text=True, timeout=timeout)  # fmt: skip


@contextlib.contextmanager
def few_descriptors(extra: int) -> Iterator[None]:
    """While it lasts, the test process can open only ``extra`` more descriptors: the free
    numbers below the highest open one are filled, and the limit set just above it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    fillers = []
    try:
        while True:
            fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
            fillers.append(fd)
            if fd >= highest:
                break
        resource.setrlimit(resource.RLIMIT_NOFILE, (fillers[-1] + 1 + extra, hard))
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        for fd in fillers:
            os.close(fd)


# -- exhaustion ---------------------------------------------------------------------------------

THREADS = """
    import os, sys, threading
    n = int(sys.argv[1])
    barrier = threading.Barrier(n + 1)
    failed = []
    def work():
        try:
            os.stat("/nothing/here")
        except FileNotFoundError:
            pass
        except OSError as error:
            failed.append(error.errno)
        barrier.wait()  # every thread's connection stays open until all have called
    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    for t in threads:
        t.join()
    print("failed", len(failed))
"""


def test_a_program_exhausting_the_masters_descriptors_is_a_violation_and_serving_goes_on() -> None:
    with Sandbox(reply_timeout=10) as sb:
        sb.fs.create_file("/data", contents="still served\n")
        with few_descriptors(12):
            many = run_python(sb, THREADS, "60")
        assert many.returncode == 0, many.stderr
        assert "ran out of file descriptors" in many.stderr  # the refused threads said why
        later = run_python(sb, "print(open('/data').read(), end='')", timeout=8)
        assert later.returncode == 0, later.stderr
        assert later.stdout == "still served\n"
        reasons = [v.reason for v in sb.violations]
        assert any("ran out of file descriptors" in reason for reason in reasons), reasons
        sb.violations.clear()


def test_the_raw_service_keeps_serving_and_reports_exhaustion() -> None:
    seen: list[object] = []
    with LibcService(reply_timeout=10, on_error=seen.append) as svc:

        def handler(svc: LibcService) -> None:
            svc.use_slave_credentials()

        with few_descriptors(8):
            proc = svc.spawn([PYTHON, "-c", textwrap.dedent(THREADS), "40"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
            assert svc.serve(handler, until=proc, timeout=60) == 0
        proc.communicate()
        assert svc.errors and svc.errors == seen
        assert "ran out of file descriptors" in str(svc.errors[0])
        later = svc.spawn(["cat", "/etc/hostname"], stdout=subprocess.PIPE)
        assert svc.serve(handler, until=later, timeout=10) == 0


# -- the socket ---------------------------------------------------------------------------------

AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
SECRET = "model-secret-7f3a9c"

#: Run as nobody by the test before any master serves: it becomes an orphan of init (no process
#: of the test's tree), waits for a socket path in DIR/go, then runs argv[2:] behind the shim
#: against it, its output in DIR/out, and says DIR/done.
OUTSIDER = """
    import json, os, subprocess, sys, time
    d = sys.argv[1]
    if os.fork():
        os._exit(0)
    os.setsid()
    middle = os.getpid()
    if os.fork():
        os._exit(0)
    while os.getppid() == middle:  # until the parent is gone
        time.sleep(0.01)
    open(d + "/ready", "w").close()
    deadline = time.monotonic() + 60  # a test that failed before saying go leaves no process
    while not os.path.exists(d + "/go"):
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.01)
    env = json.load(open(d + "/go"))
    with open(d + "/out", "wb") as out:
        subprocess.run(sys.argv[2:], env=env, stdout=out, stderr=out, timeout=30)
    open(d + "/done", "w").close()
"""


def test_a_process_outside_the_tree_is_refused_and_gets_nothing_of_the_model() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as directory:
        shared = Path(directory)
        shared.chmod(0o777)
        _outsider_refused(shared)


def _outsider_refused(shared: Path) -> None:
    started = subprocess.run([*AS_NOBODY, PYTHON, "-c", textwrap.dedent(OUTSIDER), str(shared),
                              "sh", "-c", "cat /model.txt; echo rewritten > /model.txt"],
                             timeout=30)  # fmt: skip
    assert started.returncode == 0
    _wait_for(shared / "ready")
    with Sandbox(reply_timeout=5) as sb:
        sb.fs.create_file("/model.txt", contents=SECRET, st_mode=0o666)
        (shared / "go.tmp").write_text(json.dumps(sb.environment()))
        (shared / "go.tmp").rename(shared / "go")
        _wait_for(shared / "done", 30)
        output = (shared / "out").read_text(errors="replace")
        assert SECRET not in output
        assert (
            "refused the connection" in output and "not a process of this sandbox's tree" in output
        )
        assert sb.fs.read_text("/model.txt") == SECRET
        refusals = [v for v in sb.violations if v.call == "hello"]
        assert refusals and all("refused" in v.reason for v in refusals)
        sb.violations.clear()
        # a program of the tree that drops to the same user is served
        inside = sb.run([*AS_NOBODY, "cat", "/model.txt"], capture_output=True, text=True)
        assert inside.stdout == SECRET, inside.stderr
        assert not sb.violations


def _children() -> list[int]:
    """The test process's children, as the kernel lists them."""
    return [int(pid) for task in os.listdir("/proc/self/task")
            for pid in open(f"/proc/self/task/{task}/children").read().split()]  # fmt: skip


def test_a_daemons_orphan_is_served_and_reaped_but_the_tests_own_children_are_not(
    compile_c: Callable[[str], Path],
) -> None:
    before = set(_children())
    with LibcService(reply_timeout=5) as svc:

        def handler(svc: LibcService) -> None:
            if svc.function_ == "stat" and "/r/tree/" in str(svc.arguments()[0]):
                svc.send(StatResult("regular", 0o644, size=7))
            else:
                svc.use_slave_credentials()

        for _ in range(2):  # a double fork: the grandchild calls after its parent exited
            daemon = svc.spawn([str(compile_c("robust_tree")), "daemon"], stdout=subprocess.PIPE)
            assert svc.serve(handler, until=daemon, timeout=30) == 0
            assert daemon.communicate()[0] == b"wrong 0\n"
        # the test's own children, one in a session of its own, exit while the master serves
        own = [svc.spawn(["sh", "-c", "test -e /x; exit 7"], start_new_session=new)
               for new in (False, True)]  # fmt: skip
        last = svc.spawn(["sh", "-c", "test -e /y; sleep 0.5; test -e /z"])
        assert svc.serve(passthrough, until=last, timeout=30) == 1
    assert set(_children()) - before == {proc.pid for proc in own}  # the orphans were reaped
    assert [proc.wait() for proc in own] == [7, 7]  # the test's own are the test's to wait for
    assert not svc.errors


def passthrough(svc: LibcService) -> None:
    svc.use_slave_credentials()


def _wait_for(path: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


#: Connects without the shim, says a hello that claims pid 1 and uid 0, and opens a file.
FORGER = """
    import os, socket, sys
    from libcfake import protocol
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(sys.argv[1])
    sock.send(protocol.encode_hello(pid=1))  # uid, gid, euid, egid: 0
    welcome = sock.recv(protocol.MAX_MESSAGE)
    sock.send(protocol.encode_call("open", sys.argv[2].encode(), flags=os.O_RDONLY))
    data, fds, _, _ = socket.recv_fds(sock, protocol.MAX_MESSAGE, 1)
    reply = protocol.decode_reply(data)
    print("result", reply["result"], "errno", reply["error"])
    for fd in fds:
        print(os.read(fd, 100).decode())
"""


def test_the_ids_in_a_hello_are_not_believed(tmp_path: Path) -> None:
    with Sandbox(reply_timeout=5) as sb:
        sb.fs.create_file("/root-only", contents=SECRET, st_mode=0o600)
        root = str(Path(__file__).resolve().parent.parent)
        forged = subprocess.run(
            [*AS_NOBODY, PYTHON, "-c", textwrap.dedent(FORGER), sb._service.socket_path,
             "/root-only"],
            capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": root},
        )  # fmt: skip
        assert forged.returncode == 0, forged.stderr
        assert SECRET not in forged.stdout
        assert f"errno {errno.EACCES}" in forged.stdout
        (entry,) = [e for e in sb.journal if e.path == "/root-only"]
        assert entry.pid != 1  # the kernel's pid, not the hello's


def test_a_non_root_masters_socket_is_private(tmp_path: Path) -> None:
    code = "import os; from libcfake import LibcService; s = LibcService(); " \
           "print(oct(os.stat(os.path.dirname(s.socket_path)).st_mode & 0o777), " \
           "oct(os.stat(s.socket_path).st_mode & 0o777)); s.close()"  # fmt: skip
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root, "TMPDIR": "/tmp"}
    shown = subprocess.run([*AS_NOBODY, PYTHON, "-c", code], capture_output=True, text=True,
                           env=env, timeout=30)  # fmt: skip
    assert shown.stdout.split() == ["0o700", "0o700"], shown.stderr


# -- the master's process -----------------------------------------------------------------------

#: A test process, run as nobody: a program of the same user (and the same capabilities: none)
#: reads its environ and opens its mem. What the kernel then decides by is dumpability.
NOBODYS_TEST = """
    import os, subprocess, sys
    from libcfake import LibcService
    master = os.getpid()
    with LibcService(reply_timeout=5) as svc:
        proc = svc.spawn(["sh", "-c", f"cat /proc/{master}/environ; head -c 1 /proc/{master}/mem"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        svc.serve(lambda s: s.use_slave_credentials(), until=proc, timeout=30)
        out, err = proc.communicate()
    sys.stdout.buffer.write(out)
    sys.stderr.buffer.write(err)
"""


def test_a_program_cannot_read_the_test_process_memory_or_environment() -> None:
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root, "TMPDIR": "/tmp", "THE_TESTS_SECRET": SECRET}
    ran = subprocess.run([*AS_NOBODY, PYTHON, "-c", textwrap.dedent(NOBODYS_TEST)],
                         capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert SECRET not in ran.stdout
    assert "environ: Permission denied" in ran.stderr
    assert "mem' for reading: Permission denied" in ran.stderr
    assert _dumpable()  # the test process, which never served


def _test_secrets() -> list[bytes]:
    with open("/proc/self/environ", "rb") as file:
        return [entry for entry in file.read().split(b"\0") if len(entry) > 12]


def _dumpable() -> bool:
    import ctypes

    return bool(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0) == 1)


def test_non_dumpable_is_counted_over_masters() -> None:
    assert _dumpable()
    with LibcService():
        with Sandbox():
            assert not _dumpable()
        assert not _dumpable()
    assert _dumpable()


def test_a_sandboxed_program_may_not_look_at_processes_outside_its_tree() -> None:
    secrets = _test_secrets()
    with Sandbox(reply_timeout=5) as sb:
        master = os.getpid()
        result = sb.run(["sh", "-c", f"cat /proc/{master}/environ; cat //proc/{master}/./cmdline;"
                         " cat /proc/1/environ; cat /proc/self/stat >/dev/null && echo own"],
                        capture_output=True)  # fmt: skip
        assert not any(secret in result.stdout for secret in secrets)
        assert result.stdout.strip().endswith(b"own")  # its own /proc is still there
        refused = {v.arguments[0] if v.arguments else "" for v in sb.violations}
        assert len(sb.violations) == 3, refused
        assert all("not a program of this sandbox" in v.reason for v in sb.violations)
        sb.violations.clear()


# -- shared memory ------------------------------------------------------------------------------

#: The test process of the shared memory test, in a process of its own: a master that could be
#: steered through that memory would crash it.
SHARED_MEMORY_MASTER = """
    import subprocess, sys
    from libcfake import Sandbox
    with Sandbox(reply_timeout=5, backend=sys.argv[2]) as sb:
        sb.fs.create_file("/d/f", contents="0123456789")
        sb.fs.create_dir("/d/sub")
        attack = sb.run([sys.argv[1]], capture_output=True, text=True, timeout=30)
        print(attack.stdout, attack.stderr, sep="")
        for _ in range(3):  # the master publishes /d and takes notes after the attack
            listed = sb.run(["ls", "-l", "/d"], capture_output=True, text=True, timeout=30)
            stated = sb.run(["stat", "/d/f", "/d/sub"], capture_output=True, text=True, timeout=30)
            assert listed.returncode == stated.returncode == 0, listed.stderr + stated.stderr
        print("model", sb.fs.read_text("/d/f"))
        print("violations", len(sb.violations))
        print("backend", sb.backend)
    print("alive")
"""


@pytest.mark.parametrize("backend", ["preload", "hybrid"])
def test_a_program_cannot_write_the_memory_it_shares_with_the_master(
    backend: str, compile_c: Callable[[str], Path]
) -> None:
    program = str(compile_c("master_memory"))
    root = str(Path(__file__).resolve().parent.parent)
    ran = subprocess.run([PYTHON, "-c", textwrap.dedent(SHARED_MEMORY_MASTER), program, backend],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": root})  # fmt: skip
    lines = ran.stdout.splitlines()
    assert ran.returncode == 0 and "alive" in lines, ran.stdout + ran.stderr
    assert "mprotect: Permission denied" in lines
    assert "header rewritten" not in lines
    assert "write: ok" not in lines and "mmap: ok" not in lines and "truncate: ok" not in lines
    assert "model 0123456789" in lines
    if "backend hybrid" in lines:  # the raw open of /proc/self/map_files/ traps: refused
        assert "reopen: Permission denied" in lines and "violations 2" in lines
    else:  # the kernel reopens the memfds, whose seals refuse every change
        assert "ring truncate: Operation not permitted" in lines and "violations 0" in lines
