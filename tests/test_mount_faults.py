"""A fault rule on a path under a host mount fires, under both backends.

Reads under a mount are made by the shim itself (its passthrough) or answered by the hybrid
backend's fast path, neither of which asks the master: a rule naming such a path never fired,
and the test learned it only from the unused-rule report. A filesystem rule now takes the
mounts it may name out of the passthrough table of the programs started after it.
"""

from __future__ import annotations

import errno

import pytest

from libcfake import Sandbox, _hybrid

BACKENDS = ["preload"] + (["hybrid"] if _hybrid.unavailable() is None else [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_rule_on_a_mounted_file_fires(backend: str) -> None:
    with Sandbox(backend=backend) as sb:
        before = sb.run(["cat", "/etc/passwd"], capture_output=True, text=True)
        sb.fail("open", "/etc/passwd", errno.EACCES)
        after = sb.run(["cat", "/etc/passwd"], capture_output=True, text=True)
        other = sb.run(["cat", "/etc/group"], capture_output=True, text=True)
        unused = sb.unused_rules()
    assert before.returncode == 0 and "root" in before.stdout
    assert after.returncode == 1 and "Permission denied" in after.stderr, after
    assert other.returncode == 0 and "root" in other.stdout
    assert unused == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_glob_over_a_mounted_tree_fires(backend: str) -> None:
    with Sandbox(backend=backend) as sb:
        sb.fail("stat", "/usr/share/*", errno.EIO, times=1)
        done = sb.run(["stat", "-c", "%n", "/usr/share/zoneinfo", "/usr/share/zoneinfo"],
                      capture_output=True, text=True)  # fmt: skip
        unused = sb.unused_rules()
    assert done.returncode == 1, done
    assert "Input/output error" in done.stderr
    assert done.stdout.splitlines() == ["/usr/share/zoneinfo"]  # the second stat: times=1
    assert unused == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_reads_of_devices_pass_through_and_their_rules_fire(backend: str) -> None:
    # git opens /dev/urandom for every object it writes: read-only opens of the harmless
    # devices are the shim's passthrough, unjournaled, until a rule names one
    reads = "print(len(open('/dev/urandom', 'rb').read(16)), open('/dev/null').read() == '')"
    with Sandbox(backend=backend, strict=True) as sb:
        done = sb.run(["python3", "-c", reads], capture_output=True, text=True, timeout=60)
        assert done.stdout.split() == ["16", "True"], done.stderr
        assert not [e for e in sb.journal if (e.path or "").startswith("/dev/")]
        sb.fail("open", "/dev/urandom", errno.EIO)
        failed = sb.run(["python3", "-c", reads], capture_output=True, text=True, timeout=60)
        assert "Input/output error: '/dev/urandom'" in failed.stderr, failed
        assert sb.unused_rules() == []
