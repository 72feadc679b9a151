"""Shadow directories: real, empty directories that mirror virtual ones.

A program that lists a virtual directory (opendir, ``ls``, ``find``, ``os.scandir``) needs a real
directory descriptor: getdents and fts run in the kernel and in libc, beyond the shim's reach. The
master keeps a private tree (on /dev/shm when it can) whose directories hold placeholders with the
virtual entries' names and types, and hands programs descriptors of those. Every path call a
program then makes relative to such a descriptor is forwarded with it, and mapped back here.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterable

#: Where a placeholder symlink points: nowhere real, should an unwrapped call follow it.
_DANGLING = "libcfake-placeholder-of-a-virtual-symlink"


def _tree_root() -> str:
    try:
        return tempfile.mkdtemp(prefix="libcfake-shadow-", dir="/dev/shm")
    except OSError:
        return tempfile.mkdtemp(prefix="libcfake-shadow-")


class ShadowTree:
    """A private real directory tree whose layout follows the virtual filesystem's directories."""

    def __init__(self) -> None:
        self.root = _tree_root()
        self.device = os.stat(self.root).st_dev
        self._virtual_by_inode: dict[int, str] = {os.stat(self.root).st_ino: "/"}

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

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
        os.makedirs(real, mode=0o755, exist_ok=True)
        self._virtual_by_inode[os.stat(real).st_ino] = virtual
        return real

    def sync(self, virtual: str, entries: Iterable[tuple[str, int]]) -> str:
        """Make the shadow of ``virtual`` hold exactly ``entries`` (name, S_IF* type)."""
        real = self.ensure(virtual)
        wanted = dict(entries)
        for existing in os.scandir(real):
            kind = _kind(existing)
            if wanted.get(existing.name) == kind:
                del wanted[existing.name]
            elif kind == stat.S_IFDIR:
                shutil.rmtree(existing.path)
            else:
                os.unlink(existing.path)
        for name, kind in wanted.items():
            _placeholder(os.path.join(real, name), kind)
        return real

    def open(self, virtual: str, entries: Iterable[tuple[str, int]] | None) -> int:
        """A descriptor of the shadow directory (synced with ``entries`` unless None)."""
        real = self.ensure(virtual) if entries is None else self.sync(virtual, entries)
        return os.open(real, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _kind(entry: os.DirEntry[str]) -> int:
    mode = entry.stat(follow_symlinks=False).st_mode
    return stat.S_IFMT(mode)


def _placeholder(path: str, kind: int) -> None:
    if kind == stat.S_IFDIR:
        os.mkdir(path, 0o755)
    elif kind == stat.S_IFLNK:
        os.symlink(_DANGLING, path)
    elif kind == stat.S_IFIFO:
        os.mkfifo(path, 0o644)
    else:  # regular files; sockets and devices are listed as plain files
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
