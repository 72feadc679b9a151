"""The ``libcfake`` command line: run a program in a sandbox, or trace what it touches.

    libcfake run --file /etc/app.conf=./app.conf --hosts ./hosts --fail open:/var/log/*:EACCES \\
        -- ./app --check
    libcfake trace -- python3 -c "import json"

``run`` builds a Sandbox from its options, runs the command with the terminal's stdin, stdout
and stderr, then prints a summary of violations on stderr. It exits with the command's status,
or with 86 when the command made calls that nothing covered (``--violations-ok`` keeps the
command's status). ``trace`` runs the command against the real host — reads go through, writes
and connections are refused unless allowed — and prints every forwarded call and its outcome
(a descriptor, a stat, an errno, the addresses a name resolved to), like strace at the libc
level, then a summary (files missing, names resolved, connections), so you can see what a
program touches before writing a test.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import stat as stat_module
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ._hybrid import BACKENDS, DEFAULT_BACKEND
from .calls import Call
from .fs import DEVICES
from .gai import GAI_ERRORS
from .journal import errno_number, format_report
from .protocol import SEED_FUNCTIONS
from .sandbox import Sandbox
from .service import LibcService
from .stat import StatResult

#: The exit status of ``libcfake run`` when the command made calls that nothing covered.
VIOLATION_STATUS = 86


class _Usage(Exception):
    """A bad option value: printed with the usage, exit status 2."""


def _split(text: str, sep: str, what: str, parts: int = 2) -> list[str]:
    pieces = text.split(sep, parts - 1)
    if len(pieces) != parts or not all(pieces):
        raise _Usage(f"{what} {text!r}: expected {sep.join(['X'] * parts)}")
    return pieces


def _errno_value(text: str, call: str) -> int | str:
    if call == "getaddrinfo" and text in GAI_ERRORS:
        return text
    code = errno_number(text.upper())
    if code is None:
        raise _Usage(f"unknown errno {text!r} (use a name such as EACCES, or a number)")
    return code


def _build(sandbox: Sandbox, args: argparse.Namespace) -> None:
    """Apply the ``run`` options to a fresh sandbox."""
    if args.fs_dir is not None:
        root = Path(args.fs_dir)
        if not root.is_dir():
            raise _Usage(f"--fs-dir {root}: not a directory")
        for entry in sorted(root.iterdir()):
            adder = sandbox.fs.add_real_directory if entry.is_dir() else sandbox.fs.add_real_file
            adder(entry, f"/{entry.name}", read_only=False)
    for spec in args.file:
        virtual, host = _split(spec, "=", "--file")
        if not Path(host).is_file():
            raise _Usage(f"--file {spec}: {host} is not a file")
        sandbox.fs.add_real_file(host, virtual, read_only=False)
    for hosts in args.hosts:
        sandbox.dns.load_hosts(Path(hosts))
    for zone in args.zone:
        sandbox.dns.load_zone(Path(zone))
    for spec in args.route:
        where, target = _split(spec, "=", "--route")
        net = getattr(sandbox, "net", None)
        if net is None:
            raise _Usage("--route: this libcfake has no network model yet")
        host, port = where.rsplit(":", 1)
        net.route((host, int(port)), to=_target(target))
    for spec in args.fail:
        call, pattern, code = _split(spec, ":", "--fail", 3)
        sandbox.fail(call, pattern, _errno_value(code, call))


def _target(text: str) -> object:
    if text.startswith("/"):
        return text
    host, port = text.rsplit(":", 1)
    return (host, int(port))


def run(args: argparse.Namespace) -> int:
    try:
        with Sandbox(cwd=args.cwd, backend=args.backend) as sandbox:
            _build(sandbox, args)
            result = sandbox.run(args.command)
            violations = list(sandbox.violations)
            hidden = sandbox.missing_host_paths() if result.returncode else []
    except (ValueError, OSError) as error:
        raise _Usage(str(error)) from error
    if hidden:
        print(
            "libcfake: the command looked for these paths, which exist on the host but not in "
            "the sandbox (give them with --file VPATH=HOSTPATH or --fs-dir DIR):",
            file=sys.stderr,
        )
        for path in hidden[:20]:
            print(f"  {path}", file=sys.stderr)
    if violations:
        print(format_report(violations, command_line=True), file=sys.stderr)
        if not args.violations_ok:
            return VIOLATION_STATUS
    return result.returncode if result.returncode >= 0 else 128 - result.returncode


class _Tracer:
    """``libcfake trace``'s handler: answers each call as the host would, and prints it with its
    outcome, like strace at the libc level. Reads (opens without writing, stat, lstat, access,
    readlink, getaddrinfo) are made by the master itself, so their result can be shown; writes
    and connections are refused unless allowed, then made by the program (shown as "real call").
    Keeps what the summary at the end lists: files missing, names resolved, connections."""

    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.out = out
        self.missing: dict[str, None] = {}  # ordered sets
        self.resolved: dict[str, str] = {}
        self.connections: dict[str, None] = {}

    def __call__(self, svc: LibcService) -> None:
        call: Call = svc.call
        function = call.function
        fds = svc.descriptors()
        try:
            answer = self._answer(svc, call, fds)
        finally:
            for fd in fds:
                os.close(fd)
        marker = "" if function in SEED_FUNCTIONS else "  [extension]"
        print(f"{call.describe()} = {answer}{marker}", file=self.out, flush=True)

    def _answer(self, svc: LibcService, call: Call, fds: list[int]) -> str:
        function = call.function
        args = self.args
        if function.startswith(("connect", "bind")):
            if function.startswith("connect"):
                self.connections[_address(call)] = None
            if not args.allow_network:
                code = errno.ECONNREFUSED if function.startswith("connect") else errno.EACCES
                svc.send(-1, code)
                return f"-1 {errno.errorcode[code]} (refused)"
        elif call.changes_filesystem and not args.allow_writes and not _device(call):
            svc.send(-1, errno.EROFS)
            return "-1 EROFS (refused)"
        elif not fds:  # (a relative path with a directory descriptor: the program's to resolve)
            try:
                shown = self._perform(svc, call)
            except OSError as error:
                code = error.errno or errno.EIO
                if code == errno.ENOENT and function in _LOOKS:
                    self.missing[os.fsdecode(call.raw.string1 or b"")] = None
                svc.send(-1, code)
                return f"-1 {errno.errorcode.get(code, code)}"
            if shown is not None:
                return shown
        svc.use_slave_credentials()
        return "real call"

    def _perform(self, svc: LibcService, call: Call) -> str | None:
        """Make a read-only call as the host would and answer it; what to show, or None when
        the program is to make the call itself."""
        raw, function = call.raw, call.function
        path = os.fsdecode(raw.string1 or b"")
        if function in ("stat", "lstat"):
            info = os.stat(path, follow_symlinks=function == "stat")
            self._found(path)
            svc.send(StatResult.from_os(info))
            return f"0 ({stat_module.filemode(info.st_mode)} {info.st_size} bytes)"
        if function in ("access", "eaccess"):
            os.lstat(path)  # ENOENT, ENOTDIR, ELOOP... before EACCES, as the kernel
            if not os.access(path, raw.flags, effective_ids=function == "eaccess"):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
            self._found(path)
            svc.send(0)
            return "0"
        if function == "readlink":
            target = os.readlink(path)
            svc.send(target)
            return repr(target)
        if function == "getaddrinfo" and raw.string1 is not None:
            return self._getaddrinfo(svc, call)
        if function in ("open", "openat") and not call.changes_filesystem and not raw.resolve:
            fd = os.open(path, raw.flags | os.O_CLOEXEC)
            self._found(path)
            try:
                svc.send_with_fds(0, [fd])
            finally:
                os.close(fd)
            return "fd"
        return None

    def _getaddrinfo(self, svc: LibcService, call: Call) -> str:
        raw = call.raw
        node = os.fsdecode(raw.string1 or b"")
        service = None if raw.string2 is None else os.fsdecode(raw.string2)
        try:
            found = socket.getaddrinfo(node, service, raw.family, raw.socktype, raw.protocol,
                                       raw.flags)  # fmt: skip
        except socket.gaierror as error:
            name = next((n for n, code in GAI_ERRORS.items() if code == error.errno), "fail")
            svc.send(name)
            self.resolved[node] = f"EAI {name}"
            return f"EAI {name}"
        entries = [(info[4][0], info[4][1], info[1], info[2]) for info in found]
        svc.send(entries)
        addresses = ", ".join(dict.fromkeys(str(entry[0]) for entry in entries))
        self.resolved[node] = addresses
        return addresses

    def _found(self, path: str) -> None:
        """A file found: a name the program looked for in other directories first (a PATH or
        sys.path search) was not missing after all."""
        name = "/" + path.rpartition("/")[2]
        for missed in [m for m in self.missing if m.endswith(name)]:
            del self.missing[missed]

    def summary(self) -> str:
        lines = []
        if self.missing:
            lines.append("files missing: " + ", ".join(self.missing))
        if self.resolved:
            lines.append(
                "names resolved: " + ", ".join(f"{n} = {a}" for n, a in self.resolved.items())
            )
        if self.connections:
            lines.append("connections: " + ", ".join(self.connections))
        return "\n".join(lines)


#: The calls whose ENOENT says a program looked for a file that is not there.
_LOOKS = frozenset({"open", "openat", "stat", "lstat", "access", "eaccess", "readlink"})


def _device(call: Call) -> bool:
    """Whether a call opens a device or one of the program's own descriptors (``2>/dev/null``),
    which writes no file."""
    path = os.fsdecode(call.raw.string1 or b"")
    return call.function in ("open", "openat") and (
        path in DEVICES or path.startswith(("/dev/fd/", "/dev/std", "/proc/self/fd/"))
    )


def _address(call: Call) -> str:
    arguments = call.arguments()
    if call.function.endswith("unix"):
        name = arguments[0]
        return "@" + name[1:].decode(errors="replace") if isinstance(name, bytes) else str(name)
    return f"{arguments[0]}:{arguments[1]}"


def trace(args: argparse.Namespace) -> int:
    out = open(args.output, "w") if args.output else sys.stderr  # noqa: SIM115
    try:
        with LibcService() as svc:
            try:
                proc = svc.spawn(args.command)
            except OSError as error:
                raise _Usage(f"cannot run {args.command[0]}: {error.strerror}") from error
            tracer = _Tracer(args, out)
            status = svc.serve(tracer, until=proc)
        summary = tracer.summary()
        if summary:
            print(summary, file=out, flush=True)
    finally:
        if out is not sys.stderr:
            out.close()
    assert status is not None
    return status if status >= 0 else 128 - status


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="libcfake", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="action", required=True)

    run_parser = commands.add_parser("run", help="run a command in a sandbox built from options")
    run_parser.add_argument("--fs-dir", metavar="DIR",
                            help="a host directory whose entries make up /")  # fmt: skip
    run_parser.add_argument("--file", action="append", default=[], metavar="VPATH=HOSTPATH",
                            help="a virtual file with a host file's contents")  # fmt: skip
    run_parser.add_argument("--hosts", action="append", default=[], metavar="FILE",
                            help="names for the DNS model, in hosts-file syntax")  # fmt: skip
    run_parser.add_argument("--zone", action="append", default=[], metavar="FILE",
                            help="a zone file for the DNS model")  # fmt: skip
    run_parser.add_argument("--route", action="append", default=[],
                            metavar="HOST:PORT=TARGET",
                            help="send connections to TARGET (ip:port or a path)")  # fmt: skip
    run_parser.add_argument("--fail", action="append", default=[], metavar="CALL:PATTERN:ERRNO",
                            help="fail matching calls, e.g. open:/etc/*:EACCES")  # fmt: skip
    run_parser.add_argument("--cwd", default="/", help="the virtual directory to start in")
    run_parser.add_argument("--backend", choices=BACKENDS, default=None,
                            help="preload: the shim alone; hybrid: and every program under the "
                            f"seccomp supervisor (default: {DEFAULT_BACKEND})")  # fmt: skip
    run_parser.add_argument("--violations-ok", action="store_true",
                            help="exit with the command's status despite violations")  # fmt: skip
    run_parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    run_parser.set_defaults(handler=run)

    trace_parser = commands.add_parser("trace", help="print every call a command forwards")
    trace_parser.add_argument("-o", "--output", help="write the trace to a file")
    trace_parser.add_argument("--allow-writes", action="store_true",
                              help="let writes reach the real disk (default: EROFS)")  # fmt: skip
    trace_parser.add_argument("--allow-network", action="store_true",
                              help="let connect and bind through (default: refused)")  # fmt: skip
    trace_parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    trace_parser.set_defaults(handler=trace)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        top.error(f"{args.action}: no command given (put it after --)")
    args.command = command
    try:
        return int(args.handler(args))
    except _Usage as error:
        top.error(f"{args.action}: {error}")
    except subprocess.SubprocessError as error:  # pragma: no cover - defensive
        top.error(str(error))
    return 2


if __name__ == "__main__":
    sys.exit(main())
