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
import os
import posixpath
import resource
import stat
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any, NamedTuple

from pyfakefs.fake_file import FakeDirectory
from pyfakefs.fake_filesystem import FakeFilesystem

from . import _hybrid, _realos
from ._fifos import Fifos, Later
from ._nameserver import ADDRESS as NAMESERVER_ADDRESS
from ._nameserver import RESOLV_CONF, NameServer
from ._pythonpaths import python_mounts
from ._shadow import ShadowTree
from ._shim import shim_path
from .calls import Call, access_mode_names, open_flag_names
from .dns import HOST_NOT_FOUND, Dns, Hints, LookupRefused
from .errors import ProtocolError
from .faults import FaultRule, calls_named
from .fs import DEFAULT_MOUNTS, FileSystem
from .fs_answers import FsAnswers
from .gai import GAI_ERRORS
from .journal import Journal, JournalEntry, Violation, ViolationError, describe_error, format_report
from .net import NETWORK_CALLS, NetFaultRule, Network, NetworkViolation, Replacement, SocketRequest
from .outcomes import PASSTHROUGH, Descriptor, Refused, Serving, deliver, describe
from .protocol import (
    NOTED_FUNCTIONS,
    NOTED_OPENS,
    Effect,
    Family,
    Function,
    Note,
    ProcessInfo,
)
from .publish import Publisher
from .request import Request, Requests
from .routes import HostRoutes
from .service import LibcService, ServiceError
from .snapshot import Snapshot
from .stat import FILE_TYPES

_TYPE_NAMES = {bits: name for name, bits in FILE_TYPES.items()}
#: The calls after whose second one in a directory the master publishes it: stats of its
#: entries by name. Not fstat: a program that fstats the file it opened (cp -r, after creating
#: the last one, which emptied the snapshot) is not about to stat its neighbours.
_STATS_OF_ENTRIES = NOTED_FUNCTIONS - {"fstat"}
#: glibc's name service cache, which static programs ask first: none runs here (ENOENT).
_NSCD_SOCKETS = ("/var/run/nscd/socket", "/run/nscd/socket")


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
    ``backend``: "preload" (the shim alone) or "hybrid" (the shim, and every program under the
    seccomp supervisor from its first instruction: see :mod:`libcfake._hybrid`); by default
    :data:`~libcfake._hybrid.DEFAULT_BACKEND`. Where hybrid cannot run, preload, with a
    :class:`~libcfake.LibcfakeBackendWarning`; ``sb.backend`` says which runs.
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
        backend: str | None = None,
    ) -> None:
        self.backend = _hybrid.choose(backend)
        if isinstance(mounts, str) or isinstance(base_mounts, str):
            raise TypeError("mounts and base_mounts are lists of paths, not one path")
        if base_mounts is None:
            base_mounts = (*DEFAULT_MOUNTS, *python_mounts())
        if self.backend == "hybrid":  # the loader's open of the shim is trapped and asked too
            mounts = (*mounts, str(shim_path().parent))
        # parents first: a mount inside another one is already visible through it
        every_mount = sorted(dict.fromkeys((*base_mounts, *mounts)), key=_depth)
        self.fs = FileSystem(every_mount, fake=fake_filesystem)
        self.strict = strict
        self.violation_errno = violation_errno
        self.dns = Dns()
        self.cwd = cwd
        self._journal = Journal()  # the entries made so far
        #: what the master recorded since sb.journal was last read, in order: a call it served
        #: (_Served), the notes of calls the shim answered ((process, notes)), a violation's
        #: entry. The entries are made when the journal is read: most never are.
        self._unread: list[_Served | tuple[ProcessInfo, Iterable[Note]] | JournalEntry] = []
        self.violations: list[Violation] = []
        self._faults: list[FaultRule] = []
        #: how many rules there were (in _faults and dns.faults) and the calls they name
        self._rules_named: tuple[int, frozenset[str]] = (0, frozenset())
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
        probe = os.memfd_create("libcfake-probe", os.MFD_CLOEXEC)
        memfd_device = os.fstat(probe).st_dev
        os.close(probe)
        devices = [memfd_device]
        self._memfd_device = memfd_device
        self._fifos = Fifos()  # the real FIFOs behind the model's
        if self._shadow.device not in {os.stat(m).st_dev for m in self.fs.mounts}:
            devices.append(self._shadow.device)
        # A test sharing pyfakefs's filesystem may change it behind the model's back: no snapshot.
        snapshot = Snapshot(self._shadow.root) if fake_filesystem is None else None
        self._service = LibcService(
            reply_timeout=reply_timeout,
            passthrough=self._passthrough(),
            file_devices=devices,
            snapshot=snapshot,
            on_note=self._noted,
            on_error=self._service_error,
        )
        self._hybrid = None if self.backend == "preload" else _hybrid.Hybrid(
            self._answer, file_devices=devices, socket_path=self._service.socket_path,
            refused=self._refused, passthrough=self._passthrough, snapshot=snapshot,
            datagram_sources=lambda inode: self.net.datagram_sources(inode), on_note=self._noted,
        )  # fmt: skip
        # the stages of a call (see _answer), each in its module
        self._routes = HostRoutes(self.fs, self._shadow, self.serves)
        self._requests = Requests(self.fs, self._shadow, memfd_device, self._routes.route)
        self._publisher = Publisher(
            snapshot, self.fs, self._faults, self._routes.route, shadow=self._shadow
        )
        self.fs.on_change = self._publisher.unpublish
        self.fs.on_written = self._publisher.written
        self._fs_answers = FsAnswers(
            self.fs, self._shadow, self._fifos, self._routes, self._publisher, memfd_device
        )
        self._fs_answers.faults = self._faults  # which opens are watched (data faults)
        self._record_lock = threading.Lock()
        self._protocol_errors: list[str] = []
        self._closed = False
        _SWITCHES.lower()  # the master waits behind the test's busy threads less (see there)
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
        try:
            if self._hybrid is not None:
                self._hybrid.close()
        finally:  # the master's own protection (_guard) is released whatever happened above
            self._service.stop()
            self._thread.join()
            self._fifos.close()
            self._service.close()
            self._publisher.close()
            self.net.close()
            self._nameserver.close()
            self.fs.close()
            self._shadow.close()
            _SWITCHES.restore()

    @property
    def journal(self) -> Journal:
        """Every call programs made, in order (the calls answered from the snapshot included)."""
        self._catch_up()
        with self._record_lock:
            unread, self._unread = self._unread, []
            for item in unread:  # made into entries here, off the master's busy path
                if isinstance(item, _Served):
                    self._journal.append(_served_entry(item))
                elif isinstance(item, JournalEntry):
                    self._journal.append(item)
                else:
                    process, notes = item
                    self._journal.extend(_noted_entry(process, note) for note in notes)
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
        if self._hybrid is not None:
            return self._hybrid.popen(args, self.environment(env), real_cwd, **kwargs)
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
        if self._hybrid is not None:
            return self._hybrid.run(args, self.environment(env), real_cwd, **kwargs)
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
        if self._hybrid is not None:
            return await self._hybrid.create_subprocess_exec(
                [os.fsdecode(program), *map(os.fsdecode, args)], self.environment(env), real_cwd,
                **kwargs,
            )  # fmt: skip
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
                self._publisher.unpublish()
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
        short: int | None = None,
    ) -> FaultRule:
        """Make calls named ``call`` on subjects matching ``pattern`` fail with ``error``.

        ``call`` is a call name ("open", "stat", "mkdir", "getaddrinfo", ...; "open" covers
        openat too); ``pattern`` a glob on the virtual path (or host name); ``error`` an errno,
        an OSError, or for getaddrinfo one of the seed's error names ("again", "noname", ...).
        The data calls ("read", "write", "fsync", "fdatasync", "ftruncate", "close") fail on
        model files opened after the rule was made; ``short=N`` makes reads and writes move at
        most N bytes instead of failing.
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
            rule = FaultRule(call, pattern, error, nth=nth, times=times, delay=delay, short=short)
        with self.fs.lock:
            self._faults.append(rule)
            if rule.calls & (NOTED_FUNCTIONS | NOTED_OPENS):
                self._publisher.unpublish()  # those calls must reach the rule
            if rule.calls & _READ_ONLY_FS:  # and programs started from now on ask under mounts
                self._service.set_passthrough(self._passthrough())
        return rule

    def _passthrough(self) -> tuple[str, ...]:
        """The mounts whose read-only calls programs make without asking (the shim's
        passthrough, the supervisor's fast path), and the host's devices a program reads without
        harm (git opens /dev/urandom for every object it writes): every one but those a
        filesystem fault rule may name, so that the rule fires there too."""
        literals = [_literal(rule.pattern) for rule in self._faults if rule.calls & _READ_ONLY_FS]
        return tuple(
            prefix for prefix in (*self.fs.mounts, *_READ_DEVICES)
            if not any(_overlap(prefix, literal) for literal in literals)
        )  # fmt: skip

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

    def serves(self, pid: int) -> bool:
        """Whether ``pid`` (a process or thread) is a program of this sandbox."""
        if self._service.serves(pid):
            return True
        return self._hybrid is not None and self._hybrid.contains(pid)

    def _serve(self) -> None:
        handler = self._answer if self._hybrid is None else self._hybrid.serve_call
        while True:
            try:
                self._service.serve(handler)
                return  # stopped by close()
            except ProtocolError as error:  # one program's garbage: record it, serve the rest
                with self._record_lock:
                    self._protocol_errors.append(str(error))
            except Exception as error:  # a bug of ours: fail the test, never stop serving
                self._service_error(ServiceError("serve", 0, "", f"internal error: {error!r}"))

    def _service_error(self, error: ServiceError) -> None:
        """The master refused or closed a connection (see LibcService.errors): a violation."""
        self._add_violation(
            Violation(error.pid, error.exe, error.stage, error.stage, (),
                      "closed" if error.stage == "receive" else "refused", error.message)
        )  # fmt: skip

    def _add_violation(self, violation: Violation) -> None:
        with self._record_lock:
            self.violations.append(violation)

    def _refused(self, refusal: _hybrid.Refusal) -> None:
        """What the hybrid backend refused by itself is a violation too."""
        r = refusal
        violation = Violation(r.pid, r.exe, r.call, r.call, r.arguments, r.answer, r.reason)
        self._add_violation(violation)

    def _answer(self, svc: Serving) -> None:
        """Serve one call: request -> fault -> route -> answer -> publish -> journal -> deliver."""
        call = svc.call
        fds = svc.descriptors()
        subject: str | None = None
        fault = False
        refused: Refused | None = None  # a violation: what no model covers
        outcome: Any = None
        delay = 0.0  # of the fault rule that answers this call, if one does
        try:
            request = self._requests.make(call, fds)
            subject = request.path
            outcome, delay = self._fault(request)
            if outcome is not None:
                fault = True
            else:
                with self.fs.lock:
                    if request.changes:
                        self._publisher.before_change(request)  # before it can be seen
                    failed: OSError | None = None
                    try:
                        outcome = self._route(request)
                    except OSError as error:
                        failed = error
                    if request.name in _STATS_OF_ENTRIES and subject is not None:
                        # a missing name too: git probes its object directories for names
                        self._publisher.publish_parent(subject)
                    if failed is not None:
                        raise failed
        except Refused as error:
            refused = error
        except OSError as error:
            outcome = error
            if error.errno in (errno.EMFILE, errno.ENFILE):  # the master's own, not the model's
                refused = Refused(error.errno, self._out_of_descriptors())
        except Exception as error:  # a bug of ours: fail the call and the test, keep serving
            refused = Refused(errno.EIO, f"libcfake internal error: {error!r}")
        finally:
            for fd in fds:
                os.close(fd)
        if refused is None:
            self._record(call, subject, outcome, fault, False, None)
        else:
            outcome = refused.error
            if isinstance(outcome, int) and self.violation_errno is not None:
                outcome = self.violation_errno
            if isinstance(outcome, int):
                outcome = OSError(outcome, os.strerror(outcome))
            self._record(call, subject, outcome, fault, True, refused.reason)
        if delay > 0:  # answer later; the master goes on serving everyone else
            timer = threading.Timer(delay, deliver, (svc.defer(), outcome))
            timer.daemon = True
            timer.start()
        elif isinstance(outcome, Later):  # (a FIFO's open waiting for its other end)
            outcome.start(svc.defer(), deliver)
        else:
            deliver(svc, outcome)

    def _record(
        self,
        call: Call,
        subject: str | None,
        outcome: Any,
        fault: bool,
        violation: bool,
        reason: str | None,
    ) -> None:
        """Journal a call (and its violation), before the program can see the answer. Its entry
        is made when the journal is read (:func:`_served_entry`); a violation's, now."""
        if isinstance(outcome, OSError):  # its errno is all it says (not its traceback's frames)
            error = outcome.errno or errno.EIO
            served = _new_tuple(_Served, (call, subject, None, error, fault, violation))
        else:
            served = _new_tuple(_Served, (call, subject, outcome, 0, fault, violation))
        if reason is None:
            with self._record_lock:
                self._unread.append(served)
            return
        entry = _served_entry(served)
        violation_record = Violation(
            entry.pid, entry.exe, entry.call, entry.symbol, entry.arguments, entry.answer, reason,
            path=subject,
        )  # fmt: skip
        with self._record_lock:
            self._unread.append(entry)
            self.violations.append(violation_record)

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

    def _fault(self, request: Request) -> tuple[Any, float]:
        """The outcome a fault rule gives the call (None: no rule), and the rule's delay."""
        name, subject = request.name, request.path
        faults, dns_faults = self._faults, self.dns.faults
        if len(faults) + len(dns_faults) != self._rules_named[0]:  # rules are only ever added
            rules = (*faults, *dns_faults)
            self._rules_named = (len(rules), frozenset().union(*(rule.calls for rule in rules)))
        if name not in self._rules_named[1]:  # (most calls: no rule names them)
            return None, 0.0
        for rule in (*faults, *dns_faults):
            if rule.applies(name, subject):
                if rule.short is not None:  # a short read or write (FaultRule checks the call)
                    return rule.short, rule.delay
                if isinstance(rule.error, str):
                    outcome: Any = rule.error if name == "getaddrinfo" else OSError(errno.EIO, "")
                elif name == "getaddrinfo":
                    outcome = "system"
                else:
                    outcome = OSError(rule.error, os.strerror(rule.error))
                return outcome, rule.delay
        return None, 0.0

    def _noted(self, process: ProcessInfo, notes: Iterable[Note]) -> None:
        """Journal calls the shim (or a supervisor's fast path) answered from the snapshot (their
        entries are made when read)."""
        with self._record_lock:
            self._unread.append((process, notes))

    # -- the router --------------------------------------------------------------------------

    def _route(self, request: Request) -> Any:
        """The outcome of a call no fault rule answered: by its family (the call table's), the
        network model, the DNS model, or the filesystem: the host's routes first, the model's
        answers then."""
        family = request.family
        if family is Family.NET:
            return self._socket_call(request)
        if family is Family.NAMES:
            return self._name_call(request)
        name = request.name
        if name == "open_by_handle_at":  # any file of a filesystem, the host's included
            raise Refused(errno.EPERM, "open_by_handle_at: a file handle is no path to decide on")
        if family is Family.FILE:
            return self._fs_answers.file_call(request)
        if name == "mount":  # mount, umount, umount2, chroot: the host's, not modelled
            raise Refused(
                errno.EPERM, f"{request.call.raw.symbol} changes the host's mounts or root"
            )
        path = request.path
        if name == "getcwd":
            return path if path is not None and path.startswith("/") else PASSTHROUGH
        assert path is not None
        if name == "exec":
            if not path.startswith("/"):  # a name the shim's PATH search did not find
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
            _refuse_setuid(request.call)  # in a mount too: it would run without the shim
        route = self._routes.route(path)  # (a symlink's subject is its link path)
        if route is not None:
            outcome = self._routes.answer(request, route)
            if outcome is not None:  # None: a symlink leads out of the mount, the model answers
                return outcome
        return self._fs_answers.answer(request)

    def _name_call(self, request: Request) -> Any:
        """getaddrinfo, getnameinfo and res_query: the DNS model's answers."""
        raw = request.call.raw
        name = request.name
        if name == "getnameinfo":
            return self.dns.getnameinfo(raw.ip_address(), raw.flags)
        try:
            if name == "res_query":
                answer = self.dns.query(*request.call.arguments())
                if isinstance(answer, int):  # an h_errno
                    raise OSError(answer, "no DNS answer")
                return answer
            node = None if raw.string1 is None else os.fsdecode(raw.string1)
            service = None if raw.string2 is None else os.fsdecode(raw.string2)
            hints = Hints(raw.flags, raw.family, raw.socktype, raw.protocol)
            return self.dns.getaddrinfo(node, service, hints)
        except LookupRefused as refused:
            error: int | str = HOST_NOT_FOUND if name == "res_query" else "noname"
            raise Refused(error, f"{refused} is in no zone of the DNS model") from None

    def _socket_call(self, request: Request) -> Any:
        """connect and bind: the network model connects or binds the program's own socket. A
        sendto/sendmsg/sendmmsg with a destination comes as a connect with that symbol."""
        fd = request.socket
        if fd is None:
            raise Refused(errno.EBADF, f"{request.name} came without the program's socket")
        kind, _, family = request.name.partition("_")
        raw = request.call.raw
        name = raw.string1 or b""
        destination = (
            (raw.ip_address(), raw.port) if family != "unix"
            else name if name.startswith(b"\0")
            else self._requests.join(None, name, request.process)
        )  # fmt: skip
        if kind == "connect" and destination in _NSCD_SOCKETS:
            raise FileNotFoundError(errno.ENOENT, "no nscd runs in a sandbox")  # glibc asks it
        caller = request.caller(with_umask=kind == "bind")
        socket_request = SocketRequest(fd, raw.family, raw.socktype, destination, caller,
                                       raw.protocol, raw.symbol or kind)  # fmt: skip
        try:
            if kind == "bind":
                return self.net.program_bind(socket_request)
            if raw.symbol.startswith("send"):
                outcome = self.net.program_send(socket_request)
            else:
                outcome = self.net.program_connect(socket_request)
        except NetworkViolation as refused:
            raise Refused(refused.errno, refused.reason) from None
        return Descriptor(outcome.fd) if isinstance(outcome, Replacement) else outcome


def _refuse_setuid(call: Call) -> None:
    """Refuse to run a setuid or setgid program (``call.raw.mode``: the file's st_mode, which the
    shim sends), wherever it lives: the loader runs it in secure mode, without LD_PRELOAD."""
    if call.raw.mode & (stat.S_ISUID | stat.S_ISGID):
        raise Refused(errno.EPERM, "setuid/setgid programs run without the shim (LD_PRELOAD)")


class _Served(NamedTuple):
    """A call the master served, as recorded (see Sandbox._record): its outcome, or for an
    OSError only its errno (``error``)."""

    call: Call
    subject: str | None
    outcome: Any
    error: int
    fault: bool
    violation: bool


#: Builds a NamedTuple from a tuple of all its fields without the generated __new__'s overhead.
_new_tuple = tuple.__new__


def _served_entry(served: _Served) -> JournalEntry:
    """The journal entry of a call the master served."""
    call, subject, outcome, error, fault, violation = served
    answer, code = (describe_error(error), error) if error else describe(outcome)
    process = call.process
    return JournalEntry.deferred(
        call,  # whose arguments are made when someone reads them: most entries never are
        pid=process.pid, tid=process.tid, exe=process.exe, call=call.function,
        symbol=call.raw.symbol, path=subject, answer=answer, errno=code, fault=fault,
        violation=violation,
    )  # fmt: skip


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


#: Devices whose read-only opens and stats the shim passes through (a terminal's open may make
#: it the program's controlling terminal: not one of them).
_READ_DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")

#: The filesystem calls a mount's passthrough serves (read-only ones): a fault rule naming one
#: must see them.
_READ_ONLY_FS = frozenset(
    function.text
    for function in Function
    if function.family is Family.FS and function.effect is not Effect.CHANGES
)


def _literal(pattern: str) -> str:
    """A glob's text before its first wildcard: every path it matches starts with it."""
    cut = min((i for i, c in enumerate(pattern) if c in "*?["), default=len(pattern))
    return pattern[:cut]


def _overlap(prefix: str, literal: str) -> bool:
    """Whether a path under ``prefix`` (a mount, a device) may start with ``literal`` (a glob's
    fixed start)."""
    prefix = prefix.rstrip("/")
    return prefix.startswith(literal) or literal.startswith(prefix + "/") or literal == prefix


#: The GIL switch interval while a Sandbox is open (seconds). The master is Python in the
#: test's process: every forwarded call needs the GIL, and a thread of the test computing in
#: Python gives it up only when asked, which CPython does after the switch interval (5 ms by
#: default): each call then waited up to that (a forwarded access: 95 us alone, 12.7 ms beside
#: a busy thread). The interval only matters while two threads want the GIL: a test thread
#: computing alone, or a master waiting in epoll, never switches (benchmarks/gil.py).
SWITCH_INTERVAL = 0.0005


class _SwitchInterval:
    """Lowers sys.setswitchinterval to SWITCH_INTERVAL while any Sandbox is open, and puts the
    test's own value back when the last one closes (unless the test changed it meanwhile)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0
        self._saved = 0.0
        self._set = 0.0

    def lower(self) -> None:
        with self._lock:
            if self._open == 0:
                self._saved = sys.getswitchinterval()
                self._set = min(self._saved, SWITCH_INTERVAL)
                sys.setswitchinterval(self._set)
            self._open += 1

    def restore(self) -> None:
        with self._lock:
            self._open -= 1
            if self._open == 0 and sys.getswitchinterval() == self._set:
                sys.setswitchinterval(self._saved)


_SWITCHES = _SwitchInterval()
