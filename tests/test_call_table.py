"""The call table (LCF_CALLS in shim/libcfake_wire.h) as the master reads it: one vocabulary for
the shim's wrappers, the reply checks of both ends, the journal and the answers."""

from __future__ import annotations

import re
from pathlib import Path

from libcfake._wire import ffi, lib

from libcfake.calls import Call
from libcfake.protocol import (
    FUNCTIONS,
    NOTED_FUNCTIONS,
    NOTED_OPENS,
    SEED_FUNCTIONS,
    Effect,
    Family,
    Function,
    ProcessInfo,
    ReplyKind,
    Subject,
    decode_call,
    encode_call,
)

HEADER = Path(__file__).resolve().parent.parent / "shim" / "libcfake_wire.h"
#: Emilua's libc_service.master, in its order: the first 17 numbers are these.
EMILUA = ("open", "openat", "unlink", "rename", "stat", "lstat", "access", "eaccess", "mkdir",
          "rmdir", "connect_unix", "connect_inet", "connect_inet6", "bind_unix", "bind_inet",
          "bind_inet6", "getaddrinfo")  # fmt: skip


def test_the_table_is_the_headers_rows() -> None:
    rows = re.findall(r"^\s*X\((\w+),\s*(\d+),\s*(\w+),", HEADER.read_text(), re.MULTILINE)
    assert rows, "no rows found in LCF_CALLS"
    assert [(f.name, int(f), f.text) for f in Function] == [(n, int(v), t) for n, v, t in rows]
    assert len(set(FUNCTIONS)) == len(FUNCTIONS) == len(set(FUNCTIONS.values()))


def test_the_c_enum_has_the_tables_numbers() -> None:
    for function in Function:
        assert getattr(lib, f"LCF_{function.name}") == function


def test_the_seed_calls_keep_emiluas_names_and_numbers() -> None:
    assert [FUNCTIONS[number] for number in range(1, 18)] == list(EMILUA)
    assert frozenset(EMILUA) == SEED_FUNCTIONS
    assert Function.of("getaddrinfo").seed and not Function.of("readlink").seed


def test_the_properties_the_master_decides_by() -> None:
    stat = Function.of("stat")
    assert (stat.family, stat.subject, stat.reply, stat.effect, stat.noted) == (
        Family.FS, Subject.PATH, ReplyKind.STAT, Effect.READS, True
    )  # fmt: skip
    assert Function.of("symlink").subject is Subject.LINK  # a link lives at its own path
    assert Function.of("open").effect is Effect.BY_FLAGS
    assert {f.text for f in Function if f.family is Family.FILE} >= {"fstat", "fchmod"}
    assert {"open", "openat"} == NOTED_OPENS
    noted = {"stat", "lstat", "fstat", "access", "eaccess", "readlink", "getxattr"}
    assert noted == NOTED_FUNCTIONS
    assert {kind for kind in ReplyKind} == {f.reply for f in Function}


def test_a_decoded_call_names_its_function_and_whether_it_changes_files() -> None:
    process = ProcessInfo(0, 1, 0, 1, 0, 0, 0, 0, 0, "/bin/true")
    for function in Function:
        raw = decode_call(encode_call(function.text, b"/x", None), 0)
        call = Call(process, raw)
        assert call.function == function.text
        assert call.changes_filesystem == (function.effect is Effect.CHANGES)


def test_the_table_strings_are_the_c_names() -> None:
    for i in range(lib.lcf_call_count):
        row = lib.lcf_call_table[i]
        assert ffi.string(row.name).decode() == Function(row.function).text
