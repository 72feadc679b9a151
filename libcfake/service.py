"""LibcService: the master end, with the request-reply API of Emilua's ``libc_service.master``.

Programs started with :meth:`LibcService.spawn` run behind the preload shim. Each file, socket or
name-resolution call they make arrives here as a :class:`~libcfake.calls.Call`; the master looks
at it and answers::

    with LibcService() as svc:
        proc = svc.spawn(["cat", "/etc/motd"], stdout=subprocess.PIPE)
        def handler(svc):
            if svc.function_ == "open" and svc.arguments()[0] == PurePosixPath("/etc/motd"):
                fd = os.memfd_create("motd")
                os.write(fd, b"hello\\n"); os.lseek(fd, 0, os.SEEK_SET)
                svc.send_with_fds(0, [fd])      # the program's open() returns this file
                os.close(fd)
            else:
                svc.use_slave_credentials()     # the program makes the real call itself
        svc.serve(handler, until=proc)

One call is served at a time: after :meth:`receive`, answer with :meth:`send`,
:meth:`send_with_fds` or :meth:`use_slave_credentials` before receiving again. Every process of
the tree (children of children too) and every thread has its own connection, so calls from many
threads simply queue up here.
"""

from __future__ import annotations

import array
import asyncio
import collections
import contextlib
import dataclasses
import errno as _errno
import os
import resource
import select
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from . import _guard, _hybrid, _realos, protocol
from ._peer import NotServed, Tree, exe_of, identify, is_thread, peer_pid
from ._shim import preload_environment
from ._supervisor import Deferred as TrappedDeferred
from ._supervisor import TrappedCall
from .calls import Call
from .errors import ProtocolError
from .protocol import Note, ProcessInfo
from .replies import encode_answer, errno_number
from .ring import NoteRing
from .snapshot import Snapshot

#: How long the master looks for the next call before it sleeps, which saves the cost of waking
#: up for programs that call again at once. It yields the CPU between looks: a program waiting
#: for its reply on the same CPU does the same (SPIN_NS in shim/channel.c), and without the
#: yield each would keep the CPU from the other for the whole spin (benchmarks/roundtrip.py).
_SPIN_NS = 30_000
_TRUNCATED = int(socket.MSG_TRUNC | socket.MSG_CTRUNC)
#: Builds a Call from (process, raw) without the generated __new__'s overhead: one per call.
_new_tuple = tuple.__new__
_ANCILLARY_SPACE = socket.CMSG_SPACE(protocol.MAX_FDS * array.array("i").itemsize)


@dataclasses.dataclass(frozen=True)
class ServiceError:
    """Something that went wrong while the master accepted, read or answered a connection: the
    master went on serving, and the program concerned (if known) saw its call fail.

    ``stage`` is "accept", "hello" or "receive"; ``pid`` and ``exe`` are 0 and "" when the
    program is not known.
    """

    stage: str
    pid: int
    exe: str
    message: str

    def __str__(self) -> str:
        who = f"pid {self.pid} ({self.exe})" if self.pid else "a program"
        return f"{self.stage}: {who}: {self.message}"


class _Connection:
    """One connected thread of one program."""

    __slots__ = ("process", "ring", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.process: ProcessInfo | None = None
        self.ring: NoteRing | None = None  # with a snapshot, from the welcome on

    def who(self) -> str:
        if self.process is None:
            return "a program that has not said hello"
        return f"pid {self.process.pid} ({self.process.exe})"


class _Pending:
    """A received call waiting to be answered, with the descriptors that came with it."""

    __slots__ = ("call", "connection", "fds")

    def __init__(self, connection: _Connection, call: Call, fds: list[int]) -> None:
        self.connection = connection
        self.call = call
        self.fds = fds

    def close_fds(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


class _Trapped:
    """A call the hybrid backend's supervisor trapped, set aside to be served as a forwarded
    call is: received in turn, answered through its :class:`TrappedDeferred`."""

    __slots__ = ("call", "deferred", "fds")

    def __init__(self, trapped: TrappedCall) -> None:
        self.call = trapped.call
        self.fds = trapped.descriptors()
        self.deferred = trapped.defer()

    def close_fds(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


class LibcService:
    """The master: listens for programs behind the shim and arbitrates their calls.

    ``reply_timeout`` is how long a program waits for each answer before its call fails with
    EIO. ``passthrough`` lists host path prefixes on which the shim performs read-only calls
    itself, with no round trip (for instance an interpreter's standard library).
    ``file_devices`` lists the st_dev of descriptors the handler hands out (at most two: say the
    device of its memfds and of its directories): fstat, fchmod, fchown and futimens on such a
    descriptor are forwarded too, so the handler can answer them.

    ``snapshot`` shares a :class:`~libcfake.snapshot.Snapshot` with every program: the shim then
    answers stat, lstat, access(F_OK) and readlink of its entries (and fstat of a listed
    directory, and a read-only open of a directory marked listed) itself, and tells the master
    of each such call in a note (never given to the handler: it needs no answer). Notes come in
    batches, through each connection's note ring (see :mod:`libcfake.ring`):
    ``on_note(process, notes)`` gets a :class:`~libcfake.protocol.Notes` (iterate it for
    :class:`~libcfake.protocol.Note`) before any later call of that thread is received.
    :meth:`drain` waits until every note made so far is in. Under ``backend="hybrid"`` the
    supervisor answers the same calls of the programs no shim serves (static ones) from the
    snapshot, and an ``fstat`` made inside libc of a descriptor whose memfd has a record there;
    each comes to ``on_note`` too, one at a time, as a list of one ``Note``.

    No program can stop the master: when accepting, reading or welcoming a connection fails
    (the master out of descriptors, say), the connection is refused or closed and serving goes
    on; what happened is kept in :attr:`errors` (a :class:`ServiceError` each) and given to
    ``on_error``, if set, at once.

    Besides the seed's 17 calls, ``function_`` may be one of libcfake's extensions (see
    ``libcfake.calls``); a handler that does not know one can ``use_slave_credentials()``.

    ``backend="hybrid"`` starts every program of :meth:`spawn` under the seccomp supervisor
    too (see :mod:`libcfake._hybrid`): what the shim cannot reach (a static or Go program, a
    child without ``LD_PRELOAD``, a raw system call) traps, and comes to :meth:`receive` as the
    same calls, answered with the same methods; read-only calls under ``passthrough`` are
    answered without the handler, as the shim answers them. Where the kernel cannot, the
    preload backend runs with one :class:`~libcfake.LibcfakeBackendWarning`; :attr:`backend`
    says which runs. The default is ``"preload"``: a handler written for the shim's calls alone
    meets many more under the supervisor (a dynamic program's loader, libc's own files).
    """

    def __init__(
        self,
        *,
        reply_timeout: float = 30.0,
        passthrough: Iterable[str] = (),
        file_devices: Sequence[int] = (),
        snapshot: Snapshot | None = None,
        on_note: Callable[[ProcessInfo, Iterable[Note]], object] | None = None,
        on_error: Callable[[ServiceError], object] | None = None,
        backend: str = "preload",
    ) -> None:
        self.backend = _hybrid.choose(backend)
        if reply_timeout <= 0:
            raise ValueError("reply_timeout must be positive")
        if len(file_devices) > 2:
            raise ValueError("at most two file devices")
        self._devices = list(file_devices)
        self._snapshot = snapshot
        self._on_note = on_note
        self._on_error = on_error
        #: What went wrong with connections while serving (see the class's text).
        self.errors: list[ServiceError] = []
        self._drained: list[threading.Event] = []  # drain() calls waiting for an idle poll
        self._drained_lock = threading.Lock()
        self._passthrough = [_check_prefix(prefix) for prefix in passthrough]
        self._timeout_ms = max(1, round(reply_timeout * 1000))
        self._dir = _realos.mkdtemp("libcfake-")
        self.socket_path = os.path.join(self._dir, "master.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        self._listener.bind(self.socket_path)
        # Programs that drop privileges (setpriv, su, daemons) must still reach the master, so
        # a root master's socket is world-connectable (its directory is not listable); who
        # connected is then the kernel's word, and only the master's own tree is served (see
        # _peer). Only root's programs can become another user: anyone else's socket is private.
        shared = os.geteuid() == 0
        os.chmod(self._dir, 0o711 if shared else 0o700)
        os.chmod(self.socket_path, 0o777 if shared else 0o700)
        self._listener.listen(128)
        self._listener.setblocking(False)
        self._epoll = select.epoll()
        self._listener_fd = self._listener.fileno()
        self._epoll.register(self._listener_fd, select.EPOLLIN)
        self._wakeup = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._epoll.register(self._wakeup, select.EPOLLIN)
        self._drain_wakeup = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)  # see drain()
        self._epoll.register(self._drain_wakeup, select.EPOLLIN)
        self._connections: dict[int, _Connection] = {}
        self._queue: collections.deque[_Pending | _Trapped] = collections.deque()
        self._current: _Pending | _Trapped | None = None
        self._closed = False
        # one descriptor kept free: out of descriptors, the master closes it to accept and
        # refuse a connection with a reason, rather than leave it waiting in the backlog
        self._reserve = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        self._tree = Tree()  # the processes served: this one's descendants (see _peer)
        # the hybrid backend's trapped calls, put here by its supervisor threads
        self._trapped: collections.deque[_Trapped] = collections.deque()
        self._trap_wakeup = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._epoll.register(self._trap_wakeup, select.EPOLLIN)
        self._hybrid = None if self.backend == "preload" else _hybrid.Hybrid(
            self._trap, file_devices=self._devices, socket_path=self.socket_path,
            refused=self._refused, passthrough=lambda: self._passthrough, snapshot=snapshot,
            on_note=on_note,
        )  # fmt: skip
        _guard.enter()  # not dumpable, and the reaper of orphans, while serving

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> LibcService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening and drop every connection; programs still waiting see EIO."""
        if self._closed:
            return
        self._closed = True
        if self._hybrid is not None:  # its calls still trapped fail (ENOSYS)
            self._hybrid.close()
        for connection in list(self._connections.values()):
            self._drop(connection)  # with the notes still in its ring
        for pending in self._queue:
            pending.close_fds()
        self._queue.clear()
        for trapped in self._trapped:
            trapped.close_fds()
        self._trapped.clear()
        if self._current is not None:
            self._current.close_fds()
            self._current = None
        self._epoll.close()
        os.close(self._wakeup)
        os.close(self._drain_wakeup)
        os.close(self._trap_wakeup)
        self._listener.close()
        if self._reserve >= 0:
            os.close(self._reserve)
        _realos.rmtree(self._dir)
        self._tree.close()
        _guard.leave()

    def fileno(self) -> int:
        """A descriptor that becomes readable when there may be something to receive."""
        return self._epoll.fileno()

    def serves(self, pid: int) -> bool:
        """Whether ``pid`` (a process or thread) belongs to the programs this master serves:
        a descendant of the test process or of a program admitted before (its parent may have
        exited), never the test process itself."""
        trapped = self._hybrid is not None and self._hybrid.contains(pid)
        return self._tree.contains(pid) or trapped

    def set_passthrough(self, prefixes: Iterable[str]) -> None:
        """Replace the passthrough prefixes for the programs that start from now on (a process
        takes the table once, with its first connection; one already running keeps its own)."""
        self._passthrough = [_check_prefix(prefix) for prefix in prefixes]

    # -- starting programs -----------------------------------------------------------------

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment that runs a program behind the shim, talking to this master."""
        return preload_environment(self.socket_path, base)

    def spawn(
        self,
        args: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        **popen_kwargs: Any,
    ) -> subprocess.Popen[Any]:
        """Start ``args`` behind the shim (and under the supervisor: ``backend="hybrid"``);
        other arguments are those of ``subprocess.Popen``."""
        if self._hybrid is not None:
            cwd = popen_kwargs.pop("cwd", None)
            cwd = os.fspath(cwd) if cwd is not None else os.getcwd()
            return self._hybrid.popen(list(args), self.environment(env), cwd, **popen_kwargs)
        return _realos.Popen(args, env=self.environment(env), **popen_kwargs)

    def _trap(self, trapped: TrappedCall) -> None:
        """From a supervisor thread: a trapped call, for :meth:`receive` to hand out in turn."""
        self._trapped.append(_Trapped(trapped))
        os.eventfd_write(self._trap_wakeup, 1)

    def _refused(self, refusal: _hybrid.Refusal) -> None:
        """A call the hybrid backend refused by itself (io_uring, a signal aimed outside...)."""
        message = f"{refusal.call} refused ({refusal.answer}): {refusal.reason}"
        self._report("supervisor", _ProcessName(refusal.pid, refusal.exe), message)

    # -- receiving -------------------------------------------------------------------------

    def receive(self, timeout: float | None = None) -> Call:
        """Wait for the next forwarded call from any process; TimeoutError if none comes in time.

        A message the master cannot read raises :class:`ProtocolError`; that program's
        connection is closed and the service goes on serving the others.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        call = self._receive(deadline)
        assert call is not None
        return call

    async def receive_async(self, timeout: float | None = None) -> Call:
        """:meth:`receive` for asyncio code: waits without blocking the event loop."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            call = self._receive(time.monotonic(), none_on_timeout=True)
            if call is not None:
                return call
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self.fileno(), _resolve, ready)
            try:
                remaining = None if deadline is None else max(0.0, deadline - loop.time())
                await asyncio.wait_for(ready, remaining)
            except asyncio.TimeoutError:
                raise TimeoutError("no call arrived in time") from None
            finally:
                loop.remove_reader(self.fileno())

    def serve(
        self,
        handler: Callable[[LibcService], object],
        until: subprocess.Popen[Any] | None = None,
        timeout: float | None = None,
    ) -> int | None:
        """Answer calls with ``handler(self)`` until the process ``until`` exits (its returncode)
        or, without ``until``, until :meth:`stop` is called from another thread (None).

        The handler must reply to each call. If it raises, or returns without replying, the
        program's call fails with EIO and the error propagates. After ``timeout`` seconds the
        process is killed and TimeoutError raised.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        pidfd = os.pidfd_open(until.pid) if until is not None else self._wakeup
        if until is not None:
            self._epoll.register(pidfd, select.EPOLLIN)
        try:
            while True:
                try:
                    call = self._receive(deadline, stop_fd=pidfd)
                except TimeoutError:
                    if until is None:
                        raise
                    until.kill()
                    until.wait()
                    raise TimeoutError(f"{until.args!r} still ran after {timeout} s") from None
                if call is None:
                    return until.wait() if until is not None else None
                try:
                    handler(self)
                except BaseException:
                    if self._current is not None:
                        self.send(-1, _errno.EIO)
                    raise
                if self._current is not None:
                    self.send(-1, _errno.EIO)
                    raise RuntimeError(f"the handler did not answer {call.describe()}")
        finally:
            if until is not None:
                self._epoll.unregister(pidfd)
                os.close(pidfd)

    def stop(self) -> None:
        """Make a :meth:`serve` without ``until`` return (safe from any thread)."""
        os.eventfd_write(self._wakeup, 1)

    def drain(self, timeout: float = 5.0) -> bool:
        """From another thread while :meth:`serve` runs: wait until the master has read every
        message programs sent before this call (notes included). False after ``timeout``."""
        done = threading.Event()
        with self._drained_lock:
            self._drained.append(done)
        os.eventfd_write(self._drain_wakeup, 1)
        return done.wait(timeout)

    def _release_drained(self) -> None:
        """Called when a poll found nothing to read: everything sent before is in, and the notes
        rings hold are taken here."""
        with self._drained_lock:
            waiting, self._drained = self._drained, []
        error = None
        for connection in list(self._connections.values()):
            try:
                self._take_notes(connection)
            except ProtocolError as garbled:
                error = error or self._garbled(connection, garbled)
        for done in waiting:
            done.set()
        if error is not None:
            raise error

    def _receive(
        self,
        deadline: float | None,
        stop_fd: int | None = None,
        none_on_timeout: bool = False,
    ) -> Call | None:
        if self._closed:
            raise ValueError("the service is closed")
        if self._current is not None:
            raise RuntimeError(
                f"answer {self._current.call.describe()} before receiving the next call"
            )
        # a chatty program's next call usually comes within microseconds: look for it without
        # sleeping for a while, yielding the CPU in between (to the program, if it is on ours)
        spinning, spin_until = not none_on_timeout, 0
        while not self._queue:
            if spinning:
                events = self._epoll.poll(0)
                if not events:
                    if self._drained:
                        self._release_drained()
                    now = time.monotonic_ns()
                    spin_until = spin_until or now + _SPIN_NS  # from the first empty look
                    if now < spin_until:
                        os.sched_yield()
                    else:
                        spinning = False
                    continue
            else:
                if self._drained and not self._epoll.poll(0):
                    self._release_drained()
                remaining = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
                events = self._epoll.poll(remaining)
                if not events and remaining == 0.0:
                    if none_on_timeout:
                        return None
                    raise TimeoutError("no call arrived in time")
            for fd, _ in events:
                connection = self._connections.get(fd)
                if connection is not None:  # the common case: a program's message
                    try:
                        self._read(connection)
                    except OSError as error:  # no program may stop the master: close, go on
                        self._report("receive", connection.process, f"{error}; closed")
                        self._drop(connection)
                    continue
                if fd == self._wakeup:
                    os.eventfd_read(self._wakeup)
                elif fd == self._drain_wakeup:
                    os.eventfd_read(self._drain_wakeup)
                elif fd == self._trap_wakeup:
                    os.eventfd_read(self._trap_wakeup)
                    while self._trapped:
                        self._queue.append(self._trapped.popleft())
                if fd == stop_fd:
                    return None
                if fd == self._listener_fd:
                    self._accept()
        self._current = self._queue.popleft()
        return self._current.call

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as error:
                if error.errno in (_errno.EMFILE, _errno.ENFILE):
                    if not self._refuse_backlog(error):
                        return
                elif error.errno not in (_errno.ECONNABORTED, _errno.EINTR):
                    self._report("accept", None, f"accept failed: {error}")
                    return
                continue
            sock.setblocking(False)
            self._connections[sock.fileno()] = _Connection(sock)
            self._epoll.register(sock.fileno(), select.EPOLLIN)

    def _refuse_backlog(self, error: OSError) -> bool:
        """Out of descriptors: refuse the oldest waiting connection with a reason, using the
        reserved descriptor (a connection left waiting would wait out its reply timeout).
        False when no connection was waiting (accept says EMFILE before it looks)."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        reason = (
            f"the master ran out of file descriptors ({os.strerror(error.errno or 0)}; "
            f"ulimit -n is {soft}, {len(self._connections)} connections are open: one per "
            "thread of each program)"
        )
        had_reserve = self._reserve >= 0
        if had_reserve:
            os.close(self._reserve)
            self._reserve = -1
        try:
            sock, _ = self._listener.accept()
        except OSError as again:
            with contextlib.suppress(OSError):
                self._reserve = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
            if had_reserve and not isinstance(again, BlockingIOError):
                self._report("accept", None, reason + "; a connection waits")  # once per reserve
            return False
        with sock:
            pid = peer_pid(sock)
            self._report("accept", _ProcessName(pid, exe_of(pid)), reason + "; refused")
            with contextlib.suppress(OSError):
                sock.send(protocol.encode_refusal(_errno.EMFILE, "libcfake: " + reason))
        with contextlib.suppress(OSError):
            self._reserve = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        return True

    def _report(self, stage: str, who: _ProcessName | ProcessInfo | None, message: str) -> None:
        """Keep what went wrong with a connection (see :attr:`errors`) and tell on_error."""
        error = ServiceError(stage, who.pid if who else 0, who.exe if who else "", message)
        self.errors.append(error)
        if self._on_error is not None:
            self._on_error(error)

    def _drop(self, connection: _Connection, take_notes: bool = True) -> None:
        """Close a connection, first taking the notes left in its ring (unless it is garbled)."""
        fd = connection.sock.fileno()
        if self._connections.pop(fd, None) is not None:
            self._epoll.unregister(fd)
        connection.sock.close()
        if connection.process is not None:
            self._tree.reap(connection.process.pid)  # an orphan the master adopted, if done
        if connection.ring is not None:
            if take_notes:
                with contextlib.suppress(ProtocolError):  # reported when it was first read
                    self._take_notes(connection)
            connection.ring.close()
            connection.ring = None

    def _take_notes(self, connection: _Connection) -> None:
        """Hand the notes in the connection's ring to on_note; ProtocolError if it is garbled."""
        notes = connection.ring.take() if connection.ring is not None else None
        if notes is not None and self._on_note is not None:
            assert connection.process is not None  # a ring comes with the welcome
            self._on_note(connection.process, notes)

    def _garbled(self, connection: _Connection, error: ProtocolError) -> ProtocolError:
        """Drop a connection that sent something unreadable; the error to raise."""
        who = connection.who()
        self._drop(connection, take_notes=False)
        return ProtocolError(f"{who}: {error}; its connection was closed")

    def _read(self, connection: _Connection) -> None:
        """Read the connection's next message (taking the notes made before it first)."""
        try:
            data, ancillary, flags, _ = connection.sock.recvmsg(
                protocol.MAX_MESSAGE, _ANCILLARY_SPACE, socket.MSG_CMSG_CLOEXEC
            )
        except BlockingIOError:
            return
        except OSError:  # ECONNRESET: the program died
            self._drop(connection)
            return
        fds = _received_fds(ancillary) if ancillary else []
        try:
            if connection.ring is not None:  # the notes made before this message come first
                self._take_notes(connection)
            if not data and not fds:  # end of stream: the thread or process is gone
                self._drop(connection)
                return
            if flags & _TRUNCATED:
                raise ProtocolError(
                    f"a message larger than {protocol.MAX_MESSAGE} bytes "
                    f"or with more than {protocol.MAX_FDS} descriptors"
                )
            process = connection.process
            if process is None:
                self._handshake(connection, data, fds)
            else:
                call = _new_tuple(Call, (process, protocol.decode_call(data, len(fds))))
                self._queue.append(_Pending(connection, call, fds))
        except ProtocolError as error:
            for fd in fds:
                os.close(fd)
            if connection.process is not None and protocol.is_note(data):  # say why
                note = ProtocolError("a note sent as a message: notes go through the note ring")
                raise self._garbled(connection, note) from None
            raise self._garbled(connection, error) from None

    def _handshake(self, connection: _Connection, data: bytes, fds: list[int]) -> None:
        if fds:
            raise ProtocolError("descriptors sent with the hello")
        version = protocol.peek_version(data)
        if version is not None and version != protocol.VERSION:
            message = (
                f"the master speaks libcfake protocol {protocol.VERSION}, this shim "
                f"speaks {version}: install libcfake again so both come from one build"
            )
            self._send_quietly(connection, protocol.encode_refusal(_errno.EPROTO, message))
        claimed = protocol.decode_hello(data)
        try:  # who it is comes from the kernel, never from the hello
            peer = identify(connection.sock)
            self._tree.admit(peer)
        except NotServed as refused:
            pid = peer_pid(connection.sock)
            self._refuse(connection, _ProcessName(pid, exe_of(pid)), _errno.EACCES, str(refused))
            return
        except OSError as error:
            self._refuse(connection, None, error.errno or _errno.EIO, _master_trouble(error))
            return
        tid = claimed.tid
        if tid != peer.pid and not is_thread(peer.pid, tid):
            tid = peer.pid  # not a thread of that process: its own pid is what is known
        connection.process = dataclasses.replace(
            claimed,
            pid=peer.pid,
            ppid=peer.ppid,
            tid=tid,
            uid=peer.uid,
            gid=peer.gid,
            euid=peer.euid,
            egid=peer.egid,
        )
        snapshot = self._snapshot
        if snapshot is None:
            welcome = protocol.encode_welcome(self._timeout_ms, self._passthrough, self._devices)
            self._send_quietly(connection, welcome)
            return
        try:
            ring = NoteRing()
        except OSError as error:
            self._refuse(connection, connection.process, error.errno or _errno.EIO,
                         f"no note ring: {_master_trouble(error)}")  # fmt: skip
            return
        connection.ring = ring
        welcome = protocol.encode_welcome(
            self._timeout_ms, self._passthrough, self._devices, snapshot.size, ring.size
        )
        self._send_quietly(connection, welcome, [snapshot.reader_fd, ring.fd])
        ring.close_fd()  # the program has its own now

    def _refuse(
        self,
        connection: _Connection,
        who: _ProcessName | ProcessInfo | None,
        error: int,
        reason: str,
    ) -> None:
        """Refuse a connection at its hello: the program's shim prints the reason and fails the
        call; the master keeps it in errors and closes the connection."""
        self._send_quietly(connection, protocol.encode_refusal(error, f"libcfake: {reason}"))
        self._report("hello", who, f"refused the connection: {reason}")
        self._drop(connection)

    # -- the current call ------------------------------------------------------------------

    @property
    def call(self) -> Call:
        """The call being served (the record behind ``function_`` and ``arguments()``)."""
        return self._served().call

    @property
    def function_(self) -> str:
        """The seed's name of the call being served: "open", "stat", "getaddrinfo", ..."""
        return self._served().call.raw.function

    @property
    def process(self) -> ProcessInfo:
        """Which process and thread made the call being served."""
        return self.call.process

    def arguments(self) -> tuple[Any, ...]:
        """The arguments of the call being served, as listed in ``libcfake.calls``."""
        return self.call.arguments()

    def descriptors(self) -> list[int]:
        """The descriptors that came with the call (dirfds, then the socket); yours to close.

        A second call returns an empty list, as in Emilua.
        """
        self.call  # noqa: B018 - raises when nothing is being served
        assert self._current is not None
        fds, self._current.fds = self._current.fds, []
        return fds

    # -- answering -------------------------------------------------------------------------

    def send(
        self, result: Any, errno: int | OSError = 0, *, canonical_name: str | None = None
    ) -> bool:
        """Answer the call being served; False if the program is gone.

        ``result`` is an integer (-1 with ``errno`` on failure), a stat table for stat/lstat
        (a StatResult, a mapping of its fields, or a :class:`~libcfake.protocol.PackedStat`),
        and for getaddrinfo a list of ``(ip, port_or_None)``, None (no addresses) or an error
        name from :data:`GAI_ERRORS`. Beyond the seed, getaddrinfo entries may also be
        ``(ip, port, socktype, protocol)`` (then they are sent as they are, not one per socket
        type), and ``canonical_name`` replaces the node name reported for AI_CANONNAME.
        """
        return self._answer(result, (), errno, canonical_name)

    def send_with_fds(
        self, result: Any, fds: Sequence[int | Any], errno: int | OSError = 0, *, watch: int = 0
    ) -> bool:
        """Answer with descriptors (which stay yours; the program gets copies).

        For open/openat the first descriptor becomes the program's return value; for
        connect/bind it replaces the program's socket, which keeps its descriptor flags.
        ``watch``: for an open, the ``protocol.WATCH_*`` data calls the shim asks about.
        """
        numbers = [fd if isinstance(fd, int) else fd.fileno() for fd in fds]
        return self._answer(result, numbers, errno, watch=watch)

    def use_slave_credentials(self) -> bool:
        """Let the program perform the real call itself."""
        pending = self._take()
        if isinstance(pending, _Trapped):  # the master performs it, as the program
            return pending.deferred.use_slave_credentials()
        reply = protocol.encode_reply(pending.call.raw.seq, protocol.PASSTHROUGH)
        return self._deliver(pending, reply, [])

    def defer(self) -> Deferred | TrappedDeferred:
        """Set the call being served aside, to answer it later from any thread.

        The program's thread keeps waiting for that answer; :meth:`receive` goes on serving
        every other thread and process. Unlike Emilua, a slow answer (a simulated timeout, a
        test that waits for something) need not hold up the whole tree.
        """
        pending = self._take()
        if isinstance(pending, _Trapped):
            return pending.deferred
        return Deferred(pending)

    def _served(self) -> _Pending | _Trapped:
        pending = self._current
        if pending is None:
            raise RuntimeError("no call is being served: call receive() first")
        return pending

    def _take(self) -> _Pending | _Trapped:
        pending = self._served()
        self._current = None
        return pending

    def _answer(
        self,
        result: Any,
        fds: Sequence[int],
        errno: int | OSError,
        canonical: str | None = None,
        watch: int = 0,
    ) -> bool:
        error = errno if type(errno) is int and errno >= 0 else errno_number(errno)
        pending = self._served()
        if isinstance(pending, _Trapped):  # written into the program, or a descriptor placed
            self._current = None
            if fds:
                return pending.deferred.send_with_fds(result, fds, error)
            return pending.deferred.send(result, error)
        reply = encode_answer(pending.call, result, fds, error, canonical, watch)  # may raise
        self._current = None
        return self._deliver(pending, reply, fds)

    def _deliver(self, pending: _Pending, reply: bytes, fds: Sequence[int]) -> bool:
        if _send_reply(pending, reply, fds):
            return True
        self._drop(pending.connection)  # the program went away while we were deciding
        return False

    def _send_quietly(
        self, connection: _Connection, message: bytes, fds: Sequence[int] = ()
    ) -> None:
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        with contextlib.suppress(OSError):  # a program that is gone needs no answer
            connection.sock.sendmsg([message], ancillary)


def _master_trouble(error: OSError) -> str:
    """What an OSError of the master's own while it welcomed a program means."""
    if error.errno in (_errno.EMFILE, _errno.ENFILE):
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        return f"the master ran out of file descriptors (ulimit -n is {soft})"
    return f"the master failed: {error}"


class _ProcessName(NamedTuple):
    pid: int
    exe: str


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _send_reply(pending: _Pending, reply: bytes, fds: Sequence[int]) -> bool:
    """Send a reply on the call's connection; False if the program is gone (or its connection
    was dropped: a closed socket object fails with EBADF)."""
    if pending.fds:
        pending.close_fds()
    sock = pending.connection.sock
    try:
        if fds:
            rights = array.array("i", fds)
            sock.sendmsg([reply], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
        else:
            sock.send(reply)
    except OSError:
        return False
    return True


class Deferred:
    """A call set aside by :meth:`LibcService.defer`, answered once, from any thread."""

    def __init__(self, pending: _Pending) -> None:
        self._pending: _Pending | None = pending
        self.call = pending.call
        self._lock = threading.Lock()

    def send(
        self, result: Any, errno: int | OSError = 0, *, canonical_name: str | None = None
    ) -> bool:
        """As :meth:`LibcService.send`."""
        reply = encode_answer(self.call, result, [], errno_number(errno), canonical_name)
        return self._finish(reply, [])

    def send_with_fds(
        self, result: Any, fds: Sequence[int | Any], errno: int | OSError = 0, *, watch: int = 0
    ) -> bool:
        """As :meth:`LibcService.send_with_fds`."""
        numbers = [fd if isinstance(fd, int) else fd.fileno() for fd in fds]
        reply = encode_answer(self.call, result, numbers, errno_number(errno), None, watch)
        return self._finish(reply, numbers)

    def use_slave_credentials(self) -> bool:
        """As :meth:`LibcService.use_slave_credentials`."""
        return self._finish(protocol.encode_reply(self.call.raw.seq, protocol.PASSTHROUGH), [])

    def _finish(self, reply: bytes, fds: list[int]) -> bool:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            raise RuntimeError(f"{self.call.describe()} was answered already")
        return _send_reply(pending, reply, fds)


def _check_prefix(prefix: str) -> str:
    text = os.fspath(prefix)
    if not text.startswith("/"):
        raise ValueError(f"passthrough prefix {text!r} must be an absolute path")
    return text.rstrip("/") or "/"


def _received_fds(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    fds: list[int] = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            numbers = array.array("i")
            numbers.frombytes(data[: len(data) - len(data) % numbers.itemsize])
            fds.extend(numbers)
    return fds
