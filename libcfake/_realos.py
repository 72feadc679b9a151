"""The real operating system, for the master's own directories and processes.

A test may use pyfakefs's ``fs`` fixture beside a Sandbox (programs then see that fake
filesystem). pyfakefs patches every loaded module that refers to ``os``, ``io``, ``shutil`` or
``open``, except the modules named in its skip list. libcfake's own modules are in that list (see
``pytest_plugin``), so their own ``os`` stays real; but the standard library's helpers are not,
and must not be: the test's own ``tempfile.mkdtemp()`` or ``shutil.rmtree()`` has to work on the
fake filesystem, never on the real disk. So the master does not use them. It uses these instead:

- :func:`mkdtemp` and :func:`rmtree`, written over the real ``os``;
- :class:`Popen` and :func:`run`, which are ``subprocess``'s own, executed a second time into a
  private module object that pyfakefs never sees (it patches only modules in ``sys.modules``).
  :class:`Popen` is a subclass of ``subprocess.Popen``, and the exceptions and
  ``CompletedProcess`` are the standard ones, so callers see no difference.

This module must be imported before pyfakefs starts patching (the plugin imports libcfake when
pytest starts), so that its private ``subprocess`` was built on the real ``os``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import subprocess
import types
from typing import Any


def _private_subprocess() -> types.ModuleType:
    spec = importlib.util.find_spec("subprocess")
    if spec is None or spec.loader is None:  # pragma: no cover - the standard library
        raise ImportError("the standard library's subprocess module cannot be found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # deliberately not put in sys.modules
    # What callers catch and receive stays the standard library's.
    for name in ("SubprocessError", "CalledProcessError", "TimeoutExpired", "CompletedProcess"):
        setattr(module, name, getattr(subprocess, name))
    return module


_subprocess = _private_subprocess()


class Popen(subprocess.Popen[Any]):
    """``subprocess.Popen``, whose methods run on the real ``os`` even while pyfakefs patches
    the standard library's ``subprocess``."""


# The methods are the private copy's functions: they look their globals (os, io, selectors...)
# up in that copy, which pyfakefs never patched.
for _name, _value in vars(_subprocess.Popen).items():
    if _name not in {"__dict__", "__weakref__", "__module__", "__qualname__", "__doc__"}:
        setattr(Popen, _name, _value)
vars(_subprocess)["Popen"] = Popen  # so that the copy's run() makes these


def run(*popenargs: Any, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` on the real ``os``."""
    result: subprocess.CompletedProcess[Any] = _subprocess.run(*popenargs, **kwargs)
    return result


def _temporary_root() -> str:
    candidate = os.environ.get("TMPDIR", "")
    if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
        return candidate
    return "/tmp"


def mkdtemp(prefix: str, directory: str | None = None) -> str:
    """Create a new private (0700) directory on the real disk; its path."""
    parent = directory if directory is not None else _temporary_root()
    while True:
        path = os.path.join(parent, prefix + secrets.token_hex(6))
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return path


def rmtree(path: str) -> None:
    """Remove a real directory tree the master made, ignoring errors; symlinks are not followed."""
    with contextlib.suppress(OSError):
        for _, directories, files, dir_fd in os.fwalk(path, topdown=False):
            for name in files:
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=dir_fd)
            for name in directories:  # a symlink to a directory is listed here too
                try:
                    os.rmdir(name, dir_fd=dir_fd)
                except NotADirectoryError:
                    with contextlib.suppress(OSError):
                        os.unlink(name, dir_fd=dir_fd)
                except OSError:
                    pass
    with contextlib.suppress(OSError):
        os.rmdir(path)
