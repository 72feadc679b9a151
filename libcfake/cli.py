"""The ``libcfake`` command line: run a program in a sandbox, or trace what it touches.

    libcfake run --file /etc/app.conf=./app.conf --hosts ./hosts --fail open:/var/log/*:EACCES \\
        -- ./app --check
    libcfake trace -- python3 -c "import json"

``run`` builds a Sandbox from its options, runs the command with the terminal's stdin, stdout
and stderr, then prints a summary of violations on stderr. It exits with the command's status,
or with 86 when the command made calls that nothing covered (``--violations-ok`` keeps the
command's status). ``trace`` runs the command against the real host — reads go through, writes
and connections are refused unless allowed — and prints every forwarded call and its answer,
like strace at the libc level, so you can see what a program touches before writing a test.
"""

from __future__ import annotations

import argparse
import errno
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ._hybrid import BACKENDS, DEFAULT_BACKEND
from .calls import Call
from .gai import GAI_ERRORS
from .journal import errno_number, format_report
from .protocol import SEED_FUNCTIONS
from .sandbox import Sandbox
from .service import LibcService

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


def _trace_handler(args: argparse.Namespace, out: object):  # type: ignore[no-untyped-def]
    def handler(svc: LibcService) -> None:
        call: Call = svc.call
        refuse = 0
        if call.function.startswith(("connect", "bind")) and not args.allow_network:
            refuse = errno.ECONNREFUSED if call.function.startswith("connect") else errno.EACCES
        elif call.changes_filesystem and not args.allow_writes:
            refuse = errno.EROFS
        for fd in svc.descriptors():
            os.close(fd)
        if refuse:
            svc.send(-1, refuse)
            answer = f"-1 {errno.errorcode[refuse]} (refused)"
        else:
            svc.use_slave_credentials()
            answer = "real call"
        marker = "" if call.function in SEED_FUNCTIONS else "  [extension]"
        print(f"{call.describe()} = {answer}{marker}", file=out, flush=True)  # type: ignore[call-overload]

    return handler


def trace(args: argparse.Namespace) -> int:
    out = open(args.output, "w") if args.output else sys.stderr  # noqa: SIM115
    try:
        with LibcService() as svc:
            try:
                proc = svc.spawn(args.command)
            except OSError as error:
                raise _Usage(f"cannot run {args.command[0]}: {error.strerror}") from error
            status = svc.serve(_trace_handler(args, out), until=proc)
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
