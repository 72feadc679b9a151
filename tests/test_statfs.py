"""statfs, statvfs and their descriptor forms (issue #21 §6): a path of the model is on the
model's filesystem, an in-memory one of the size ``sb.fs.set_disk_usage`` gives; a host mount's
path is the host's. (The call added after the call table, ARCHITECTURE.md's "Adding a call".)"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path

from libcfake import Sandbox

from .conftest import as_nobody

TMPFS_MAGIC = "1021994"
TIB = 1 << 40


def _run(sb: Sandbox, args: list[str]) -> str:
    result = sb.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_c_program_sees_the_models_filesystem(compile_c: Callable[[str], Path]) -> None:
    program = str(compile_c("statfs"))
    with Sandbox(mounts=[os.path.dirname(program)]) as sb:
        sb.fs.create_file("/data/f", contents="x")
        lines = _run(sb, [program, "/data/f"]).splitlines()
        blocks = TIB // 4096
        assert lines == [
            f"statfs {TMPFS_MAGIC} 4096 {blocks} 255 0",
            f"statvfs 4096 {blocks} 255",
            f"fstatfs {TMPFS_MAGIC} {blocks} fstatvfs {blocks}",
        ]
        assert not sb.violations
        calls = [(e.call, e.path) for e in sb.journal if e.call in ("statfs", "fstatfs")]
        assert calls == [("statfs", "/data/f"), ("statfs", "/data/f"), ("fstatfs", "/data/f"),
                         ("fstatfs", "/data/f")]  # fmt: skip


def test_the_disk_size_is_the_tests(compile_c: Callable[[str], Path]) -> None:
    with Sandbox() as sb:
        sb.fs.create_dir("/data")
        sb.fs.set_disk_usage(64 << 20)
        script = (
            "import os, shutil; v = os.statvfs('/data');"
            "print(v.f_blocks * v.f_frsize, shutil.disk_usage('/data').total)"
        )
        assert _run(sb, [sys.executable, "-c", script]).split() == [str(64 << 20)] * 2
        out = _run(sb, ["stat", "-f", "-c", "%T %S %b", "/data"])  # coreutils
        assert out.split() == ["tmpfs", "4096", str((64 << 20) // 4096)]


def test_a_missing_path_is_enoent_and_no_violation() -> None:
    with Sandbox() as sb:
        script = "import os\ntry:\n os.statvfs('/nowhere/x')\nexcept OSError as e: print(e.errno)"
        assert _run(sb, [sys.executable, "-c", script]).strip() == str(errno.ENOENT)
        assert not sb.violations


def test_a_host_mount_is_the_hosts_filesystem() -> None:
    native = os.statvfs("/usr")
    with Sandbox() as sb:
        script = "import os; v = os.statvfs('/usr'); print(v.f_blocks, v.f_bsize)"
        assert _run(sb, [sys.executable, "-c", script]).split() == [
            str(native.f_blocks),
            str(native.f_bsize),
        ]
        assert [e.answer for e in sb.journal if e.call == "statfs" and e.path == "/usr"] in (
            [],  # the shim's passthrough table answered it (a read-only call under a mount)
            ["passthrough"],
        )


def test_a_program_own_descriptor_is_the_real_call() -> None:
    with Sandbox() as sb:
        script = "import os; r, w = os.pipe(); print(os.fstatvfs(r).f_bsize > 0)"
        assert _run(sb, [sys.executable, "-c", script]).strip() == "True"
        assert not [e for e in sb.journal if e.call == "fstatfs"]


def test_a_fault_rule_fails_statfs() -> None:
    with Sandbox() as sb:
        sb.fs.create_dir("/data")
        sb.fail("statfs", "/data", errno.EIO)
        script = "import os\ntry:\n os.statvfs('/data')\nexcept OSError as e: print(e.errno)"
        assert _run(sb, [sys.executable, "-c", script]).strip() == str(errno.EIO)
        assert [e.fault for e in sb.journal if e.call == "statfs"] == [True]


def test_search_permission_is_checked_as_the_caller() -> None:
    with Sandbox() as sb:
        sb.fs.create_dir("/locked", perm_bits=0o700)
        sb.fs.create_file("/locked/f")
        script = (
            "import os\ntry:\n os.statvfs('/locked/f'); print('ok')\n"
            "except OSError as e: print(e.errno)"
        )
        result = sb.run(
            [*as_nobody(), sys.executable, "-c", script], capture_output=True, text=True
        )
        assert result.stdout.strip() == str(errno.EACCES), result.stderr
        assert not sb.violations


def test_statfs_reaches_the_host_nowhere(tmp_path: Path) -> None:
    """From outside: a model path that also exists on the host is answered by the model."""
    (tmp_path / "real").mkdir()
    with Sandbox() as sb:
        sb.fs.create_dir(str(tmp_path / "real"))
        sb.fs.set_disk_usage(1 << 30)
        script = (
            f"import os; v = os.statvfs({str(tmp_path / 'real')!r}); print(v.f_blocks * v.f_frsize)"
        )
        assert _run(sb, [sys.executable, "-c", script]).strip() == str(1 << 30)
