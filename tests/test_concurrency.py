"""Many threads and processes at once: every call reaches the master on its own connection and
every answer goes back to the thread that asked (ARCHITECTURE.md, decision 1)."""

from __future__ import annotations

import sys
from collections import Counter

from libcfake import LibcService, StatResult

from .conftest import run_served


def answer_by_path(svc: LibcService) -> None:
    """stat("/v/<role>/<thread>/<call>") has the size thread * 100000 + call."""
    parts = str(svc.arguments()[0]).split("/")
    if svc.function_ == "stat" and parts[1] == "v":
        size = int(parts[3]) * 100000 + int(parts[4])
        svc.send(StatResult(type="regular", mode=0o644, size=size))
    else:
        svc.use_slave_credentials()


def test_threads_of_two_processes_get_their_own_answers(service: LibcService, compile_c) -> None:  # type: ignore[no-untyped-def]
    threads, calls = 8, 250
    pids: Counter[tuple[int, str]] = Counter()

    def handler(svc: LibcService) -> None:
        path = str(svc.arguments()[0])
        if path.startswith("/v/"):
            pids[(svc.process.pid, path.split("/")[2])] += 1
        answer_by_path(svc)

    ran = run_served(service, [str(compile_c("threads")), str(threads), str(calls)], handler)
    assert ran.returncode == 0, ran.stderr
    assert sorted(ran.stdout.splitlines()) == ["child 0", "parent 0"]
    # each process is named by its own pid in what the master saw
    assert sorted(pids.values()) == [threads * calls] * 2
    assert len({pid for pid, _ in pids}) == 2


PYTHON_THREADS = """
import os, threading
wrong = []
def work(thread):
    for call in range(100):
        if os.stat(f"/v/py/{thread}/{call}").st_size != thread * 100000 + call:
            wrong.append((thread, call))
threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
for t in threads: t.start()
for t in threads: t.join()
print(len(wrong))
"""


def test_a_multithreaded_python_program_gets_its_own_answers(service: LibcService) -> None:
    tids: Counter[int] = Counter()

    def handler(svc: LibcService) -> None:
        if str(svc.arguments()[0]).startswith("/v/py/"):
            tids[svc.process.tid] += 1
        answer_by_path(svc)

    ran = run_served(service, [sys.executable, "-c", PYTHON_THREADS], handler)
    assert ran.stdout.strip() == "0", ran.stderr
    assert sorted(tids.values()) == [100] * 6  # one connection per thread, named by its tid
