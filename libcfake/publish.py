"""Publishing the model to the metadata snapshot, which the shim answers stat-like calls from
without a round trip (see ``struct lcf_snapshot`` in ``shim/libcfake_wire.h``).

An entry is published only while it is exact: before each change a program makes, the entries
it may make wrong are withdrawn (:meth:`Publisher.before_change`), and a change the test makes
empties the snapshot (:meth:`Publisher.unpublish`). Entries under host routes and directories
not searchable by everyone are never published; files a program may write (their memfd's size
and times change unseen), and every entry while a fault rule covers a call the shim answers, are
only named, with their inode numbers (a listing's d_ino: shim/listing.c).

What is published: a directory a program lists (marked listed: the shim opens it for the next
programs) or stats two entries of, with its entries; the directories below one a program walks
into, listed ahead of it (:meth:`Publisher._list_ahead`); and a complete directory a change
touched, again, complete, once the change is made (:meth:`Publisher._republish`). A change
bounded by the paths it names (creates, removals, renames and links of files, new modes, owners
and times, by path or descriptor) withdraws those paths' entries and their directories'; only a
change the publisher cannot bound empties the snapshot (:meth:`Publisher.before_change`).
"""

from __future__ import annotations

import collections
import functools
import os
import posixpath
from collections.abc import Callable, Sequence

from pyfakefs.fake_file import FakeDirectory, FakeFile

from ._paths import follows_last_link
from ._shadow import ShadowTree
from .faults import FaultRule
from .fs import DEVICES, FileSystem, descriptor_record, lstat_records
from .protocol import NOTED_FUNCTIONS, NOTED_OPENS
from .request import Request
from .snapshot import COMPLETE, LISTED, Snapshot


class Publisher:
    """What the master has published to one snapshot (none: publishes nothing)."""

    def __init__(
        self,
        snapshot: Snapshot | None,
        fs: FileSystem,
        faults: Sequence[FaultRule],
        route: Callable[[str], str | None],
        shadow: ShadowTree | None = None,
    ) -> None:
        self.snapshot = snapshot
        self._fs = fs
        self._faults = faults  # the Sandbox's rules: the shim must not answer the calls they match
        self._route = route
        self._published: set[str] = set()  # directories published since the snapshot was emptied
        self._stats_in: dict[str, int] = {}  # stats the master answered per directory, since then
        self._linked: dict[int, set[str]] = {}  # id of a file -> names programs gave it
        self._listed: set[str] = set()  # directories published listed since it was emptied
        # the directories whose entries were put since it was emptied, and their parents: what
        # may be in the snapshot (see _may_hold)
        self._holding: set[str] = set()
        self._holding_parents: set[str] = set()
        # directories marked complete (every name in), and those a change took it from, with
        # the names it withdrew: published again, complete, once the change is made
        self._complete: set[str] = set()
        self._pending: dict[str, list[str]] = {}
        # the shadow directories, synced for a directory listed ahead (see _list_ahead)
        self._shadow = shadow
        # canonical path of a file -> the key of its memfd's record (see publish_descriptor)
        self._descriptors: dict[str, bytes] = {}

    def publish(self, directory: str, obj: FakeDirectory, *, listed: bool = False) -> None:
        """Publish a directory (canonical path) and its entries: a program that lists a
        directory, or stats its entries, will most likely stat the others next (ls -l, find,
        cp -r, git status ...). ``listed``: its shadow directory was synced with its entries
        just now, so the shim may also open it for the next programs (ls -lR, find).

        A directory all of whose entries are published is marked complete, so that the shim
        answers ENOENT for the names it lacks (git, shells and config readers probe many), and
        opens too: then only while no fault rule on open exists, as for ``listed``."""
        snapshot = self.snapshot
        if snapshot is None:
            return
        if self._pending:
            self._republish()
        opens_faulted = self._faulted(NOTED_OPENS)
        if directory not in self._published:
            self._published.add(directory)
            complete = self._put(snapshot, directory, obj) and not opens_faulted
            if complete and snapshot.mark(directory, COMPLETE):
                self._complete.add(directory)
        if listed and not opens_faulted:
            snapshot.mark(directory, LISTED)  # (unless it is not published)
            parent = posixpath.dirname(directory)
            if directory != "/" and parent in self._listed and self._shadow is not None:
                self._list_ahead(parent, obj.parent_dir() if obj.parent_dir else None)
            self._listed.add(directory)

    def publish_descriptor(self, obj: FakeFile, path: str) -> None:
        """After the master opened the model file at ``path`` (canonical) for a program: publish
        the record of its memfd, so that the shim answers fstat of the descriptor (cp fstats
        both ends of every copy). The record goes with the path's entry: a change to the file,
        by path or descriptor, withdraws each of its names (:meth:`before_change`), and so the
        record. Not while a fault rule covers a call the shim answers (fstat among them)."""
        snapshot = self.snapshot
        if snapshot is None or snapshot.crowded or path in self._descriptors:
            return
        if self._faulted(NOTED_FUNCTIONS):
            return
        entry = descriptor_record(obj, path)
        if entry is not None and snapshot.put_many(entry[1]):
            self._descriptors[path] = entry[0]

    def _faulted(self, calls: frozenset[str]) -> bool:
        """Whether a fault rule covers one of ``calls`` (the shim must then not answer them)."""
        return any(rule.calls & calls for rule in self._faults)

    def _withdraw_descriptor(self, path: str) -> None:
        """Withdraw the record of the memfd of the file at ``path``, if one is published."""
        key = self._descriptors.pop(path, None)
        if key is not None and self.snapshot is not None:
            self.snapshot.withdraw_key(key)

    def _list_ahead(self, top: str, obj: FakeDirectory | None) -> None:
        """A program that lists a directory and then one in it (ls -R, find, cp -r, du, tar c)
        will most likely list every directory below: publish them now, each listed (its shadow
        synced), breadth first from ``top`` and up to LIST_AHEAD entries, so that the shim
        opens them without asking. Only directories of the model the snapshot may hold: not
        under the host's routes, each searchable by everyone on the way (:meth:`_put`)."""
        assert self.snapshot is not None and self._shadow is not None
        if not isinstance(obj, FakeDirectory):
            return
        budget, visits = LIST_AHEAD, 4 * LIST_AHEAD  # (a tree already listed costs visits)
        queue = collections.deque([(top, obj)])
        while queue and budget > 0 and visits > 0:
            path, node = queue.popleft()
            prefix = path.rstrip("/") + "/"
            for name, child in node.entries.items():
                visits -= 1
                if not isinstance(child, FakeDirectory):
                    continue
                child_path = prefix + name
                if child.stat_result.st_mode & 0o111 != 0o111 or self._route(child_path):
                    continue  # (nothing below it is published)
                queue.append((child_path, child))
                if child_path in self._listed:
                    continue
                entries = child.entries
                budget -= len(entries) + 1
                self._shadow.sync(child_path, _kinds(entries))
                self.publish(child_path, child)
                self.snapshot.mark(child_path, LISTED)  # (after its shadow was synced)
                self._listed.add(child_path)

    def _put(self, snapshot: Snapshot, directory: str, obj: FakeDirectory) -> bool:
        """Put a directory and its entries in the snapshot, unless it is not to be published.
        Whether every entry is in, and answers: under a fault rule on a call the shim answers,
        entries are only named, with their inode numbers (a listing's, shim/listing.c), so that
        the master answers every such call and the rule sees it; nothing is then complete."""
        if self._route(directory):
            return False
        # the shim answers for any caller: every directory on the way must be searchable by all
        node: FakeDirectory | None = obj  # the directory is canonical: its parents are the way
        while node is not None:
            if node.stat_result.st_mode & 0o111 != 0o111:
                return False
            node = node.parent_dir() if node.parent_dir is not None else None
        prefix = directory.rstrip("/") + "/"
        # the directory, its parent (".." in a listing: shim/listing.c) and its entries; a file
        # a program may write is only named (its memfd's size and times change unseen)
        entries: list[tuple[str, FakeFile | None]] = [(directory, obj)]
        parent = obj.parent_dir() if obj.parent_dir is not None else None  # (a weak reference)
        if directory != "/" and parent is not None:
            entries.append((posixpath.dirname(directory), parent))
        entries += [(prefix + name, child) for name, child in obj.entries.items()]
        special = prefix in _special_parents(self._fs.mounts)  # mounts, devices, /proc: the host's
        if special:
            entries = [(path, entry) for path, entry in entries if self._route(path) is None]
        stats_faulted = self._faulted(NOTED_FUNCTIONS)
        unseen = _named_only if stats_faulted else self._fs.changes_unseen
        # one batch (when full, until the next change): complete if every name is in
        self._holding.add(directory)  # (before: a batch may end half put)
        self._holding_parents.add(posixpath.dirname(directory))
        in_full = snapshot.put_many(lstat_records(entries, unseen))
        return in_full and not special and not stats_faulted

    def before_change(self, request: Request) -> None:
        """Before a call that may change files is answered (with ``fs.lock`` held): withdraw what
        it may make wrong. For a change bounded by the paths it names (a create, a removal, new
        times, owner or mode, an open for writing, a rename or a hard link of a file that is not
        a directory; the same calls on a descriptor) that is each path's entry, its directory's
        (whose times, link count and list of names change), and each other name of a file with
        hard links, when the master knows them all (:meth:`_names`). Anything else empties the
        snapshot: a rename of a directory (which moves every path under it), a file with names
        the master does not know, a directory's mode taking search permission from anyone (which
        decides what may be published below it), a call on a descriptor of no model file."""
        self._fs.model_changed()
        if self._pending:  # (the last change is made: the master serves one call at a time)
            self._republish()
        snapshot = self.snapshot
        if snapshot is None or not snapshot.published:
            return  # nothing to take back (most calls of a program that only writes)
        path = request.path
        name = request.name
        if name in _CREATES and not self._holding:
            return  # only files' descriptor records are in: a create changes none of them
        if path is None or snapshot.crowded:
            self.unpublish()
            return
        if name in _DESCRIPTOR_CHANGES:
            paths = self._descriptor_change(request, path)
        elif name in _BOUNDED_CHANGES:
            if self._route(path) is not None:  # the host's (refused, or a device): not the model's
                return
            paths = self._path_change(request, path)
        else:
            paths = None
        if paths is None:
            self.unpublish()
            return
        if name in _METADATA_CHANGES:  # the entries alone: no name of a directory changes
            for changed in paths:
                self._withdraw_entry(changed)
        else:
            for changed in paths:
                self._withdraw(changed)

    def _path_change(self, request: Request, path: str) -> list[str] | None:
        """The canonical paths a change by path may make wrong (see :meth:`before_change`);
        None: unbounded."""
        name = request.name
        follow = name != "symlink" and follows_last_link(request.call)
        try:
            obj, canonical = self._fs.locate(path, follow)  # (None: a name to create)
        except OSError:  # a call that will fail: nothing changes, nothing to withdraw
            return []
        canonical = canonical.rstrip("/") or "/"
        if name in ("rename", "link"):
            if obj is None:  # ENOENT: nothing changes
                return []
            if isinstance(obj, FakeDirectory):  # a rename moves all below; link: EPERM
                return None if name == "rename" else []
            new = request.second_path()
            if self._route(new) is not None:  # refused (EXDEV, EROFS): nothing changes
                return []
            try:
                replaced, target = self._fs.locate(new, follow=False)
            except OSError:
                return []
            target = target.rstrip("/") or "/"
            names = self._names(obj, canonical)
            if names is None:
                return None
            paths = [*names, target]
            if replaced is not None and replaced is not obj:  # loses the name (new path)
                if isinstance(replaced, FakeDirectory):
                    return paths  # EISDIR, or ENOTDIR: nothing changes
                others = self._names(replaced, target)
                if others is None:
                    return None
                paths += others
            if name == "link" or obj.st_nlink > 1:  # a file of several names (from now on)
                self._remember(obj, [*names, target])
            return paths
        if obj is None:
            return [canonical]
        if isinstance(obj, FakeDirectory):
            if name == "chmod" and self._takes_search(obj, request):
                return None
            return [canonical]
        return self._names(obj, canonical)

    def _descriptor_change(self, request: Request, path: str) -> list[str] | None:
        """The canonical paths a change by descriptor (fchmod, fchown, futimens, fsetxattr...)
        may make wrong: the file's names (a model file's memfd), or a shadow directory's path;
        None: unbounded (a descriptor of anything else)."""
        if request.file is None:
            return None
        info = os.fstat(request.file)
        obj = self._fs.file_of_descriptor(info)
        if obj is not None:  # a model file's memfd: the names that still lead to it
            parent = obj.parent_dir() if obj.parent_dir is not None else None
            if obj.st_nlink <= 1 and parent is not None and parent.entries.get(obj.name) is obj:
                return [path]  # (its one name: the subject is its path, FileSystem.path_of)
            name = self._fs.path_of(obj)
            try:
                found, _ = self._fs.locate(name, follow=False)
            except OSError:
                return None
            return self._names(obj, name) if found is obj else None
        shadow = self._shadow
        if shadow is None or info.st_dev != shadow.device or self._route(path) is not None:
            return None  # a host file's (refused), a FIFO's, the program's own memfd
        try:
            directory, canonical = self._fs.lookup(path)  # (as the answer finds it)
        except OSError:
            return None
        if not isinstance(directory, FakeDirectory):
            return None
        if request.name == "fchmod" and self._takes_search(directory, request):
            return None
        return [canonical.rstrip("/") or "/"]

    @staticmethod
    def _takes_search(directory: FakeDirectory, request: Request) -> bool:
        """Whether a chmod of a directory searchable by everyone takes that from anyone: what is
        published below it would then be published no more (see :meth:`_put`)."""
        searchable = directory.stat_result.st_mode & 0o111 == 0o111
        return searchable and request.call.raw.mode & 0o111 != 0o111

    def _names(self, obj: FakeFile, canonical: str) -> list[str] | None:
        """Every canonical path of a file that is not a directory, ``canonical`` one of them:
        that alone for a file of one name; for one of more, the names the master saw programs
        give it (:meth:`_remember`) that still lead to it, when they are all of them. None when
        the master does not know them all."""
        if isinstance(obj, FakeDirectory) or obj.st_nlink <= 1:
            return [canonical]
        known = {canonical, *self._linked.get(id(obj), ())}
        names = []
        for name in known:
            try:
                found, _ = self._fs.locate(name, follow=False)
            except OSError:
                continue
            if found is obj:
                names.append(name)
        return names if len(names) == obj.st_nlink else None

    def _remember(self, obj: FakeFile, names: list[str]) -> None:
        """Names a program gives a file by link or rename (checked again by :meth:`_names`
        before they are used: an object's id may be reused, a name may be gone)."""
        if len(self._linked) >= _MOST_LINKED:
            self._linked.clear()
        known = self._linked.setdefault(id(obj), set())
        known.update(names)

    def written(self, file: FakeFile) -> None:
        """A program may now write ``file`` unseen (it got a descriptor with write access):
        withdraw its entries, or everything for a file of names the master does not know."""
        if self.snapshot is None or not self.snapshot.published:
            return
        names = self._names(file, self._fs.path_of(file))
        if names is None:
            self.unpublish()
            return
        for name in names:
            self._withdraw(name)

    def _may_hold(self, path: str) -> bool:
        """Whether the snapshot may hold an entry for ``path`` (canonical) in this epoch: a
        directory's entries, its own and its parent's are put together (:meth:`_put`)."""
        return (
            path in self._holding
            or path in self._holding_parents
            or _dirname(path) in self._holding
        )

    def _withdraw_entry(self, path: str) -> None:
        """Withdraw a path's entry alone (a change of its inode: mode, owner, times, size), and
        take its directory's mark of complete (which would make the shim answer ENOENT for the
        name): the directory is published again, complete, on its next stats."""
        snapshot = self.snapshot
        assert snapshot is not None
        self._forget(path)
        self._withdraw_descriptor(path)
        if not self._may_hold(path) or not snapshot.withdraw(path):
            return  # (not published: its directory is not complete, nothing depends on it)
        if path != "/":
            parent = _dirname(path)
            self._taken_from(parent, path)
            snapshot.unmark(parent, COMPLETE)
            self._forget(parent)

    def _withdraw(self, path: str) -> None:
        """Withdraw a path's entry and its directory's (whose times and names may change with
        it), and take the grandparent's mark of complete: a directory marked complete that
        lacked an entry would make the shim answer ENOENT for it. Those directories are
        published again on their next stats."""
        snapshot = self.snapshot
        assert snapshot is not None
        self._forget(path)
        self._withdraw_descriptor(path)
        if self._may_hold(path):
            snapshot.withdraw(path)  # (a name to create: its directory's entry says complete)
        parent = _dirname(path)
        self._taken_from(parent, path)
        self._forget(parent)
        if not self._may_hold(parent) or not snapshot.withdraw(parent):
            return  # (not published: its own directory is not complete for it)
        if parent != "/":
            grandparent = _dirname(parent)
            self._taken_from(grandparent, parent)
            snapshot.unmark(grandparent, COMPLETE)
            self._forget(grandparent)

    def _taken_from(self, directory: str, path: str) -> None:
        """``path``'s entry in ``directory`` is withdrawn, or the directory's mark of complete
        taken: if it was complete (or is to be again), note the name, so that the directory
        and the names withdrawn from it are published again, complete, once the change is made
        (:meth:`_republish`): git's object directories keep answering ENOENT and stats in the
        shim while it writes them."""
        if path != directory and (directory in self._complete or directory in self._pending):
            self._pending.setdefault(directory, []).append(path)

    def _republish(self) -> None:
        """Publish again each directory a change took the mark of complete from (every other
        name in it was published then, and still is: any withdrawal since is noted too): its
        own entry and the names withdrawn from it as they are now (a name gone: none), then
        the mark. With ``fs.lock`` held, between two calls: the change is made."""
        pending, self._pending = self._pending, {}
        snapshot = self.snapshot
        if snapshot is None or snapshot.crowded:
            return
        for directory, names in pending.items():
            try:
                obj, canonical = self._fs.lookup(directory, follow=False)
            except OSError:
                continue
            if not isinstance(obj, FakeDirectory) or canonical != directory:
                continue
            entries: list[tuple[str, FakeFile | None]] = [(directory, obj)]
            children = obj.entries
            for name in dict.fromkeys(names):
                child = children.get(name[name.rfind("/") + 1 :])
                if child is not None:
                    entries.append((name, child))
            records = lstat_records(entries, self._fs.changes_unseen)
            if snapshot.put_many(records) and snapshot.mark(directory, COMPLETE):
                self._complete.add(directory)
                self._published.add(directory)

    def _forget(self, directory: str) -> None:
        """A directory whose entry was withdrawn or unmarked is published again (listed,
        complete) on its next stats or listing."""
        self._listed.discard(directory)
        self._complete.discard(directory)
        self._published.discard(directory)  # (its count of stats stays: a directory stated
        # twice is published again on its next stat, as git's object directories are)

    def unpublish(self) -> None:
        """Empty the snapshot; call with ``fs.lock`` held, before a change becomes visible."""
        self._fs.model_changed()
        if self.snapshot is not None:
            self.snapshot.clear()
            self._published.clear()
            self._stats_in.clear()
            self._listed.clear()
            self._holding.clear()
            self._holding_parents.clear()
            self._complete.clear()
            self._pending.clear()
            self._descriptors.clear()

    def publish_parent(self, path: str) -> None:
        """After the master answered a stat-like call: publish the directory the path is in, from
        its second such stat on. Publishing costs the whole directory; a program that creates a
        file (which empties the snapshot) and stats one (cp -r) would pay it for every file."""
        if self._pending:
            self._republish()
        parent = _dirname(path.rstrip("/"))  # (paths in their one spelling: no "//")
        if parent in self._published:  # (most calls: the lookup below costs more than the rest)
            return
        seen = self._stats_in[parent] = self._stats_in.get(parent, 0) + 1
        if seen < 2:
            return
        try:
            directory, canonical = self._fs.lookup(parent)
        except OSError:
            return
        if isinstance(directory, FakeDirectory):
            self.publish(canonical, directory)

    def close(self) -> None:
        if self.snapshot is not None:
            self.snapshot.close()


def _dirname(path: str) -> str:
    """The directory of a canonical path (posixpath.dirname's, for the paths changes name)."""
    end = path.rfind("/")
    return path[:end] if end > 0 else "/"


def _kinds(entries: dict[str, FakeFile]) -> list[tuple[str, int]]:
    """A directory's entries as its shadow lists them: (name, S_IF* type)."""
    return [(name, obj.stat_result.st_mode & 0o170000) for name, obj in entries.items()]


def _named_only(obj: FakeFile) -> bool:
    """Every entry is only named (see Publisher._put)."""
    return True


#: The changes the paths they name bound (see Publisher.before_change): each path's entry,
#: its directory's, and the other names of a file with hard links.
_BOUNDED_CHANGES = frozenset(
    {"open", "openat", "mkdir", "mknod", "symlink", "unlink", "rmdir", "truncate", "utimens",
     "chmod", "chown", "rename", "link", "setxattr", "removexattr"}
)  # fmt: skip
#: The changes that make a name, or open a file for writing: of a file some descriptor's record
#: stands for, they change only what the record leaves to the memfd (its size and times).
_CREATES = frozenset({"open", "openat", "mkdir", "mknod", "symlink"})
#: The changes of an inode alone, not of any directory's list of names: they withdraw the
#: entries of the file's names, and not their directories'.
_METADATA_CHANGES = frozenset(
    {"chmod", "chown", "utimens", "truncate", "setxattr", "removexattr", "fchmod", "fchown",
     "futimens", "fsetxattr", "fremovexattr"}
)  # fmt: skip
#: The changes by descriptor that the file's names bound (a shadow directory's: its path).
_DESCRIPTOR_CHANGES = frozenset({"fchmod", "fchown", "futimens", "fsetxattr", "fremovexattr"})
#: The most entries one program's listing publishes ahead of it (see Publisher._list_ahead).
LIST_AHEAD = 4096
#: The most files with hard links whose names the publisher remembers (then it forgets them all,
#: and a change of one of those files empties the snapshot).
_MOST_LINKED = 1 << 16


@functools.lru_cache(maxsize=4)
def _special_parents(mounts: tuple[str, ...]) -> frozenset[str]:
    """The directories (each with a trailing "/") that have something outside the model below
    them: a mount, a device, /proc. Publishing checks each directory's entries against the
    routes only then; most directories have none."""
    specials = (*mounts, *DEVICES, "/proc", "/dev/fd")
    return frozenset(special[: index + 1] for special in specials
                     for index, char in enumerate(special) if char == "/")  # fmt: skip
