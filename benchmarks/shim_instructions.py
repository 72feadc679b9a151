"""Instructions the program spends per call behind the shim, counted by callgrind.

    python benchmarks/shim_instructions.py          # needs valgrind (apt-get install valgrind)

``loop.c`` makes each call N times under ``valgrind --tool=callgrind`` behind the shim, answered
by a minimal handler that waits 1 ms before each reply, so the shim never spins (its spin is
bounded by time, not by count) and every forwarded call takes the same path: send, then a
blocking receive. The count per call is (Ir at 1,200 calls - Ir at 200 calls) / 1,000, which
cancels start-up; it repeats to the instruction, whatever else the machine does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from libcfake import LibcService, StatResult

HERE = Path(__file__).resolve().parent
_STAT = StatResult(type="regular", mode=0o644, size=7)
_CASES = (
    ("forwarded stat", "stat", "/srv/x"),
    ("forwarded open", "open", "/srv/x"),
    ("passed-through stat", "stat", "/usr/bin/env"),
    ("unwatched write", "write", "/dev/null"),  # the data calls' cost for every program
)
#: Measured without the shim too: what the shim adds is the difference.
_NATIVE_CASES = frozenset({"write"})


def _answer(devnull: int):  # type: ignore[no-untyped-def]
    def answer(svc: LibcService) -> None:
        time.sleep(0.001)
        function = svc.function_
        if function in ("stat", "lstat"):
            svc.send(_STAT)
        elif function in ("open", "openat"):
            svc.send_with_fds(0, [devnull])
        else:
            svc.use_slave_credentials()

    return answer


def native_instructions(loop: Path, call: str, path: str, calls: int, work: Path) -> int:
    """The same loop without the shim (no master, no LD_PRELOAD)."""
    out = work / f"callgrind.native.{call}.{calls}"
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         str(loop), call, path, str(calls)],
        capture_output=True, text=True,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"loop {call} {path} failed: {proc.stderr[-500:]}")
    return int(found.group(1))


def instructions(loop: Path, call: str, path: str, calls: int, work: Path) -> int:
    out = work / f"callgrind.{call}.{calls}"
    devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)  # (write opens it too)
    try:
        with LibcService(passthrough=["/usr", "/lib"]) as svc:
            proc = svc.spawn(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                 str(loop), call, path, str(calls)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            status = svc.serve(_answer(devnull), until=proc)
            assert proc.stderr is not None
            errors = proc.stderr.read()
    finally:
        os.close(devnull)
    if status != 0:
        raise RuntimeError(f"loop {call} {path} failed: {errors[-500:]}")
    found = re.search(r"Collected : (\d+)", errors)
    if found is None:
        raise RuntimeError(f"no callgrind total in: {errors[-500:]}")
    return int(found.group(1))


def main() -> int:
    with tempfile.TemporaryDirectory() as name:
        work = Path(name)
        loop = work / "loop"
        subprocess.run([os.environ.get("CC", "gcc"), "-O2", "-pthread", "-o", str(loop),
                        str(HERE / "loop.c")], check=True)  # fmt: skip
        for label, call, path in _CASES:
            few = instructions(loop, call, path, 200, work)
            many = instructions(loop, call, path, 1200, work)
            print(f"{label:22} {(many - few) / 1000:8.1f} instructions per call", flush=True)
            if call in _NATIVE_CASES:
                few = native_instructions(loop, call, path, 200, work)
                many = native_instructions(loop, call, path, 1200, work)
                print(f"{label + ', native':22} {(many - few) / 1000:8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
