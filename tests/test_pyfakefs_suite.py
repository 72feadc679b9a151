"""pyfakefs's own real-filesystem tests (issue #21), natively and with the interpreter in a Sandbox.

pyfakefs checks its fake ``os``, ``open``, ``pathlib`` and ``shutil`` against the real ones: with
``TEST_REAL_FS=1`` its ``Real*`` test classes run the same assertions on the real filesystem, each
in a fresh ``tempfile.mkdtemp()`` (so under ``TMPDIR``). Here they run twice, through
``pyfakefs_realfs_runner.py``: natively, with ``TMPDIR`` a real directory, and as a program in a
Sandbox, with ``TMPDIR`` a directory of the model that has the same path as an empty directory on
the host. Every test id must have the same outcome (pass, fail, error, skip) in both worlds, but
for KNOWN_DIFFERENCES; and the host's directory must stay empty. The cases pyfakefs skips inside
Docker (its scandir inode tests) run too when the native filesystem gives directory entries the
inode numbers stat gives (not always so on overlayfs, why pyfakefs skips them).

The modules are the four the issue names, ``fake_os_test``, ``fake_open_test``,
``fake_pathlib_test`` and ``fake_filesystem_shutil_test``, and the two others that have
real-filesystem cases, ``fake_filesystem_test`` and ``fake_stat_time_test`` (timestamps after open,
read, write, close and flush): about 990 cases, of which about 670 run on Linux (the rest are
Windows, macOS or case-insensitive cases, or ones pyfakefs runs only on its fake filesystem, and
skip in both worlds). All of them run: about 10 s a user on two cores (natively 2 to 4 s, 1.5 s of
it fake_stat_time_test's sleeps; in the Sandbox about 5 s), so nothing is left out for time. They
run as this process's user and, when that is root, also as nobody: as root, pyfakefs's permission
checks skip or fail natively (root may do anything), so the run as nobody is what exercises the
model's permission checks.

A known difference that goes away fails the test too, saying to remove it from the list.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from libcfake import Sandbox

from .conftest import AS_NOBODY

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "pyfakefs_realfs_runner.py"
MODULES = (
    "fake_os_test",
    "fake_open_test",
    "fake_pathlib_test",
    "fake_filesystem_shutil_test",
    "fake_filesystem_test",
    "fake_stat_time_test",
)
NOBODY = (65534, 65534)
#: pyfakefs skips a few cases when this exists (``pyfakefs.helpers.IN_DOCKER``); the model gets
#: it too when the host has it, so both worlds take the same branches.
DOCKERENV = "/.dockerenv"

#: Test ids (without the ``pyfakefs.tests.`` prefix) whose outcome in the Sandbox is known to
#: differ from the native one, each with its cause (the same as this user and as nobody). One
#: that does not pass natively here (a skip) does not apply, and is not checked. None now: the
#: last ones, the scandir inode tests (a listing's d_ino was the shadow directory's), agree
#: since the shim puts the model's inode numbers in listings (shim/listing.c).
KNOWN_DIFFERENCES: dict[str, str] = {}

PREFIX = "pyfakefs.tests."


def _pyfakefs_tests_installed() -> bool:
    try:
        import pyfakefs.tests.test_utils  # noqa: F401
    except ImportError:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not _pyfakefs_tests_installed(),
    reason="pyfakefs (with its tests, pyfakefs.tests) is not installed: pip install pyfakefs",
)


def _outcomes(result: subprocess.CompletedProcess[str], world: str) -> dict[str, str]:
    """The runner's JSON line, as {test id without the prefix: outcome}."""
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and lines, (
        f"the runner failed {world}: exit {result.returncode}\n{result.stderr[-4000:]}"
    )
    return {name.removeprefix(PREFIX): outcome for name, outcome in json.loads(lines[-1]).items()}


def _environment(base: str) -> dict[str, str]:
    env = {**os.environ, "TEST_REAL_FS": "1", "TMPDIR": base, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)  # pyfakefs comes from the interpreter's own site-packages
    return env


@pytest.fixture(params=["as this user", "as nobody"])
def user(request: pytest.FixtureRequest) -> Iterator[tuple[list[str], tuple[int, int] | None]]:
    if request.param == "as this user":
        yield [], None
        return
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("running the suite as another user needs root and setpriv")
    yield AS_NOBODY, NOBODY


@pytest.fixture
def searchable_dir() -> Iterator[Path]:
    """A fresh host directory every user may search (tmp_path is private to this user)."""
    top = Path(tempfile.mkdtemp(prefix="libcfake-pyfakefs-"))
    top.chmod(0o755)
    try:
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _entries_agree_with_stat(base: Path) -> bool:
    """Whether a directory entry's inode number is the one stat gives, on ``base``'s filesystem
    (pyfakefs skips its scandir inode tests inside Docker, where overlayfs may disagree; both
    worlds run them when the native one agrees: ``--not-in-docker``)."""
    probe = base / "inode-probe"
    probe.mkdir()
    try:
        (probe / "file").touch()
        return all(entry.inode() == os.lstat(entry.path).st_ino for entry in os.scandir(probe))
    finally:
        shutil.rmtree(probe)


@pytest.mark.timeout(600)  # two runs of up to 300 s each; they take about 10 s together
def test_pyfakefs_real_fs_tests_agree_in_a_sandbox(
    user: tuple[list[str], tuple[int, int] | None], searchable_dir: Path
) -> None:
    prefix, owner = user
    # the cases pyfakefs skips in Docker run too where the native filesystem agrees with itself
    docker_cases = ["--not-in-docker"] if _entries_agree_with_stat(searchable_dir) else []
    argv = [*prefix, sys.executable, str(RUNNER), *docker_cases, *MODULES]

    native_base = searchable_dir / "native"
    native_base.mkdir()
    if owner is not None:
        os.chown(native_base, *owner)
    started = time.monotonic()
    native_run = subprocess.run(argv, env=_environment(str(native_base)), cwd=native_base,
                                capture_output=True, text=True, timeout=300)  # fmt: skip
    native_seconds = time.monotonic() - started
    native = _outcomes(native_run, "natively")

    # the model's base directory has the path of an empty host directory: a write that escaped
    # the model would land there
    host_base = searchable_dir / "virtual"
    host_base.mkdir()
    uid, gid = owner if owner is not None else (os.getuid(), os.getgid())
    started = time.monotonic()
    with Sandbox(reply_timeout=30, strict=False, mounts=[str(HERE)]) as sb:
        sb.fs.create_dir(str(host_base), perm_bits=0o755, uid=uid, gid=gid)
        if os.path.exists(DOCKERENV):
            sb.fs.create_file(DOCKERENV, st_mode=0o644, uid=0, gid=0)
        sandbox_run = sb.run(argv, env=_environment(str(host_base)), cwd=str(host_base),
                             capture_output=True, text=True, timeout=300)  # fmt: skip
        violations = [str(v) for v in sb.violations]
    sandbox_seconds = time.monotonic() - started
    in_sandbox = _outcomes(sandbox_run, "in the Sandbox")

    assert list(host_base.iterdir()) == [], "the Sandbox's program wrote to the host"
    assert not violations, violations
    assert set(in_sandbox) == set(native), "the two runs ran different tests"
    assert sum(outcome == "pass" for outcome in native.values()) > 300, native

    unknown = sorted(KNOWN_DIFFERENCES.keys() - native.keys())
    assert not unknown, f"KNOWN_DIFFERENCES names tests pyfakefs no longer has: {unknown}"
    differ = {name for name in native if native[name] != in_sandbox[name]}
    new = sorted(differ - KNOWN_DIFFERENCES.keys())
    # a known difference that now agrees, where it applies (the test passes natively here)
    gone = sorted(
        name
        for name in KNOWN_DIFFERENCES.keys() - differ
        if native.get(name) == "pass" and in_sandbox.get(name) == "pass"
    )
    timing = f"native {native_seconds:.1f}s, Sandbox {sandbox_seconds:.1f}s"
    assert not new, f"new differences ({timing}):\n" + "\n".join(
        f"  {name}: native {native[name]}, Sandbox {in_sandbox[name]}" for name in new
    )
    assert not gone, "these known differences are gone: remove them from KNOWN_DIFFERENCES:\n" + (
        "\n".join(f"  {name}" for name in gone)
    )
    if docker_cases:  # the scandir inode tests ran in both worlds, and passed
        inode_tests = {name: (native[name], in_sandbox[name]) for name in native
                       if "Scandir" in name and name.endswith(".test_inode")}  # fmt: skip
        assert len(inode_tests) == 4, inode_tests
        assert all(outcomes == ("pass", "pass") for outcomes in inode_tests.values()), inode_tests
