"""Faults on data (issue #19, "Faults where users expect them"): read, write (and pwrite,
writev, stdio's flushes, copy_file_range), fsync, fdatasync, ftruncate and close of model files
fail by fault rule (path glob, nth, times; short reads and writes), and ``sb.fs.set_disk_usage``
makes writes past the disk's size short, then ENOSPC, as Linux does. Only the descriptors the
master marks at open take the slower path; every other one keeps native speed."""

from __future__ import annotations

import errno
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from libcfake import LibcService, Sandbox
from libcfake.faults import FaultRule
from libcfake.protocol import WATCH_WRITES

Program = Callable[..., list[str]]


@pytest.fixture
def data_calls(compile_c: Callable[[str], Path]) -> Callable[[Sandbox, str], Program]:
    """Runs tests/programs/data_calls.c in a sandbox: its lines, one per step."""
    exe = str(compile_c("data_calls"))

    def runner(sb: Sandbox, path: str) -> Program:
        def run(*steps: str) -> list[str]:
            result = sb.run([exe, path, *steps], capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stderr
            lines: list[str] = result.stdout.splitlines()
            return lines

        return run

    return runner


def _sandbox(exe_dir: str | None = None) -> Sandbox:
    sb = Sandbox(mounts=[exe_dir] if exe_dir else [])
    sb.fs.create_dir("/data")
    return sb


def _data_entries(sb: Sandbox) -> list[tuple[str, str | None, str]]:
    data = ("read", "write", "fsync", "fdatasync", "ftruncate", "close")
    return [(e.call, e.path, e.answer) for e in sb.journal if e.call in data]


def _run(sb: Sandbox, args: list[str]) -> tuple[int, str, str]:
    result = sb.run(args, capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout, result.stderr


# -- fault rules on writes ------------------------------------------------------------------


def test_enospc_on_write_reaches_a_c_program_in_every_form(
    compile_c: Callable[[str], Path], data_calls: Callable[[Sandbox, str], Program]
) -> None:
    with _sandbox(str(compile_c("data_calls").parent)) as sb:
        sb.fail("write", "/data/*", errno.ENOSPC)
        run = data_calls(sb, "/data/f")
        steps = ["write:10", "pwrite:10", "writev:10", "pwritev:10", "copy:10"]
        lines = run("open-w", *steps, "close")
        assert lines == ["open-w 3 -", *(f"{s.split(':')[0]} -1 ENOSPC" for s in steps),
                         "close 0 -"]  # fmt: skip
        assert sb.fs.read_text("/data/f") == ""  # nothing was written
        symbols = [e.symbol for e in sb.journal if e.call == "write"]
        assert symbols == ["write", "pwrite", "writev", "pwritev", "copy_file_range"]
        arguments = [e.arguments for e in sb.journal if e.call == "write"]
        assert arguments[:2] == [(None, 10), (0, 10)]  # (offset, or the position; bytes)
        assert not sb.violations


def test_python_raises_oserror_enospc_and_the_host_sees_nothing() -> None:
    assert not os.path.exists("/data")  # the host's: the test checks it stays so
    with _sandbox() as sb:
        sb.fail("write", "/data/*", errno.ENOSPC)
        script = (
            "import errno\n"
            "try:\n"
            "    with open('/data/out.txt', 'w') as f:\n"
            "        f.write('x' * 100)\n"
            "except OSError as e:\n"
            "    print(errno.errorcode[e.errno])\n"
        )
        assert _run(sb, [sys.executable, "-c", script])[1] == "ENOSPC\n"
        assert sb.fs.read_text("/data/out.txt") == ""
        assert ("write", "/data/out.txt", "-1 ENOSPC (No space left on device)") in (
            _data_entries(sb)
        )
        assert not sb.violations
    assert not os.path.exists("/data")


def test_eio_on_fsync_and_fdatasync(
    compile_c: Callable[[str], Path], data_calls: Callable[[Sandbox, str], Program]
) -> None:
    with _sandbox(str(compile_c("data_calls").parent)) as sb:
        sb.fail("fsync", "/data/*", errno.EIO)
        sb.fail("fdatasync", "/data/*", errno.EIO, times=1)
        lines = data_calls(sb, "/data/f")("open-w", "write:4", "fsync", "fdatasync",
                                          "fdatasync", "close")  # fmt: skip
        assert lines == ["open-w 3 -", "write 4 -", "fsync -1 EIO", "fdatasync -1 EIO",
                         "fdatasync 0 -", "close 0 -"]  # fmt: skip
        assert sb.fs.read_text("/data/f") == "xxxx"  # the write itself went through
        script = "import os\nfd = os.open('/data/g', os.O_WRONLY | os.O_CREAT)\nos.fsync(fd)"
        code, _, err = _run(sb, [sys.executable, "-c", script])
        assert code == 1 and "OSError: [Errno 5] Input/output error" in err


def test_a_short_write_and_nth_times(
    compile_c: Callable[[str], Path], data_calls: Callable[[Sandbox, str], Program]
) -> None:
    with _sandbox(str(compile_c("data_calls").parent)) as sb:
        sb.fail("write", "/data/f", short=3, nth=2, times=2)  # the 2nd and 3rd writes
        run = data_calls(sb, "/data/f")
        lines = run("open-w", "write:10", "write:10", "writev:10", "write:10", "close")
        assert lines == ["open-w 3 -", "write 10 -", "write 3 -", "writev 3 -", "write 10 -",
                         "close 0 -"]  # fmt: skip
        assert len(sb.fs.read_text("/data/f")) == 26
        with pytest.raises(ValueError, match="short= makes reads and writes short"):
            sb.fail("fsync", "/data/*", short=1)


def test_the_rule_fires_only_for_matching_paths_and_other_files_keep_native_speed(
    compile_c: Callable[[str], Path], data_calls: Callable[[Sandbox, str], Program]
) -> None:
    with _sandbox(str(compile_c("data_calls").parent)) as sb:
        sb.fs.create_dir("/other")
        rule = sb.fail("write", "/data/*.db", errno.EIO)
        assert data_calls(sb, "/data/notes.txt")("open-w", "write:5", "close")[1] == "write 5 -"
        assert data_calls(sb, "/other/x.db")("open-w", "write:5", "close")[1] == "write 5 -"
        assert data_calls(sb, "/data/a.db")("open-w", "write:5", "close")[1] == "write -1 EIO"
        # only the watched descriptor's write was asked about: the others made no round trip
        assert _data_entries(sb) == [("write", "/data/a.db", "-1 EIO (Input/output error)")]
        assert rule.fired == 1 and rule.seen == 1
        assert sb.fs.read_text("/data/notes.txt") == "xxxxx"


def test_stdio_reports_the_error_at_fflush_and_fclose(
    compile_c: Callable[[str], Path], data_calls: Callable[[Sandbox, str], Program]
) -> None:
    with _sandbox(str(compile_c("data_calls").parent)) as sb:
        sb.fail("write", "/data/*", errno.ENOSPC)
        run = data_calls(sb, "/data/f")
        assert run("fopen-w", "fwrite:10", "fflush", "fclose") == [
            "fopen-w 3 -", "fwrite 10 -", "fflush -1 ENOSPC", "fclose 0 -"]  # fmt: skip
        assert run("fopen-a", "fprintf:10", "fclose") == [
            "fopen-a 3 -", "fprintf 10 -", "fclose -1 ENOSPC"]  # fmt: skip
        run("fopen-w", "fprintf:10")  # no fclose: libc's flush at exit, checked as well
        assert [e.symbol for e in sb.journal if e.call == "write"] == ["write"] * 3


def test_read_close_and_ftruncate_faults_follow_dup2(
    compile_c: Callable[[str], Path], data_calls: Callable[[Sandbox, str], Program]
) -> None:
    with _sandbox(str(compile_c("data_calls").parent)) as sb:
        sb.fs.create_file("/data/f", contents="abcdef")
        sb.fail("read", "/data/f", errno.EIO, nth=2, times=1)
        sb.fail("read", "/data/f", short=1)
        sb.fail("close", "/data/f", errno.EIO)
        sb.fail("ftruncate", "/data/f", errno.EFBIG)
        run = data_calls(sb, "/data/f")
        assert run("open-r", "dup2:9", "read:3", "read:3", "pread:3", "close") == [
            "open-r 3 -", "dup2 9 -", "read 1 -", "read -1 EIO", "pread 1 -",
            "close -1 EIO"]  # fmt: skip
        assert run("open-a", "ftruncate:1", "close") == [
            "open-a 3 -", "ftruncate -1 EFBIG", "close -1 EIO"]  # fmt: skip
        assert sb.fs.read_text("/data/f") == "abcdef"


# -- shells and tools ------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_a_shells_redirection_gets_enospc(shell: str) -> None:
    with _sandbox() as sb:
        sb.fs.create_file("/src", contents="from the model\n")
        sb.fail("write", "/data/*", errno.ENOSPC)
        # (cat and /bin/echo inherit the shell's watched descriptor across exec)
        for command in ("echo hello > /data/builtin", "/bin/echo hello > /data/program",
                        "cat /src > /data/cat"):  # fmt: skip
            _, out, err = _run(sb, [shell, "-c", f"{command}; echo rc=$?"])
            assert out == "rc=1\n", (command, err)
            assert "No space left on device" in err or "I/O error" in err, err
        assert not sb.violations


def test_cp_and_dd_get_enospc() -> None:
    with _sandbox() as sb:
        sb.fs.create_file("/src", contents="y" * 100_000)
        sb.fail("write", "/data/*", errno.ENOSPC)
        code, _, err = _run(sb, ["cp", "/src", "/data/copy"])
        assert code == 1 and "No space left on device" in err
        code, _, err = _run(sb, ["dd", "if=/src", "of=/data/dd", "bs=4k"])
        assert code == 1 and "No space left on device" in err


# -- a disk of the test's size ----------------------------------------------------------------


def test_dd_fills_a_10_mb_disk_then_gets_enospc() -> None:
    with _sandbox() as sb:
        sb.fs.set_disk_usage(10 << 20)
        code, _, err = _run(sb, ["dd", "if=/dev/zero", "of=/data/big", "bs=1M", "count=100"])
        assert code == 1 and "No space left on device" in err
        size = len(sb.fs.read_bytes("/data/big"))
        total, used = sb.fs.disk_usage("/data")
        assert (10 << 20) - 4096 <= size <= 10 << 20
        assert used == total == 10 << 20
        # the last write was short (up to the disk's size), the next ENOSPC: as Linux's
        answers = [e.answer for e in sb.journal if e.call == "write"]
        assert answers[-1].startswith("-1 ENOSPC") and answers[-2].isdigit()
        # and statfs says it is full
        assert _run(sb, ["stat", "-f", "-c", "%a", "/data"])[1].strip() == "0"
        assert not sb.violations


def test_the_disk_counts_every_file_and_a_truncate_too(
    compile_c: Callable[[str], Path], data_calls: Callable[[Sandbox, str], Program]
) -> None:
    with _sandbox(str(compile_c("data_calls").parent)) as sb:
        sb.fs.create_file("/data/old", contents="z" * 400)
        sb.fs.create_file("/etc/resolv.conf", contents="nameserver 127.0.0.1\n")  # 21 bytes
        sb.fs.set_disk_usage(1000)
        run = data_calls(sb, "/data/f")
        assert run("open-w", "write:500", "write:500", "write:1", "ftruncate:2000",
                   "ftruncate:10", "close") == [
            "open-w 3 -", "write 500 -", "write 79 -", "write -1 ENOSPC",
            "ftruncate -1 ENOSPC", "ftruncate 0 -", "close 0 -"]  # fmt: skip
        assert sb.fs.disk_usage("/") == (1000, 400 + 21 + 10)


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="no sqlite3")
def test_sqlite_reports_a_full_disk() -> None:
    with _sandbox() as sb:
        sb.fs.set_disk_usage(256 << 10)
        sql = "create table t(x); insert into t values (randomblob(1000000));"
        code, _, err = _run(sb, ["sqlite3", "/data/app.db", sql])
        assert code != 0 and "full" in err, err
        assert not sb.violations


def test_unsized_disk_and_no_data_rule_watch_nothing() -> None:
    with _sandbox() as sb:
        sb.fail("open", "/data/nothing", errno.EACCES)  # not a data call
        script = "open('/data/f', 'w').write('x' * 10000)"
        assert _run(sb, [sys.executable, "-c", script])[0] == 0
        assert _data_entries(sb) == []


# -- the service API --------------------------------------------------------------------------


def test_a_handler_watches_an_open_and_answers_the_writes() -> None:
    """LibcService: ``send_with_fds(..., watch=WATCH_WRITES)`` marks the descriptor; its writes
    come to the handler as calls named "write", answered by a count (here: 2 bytes)."""
    seen: list[tuple[str, int]] = []
    fd = os.memfd_create("handed-out", os.MFD_CLOEXEC)  # on the device the welcome names

    def answer(svc: LibcService) -> None:
        if svc.function_ in ("open", "openat"):
            svc.send_with_fds(0, [fd], watch=WATCH_WRITES)
        elif svc.function_ == "write":
            seen.append((svc.function_, svc.call.raw.values[1]))
            svc.send(2)
        else:
            svc.use_slave_credentials()

    script = "import os\nfd = os.open('/anything', os.O_WRONLY)\nprint(os.write(fd, b'hello'))"
    devices = [os.fstat(fd).st_dev]
    with LibcService(passthrough=["/usr", "/lib", sys.prefix, sys.base_prefix],
                     file_devices=devices) as svc:  # fmt: skip
        proc = svc.spawn([sys.executable, "-c", script], stdout=-1, text=True)
        svc.serve(answer, until=proc)
        assert proc.stdout is not None and proc.stdout.read() == "2\n"
    assert seen == [("write", 5)] and os.pread(fd, 10, 0) == b"he"
    os.close(fd)


def test_watch_bits_go_with_an_open_only() -> None:
    rule = FaultRule("write", "/x", errno.EIO)
    assert rule.covers(frozenset({"write"}), "/x") and rule.seen == 0
    from libcfake.replies import encode_answer

    class _Raw:
        function, seq = "stat", 1

    class _Call:
        raw = _Raw()

    with pytest.raises(ValueError, match="watch bits"):
        encode_answer(_Call(), 0, [3], 0, None, WATCH_WRITES)  # type: ignore[arg-type]


def test_a_quota_on_one_mount_point_leaves_the_rest_alone() -> None:
    """pyfakefs's mount points: ``set_disk_usage(size, path)`` sizes the one at ``path``."""
    with _sandbox() as sb:
        sb.fs.fake.add_mount_point("/quota")
        sb.fs.set_disk_usage(5000, "/quota")
        # (blocks of whole pages: dd allocates its buffer page-aligned, which ASan checks)
        code, _, err = _run(sb, ["dd", "if=/dev/zero", "of=/quota/f", "bs=4k", "count=3"])
        assert code == 1 and "No space left on device" in err
        assert _run(sb, ["dd", "if=/dev/zero", "of=/data/f", "bs=4k", "count=3"])[0] == 0
        assert sb.fs.stat("/quota/f").size == 5000 and sb.fs.stat("/data/f").size == 12288
        assert {e.path for e in sb.journal if e.call == "write"} == {"/quota/f"}
