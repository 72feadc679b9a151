"""Sandbox: real programs in a fake world, answered from the models.

    with Sandbox() as sb:
        sb.fs.create_file("/etc/app.conf", contents="port = 8080\\n")
        sb.fail("open", "/var/log/app.log", errno.EACCES)
        result = sb.run(["/usr/bin/cat", "/etc/app.conf"], capture_output=True, text=True)
        assert result.stdout == "port = 8080\\n"
        assert not sb.violations

A Sandbox owns a :class:`~libcfake.LibcService` served by a background thread. Each call a
program forwards goes, in order, through the fault rules (``sb.fail``), the host routes (read-only
mounts, devices, /proc), and the filesystem model; every call is journaled (``sb.journal``), and a
call nothing covers is answered with an error and recorded as a violation (``sb.violations``).
connect and bind go to the network model (``sb.net``), which connects or binds the program's own
socket on loopback, or refuses it.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import posixpath
import re
import resource
import stat
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any, NamedTuple

from pyfakefs.fake_file import FakeDirectory, FakeFile
from pyfakefs.fake_filesystem import FakeFilesystem

from . import _realos
from ._fifos import Fifos, Later
from ._nameserver import ADDRESS as NAMESERVER_ADDRESS
from ._nameserver import RESOLV_CONF, NameServer
from ._pythonpaths import python_mounts
from ._shadow import ShadowTree
from .calls import Call, access_mode_names, open_flag_names
from .dns import HOST_NOT_FOUND, Answer, Dns, Hints, LookupRefused
from .errors import ProtocolError, ViolationError
from .faults import FaultRule, calls_named
from .fs import DEFAULT_MOUNTS, DEVICES, Caller, CallerView, FileSystem, lstat_records
from .gai import GAI_ERRORS
from .journal import Journal, JournalEntry, Violation, describe_error, format_report
from .net import NETWORK_CALLS, NetFaultRule, Network, NetworkViolation, Replacement, SocketRequest
from .protocol import (
    FD_DIR1,
    FD_DIR2,
    FD_FILE,
    FD_SOCKET,
    NOTED_FUNCTIONS,
    NOTED_OPENS,
    Note,
    Notes,
    PackedStat,
    ProcessInfo,
)
from .service import Deferred, LibcService, ServiceError
from .snapshot import COMPLETE, LISTED, Snapshot
from .stat import FILE_TYPES

_TYPE_NAMES = {bits: name for name, bits in FILE_TYPES.items()}
#: The calls after whose second one in a directory the master publishes it: stats of its
#: entries by name. Not fstat: a program that fstats the file it opened (cp -r, after creating
#: the last one, which emptied the snapshot) is not about to stat its neighbours.
_STATS_OF_ENTRIES = NOTED_FUNCTIONS - {"fstat"}
#: A program's own descriptors, reopened (any mode), in their one spelling (see _reduce; /dev/stdin,
#: /dev/fd/3 and /proc/<its pid>/fd/3 are spelled so): in the process's descriptor table
#: (the main thread's), or in the calling thread's.
_OWN_DESCRIPTOR = re.compile(r"/proc/(self|thread-self)/fd/(\d+)")
#: /proc entries that lead to other files of the host: any path through one is refused.
_MAGIC_LINK = re.compile(r"^/proc/(.+/)?((root|cwd|exe|map_files)|fd/\d+)(/|$)")
#: /proc/<pid> and what is under it (in the one spelling): only the sandbox's own processes may
#: be looked at there.
_PROC_OTHER = re.compile(r"/proc/(\d+)(?=/|$)")
#: The spellings _reduce gives one: a process's own /proc directory, its threads', and the
#: /dev links into /proc/self/fd.
_PROC_PID = re.compile(r"/proc/(\d+|self)(?:/task/(\d+))?(?=/|$)")
_DEV_FD = re.compile(r"/dev/(?:fd(?=/|$)|std(in|out|err)(?=/|$))")
_STD_FD = {"in": "/0", "out": "/1", "err": "/2"}
_UTIME_NOW = (1 << 30) - 1
_UTIME_OMIT = (1 << 30) - 2
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_SYMLINK_NOFOLLOW = 0x100  # the flags of chmod, chown and utimens as the shim sends them
_AT_SYMLINK_FOLLOW = 0x400  # of link
#: The calls on a descriptor (its file comes as FD_FILE): the model's files are answered by the
#: model, changes to a host file are refused (see _file_call).
_FILE_CALLS = frozenset(
    {"fstat", "fchmod", "fchown", "futimens", "fsetxattr", "fremovexattr", "fsioctl"}
)


class _Passthrough:
    """Answer: let the program make the real call."""


PASSTHROUGH = _Passthrough()


class _Descriptor:
    """Answer: this descriptor (closed after sending) is what the program gets."""

    def __init__(self, fd: int) -> None:
        self.fd = fd


class _Refused(Exception):
    """A call no model covers: answered with ``error`` and recorded as a violation."""

    def __init__(self, error: int | str, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason


class Sandbox:
    """Runs programs behind the shim, answering their calls from the models.

    Host paths are visible read-only at the same path ("mounts"): ``base_mounts`` (by default
    :data:`~libcfake.fs.DEFAULT_MOUNTS` and the running interpreter's own paths: its
    ``sys.path``, the source trees of editable installs, a pyenv/asdf root) and the ``mounts``
    added to them. Pass ``base_mounts=()`` to see only ``mounts``.
    ``cwd`` is the virtual directory programs start in; ``reply_timeout`` bounds each answer;
    ``fake_filesystem`` makes an existing pyfakefs filesystem (pyfakefs's ``fs`` fixture) the
    one programs see; ``violation_errno`` replaces the errno every violation is answered with
    (by default each says what it is: EROFS, ECONNREFUSED, EACCES...). With ``strict``, leaving
    the ``with`` block raises :class:`~libcfake.ViolationError` if programs made calls nothing
    covered (what the pytest fixture does by default); :meth:`check` does it at any time.
    """

    def __init__(
        self,
        *,
        mounts: Iterable[str] = (),
        base_mounts: Iterable[str] | None = None,
        cwd: str = "/",
        reply_timeout: float = 30.0,
        fake_filesystem: FakeFilesystem | None = None,
        violation_errno: int | None = None,
        strict: bool = False,
    ) -> None:
        if isinstance(mounts, str) or isinstance(base_mounts, str):
            raise TypeError("mounts and base_mounts are lists of paths, not one path")
        if base_mounts is None:
            base_mounts = (*DEFAULT_MOUNTS, *python_mounts())
        # parents first: a mount inside another one is already visible through it
        every_mount = sorted(dict.fromkeys((*base_mounts, *mounts)), key=_depth)
        self.fs = FileSystem(every_mount, fake=fake_filesystem)
        self.strict = strict
        self.violation_errno = violation_errno
        self.dns = Dns()
        self.cwd = cwd
        self._journal = Journal()  # JournalEntry, or (process, notes) until sb.journal is read
        self._notes_waiting = 0
        self.violations: list[Violation] = []
        self._faults: list[FaultRule] = []
        self.net = Network(self.dns, self.fs, self._faults)
        # DNS on the wire, for resolvers that do their own lookups (dig, Go, musl, c-ares...)
        self._nameserver = NameServer(self.dns, self._refused_query)
        self.net.route_nameserver(NAMESERVER_ADDRESS, self._nameserver.endpoint)
        self._resolv_conf_checked = False  # see _enter
        self._shadow = ShadowTree()
        # Programs that drop to another user must be able to enter their shadow directories
        # again with fchdir, which the kernel checks (find returns to where it started): the
        # tree's root may be searched by all, not listed (the shadows below it are 0755).
        os.chmod(self._shadow.root, 0o711)
        self._callers: dict[tuple[int, int], Caller] = {}  # (euid, egid) -> Caller, default umask
        self._views: dict[tuple[int, int], CallerView] = {}  # the same ids -> the model as theirs
        probe = os.memfd_create("libcfake-probe", os.MFD_CLOEXEC)
        memfd_device = os.fstat(probe).st_dev
        os.close(probe)
        devices = [memfd_device]
        self._memfd_device = memfd_device
        self._fifos = Fifos()  # the real FIFOs behind the model's
        if self._shadow.device not in {os.stat(m).st_dev for m in self.fs.mounts}:
            devices.append(self._shadow.device)
        # A test sharing pyfakefs's filesystem may change it behind the model's back: no snapshot.
        self._snapshot = Snapshot(self._shadow.root) if fake_filesystem is None else None
        self._published: set[str] = set()  # directories published since the snapshot was emptied
        self._stats_in: dict[str, int] = {}  # stats the master answered per directory, since then
        self.fs.on_change = self._unpublish
        self._service = LibcService(
            reply_timeout=reply_timeout,
            passthrough=self.fs.mounts,
            file_devices=devices,
            snapshot=self._snapshot,
            on_note=self._noted,
            on_error=self._service_error,
        )
        self._record_lock = threading.Lock()
        self._protocol_errors: list[str] = []
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="libcfake-master", daemon=True)
        self._thread.start()

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        self.close()
        if self.strict and kind is None:
            self.check()

    def check(self) -> None:
        """Raise :class:`~libcfake.ViolationError` if programs made calls nothing covered."""
        violations = list(self.violations)
        if violations:
            raise ViolationError(format_report(violations), violations)

    def close(self) -> None:
        """Stop serving and release the memfds and shadow directories."""
        if self._closed:
            return
        self._closed = True
        self._service.stop()
        self._thread.join()
        self._fifos.close()
        self._service.close()
        if self._snapshot is not None:
            self._snapshot.close()
        self.net.close()
        self._nameserver.close()
        self.fs.close()
        self._shadow.close()

    @property
    def journal(self) -> Journal:
        """Every call programs made, in order (the calls answered from the snapshot included)."""
        self._catch_up()
        with self._record_lock:
            if self._notes_waiting:  # made into entries here, off the master's busy path
                entries: list[JournalEntry] = []
                for item in self._journal:
                    if isinstance(item, tuple):
                        process, notes = item
                        entries.extend(_noted_entry(process, note) for note in notes)
                    else:
                        entries.append(item)
                self._journal[:] = entries
                self._notes_waiting = 0
        return self._journal

    @property
    def protocol_errors(self) -> list[str]:
        """What was wrong with each message the master could not read (its connection was
        closed, so the program saw EIO)."""
        self._catch_up()  # the program may see its connection closed before the line is kept
        return self._protocol_errors

    def _catch_up(self) -> None:
        """Wait until the master has read everything programs sent before now (notes included)."""
        if not self._closed and threading.current_thread() is not self._thread:
            self._service.drain()

    # -- running programs ------------------------------------------------------------------

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment that runs a program behind this sandbox's shim."""
        env = self._service.environment(base)
        env["PWD"] = self.cwd
        return env

    def popen(
        self,
        args: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        **kwargs: Any,
    ) -> subprocess.Popen[Any]:
        """Start a program in the sandbox; ``cwd`` is a virtual directory. Popen's arguments."""
        real_cwd = self._enter(cwd or self.cwd)
        self._find_program(args, cwd or self.cwd, kwargs)
        return _realos.Popen(args, env=self.environment(env), cwd=real_cwd, **kwargs)

    def run(
        self,
        args: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess[Any]:
        """Run a program in the sandbox to completion; ``subprocess.run``'s arguments."""
        real_cwd = self._enter(cwd or self.cwd)
        self._find_program(args, cwd or self.cwd, kwargs)
        return _realos.run(args, env=self.environment(env), cwd=real_cwd, **kwargs)

    async def create_subprocess_exec(
        self,
        program: str | os.PathLike[str],
        *args: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        **kwargs: Any,
    ) -> asyncio.subprocess.Process:
        """``asyncio.create_subprocess_exec`` for a program in the sandbox (asyncio tests)."""
        real_cwd = self._enter(cwd or self.cwd)
        self._find_program([program], cwd or self.cwd, kwargs)
        return await asyncio.create_subprocess_exec(
            program, *args, env=self.environment(env), cwd=real_cwd, **kwargs
        )

    def _find_program(
        self, args: Sequence[str | os.PathLike[str]], cwd: str, kwargs: dict[str, Any]
    ) -> None:
        """Make a relative program path (``./hello.sh``) mean the virtual cwd's file.

        The first exec happens in the test's own process, before the shim is loaded, relative
        to the real working directory (a shadow directory). A program in a host mount is the
        host file at the same path; ``executable=`` names it, argv[0] stays as given."""
        if not args or "executable" in kwargs:
            return
        program = os.fsdecode(args[0])
        if "/" not in program or program.startswith("/"):
            return
        virtual = posixpath.normpath(posixpath.join(cwd, program))
        if self.fs.mount_of(virtual) is not None:
            kwargs["executable"] = virtual

    def _enter(self, virtual: str) -> str:
        if not self._resolv_conf_checked:  # the first program: name the model's nameserver,
            self._resolv_conf_checked = True  # unless the test wrote a resolv.conf of its own
            if not self.fs.exists("/etc/resolv.conf"):
                self.fs.create_file("/etc/resolv.conf", contents=RESOLV_CONF)
        with self.fs.lock:
            if self.fs.edited_directly:  # pyfakefs was handed out: a change may have gone unheard
                self._unpublish()
            obj, canonical = self.fs.lookup(virtual)
            if not isinstance(obj, FakeDirectory):
                raise NotADirectoryError(errno.ENOTDIR, "cwd is not a virtual directory", virtual)
            return self._shadow.ensure(canonical)

    # -- faults ----------------------------------------------------------------------------

    def fail(
        self,
        call: str,
        pattern: str = "*",
        error: int | OSError | str = errno.EIO,
        *,
        nth: int | None = None,
        times: int | None = None,
        delay: float = 0.0,
    ) -> FaultRule:
        """Make calls named ``call`` on subjects matching ``pattern`` fail with ``error``.

        ``call`` is a call name ("open", "stat", "mkdir", "getaddrinfo", ...; "open" covers
        openat too); ``pattern`` a glob on the virtual path (or host name); ``error`` an errno,
        an OSError, or for getaddrinfo one of the seed's error names ("again", "noname", ...).
        """
        if isinstance(error, OSError):
            if error.errno is None:
                raise ValueError(f"{error!r} carries no errno")
            error = error.errno
        if isinstance(error, str) and error not in GAI_ERRORS:
            raise ValueError(f"unknown error name {error!r}; one of {', '.join(GAI_ERRORS)}")
        rule: FaultRule
        if calls_named(call) & NETWORK_CALLS:  # "api.test:80" names the host, as programs do
            rule = NetFaultRule(
                call, pattern, error, nth=nth, times=times, delay=delay, dns=self.dns
            )
        else:
            rule = FaultRule(call, pattern, error, nth=nth, times=times, delay=delay)
        with self.fs.lock:
            self._faults.append(rule)
            if rule.calls & (NOTED_FUNCTIONS | NOTED_OPENS):
                self._unpublish()  # those calls must reach the rule
        return rule

    def unused_rules(self) -> list[str]:
        """The fault rules that never fired and the routes no connection used, as written on the
        Sandbox (``fail('open', '/etc/x', errno.EACCES)``, ``net.route ...``): each
        is most likely a mistake in the test (a path or host name that programs do not use).
        The pytest plugin reports them at the end of each test."""
        self._catch_up()
        with self.fs.lock:
            rules = [str(rule) for rule in self._faults if not rule.fired]
            rules += [f"dns.{rule}" for rule in self.dns.faults if not rule.fired]
        routes = self.net.unused_routes()
        if routes:  # a connection a fault refused tried its route: read the journal only then
            routes = self.net.unused_routes(self.journal.connections())
        return rules + [f"net.{route}" for route in routes]

    def missing_host_paths(self) -> list[str]:
        """Paths programs looked for and did not find (ENOENT) that exist on the host, outside
        every mount: most likely a file the test meant to give them (``mounts=[...]``,
        ``sb.fs.add_real_file``). The pytest plugin lists them when a test fails."""
        return [
            path
            for path in self.journal.files_missing()
            if path.startswith("/")
            and self.fs.mount_of(path) is None
            and not path.startswith(("/proc/", "/dev/", "/sys/"))
            and os.path.lexists(path)
        ]

    # -- serving ---------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            try:
                self._service.serve(self._answer)
                return  # stopped by close()
            except ProtocolError as error:  # one program's garbage: record it, serve the rest
                with self._record_lock:
                    self._protocol_errors.append(str(error))
            except Exception as error:  # a bug of ours: fail the test, never stop serving
                self._service_error(ServiceError("serve", 0, "", f"internal error: {error!r}"))

    def _service_error(self, error: ServiceError) -> None:
        """The master refused or closed a connection (see LibcService.errors): a violation."""
        with self._record_lock:
            self.violations.append(
                Violation(error.pid, error.exe, error.stage, error.stage, (),
                          "closed" if error.stage == "receive" else "refused", error.message)
            )  # fmt: skip

    def _answer(self, svc: LibcService) -> None:
        call = svc.call
        fds = svc.descriptors()
        subject: str | None = None
        fault = violation = False
        outcome: Any = None
        delay = 0.0  # of the fault rule that answers this call, if one does
        try:
            subject = self._subject(call, fds)
            outcome, delay = self._fault(call, subject)
            fault = outcome is not None
            if outcome is None:
                with self.fs.lock:
                    if call.changes_filesystem:
                        self._unpublish()  # before the change can be seen
                    outcome = self._dispatch(call, subject, fds)
                    if call.function in _STATS_OF_ENTRIES and subject is not None:
                        self._publish_parent(subject)
        except _Refused as refused:
            violation = True
            outcome = refused
        except OSError as error:
            outcome = error
            if error.errno in (errno.EMFILE, errno.ENFILE):  # the master's own, not the model's
                violation = True
                outcome = _Refused(error.errno, self._out_of_descriptors())
        except Exception as error:  # a bug of ours: fail the call and the test, keep serving
            violation = True
            outcome = _Refused(errno.EIO, f"libcfake internal error: {error!r}")
        finally:
            for fd in fds:
                os.close(fd)
        reason = outcome.reason if isinstance(outcome, _Refused) else None
        if isinstance(outcome, _Refused):
            outcome = outcome.error
            if isinstance(outcome, int) and self.violation_errno is not None:
                outcome = self.violation_errno
            if isinstance(outcome, int):
                outcome = OSError(outcome, os.strerror(outcome))
        answer, code = _describe(outcome)
        entry = JournalEntry.deferred(
            call,  # whose arguments are made when someone reads them: most entries never are
            pid=call.process.pid,
            tid=call.process.tid,
            exe=call.process.exe,
            call=call.function,
            symbol=call.raw.symbol,
            path=subject,
            answer=answer,
            errno=code,
            fault=fault,
            violation=violation,
        )
        with self._record_lock:  # recorded before the program can see the answer
            self._journal.append(entry)
            if reason is not None:
                self.violations.append(
                    Violation(entry.pid, entry.exe, entry.call, entry.symbol, entry.arguments,
                              answer, reason, path=subject)
                )  # fmt: skip
        if delay > 0:  # answer later; the master goes on serving everyone else
            timer = threading.Timer(delay, _deliver, (svc.defer(), outcome))
            timer.daemon = True
            timer.start()
        elif isinstance(outcome, Later):  # (a FIFO's open waiting for its other end)
            outcome.start(svc.defer(), _deliver)
        else:
            _deliver(svc, outcome)

    def _refused_query(self, name: str, reason: str) -> None:
        """A query to the nameserver for a name in no zone of the model: a violation."""
        violation = Violation(0, "(a resolver of its own)", "res_query", "DNS query", (name,),
                              "REFUSED", reason, path=name)  # fmt: skip
        with self._record_lock:
            self.violations.append(violation)

    def _out_of_descriptors(self) -> str:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        return (
            f"the master ran out of file descriptors (ulimit -n is {soft}): it holds one for "
            f"each virtual file programs have opened ({self.fs.memfd_count} now)"
        )

    def _fault(self, call: Call, subject: str | None) -> tuple[Any, float]:
        """The outcome a fault rule gives the call (None: no rule), and the rule's delay."""
        for rule in (*self._faults, *self.dns.faults):
            if rule.applies(call.function, subject):
                if isinstance(rule.error, str):
                    outcome: Any = (
                        rule.error if call.function == "getaddrinfo" else OSError(errno.EIO, "")
                    )
                elif call.function == "getaddrinfo":
                    outcome = "system"
                else:
                    outcome = OSError(rule.error, os.strerror(rule.error))
                return outcome, rule.delay
        return None, 0.0

    # -- the metadata snapshot --------------------------------------------------------------

    def _publish(self, directory: str, obj: FakeDirectory, *, listed: bool = False) -> None:
        """Publish a directory (canonical path) and its entries in the snapshot: a program that
        lists a directory, or stats its entries, will most likely stat the others next (ls -l,
        find, cp -r, git status ...). ``listed``: its shadow directory was synced with its
        entries just now, so the shim may also open it for the next programs (ls -lR, find).

        A directory all of whose entries are published is marked complete, so that the shim
        answers ENOENT for the names it lacks (git, shells and config readers probe many), and
        opens too: then only while no fault rule on open exists, as for ``listed``."""
        snapshot = self._snapshot
        if snapshot is None:
            return
        opens_faulted = any(rule.calls & NOTED_OPENS for rule in self._faults)
        if directory not in self._published:
            self._published.add(directory)
            if self._put(snapshot, directory, obj) and not opens_faulted:
                snapshot.mark(directory, COMPLETE)
        if listed and not opens_faulted:
            snapshot.mark(directory, LISTED)  # (unless it is not published)

    def _put(self, snapshot: Snapshot, directory: str, obj: FakeDirectory) -> bool:
        """Put a directory and its entries in the snapshot, unless it is not to be published.
        Whether every entry is in."""
        if any(rule.calls & NOTED_FUNCTIONS for rule in self._faults) or self._route(directory):
            return False
        # the shim answers for any caller: every directory on the way must be searchable by all
        node: FakeDirectory | None = obj  # the directory is canonical: its parents are the way
        while node is not None:
            if node.stat_result.st_mode & 0o111 != 0o111:
                return False
            node = node.parent_dir() if node.parent_dir is not None else None
        prefix = directory.rstrip("/") + "/"
        # a file a program may write is only named (its memfd's size and times change unseen)
        changes_unseen = self.fs.changes_unseen
        entries: list[tuple[str, FakeFile | None]] = [(directory, obj)]
        entries += [(prefix + name, None if changes_unseen(child) else child)
                    for name, child in obj.entries.items()]  # fmt: skip
        special = prefix in _special_parents(self.fs.mounts)  # mounts, devices, /proc: the host's
        if special:
            entries = [(path, entry) for path, entry in entries if self._route(path) is None]
        # one batch (when full, until the next change): complete if every name is in
        return snapshot.put_many(lstat_records(entries)) and not special

    def _unpublish(self) -> None:
        """Empty the snapshot; call with ``fs.lock`` held, before a change becomes visible."""
        self.fs.model_changed()
        if self._snapshot is not None:
            self._snapshot.clear()
            self._published.clear()
            self._stats_in.clear()

    def _publish_parent(self, path: str) -> None:
        """After the master answered a stat-like call: publish the directory the path is in, from
        its second such stat on. Publishing costs the whole directory; a program that creates a
        file (which empties the snapshot) and stats one (cp -r) would pay it for every file."""
        parent = posixpath.dirname(path.rstrip("/")) or "/"
        if parent in self._published:  # (most calls: the lookup below costs more than the rest)
            return
        seen = self._stats_in[parent] = self._stats_in.get(parent, 0) + 1
        if seen < 2:
            return
        try:
            directory, canonical = self.fs.lookup(parent)
        except OSError:
            return
        if isinstance(directory, FakeDirectory):
            self._publish(canonical, directory)

    def _reopened_for_writing(self, call: Call, path: str) -> None:
        """A program reopens one of its own descriptors (/dev/fd/N, /proc/self/fd/N, /dev/stdout)
        for writing. If that is the memfd of a file it opened read-only (or O_PATH), the model's
        permissions decide, as the kernel's would for a real file; if they let it, it may now
        change the file unseen: the file is published no more. (The snapshot was emptied before
        this call, as before any call that may write.)"""
        table = _descriptor_entry(call.process, path)
        if table is None:
            return
        try:
            info = os.stat(table)
        except OSError:
            return  # no such descriptor (now): the program's open fails
        file = self.fs.file_of_descriptor(info)
        if file is not None:  # the kernel checks the memfd's mode (0777): the model's counts
            self.fs.check(file, self._caller(call), os.W_OK, path)
            self.fs.written_unseen(file)

    def _noted(self, process: ProcessInfo, notes: Notes) -> None:
        """Journal calls the shim answered from the snapshot (their entries are made when read)."""
        with self._record_lock:
            self._journal.append((process, notes))  # type: ignore[arg-type]
            self._notes_waiting += 1

    # -- paths -----------------------------------------------------------------------------

    def _subject(self, call: Call, fds: list[int]) -> str | None:
        """What fault patterns and the journal name the call by: its resolved virtual path."""
        function = call.function
        if function == "getaddrinfo":
            return os.fsdecode(call.raw.string1) if call.raw.string1 is not None else None
        if function == "getnameinfo":
            return str(call.raw.ip_address())
        if function == "res_query":
            return os.fsdecode(call.raw.string1 or b"")
        if function.startswith(("connect_inet", "bind_inet")):
            return f"{call.raw.ip_address()}:{call.raw.port}"
        if function in ("connect_unix", "bind_unix"):
            name = call.raw.string1 or b""
            return "@" + os.fsdecode(name[1:]) if name.startswith(b"\0") else os.fsdecode(name)
        if function in _FILE_CALLS:
            return self._fd_path(self._fd(call, fds, FD_FILE))
        if function == "getcwd":
            real = os.fsdecode(call.raw.string1 or b"/")
            return self._shadow.virtual_path(real) or real
        if function == "symlink":  # a symlink lives where its link path is; its target is text
            return self._second_path(call, fds)
        base = self._fd_path(self._fd(call, fds, FD_DIR1))
        path = self._join(base, call.raw.string1, call.process)
        return path if "/.." not in path else self._dotdot(call, path)

    def _second_path(self, call: Call, fds: list[int]) -> str:
        base = self._fd_path(self._fd(call, fds, FD_DIR2))
        path = self._join(base, call.raw.string2, call.process)
        return path if "/.." not in path else self._dotdot(call, path)

    def _dotdot(self, call: Call, path: str) -> str:
        """A path of the model with its ".." components resolved by the model's walk, as the
        calling program's (the parent of a symlink's target, not of the link), so that fault
        rules and the journal name the file the call reaches: the walk to the last ".." and
        the rest as given. Left as it is when that walk fails (the answer's walk meets the same
        error), when the path ends in ".." (which rmdir, rename and unlink treat specially),
        and on the host's side (mounts, /proc, devices: their own checks resolve it)."""
        if "/.." not in path:
            return path
        names = path.split("/")
        last = (
            max(index for index, name in enumerate(names) if name == "..") if ".." in names else 0
        )
        rest = names[last + 1 :]
        if not last or rest in ([], [""]):
            return path
        prefix = "/".join(names[: last + 1])
        if self._route(prefix) is not None:
            return path
        try:
            with self.fs.lock:
                _, reached = self._view(call, real_ids=call.function == "access").lookup(prefix)
        except OSError:
            return path
        return reached.rstrip("/") + "/" + "/".join(rest)

    def _join(self, base: str | None, raw: bytes | None, process: ProcessInfo | None) -> str:
        """The one spelling of the path a call names (see :func:`_reduce`): ``raw`` from the
        virtual or host path of its directory descriptor, ``base``, a shadow directory's path
        made the virtual path it stands for. Every decision about the call (the fault rules,
        the route, a magic link, the model's answer, the journal) is made on it."""
        text = os.fsdecode(raw or b"")
        if base is not None and not text.startswith("/"):
            text = base + "/" + text if text else base
        if "//" in text or "/./" in text or text.startswith(("/dev/", "/proc/")):
            text = _reduce(text, process)  # (the rest are in their one spelling already)
        translated = self._shadow.virtual_path(text.rstrip("/") or "/")
        if translated is not None:
            text = translated + ("/" if text.endswith("/") and translated != "/" else "")
        return text

    @staticmethod
    def _fd(call: Call, fds: list[int], bit: int) -> int | None:
        if not call.raw.fds & bit:
            return None
        order = [b for b in (FD_DIR1, FD_DIR2, FD_SOCKET, FD_FILE) if call.raw.fds & b]
        return fds[order.index(bit)]

    def _fd_path(self, fd: int | None) -> str | None:
        """The virtual path of a directory or file descriptor the master handed out."""
        if fd is None:
            return None
        info = os.fstat(fd)
        if info.st_dev == self._shadow.device:
            virtual = self._shadow.virtual_of_inode(info.st_ino)
            if virtual is not None:
                return virtual
        file = self.fs.file_of_memfd(info.st_ino) if info.st_dev == self._memfd_device else None
        if file is not None:
            return self.fs.path_of(file)
        return os.readlink(f"/proc/self/fd/{fd}")  # a host directory, e.g. under a mount

    # -- the models --------------------------------------------------------------------------

    def _caller(self, call: Call, with_umask: bool = False, real_ids: bool = False) -> Caller:
        """Whose permissions the call has: the process's effective ids, or its ``real_ids``
        (access); ``with_umask`` for calls that create something."""
        process = call.process
        if with_umask:
            return Caller(process.euid, process.egid, _umask(process.pid))
        ids = (process.uid, process.gid) if real_ids else (process.euid, process.egid)
        caller = self._callers.get(ids)
        if caller is None:  # made once per pair of ids: nearly every call asks
            caller = self._callers[ids] = Caller(*ids)
        return caller

    def _view(self, call: Call, with_umask: bool = False, real_ids: bool = False) -> CallerView:
        """The model as the calling program sees it (:meth:`_caller`'s ids): every ``_fs_*``
        answer walks its paths through this, so the kernel's permission checks on the way
        (search permission on every directory) are made for every call."""
        if with_umask:
            return self.fs.as_caller(self._caller(call, with_umask=True))
        process = call.process
        ids = (process.uid, process.gid) if real_ids else (process.euid, process.egid)
        view = self._views.get(ids)
        if view is None:  # made once per pair of ids: nearly every call asks
            view = self._views[ids] = self.fs.as_caller(self._caller(call, real_ids=real_ids))
        return view

    def _dispatch(self, call: Call, path: str | None, fds: list[int]) -> Any:
        function = call.function
        if function.startswith(("connect_", "bind_")):
            return self._socket_call(call, fds)
        if function == "getaddrinfo":
            return self._getaddrinfo(call)
        if function == "getnameinfo":
            return self.dns.getnameinfo(call.raw.ip_address(), call.raw.flags)
        if function == "res_query":
            return self._res_query(call)
        if function == "getcwd":
            return path if path is not None and path.startswith("/") else PASSTHROUGH
        if function in _FILE_CALLS:
            return self._file_call(call, self._fd(call, fds, FD_FILE))
        if function == "open_by_handle_at":  # any file of a filesystem, the host's included
            raise _Refused(errno.EPERM, "open_by_handle_at: a file handle is no path to decide on")
        if function == "mount":  # mount, umount, umount2, chroot: the host's, not modelled
            raise _Refused(errno.EPERM, f"{call.raw.symbol} changes the host's mounts or root")
        assert path is not None
        if function == "exec":
            if not path.startswith("/"):  # a name the shim's PATH search did not find
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
            _refuse_setuid(call)  # in a mount too: it would run without the shim
        route = self._route(path)  # (a symlink's subject is its link path: see _subject)
        if route is not None:
            kernel = self._kernel_path(call, fds, second=function == "symlink")
            outcome = self._host_call(call, path, route, kernel)
            if outcome is not None:  # None: a symlink leads out of the mount, the model answers
                return outcome
        if call.changes_filesystem:
            self._check_writable(path, function != "symlink" and _follows_last_link(call))
            if function in ("rename", "link"):
                self._check_writable(self._second_path(call, fds), follow=False)
        handler = getattr(self, f"_fs_{function}", None)
        if handler is None:
            raise _Refused(errno.ENOSYS, f"the filesystem model does not answer {function}")
        return handler(call, path, fds)

    def _res_query(self, call: Call) -> Any:
        name, rdclass, rdtype = call.arguments()
        try:
            answer = self.dns.query(name, rdclass, rdtype)
        except LookupRefused as refused:
            raise _Refused(HOST_NOT_FOUND, f"{refused} is in no zone of the DNS model") from None
        if isinstance(answer, int):  # an h_errno
            raise OSError(answer, "no DNS answer")
        return answer

    def _getaddrinfo(self, call: Call) -> Any:
        raw = call.raw
        node = None if raw.string1 is None else os.fsdecode(raw.string1)
        service = None if raw.string2 is None else os.fsdecode(raw.string2)
        hints = Hints(raw.flags, raw.family, raw.socktype, raw.protocol)
        try:
            answer = self.dns.getaddrinfo(node, service, hints)
        except LookupRefused as refused:
            raise _Refused("noname", f"{refused} is in no zone of the DNS model") from None
        return answer

    def _socket_call(self, call: Call, fds: list[int]) -> Any:
        """connect and bind: the network model connects or binds the program's own socket. A
        sendto/sendmsg/sendmmsg with a destination comes as a connect with that symbol."""
        fd = self._fd(call, fds, FD_SOCKET)
        if fd is None:
            raise _Refused(errno.EBADF, f"{call.function} came without the program's socket")
        kind, _, family = call.function.partition("_")
        raw = call.raw
        name = raw.string1 or b""
        destination = (
            (raw.ip_address(), raw.port) if family != "unix"
            else name if name.startswith(b"\0") else self._join(None, name, call.process)
        )  # fmt: skip
        request = SocketRequest(fd, raw.family, raw.socktype, destination,
                                self._caller(call, with_umask=kind == "bind"), raw.protocol,
                                raw.symbol or kind)  # fmt: skip
        try:
            if kind == "bind":
                return self.net.program_bind(request)
            if raw.symbol.startswith("send"):
                outcome = self.net.program_send(request)
            else:
                outcome = self.net.program_connect(request)
        except NetworkViolation as refused:
            raise _Refused(refused.errno, refused.reason) from None
        return _Descriptor(outcome.fd) if isinstance(outcome, Replacement) else outcome

    def _descriptor_target(self, call: Call, path: str) -> str | None:
        """The host file a reopened descriptor (/proc/self/fd/N, /proc/thread-self/fd/N) names,
        if any: in the descriptor table the path names, which the kernel will look in."""
        table = _descriptor_entry(call.process, path)
        if table is None:
            return None
        try:
            target = os.readlink(table)
        except OSError:
            return None
        # pipes, sockets, memfds (the model's files) and anonymous inodes are no host files
        return (
            target if target.startswith("/") and self._shadow.virtual_path(target) is None else None
        )

    def _route(self, path: str) -> str | None:
        """Where a path (in its one spelling, see :func:`_reduce`) lives outside the model:
        "device", "proc" or a mount; None: the model."""
        if path.startswith("/proc/") and "/../" in path + "/":
            return "proc"  # ".." after a magic link is the kernel's to follow: never ours
        norm = path if "/.." not in path else _where(path)
        if norm.startswith(("/dev/", "/proc")):  # devices and /proc are all under these
            norm = _reduce(norm)  # (a path from elsewhere: a descriptor's target, an entry)
            if norm in DEVICES or _OWN_DESCRIPTOR.fullmatch(norm):
                return "device"
            if norm in ("/dev/fd", "/proc") or norm.startswith(("/dev/fd/", "/proc/")):
                return "proc"
        return self.fs.mount_of(norm)

    def _kernel_path(self, call: Call, fds: list[int], second: bool) -> str:
        """The path the kernel resolves if the program makes the call itself (a passthrough):
        its text, from its directory descriptor's real path when relative (a shadow directory's
        is not the virtual one it stands for)."""
        raw = os.fsdecode((call.raw.string2 if second else call.raw.string1) or b"")
        fd = self._fd(call, fds, FD_DIR2 if second else FD_DIR1)
        if raw.startswith("/") or fd is None:
            return raw
        return os.readlink(f"/proc/self/fd/{fd}") + "/" + raw

    def _host_call(self, call: Call, path: str, route: str, kernel: str) -> Any:
        """The outcome of a call whose path (``path``, the program's ``kernel``) is the host's
        (see :meth:`_route`); None: the model answers after all."""
        function = call.function
        writes = call.changes_filesystem
        if route == "device":  # reopening a device or one's own descriptor, in any mode
            if function not in ("open", "openat", "stat", "lstat", "access", "eaccess",
                                "readlink", "realpath"):  # fmt: skip
                raise _Refused(errno.EACCES, f"{function} on the host device {path}")
            target = self._descriptor_target(call, _where(path))
            if target is not None and writes:
                mount = self._route(target)
                if mount not in (None, "device"):
                    raise _Refused(errno.EROFS, f"{path} reopens {target}, in the host's {mount}")
            if writes:
                self._reopened_for_writing(call, _where(path))
            return PASSTHROUGH
        if route == "proc":
            if "/../" in path + "/" or _MAGIC_LINK.search(_where(path)):
                raise _Refused(errno.EACCES, f"{path} leads through a /proc magic link to the host")
            other = _PROC_OTHER.match(_where(path))
            if other is not None and not self._service.serves(int(other.group(1))):
                outside = f"pid {other.group(1)} is not a program of this sandbox"
                raise _Refused(errno.EACCES, f"{path}: {outside} (the test's, or another's)")
            if writes:
                raise _Refused(errno.EACCES, "writing under /proc is not modelled")
            return PASSTHROUGH
        if writes:  # the path's own errors come first, as the kernel resolves it before
            self._view(call).parent(path)  # it asks the mount (ENOENT, ENOTDIR, EACCES...)
            raise _Refused(errno.EROFS, f"{function} writes under the read-only host mount {route}")
        real = self._host_realpath(call, kernel)  # where the kernel would really go
        if any(real == m or real.startswith(m.rstrip("/") + "/") for m in self.fs.real_mounts):
            return PASSTHROUGH
        # A symlink inside the mount leads out of every mount (/usr/lib/ssl/private ->
        # /etc/ssl/private): the kernel must not follow it to the host. The model answers
        # instead, where the mount's symlinks are symlinks too and their targets are the model's
        # (usually ENOENT). Running a program found that way is refused.
        if function == "exec" and self._shadow.virtual_path(kernel) is not None:
            raise _Refused(errno.EACCES, f"running {path} by a path relative to a virtual "
                           f"directory: the kernel would look in its shadow, {kernel}")  # fmt: skip
        if function == "exec":
            raise _Refused(errno.EACCES, f"{path} leads out of the host mount {route} to {real}")
        return None

    @staticmethod
    def _host_realpath(call: Call, path: str) -> str:
        """Where a host path really leads; the last component is kept when the call does not
        follow it (lstat, readlink, O_NOFOLLOW)."""
        function = call.function
        nofollow = function in ("lstat", "readlink") or (
            function in ("open", "openat") and bool(call.raw.flags & os.O_NOFOLLOW)
        )
        parent, name = posixpath.split(path)
        if not nofollow or name in ("", ".", ".."):
            return os.path.realpath(path)
        return posixpath.join(os.path.realpath(parent or "/"), name)

    # each _fs_NAME answers the call NAME on a path of the model

    def _fs_open(self, call: Call, path: str, fds: list[int]) -> Any:
        flags = call.raw.flags
        view = self._view(call)
        fs = self.fs
        if flags & os.O_CREAT and flags & os.O_DIRECTORY:  # O_TMPFILE holds O_DIRECTORY too
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)  # as Linux since 6.4
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            return self._tmpfile(path, flags, view)
        found, canonical, directory = view.locate(path, follow=_follows_last_link(call))
        if found is None:
            if not flags & os.O_CREAT:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
            if path.endswith("/"):  # a name to create a file by, with a slash after it
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
            # at the canonical path: the end of a dangling symlink, as the kernel creates it
            obj = self._view(call, with_umask=True).create(directory, canonical, call.raw.mode)
        elif flags & os.O_CREAT and flags & os.O_EXCL:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
        else:
            obj = found
        mode = obj.stat_result.st_mode  # not obj.st_mode: see the note in libcfake.fs
        if stat.S_ISLNK(mode):
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
        accmode = flags & os.O_ACCMODE
        if isinstance(obj, FakeDirectory):
            if flags & os.O_PATH:  # names the directory, lists nothing: no access checked
                return _Descriptor(self._shadow.open(canonical, None, path_only=True))
            if accmode != os.O_RDONLY or flags & os.O_TRUNC:
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
            view.check(obj, os.R_OK, path)
            descriptor = _Descriptor(self._shadow.open(canonical, _entries(obj)))
            self._publish(canonical, obj, listed=True)
            return descriptor
        if flags & os.O_DIRECTORY:
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        if stat.S_ISFIFO(mode):
            return self._open_fifo(obj, flags, view, path)
        if not stat.S_ISREG(mode):
            raise _Refused(errno.ENXIO, "opening fifos, sockets and devices of the model")
        if flags & os.O_PATH:  # names the file, reads and writes nothing: no access checked
            memfd = fs.memfd(obj, writable=False)
            return _Descriptor(os.open(f"/proc/self/fd/{memfd}", os.O_PATH | os.O_CLOEXEC))
        want = {os.O_RDONLY: os.R_OK, os.O_WRONLY: os.W_OK}.get(accmode, os.R_OK | os.W_OK)
        if flags & os.O_TRUNC:  # Linux truncates with O_RDONLY too, if the caller may write
            want |= os.W_OK
        if found is not None:  # a file the call created may be written, whatever its mode
            view.check(obj, want, path)
        memfd = fs.memfd(obj, writable=accmode != os.O_RDONLY)  # (read-only: still published)
        if flags & os.O_TRUNC:
            os.ftruncate(memfd, 0)
        reopen = accmode | (flags & os.O_APPEND) | os.O_CLOEXEC
        return _Descriptor(os.open(f"/proc/self/fd/{memfd}", reopen))

    _fs_openat = _fs_open

    def _open_fifo(self, obj: FakeFile, flags: int, view: CallerView, path: str) -> Any:
        """A FIFO of the model: a descriptor of the real FIFO behind it (see libcfake._fifos)."""
        if flags & os.O_PATH:
            real = self._fifos.real_path(obj)
            return _Descriptor(os.open(real, os.O_PATH | os.O_CLOEXEC))
        accmode = flags & os.O_ACCMODE
        want = {os.O_RDONLY: os.R_OK, os.O_WRONLY: os.W_OK}.get(accmode, os.R_OK | os.W_OK)
        view.check(obj, want, path)
        return self._fifos.open(obj, flags, _Descriptor)

    def _tmpfile(self, path: str, flags: int, view: CallerView) -> _Descriptor:
        """O_TMPFILE: an unnamed file in a directory; here, a fresh memfd of no name."""
        directory = view.resolve(path)
        if not isinstance(directory, FakeDirectory):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        if flags & os.O_ACCMODE not in (os.O_WRONLY, os.O_RDWR):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
        view.may_change(directory, path)
        return _Descriptor(os.memfd_create("libcfake-tmpfile", os.MFD_CLOEXEC))

    def _check_writable(self, path: str, follow: bool) -> None:
        """Refuse (EROFS, a violation) a change to a path that resolves into the host's files;
        ``follow``: the change is made where a symlink at its end leads, not to the link."""
        canonical = self.fs.canonical(path, follow)
        protection = self.fs.protection_of(canonical)
        if protection is not None:
            where = path if canonical == path else f"{path} leads to {canonical}, which"
            raise _Refused(errno.EROFS, f"{where} is in {protection}")

    def _fs_stat(self, call: Call, path: str, fds: list[int]) -> PackedStat:
        follow = call.function != "lstat"
        return self.fs.packed_stat(self._view(call).resolve(path, follow))

    _fs_lstat = _fs_stat

    def _fs_access(self, call: Call, path: str, fds: list[int]) -> int:
        # access asks with the real ids (the hello carries them beside the effective ones),
        # its walk too
        view = self._view(call, real_ids=call.function == "access")
        obj, resolved = view.lookup(path)
        amode = call.raw.flags & (os.R_OK | os.W_OK | os.X_OK)
        if amode & os.W_OK and self.fs.protection_of(resolved) is not None:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)  # a question, not a change
        if amode:
            view.check(obj, amode, path)
        return 0

    _fs_eaccess = _fs_access

    def _fs_mkdir(self, call: Call, path: str, fds: list[int]) -> int:
        view = self._view(call, with_umask=True)
        caller = view.caller
        parent, _, name = view.parent(path)
        view.may_search(parent, path)
        if name in ("", ".", "..") or name in parent.entries:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
        view.may_change(parent, path)
        mode = stat.S_IFDIR | (stat.S_IMODE(call.raw.mode) & ~caller.umask & 0o7777)
        self.fs.add_entry(parent, name, mode, caller)
        return 0

    def _fs_rmdir(self, call: Call, path: str, fds: list[int]) -> int:
        end = _special_end(path)  # the kernel refuses these before looking at the directory
        if end is not None:
            code = {".": errno.EINVAL, "..": errno.ENOTEMPTY, "/": errno.EBUSY}[end]
            raise OSError(code, os.strerror(code), path)
        self._view(call).rmdir(path)
        return 0

    def _fs_unlink(self, call: Call, path: str, fds: list[int]) -> int:
        self.fs.forget(self._view(call).unlink(path))
        return 0

    def _fs_rename(self, call: Call, path: str, fds: list[int]) -> int:
        new = self._second_path(call, fds)
        route = self._route(new)
        if route is not None:
            raise _Refused(errno.EXDEV, f"rename into the host ({route}) is not allowed")
        flags = call.raw.flags
        if flags & _RENAME_EXCHANGE:
            raise _Refused(errno.EINVAL, "RENAME_EXCHANGE is not modelled yet")
        if _special_end(path) or _special_end(new):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), path)
        replaced = self._view(call).rename(path, new, noreplace=bool(flags & _RENAME_NOREPLACE))
        # pyfakefs counted the replaced file's lost name; it lives on under its other names
        last_name = replaced is not None and replaced.st_nlink <= 0
        if last_name and replaced is not None and not isinstance(replaced, FakeDirectory):
            self.fs.forget(replaced)  # no name left: its memfd goes (a directory has none)
        return 0

    def _fs_readlink(self, call: Call, path: str, fds: list[int]) -> str:
        return self._view(call).readlink(path)

    def _fs_symlink(self, call: Call, path: str, fds: list[int]) -> int:
        """``path`` is the link's own path (the call's subject); its target is kept as given."""
        if self._route(path) is not None:
            raise _Refused(errno.EROFS, "a symlink in a read-only host mount")
        self._view(call).symlink(os.fsdecode(call.raw.string1 or b""), path)
        return 0

    def _fs_link(self, call: Call, path: str, fds: list[int]) -> int:
        new = self._second_path(call, fds)
        if self._route(new) is not None:
            raise _Refused(errno.EXDEV, "a hard link into a read-only host mount")
        self._view(call).link(path, new, follow=bool(call.raw.flags & _AT_SYMLINK_FOLLOW))
        return 0

    def _fs_chdir(self, call: Call, path: str, fds: list[int]) -> _Descriptor:
        view = self._view(call)
        obj, canonical = view.lookup(path)
        if not isinstance(obj, FakeDirectory):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        view.check(obj, os.X_OK, path)
        return _Descriptor(self._shadow.open(canonical, None))

    def _fs_realpath(self, call: Call, path: str, fds: list[int]) -> str:
        return self._view(call).lookup(path)[1]  # every component must exist

    def _fs_chmod(self, call: Call, path: str, fds: list[int]) -> int:
        obj = self._view(call).resolve(path, follow=not call.raw.flags & _AT_SYMLINK_NOFOLLOW)
        return self._chmod(obj, call, path)

    def _chmod(self, obj: FakeFile, call: Call, path: str) -> int:
        caller = self._caller(call)
        if not caller.is_root and obj.st_uid != caller.uid:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), path)
        if stat.S_ISLNK(obj.st_mode):
            # what Linux answers (a symlink's mode is fixed): a right answer, not a violation
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP), path)
        obj.st_mode = stat.S_IFMT(obj.st_mode) | (call.raw.mode & 0o7777)
        obj.st_ctime = time.time()  # a change of the inode, as the kernel's
        return 0

    def _fs_chown(self, call: Call, path: str, fds: list[int]) -> int:
        obj = self._view(call).resolve(path, follow=not call.raw.flags & _AT_SYMLINK_NOFOLLOW)
        return self._chown(obj, call, path)

    def _chown(self, obj: FakeFile, call: Call, path: str) -> int:
        uid, gid = call.raw.values[:2]
        if not all(value == -1 or 0 <= value < 2**32 - 1 for value in (uid, gid)):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)  # as the kernel
        caller = self._caller(call)
        owner = caller.uid == obj.st_uid
        # only root gives files away; the owner may give one to its own group (or keep them)
        gives_uid = uid != -1 and (uid != obj.st_uid or not owner)
        gives_gid = gid != -1 and (gid not in (obj.st_gid, caller.gid) or not owner)
        if not caller.is_root and (gives_uid or gives_gid):
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), path)
        if uid != -1:
            obj.st_uid = uid
        if gid != -1:
            obj.st_gid = gid
        obj.st_ctime = time.time()
        return 0

    def _fs_utimens(self, call: Call, path: str, fds: list[int]) -> int:
        obj = self._view(call).resolve(path, follow=not call.raw.flags & _AT_SYMLINK_NOFOLLOW)
        return self._utimens(obj, call)

    def _utimens(self, obj: FakeFile, call: Call) -> int:
        asec, ansec, msec, mnsec = call.raw.values
        if ansec == mnsec == _UTIME_OMIT:
            return 0
        caller = self._caller(call)
        if not caller.is_root and caller.uid != obj.st_uid:  # as the kernel's utimes_common
            if {ansec, mnsec} <= {_UTIME_NOW, _UTIME_OMIT}:  # "now": the owner or a writer
                self.fs.check(obj, caller, os.W_OK, self.fs.path_of(obj))
            else:  # given times: the owner only
                raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))
        now = time.time_ns()
        times = [
            None if nsec == _UTIME_OMIT else now if nsec == _UTIME_NOW else sec * 10**9 + nsec
            for sec, nsec in ((asec, ansec), (msec, mnsec))
        ]
        self.fs.set_times(obj, times[0], times[1])  # to the nanosecond
        return 0

    def _fs_truncate(self, call: Call, path: str, fds: list[int]) -> int:
        view = self._view(call)
        obj = view.resolve(path)
        if isinstance(obj, FakeDirectory):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        view.check(obj, os.W_OK, path)
        self.fs.truncate_file(obj, call.raw.values[0])
        return 0

    def _fs_exec(self, call: Call, path: str, fds: list[int]) -> Any:
        try:
            in_model = self._view(call).entry(path) is not None
        except OSError as error:  # not in the model: the host's program, passed through
            if error.errno == errno.EACCES:
                raise
            in_model = False
        if in_model and self._route(path) is None:
            raise _Refused(errno.EACCES, "running a program that exists only in the model")
        return PASSTHROUGH

    def _file_call(self, call: Call, fd: int | None) -> Any:
        """fstat, fchmod, fchown, futimens, fsetxattr, fremovexattr and the attribute ioctls on
        a descriptor: the master's (the model answers), or a host file's (changes refused)."""
        if fd is None:
            return PASSTHROUGH
        info = os.fstat(fd)
        virtual = None
        obj: FakeFile | None = None
        if info.st_dev == self._memfd_device:
            obj = self.fs.file_of_memfd(info.st_ino)
        elif info.st_dev == self._shadow.device:
            virtual = self._shadow.virtual_of_inode(info.st_ino)
            obj = self.fs.resolve(virtual) if virtual is not None else None
        else:
            obj = self._fifos.file_of(info)
        function = call.function
        if obj is None:
            return self._host_file_call(call, fd)
        if function == "fstat":
            return self.fs.packed_stat(obj)
        path = virtual or self.fs.path_of(obj)
        if function == "fchmod":
            return self._chmod(obj, call, path)
        if function == "fchown":
            return self._chown(obj, call, path)
        if function in ("fsetxattr", "fremovexattr"):  # the model's files have no attributes
            raise OSError(errno.ENOTSUP, os.strerror(errno.ENOTSUP), path)
        if function == "fsioctl":  # nor attribute flags (chattr)
            raise OSError(errno.ENOTTY, os.strerror(errno.ENOTTY), path)
        return self._utimens(obj, call)

    def _host_file_call(self, call: Call, fd: int) -> Any:
        """A call on a descriptor that is no file of the model: a change of a file with a path
        (a host file: a mount's, a device, a redirection) is refused; the rest (fstat, the
        program's own memfds) is the program's real call."""
        target = os.readlink(f"/proc/self/fd/{fd}")
        if call.function == "fstat" or not target.startswith("/") or target.startswith("/memfd:"):
            return PASSTHROUGH
        raise _Refused(errno.EROFS, f"{call.function} of the host file {target}")

    def _fs_mknod(self, call: Call, path: str, fds: list[int]) -> int:
        """mknod, mkfifo: regular files and FIFOs are made in the model; devices and sockets
        are not modelled (a violation)."""
        kind = stat.S_IFMT(call.raw.mode) or stat.S_IFREG
        if kind == stat.S_IFDIR:
            raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), path)  # as the kernel
        if kind not in (stat.S_IFREG, stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)
        view = self._view(call, with_umask=True)
        found, canonical, directory = view.locate(path, follow=False)  # (ENOENT, EACCES first)
        if found is not None:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
        if kind == stat.S_IFREG:
            view.create(directory, canonical, call.raw.mode)
            return 0
        if kind != stat.S_IFIFO:
            name = _TYPE_NAMES.get(kind, "special file")
            raise _Refused(errno.EPERM, f"mknod of a {name}: not modelled (regular files, FIFOs)")
        if not isinstance(directory, FakeDirectory):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        view.may_change(directory, path)  # opened, it is a real FIFO the master owns (_open_fifo)
        mode = stat.S_IFIFO | (stat.S_IMODE(call.raw.mode) & ~view.caller.umask)
        self.fs.add_entry(directory, posixpath.basename(canonical), mode, view.caller)
        return 0

    def _fs_setxattr(self, call: Call, path: str, fds: list[int]) -> int:
        """setxattr, removexattr (and the l-forms) on a model path: the model's files have no
        extended attributes (ENOTSUP, as a filesystem without them)."""
        self._view(call).resolve(path, follow=not call.raw.flags & _AT_SYMLINK_NOFOLLOW)  # ENOENT
        raise OSError(errno.ENOTSUP, os.strerror(errno.ENOTSUP), path)

    _fs_removexattr = _fs_setxattr


def _refuse_setuid(call: Call) -> None:
    """Refuse to run a setuid or setgid program (``call.raw.mode``: the file's st_mode, which the
    shim sends), wherever it lives: the loader runs it in secure mode, without LD_PRELOAD."""
    if call.raw.mode & (stat.S_ISUID | stat.S_ISGID):
        raise _Refused(errno.EPERM, "setuid/setgid programs run without the shim (LD_PRELOAD)")


def _reduce(path: str, process: ProcessInfo | None = None) -> str:
    """A path's one spelling, which every decision about a call is made on: repeated slashes
    and "." components dropped (a last "." is kept, and a trailing slash: both ask for a
    directory, and rmdir, rename and unlink treat a last "." as the kernel does); the calling
    process's own /proc directory spelled /proc/self (its thread's, /proc/thread-self), and
    /dev/fd and /dev/std* as the /proc/self/fd they lead to. ".." stays: it is resolved once,
    by the model's walk as the kernel does (after a symlink, the parent of its target), or,
    under /proc, refused (see Sandbox._route).

    ``process``: the caller, whose own pid and tid are recognized (without it, a numeric
    /proc/<pid> stays as it is, and is refused as any other process's would be).
    """
    if not path.startswith("/"):
        return path
    if "//" in path or "/./" in path:
        names = path.split("/")
        last = names[-1]
        names = [name for name in names[:-1] if name and name != "."] + [last]
        path = "/" + "/".join(names)
    if path.startswith("/dev/"):
        match = _DEV_FD.match(path)
        if match is not None:
            path = "/proc/self/fd" + _STD_FD.get(match.group(1) or "", "") + path[match.end() :]
    if path.startswith("/proc/") and process is not None:
        match = _PROC_PID.match(path)
        if match is not None:
            pid, tid = match.group(1), match.group(2)
            if pid in ("self", str(process.pid)):
                if tid == str(process.tid):
                    path = "/proc/thread-self" + path[match.end() :]
                elif pid != "self":
                    path = "/proc/self" + path[len(f"/proc/{pid}") :]
    return path


def _where(path: str) -> str:
    """Where a path in its one spelling leads by its text alone (its ".." taken lexically), for
    choosing its route: the model's walk, or the host's checks, then decide on the same path."""
    if "/.." not in path:
        return path
    return _reduce(posixpath.normpath(path))


def _descriptor_entry(process: ProcessInfo, path: str) -> str | None:
    """The entry in the caller's descriptor table that a reopen of one of its own descriptors
    (/proc/self/fd/N, /proc/thread-self/fd/N) names: the process's table (its main thread's) or
    the calling thread's, which differ after the thread called unshare(CLONE_FILES)."""
    match = _OWN_DESCRIPTOR.fullmatch(path)
    if match is None:
        return None
    owner, number = match.groups()
    if owner == "thread-self":
        return f"/proc/{process.pid}/task/{process.tid}/fd/{number}"
    return f"/proc/{process.pid}/fd/{number}"


def _special_end(path: str) -> str | None:
    """How ``path`` ends when the kernel will not remove or rename what it names by that end:
    ".", "..", or "/" (the root itself); None when it ends in a name."""
    if path and not path.rstrip("/"):
        return "/"
    last = path.rstrip("/").rpartition("/")[2]
    return last if last in (".", "..") else None


def _follows_last_link(call: Call) -> bool:
    """Whether a call on a path acts where a symlink at the path's end leads, rather than on the
    link itself (as unlink, rename, mkdir and the like do)."""
    function, flags = call.function, call.raw.flags
    if function in ("open", "openat"):  # O_CREAT | O_EXCL fails on any symlink: EEXIST
        return not flags & os.O_NOFOLLOW and not (flags & os.O_CREAT and flags & os.O_EXCL)
    if function in ("chmod", "chown", "utimens", "setxattr", "removexattr"):
        return not flags & _AT_SYMLINK_NOFOLLOW
    if function == "link":
        return bool(flags & _AT_SYMLINK_FOLLOW)
    return function == "truncate"


def _describe(outcome: Any) -> tuple[str, int]:
    """How the journal shows an outcome, and its errno."""
    if isinstance(outcome, PackedStat):  # the most common, first
        return f"stat {outcome.type} {outcome.mode:o} {outcome.size}", 0
    if outcome is PASSTHROUGH:
        return "passthrough", 0
    if isinstance(outcome, bytes):  # a res_query answer
        return f"DNS message of {len(outcome)} bytes", 0
    if isinstance(outcome, str):  # a getaddrinfo error name, or getnameinfo's host name
        return (f"EAI {outcome}" if outcome in GAI_ERRORS else outcome), 0
    if isinstance(outcome, OSError):
        code = outcome.errno or errno.EIO
        return describe_error(code), code
    if isinstance(outcome, _Descriptor):
        return "fd", 0
    if isinstance(outcome, Answer):
        return " ".join(sorted({str(entry[0]) for entry in outcome.entries})), 0
    return str(outcome), 0


def _deliver(svc: LibcService | Deferred, outcome: Any) -> None:
    """Send the outcome of the call being served (or set aside) to the program."""
    if outcome is PASSTHROUGH:
        svc.use_slave_credentials()
    elif isinstance(outcome, OSError):
        svc.send(-1, outcome.errno or errno.EIO)
    elif isinstance(outcome, _Descriptor):
        try:
            svc.send_with_fds(0, [outcome.fd])
        finally:
            os.close(outcome.fd)
    elif isinstance(outcome, Answer):
        svc.send(outcome.entries, canonical_name=outcome.canonical_name)
    else:  # an int, a stat table, a path, or a getaddrinfo error name
        svc.send(outcome)


def _noted_entry(process: ProcessInfo, note: Note) -> JournalEntry:
    """The journal entry of a call the shim answered from the snapshot."""
    if note.result < 0:  # a name missing from a complete directory
        answer = describe_error(note.error)
    elif note.target is not None:  # readlink
        answer = note.target
    elif note.function in ("access", "eaccess"):
        answer = "0"
    elif note.function in NOTED_OPENS:
        answer = "fd"
    else:
        kind = _TYPE_NAMES.get(stat.S_IFMT(note.mode), "unknown")
        answer = f"stat {kind} {stat.S_IMODE(note.mode):o} {note.size}"
    return JournalEntry.deferred(
        _NotedArguments(note), pid=process.pid, tid=process.tid, exe=process.exe,
        call=note.function, symbol=note.symbol, path=note.path, answer=answer, errno=note.error,
        from_snapshot=True,
    )  # fmt: skip


class _NotedArguments(NamedTuple):
    """A note's arguments, made (as a Call's) only when someone reads the journal entry's."""

    note: Note

    def arguments(self) -> tuple[Any, ...]:
        note = self.note
        if note.function == "fstat":  # the file travels as a descriptor
            return ()
        if note.function in ("access", "eaccess"):
            return (PurePosixPath(note.path), access_mode_names(note.flags))
        if note.function in NOTED_OPENS:  # a directory, opened read-only: nothing it creates
            return (PurePosixPath(note.path), open_flag_names(note.flags))
        return (PurePosixPath(note.path),)


def _depth(path: str) -> int:
    return posixpath.normpath(path).count("/")


@functools.lru_cache(maxsize=4)
def _special_parents(mounts: tuple[str, ...]) -> frozenset[str]:
    """The directories (each with a trailing "/") that have something outside the model below
    them: a mount, a device, /proc. Publishing checks each directory's entries against the
    routes only then; most directories have none."""
    specials = (*mounts, *DEVICES, "/proc", "/dev/fd")
    return frozenset(special[: index + 1] for special in specials
                     for index, char in enumerate(special) if char == "/")  # fmt: skip


def _entries(directory: FakeDirectory) -> list[tuple[str, int]]:
    return [(name, stat.S_IFMT(obj.stat_result.st_mode)) for name, obj in directory.entries.items()]


def _umask(pid: int) -> int:
    """A process's umask as it is now (the Umask line of /proc/PID/status; 022 if unreadable).

    Read afresh for each call that creates something, since a program may change it any time.
    """
    try:
        fd = os.open(f"/proc/{pid}/status", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return 0o022
    try:
        status = os.read(fd, 4096)
    except OSError:
        return 0o022
    finally:
        os.close(fd)
    start = status.find(b"\nUmask:")
    if start < 0:
        return 0o022
    return int(status[start + 7 : status.index(b"\n", start + 1)], 8)
