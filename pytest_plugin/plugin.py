"""The ``libcfake`` fixture, its marker, options and the violation report."""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Generator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from libcfake import Sandbox
from libcfake.journal import errno_number, format_journal, format_report


class LibcfakeViolationWarning(UserWarning):
    """Calls no model covered, reported as a warning instead of a failure."""


class LibcfakeUnusedRuleWarning(UserWarning):
    """Fault rules that never fired and routes nothing used: most likely a mistake in the test."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("libcfake", "libcfake: real programs in a fake world")
    group.addoption("--libcfake-trace", action="store_true",
                    help="add every forwarded call of each test to its report")  # fmt: skip
    group.addoption("--libcfake-warn", action="store_true",
                    help="report violations as warnings instead of failing the test")  # fmt: skip
    parser.addini("libcfake_strict", type="bool", default=True,
                  help="violations fail the test (default true)")  # fmt: skip
    parser.addini("libcfake_reply_timeout", default="30",
                  help="seconds a program waits for each answer before its call fails")  # fmt: skip
    parser.addini("libcfake_mounts", type="linelist", default=[],
                  help="host paths visible read-only, besides the defaults")  # fmt: skip
    parser.addini("libcfake_mount_rootdir", type="bool", default=True,
                  help="programs may read the project (the rootdir) but not write it")  # fmt: skip
    parser.addini("libcfake_unused_rules", default="warn",
                  help="fault rules and routes nothing used: warn, error or ignore")  # fmt: skip
    parser.addini("libcfake_violation_errno", default="",
                  help="answer every violation with this errno (e.g. EACCES)")  # fmt: skip
    parser.addini("libcfake_backend", default="",
                  help="preload (the shim alone) or hybrid (and every program under the seccomp "
                  "supervisor); libcfake's default if empty")  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "libcfake(**options): Sandbox options for this test (mounts added to the defaults, "
        "base_mounts replacing them, cwd, reply_timeout, backend), and strict=False to report "
        "its violations as warnings",
    )


def _options(request: pytest.FixtureRequest) -> tuple[dict[str, Any], bool]:
    config = request.config
    strict = bool(config.getini("libcfake_strict")) and not config.getoption("libcfake_warn")
    options: dict[str, Any] = {"reply_timeout": float(config.getini("libcfake_reply_timeout"))}
    violation_errno = str(config.getini("libcfake_violation_errno")).strip()
    if violation_errno:
        code = errno_number(violation_errno)
        if code is None:
            raise pytest.UsageError(f"libcfake_violation_errno: unknown errno {violation_errno!r}")
        options["violation_errno"] = code
    backend = str(config.getini("libcfake_backend")).strip()
    if backend:
        options["backend"] = backend
    mounts = [str(path) for path in config.getini("libcfake_mounts")]
    if config.getini("libcfake_mount_rootdir"):
        mounts.append(str(config.rootpath))
    marker = request.node.get_closest_marker("libcfake")
    if marker is not None:
        if marker.args:
            raise pytest.UsageError("@pytest.mark.libcfake takes keyword options only")
        marked = dict(marker.kwargs)
        strict = bool(marked.pop("strict", strict))
        marked_mounts = marked.pop("mounts", ())
        if isinstance(marked_mounts, str):
            raise pytest.UsageError("@pytest.mark.libcfake(mounts=...) takes a list of paths")
        mounts.extend(str(path) for path in marked_mounts)
        options.update(marked)
    options["mounts"] = mounts
    return options, strict


def _trace(request: pytest.FixtureRequest, journal: str) -> None:
    """Attach the journal to the test's report, and keep it in the cache directory."""
    request.node.add_report_section("teardown", "libcfake journal", journal or "(no calls)")
    cache = request.config.cache
    if cache is not None:
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.nodeid)
        (cache.mkdir("libcfake-trace") / f"{name}.log").write_text(journal + "\n")


def _pyfakefs_filesystem(request: pytest.FixtureRequest) -> Any:
    """The fake filesystem of pyfakefs's ``fs`` fixture, when the test uses it too."""
    if "fs" not in request.fixturenames:
        return None
    return request.getfixturevalue("fs")


def _own_modules() -> list[ModuleType]:
    """libcfake's modules and this plugin's: the code that serves programs on the real system."""
    import libcfake

    package = Path(libcfake.__file__).parent
    names = [
        f"libcfake.{source.stem}"
        for source in sorted(package.glob("*.py"))
        # not the cffi build script, nor the command line's entry point
        if source.stem not in {"__init__", "__main__", "_wire_build"}
    ]
    return [libcfake, sys.modules[__name__], *(importlib.import_module(n) for n in names)]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Keep pyfakefs's patches out of libcfake's own modules, and only those.

    pyfakefs patches every loaded module's ``os``, ``io``, ``open``... while its ``fs`` fixture is
    active. The master must keep working on the real system then (a test may use ``fs`` and
    ``libcfake`` together), so libcfake's modules are skipped — as module objects, which pyfakefs
    compares exactly (a skipped *name* would also skip every module whose name is a prefix of
    it, a user's ``lib`` say). The standard library is not skipped: a test's own ``tempfile``,
    ``shutil`` and ``subprocess`` calls must stay on pyfakefs's filesystem; libcfake has its own
    (``libcfake._realos``).
    """
    try:
        from pyfakefs.fake_filesystem_unittest import Patcher
    except ImportError:
        return
    Patcher.SKIPMODULES.update(_own_modules())
    Patcher.clear_fs_cache()  # a scan made before this may have listed them as patchable


@pytest.fixture
def libcfake(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A fresh Sandbox: real programs run by it see only what the test models.

    In a test that also uses pyfakefs's ``fs`` fixture, programs see that fake filesystem.
    """
    options, strict = _options(request)
    fake = _pyfakefs_filesystem(request)
    if fake is not None:
        options["fake_filesystem"] = fake
    try:
        sandbox = Sandbox(**options)
    except TypeError as error:
        raise pytest.UsageError(f"@pytest.mark.libcfake: {error}") from None
    request.node.stash[_SANDBOX] = sandbox
    with sandbox:
        yield sandbox
        unused = sandbox.unused_rules() if _unused_policy(request.config) != "ignore" else []
    if request.config.getoption("libcfake_trace"):
        _trace(request, format_journal(sandbox.journal))
    if sandbox.violations:
        report = format_report(sandbox.violations, sandbox_name="libcfake")
        if strict:
            pytest.fail(report, pytrace=False)
        warnings.warn(LibcfakeViolationWarning(report), stacklevel=1)
    if unused:
        report = "libcfake: rules and routes this test set up that nothing used:\n" + "".join(
            f"  libcfake.{rule}\n" for rule in unused
        )
        if _unused_policy(request.config) == "error":
            pytest.fail(report, pytrace=False)
        warnings.warn(LibcfakeUnusedRuleWarning(report), stacklevel=1)


_SANDBOX = pytest.StashKey[Sandbox]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """On a failed test, name the host paths its programs looked for and did not find, and the
    relative paths they did not find that exist where pytest runs."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    sandbox = item.stash.get(_SANDBOX, None)
    if report.failed and report.when == "call" and sandbox is not None:
        hidden = sandbox.missing_host_paths()
        if hidden:
            listed = "".join(f"  {path}\n" for path in hidden[:20])
            report.sections.append((
                "libcfake: missing in the sandbox, present on the host",
                f"programs looked for these paths, which exist on the host but not in the "
                f"sandbox:\n{listed}give them with @pytest.mark.libcfake(mounts={hidden[:3]!r}) "
                "(read-only) or libcfake.fs.add_real_file(...)",
            ))  # fmt: skip
        here = item.config.invocation_params.dir
        relative = _relative_to(here, sandbox)
        if relative:
            listed = "".join(f"  {path}\n" for path in relative[:20])
            report.sections.append((
                "libcfake: relative paths, looked for in the sandbox's working directory",
                f"programs start in the sandbox's working directory, {sandbox.cwd} (the "
                f"model's), not where pytest runs; they looked there for these paths, which "
                f"exist in {here}:\n{listed}run them there with run(..., cwd={str(here)!r}) "
                "(the project is mounted read-only), or give the paths absolute",
            ))  # fmt: skip


def _relative_to(here: Path, sandbox: Sandbox) -> list[str]:
    """Paths programs looked for relative to the sandbox's working directory and did not find,
    which exist relative to ``here`` (``scripts/app.py``, run from the project's root)."""
    found: list[str] = []
    for path in sandbox.journal.files_missing():
        relative = os.path.relpath(path, sandbox.cwd)
        if os.path.lexists(path) or relative.startswith(".."):
            continue  # a host path (missing_host_paths), or not under the working directory
        if os.path.lexists(here / relative):
            found.append(relative)
    # scripts/app.py, not also the directory scripts, which the program looked up on its way
    return [p for p in found if not any(other.startswith(p + "/") for other in found)]


def _unused_policy(config: pytest.Config) -> str:
    policy = str(config.getini("libcfake_unused_rules")).strip().lower()
    if policy not in {"warn", "error", "ignore"}:
        raise pytest.UsageError(f"libcfake_unused_rules is warn, error or ignore, not {policy!r}")
    return policy
