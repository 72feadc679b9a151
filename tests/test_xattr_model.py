"""Extended attributes on the model's files (issue #21 §9): the reads are forwarded
(getxattr, listxattr and their forms; reply kind BYTES), the changes carry their value, and the
model keeps them in pyfakefs's store with tmpfs's rules. ``tests/test_differential.py`` compares
the programs' view with a real directory; here: the test's API, what the journal shows, the
limits of what one call carries, host mounts, and real tools (``setfattr``, ``getfattr``,
``cp -a``) as root and as nobody."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import sys

import pytest

from libcfake import Sandbox

from .conftest import as_nobody

NOBODY = 65534


def _run(sb: Sandbox, args: list[str]) -> str:
    result = sb.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _python(sb: Sandbox, code: str, user: list[str] | None = None) -> str:
    return _run(sb, [*(user or []), sys.executable, "-c", f"import os, errno\n{code}"])


def _need_attr() -> None:
    if shutil.which("setfattr") is None or shutil.which("getfattr") is None:
        pytest.skip("setfattr/getfattr (Debian's attr) are not installed")


def test_the_tests_attributes_are_the_programs() -> None:
    with Sandbox() as sb:
        sb.fs.create_file("/srv/f", contents="x")
        sb.fs.setxattr("/srv/f", "user.origin", b"upload\0raw")
        sb.fs.setxattr("/srv/f", b"user.b", b"")
        out = _python(sb, "print(os.getxattr('/srv/f', 'user.origin'), os.listxattr('/srv/f'))")
        assert out == "b'upload\\x00raw' ['user.origin', 'user.b']\n"
        _python(sb, "os.setxattr('/srv/f', 'user.set', b'by the program')")
        assert sb.fs.getxattr("/srv/f", "user.set") == b"by the program"
        assert sb.fs.listxattr("/srv/f") == ["user.set", "user.origin", "user.b"]  # tmpfs's
        assert (
            sb.fs.fake is not None and sb.fs.os.getxattr("/srv/f", "user.set") == b"by the program"
        )
        sb.fs.removexattr("/srv/f", "user.set")
        with pytest.raises(OSError) as missing:
            sb.fs.getxattr("/srv/f", "user.set")
        assert missing.value.errno == errno.ENODATA
        with pytest.raises(OSError) as missing:
            sb.fs.removexattr("/srv/f", "user.set")
        assert missing.value.errno == errno.ENODATA
        with pytest.raises(FileExistsError):
            sb.fs.setxattr("/srv/f", "user.b", b"", os.XATTR_CREATE)
        for name in ("system.posix_acl_access", "security.selinux"):
            with pytest.raises(ValueError, match=r"user\. and trusted\."):
                sb.fs.setxattr("/srv/f", name, b"")
        with pytest.raises(ValueError, match="3839"):
            sb.fs.setxattr("/srv/f", "user.big", bytes(3840))
        with pytest.raises(ValueError, match="255"):
            sb.fs.setxattr("/srv/f", "user." + "n" * 251, b"")
        assert not sb.violations


def test_the_journal_shows_the_calls() -> None:
    with Sandbox() as sb:
        sb.fs.create_file("/srv/f")
        code = (
            "os.setxattr('/srv/f', 'user.k', b'v\\0w', os.XATTR_CREATE)\n"
            "print(os.getxattr('/srv/f', 'user.k'), os.listxattr('/srv/f'))\n"
            "os.removexattr('/srv/f', 'user.k')"
        )
        assert _python(sb, code) == "b'v\\x00w' ['user.k']\n"
        entries = [(e.call, e.arguments, e.answer) for e in sb.journal if "xattr" in e.call]
        path = entries[0][1][0]
        assert entries[0] == ("setxattr", (path, "user.k", os.XATTR_CREATE), "0")
        assert str(path) == "/srv/f"
        # CPython asks with a buffer of 128 bytes first
        assert ("getxattr", (path, "user.k", 128), "3 bytes") in entries
        assert ("listxattr", (path, 256), "7 bytes") in entries
        assert entries[-1] == ("removexattr", (path, "user.k"), "0")
        assert not sb.violations


def test_a_value_larger_than_a_call_carries_is_a_violation() -> None:
    with Sandbox() as sb:
        sb.fs.create_file("/srv/f")
        code = (
            "for size in (3839, 3840, 65536, 65537):\n"
            "  try: os.setxattr('/srv/f', 'user.v', bytes(size)); print(size, 'ok')\n"
            "  except OSError as e: print(size, errno.errorcode[e.errno])"
        )
        out = _python(sb, code)
        # 65537 is Linux's E2BIG, answered by the shim before any path is looked at
        assert out.split("\n")[:4] == ["3839 ok", "3840 ENOSPC", "65536 ENOSPC", "65537 E2BIG"]
        assert len(sb.violations) == 2
        assert "at most 3839 bytes are modelled" in sb.violations[0].reason
        sb.violations.clear()


def test_a_posix_acl_beyond_the_mode_is_a_violation_one_of_the_mode_sets_it() -> None:
    with Sandbox() as sb:
        sb.fs.create_file("/srv/f", st_mode=stat.S_IFREG | 0o600)
        # version 2; USER_OBJ rwx, GROUP_OBJ r, OTHER none: the mode 740
        minimal = b"\2\0\0\0" + b"\1\0\7\0\xff\xff\xff\xff" + b"\4\0\4\0\xff\xff\xff\xff"
        minimal += b"\x20\0\0\0\xff\xff\xff\xff"
        named = minimal + b"\2\0\6\0\xe8\x03\0\0"  # USER 1000 rw: invalid without a mask
        masked = named + b"\x10\0\6\0\xff\xff\xff\xff"  # valid: not the mode's to say
        code = (
            f"os.setxattr('/srv/f', 'system.posix_acl_access', {minimal!r})\n"
            "print(oct(os.stat('/srv/f').st_mode & 0o777), os.listxattr('/srv/f'))\n"
            "os.removexattr('/srv/f', 'system.posix_acl_access')\n"
            "for junk in (b'junk', b'\\2\\0\\0\\0\\1'):\n"
            " try: os.setxattr('/srv/f', 'system.posix_acl_access', junk)\n"
            " except OSError as e: print(errno.errorcode[e.errno])\n"
            f"for acl in ({named!r}, {masked!r}):\n"
            " try: os.setxattr('/srv/f', 'system.posix_acl_access', acl)\n"
            " except OSError as e: print(errno.errorcode[e.errno])"
        )
        # as Linux: another version is EOPNOTSUPP, a broken entry or a missing mask EINVAL
        out = _python(sb, code).split("\n")[:5]
        assert out == ["0o740 []", "ENOTSUP", "EINVAL", "EINVAL", "ENOTSUP"]
        assert len(sb.violations) == 1
        assert "POSIX ACLs beyond the mode bits" in sb.violations[0].reason
        sb.violations.clear()


def test_host_mounts_keep_their_real_attributes_read_only() -> None:
    with Sandbox() as sb:
        code = (
            "print(os.listxattr('/usr/bin/env'))\n"
            "try: os.getxattr('/usr/bin/env', 'user.none')\n"
            "except OSError as e: print(errno.errorcode[e.errno])\n"
            "fd = os.open('/usr/bin/env', os.O_RDONLY); print(os.listxattr(fd))\n"
            "try: os.setxattr(fd, 'user.a', b'1')\n"
            "except OSError as e: print(errno.errorcode[e.errno])"
        )
        native = os.listxattr("/usr/bin/env")
        assert _python(sb, code).split("\n")[:4] == [str(native), "ENODATA", str(native), "EROFS"]
        assert [v.call for v in sb.violations] == ["fsetxattr"]
        sb.violations.clear()


def test_setfattr_getfattr_and_cp_a_between_model_files() -> None:
    _need_attr()
    with Sandbox() as sb:
        sb.fs.create_file("/srv/a.txt", contents="alpha\n")
        sb.fs.setxattr("/srv/a.txt", "user.from_test", b"t")
        _run(sb, ["setfattr", "-n", "user.color", "-v", "blue", "/srv/a.txt"])
        _run(sb, ["cp", "-a", "/srv/a.txt", "/srv/copy.txt"])
        out = _run(sb, ["sh", "-c", "cd /srv && getfattr -d copy.txt"])
        assert out == '# file: copy.txt\nuser.color="blue"\nuser.from_test="t"\n\n'
        assert sb.fs.getxattr("/srv/copy.txt", "user.color") == b"blue"
        assert not sb.violations


def test_as_nobody_setfattr_and_cp_a() -> None:
    _need_attr()
    user = as_nobody()
    with Sandbox() as sb:
        sb.fs.create_dir("/home/n", uid=NOBODY, gid=NOBODY)
        sb.fs.create_file("/home/n/mine", contents="m", uid=NOBODY, gid=NOBODY)
        sb.fs.create_file("/home/n/roots", contents="r", st_mode=stat.S_IFREG | 0o644)
        sb.fs.setxattr("/home/n/roots", "user.root", b"r")
        sb.fs.setxattr("/home/n/roots", "trusted.hidden", b"h")
        script = (
            "cd /home/n && setfattr -n user.k -v v mine && cp -a mine copy && getfattr -d copy"
            " && getfattr -d -m - roots; setfattr -n user.k -v v roots; echo $?;"
            " setfattr -n trusted.t -v 1 mine; echo $?"
        )
        result = sb.run([*user, "sh", "-c", script], capture_output=True, text=True, timeout=60)
        assert result.stdout == (
            '# file: copy\nuser.k="v"\n\n# file: roots\nuser.root="r"\n\n1\n1\n'
        ), result.stderr
        assert "Permission denied" in result.stderr and "Operation not permitted" in result.stderr
        assert sb.fs.getxattr("/home/n/copy", "user.k") == b"v"
        assert sb.fs.stat("/home/n/copy").uid == NOBODY
        assert "trusted.t" not in sb.fs.listxattr("/home/n/mine")
        assert not sb.violations


def test_a_change_of_attributes_is_a_change_of_the_inode() -> None:
    with Sandbox() as sb:
        sb.fs.create_file("/srv/f")
        sb.fs.fake.resolve("/srv/f").st_ctime = 1.0
        code = (
            "before = os.stat('/srv/f').st_ctime; os.stat('/srv/f')\n"
            "os.setxattr('/srv/f', 'user.k', b'v')\n"
            "print(before, os.stat('/srv/f').st_ctime > before)"
        )
        assert _python(sb, code) == "1.0 True\n"
        assert not sb.violations
