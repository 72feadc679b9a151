"""The master is inside the trust boundary; programs are outside (issue 16, section 3).

Each test attacks the master the way a program (or another local user) could, and checks the
result from outside: the test process is still alive and serving, the model is unchanged, a
secret of the test is not in anything the program printed, a connection from outside the
sandbox's tree is refused.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import textwrap
from collections.abc import Iterator

from libcfake import LibcService, Sandbox, ServiceError

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
    seen: list[ServiceError] = []
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
