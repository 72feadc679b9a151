"""Shadow directories: real, empty directories that mirror virtual ones.

A program that lists a virtual directory (opendir, ``ls``, ``find``, ``os.scandir``) needs a real
directory descriptor: getdents and fts run in the kernel and in libc, beyond the shim's reach. The
master keeps a private tree (on /dev/shm when it can) whose directories hold placeholders with the
virtual entries' names and types, and hands programs descriptors of those. Every path call a
program then makes relative to such a descriptor is forwarded with it, and mapped back here.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterable

from . import _realos

#: Where a placeholder symlink points: nowhere real, should an unwrapped call follow it.
_DANGLING = "libcfake-placeholder-of-a-virtual-symlink"
#: The entry types that have placeholders of their own type; the others (regular files, sockets,
#: devices) are listed as plain files.
_PLACEHOLDER_KINDS = {kind: kind for kind in (stat.S_IFDIR, stat.S_IFLNK, stat.S_IFIFO)}


def _tree_root() -> str:
    try:
        return _realos.mkdtemp("libcfake-shadow-", "/dev/shm")
    except OSError:
        return _realos.mkdtemp("libcfake-shadow-")


class ShadowTree:
    """A private real directory tree whose layout follows the virtual filesystem's directories.

    Only the master changes the tree, so it remembers what it made: the directories it created,
    and the entries it last synced into each. A directory listed again unchanged then costs no
    look at the disk.
    """

    def __init__(self) -> None:
        self.root = _tree_root()
        self.device = os.stat(self.root).st_dev
        self._virtual_by_inode: dict[int, str] = {os.stat(self.root).st_ino: "/"}
        self._made: set[str] = {"/"}  # virtual directories whose shadow exists
        self._synced: dict[str, dict[str, int]] = {}  # virtual directory -> its entries, as synced

    def close(self) -> None:
        _realos.rmtree(self.root)

    def real_path(self, virtual: str) -> str:
        return self.root + virtual.rstrip("/") if virtual != "/" else self.root

    def virtual_path(self, real: str) -> str | None:
        """The virtual path a real path inside the tree stands for, or None if it is outside."""
        if real == self.root:
            return "/"
        if real.startswith(self.root + "/"):
            return real[len(self.root) :]
        return None

    def virtual_of_inode(self, inode: int) -> str | None:
        return self._virtual_by_inode.get(inode)

    def ensure(self, virtual: str) -> str:
        """Create the shadow directory of ``virtual`` (and its parents); its real path."""
        real = self.real_path(virtual)
        if virtual in self._made:
            return real
        self._make_directories(virtual)
        self._virtual_by_inode[os.stat(real).st_ino] = virtual
        self._made.add(virtual)
        return real

    def _make_directories(self, virtual: str) -> None:
        """mkdir -p of ``virtual``'s shadow, from its nearest ancestor made. A placeholder of
        another type in the way (a name listed as a file, since removed and made a directory)
        is replaced: only the master makes entries here. A directory's shadow whose entries
        this changed is synced again when next listed; one that lists the name as a directory
        already (a parent listed before its child: ls -R, find) is left as it is."""
        names = [name for name in virtual.strip("/").split("/") if name]
        made = len(names)
        while made and "/" + "/".join(names[:made]) not in self._made:
            made -= 1
        parent = "/" + "/".join(names[:made])
        path = self.real_path(parent)
        for name in names[made:]:
            path = f"{path}/{name}"
            listed = self._synced.get(parent)
            if listed is None or listed.get(name) != stat.S_IFDIR:  # (else it is there)
                try:
                    os.mkdir(path, 0o755)
                except FileExistsError:
                    if not stat.S_ISDIR(os.lstat(path).st_mode):
                        os.unlink(path)
                        os.mkdir(path, 0o755)
                self._synced.pop(parent, None)  # (it may list a name it did not)
            parent = posixpath.join(parent, name)

    def sync(self, virtual: str, entries: Iterable[tuple[str, int]]) -> str:
        """Make the shadow of ``virtual`` hold exactly ``entries`` (name, S_IF* type)."""
        real = self.ensure(virtual)
        # a placeholder is a directory, a symlink, a fifo, or else a plain file
        wanted = {name: _PLACEHOLDER_KINDS.get(kind, stat.S_IFREG) for name, kind in entries}
        if self._synced.get(virtual) == wanted:
            return real  # as the last sync left it
        missing = dict(wanted)
        for existing in os.scandir(real):
            kind = _kind(existing)
            if missing.get(existing.name) == kind:
                del missing[existing.name]
            elif kind == stat.S_IFDIR:
                _realos.rmtree(existing.path)
                self._forget(posixpath.join(virtual, existing.name))
            else:
                os.unlink(existing.path)
        for name, kind in missing.items():
            _placeholder(os.path.join(real, name), kind)
        self._synced[virtual] = wanted
        return real

    def open(
        self, virtual: str, entries: Iterable[tuple[str, int]] | None, *, path_only: bool = False
    ) -> int:
        """A descriptor of the shadow directory (synced with ``entries`` unless None); with
        ``path_only``, an O_PATH one."""
        real = self.ensure(virtual) if entries is None else self.sync(virtual, entries)
        access = os.O_PATH if path_only else os.O_RDONLY
        return os.open(real, access | os.O_DIRECTORY | os.O_CLOEXEC)

    def _forget(self, virtual: str) -> None:
        """Forget the shadows of ``virtual`` and of everything under it (they were removed)."""
        below = virtual.rstrip("/") + "/"
        for known in [v for v in self._made if v == virtual or v.startswith(below)]:
            self._made.discard(known)
            self._synced.pop(known, None)


def _kind(entry: os.DirEntry[str]) -> int:
    # the type the directory listing carries (no stat call), except for fifos
    if entry.is_symlink():
        return stat.S_IFLNK
    if entry.is_dir(follow_symlinks=False):
        return stat.S_IFDIR
    if entry.is_file(follow_symlinks=False):
        return stat.S_IFREG
    return stat.S_IFMT(entry.stat(follow_symlinks=False).st_mode)


def _placeholder(path: str, kind: int) -> None:
    if kind == stat.S_IFDIR:
        os.mkdir(path, 0o755)
    elif kind == stat.S_IFLNK:
        os.symlink(_DANGLING, path)
    else:  # a regular file or a fifo: one mknod call
        os.mknod(path, kind | 0o644)
