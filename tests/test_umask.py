"""Files and directories a program creates get the mode its umask gives at that moment.

The master reads the program's umask afresh for each call that creates something (a program may
change it at any time); each script runs natively in a real directory and in a Sandbox, and the
modes must agree.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from libcfake import Sandbox

SCRIPTS = {
    "the default umask": "touch f; mkdir d",
    "a umask set before creating": "umask 077; touch f; mkdir d",
    "a umask changed between creations": "umask 077; touch f; umask 002; touch g; mkdir d",
    "an existing file keeps its mode": "touch f; umask 077; touch f; echo x >> f",
    "a subshell's umask": "(umask 027; touch f; mkdir d); touch g",
}
#: Print the mode and name of every entry, sorted.
LIST = "for x in *; do stat -c '%a %n' \"$x\"; done"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(reply_timeout=20) as sandbox:
        yield sandbox


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_created_modes_follow_the_umask_as_natively(
    sb: Sandbox, tmp_path: Path, script: str
) -> None:
    code = f"umask 022; {SCRIPTS[script]}; {LIST}"
    native = subprocess.run(["sh", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert native.returncode == 0, native.stderr
    sb.fs.create_dir("/scratch")
    sandboxed = sb.run(["sh", "-c", code], cwd="/scratch", capture_output=True, text=True)
    assert sandboxed.returncode == 0, sandboxed.stderr
    assert sandboxed.stdout == native.stdout
    assert not sb.violations
