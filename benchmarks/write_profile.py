"""What a write-heavy workload costs the master, call by call (issue 20).

    python benchmarks/write_profile.py [--entries 5000] [--only cp] [--profile 25]

Runs each workload of benchmarks/workloads.py that writes (``cp -r``, ``tar xf``, ``git add -A
&& git commit``) and the first ``ls -lR`` after a change once in a Sandbox (the default backend)
and prints, for each: the wall time; the calls forwarded to the master by name; the calls the
shim answered from the snapshot (notes); what before_change did with each change (withdrew
entries, or emptied the snapshot, and for which call); and with ``--profile N`` the N costliest
functions of the master's Python (cProfile of every thread that answers calls).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from workloads import VIRTUAL, build_native, build_virtual, make_tree  # noqa: E402

from libcfake import Sandbox, publish  # noqa: E402
from libcfake import sandbox as sandbox_module  # noqa: E402


class Counts:
    """What the master did during one workload."""

    def __init__(self) -> None:
        self.forwarded: Counter[str] = Counter()
        self.clears: Counter[str] = Counter()  # what emptied the snapshot, by call (or "test")
        self.bounded: Counter[str] = Counter()  # changes that withdrew entries only
        self.publishes = 0
        self.profiles: list[cProfile.Profile] = []
        self.profiling = False
        self._local = threading.local()

    def profile(self) -> cProfile.Profile:
        profile = getattr(self._local, "profile", None)
        if profile is None:
            profile = self._local.profile = cProfile.Profile()
            self.profiles.append(profile)
        return profile


def instrument(counts_of: Callable[[], Counts]) -> None:
    """Wrap the Sandbox's and the Publisher's methods to count into ``counts_of()``."""
    answer = sandbox_module.Sandbox._answer

    def counted_answer(self: Any, svc: Any) -> None:
        counts = counts_of()
        counts.forwarded[svc.call.raw.function] += 1
        if counts.profiling:
            counts.profile().runcall(answer, self, svc)
        else:
            answer(self, svc)

    sandbox_module.Sandbox._answer = counted_answer  # type: ignore[method-assign]
    before_change = publish.Publisher.before_change
    unpublish = publish.Publisher.unpublish
    publish_directory = publish.Publisher.publish
    current: dict[str, str] = {}

    def counted_before_change(self: Any, request: Any) -> None:
        current["call"] = request.name
        cleared = counts_of().clears.total()
        before_change(self, request)
        if counts_of().clears.total() == cleared and self.snapshot.published:
            counts_of().bounded[request.name] += 1
        current.pop("call", None)

    def counted_unpublish(self: Any) -> None:
        if self.snapshot is not None and self.snapshot.published:
            counts_of().clears[current.get("call", "other (written, test, fault...)")] += 1
        unpublish(self)

    def counted_publish(self: Any, *args: Any, **kwargs: Any) -> None:
        counts_of().publishes += 1
        publish_directory(self, *args, **kwargs)

    publish.Publisher.before_change = counted_before_change  # type: ignore[method-assign]
    publish.Publisher.unpublish = counted_unpublish  # type: ignore[method-assign]
    publish.Publisher.publish = counted_publish  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest functions")
    args = parser.parse_args()
    files = make_tree(args.entries)
    base = Path(tempfile.mkdtemp(dir="/dev/shm"))
    build_native(base / "bench", files)
    subprocess.run(["tar", "cf", str(base / "bench.tar"), "-C", str(base), "bench"], check=True)
    counts = Counts()

    def current() -> Counts:
        return counts

    instrument(current)
    git = "git -c user.name=bench -c user.email=bench@example.test"
    workloads: list[tuple[str, list[str], list[str]]] = [  # (the master's memfds: one a file)
        ("cp -r", ["rm", "-rf", "/copy", "/untar"], ["cp", "-r", VIRTUAL, "/copy"]),
        ("tar xf", ["sh", "-c", "rm -rf /copy /untar && mkdir /untar"],
         ["tar", "xf", "/bench.tar", "-C", "/untar"]),
        ("git add -A && git commit",
         ["sh", "-c", f"rm -rf /copy /untar && cd {VIRTUAL} && rm -rf .git && git init -q"],
         ["sh", "-c", f"cd {VIRTUAL} && {git} add -A && {git} commit -q -m files"]),
        ("ls -lR, after a change", ["sh", "-c", "rm -rf /copy /untar"], ["ls", "-lR", VIRTUAL]),
    ]  # fmt: skip
    with Sandbox() as sb:
        print(f"backend {sb.backend}")
        build_virtual(sb, files)
        sb.fs.create_file("/bench.tar", contents=(base / "bench.tar").read_bytes())
        for name, prepare, command in workloads:
            if args.only and not any(only in name for only in args.only):
                continue
            sb.run(prepare, check=True)
            if name.startswith("ls"):  # a change through sb.fs: the snapshot is emptied
                sb.fs.create_file("/tmp/changed")
                sb.fs.remove("/tmp/changed")
            sb.journal.clear()
            counts = Counts()
            counts.profiling = args.profile > 0
            start = time.perf_counter()
            sb.run(command, stdout=subprocess.DEVNULL, check=True)
            wall = time.perf_counter() - start
            notes = Counter(entry.call for entry in sb.journal) - counts.forwarded
            print(f"\n== {name}: {wall * 1000:.0f} ms")
            print(f"forwarded {counts.forwarded.total()}: {dict(counts.forwarded.most_common())}")
            print(f"answered in the shim (notes) {notes.total()}: {dict(notes.most_common())}")
            print(f"snapshot emptied {counts.clears.total()}: {dict(counts.clears)}")
            print(f"changes bounded (entries withdrawn) {counts.bounded.total()}: "
                  f"{dict(counts.bounded)}")  # fmt: skip
            print(f"directories published {counts.publishes}")
            where: Counter[str] = Counter()  # the forwarded calls by name and directory
            for entry in sb.journal:
                if not entry.from_snapshot and entry.path is not None:
                    directory = "/".join(entry.path.split("/")[:3])  # (the first two levels)
                    kind = "/x" if "/objects/" in entry.path else ""
                    where[f"{entry.call} {directory}{kind}"] += 1
            print(f"forwarded by call and place: {dict(where.most_common(12))}")
            if counts.profiles:
                stats = pstats.Stats(counts.profiles[0])
                for profile in counts.profiles[1:]:
                    stats.add(profile)
                stats.sort_stats("tottime").print_stats(args.profile)
    shutil.rmtree(base, ignore_errors=True)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
