"""A program that saves its state must survive a full disk: the old state stays whole, and the
program says what went wrong instead of crashing or leaving half a file.

The "program" here is a small Python script (it could be any binary); the test gives the
sandbox a small disk, or makes fsync fail, and checks what the program left behind.
"""

import errno
import json
import sys

SAVE_STATE = r"""
import json, os, sys
state = {"items": ["x" * 1000] * int(sys.argv[1])}
tmp = "/var/lib/app/state.json.tmp"
try:
    with open(tmp, "w") as f:
        json.dump(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, "/var/lib/app/state.json")   # atomic: all or nothing
except OSError as e:
    if os.path.exists(tmp):
        os.unlink(tmp)
    print(f"could not save: {os.strerror(e.errno)}", file=sys.stderr)
    sys.exit(1)
print("saved")
"""


def save(libcfake, items):
    return libcfake.run([sys.executable, "-c", SAVE_STATE, str(items)],
                        capture_output=True, text=True)  # fmt: skip


def test_a_full_disk_keeps_the_old_state(libcfake):
    libcfake.fs.create_file("/var/lib/app/state.json", contents='{"items": []}')
    libcfake.fs.set_disk_usage(64 * 1024)  # a 64 KiB disk

    assert save(libcfake, 10).stdout == "saved\n"  # 10 KB fits
    result = save(libcfake, 100)  # 100 KB does not
    assert result.returncode == 1
    assert "No space left on device" in result.stderr
    saved = json.loads(libcfake.fs.read_text("/var/lib/app/state.json"))
    assert len(saved["items"]) == 10  # the previous save, whole
    assert not libcfake.fs.exists("/var/lib/app/state.json.tmp")


def test_an_fsync_error_is_reported_not_ignored(libcfake):
    libcfake.fs.create_dir("/var/lib/app")
    libcfake.fail("fsync", "/var/lib/app/*.tmp", errno.EIO)
    result = save(libcfake, 1)
    assert result.returncode == 1
    assert "Input/output error" in result.stderr
    assert not libcfake.fs.exists("/var/lib/app/state.json")


def test_dd_stops_at_the_end_of_the_disk(libcfake):
    libcfake.fs.create_dir("/data")
    libcfake.fs.set_disk_usage(10 * 1024 * 1024)
    result = libcfake.run(["dd", "if=/dev/zero", "of=/data/big", "bs=1M", "count=100"],
                          capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 1
    assert "No space left on device" in result.stderr
    assert 9 * 1024 * 1024 < libcfake.fs.stat("/data/big").size <= 10 * 1024 * 1024
