"""mkstemp & co., mkdtemp and tmpfile create their files in the model, never on the real disk
(tests/programs/tmpfiles.c; glibc's own versions open through internal aliases no wrapper sees,
shim/tmpfiles.c replaces them). Python's tempfile uses os.open, so only C shows this."""

from __future__ import annotations

import errno
import glob
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from libcfake import Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(reply_timeout=20) as sandbox:
        yield sandbox


@pytest.fixture
def prefix() -> Iterator[str]:
    """A name prefix under /tmp unique to the test; whatever reaches the real disk is removed."""
    name = f"/tmp/libcfake-tmpfiles-{uuid.uuid4().hex[:12]}-"
    yield name
    for stray in glob.glob(name + "*"):
        os.rmdir(stray) if os.path.isdir(stray) else os.unlink(stray)


def run(sb: Sandbox, program: Path, prefix: str) -> dict[str, list[str]]:
    done = sb.run([str(program), prefix], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not glob.glob(prefix + "*"), "the program created real files"
    return {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()}


def test_the_files_are_created_in_the_model(
    sb: Sandbox, compile_c: Callable[[str], Path], prefix: str
) -> None:
    lines = run(sb, compile_c("tmpfiles"), prefix)
    for name, kept in (("mkstemp", ""), ("mkstemps", ".txt"), ("mkostemps", ".log")):
        result, path = lines[name]
        assert result == "OK"
        assert path.startswith(prefix) and path.endswith(kept) and "XXXXXX" not in path
        assert sb.fs.read_text(path) == name
        assert stat.S_IMODE(sb.fs.resolve(path).st_mode) == 0o600
    assert lines["mkostemp"][0] == "OK" and lines["mkostemp"][2] == "cloexec=1"
    assert sb.fs.exists(lines["mkostemp"][1])
    result, directory = lines["mkdtemp"]
    assert result == "OK"
    assert stat.S_IMODE(sb.fs.resolve(directory).st_mode) == 0o700
    assert sb.fs.listdir(directory) == ["inner"]
    assert lines["tmpfile"] == ["OK", "abc"]
    assert any("temporary" in e.arguments[1] for e in sb.journal if e.path == "/tmp")
    assert not sb.violations


def test_templates_without_xxxxxx_are_einval(
    sb: Sandbox, compile_c: Callable[[str], Path], prefix: str
) -> None:
    lines = run(sb, compile_c("tmpfiles"), prefix)
    assert lines["bad-template"] == lines["bad-suffix"] == lines["dtemp-bad"] == ["EINVAL"]


def test_a_name_that_exists_is_retried(
    sb: Sandbox, compile_c: Callable[[str], Path], prefix: str
) -> None:
    sb.fail("open", prefix + "stemp*", errno.EEXIST, times=3)
    lines = run(sb, compile_c("tmpfiles"), prefix)
    assert lines["mkstemp"][0] == "OK"
    tried = [e.path for e in sb.journal if (e.path or "").startswith(prefix + "stemp")]
    tried = [path for path in tried if not path.endswith(".txt")]  # mkstemps's
    assert len(tried) == 4 and len(set(tried)) == 4  # three refused names, then a new one


def test_a_directory_that_does_not_exist_is_enoent(
    sb: Sandbox, compile_c: Callable[[str], Path], prefix: str
) -> None:
    lines = run(sb, compile_c("tmpfiles"), prefix + "missing/")
    assert lines["mkstemp"] == lines["mkdtemp"] == ["ENOENT"]
