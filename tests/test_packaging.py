"""The wheel: built once from the checkout, installed into a fresh virtual environment with no C
compiler on PATH, it runs a user's test (the shim inside needs nothing but libc)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

USER_TEST = """
def test_cat_reads_a_virtual_file(libcfake):
    libcfake.fs.create_file("/etc/app.conf", contents="port = 8080\\n")
    result = libcfake.run(["cat", "/etc/app.conf"], capture_output=True, text=True)
    assert result.stdout == "port = 8080\\n"
"""


@pytest.mark.timeout(600)
def test_the_wheel_installs_and_runs_a_test_without_a_compiler(tmp_path: Path) -> None:
    if os.environ.get("LIBCFAKE_SANITIZE") == "1":
        pytest.skip("the wheel carries the optimized shim; the sanitizer run builds its own")
    source = tmp_path / "source"
    skip = (".git", ".venv", "*.so", "__pycache__", ".pytest_cache", "*.egg-info", "build")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*skip))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, source],
                   check=True, timeout=500)  # fmt: skip
    [wheel] = dist.glob("libcfake-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "libcfake/libcfake_preload.so" in names and "pytest_plugin/plugin.py" in names
    assert "libcfake/libcfake-launch" in names  # the seccomp launcher, static

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", f"{wheel}", "pytest"], check=True,
                   timeout=500)  # fmt: skip
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_user.py").write_text(USER_TEST)
    # no compiler anywhere: only the venv's bin and the tools the test's program needs
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("cat", "sh"):
        found = shutil.which(tool)
        assert found is not None
        (tools / tool).symlink_to(found)
    env = {"PATH": f"{venv / 'bin'}:{tools}", "HOME": str(tmp_path), "CC": "/nonexistent-cc"}
    command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
