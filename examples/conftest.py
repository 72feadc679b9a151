"""What the examples share: the user's own command-line tool, installed in development mode.

``pingcheck`` (the fixture) is the command of ``examples/pingcheck``, a user's project, after
``pip install -e examples/pingcheck`` into the environment pytest runs in, as a user installs
their own tool beside pytest and libcfake. Why there, and how, is said in
``examples/test_pingcheck_cli.py``.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent / "pingcheck"


@pytest.fixture(scope="session")
def pingcheck(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The path of the ``pingcheck`` command, installed editable from ``examples/pingcheck``:
    once for the environment (a later session finds it installed), by one worker at a time."""
    command = Path(sysconfig.get_path("scripts")) / "pingcheck"
    # the parent of the base temporary directory is shared by the session's xdist workers
    with open(tmp_path_factory.getbasetemp().parent / "pingcheck-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _editable_source() != PROJECT.as_uri() or not command.exists():
            _install()
    assert command.exists(), f"pip installed pingcheck, but not as {command}"
    return str(command)


def _editable_source() -> str | None:
    """The project directory pingcheck is installed from in development mode (PEP 610)."""
    try:
        text = importlib.metadata.distribution("pingcheck").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return None
    direct = json.loads(text or "{}")
    return str(direct["url"]) if direct.get("dir_info", {}).get("editable") else None


def _install() -> None:
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--editable"]
    result = subprocess.run([*pip, str(PROJECT), *_build_isolation()],
                            capture_output=True, text=True)  # fmt: skip
    if result.returncode != 0:
        pytest.fail(f"pip install -e {PROJECT} failed:\n{result.stdout}{result.stderr}")


def _build_isolation() -> list[str]:
    """``--no-build-isolation`` when this environment's setuptools can build the editable wheel
    by itself (70.1 and later, which need no ``wheel``): no network at all. Otherwise pip puts
    setuptools from the package registry into an isolated build environment, as it did for
    libcfake's own ``pip install -e``: a virtual environment of Python 3.12 and later has no
    setuptools, and 3.11's (65) needs ``wheel``."""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return []
    major, minor = (int(part) for part in [*re.findall(r"\d+", version), "0"][:2])
    return ["--no-build-isolation"] if (major, minor) >= (70, 1) else []
