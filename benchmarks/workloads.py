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

The write-heavy rows (issue 20's targets: each within fakeroot's ratio to native): ``cp -r`` of
the tree, ``tar xf`` of a tarball of it, and ``git add -A && git commit`` of it in a repository
made empty before each run (``git init``, not timed). Each run's target is removed first, not
timed. ``--only NAME`` runs the rows whose name contains NAME (``--only tar``).

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
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="run only the rows whose name contains this (repeatable)",
    )
    args = parser.parse_args()
    files = make_tree(args.entries)
    base = Path(tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    native_root = base / "bench"
    build_native(native_root, files)
    fakeroot = shutil.which("fakeroot")
    repository = base / "repo"
    if shutil.which("git") and (not args.only or any(o in "git status" for o in args.only)):
        build_repository(repository)
    python_code = "import json, email, http.client, sqlite3"

    rows: dict[str, dict[str, list[float]]] = {}

    def measure(name: str, native: Callable[[], object], sandboxed: Callable[[], object],
                faked: Callable[[], object] | None = None,
                prepare: Callable[[], object] = lambda: None) -> None:  # fmt: skip
        """Time each command ``args.repeat`` times, each after ``prepare`` (not timed)."""
        if args.only and not any(only in name for only in args.only):
            return
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
                quiet(["fakeroot", "cp", "-r", str(native_root), str(cp_target)])
                if fakeroot else None,
                prepare=remove_copies)  # fmt: skip
        remove_copies()  # (the master holds a memfd per file: keep the workloads' files few)
        tarball = base / "bench.tar"
        subprocess.run(["tar", "cf", str(tarball), "-C", str(base), "bench"], check=True)
        sb.fs.create_file("/bench.tar", contents=tarball.read_bytes())
        untar = base / "untar"

        def empty_untar() -> None:  # a fresh, empty target, natively and virtually
            shutil.rmtree(untar, ignore_errors=True)
            untar.mkdir()
            sb.run(["sh", "-c", "rm -rf /untar && mkdir /untar"], check=True)

        measure(f"tar xf ({len(files)} files)",
                quiet(["tar", "xf", str(tarball), "-C", str(untar)]),
                lambda: sb.run(["tar", "xf", "/bench.tar", "-C", "/untar"], check=True),
                quiet(["fakeroot", "tar", "xf", str(tarball), "-C", str(untar)])
                if fakeroot else None,
                prepare=empty_untar)  # fmt: skip
        sb.run(["rm", "-rf", "/untar"], check=True)
        if shutil.which("git"):
            git = "git -c user.name=bench -c user.email=bench@example.test"
            commit = ["sh", "-c", f"{git} add -A && {git} commit -q -m files"]
            fresh = ["sh", "-c", "rm -rf .git && git init -q"]

            def fresh_repositories() -> None:  # an empty repository over each tree
                subprocess.run(fresh, cwd=native_root, check=True)
                sb.run(fresh, cwd=VIRTUAL, check=True)

            measure(f"git add -A && git commit ({len(files)} files)",
                    quiet(commit, cwd=native_root),
                    lambda: sb.run(commit, cwd=VIRTUAL, stdout=subprocess.DEVNULL, check=True),
                    quiet(["fakeroot", *commit], cwd=native_root) if fakeroot else None,
                    prepare=fresh_repositories)  # fmt: skip
            sb.run(["rm", "-rf", f"{VIRTUAL}/.git"], check=True)
            shutil.rmtree(native_root / ".git", ignore_errors=True)
        if repository.exists():
            sb.fs.add_real_directory(repository, "/repo", read_only=False)
            status = ["git", "status", "--short"]
            sb.run(status, cwd="/repo", stdout=subprocess.DEVNULL, check=True)  # refreshes
            measure("git status (1000 files)", quiet(status, cwd=repository),
                    lambda: sb.run(status, cwd="/repo", stdout=subprocess.DEVNULL, check=True),
                    quiet(["fakeroot", *status], cwd=repository) if fakeroot else None)  # fmt: skip
    shutil.rmtree(base, ignore_errors=True)

    print(f"{'workload':<50} {'native':>9} {'sandbox':>9} {'ratio':>7} {'fakeroot':>9} "
          f"{'ratio':>7}  (ranges: sandbox, fakeroot)")  # fmt: skip
    for name, row in rows.items():
        native = statistics.median(row["native"])
        sandbox = statistics.median(row["sandbox"])
        faked, faked_ratio, faked_range = "", "", ""
        if row["fakeroot"]:
            median = statistics.median(row["fakeroot"])
            faked, faked_ratio = f"{median * 1000:8.1f}ms", f"{median / native:6.2f}x"
            faked_range = f", {_range(row['fakeroot'])}"
        ranges = f"({_range(row['sandbox'])}{faked_range}; native {_range(row['native'])})"
        print(f"{name:<50} {native * 1000:8.1f}ms {sandbox * 1000:8.1f}ms "
              f"{sandbox / native:6.2f}x {faked:>9} {faked_ratio:>7}  {ranges}")  # fmt: skip
    if "true" in rows:
        extra = statistics.median(rows["true"]["sandbox"]) - statistics.median(
            rows["true"]["native"]
        )
        print(f"sb.run(['true']) costs {extra * 1000:.1f} ms more than subprocess.run (<= 20)")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def _range(times: list[float]) -> str:
    return f"{min(times) * 1000:.0f}-{max(times) * 1000:.0f}ms"


if __name__ == "__main__":
    sys.exit(main())
