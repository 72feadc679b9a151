"""While a Sandbox is open, the GIL's switch interval is the Sandbox's (0.5 ms), so the master
waits behind a busy Python thread of the test at most that long per call, not CPython's 5 ms;
benchmarks/gil.py measures what it buys (a timing has no place in a test on a shared machine)."""

from __future__ import annotations

import sys

from libcfake import Sandbox
from libcfake.sandbox import SWITCH_INTERVAL


def test_an_open_sandbox_lowers_the_switch_interval_and_puts_it_back() -> None:
    before = sys.getswitchinterval()
    with Sandbox():
        assert sys.getswitchinterval() == min(before, SWITCH_INTERVAL)
        with Sandbox():  # nested: the last one to close restores
            pass
        assert sys.getswitchinterval() == min(before, SWITCH_INTERVAL)
    assert sys.getswitchinterval() == before


def test_a_value_the_test_set_meanwhile_is_kept() -> None:
    before = sys.getswitchinterval()
    try:
        with Sandbox():
            sys.setswitchinterval(0.002)
        assert sys.getswitchinterval() == 0.002
    finally:
        sys.setswitchinterval(before)
