"""Real workloads in a Sandbox against the same work done natively, measured in one run.

    python benchmarks/workloads.py [--entries 5000] [--repeat 5]

Each row runs a command natively (on a real directory under /dev/shm, a tmpfs) and in a Sandbox
over the same tree held in the model, interleaved, and prints the median wall time of each and
their ratio; fakeroot (an existing IPC-based faker) runs the native command too where it is
installed. Lower is better; the targets come from the performance issue:

    python startup with the stdlib passed through   <= 1.3x native
    ls -lR over 5,000 virtual entries               <= 3x native, and faster than fakeroot
    sb.run(["true"])                                <= 20 ms more than subprocess.run(["true"])

``git status`` runs in a repository of 1,000 committed files, natively and as a copy in the
model (the first Sandbox run refreshes the copy's index, which then stays valid).

What a program publishes in the metadata snapshot serves the programs after it until the model
changes, so ``ls -lR`` and ``find`` run twice: as a test's second program over an unchanged tree
would, and after a change (the snapshot emptied: the run publishes every directory again).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from libcfake import Sandbox  # noqa: E402

VIRTUAL = "/bench"


def make_tree(entries: int) -> list[tuple[str, str]]:
    """(relative path, contents) of a tree with about ``entries`` files in nested directories."""
    files = []
    for index in range(entries):
        files.append((f"d{index % 50:02d}/s{index % 7}/f{index:05d}.txt", f"line {index}\n"))
    return files


def build_native(root: Path, files: list[tuple[str, str]]) -> None:
    for relative, contents in files:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(contents)


def build_virtual(sb: Sandbox, files: list[tuple[str, str]]) -> None:
    for relative, contents in files:
        sb.fs.create_file(f"{VIRTUAL}/{relative}", contents=contents)


def build_repository(root: Path, files: int = 1000) -> None:
    """A git repository of ``files`` committed files in 20 directories."""
    for index in range(files):
        path = root / f"d{index % 20:02d}" / f"f{index:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{index}\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.test"]
    for step in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "files"]):
        subprocess.run([*git, *step], cwd=root, check=True)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def quiet(args: list[str], **kwargs: object) -> Callable[[], object]:
    return lambda: subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  check=True, **kwargs)  # type: ignore[call-overload]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    files = make_tree(args.entries)
    base = Path(tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    native_root = base / "bench"
    build_native(native_root, files)
    fakeroot = shutil.which("fakeroot")
    repository = base / "repo"
    if shutil.which("git"):
        build_repository(repository)
    python_code = "import json, email, http.client, sqlite3"

    rows: dict[str, dict[str, list[float]]] = {}

    def measure(name: str, native: Callable[[], object], sandboxed: Callable[[], object],
                faked: Callable[[], object] | None = None,
                prepare: Callable[[], object] = lambda: None) -> None:  # fmt: skip
        """Time each command ``args.repeat`` times, each after ``prepare`` (not timed)."""
        row = rows.setdefault(name, {"native": [], "sandbox": [], "fakeroot": []})
        for _ in range(args.repeat):
            for kind, command in (("native", native), ("sandbox", sandboxed), ("fakeroot", faked)):
                if command is not None:
                    prepare()
                    row[kind].append(timed(command))

    with Sandbox() as sb:
        build_virtual(sb, files)
        cp_target = base / "copy"

        def remove_copies() -> None:  # the copy of the last repeat, natively and virtually
            shutil.rmtree(cp_target, ignore_errors=True)
            sb.run(["rm", "-rf", "/copy"], check=True)

        measure("true", quiet(["true"]), lambda: sb.run(["true"], check=True))
        measure("python -c 'import json, email, http.client, sqlite3'",
                quiet([sys.executable, "-c", python_code]),
                lambda: sb.run([sys.executable, "-c", python_code], check=True))  # fmt: skip

        def change_the_model() -> None:  # which empties the snapshot: the next run publishes
            sb.fs.create_file("/tmp/changed")
            sb.fs.remove("/tmp/changed")

        for walk in (["ls", "-lR"], ["find"]):
            for name, prepare in (("", lambda: None), (", after a change", change_the_model)):
                measure(f"{' '.join(walk)} ({len(files)} files){name}",
                        quiet([*walk, str(native_root)]),
                        lambda walk=walk: sb.run([*walk, VIRTUAL], stdout=subprocess.DEVNULL,
                                                 check=True),
                        quiet(["fakeroot", *walk, str(native_root)]) if fakeroot else None,
                        prepare=prepare)  # fmt: skip
        measure(f"cp -r ({len(files)} files)",
                quiet(["cp", "-r", str(native_root), str(cp_target)]),
                lambda: sb.run(["cp", "-r", VIRTUAL, "/copy"], check=True),
                prepare=remove_copies)  # fmt: skip
        if repository.exists():
            sb.fs.add_real_directory(repository, "/repo", read_only=False)
            status = ["git", "status", "--short"]
            sb.run(status, cwd="/repo", stdout=subprocess.DEVNULL, check=True)  # refreshes
            measure("git status (1000 files)", quiet(status, cwd=repository),
                    lambda: sb.run(status, cwd="/repo", stdout=subprocess.DEVNULL, check=True),
                    quiet(["fakeroot", *status], cwd=repository) if fakeroot else None)  # fmt: skip
    shutil.rmtree(base, ignore_errors=True)

    print(f"{'workload':<58} {'native':>9} {'sandbox':>9} {'ratio':>7} {'fakeroot':>9}")
    for name, row in rows.items():
        native = statistics.median(row["native"])
        sandbox = statistics.median(row["sandbox"])
        faked = f"{statistics.median(row['fakeroot']) * 1000:8.1f}ms" if row["fakeroot"] else ""
        print(f"{name:<58} {native * 1000:8.1f}ms {sandbox * 1000:8.1f}ms "
              f"{sandbox / native:6.2f}x {faked:>9}")  # fmt: skip
    extra = statistics.median(rows["true"]["sandbox"]) - statistics.median(rows["true"]["native"])
    print(f"sb.run(['true']) costs {extra * 1000:.1f} ms more than subprocess.run (target <= 20)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
