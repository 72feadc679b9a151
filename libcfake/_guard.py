"""The test process while a master serves: not dumpable, and the reaper of its programs' orphans.

Both are properties of the whole process, so they are counted: the first :func:`enter` sets them,
the last :func:`leave` puts back what was there before.

- **Not dumpable** (``PR_SET_DUMPABLE`` 0): a program running as the test's user can then neither
  ``ptrace`` the test process nor read its ``/proc/<pid>/mem``, ``environ`` or ``fd`` (the
  test's secrets), and the process leaves no core dump.
- **A child subreaper** (``PR_SET_CHILD_SUBREAPER``): a program's process whose parent exits (a
  daemon's double fork) becomes a child of the test process rather than of init, so the master
  still sees it as a descendant (see ``libcfake._peer``, whose ``Tree.reap`` collects such
  adopted children once they exit; the test's own children are never waited for there).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading

_PR_SET_DUMPABLE = 4
_PR_GET_DUMPABLE = 3
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_prctl = _libc.prctl
_prctl.restype = ctypes.c_int
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

_lock = threading.Lock()
_users = 0
_saved: tuple[int, int] = (1, 0)  # dumpable, subreaper before the first enter


def _set(option: int, value: int) -> None:
    if _prctl(option, value, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl({option}, {value}): {os.strerror(error)}")


def _subreaper() -> int:
    value = ctypes.c_int(0)
    _prctl(_PR_GET_CHILD_SUBREAPER, ctypes.addressof(value), 0, 0, 0)
    return value.value


def enter() -> None:
    """A master starts serving."""
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = (_prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0), _subreaper())
            _set(_PR_SET_DUMPABLE, 0)
            _set(_PR_SET_CHILD_SUBREAPER, 1)
        _users += 1


def leave() -> None:
    """A master stopped serving."""
    global _users
    with _lock:
        _users -= 1
        if _users == 0:
            dumpable, subreaper = _saved
            _set(_PR_SET_DUMPABLE, 1 if dumpable == 1 else 0)
            _set(_PR_SET_CHILD_SUBREAPER, subreaper)


def dumpable() -> bool:
    """Whether the test process is dumpable now."""
    return bool(_prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0) == 1)
