"""Cost of one call behind the shim, against native and against the floor of any Python master.

    python benchmarks/roundtrip.py [--calls N] [--repeat R]

Every loop is benchmarks/loop.c making one call N times, and all of them run in one run,
interleaved (each repeat runs every loop once), so the machine's noise hits them alike:

* native       the call with no shim: stat, open+close and access of a file under /usr,
               getaddrinfo of "localhost" (from /etc/hosts), connect to a loopback port nothing
               listens on (refused);
* passthrough  stat and open+close of that file behind the shim, /usr being a passthrough
               prefix: done inside the shim without a round trip (after the first call, the
               shim's check of where the path leads is remembered);
* forwarded    each call answered by a minimal LibcService handler, as a test's would be:
               stat with a fixed StatResult, open with send_with_fds() of /dev/null (the program
               gets its own descriptor, which it closes), access with 0, getaddrinfo with one
               address, connect with -1 ECONNREFUSED (what an unrouted connect gets; the
               program's socket comes along and the master closes its copy);
* echo         the C program sending a message of a forwarded call's size over SEQPACKET to a
               Python loop that answers with a reply of the master's size: the floor for a master
               written in Python. It comes in three shapes, one for each kind of work a call
               carries besides the round trip: plain (stat's messages; the floor of stat, access
               and getaddrinfo), fd-back (open's: the reply brings a descriptor of /dev/null, which
               the program closes) and socket-there (connect's: the program makes a TCP socket and
               sends it with the call, the loop closes its copy, the program its own);
* threads      the forwarded stat from 1, 2, 4 and 8 threads of one program; and again with the
               master and the program on separate CPUs (the master's thread on the first, the
               program on the second, with ``sched_setaffinity``), where it has two;
* master       the master's own time per call, with this thread playing the program (see
               :func:`master_work`): what a change to the master's Python buys, without the
               scheduler's noise.

It prints microseconds per call (best of R repeats) and the ratios: fwd/echo against the plain
echo, fwd/floor against the echo of the call's own shape. The targets: passthrough at most 1.2x
native, forwarded at most 1.5x the echo floor.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import errno
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from libcfake import LibcService, StatResult, protocol  # noqa: E402

TARGET = "/virtual/benchmark"
TABLE = StatResult(type="regular", mode=0o644, size=1234)
ADDRESS = ("10.0.0.5", None)
#: A real file under the passthrough prefix /usr, for the native and passthrough loops.
HOST_FILE = "/usr/bin/env"

#: loop.c's calls: (its name, the label printed, whether it passes through under /usr).
CALLS = [
    ("stat", "stat", True),
    ("open", "open+close", True),
    ("access", "access", False),
    ("getaddrinfo", "getaddrinfo", False),
    ("connect", "connect", False),
]
#: Local loops (native, passthrough) of these calls are this many times longer than forwarded
#: ones, so that they too run long enough to measure.
LOCAL_FACTOR = {"stat": 10, "open": 10, "access": 10}
#: The echo shapes: the request each sends (as the shim sends that call), the reply it gets (as
#: :func:`answer` gives it; both of the real sizes) and the forwarded calls it is the floor of.
SHAPES = {
    "plain": (
        protocol.encode_call("stat", TARGET.encode()),
        protocol.encode_stat_reply(1, TABLE),
        ("stat", "access", "getaddrinfo"),
    ),
    "fd-back": (
        protocol.encode_call("open", TARGET.encode()),
        protocol.encode_result(1, 0),  # with the descriptor, as send_with_fds(0, [fd])
        ("open",),
    ),
    "socket-there": (
        protocol.encode_call("connect_inet", fds=protocol.FD_SOCKET),
        protocol.encode_result(1, -1, errno.ECONNREFUSED),
        ("connect",),
    ),
}
FLOOR = {call: shape for shape, (_, _, calls) in SHAPES.items() for call in calls}
#: Room for the descriptors a call may carry, as the master's.
ANCILLARY_SPACE = socket.CMSG_SPACE(protocol.MAX_FDS * array.array("i").itemsize)


def build_loop(workdir: Path) -> Path:
    exe = workdir / "loop"
    subprocess.run(
        [os.environ.get("CC", "gcc"), "-O2", "-pthread", "-o", str(exe), str(HERE / "loop.c")],
        check=True,
    )
    return exe


def us_per_call(output: str) -> float:
    """loop.c prints nanoseconds per call; microseconds."""
    return float(output) / 1000


def native(loop: Path, call: str, argument: str, calls: int) -> float:
    done = subprocess.run(
        [str(loop), call, argument, str(calls)], check=True, capture_output=True, text=True
    )
    return us_per_call(done.stdout)


def answer(svc: LibcService, devnull: int) -> None:
    """The minimal handler: one fixed answer per kind of call."""
    function = svc.function_
    if function in ("stat", "lstat"):
        svc.send(TABLE)
    elif function in ("open", "openat"):
        svc.send_with_fds(0, [devnull])
    elif function in ("access", "eaccess"):
        svc.send(0)
    elif function == "getaddrinfo":
        svc.send([ADDRESS])
    elif function == "connect_inet":
        svc.send(-1, errno.ECONNREFUSED)
    else:
        svc.use_slave_credentials()


def behind_shim(
    loop: Path, args: list[str], passthrough: list[str] | None = None, *, pinned: bool = False
) -> float:
    """us per call of ``loop ARGS`` behind the shim, served by :func:`answer`; ``pinned``: this
    thread (the master) on the first CPU, the program on the second."""
    devnull = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    cpus = sorted(os.sched_getaffinity(0))
    master_cpus, program_cpus = ({cpus[0]}, {cpus[1]}) if pinned else (None, None)
    try:
        with LibcService(passthrough=passthrough or ()) as svc, _pinned(master_cpus):
            proc = svc.spawn([str(loop), *args], stdout=subprocess.PIPE, text=True,
                             preexec_fn=_pinning(program_cpus))  # fmt: skip
            status = svc.serve(lambda svc: answer(svc, devnull), until=proc)
            assert proc.stdout is not None
            output = proc.stdout.read()
            proc.stdout.close()
    finally:
        os.close(devnull)
    if status != 0:
        raise RuntimeError(f"{args} behind the shim exited with {status}")
    return us_per_call(output)


@contextlib.contextmanager
def _pinned(cpus: set[int] | None) -> Iterator[None]:
    """This thread on ``cpus`` for the block (None: where it was)."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _pinning(cpus: set[int] | None) -> Callable[[], None] | None:
    """A preexec_fn that puts the program on ``cpus`` (None: none)."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def close_received(ancillary: list[tuple[int, int, bytes]]) -> None:
    """Close the descriptors recvmsg brought (only SCM_RIGHTS can come on these sockets)."""
    for _level, _kind, rights in ancillary:
        for fd in array.array("i", rights):
            os.close(fd)


def echo(loop: Path, calls: int, workdir: Path, shape: str) -> float:
    """us per round trip of ``loop echo`` in ``shape`` (see :data:`SHAPES`) with a Python loop."""
    request, reply, _ = SHAPES[shape]
    path = str(workdir / "echo.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as listener:
        listener.bind(path)
        listener.listen(1)

        def serve(conn: socket.socket) -> None:
            if shape == "plain":
                while conn.recv(protocol.MAX_MESSAGE):
                    conn.send(reply)
            elif shape == "fd-back":  # as the master's send_with_fds
                devnull = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
                rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [devnull]))]
                try:
                    while conn.recv(protocol.MAX_MESSAGE):
                        conn.sendmsg([reply], rights)
                finally:
                    os.close(devnull)
            else:  # socket-there: as the master receives a call and closes its descriptors
                while True:
                    data, ancillary, _, _ = conn.recvmsg(
                        protocol.MAX_MESSAGE, ANCILLARY_SPACE, socket.MSG_CMSG_CLOEXEC
                    )
                    close_received(ancillary)
                    if not data:
                        break
                    conn.send(reply)

        def accept() -> None:
            conn, _ = listener.accept()
            with conn:
                serve(conn)

        thread = threading.Thread(target=accept)
        thread.start()
        out = subprocess.run(
            [str(loop), "echo", path, str(calls), str(len(request)), shape],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        thread.join()
        os.unlink(path)
    return us_per_call(out)


#: The calls whose master work :func:`master_work` measures, as the shim sends them.
IN_THREAD_CALLS = {
    "stat": SHAPES["plain"][0],
    "open": SHAPES["fd-back"][0],
    "access": protocol.encode_call("access", TARGET.encode()),
    "getaddrinfo": protocol.encode_call("getaddrinfo", b"db.internal", socktype=socket.SOCK_STREAM),
}


def master_work(calls: int) -> dict[str, float]:
    """The master's own time per call, with no other process: the median microseconds from a
    call being in the master's socket to its reply being sent, the program's end played by this
    thread. Unlike a round trip it does not depend on where the scheduler puts the two ends, so
    it shows what a change to the master's Python buys. "echo" is the same for the plain echo's
    loop (recv and send). The calls and the echo take turns, so that drift hits them alike."""
    clock = time.perf_counter_ns
    times: dict[str, list[int]] = {call: [] for call in [*IN_THREAD_CALLS, "echo"]}
    devnull = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    program = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    echo_program, echo_loop = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    request, reply, _ = SHAPES["plain"]
    try:
        with LibcService() as svc:
            program.connect(svc.socket_path)
            program.send(protocol.encode_hello(pid=os.getpid(), exe=sys.executable))
            program.send(IN_THREAD_CALLS["stat"])  # a first call, so that the hello is read
            svc.receive()
            answer(svc, devnull)
            program.recv(protocol.MAX_MESSAGE)  # the welcome
            program.recv(protocol.MAX_MESSAGE)  # the answer
            for _ in range(calls):
                for call, message in IN_THREAD_CALLS.items():
                    program.send(message)
                    start = clock()
                    svc.receive()
                    answer(svc, devnull)
                    times[call].append(clock() - start)
                    _, ancillary, _, _ = program.recvmsg(protocol.MAX_MESSAGE, ANCILLARY_SPACE)
                    close_received(ancillary)  # open's descriptor
                echo_program.send(request)
                start = clock()
                echo_loop.recv(protocol.MAX_MESSAGE)
                echo_loop.send(reply)
                times["echo"].append(clock() - start)
                echo_program.recv(protocol.MAX_MESSAGE)
    finally:
        for end in (program, echo_program, echo_loop):
            end.close()
        os.close(devnull)
    return {call: statistics.median(values) / 1000 for call, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.calls
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections to it are refused
        port = str(closed.getsockname()[1])
        native_argument = {"getaddrinfo": "localhost", "connect": port}
        forwarded_argument = {"getaddrinfo": "db.internal", "connect": port}
        workdir = Path(tmp)
        loop = build_loop(workdir)
        results: dict[tuple[str, str], list[float]] = {}

        def record(call: str, kind: str, us: float) -> None:
            results.setdefault((call, kind), []).append(us)

        for _ in range(args.repeat):  # interleaved, so drift affects every row alike
            for call, _label, passes in CALLS:
                local = n * LOCAL_FACTOR.get(call, 1)
                host = native_argument.get(call, HOST_FILE)
                record(call, "native", native(loop, call, host, local))
                virtual = forwarded_argument.get(call, TARGET)
                record(call, "forwarded", behind_shim(loop, [call, virtual, str(n)]))
                if passes:
                    through = behind_shim(loop, [call, HOST_FILE, str(local)], ["/usr"])
                    record(call, "passthrough", through)
            for shape in SHAPES:
                record(shape, "echo", echo(loop, n, workdir, shape))
        in_thread = [master_work(n) for _ in range(args.repeat)]
        threaded = {
            count: min(behind_shim(loop, ["threads", str(count), TARGET, str(n // count)])
                       for _ in range(args.repeat))
            for count in (1, 2, 4, 8)
        }  # fmt: skip
        separate = len(os.sched_getaffinity(0)) >= 2
        pinned = {
            count: min(behind_shim(loop, ["threads", str(count), TARGET, str(n // count)],
                                   pinned=True) for _ in range(args.repeat))
            for count in (1, 8) if separate
        }  # fmt: skip
    best = {key: min(values) for key, values in results.items()}
    floors = {shape: best[shape, "echo"] for shape in SHAPES}
    print(f"us per call, best of {args.repeat}; {n} forwarded calls a loop")
    print(f"{'call':<12} {'native':>8} {'passthr.':>9} {'forwarded':>10} {'pass/native':>12}"
          f" {'fwd/echo':>9} {'fwd/floor':>10} {'fwd/native':>11}")  # fmt: skip
    for call, label, passes in CALLS:
        here, fwd = best[call, "native"], best[call, "forwarded"]
        through = f"{best[call, 'passthrough']:9.2f}" if passes else f"{'-':>9}"
        ratio = f"{best[call, 'passthrough'] / here:11.2f}x" if passes else f"{'-':>12}"
        print(f"{label:<12} {here:8.2f} {through} {fwd:10.2f} {ratio} {fwd / floors['plain']:8.2f}x"
              f" {fwd / floors[FLOOR[call]]:9.2f}x {fwd / here:10.1f}x")  # fmt: skip
    for shape, us in floors.items():  # a Python master over SEQPACKET
        print(f"echo floor {shape + ':':<13} {us:6.2f} us (of {', '.join(SHAPES[shape][2])})")
    print("targets: passthrough <= 1.2x native; forwarded <= 1.5x the echo floor")
    work = {call: min(round_[call] for round_ in in_thread) for call in in_thread[0]}
    print(f"master's own time per call (no other process; median, best of {args.repeat}): "
          + ", ".join(f"{call} {us:.2f} us" for call, us in work.items() if call != "echo")
          + f"; the plain echo's loop {work['echo']:.2f} us")  # fmt: skip
    one = threaded[1]
    for count, per_call in threaded.items():
        print(f"{count} thread(s): {1000 / per_call:7.1f} k calls/s "
              f"({one / per_call:.2f}x one thread's throughput; target for 8: >= 0.9)")  # fmt: skip
    for count, per_call in pinned.items():
        print(f"{count} thread(s), master and program on separate CPUs: "
              f"{1000 / per_call:7.1f} k calls/s ({pinned[1] / per_call:.2f}x one thread's; "
              "target for 8: > 1)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
