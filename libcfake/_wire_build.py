"""cffi build script for ``libcfake._wire``: the wire structs, read from the shim's own header.

The header is C with a few preprocessor lines; cffi's ``cdef`` takes the declarations and the
integer ``#define``s, so the include guard and ``#include`` lines are dropped here. The module is
compiled against the same header, so the C compiler checks every struct layout both ends use.
It also carries the metadata snapshot's writer and the note ring's taker and checker, compiled
from the same ``shim/snapshot.c`` and ``shim/ring.c`` the shim reads the snapshot and appends
to the ring with.
"""

from __future__ import annotations

import re
from pathlib import Path

from cffi import FFI

SHIM = Path(__file__).resolve().parent.parent / "shim"
HEADER = SHIM / "libcfake_wire.h"
SNAPSHOT_HEADER = SHIM / "snapshot.h"
RING_HEADER = SHIM / "ring.h"
_INTEGER_DEFINE = re.compile(r"#define\s+LCF_\w+\s+(0x[0-9a-fA-F]+|\d+)\b")


def declarations(text: str) -> str:
    """The header's text with the preprocessor lines cffi cannot read removed."""
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not _INTEGER_DEFINE.match(stripped):
            continue
        kept.append(line)
    return "\n".join(kept)


ffibuilder = FFI()
ffibuilder.cdef(declarations(HEADER.read_text()))
ffibuilder.cdef(declarations(SNAPSHOT_HEADER.read_text()))
ffibuilder.cdef(declarations(RING_HEADER.read_text()))
ffibuilder.set_source(
    "libcfake._wire",
    '#include "libcfake_wire.h"\n#include "snapshot.h"\n#include "ring.h"',
    sources=[str(SHIM / "snapshot.c"), str(SHIM / "ring.c")],
    include_dirs=[str(SHIM)],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
