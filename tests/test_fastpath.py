"""The supervisor's fast path: a trapped read-only call under the mounts is answered without
Python, exactly as the kernel would answer it, and nothing else is.

``tests/programs/passthrough_probe.c``, linked statically, makes each call the fast path covers as
a raw system call (open, openat with and without O_NOFOLLOW and O_DIRECTORY, stat, lstat,
newfstatat, statx, access, faccessat, faccessat2, readlink, readlinkat, and glibc's fstat on what
it opened) on each path of a real directory tree mounted into a hybrid Sandbox: files, a
directory, symlinks inside the mount, a dangling one, a file only its owner may read, paths that
do not exist, and symlinks that lead out of every mount to a secret. Run natively and in the
Sandbox, as root and as nobody, its output must be the same line for line, except through the
symlinks that lead out: there the model answers and the secret never shows. The calls answered
by the fast path leave no journal entry (as the shim's own passthrough); those it leaves to the
pipeline do, so the journal shows which path took them.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from libcfake import Sandbox, _hybrid, _seccomp, protocol
from libcfake._supervisor import Supervisor, TrappedCall
from libcfake.snapshot import Snapshot
from libcfake.stat import StatResult

from .conftest import as_nobody, build_static

PROGRAMS = Path(__file__).resolve().parent / "programs"
SECRET = "host-secret-42"  # short enough for the probe to print whole

pytestmark = pytest.mark.skipif(
    _hybrid.unavailable() is not None, reason=f"no hybrid backend here: {_hybrid.unavailable()}"
)


@pytest.fixture(scope="module")
def places() -> Iterator[tuple[Path, Path, Path]]:
    """(the probe, the tree to mount, a directory outside every mount): real, readable by all."""
    root = Path(tempfile.mkdtemp(prefix="libcfake-fastpath-"))
    root.chmod(0o755)
    tree, outside, bin_dir = root / "tree", root / "outside", root / "bin"
    for directory in (tree, tree / "d", outside, bin_dir):
        directory.mkdir()
        directory.chmod(0o755)
    try:
        probe = build_static("passthrough_probe", bin_dir)
    except BaseException:  # (skipped: no static libc)
        shutil.rmtree(root)
        raise
    (tree / "f").write_text("hello\nworld\n")
    (tree / "d" / "g").write_text("in d\n")
    (tree / "owner-only").write_text("only root reads this\n")
    (tree / "owner-only").chmod(0o600)
    (outside / "secret").write_text(SECRET + "\n")
    (tree / "in").symlink_to("f")
    (tree / "dir-link").symlink_to("d")
    (tree / "dangling").symlink_to("not-there")
    (tree / "out").symlink_to(outside / "secret")
    (tree / "out-dir").symlink_to(outside)
    yield probe, tree, outside
    shutil.rmtree(root)


#: Paths in the mounted tree, relative to it: the fast path answers each.
INSIDE = ["f", "d", "d/g", "in", "dir-link", "dir-link/g", "dangling", "owner-only", "nope",
          "d/nope", "nodir/nope", "f/under-a-file", "d/"]  # fmt: skip
#: Paths that lead out of every mount: the model answers.
OUT = ["out", "out-dir/secret"]
#: The probe's calls that follow a symlink at the end of the path (the others see the link).
FOLLOWING = {"open", "openat", "openat-directory", "stat", "newfstatat", "access-r",
             "faccessat-x", "faccessat2-w-eaccess"}  # fmt: skip


def _lines(output: str) -> dict[str, list[str]]:
    """The probe's lines by path."""
    by_path: dict[str, list[str]] = {}
    for line in output.splitlines():
        _, path, _ = line.split(" ", 2)
        by_path.setdefault(path.rstrip(":"), []).append(line)
    return by_path


def _probe(places: tuple[Path, Path, Path], prefix: list[str]) -> None:
    probe, tree, _ = places
    paths = [str(tree / p) + ("/" if p.endswith("/") else "") for p in INSIDE + OUT]
    native = subprocess.run([*prefix, str(probe), *paths], capture_output=True, text=True)
    assert native.returncode == 0, native.stderr
    with Sandbox(backend="hybrid", mounts=[str(probe.parent), str(tree)]) as sb:
        assert sb.backend == "hybrid"
        done = sb.run([*prefix, str(probe), *paths], capture_output=True, text=True)
        journal = list(sb.journal)
        violations = list(sb.violations)
    assert done.returncode == 0, done.stderr
    expected, got = _lines(native.stdout), _lines(done.stdout)
    for path in paths[: len(INSIDE)]:
        assert got[path] == expected[path], path
    # through the symlinks that lead out, the model answers (it has no such file): never the host
    assert SECRET in native.stdout
    assert SECRET not in done.stdout + done.stderr
    for path in paths[len(INSIDE) :]:
        following = [line for line in got[path] if line.split()[0] in FOLLOWING]
        assert following and all(": -1 ENOENT" in line for line in following), got[path]
    assert not violations, violations
    # What the fast path answered left no entry. It leaves to the pipeline only what it cannot
    # tell stays inside: a path through a file (ENOTDIR on the way), a symlink that leads
    # nowhere; and every call of a caller whose ids are not the master's.
    tree_text = str(tree)
    inside = [entry for entry in journal if (entry.path or "").startswith(tree_text + "/")]
    if not prefix:
        left = {
            (entry.call, entry.path)
            for entry in inside
            if entry.path not in (f"{tree_text}/f/under-a-file", f"{tree_text}/dangling")
            and "out" not in (entry.path or "")
        }
        assert not left, "\n".join(map(str, sorted(left)))
    assert any("out" in (entry.path or "") for entry in inside), "the pipeline answered no out"


def test_the_fast_path_answers_as_the_kernel(places: tuple[Path, Path, Path]) -> None:
    _probe(places, [])


def test_a_caller_with_other_ids_is_answered_as_itself(places: tuple[Path, Path, Path]) -> None:
    """setpriv changes its ids before it runs the probe (a trapped setresuid): from then on the
    fast path reads each caller's ids, and the master's own never answer for nobody."""
    if os.geteuid() != 0:
        pytest.skip("needs root to become nobody")
    _probe(places, as_nobody())


def test_a_dynamic_programs_start_is_not_journaled() -> None:
    """The loader's opens and stats of the libraries (all under the mounts) are the fast path's:
    a dynamic program's start leaves no entry for them, as under the preload backend."""
    with Sandbox(backend="hybrid") as sb:
        done = sb.run(["ls", "/usr"], capture_output=True, text=True)
        entries = [e for e in sb.journal if e.path and e.path.startswith(("/usr/lib", "/lib"))]
    assert done.returncode == 0, done.stderr
    assert "bin" in done.stdout.split()
    assert not entries, [(e.call, e.path) for e in entries]


def test_a_shadow_directorys_descriptor_is_stated_from_the_snapshot(
    places: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """glibc's fstat of a shadow directory (the master's stand-in for a model directory, which
    opendir makes inside libc) is answered from the snapshot when its virtual directory is
    published there, with the snapshot's metadata and without asking the handler; and asked of
    the handler when it is not."""
    probe = places[0]
    shadow = tmp_path / "shadow"
    (shadow / "published").mkdir(parents=True)
    (shadow / "unpublished").mkdir()
    snapshot = Snapshot(str(shadow))
    published = StatResult("directory", 0o711, size=77, ino=4242, nlink=7)
    assert snapshot.put("/published", protocol.encode_stat(published))
    asked: list[str] = []

    def handler(trapped: TrappedCall) -> None:  # the opens: the real (shadow) directory
        asked.append(trapped.function_)
        if trapped.function_ == "fstat":
            trapped.send(StatResult("directory", 0o755, ino=99))
        else:
            trapped.use_slave_credentials()

    paths = [str(shadow / "published"), str(shadow / "unpublished")]
    proc, listener = _seccomp.spawn([str(probe), *paths], stdout=subprocess.PIPE, text=True)
    try:
        with Supervisor(listener, handler, file_devices=[shadow.stat().st_dev],
                        snapshot=snapshot) as supervisor:  # fmt: skip
            assert supervisor.serve(until=proc, timeout=60) == 0
            answered = supervisor.fast.answered
        stdout, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        snapshot.close()
    lines = _lines(stdout)
    assert (
        f"open {paths[0]}: 0 directory getdents=some mode=40711 size=77 nlink=7 ino=4242"
        in (lines[paths[0]])
    )
    assert (
        f"open {paths[1]}: 0 directory getdents=some mode=40755 size=0 nlink=1 ino=99"
        in (lines[paths[1]])
    )
    assert asked.count("fstat") == 4, asked  # the unpublished one's four opens
    assert answered >= 4  # the published one's


def _trees_done() -> None:
    """Wait until every supervisor thread is gone (each closes its tree as the tree ends)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        thread.name.startswith("libcfake-supervisor-") for thread in threading.enumerate()
    ):
        time.sleep(0.02)


def test_a_finished_tree_leaves_the_master_no_descriptor() -> None:
    """Each tree's fast path maps the snapshot again (mmap keeps a descriptor of its own): the
    mapping is released when the tree's supervisor closes, not whenever the garbage collector
    comes by."""
    with Sandbox(backend="hybrid") as sb:
        sb.fs.create_file("/data/file")
        sb.run(["true"], check=True)
        gc.disable()
        try:
            _trees_done()
            time.sleep(0.2)  # (and the shim connections of that run are closed)
            before = sorted(os.listdir("/proc/self/fd"))
            for _ in range(5):
                sb.run(["ls", "/data"], capture_output=True, check=True)
            _trees_done()
            deadline = time.monotonic() + 5  # the master reads the shim connections' ends too
            while (after := sorted(os.listdir("/proc/self/fd"))) != before:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)
        finally:
            gc.enable()
    assert after == before
