"""A Sandbox master's own work per forwarded call, with no other process (issue 20).

    python benchmarks/master_calls.py [--calls N] [--repeat R]            µs per call
    python benchmarks/master_calls.py --profile CALL [--calls N]          cProfile of CALL
    python benchmarks/master_calls.py --only CALL --calls N --repeat 1    for callgrind:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python benchmarks/master_calls.py --only create --calls 1200 --repeat 1

A Sandbox is made (backend "preload": no supervisor threads), its master thread stopped, and
this thread plays both ends: a raw client connected to the master's socket sends one call as the
shim would (the hello first), then the master's own code receives it and answers it with the
Sandbox's pipeline (``Sandbox._answer``: request, fault rules, route, answer, journal, reply),
and the client reads the reply (closing the descriptor an open brings). Nothing else runs, and
no call waits (the message is in the socket before ``receive``), so an instruction count is
deterministic: count at two numbers of calls and divide the difference (callgrind's total
``Ir`` at 1,200 calls minus at 200, over 1,000), as ``shim_instructions.py`` does.

The calls are those of ``benchmarks/sandbox.py``: access(R_OK) and a read-only open of a model
file, and a create (open O_WRONLY|O_CREAT|O_EXCL of a new name in a model directory, a new
file each call). "minimal" is roundtrip.py's minimal LibcService handler answering an access
over the same kind of connection: the yardstick of issue 20's targets.

The timing mode prints µs per call (the median of each batch, best of R batches, batches
interleaved) for each call and the minimal handler.
"""

from __future__ import annotations

import argparse
import array
import cProfile
import os
import pstats
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from libcfake import LibcService, Sandbox, protocol  # noqa: E402
from libcfake.protocol import UMASK_KNOWN  # noqa: E402

FILE = "/srv/data/file"
NEW = "/srv/new"
UMASK = UMASK_KNOWN | 0o022
ANCILLARY = socket.CMSG_SPACE(4 * protocol.MAX_FDS)
CALLS = ("access", "open", "create")


def message(call: str) -> bytes:
    """The call the shim sends for ``call`` (a create's: a template whose name ends in eight
    digits, which :meth:`Harness.one` replaces with the number of the call)."""
    if call == "access":
        return protocol.encode_call("access", FILE.encode(), flags=os.R_OK, umask=UMASK)
    if call == "open":
        flags = os.O_RDONLY | os.O_CLOEXEC
        return protocol.encode_call("open", FILE.encode(), flags=flags, umask=UMASK)
    assert call == "create"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    path = f"{NEW}/{0:08d}".encode()
    return protocol.encode_call("open", path, flags=flags, mode=0o644, umask=UMASK)


MESSAGES = {call: message(call) for call in CALLS}


class Harness:
    """A Sandbox whose master this thread runs, and a raw client of it."""

    def __init__(self, sb: Sandbox | None = None) -> None:
        self.sb = sb
        self.service = sb._service if sb is not None else LibcService()
        if sb is not None:
            sb.fs.create_file(FILE, contents="the benchmark's file\n")
            sb.fs.create_dir(NEW)
            sb._service.stop()  # this thread serves from now on
            sb._thread.join()
        self.handler: Callable[[LibcService], None] = sb._answer if sb is not None else _minimal
        self.program = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.program.connect(self.service.socket_path)
        self.program.send(protocol.encode_hello(pid=os.getpid(), exe="/bin/loop", umask=0o022))
        self.created = 0
        self.one("access")  # the hello is read with the first call
        self.program.recv(protocol.MAX_MESSAGE)  # the reply; the welcome came first

    def one(self, call: str) -> None:
        sent = MESSAGES[call]
        if call == "create":  # a new name each time
            self.created += 1
            sent = sent[:-8] + b"%08d" % self.created
        self.program.send(sent)
        self.service.receive()
        self.handler(self.service)
        _, ancillary, _, _ = self.program.recvmsg(protocol.MAX_MESSAGE, ANCILLARY)
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                for fd in array.array("i", data[: len(data) - len(data) % 4]):
                    os.close(fd)

    def close(self) -> None:
        self.program.close()
        if self.sb is not None:
            self.sb.close()
        else:
            self.service.close()


def _minimal(svc: LibcService) -> None:
    svc.send(0)


def timed(harness: Harness, call: str, calls: int) -> float:
    """The median µs of ``calls`` calls (message in, reply out, the client's end included)."""
    clock = time.perf_counter_ns
    times = []
    for _ in range(calls):
        start = clock()
        harness.one(call)
        times.append(clock() - start)
    return statistics.median(times) / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--only", choices=(*CALLS, "minimal"), help="just make the calls (for callgrind)"
    )
    parser.add_argument("--profile", choices=CALLS, help="cProfile the calls")
    args = parser.parse_args()
    if args.only == "minimal":  # the minimal handler answering access
        harness = Harness()
        try:
            for _ in range(args.calls):
                harness.one("access")
        finally:
            harness.close()
        return 0
    if args.only or args.profile:
        harness = Harness(Sandbox(backend="preload"))
        try:
            call = args.only or args.profile
            if args.only:
                for _ in range(args.calls):
                    harness.one(call)
                return 0
            for _ in range(100):  # warm: the caches of callers and symbols
                harness.one(call)
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(args.calls):
                harness.one(call)
            profile.disable()
            stats = pstats.Stats(profile)
            print(f"{stats.total_calls / args.calls:.1f} Python calls per {call}")
            stats.sort_stats("tottime").print_stats(30)
        finally:
            harness.close()
        return 0
    results: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        minimal = Harness()
        try:
            results.setdefault("minimal", []).append(timed(minimal, "access", args.calls))
        finally:
            minimal.close()
        for call in CALLS:
            harness = Harness(Sandbox(backend="preload"))
            try:
                results.setdefault(call, []).append(timed(harness, call, args.calls))
            finally:
                harness.close()
    floor = min(results["minimal"])
    print(f"master's µs per call (median of {args.calls}), best and worst of {args.repeat}")
    for name, values in results.items():
        print(f"{name:<8} {min(values):7.2f} {max(values):7.2f}  {min(values) / floor:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
