"""cffi build script for ``libcfake._wire``: the wire structs, read from the shim's own header.

The header is C with a few preprocessor lines; cffi's ``cdef`` takes the declarations and the
integer ``#define``s, so the include guard, ``#include`` lines and macros with arguments are
dropped here. The call table (the ``LCF_CALLS`` X-macro, which cffi cannot expand) is read twice:
its rows become ``enum lcf_function`` for ``cdef``, and the C compiler expands it into
``lcf_call_table``, the array the master reads the table from (``libcfake.protocol.Function``).
The module is compiled against the same header, so the C compiler checks every struct layout
and every number both ends use.
It also carries the metadata snapshot's writer and the note ring's taker and checker, compiled
from the same ``shim/snapshot.c`` and ``shim/ring.c`` the shim reads the snapshot and appends
to the ring with, and the seccomp supervisor's fast path (``shim/launcher/fastpath.c``), which
waits for trapped calls and answers the read-only ones under the mounts without the GIL.
"""

from __future__ import annotations

import re
from pathlib import Path

from cffi import FFI

SHIM = Path(__file__).resolve().parent.parent / "shim"
HEADER = SHIM / "libcfake_wire.h"
SNAPSHOT_HEADER = SHIM / "snapshot.h"
RING_HEADER = SHIM / "ring.h"
FASTPATH_HEADER = SHIM / "launcher" / "fastpath.h"
_INTEGER_DEFINE = re.compile(r"#define\s+LCF_\w+\s+(0x[0-9a-fA-F]+|\d+)\b")


_ROW = re.compile(r"^\s*X\((\w+),\s*(\d+),")


def declarations(text: str) -> str:
    """The header's text with the preprocessor lines cffi cannot read removed (a macro's
    continuation lines too), and ``enum lcf_function`` written out from the call table."""
    kept = []
    continued = False
    for line in text.splitlines():
        stripped = line.strip()
        if continued or (stripped.startswith("#") and not _INTEGER_DEFINE.match(stripped)):
            continued = stripped.endswith("\\")
            continue
        if stripped.startswith("enum lcf_function {"):
            kept.append(_function_enum(text))
            continue
        kept.append(line)
    return "\n".join(kept)


def _function_enum(text: str) -> str:
    """``enum lcf_function`` as the call table's rows define it."""
    rows = [match.groups() for match in map(_ROW.match, text.splitlines()) if match]
    if not rows:
        raise SystemExit("libcfake_wire.h: no rows in LCF_CALLS")
    return "enum lcf_function { " + " ".join(f"LCF_{name} = {n}," for name, n in rows) + " };"


_TABLE_SOURCE = """
#define LCF_CALL_INFO(NAME, number, name, family, subject, reply, effect, noted) \\
    {LCF_##NAME, #name, LCF_FAMILY_##family, LCF_SUBJECT_##subject, LCF_REPLY_##reply, \\
     LCF_EFFECT_##effect, noted},
static const struct lcf_call_info lcf_call_table[] = { LCF_CALLS(LCF_CALL_INFO) };
static const int lcf_call_count = sizeof lcf_call_table / sizeof lcf_call_table[0];
"""


ffibuilder = FFI()
ffibuilder.cdef(declarations(HEADER.read_text()))
ffibuilder.cdef(declarations(SNAPSHOT_HEADER.read_text()))
ffibuilder.cdef(declarations(RING_HEADER.read_text()))
ffibuilder.cdef(declarations(FASTPATH_HEADER.read_text()))
ffibuilder.cdef(
    "extern const struct lcf_call_info lcf_call_table[];\nstatic const int lcf_call_count;"
)
ffibuilder.set_source(
    "libcfake._wire",
    '#include "libcfake_wire.h"\n#include "snapshot.h"\n#include "ring.h"\n'
    '#include "launcher/fastpath.h"\n' + _TABLE_SOURCE,
    sources=[str(SHIM / "snapshot.c"), str(SHIM / "ring.c"), str(SHIM / "launcher" / "fastpath.c")],
    include_dirs=[str(SHIM)],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
