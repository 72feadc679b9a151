"""A file a program creates is made in one go (FileSystem._new_file), not through pyfakefs's
constructor and add_entry: it must be the same pyfakefs object those would have made."""

from __future__ import annotations

import os
import stat

from pyfakefs.fake_file import FakeDirectory, FakeFile

from libcfake import Sandbox
from libcfake.fs import Caller, FileSystem

#: What differs between two files made at different moments, or named differently.
_OWN = {"name", "stat_result", "parent_dir", "xattr"}
_OWN_STAT = {"st_ino", "_st_atime_ns", "_st_mtime_ns", "_st_ctime_ns"}


def _by_pyfakefs(fs: FileSystem, parent: FakeDirectory, name: str, mode: int) -> FakeFile:
    made = FakeFile(name, st_mode=mode, filesystem=fs._fake)
    parent.add_entry(made)
    made.st_uid, made.st_gid = 1000, 100
    return made


def test_a_file_made_in_one_go_is_what_pyfakefs_makes() -> None:
    fs = FileSystem(mounts=())
    fs.create_dir("/d")
    with fs.lock:
        parent = fs.resolve("/d")
        assert isinstance(parent, FakeDirectory)
        theirs = _by_pyfakefs(fs, parent, "theirs", stat.S_IFREG | 0o640)
        links, last_ino = parent.st_nlink, fs._fake.last_ino
        ours = fs.add_entry(parent, "ours", stat.S_IFREG | 0o640, Caller(1000, 100))
    assert type(ours) is FakeFile
    assert list(ours.__dict__) == list(theirs.__dict__)
    for key in ours.__dict__.keys() - _OWN:
        assert ours.__dict__[key] == theirs.__dict__[key], key
    assert ours.name == "ours" and ours.xattr == {} and ours.xattr is not theirs.xattr
    assert ours.parent_dir is not None and ours.parent_dir() is parent
    mine, pyfakefs = ours.stat_result.__dict__, theirs.stat_result.__dict__
    assert list(mine) == list(pyfakefs)
    for key in mine.keys() - _OWN_STAT:
        assert mine[key] == pyfakefs[key], key
    assert ours.st_ino == last_ino + 1 == fs._fake.last_ino
    assert parent.st_nlink == links + 1
    assert ours.st_ctime >= theirs.st_ctime
    # a mode without a file type is a regular file's, as pyfakefs makes it
    with fs.lock:
        plain = fs.add_entry(parent, "plain", 0o600, Caller(0, 0))
    assert plain.st_mode == stat.S_IFREG | 0o600


def test_a_file_made_in_one_go_is_a_proper_pyfakefs_file() -> None:
    fs = FileSystem(mounts=())
    fs.create_dir("/d")
    with fs.lock:
        parent = fs.resolve("/d")
        assert isinstance(parent, FakeDirectory)
        fs.add_entry(parent, "f", stat.S_IFREG | 0o644, Caller(1000, 100))
    assert fs.listdir("/d") == ["f"]
    assert fs.stat("/d/f").uid == 1000 and fs.stat("/d/f").mode == 0o644
    assert fs.fake.stat("/d/f").st_ino == fs.resolve("/d/f").st_ino
    fs.fake.create_file("/d/f2", contents="x")
    fs.os.rename("/d/f", "/d/g")
    fs.fake.get_object("/d/g").set_contents("written by the test")
    assert fs.read_text("/d/g") == "written by the test"
    fs.remove("/d/g")
    assert fs.listdir("/d") == ["f2"]


def test_files_programs_create_are_the_models(tmp_path: object) -> None:
    """Files made by a program's creates: contents, modes, owner and times as a test reads
    them through sb.fs, and through pyfakefs's own API."""
    with Sandbox() as sb:
        sb.fs.create_dir("/out")
        code = (
            "import os\n"
            "for i in range(20):\n"
            "    fd = os.open(f'/out/{i}', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)\n"
            "    os.write(fd, str(i).encode()); os.close(fd)\n"
            "os.mkdir('/out/sub')\n"
            "print(os.stat('/out/7').st_ino)\n"
        )
        done = sb.run(["python3", "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert not sb.violations
        assert sorted(sb.fs.listdir("/out")) == sorted([*map(str, range(20)), "sub"])
        for i in range(20):
            assert sb.fs.read_text(f"/out/{i}") == str(i)
            assert sb.fs.stat(f"/out/{i}").mode == 0o644  # 0666 under the umask 022
        assert int(done.stdout) == sb.fs.stat("/out/7").ino
        assert sb.fs.stat("/out").nlink == 3
        assert sb.fs.fake.resolve("/out/3").st_uid == os.geteuid()
        assert sb.fs.os.path.getsize("/out/11") == 2
