"""Cost of one forwarded call, against native and against the floor of any Python master.

    python benchmarks/roundtrip.py [--calls N] [--repeat R]

Three loops run in one process tree, in one run, so the machine's noise hits all of them:

* native     a C loop of stat() on a real path, no shim;
* forwarded  the same loop behind the shim, each stat answered by a minimal LibcService handler
             (receive, then send a fixed StatResult);
* echo       the same C program sending a message of a forwarded stat's size over SEQPACKET to a
             Python loop that answers with a reply of the same size: the floor for a master
             written in Python.

It prints microseconds per call (best of R repeats) and the ratios; the target for the
forwarded call is at most 1.5x the echo floor.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from libcfake import LibcService, StatResult, protocol  # noqa: E402

TARGET = "/virtual/benchmark"
TABLE = StatResult(type="regular", mode=0o644, size=1234)


def build_loop(workdir: Path) -> Path:
    exe = workdir / "loop"
    subprocess.run(
        [os.environ.get("CC", "gcc"), "-O2", "-pthread", "-o", str(exe), str(HERE / "loop.c")],
        check=True,
    )
    return exe


def native(loop: Path, calls: int) -> float:
    return float(
        subprocess.run(
            [str(loop), "stat", "/", str(calls)], check=True, capture_output=True, text=True
        ).stdout
    )


def forwarded(loop: Path, calls: int, threads: int = 0) -> float:
    """us per forwarded stat (with ``threads``: per call of all threads together)."""
    args = ["stat", TARGET, str(calls)] if not threads else ["threads", str(threads), TARGET,
                                                              str(calls // threads)]  # fmt: skip
    with LibcService() as svc:
        proc = svc.spawn([str(loop), *args], stdout=subprocess.PIPE, text=True)

        def handler(svc: LibcService) -> None:
            svc.send(TABLE)

        svc.serve(handler, until=proc)
        assert proc.stdout is not None
        return float(proc.stdout.read())


def echo(loop: Path, calls: int, workdir: Path) -> float:
    request = protocol.encode_call("stat", TARGET.encode())
    reply = protocol.encode_reply(1, protocol.ANSWER, 0, 0, stat=TABLE)
    path = str(workdir / "echo.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as listener:
        listener.bind(path)
        listener.listen(1)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                while conn.recv(protocol.MAX_MESSAGE):
                    conn.send(reply)

        thread = threading.Thread(target=serve)
        thread.start()
        out = subprocess.run(
            [str(loop), "echo", path, str(calls), str(len(request))],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        thread.join()
        os.unlink(path)
    return float(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        loop = build_loop(workdir)
        results: dict[str, list[float]] = {"native": [], "forwarded": [], "echo": []}
        for _ in range(args.repeat):  # interleaved, so drift affects every row alike
            results["native"].append(native(loop, args.calls * 10))
            results["forwarded"].append(forwarded(loop, args.calls))
            results["echo"].append(echo(loop, args.calls, workdir))
        threaded = {n: min(forwarded(loop, args.calls, n) for _ in range(args.repeat))
                    for n in (1, 2, 4, 8)}  # fmt: skip
    best = {name: min(values) / 1000 for name, values in results.items()}
    print(f"{'loop':<10} {'us/call':>9}  (best of {args.repeat}, {args.calls} calls)")
    for name, value in best.items():
        print(f"{name:<10} {value:>9.2f}")
    print(f"forwarded / echo floor: {best['forwarded'] / best['echo']:.2f}  (target <= 1.5)")
    print(f"forwarded / native:     {best['forwarded'] / best['native']:.1f}")
    one = threaded[1]
    for count, per_call in threaded.items():
        print(f"{count} thread(s): {1e9 / per_call / 1000:7.1f} k calls/s "
              f"({one / per_call:.2f}x one thread's throughput; target for 8: >= 1)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
