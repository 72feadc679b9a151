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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    parser.add_argument("--sanitize", action="store_true", help="ASan + UBSan build")
    args = parser.parse_args(argv)
    build(args.output, args.sanitize)
    return 0


if __name__ == "__main__":
    sys.exit(main())
