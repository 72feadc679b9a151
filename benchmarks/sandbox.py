"""Cost of a forwarded call in a Sandbox, against the same call answered by a minimal handler.

    python benchmarks/sandbox.py [--calls N] [--repeat R]

A Sandbox's master does the work a test bought it for on every forwarded call: it resolves the
path in the model, checks the caller's permissions, journals the call and answers from the
model (a create also makes the file and its memfd). This measures what that costs per call, in
loops of benchmarks/loop.c, interleaved (each repeat runs every loop once, in a new Sandbox):

* native    the call on a directory under /dev/shm (tmpfs), no shim;
* minimal   the call answered by roundtrip.py's minimal LibcService handler (a fixed answer):
            the round trip and a Python master's least work;
* sandbox   the call in a Sandbox whose model holds the file;
* master    the Sandbox master's CPU time per call (getrusage of this process, whose only busy
            thread while the loop runs is the master's).

The calls: access(R_OK) and open+close (read-only) of one file, and create (open with O_CREAT
and O_EXCL of a new file, then close; N new files a repeat). Stats are not measured: a Sandbox
answers those in the shim from its metadata snapshot, without a round trip.

It prints microseconds per call, best of R, and sandbox/minimal. The master's CPU time equals
the sandbox column when the master is the bound (the program waits for it).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from roundtrip import behind_shim, build_loop, native, us_per_call  # noqa: E402

from libcfake import Sandbox  # noqa: E402

#: loop.c's calls measured here, and the label printed.
CALLS = {"access": "access", "open": "open+close", "create": "create+close"}
FILE = "/srv/data/file"  # in the model: what access and open name
NEW = "/srv/new"  # in the model: the directory create fills


def in_sandbox(loop: Path, call: str, calls: int) -> tuple[float, float]:
    """(µs per call, the master's CPU µs per call) of ``loop CALL`` in a new Sandbox."""
    with Sandbox() as sb:
        sb.fs.create_file(FILE, contents="the benchmark's file\n")
        sb.fs.create_dir(NEW)
        argument = NEW if call == "create" else FILE
        before = resource.getrusage(resource.RUSAGE_SELF)
        done = sb.run([str(loop), call, argument, str(calls)], capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_SELF)
    if done.returncode != 0:
        raise RuntimeError(f"{call} in a Sandbox exited with {done.returncode}: {done.stderr}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return us_per_call(done.stdout), cpu / calls * 1e6


def on_tmpfs(loop: Path, call: str, calls: int) -> float:
    """µs per call of ``loop CALL`` natively, on a file (or a new directory) under /dev/shm."""
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        path = Path(shm, "file")
        path.write_text("the benchmark's file\n")
        if call == "create":
            return native(loop, call, shm, calls)
        return native(loop, call, str(path), calls)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.calls
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        loop = build_loop(Path(tmp))
        for _ in range(args.repeat):  # interleaved, so drift affects every row alike
            for call in CALLS:
                results.setdefault((call, "native"), []).append(on_tmpfs(loop, call, n))
                argument = "/virtual/new" if call == "create" else "/virtual/file"
                minimal = behind_shim(loop, [call, argument, str(n)])
                results.setdefault((call, "minimal"), []).append(minimal)
                sandbox, master = in_sandbox(loop, call, n)
                results.setdefault((call, "sandbox"), []).append(sandbox)
                results.setdefault((call, "master"), []).append(master)
    best = {key: min(values) for key, values in results.items()}
    print(f"us per call, best of {args.repeat}; {n} calls a loop")
    print(f"{'call':<14} {'native':>8} {'minimal':>8} {'sandbox':>8} {'master cpu':>11}"
          f" {'sandbox/minimal':>16}")  # fmt: skip
    for call, label in CALLS.items():
        row = [best[call, kind] for kind in ("native", "minimal", "sandbox", "master")]
        print(f"{label:<14} {row[0]:8.2f} {row[1]:8.2f} {row[2]:8.2f} {row[3]:11.2f}"
              f" {row[2] / row[1]:15.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
