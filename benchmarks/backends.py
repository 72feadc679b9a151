"""The hybrid backend against the preload backend alone, measured in one run.

    python benchmarks/backends.py [--entries 5000] [--repeat 7]

Each row runs one command natively (on a real tree under /dev/shm), in a Sandbox of the preload
backend and in one of the hybrid backend (every program also under the seccomp supervisor), both
over the same tree held in the model, interleaved, and prints the median wall time of each and
hybrid/preload. The target from the supervisor's issue: hybrid <= 1.15x preload for python's
start, ``ls -lR`` and ``find`` over 5,000 virtual files.

The last rows run busybox-static's ``find`` (no shim can reach it: every call it makes traps to
the supervisor) over the same virtual tree in the hybrid Sandbox, against busybox natively and
against the dynamic ``find`` under the preload backend: what a program the shim cannot serve
costs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from workloads import VIRTUAL, build_native, build_virtual, make_tree, quiet, timed  # noqa: E402

from libcfake import Sandbox  # noqa: E402

BUSYBOX = "/bin/busybox"
KINDS = ("native", "preload", "hybrid")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    files = make_tree(args.entries)
    base = Path(tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    native_root = base / "bench"
    build_native(native_root, files)
    python_code = "import json, email, http.client, sqlite3"
    static_busybox = os.path.exists(BUSYBOX)  # (Debian's busybox-static puts it there)
    rows: dict[str, dict[str, list[float]]] = {}

    with Sandbox(backend="preload") as preload, Sandbox(backend="hybrid") as hybrid:
        if hybrid.backend != "hybrid":
            print("the hybrid backend cannot run here: nothing to compare", file=sys.stderr)
            return 1
        for sb in (preload, hybrid):
            build_virtual(sb, files)

        def in_sandbox(sb: Sandbox, command: list[str]) -> Callable[[], object]:
            return lambda: sb.run(command, stdout=subprocess.DEVNULL, check=True)

        workloads: list[tuple[str, list[str], list[str]]] = [
            ("true", ["true"], ["true"]),
            (f"python -c '{python_code}'", [sys.executable, "-c", python_code],
             [sys.executable, "-c", python_code]),
            (f"ls -lR ({len(files)} files)", ["ls", "-lR", str(native_root)],
             ["ls", "-lR", VIRTUAL]),
            (f"find ({len(files)} files)", ["find", str(native_root)], ["find", VIRTUAL]),
        ]  # fmt: skip
        for _, _, virtual in workloads:  # a first run of each, untimed: the caches
            for sb in (preload, hybrid):
                in_sandbox(sb, virtual)()
        for _ in range(args.repeat):  # interleaved, so the machine's drift hits every column
            for name, native, virtual in workloads:
                row = rows.setdefault(name, {kind: [] for kind in KINDS})
                row["native"].append(timed(quiet(native)))
                row["preload"].append(timed(in_sandbox(preload, virtual)))
                row["hybrid"].append(timed(in_sandbox(hybrid, virtual)))
        static: dict[str, list[float]] = {"native": [], "dynamic find, preload": [], "hybrid": []}
        if static_busybox:
            in_sandbox(hybrid, [BUSYBOX, "find", VIRTUAL])()
            for _ in range(args.repeat):
                static["native"].append(timed(quiet([BUSYBOX, "find", str(native_root)])))
                static["dynamic find, preload"].append(
                    timed(in_sandbox(preload, ["find", VIRTUAL]))
                )
                static["hybrid"].append(timed(in_sandbox(hybrid, [BUSYBOX, "find", VIRTUAL])))
    shutil.rmtree(base, ignore_errors=True)

    print(f"median of {args.repeat} runs each")
    print(f"{'workload':<56} {'native':>9} {'preload':>9} {'hybrid':>9} {'hybrid/preload':>15}")
    for name, row in rows.items():
        native_ms, preload_ms, hybrid_ms = (statistics.median(row[k]) * 1000 for k in KINDS)
        print(f"{name:<56} {native_ms:7.1f}ms {preload_ms:7.1f}ms {hybrid_ms:7.1f}ms "
              f"{hybrid_ms / preload_ms:14.2f}x")  # fmt: skip
    if static["hybrid"]:
        native_ms, dynamic_ms, hybrid_ms = (statistics.median(v) * 1000 for v in static.values())
        print(
            f"busybox-static find ({len(files)} files), hybrid: {hybrid_ms:.1f}ms = "
            f"{hybrid_ms / native_ms:.1f}x busybox natively ({native_ms:.1f}ms), "
            f"{hybrid_ms / dynamic_ms:.1f}x the dynamic find under preload ({dynamic_ms:.1f}ms)"
        )
    else:
        print(f"busybox-static is not at {BUSYBOX}: no static row (.ci/run installs it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
