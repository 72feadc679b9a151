"""This tree's publishing and shadow directories against an older revision's, in one run.

    python benchmarks/compare.py --rev HEAD~1 [--entries 5000] [--repeat 5] [--only tar]

Loads ``libcfake/publish.py`` and ``libcfake/_shadow.py`` as they were at ``--rev`` beside this
tree's, and runs each workload natively and in two Sandboxes (the default backend) over the same
model tree, one with the old modules, one with these, interleaved; prints the medians, the
ranges and new/old. What is measured is what those two modules decide (what the snapshot keeps
through changes, how a first listing is published and synced); the rest of the code is this
tree's in both. Workloads: python's start, ``ls -lR`` and ``find`` a later program and after a
change the test makes, ``ls -lR`` in a fresh Sandbox (the first listing: shadow directories
made), ``cp -r``, ``tar xf``, ``git add -A && git commit``. Each run has a Sandbox of its own.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from workloads import VIRTUAL, build_native, build_virtual, make_tree, quiet, timed  # noqa: E402

import libcfake  # noqa: E402
from libcfake import Sandbox  # noqa: E402
from libcfake import sandbox as sandbox_module  # noqa: E402

KINDS = ("native", "old", "new")


def old_module(rev: str, name: str) -> ModuleType:
    """``libcfake/<name>.py`` as it was at ``rev``, loaded as ``libcfake.<name>_at_rev``."""
    source = subprocess.run(["git", "show", f"{rev}:libcfake/{name}.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    qualified = f"libcfake.{name}_at_rev"
    spec = importlib.util.spec_from_loader(qualified, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "libcfake"
    module.__file__ = str(ROOT / "libcfake" / f"{name}.py")
    sys.modules[qualified] = module
    exec(compile(source, f"{rev}:libcfake/{name}.py", "exec"), module.__dict__)
    return module


def sandbox_with(modules: dict[str, ModuleType] | None) -> Sandbox:
    """A Sandbox whose Publisher and ShadowTree are those of ``modules`` (None: this tree's)."""
    saved = sandbox_module.Publisher, sandbox_module.ShadowTree
    if modules is not None:
        sandbox_module.Publisher = modules["publish"].Publisher  # type: ignore[misc]
        sandbox_module.ShadowTree = modules["_shadow"].ShadowTree  # type: ignore[misc]
    try:
        return Sandbox()
    finally:
        sandbox_module.Publisher, sandbox_module.ShadowTree = saved  # type: ignore[misc]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", required=True)
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", action="append", default=[], help="rows whose name starts so")
    args = parser.parse_args()
    modules = {name: old_module(args.rev, name) for name in ("publish", "_shadow")}
    files = make_tree(args.entries)
    base = Path(tempfile.mkdtemp(dir="/dev/shm"))
    native_root = base / "bench"
    build_native(native_root, files)
    tarball = base / "bench.tar"
    subprocess.run(["tar", "cf", str(tarball), "-C", str(base), "bench"], check=True)
    python_code = "import json, email, http.client, sqlite3"
    git = "git -c user.name=bench -c user.email=bench@example.test"
    commit = ["sh", "-c", f"{git} add -A && {git} commit -q -m files"]
    fresh = ["sh", "-c", "rm -rf .git && git init -q"]
    rows: dict[str, dict[str, list[float]]] = {}
    cpus: dict[str, dict[str, list[float]]] = {}

    def run_in(sb: Sandbox, command: list[str], cwd: str | None = None) -> Callable[[], object]:
        return lambda: sb.run(command, cwd=cwd, stdout=subprocess.DEVNULL, check=True)

    def test_change(sb: Sandbox | None) -> None:  # a change through sb.fs empties the snapshot
        if sb is not None:
            sb.fs.create_file("/tmp/changed")
            sb.fs.remove("/tmp/changed")

    def nothing(sb: Sandbox | None) -> None:
        pass

    def no_copy(sb: Sandbox | None) -> None:
        shutil.rmtree(base / "copy", ignore_errors=True)

    def empty_untar(sb: Sandbox | None) -> None:
        if sb is None:
            shutil.rmtree(base / "untar", ignore_errors=True)
            (base / "untar").mkdir()
        else:
            sb.fs.create_dir("/untar")

    def fresh_repository(sb: Sandbox | None) -> None:
        if sb is None:
            subprocess.run(fresh, cwd=native_root, check=True)
        else:
            sb.run(fresh, cwd=VIRTUAL, check=True)

    n = len(files)
    ls, find = ["ls", "-lR"], ["find"]
    # (name, native command, its cwd, virtual command, its cwd, prepare, a first run untimed)
    workloads: list[tuple[str, list[str], Path | None, list[str], str | None,
                          Callable[[Sandbox | None], None], bool]] = [
        ("python start", [sys.executable, "-c", python_code], None,
         [sys.executable, "-c", python_code], None, nothing, True),
        (f"ls -lR ({n}), later program", [*ls, str(native_root)], None, [*ls, VIRTUAL], None,
         nothing, True),
        (f"ls -lR ({n}), after a change", [*ls, str(native_root)], None, [*ls, VIRTUAL], None,
         test_change, True),
        (f"ls -lR ({n}), fresh Sandbox", [*ls, str(native_root)], None, [*ls, VIRTUAL], None,
         nothing, False),
        (f"find ({n}), after a change", [*find, str(native_root)], None, [*find, VIRTUAL], None,
         test_change, True),
        (f"cp -r ({n})", ["cp", "-r", str(native_root), str(base / "copy")], None,
         ["cp", "-r", VIRTUAL, "/copy"], None, no_copy, False),
        (f"tar xf ({n})", ["tar", "xf", str(tarball), "-C", str(base / "untar")], None,
         ["tar", "xf", "/bench.tar", "-C", "/untar"], None, empty_untar, False),
        (f"git add -A && git commit ({n})", commit, native_root, commit, VIRTUAL,
         fresh_repository, False),
    ]  # fmt: skip
    workloads = [
        w for w in workloads if not args.only or any(w[0].startswith(o) for o in args.only)
    ]
    # a fresh Sandbox for each run: the master keeps a memfd per file programs opened, and two
    # masters' copies of the tree would pass the process's limit of descriptors
    for name, native, native_cwd, virtual, cwd, prepare, warm in workloads:
        row = rows.setdefault(name, {kind: [] for kind in KINDS})
        for _ in range(args.repeat):
            prepare(None)
            row["native"].append(timed(quiet(native, cwd=native_cwd)))
            for kind in ("old", "new"):
                with sandbox_with(modules if kind == "old" else None) as sb:
                    build_virtual(sb, files)
                    sb.fs.create_file("/bench.tar", contents=tarball.read_bytes())
                    if warm:
                        run_in(sb, virtual, cwd)()
                    prepare(sb)
                    cpu = time.process_time()  # the master's (this process's threads)
                    row[kind].append(timed(run_in(sb, virtual, cwd)))
                    cpus.setdefault(name, {}).setdefault(kind, []).append(time.process_time() - cpu)
        shutil.rmtree(base / "copy", ignore_errors=True)
        shutil.rmtree(base / "untar", ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)

    print(f"libcfake {libcfake.__file__}, old: {args.rev}")
    print(f"{'workload':<36} {'native':>9} {'old':>9} {'new':>9} {'old/nat':>8} {'new/nat':>8} "
          f"{'new/old':>8}  ranges (ms)")  # fmt: skip
    for name, row in rows.items():
        median = {kind: statistics.median(row[kind]) for kind in KINDS}
        ranges = "; ".join(f"{k} {min(row[k]) * 1000:.0f}-{max(row[k]) * 1000:.0f}" for k in KINDS)
        print(f"{name:<36} {median['native'] * 1000:8.1f}ms {median['old'] * 1000:8.1f}ms "
              f"{median['new'] * 1000:8.1f}ms {median['old'] / median['native']:7.2f}x "
              f"{median['new'] / median['native']:7.2f}x {median['new'] / median['old']:7.2f}x"
              f"  {ranges}")  # fmt: skip
    print("the master's CPU time (this process's, all threads; less noisy under load):")
    for name, cpu in cpus.items():
        old, new = (statistics.median(cpu[kind]) for kind in ("old", "new"))
        print(f"  {name:<34} old {old * 1000:8.1f}ms  new {new * 1000:8.1f}ms  "
              f"new/old {new / old:5.2f}x  (old {min(cpu['old']) * 1000:.0f}-"
              f"{max(cpu['old']) * 1000:.0f}, new {min(cpu['new']) * 1000:.0f}-"
              f"{max(cpu['new']) * 1000:.0f})")  # fmt: skip
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
