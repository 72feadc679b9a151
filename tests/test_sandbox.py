"""The Sandbox: real programs read, write and change files that exist only in memory."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from libcfake import Sandbox, ViolationError

from .conftest import AS_NOBODY


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(reply_timeout=20) as sandbox:
        yield sandbox


def run(sb: Sandbox, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return sb.run(list(args), capture_output=True, text=True, timeout=60, **kwargs)  # type: ignore[call-overload, no-any-return]


def python(sb: Sandbox, code: str) -> subprocess.CompletedProcess[str]:
    return run(sb, sys.executable, "-c", code)


def test_cat_reads_a_virtual_file(sb: Sandbox) -> None:
    sb.fs.create_file("/etc/app.conf", contents="port = 8080\n")
    result = run(sb, "cat", "/etc/app.conf")
    assert (result.returncode, result.stdout, result.stderr) == (0, "port = 8080\n", "")
    assert not sb.violations


def test_a_missing_file_is_enoent_as_on_a_real_machine(sb: Sandbox) -> None:
    result = run(sb, "cat", "/etc/app.conf")
    assert result.returncode == 1
    assert "No such file or directory" in result.stderr
    assert not sb.violations  # a missing file is an answer, not a violation


def test_what_a_program_writes_the_test_reads_back(sb: Sandbox) -> None:
    sb.fs.create_dir("/var/log")
    result = python(sb, "open('/var/log/app.log', 'w').write('started\\n')")
    assert result.returncode == 0, result.stderr
    assert sb.fs.read_text("/var/log/app.log") == "started\n"
    assert not os.path.exists("/var/log/app.log")  # nothing reached the real disk


def test_two_opens_have_independent_offsets(sb: Sandbox) -> None:
    sb.fs.create_file("/data.txt", contents="abcdef")
    code = "a = open('/data.txt'); b = open('/data.txt'); print(a.read(3), b.read(3), a.read())"
    assert python(sb, code).stdout == "abc abc def\n"


def test_a_read_only_open_cannot_write(sb: Sandbox) -> None:
    sb.fs.create_file("/data.txt", contents="keep")
    code = (
        "import os\nfd = os.open('/data.txt', os.O_RDONLY)\n"
        "try:\n  os.write(fd, b'x')\nexcept OSError as e:\n  print(e.errno)"
    )
    assert python(sb, code).stdout.strip() == str(errno.EBADF)
    assert sb.fs.read_text("/data.txt") == "keep"


def test_append_and_truncate_are_honoured(sb: Sandbox) -> None:
    sb.fs.create_file("/log", contents="one\n")
    code = "open('/log', 'a').write('two\\n'); open('/t', 'w').write('x'); open('/t', 'w')"
    assert python(sb, code).returncode == 0
    assert sb.fs.read_text("/log") == "one\ntwo\n"
    assert sb.fs.read_text("/t") == ""


def test_writes_are_visible_to_the_test_while_the_program_runs(sb: Sandbox) -> None:
    sb.fs.create_file("/progress", contents="")
    code = (
        "import sys\nf = open('/progress', 'w'); f.write('halfway'); f.flush()\n"
        "sys.stdout.write('ready\\n'); sys.stdout.flush(); sys.stdin.readline()"
    )
    proc = sb.popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline() == b"ready\n"
    assert sb.fs.read_text("/progress") == "halfway"
    proc.communicate(b"\n", timeout=30)


def test_stat_agrees_with_the_model(sb: Sandbox) -> None:
    sb.fs.create_file("/x", contents="12345", st_mode=0o640, uid=1234, gid=99)
    result = run(sb, "stat", "-c", "%s %a %u %g %F", "/x")
    assert result.stdout == "5 640 1234 99 regular file\n", result.stderr


def test_fstat_agrees_with_stat(sb: Sandbox) -> None:
    sb.fs.create_file("/x", contents="12345", st_mode=0o640)
    code = (
        "import os\nfd = os.open('/x', os.O_RDWR); os.write(fd, b'1234567')\n"
        "a, b = os.stat('/x'), os.fstat(fd)\n"
        "print(a.st_size, b.st_size, oct(a.st_mode), oct(b.st_mode), a.st_ino == b.st_ino,"
        " a.st_mtime_ns == b.st_mtime_ns)"
    )
    assert python(sb, code).stdout == "7 7 0o100640 0o100640 True True\n"


def test_shell_pipeline_over_a_virtual_tree(sb: Sandbox) -> None:
    script = (
        "set -e; mkdir -p /srv/app/conf; echo a > /srv/app/conf/one; cp /srv/app/conf/one "
        "/srv/app/conf/two; mv /srv/app/conf/two /srv/app/three; rm /srv/app/conf/one; "
        "rmdir /srv/app/conf; cat /srv/app/three"
    )
    result = run(sb, "sh", "-c", script)
    assert (result.returncode, result.stdout) == (0, "a\n"), result.stderr
    assert sb.fs.listdir("/srv/app") == ["three"]


def test_writing_under_a_host_mount_is_a_violation(sb: Sandbox) -> None:
    result = run(sb, "sh", "-c", "echo x > /usr/share/libcfake-test")
    assert result.returncode != 0
    assert "Read-only file system" in result.stderr
    assert not os.path.exists("/usr/share/libcfake-test")
    (violation,) = sb.violations
    assert violation.call == "open" and "read-only host mount /usr" in violation.reason


def test_reading_host_mounts_needs_no_round_trip(sb: Sandbox) -> None:
    result = run(sb, "cat", "/usr/share/common-licenses/GPL-3")
    assert result.returncode == 0 and "GNU GENERAL PUBLIC LICENSE" in result.stdout
    assert not [e for e in sb.journal if e.path == "/usr/share/common-licenses/GPL-3"]


@pytest.mark.parametrize(
    ("call", "program", "message"),
    [
        ("open", ["cat", "/etc/app.conf"], "Permission denied"),
        ("stat", ["stat", "-L", "/etc/app.conf"], "Permission denied"),
    ],
)
def test_a_fault_rule_fails_matching_calls(
    sb: Sandbox, call: str, program: list[str], message: str
) -> None:
    sb.fs.create_file("/etc/app.conf", contents="x")
    sb.fail(call, "/etc/*.conf", errno.EACCES)
    result = run(sb, *program)
    assert result.returncode == 1 and message in result.stderr
    assert [e.fault for e in sb.journal if e.path == "/etc/app.conf"] == [True]


def test_a_fault_rule_counts_occurrences(sb: Sandbox) -> None:
    sb.fs.create_file("/f", contents="x")
    sb.fail("open", "/f", errno.EIO, nth=2, times=2)
    code = (
        "for i in range(5):\n  try:\n    open('/f').close(); print('ok')\n"
        "  except OSError as e: print(e.errno)"
    )
    assert python(sb, code).stdout.split() == ["ok", "5", "5", "ok", "ok"]


def test_the_journal_names_each_call(sb: Sandbox) -> None:
    sb.fs.create_file("/a", contents="x")
    run(sb, "cat", "/a")
    (entry,) = [e for e in sb.journal if e.path == "/a" and e.call == "open"]
    assert (entry.call, entry.symbol, entry.answer) == ("open", "open", "fd")
    assert entry.exe.endswith("/cat")


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (lambda sb: sb.fs.create_file("relative.txt"), ValueError, "must be absolute"),
        (lambda sb: sb.fs.create_file("/x", contents=5), TypeError, "must be str or bytes"),
        (lambda sb: sb.fs.create_file("/usr/x"), ValueError, "read-only host mount"),
        (lambda sb: sb.fail("opne", "/x", errno.EIO), ValueError, "unknown call 'opne'"),
        (lambda sb: sb.fail("open", "/x", errno.EIO, nth=0), ValueError, "positive integer"),
        (lambda sb: sb.fail("getaddrinfo", "x", "sometimes"), ValueError, "unknown error name"),
    ],
)
def test_wrong_use_is_a_clear_error(sb: Sandbox, action, error, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=message):
        action(sb)


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["cat", "/secret"], "cat: /secret: Permission denied"),
        (["sh", "-c", "echo x > /etc/new"], "Permission denied"),
        (["mkdir", "/etc/sub"], "Permission denied"),
        (["rm", "-f", "/etc/owned-by-root"], "Permission denied"),
        (["chmod", "777", "/etc/owned-by-root"], "Operation not permitted"),
        (  # O_TRUNC asks for write permission even with O_RDONLY (and truncates when granted)
            [sys.executable, "-c", "import os; os.open('/etc/owned-by-root', os.O_TRUNC)"],
            "Permission denied",
        ),
    ],
)
def test_permissions_are_enforced_for_the_user_a_program_runs_as(
    sb: Sandbox, command: list[str], message: str
) -> None:
    sb.fs.create_file("/secret", contents="s3cret", st_mode=0o600)
    sb.fs.create_dir("/etc", perm_bits=0o755)
    sb.fs.create_file("/etc/owned-by-root", contents="r", st_mode=0o644)
    result = run(sb, *AS_NOBODY, *command)
    assert result.returncode != 0
    assert message in result.stderr
    assert sb.fs.read_text("/etc/owned-by-root") == "r" and sb.fs.read_text("/secret") == "s3cret"


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_a_program_that_drops_root_is_checked_as_the_user_it_became(sb: Sandbox) -> None:
    sb.fs.create_file("/d/roots", contents="r", st_mode=0o600)
    sb.fs.create_file("/d/nobodys", contents="n", st_mode=0o600, uid=65534, gid=65534)
    # Python's start already made calls, so the shim said hello as root; then, as a daemon
    # does, it becomes nobody: first the real ids only (access asks with those, eaccess with
    # the effective ones), then all of them. (A setuid-root program cannot be run: the loader
    # ignores LD_PRELOAD when the real and effective ids differ at exec.)
    code = """if True:
        import os
        def can_read(path):
            return os.access(path, os.R_OK), os.access(path, os.R_OK, effective_ids=True)
        os.setgroups([])
        os.setresgid(65534, 0, 0)
        os.setresuid(65534, 0, 0)
        print(can_read("/d/roots"), can_read("/d/nobodys"))
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)
        print(can_read("/d/roots"), can_read("/d/nobodys"))
        try:
            open("/d/roots").close()
        except PermissionError:
            print("denied")
    """
    result = python(sb, code)
    assert result.stdout.splitlines() == [
        "(False, True) (True, True)",
        "(False, False) (True, True)",
        "denied",
    ], result.stderr
    assert not sb.violations


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_a_user_may_change_what_it_owns(sb: Sandbox) -> None:
    sb.fs.create_dir("/home/nobody", perm_bits=0o755, uid=65534, gid=65534)
    script = (
        "echo mine > /home/nobody/f && chmod 600 /home/nobody/f && stat -c '%U %a' /home/nobody/f"
    )
    result = run(sb, *AS_NOBODY, "sh", "-c", script)
    assert result.stdout == "nobody 600\n", result.stderr


def test_chmod_chown_and_utimensat_change_the_ctime(sb: Sandbox) -> None:
    for name in ("mode", "owner", "times"):
        sb.fs.create_file(f"/d/{name}")
        sb.fs.fake.resolve(f"/d/{name}").st_ctime = 1000  # long ago
    code = (
        "import os, time; os.chmod('/d/mode', 0o600); os.chown('/d/owner', 5, 5);"
        " os.utime('/d/times', (7, 7)); start = time.time() - 60;"
        " print([os.stat(f'/d/{n}').st_ctime > start for n in ('mode', 'owner', 'times')],"
        " os.stat('/d/times').st_mtime)"
    )
    result = python(sb, code)
    assert result.stdout == "[True, True, True] 7.0\n", result.stderr


def test_a_read_only_host_copy_cannot_be_changed(sb: Sandbox, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "conf").write_text("from the host\n")
    sb.fs.add_real_directory(tmp_path, target_path="/etc/app")
    assert run(sb, "cat", "/etc/app/conf").stdout == "from the host\n"
    result = run(sb, "sh", "-c", "echo changed > /etc/app/conf")
    assert "Read-only file system" in result.stderr
    assert (tmp_path / "conf").read_text() == "from the host\n"
    assert "read-only host copy /etc/app" in sb.violations[0].reason


def test_a_symlink_into_a_host_mount_is_the_models_but_what_it_leads_to_is_not(
    sb: Sandbox,
) -> None:
    sb.fs.create_dir("/opt/bin")
    sb.fs.create_symlink("/opt/bin/env", "/usr/bin/env")
    sb.fs.create_symlink("/opt/bin/new", "/usr/bin/libcfake-not-there")
    script = "rm /opt/bin/env && mv /opt/bin/new /opt/bin/moved && ls /opt/bin && ls /usr/bin/env"
    result = run(sb, "sh", "-c", script)
    assert (result.stdout, result.stderr) == ("moved\n/usr/bin/env\n", "")
    assert not sb.violations  # the links were the model's to remove and rename
    result = run(sb, "sh", "-c", "echo x > /opt/bin/moved")  # would create a file in /usr
    assert "Read-only file system" in result.stderr
    (violation,) = sb.violations
    assert violation.reason == (
        "/opt/bin/moved leads to /usr/bin/libcfake-not-there, which is in the read-only host "
        "mount /usr"
    )


def test_the_journal_answers_what_programs_read_wrote_and_resolved(sb: Sandbox) -> None:
    sb.fs.create_file("/etc/app.conf", contents="x")
    sb.fs.create_dir("/var/log")
    sb.dns.add("db.internal", "10.0.0.5")
    run(sb, "sh", "-c", "cat /etc/app.conf > /var/log/app.log; getent ahosts db.internal")
    assert "/etc/app.conf" in sb.journal.files_read()
    assert sb.journal.files_written() == ["/var/log/app.log"]
    assert sb.journal.names_resolved() == ["db.internal"]
    assert sb.journal.assert_called("open", "/var/log/*.log").symbol.startswith("open")
    sb.journal.assert_not_called("connect")
    with pytest.raises(AssertionError, match="no mkdir call on /srv"):
        sb.journal.assert_called("mkdir", "/srv")
    with pytest.raises(AssertionError, match="1 unexpected open call"):
        sb.journal.assert_not_called("open", "/var/log/*")


def test_o_tmpfile_gives_an_unnamed_file(sb: Sandbox) -> None:
    code = (
        "import os, tempfile\nfd = os.open('/tmp', os.O_TMPFILE | os.O_RDWR, 0o600)\n"
        "os.write(fd, b'scratch'); os.lseek(fd, 0, 0); print(os.read(fd, 10).decode())\n"
        "with tempfile.TemporaryFile(dir='/tmp') as f:\n  f.write(b'x'); f.seek(0); print(f.read())"
    )
    before = sb.fs.listdir("/tmp")
    result = python(sb, code)
    assert result.stdout == "scratch\nb'x'\n", result.stderr
    assert sb.fs.listdir("/tmp") == before and not sb.violations


def test_a_delayed_fault_holds_only_the_call_it_delays(sb: Sandbox) -> None:
    """While one program waits out a 2 s delay, another is served at once."""
    sb.fs.create_file("/slow", contents="s")
    sb.fs.create_file("/fast", contents="f")
    sb.fail("open", "/slow", errno.ETIMEDOUT, delay=2)
    slow = sb.popen(["cat", "/slow"], stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)  # let the slow open arrive first
    started = time.monotonic()
    assert run(sb, "cat", "/fast").stdout == "f"
    fast_seconds = time.monotonic() - started
    _, stderr = slow.communicate(timeout=30)
    assert "Connection timed out" in stderr
    assert fast_seconds < 1.5  # not queued behind the 2 s delay


def test_tar_extracting_a_symlink_as_root_is_no_violation(sb: Sandbox, tmp_path: Path) -> None:
    # tar's fchmodat(AT_SYMLINK_NOFOLLOW) on the link it made gets EOPNOTSUPP, as from Linux
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "target.txt").write_text("t\n")
    (tmp_path / "proj" / "link").symlink_to("target.txt")
    archive = tmp_path / "proj.tar.gz"
    subprocess.run(["tar", "czf", archive, "-C", tmp_path, "proj"], check=True)
    sb.fs.create_file("/proj.tar.gz", contents=archive.read_bytes())
    sb.fs.create_dir("/out")
    result = sb.run(["tar", "xzf", "/proj.tar.gz", "-C", "/out"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert sb.fs.os.readlink("/out/proj/link") == "target.txt"
    assert not sb.violations, sb.violations


def test_a_violation_shows_the_absolute_model_path_and_modes_in_octal(sb: Sandbox) -> None:
    sb.run(["sh", "-c", "cd /usr && mkdir -m 750 not-here"], capture_output=True)
    [violation] = sb.violations
    assert violation.path == "/usr/not-here"
    shown = str(violation)
    assert "mkdir(/usr/not-here, 0o750)" in shown, shown


def test_a_strict_sandbox_raises_the_report_when_the_block_ends() -> None:
    with pytest.raises(ViolationError) as raised, Sandbox(strict=True) as sb:
        sb.run(["sh", "-c", "echo x > /usr/not-allowed"], capture_output=True)
    assert "/usr/not-allowed" in str(raised.value)
    assert [v.call for v in raised.value.violations] == ["open"]
    assert isinstance(raised.value, AssertionError)  # unittest and plain asserts report it


def test_check_raises_as_soon_as_asked_and_not_without_violations(sb: Sandbox) -> None:
    sb.check()
    sb.run(["getent", "hosts", "unplanned.test"], capture_output=True)
    with pytest.raises(ViolationError, match=r"unplanned\.test"):
        sb.check()


def test_the_journal_tells_files_read_from_files_missing_and_refused(sb: Sandbox) -> None:
    sb.fs.create_file("/etc/app.conf", contents="x")
    sb.fail("open", "/etc/secret.conf", errno.EACCES)
    sb.fs.create_file("/etc/secret.conf", contents="s")
    sb.run(["sh", "-c", "cat /etc/app.conf /etc/app.d/local.conf /etc/secret.conf"],
           capture_output=True)  # fmt: skip
    # (under the hybrid backend the loader's opens of the host's libraries, made before the
    # shim is loaded, trap and are journaled too, and the sanitizer build's reads of /proc)
    read = [path for path in sb.journal.files_read()
            if sb.fs.mount_of(path) is None and not path.startswith("/proc/")]  # fmt: skip
    assert read == ["/etc/app.conf"]
    assert "/etc/app.d/local.conf" in sb.journal.files_missing()
    assert sb.journal.files_refused() == ["/etc/secret.conf"]


def test_a_symlinks_subject_is_its_link_path_for_rules_and_the_journal(sb: Sandbox) -> None:
    sb.fs.create_dir("/d")
    rule = sb.fail("symlink", "/d/*", errno.EACCES)
    result = sb.run(["sh", "-c", "cd /d && ln -s /etc/target mylink"], capture_output=True,
                    text=True)  # fmt: skip
    assert result.returncode != 0 and "Permission denied" in result.stderr
    assert rule.fired == 1
    assert not sb.fs.lexists("/d/mylink")
    [entry] = sb.journal.matching("symlink")
    assert entry.path == "/d/mylink"
    sb.run(["ln", "-s", "/usr/bin/env", "/env-link"], check=True)  # a target in a mount is text
    assert sb.fs.os.readlink("/env-link") == "/usr/bin/env"


def test_the_test_reads_back_what_programs_made_with_sb_fs(sb: Sandbox) -> None:
    sb.fs.create_dir("/out")
    script = "cd /out && printf 12345 > data && touch -d @1000000000 data && ln -s data link"
    sb.run(["sh", "-c", script], check=True)
    info = sb.fs.stat("/out/data")
    assert (info.type, info.size, int(info.mtime)) == ("regular", 5, 1000000000)
    assert sb.fs.stat("/out/link").size == 5
    assert sb.fs.lstat("/out/link").type == "symlink"
    assert sb.fs.readlink("/out/link") == "data"
    assert sb.fs.listdir("/out") == ["data", "link"]
    assert sb.fs.is_file("/out/data") and sb.fs.is_symlink("/out/link") and sb.fs.is_dir("/out")
    assert not sb.fs.is_file("/out/missing")
    with pytest.raises(FileNotFoundError):
        sb.fs.stat("/out/missing")
    with pytest.raises(OSError, match="Invalid argument"):
        sb.fs.readlink("/out/data")


@pytest.mark.parametrize(
    "script",
    [
        "unlink /usr/lib/no-such-dir/x",
        "mkdir /usr/no-such-dir/new",
        "touch /usr/no-such-dir/file",
        "python3 -c \"import os; os.unlink('/usr/lib/no-such-dir/x')\"",
    ],
)
def test_a_missing_directory_under_a_mount_is_enoent_not_erofs(sb: Sandbox, script: str) -> None:
    # Linux resolves the path before it asks the read-only mount: ENOENT, and no violation
    result = sb.run(["sh", "-c", script], capture_output=True, text=True)
    assert result.returncode != 0
    assert "No such file or directory" in result.stderr, result.stderr
    assert not sb.violations, sb.violations


def test_a_write_to_an_existing_directory_of_a_mount_is_erofs_and_a_violation(sb: Sandbox) -> None:
    result = sb.run(["touch", "/usr/new-file"], capture_output=True, text=True)
    assert "Read-only file system" in result.stderr
    assert [v.call for v in sb.violations][:1] == ["open"]  # (then touch tries utimensat)


@pytest.mark.parametrize("backend", ["preload", "hybrid"])
def test_a_program_names_its_own_threads(backend: str) -> None:
    """/proc/self/comm and its threads' are a program's own to write: Python's open of it goes
    through the shim, glibc's pthread_setname_np of another thread opens it with libc's internal
    open (trapped under the hybrid backend: bind's dig names its workers so)."""
    code = (
        "import ctypes, threading\n"
        "done = threading.Event()\n"
        "t = threading.Thread(target=done.wait)\n"
        "t.start()\n"
        "rc = ctypes.CDLL(None).pthread_setname_np(ctypes.c_ulong(t.ident), b'worker')\n"
        "print(rc, open(f'/proc/self/task/{t.native_id}/comm').read().strip())\n"
        "done.set()\n"
        "t.join()\n"
        "with open('/proc/self/comm', 'w') as f:\n"
        "    f.write('renamed')\n"
        "print(open('/proc/self/comm').read().strip())\n"
    )
    with Sandbox(reply_timeout=20, backend=backend) as sb:
        done = python(sb, code)
        assert done.stdout.splitlines() == ["0 worker", "renamed"], done
        assert not sb.violations, [str(v) for v in sb.violations]
