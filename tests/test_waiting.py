"""How a program behind the shim waits for its replies.

While replies come quickly, a thread tries for its reply without sleeping for a while, yielding
the CPU between tries (SPIN_NS in shim/transport.h): that saves the cost of its wake-up, which
benchmarks/roundtrip.py measures. Here a library preloaded before the shim counts the yields, so
the test sees whether a thread spun: it must not while the master is slow. (Whether it spins for
a quick master depends on the scheduler: a program that loses its CPU to the master right after
sending finds the reply there at its first try.)
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pytest

from libcfake import Deferred, LibcService, StatResult

from .conftest import PROGRAMS, run_served

TABLE = StatResult(type="regular", mode=0o644, size=10)


@pytest.fixture
def counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Preload tests/programs/count_yields.c before the shim in the programs the test starts."""
    library = tmp_path / "count_yields.so"
    subprocess.run(
        [os.environ.get("CC", "gcc"), "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o",
         str(library), str(PROGRAMS / "count_yields.c"), "-ldl"],
        check=True,
    )  # fmt: skip
    first = os.environ.get("LIBCFAKE_PRELOAD_FIRST", "")  # the sanitizer build's runtime
    monkeypatch.setenv("LIBCFAKE_PRELOAD_FIRST", f"{first} {library}".strip())


def _answering(delay: float) -> Callable[[LibcService], None]:
    def answer(svc: LibcService) -> None:
        if svc.function_ == "stat":
            time.sleep(delay)
            svc.send(TABLE)
        else:
            svc.use_slave_credentials()

    return answer


def _yields(service: LibcService, args: list[str], delay: float) -> int:
    ran = run_served(service, args, _answering(delay))
    assert ran.returncode == 0, ran.stderr
    return _counted(ran.stderr)


def _counted(stderr: str) -> int:
    """The main thread's sched_yield calls, as count_yields.c reports them at exit."""
    counts = re.findall(r"^sched_yield (\d+)$", stderr, re.MULTILINE)
    assert len(counts) == 1, stderr
    return int(counts[0])


@pytest.mark.usefixtures("counted")
def test_a_thread_sleeps_while_its_replies_are_slow(
    service: LibcService, compile_c: Callable[[str], Path]
) -> None:
    calls = 300
    program = str(compile_c("note_ring"))
    yields = _yields(service, [program, "stats", "/d/f", str(calls)], 0.001)
    # Each reply takes 1 ms, far longer than a spin: only the first call of the connection,
    # which knows nothing of the master yet, spins (for up to 50 us: a few dozen yields). A
    # thread that spun for each reply would yield at least once a call.
    assert yields < calls / 3


@pytest.mark.usefixtures("counted")
def test_a_cancelled_waiting_thread_leaves_the_others_free_to_spin(
    service: LibcService, compile_c: Callable[[str], Path]
) -> None:
    """pthread_cancel of a thread waiting for its reply: the process must not go on counting it
    as waiting, or no thread of it would spin again."""
    set_aside: list[Deferred] = []
    slowly = _answering(0.001)  # longer than a spin: the thread yields until it gives up

    def answer(svc: LibcService) -> None:
        if svc.function_ == "stat" and svc.arguments()[0] == PurePosixPath("/hang"):
            set_aside.append(svc.defer())  # never answered
        else:
            slowly(svc)

    program = str(compile_c("cancel"))
    ran = run_served(service, [program, "cancel", "/hang", "/d/f"], answer)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == ["cancelled", "10"]
    assert len(set_aside) == 1
    assert _counted(ran.stderr) > 0  # the main thread's first call spun: it was alone
