"""Where the preload shim lives, and the environment that puts a program behind it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .errors import ShimNotBuiltError

_PACKAGE_DIR = Path(__file__).resolve().parent
SHIM_NAME = "libcfake_preload.so"

#: Environment variable carrying the master's socket path to the shim.
SOCKET_VARIABLE = "LIBCFAKE_SOCKET"
#: Overrides the shim library, e.g. with the sanitizer build (see README: "Sanitizer build").
SHIM_VARIABLE = "LIBCFAKE_SHIM"
#: Libraries preloaded before the shim, e.g. the ASan runtime for the sanitizer build.
PRELOAD_FIRST_VARIABLE = "LIBCFAKE_PRELOAD_FIRST"


def shim_path() -> Path:
    """The preload library that programs run with (built by ``pip install``)."""
    override = os.environ.get(SHIM_VARIABLE)
    path = Path(override) if override else _PACKAGE_DIR / SHIM_NAME
    if not os.path.isfile(path):
        raise ShimNotBuiltError(
            f"the libcfake shim is not at {path}; run `pip install -e '.[test]'` in the "
            "libcfake checkout (it compiles shim/ with gcc)"
        )
    return path


def preload_environment(socket_path: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default: this process's environment) that runs programs behind the shim.

    The shim is appended to any LD_PRELOAD already there, so an existing preload (a sanitizer
    runtime, say) still comes first.
    """
    env = dict(os.environ if base is None else base)
    preload = [entry for entry in env.get("LD_PRELOAD", "").replace(":", " ").split() if entry]
    first = os.environ.get(PRELOAD_FIRST_VARIABLE, "").split()
    shim = str(shim_path())
    preload = [entry for entry in first if entry not in preload] + preload
    if shim not in preload:
        preload.append(shim)
    env["LD_PRELOAD"] = " ".join(preload)
    env[SOCKET_VARIABLE] = socket_path
    return env
