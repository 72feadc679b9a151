"""A host directory shown in the model (a mount, ``add_real_directory``) makes its entries on
first use directly (fs._HostDirectory), not through pyfakefs's path resolution: they must be
the objects pyfakefs's own lazy loading would have made."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from pyfakefs.fake_file import FakeDirectory
from pyfakefs.fake_filesystem import FakeFilesystem

from libcfake import Sandbox
from libcfake.fs import FileSystem

#: Differs between two loadings: the objects' identities and inode numbers, and the times
#: pyfakefs stamps on a symlink when it makes it.
_OWN = {"parent_dir", "filesystem", "_filesystem", "stat_result", "_entries", "_byte_contents"}
_OWN_STAT = {"st_ino", "_st_atime_ns", "_st_mtime_ns", "_st_ctime_ns"}


def _host_tree(root: Path) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "file.txt").write_text("contents\n")
    (root / "sub" / "inner.conf").write_text("x = 1\n")
    (root / "sub" / "deeper" / "leaf").write_bytes(b"\0" * 3000)
    readonly = root / "readonly"
    readonly.write_text("r")
    readonly.chmod(0o444)
    (root / "relative-link").symlink_to("file.txt")
    (root / "absolute-link").symlink_to("/etc/hostname")
    (root / "dangling").symlink_to("nowhere")
    os.mkfifo(root / "fifo")
    return root


def _walk(directory: FakeDirectory) -> dict[str, tuple[dict[str, object], dict[str, object]]]:
    """Every object under directory, by its path below it: its fields and its stat's."""
    seen = {}
    pending = [("", directory)]
    while pending:
        prefix, node = pending.pop()
        for name, child in sorted(node.entries.items()):
            fields = {k: v for k, v in vars(child).items() if k not in _OWN}
            stat_fields = {k: v for k, v in vars(child.stat_result).items() if k not in _OWN_STAT}
            if stat.S_ISLNK(child.st_mode):
                fields["link"] = child.contents
            elif not isinstance(child, FakeDirectory) and stat.S_ISREG(child.st_mode):
                fields["bytes"] = child.byte_contents
            seen[prefix + name] = ({"type": type(child).__name__, **fields}, stat_fields)
            if isinstance(child, FakeDirectory):
                pending.append((prefix + name + "/", child))
    return seen


def test_a_host_directory_loads_the_entries_pyfakefs_would(tmp_path: Path) -> None:
    source = str(_host_tree(tmp_path / "host"))
    theirs = FakeFilesystem(path_separator="/")
    theirs.add_real_directory(source, read_only=False, lazy_read=True, target_path="/x")
    ours = FileSystem(mounts=())
    ours.add_real_directory(source, "/x", read_only=False)
    with ours.lock:
        mine = ours.resolve("/x")
    assert type(mine).__name__ == "_HostDirectory"
    expected, got = _walk(theirs.get_object("/x")), _walk(mine)
    assert list(got) == list(expected)
    for path, (fields, stat_fields) in expected.items():
        fields["type"] = fields["type"].replace("FakeDirectoryFromRealDirectory", "_HostDirectory")
        assert got[path] == (fields, stat_fields), path
    assert {"fifo", "dangling", "sub/deeper/leaf"} <= set(got)


def test_a_link_under_a_mount_that_leads_into_the_model_is_the_models() -> None:
    # /usr/share/locale/locale.alias leads out of the mount, to /etc/locale.alias: the master
    # walks the host directory to answer the loader's look at it (under the hybrid backend),
    # which each new Sandbox paid with 100-350 ms before the walk made its entries directly
    if os.readlink("/usr/share/locale/locale.alias") != "/etc/locale.alias":
        pytest.skip("this machine's locale.alias is no link into /etc")
    code = "print(open('/usr/share/locale/locale.alias').read())"
    with Sandbox() as sb:
        sb.fs.create_file("/etc/locale.alias", contents="from the model\n")
        done = sb.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert done.stdout.strip() == "from the model", done.stderr
