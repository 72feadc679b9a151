"""Every wrapped libc entry point reaches the master as the seed's call, with the seed's
arguments, and the master's answer reaches the program (tests/programs/callall.c)."""

from __future__ import annotations

import errno
import os
from pathlib import PurePosixPath

import pytest

from libcfake import LibcService, StatResult

from .conftest import run_served

P = PurePosixPath
RD = ["read_only"]

# (entry point, the seed's function_, the seed's arguments)
EXPECTED = [
    ("open", "open", (P("/v/open"), RD)),
    ("open64", "open", (P("/v/open64"), RD)),
    ("__open_2", "open", (P("/v/__open_2"), RD)),
    ("__open64_2", "open", (P("/v/__open64_2"), RD)),
    ("creat", "open", (P("/v/creat"), ["create", "truncate", "write_only"], 0o640)),
    ("creat64", "open", (P("/v/creat64"), ["create", "truncate", "write_only"], 0o600)),
    ("fopen", "open", (P("/v/fopen"), RD)),
    ("fopen64", "open", (P("/v/fopen64"), RD)),
    ("freopen", "open", (P("/v/freopen"), RD)),
    ("freopen64", "open", (P("/v/freopen64"), RD)),
    ("openat", "openat", (P("/v/openat"), ["create", "exclusive", "read_write"], 0o644)),
    ("openat64", "openat", (P("/v/openat64"), ["append", "write_only"])),
    ("__openat_2", "openat", (P("/v/__openat_2"), RD)),
    ("__openat64_2", "openat", (P("/v/__openat64_2"), ["no_follow", "read_only"])),
    ("unlink", "unlink", (P("/v/unlink"),)),
    ("unlinkat", "unlink", (P("/v/unlinkat"),)),
    ("unlinkat", "rmdir", (P("/v/unlinkat-dir"),)),
    ("remove", "unlink", (P("/v/remove"),)),
    ("rename", "rename", (P("/v/rename-from"), P("/v/rename-to"))),
    ("renameat", "rename", (P("/v/renameat-from"), P("/v/renameat-to"))),
    ("renameat2", "rename", (P("/v/renameat2-from"), P("/v/renameat2-to"))),
    ("stat", "stat", (P("/v/stat"),)),
    ("lstat", "lstat", (P("/v/lstat"),)),
    ("fstatat", "stat", (P("/v/fstatat"),)),
    ("fstatat", "lstat", (P("/v/fstatat-nofollow"),)),
    ("stat64", "stat", (P("/v/stat64"),)),
    ("lstat64", "lstat", (P("/v/lstat64"),)),
    ("fstatat64", "stat", (P("/v/fstatat64"),)),
    ("statx", "stat", (P("/v/statx"),)),
    ("__xstat", "stat", (P("/v/__xstat"),)),
    ("__xstat64", "stat", (P("/v/__xstat64"),)),
    ("__lxstat", "lstat", (P("/v/__lxstat"),)),
    ("__lxstat64", "lstat", (P("/v/__lxstat64"),)),
    ("__fxstatat", "stat", (P("/v/__fxstatat"),)),
    ("__fxstatat64", "stat", (P("/v/__fxstatat64"),)),
    ("access", "access", (P("/v/access"), ["r", "w"])),
    ("faccessat", "access", (P("/v/faccessat"), "f")),
    ("faccessat", "eaccess", (P("/v/faccessat-eaccess"), ["x"])),
    ("eaccess", "eaccess", (P("/v/eaccess"), ["r"])),
    ("euidaccess", "eaccess", (P("/v/euidaccess"), ["w"])),
    ("mkdir", "mkdir", (P("/v/mkdir"), 0o755)),
    ("mkdirat", "mkdir", (P("/v/mkdirat"), 0o700)),
    ("rmdir", "rmdir", (P("/v/rmdir"),)),
    ("rmdir", "rmdir", (P("/v/fail-rmdir"),)),
]


def answer_from_path(svc: LibcService) -> None:
    """Files hold their own path; stat sizes are the path's length; "fail" paths are ENOENT."""
    path = str(svc.arguments()[0])
    if not path.startswith("/v/"):
        svc.use_slave_credentials()
    elif "fail" in path:
        svc.send(-1, errno.ENOENT)
    elif svc.function_ in ("open", "openat"):
        fd = os.memfd_create("answer")
        os.write(fd, path.encode())
        os.lseek(fd, 0, os.SEEK_SET)
        svc.send_with_fds(0, [fd])
        os.close(fd)
    elif svc.function_ in ("stat", "lstat"):
        svc.send(StatResult(type="regular", mode=0o640, size=len(path)))
    else:
        svc.send(0)


@pytest.fixture(scope="module")
def callall(compile_c):  # type: ignore[no-untyped-def]
    return compile_c("callall")


def test_every_entry_point_forwards_the_seed_call(service: LibcService, callall) -> None:  # type: ignore[no-untyped-def]
    ran = run_served(service, [str(callall)], answer_from_path)
    assert ran.returncode == 0, ran.stderr
    seen = [
        (symbol, function, args)
        for symbol, function, args in ran.calls
        if str(args[0]).startswith("/v/") and "for-freopen" not in str(args[0])
    ]
    assert seen == EXPECTED


def test_every_entry_point_returns_the_answer(service: LibcService, callall) -> None:  # type: ignore[no-untyped-def]
    ran = run_served(service, [str(callall)], answer_from_path)
    lines = {line.split(" ", 1)[0]: line for line in ran.stdout.splitlines()}
    for name in ("open", "open64", "__open_2", "__open64_2", "openat", "__openat64_2"):
        assert lines[name] == f"{name} 0 0 /v/{name}"
    for name in ("fopen", "fopen64", "freopen", "freopen64"):
        assert lines[name] == f"{name} 0 0 /v/{name}"
    for name in ("stat", "lstat", "fstatat", "__xstat", "__lxstat64", "__fxstatat64"):
        assert lines[name] == f"{name} 0 0 size={len('/v/' + name)} mode=100640"
    assert lines["statx"] == f"statx 0 0 size={len('/v/statx')} mode=100640"
    for name in ("stat64", "lstat64", "fstatat64"):
        assert lines[name] == f"{name} 0 0 ok"
    for name in ("unlink", "remove", "rename", "renameat2", "access", "euidaccess", "mkdirat"):
        assert lines[name] == f"{name} 0 0 "
    assert lines["rmdir-fails"] == f"rmdir-fails -1 {errno.ENOENT} "
