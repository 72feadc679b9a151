"""Who is on the other end of a connection, as the kernel says: never as the program says.

A program's hello names its pid and ids, but a program (or any local user who finds the socket)
can write anything there. The master believes only the kernel: the pid and effective ids
``SO_PEERCRED`` recorded when the peer connected, the real ids and the parent in ``/proc``, and
(where the kernel has ``SO_PEERPIDFD``) a pidfd of that very process, which shows that what was
read in ``/proc`` belongs to it and not to a later process given the same pid.

:class:`Tree` is the set of processes a master serves: the master's own process and its
descendants, followed through ``/proc/<pid>/stat`` parents, plus every process already admitted
(and its descendants). A program whose parent exits stays a descendant: while a master serves,
the test process is a child subreaper (see ``_guard``) and adopts it; :meth:`Tree.reap` collects
such orphans once they exit. A process outside the tree cannot make itself a descendant: its
parent chain is the kernel's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import posix
import signal
import socket
import struct

# The real system calls, also while pyfakefs patches ``os`` and ``open`` in the modules it does not
# skip (a test with both ``fs`` and ``libcfake``): /proc is the kernel's, never a fake's.
_real = posix

#: struct ucred, as SO_PEERCRED gives it: pid, uid, gid.
_PEERCRED = struct.Struct("iII")
#: SO_PEERPIDFD (Linux 6.5): a pidfd of the process that connected.
_SO_PEERPIDFD = getattr(socket, "SO_PEERPIDFD", 77)
#: How many parents a walk looks at before it gives up.
_MAX_DEPTH = 4096


class NotServed(Exception):
    """The peer is not a process the master serves; the message says why."""


@dataclasses.dataclass(frozen=True)
class Peer:
    """A connected process, as the kernel describes it."""

    pid: int
    ppid: int
    start: int  # clock ticks after boot: with the pid, names the process for good
    sid: int  # its session
    uid: int
    gid: int
    euid: int
    egid: int


def peer_pid(sock: socket.socket) -> int:
    """The pid of the process that connected ``sock`` (0 if the kernel does not say)."""
    try:
        pid, _, _ = _PEERCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        )
    except OSError:
        return 0
    return int(pid)


def exe_of(pid: int) -> str:
    """The executable of a process ("" if it cannot be read)."""
    try:
        return _real.readlink(f"/proc/{pid}/exe") if pid > 0 else ""
    except OSError:
        return ""


def _read(path: str) -> bytes:
    """A /proc file's contents (those read here are a few hundred bytes)."""
    fd = _real.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _real.read(fd, 1 << 16)
    finally:
        _real.close(fd)


def is_thread(pid: int, tid: int) -> bool:
    """Whether ``tid`` is a thread of process ``pid``."""
    try:
        _real.stat(f"/proc/{pid}/task/{tid}")
    except OSError:
        return False
    return True


def _stat(pid: int) -> tuple[int, int]:
    """(parent pid, start time) of a process, from /proc/<pid>/stat; OSError if it is gone."""
    fields = _stat_fields(pid)
    return int(fields[1]), int(fields[19])


def _stat_fields(pid: int) -> list[bytes]:
    """The fields of /proc/<pid>/stat after the name: state, ppid, pgrp, session, ..."""
    text = _read(f"/proc/{pid}/stat")
    return text[text.rindex(b")") + 2 :].split()  # the name in parentheses may hold anything


def _ids(pid: int) -> tuple[list[int], list[int]]:
    """The Uid: and Gid: lines of /proc/<pid>/status (real, effective, saved, filesystem)."""
    uids: list[int] = []
    gids: list[int] = []
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith(b"Uid:"):
            uids = [int(value) for value in line.split()[1:5]]
        elif line.startswith(b"Gid:"):
            gids = [int(value) for value in line.split()[1:5]]
    if len(uids) != 4 or len(gids) != 4:
        raise OSError(f"/proc/{pid}/status has no ids")
    return uids, gids


def identify(sock: socket.socket) -> Peer:
    """The process that connected ``sock``, from the kernel; NotServed if it cannot be known
    (OSError when the master is out of descriptors)."""
    try:
        pid, _, _ = _PEERCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        )
    except OSError as error:
        raise NotServed(f"the kernel does not say who connected ({error})") from None
    if pid <= 0:
        raise NotServed("the kernel does not say who connected (in another pid namespace?)")
    pidfd = -1
    with contextlib.suppress(OSError):
        pidfd = int.from_bytes(
            sock.getsockopt(socket.SOL_SOCKET, _SO_PEERPIDFD, 4), "little", signed=True
        )
    try:
        try:
            fields = _stat_fields(pid)
            ppid, sid, start = int(fields[1]), int(fields[3]), int(fields[19])
            uids, gids = _ids(pid)
        except OSError as error:
            if error.errno in (errno.EMFILE, errno.ENFILE):
                raise  # the master's own trouble, not the peer's
            raise NotServed(f"pid {pid} is gone") from None
        except (ValueError, IndexError):
            raise NotServed(f"pid {pid} is gone") from None
        if pidfd >= 0:  # what /proc said was of the process that connected, not of a new one
            try:
                signal.pidfd_send_signal(pidfd, 0)
            except ProcessLookupError:
                raise NotServed(f"pid {pid} is gone") from None
            except OSError:
                pass  # alive, and not ours to signal
    finally:
        if pidfd >= 0:
            _real.close(pidfd)
    return Peer(pid, ppid, start, sid, uids[0], gids[0], uids[1], gids[1])


class Tree:
    """The processes a master serves (see the module's text)."""

    def __init__(self) -> None:
        self.root = _real.getpid()
        self._sid = _real.getsid(0)
        self._members: set[tuple[int, int]] = set()  # (pid, start) of admitted processes
        # of them, those another process started: the master may adopt them (see _guard)
        self._adoptable: dict[int, int] = {}

    def admit(self, peer: Peer) -> None:
        """Serve ``peer`` if it is the master's process, a descendant of it, or a descendant
        of a process admitted before; NotServed, saying why, if not (OSError when the master
        is out of descriptors)."""
        if peer.pid == self.root or (peer.pid, peer.start) in self._members:
            return
        chain = [peer.pid]
        node, parent = peer.pid, peer.ppid
        retries = 0
        for _ in range(_MAX_DEPTH):
            if parent == self.root:
                break
            if parent <= 1:
                raise NotServed(
                    f"pid {peer.pid} (uid {peer.euid}) is not a process of this sandbox's tree "
                    f"(its parents: {' <- '.join(map(str, [*chain, parent]))}; the master is "
                    f"pid {self.root}): a process started outside the test process, by another "
                    "user or another program"
                )
            try:
                grandparent, start = _stat(parent)
            except (OSError, ValueError, IndexError) as error:
                if isinstance(error, OSError) and error.errno in (errno.EMFILE, errno.ENFILE):
                    raise
                # The parent exited meanwhile: the kernel gave its children to a reaper (the
                # test process, a subreaper while it serves) before its /proc entry went. Ask
                # the child again who its parent is now.
                retries += 1
                try:
                    if retries > 8:
                        raise OSError
                    parent = _stat(node)[0]
                except (OSError, ValueError, IndexError):
                    raise NotServed(f"pid {peer.pid}: its parent {parent} is gone") from None
                continue
            if (parent, start) in self._members:
                break
            chain.append(parent)
            node, parent = parent, grandparent
        else:
            raise NotServed(f"pid {peer.pid}: no end to its parents")
        self._members.add((peer.pid, peer.start))
        # Never reap a child the test forked itself (its Popen would lose the exit status). A
        # process with another parent is not one; nor is a child of the test process in a
        # session that is neither the test's (inherited) nor its own (setsid): it was born
        # elsewhere in that session and adopted (a daemon's double fork).
        if peer.ppid != self.root or peer.sid not in (self._sid, peer.pid):
            self._adoptable[peer.pid] = peer.start

    def contains(self, pid: int) -> bool:
        """Whether ``pid`` (a process or a thread) is a program of this tree: admitted, or a
        descendant of the master's process. The master's own process and threads are not."""
        try:
            status = _read(f"/proc/{pid}/status").splitlines()
            tgid = next(int(line.split()[1]) for line in status if line.startswith(b"Tgid:"))
            parent, start = _stat(tgid)
        except (OSError, ValueError, IndexError, StopIteration):
            return False
        if tgid == self.root:
            return False
        for _ in range(_MAX_DEPTH):
            if (tgid, start) in self._members or parent == self.root:
                return True
            if parent <= 1:
                return False
            tgid = parent
            try:
                parent, start = _stat(tgid)
            except (OSError, ValueError, IndexError):
                return False
        return False

    def reap(self, pid: int | None = None) -> None:
        """Collect admitted processes adopted by the master (their parent exited) that exited:
        ``pid``, or all of them. Never a child the test started itself."""
        for candidate in [pid] if pid is not None else list(self._adoptable):
            start = self._adoptable.get(candidate)
            if start is None:
                continue
            try:
                if _stat(candidate)[1] != start:  # gone, and its pid given to another
                    raise OSError
            except (OSError, ValueError, IndexError):
                del self._adoptable[candidate]
                continue
            try:
                if _real.waitid(os.P_PID, candidate, os.WEXITED | os.WNOHANG) is not None:
                    del self._adoptable[candidate]
            except ChildProcessError:  # still its parent's
                pass

    def close(self) -> None:
        """The master stops: collect what exited; forget the rest."""
        self.reap()
        self._adoptable.clear()
