"""Build the preload shim: ``python shim/build.py OUTPUT.so [--sanitize]``.

This is the shim's one build description, used by ``setup.py`` at install time and by the tests
for the sanitizer build. It needs nothing but the machine's C compiler (``$CC``, default ``gcc``).
The library links only libc and libdl, never libpython, so it loads into any dynamic program.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

SHIM_DIR = Path(__file__).resolve().parent

WARNINGS = ["-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wformat=2"]
COMMON = [
    "-std=gnu11",
    "-fPIC",
    "-shared",
    "-fvisibility=hidden",
    "-D_GNU_SOURCE",
    "-ftls-model=initial-exec",
]
OPTIMIZED = ["-O2", "-g"]
SANITIZED = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined"]


def sources() -> list[Path]:
    """The C files that make up the shim, in a stable order."""
    return sorted(SHIM_DIR.glob("*.c"))


def command(output: Path, sanitize: bool = False) -> list[str]:
    """The compiler command line that builds the shim into ``output``."""
    cc = shlex.split(os.environ.get("CC", "gcc"))
    flags = COMMON + WARNINGS + (SANITIZED if sanitize else OPTIMIZED)
    return [*cc, *flags, "-I", str(SHIM_DIR), "-o", str(output), *map(str, sources()), "-ldl"]


def build(output: Path, sanitize: bool = False) -> Path:
    """Compile the shim; ``subprocess.CalledProcessError`` if the compiler fails."""
    output.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(command(output, sanitize), check=True)
    return output


LAUNCHER_SOURCES = [SHIM_DIR / "launcher" / "launch.c", SHIM_DIR / "gate.c"]


def launcher_command(output: Path, static: bool = True) -> list[str]:
    """The compiler command line that builds ``libcfake-launch`` (static unless told not)."""
    cc = shlex.split(os.environ.get("CC", "gcc"))
    flags = ["-std=gnu11", "-O2", *WARNINGS] + (["-static"] if static else [])
    return [*cc, *flags, "-o", str(output), *map(str, LAUNCHER_SOURCES)]


def build_launcher(output: Path) -> Path:
    """Compile the seccomp launcher, static so it needs nothing; dynamic where the machine has
    no static libc (it installs its filter itself, so it works the same)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    static = subprocess.run(launcher_command(output), capture_output=True, text=True)
    if static.returncode != 0:
        reason = static.stderr.strip().splitlines()[-1:] or ["?"]
        print(f"shim/build.py: linking libcfake-launch dynamically (no static libc: {reason[0]})")
        subprocess.run(launcher_command(output, static=False), check=True)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    parser.add_argument("--sanitize", action="store_true", help="ASan + UBSan build")
    parser.add_argument("--launcher", type=Path, help="also build libcfake-launch here")
    args = parser.parse_args(argv)
    build(args.output, args.sanitize)
    if args.launcher is not None:
        build_launcher(args.launcher)
    return 0


if __name__ == "__main__":
    sys.exit(main())
