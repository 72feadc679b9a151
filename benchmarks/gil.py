"""What a busy Python thread in the test costs the programs of a Sandbox, in one run.

    python benchmarks/gil.py [--calls 2000] [--repeat 3]

The master is Python in the test's process: every forwarded call needs the GIL. While another
thread of the test computes, the master waits for it to give the GIL up, which CPython asks of
it only after ``sys.getswitchinterval()`` (5 ms by default). Each row times ``access`` (a
forwarded call: the model's answer) in loops of benchmarks/loop.c in a Sandbox, alone and beside
a thread spinning in pure Python, at the default switch interval and at the Sandbox's (which
lowers it while it is open), and prints µs per call, best of R, and how much of its work the
busy thread got done meanwhile (iterations per ms), so that what the lower interval costs that
thread shows too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from roundtrip import build_loop, us_per_call  # noqa: E402

import libcfake.sandbox  # noqa: E402
from libcfake import Sandbox  # noqa: E402

FILE = "/srv/data/file"


def busy(stop: threading.Event, count: list[int]) -> None:
    """Pure Python work, never waiting: it holds the GIL until asked to give it up."""
    n = 0
    while not stop.is_set():
        for _ in range(1000):
            n += 1
        count[0] = n


def one_run(loop: Path, calls: int, spinning: bool, interval: float | None) -> tuple[float, float]:
    """(µs per forwarded access, the busy thread's iterations per ms; 0 when none ran)."""
    saved = libcfake.sandbox.SWITCH_INTERVAL
    if interval is not None:
        libcfake.sandbox.SWITCH_INTERVAL = interval
    try:
        with Sandbox() as sb:
            sb.fs.create_file(FILE, contents="x")
            stop, count = threading.Event(), [0]
            thread = threading.Thread(target=busy, args=(stop, count))
            if spinning:
                thread.start()
            start = time.perf_counter()
            done = sb.run([str(loop), "access", FILE, str(calls)], capture_output=True, text=True)
            elapsed = time.perf_counter() - start
            stop.set()
            if spinning:
                thread.join()
    finally:
        libcfake.sandbox.SWITCH_INTERVAL = saved
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return us_per_call(done.stdout), count[0] / (elapsed * 1000) if spinning else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    default = sys.getswitchinterval()
    rows = {
        f"alone, default interval ({default * 1000:g} ms)": (False, default),
        f"beside a busy thread, default interval ({default * 1000:g} ms)": (True, default),
        "alone, the Sandbox's interval": (False, None),
        "beside a busy thread, the Sandbox's interval": (True, None),
    }
    best: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        loop = build_loop(Path(tmp))
        for _ in range(args.repeat):
            for name, (spinning, interval) in rows.items():
                us, rate = one_run(loop, args.calls, spinning, interval)
                if name not in best or us < best[name][0]:
                    best[name] = (us, rate)
    print(f"forwarded access, best of {args.repeat}; the Sandbox's interval: "
          f"{libcfake.sandbox.SWITCH_INTERVAL * 1000:g} ms")  # fmt: skip
    for name, (us, rate) in best.items():
        extra = f"   busy thread: {rate:,.0f} iterations/ms" if rate else ""
        print(f"{name:<58} {us:9.1f} us{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
