"""What a user means by "my Python": the host paths a sandboxed interpreter needs to find the
same modules as the test's own interpreter.

``sys.prefix`` and ``sys.base_prefix`` are among the default mounts already. Besides them:

- every entry of the running interpreter's ``sys.path`` (the project's source directory that
  pytest or the user put there, ``PYTHONPATH`` entries, user site-packages);
- the source trees behind editable installs (``pip install -e``): modern setuptools finds them
  through an import hook, not ``sys.path``, and PEP 610's ``direct_url.json`` names them;
- the root of a pyenv or asdf installation whose shims are on ``PATH``, so ``python3`` run
  through a shim (a venv not activated: IDEs, tox) finds the shim's own scripts.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
from collections.abc import Iterator
from urllib.parse import unquote, urlparse


def python_mounts() -> tuple[str, ...]:
    """Existing absolute host paths for the running interpreter, parents before children."""
    found: dict[str, None] = {}
    for path in (*_sys_path(), *_editable_roots(), *_version_manager_roots()):
        path = os.path.normpath(path)
        if path != "/" and os.path.isabs(path) and os.path.exists(path):
            found[path] = None
    return tuple(sorted(found, key=lambda p: (p.count("/"), p)))


def _sys_path() -> Iterator[str]:
    for entry in sys.path:
        if entry:  # "" is the working directory of the moment, not a place
            yield os.path.abspath(entry)


def _editable_roots() -> Iterator[str]:
    for distribution in importlib.metadata.distributions():
        text = distribution.read_text("direct_url.json")
        if not text:
            continue
        try:
            direct = json.loads(text)
        except ValueError:
            continue
        if not isinstance(direct, dict) or not direct.get("dir_info", {}).get("editable"):
            continue
        url = urlparse(str(direct.get("url", "")))
        if url.scheme == "file":
            yield unquote(url.path)


def _version_manager_roots() -> Iterator[str]:
    """pyenv's or asdf's root, when a directory of its shims is on PATH."""
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if os.path.basename(directory.rstrip("/")) != "shims":
            continue
        root = os.path.dirname(directory.rstrip("/"))
        if os.path.isdir(os.path.join(root, "libexec")) or os.path.isdir(
            os.path.join(root, "lib", "commands")
        ):  # pyenv's layout, asdf's layout
            yield root
