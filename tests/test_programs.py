"""Real programs behind the real shim, each answered by a handler written in the test."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import threading
from pathlib import PurePosixPath

import pytest

from libcfake import GAI_ERRORS, LibcService, Sandbox, StatResult, shim_path

from .conftest import passthrough, run_served

VIRTUAL = PurePosixPath("/virtual/hello.txt")


def memfd_with(contents: bytes) -> int:
    fd = os.memfd_create("libcfake-test")
    os.write(fd, contents)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def only(function: str, path: PurePosixPath, answer):  # type: ignore[no-untyped-def]
    """A handler that answers ``function`` on ``path`` with ``answer(svc)``, passes the rest."""

    def handler(svc: LibcService) -> None:
        if svc.function_ == function and svc.arguments()[0] == path:
            answer(svc)
        else:
            svc.use_slave_credentials()

    return handler


def answer_file(contents: bytes):  # type: ignore[no-untyped-def]
    def answer(svc: LibcService) -> None:
        fd = memfd_with(contents)
        svc.send_with_fds(0, [fd])
        os.close(fd)

    return answer


def test_cat_prints_the_memfd_it_was_given(service: LibcService) -> None:
    ran = run_served(
        service, ["cat", str(VIRTUAL)], only("open", VIRTUAL, answer_file(b"hello from memory\n"))
    )
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "hello from memory\n", "")


def test_cat_reports_the_errno_the_master_chose(service: LibcService) -> None:
    ran = run_served(
        service,
        ["cat", str(VIRTUAL)],
        only("open", VIRTUAL, lambda svc: svc.send(-1, errno.EDEADLK)),
    )
    assert ran.returncode == 1
    assert f"cat: {VIRTUAL}: {os.strerror(errno.EDEADLK)}" in ran.stderr


def test_errno_may_be_an_oserror(service: LibcService) -> None:
    error = PermissionError(errno.EACCES, "no")
    ran = run_served(
        service, ["cat", str(VIRTUAL)], only("open", VIRTUAL, lambda svc: svc.send(-1, error))
    )
    assert os.strerror(errno.EACCES) in ran.stderr


def test_use_slave_credentials_performs_the_real_call(service: LibcService, tmp_path) -> None:  # type: ignore[no-untyped-def]
    real = tmp_path / "real.txt"
    real.write_text("on the real disk\n")
    ran = run_served(service, ["cat", str(real)], passthrough)
    assert ran.stdout == "on the real disk\n"
    assert ("open", "open", (PurePosixPath(real), ["read_only"])) in ran.calls


STAT = StatResult(
    type="regular", mode=0o640, size=1234, uid=4321, gid=99, mtime=1_700_000_000.5, ino=77, nlink=3
)


@pytest.mark.parametrize(("follow", "function"), [(["-L"], "stat"), ([], "lstat")])
def test_coreutils_stat_sees_the_synthesized_table(
    service: LibcService, follow: list[str], function: str
) -> None:
    args = ["stat", *follow, "-c", "%s %F %a %u %g %i %h %Y", str(VIRTUAL)]
    ran = run_served(service, args, only(function, VIRTUAL, lambda svc: svc.send(STAT)))
    assert ran.stdout == "1234 regular file 640 4321 99 77 3 1700000000\n", ran.stderr


def test_stat_accepts_a_mapping_and_lstat_a_symlink(service: LibcService) -> None:
    table = {"type": "symlink", "mode": 0o777, "size": 9}
    ran = run_served(
        service,
        ["stat", "-c", "%F %s", str(VIRTUAL)],
        only("lstat", VIRTUAL, lambda svc: svc.send(table)),
    )
    assert ran.stdout == "symbolic link 9\n", ran.stderr


def test_python_os_stat_sees_the_synthesized_table(service: LibcService) -> None:
    code = (
        f"import os; st = os.stat({str(VIRTUAL)!r}); "
        "print(st.st_size, oct(st.st_mode), st.st_uid, st.st_mtime_ns)"
    )
    ran = run_served(
        service, [sys.executable, "-c", code], only("stat", VIRTUAL, lambda svc: svc.send(STAT))
    )
    assert ran.stdout == "1234 0o100640 4321 1700000000500000000\n", ran.stderr


def test_relative_paths_reach_the_master_absolute(service: LibcService, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "rel.txt").write_text("relative\n")
    ran = run_served(service, ["cat", "rel.txt"], passthrough, cwd=tmp_path)
    assert ran.stdout == "relative\n"
    assert ("open", "open", (PurePosixPath(tmp_path / "rel.txt"), ["read_only"])) in ran.calls


def test_openat_with_a_real_dirfd_hands_it_to_the_master(service: LibcService, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def handler(svc: LibcService) -> None:
        if svc.function_ == "openat" and svc.arguments()[0] == PurePosixPath("inside.txt"):
            (dirfd,) = svc.descriptors()
            seen.append(os.readlink(f"/proc/self/fd/{dirfd}"))
            os.close(dirfd)
            assert svc.descriptors() == []  # once, as in Emilua
            answer_file(b"via dirfd\n")(svc)
        else:
            svc.use_slave_credentials()

    code = (
        f"import os; d = os.open({str(tmp_path)!r}, os.O_RDONLY | os.O_DIRECTORY); "
        "fd = os.open('inside.txt', os.O_RDONLY, dir_fd=d); "
        "print(os.read(fd, 100).decode(), end='')"
    )
    ran = run_served(service, [sys.executable, "-c", code], handler)
    assert ran.stdout == "via dirfd\n", ran.stderr
    assert seen == [str(tmp_path)]


# -- name resolution -----------------------------------------------------------------------

ANSWERS = [("192.0.2.10", None), ("2001:db8::10", None)]


def resolve(answer):  # type: ignore[no-untyped-def]
    def handler(svc: LibcService) -> None:
        if svc.function_ == "getaddrinfo":
            svc.send(answer)
        else:
            svc.use_slave_credentials()

    return handler


def test_getent_ahosts_lists_the_answered_addresses(service: LibcService) -> None:
    ran = run_served(service, ["getent", "ahosts", "db.example.test"], resolve(ANSWERS))
    assert ran.returncode == 0, ran.stderr
    lines = [line.split() for line in ran.stdout.splitlines()]
    assert [line[0] for line in lines] == ["192.0.2.10"] * 3 + ["2001:db8::10"] * 3
    assert [line[1] for line in lines] == ["STREAM", "DGRAM", "RAW"] * 2
    assert lines[0][2:] == ["db.example.test"]  # getent asks for the canonical name
    lookups = [args for _, function, args in ran.calls if function == "getaddrinfo"]
    assert lookups == [("db.example.test", None, None)]


def test_python_getaddrinfo_sees_addresses_and_ports(service: LibcService) -> None:
    code = (
        "import socket; print(sorted({(a[4][0], a[4][1]) for a in "
        "socket.getaddrinfo('db.example.test', 5432, type=socket.SOCK_STREAM)}))"
    )
    ran = run_served(
        service,
        [sys.executable, "-c", code],
        resolve([("192.0.2.10", 5432), ("2001:db8::10", 5432)]),
    )
    assert ran.stdout.strip() == "[('192.0.2.10', 5432), ('2001:db8::10', 5432)]", ran.stderr
    lookups = [args for _, function, args in ran.calls if function == "getaddrinfo"]
    assert lookups == [("db.example.test", "5432", "tcp")]


@pytest.mark.parametrize("name", sorted(GAI_ERRORS))
def test_each_error_name_reaches_the_program_as_its_eai_code(
    service: LibcService, name: str
) -> None:
    code = (
        "import socket\ntry:\n  socket.getaddrinfo('db.example.test', None)\n"
        "except OSError as e:\n  print(type(e).__name__, e.errno)"
    )
    ran = run_served(service, [sys.executable, "-c", code], resolve(name))
    # EAI_SYSTEM means "see errno": Python raises a plain OSError with that errno
    expected = "OSError 5" if name == "system" else f"gaierror {GAI_ERRORS[name]}"
    assert ran.stdout.strip() == expected, ran.stderr


def test_an_empty_answer_is_no_such_name(service: LibcService) -> None:
    ran = run_served(service, ["getent", "ahosts", "db.example.test"], resolve(None))
    assert ran.returncode == 2 and ran.stdout == ""


# -- sockets -------------------------------------------------------------------------------


class EchoServer:
    """A loopback server that answers each connection's first message with b"pong:" + it."""

    def __init__(self, family: int, address: object) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(address)
        self.sock.listen(4)
        self.address = self.sock.getsockname()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"pong:" + conn.recv(100))

    def close(self) -> None:
        self.sock.close()


CLIENT = """
import socket, sys
family = {{"inet": socket.AF_INET, "inet6": socket.AF_INET6, "unix": socket.AF_UNIX}}[sys.argv[1]]
s = socket.socket(family, socket.SOCK_STREAM)
s.connect({target})
s.sendall(b"ping")
print(s.recv(100).decode())
"""


def connect_in_place(server: EchoServer):  # type: ignore[no-untyped-def]
    """Connect the program's own socket (received with the call) to the server."""

    def handler(svc: LibcService) -> None:
        if svc.function_.startswith("connect_"):
            (fd,) = svc.descriptors()
            sock = socket.socket(fileno=fd)
            sock.connect(server.address)
            sock.close()  # the program holds its own copy, now connected
            svc.send(0)
        else:
            svc.use_slave_credentials()

    return handler


def replace_with_connected(server: EchoServer, family: int):  # type: ignore[no-untyped-def]
    """Hand the program a new, connected socket in place of its own."""

    def handler(svc: LibcService) -> None:
        if svc.function_.startswith("connect_"):
            for fd in svc.descriptors():
                os.close(fd)
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.connect(server.address)
                svc.send_with_fds(0, [sock])
        else:
            svc.use_slave_credentials()

    return handler


@pytest.mark.parametrize("strategy", [connect_in_place, replace_with_connected])
@pytest.mark.parametrize(
    ("kind", "family", "target", "expected"),
    [
        ("inet", socket.AF_INET, "('203.0.113.7', 80)", ("connect_inet", ("203.0.113.7", 80))),
        ("inet6", socket.AF_INET6, "('2001:db8::7', 443)", ("connect_inet6", ("2001:db8::7", 443))),
        (
            "unix",
            socket.AF_UNIX,
            "'/virtual/db.sock'",
            ("connect_unix", (PurePosixPath("/virtual/db.sock"),)),
        ),
        ("unix", socket.AF_UNIX, "b'\\0abstract-name'", ("connect_unix", (b"\0abstract-name",))),
    ],
)
def test_connect_reaches_a_local_server(  # type: ignore[no-untyped-def]
    service: LibcService, tmp_path, strategy, kind, family, target, expected
) -> None:
    address = {"inet": ("127.0.0.1", 0), "inet6": ("::1", 0), "unix": str(tmp_path / "s")}[kind]
    server = EchoServer(family, address)
    try:
        handler = strategy(server) if strategy is connect_in_place else strategy(server, family)
        ran = run_served(
            service, [sys.executable, "-c", CLIENT.format(target=target), kind], handler
        )
    finally:
        server.close()
    assert ran.stdout == "pong:ping\n", ran.stderr
    connects = [
        (function, tuple(a if isinstance(a, (int, bytes, PurePosixPath)) else str(a) for a in args))
        for _, function, args in ran.calls
        if function.startswith("connect_")
    ]
    assert connects == [expected]


def test_connect_refused_by_the_master(service: LibcService) -> None:
    def handler(svc: LibcService) -> None:
        if svc.function_ == "connect_inet":
            svc.send(-1, errno.ECONNREFUSED)
        else:
            svc.use_slave_credentials()

    code = (
        "import socket\ntry:\n  socket.create_connection(('192.0.2.1', 9))\n"
        "except OSError as e:\n  print(e.errno)"
    )
    ran = run_served(service, [sys.executable, "-c", code], handler)
    assert ran.stdout.strip() == str(errno.ECONNREFUSED), ran.stderr


BIND = """
import socket, sys
s = socket.socket(socket.AF_UNIX if sys.argv[1] == "unix" else socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(sys.argv[2] if sys.argv[1] == "unix" else ("198.51.100.1", 8080))
except OSError as e:
    print("bind failed", e.errno)
    sys.exit(0)
s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
c.sendall(b"hello from the program")
"""


@pytest.mark.parametrize("kind", ["unix", "inet"])
def test_bind_refused_by_the_master(service: LibcService, kind: str) -> None:
    def handler(svc: LibcService) -> None:
        if svc.function_.startswith("bind_"):
            svc.send(-1, errno.EADDRINUSE)
        else:
            svc.use_slave_credentials()

    ran = run_served(service, [sys.executable, "-c", BIND, kind, "/virtual/server.sock"], handler)
    assert ran.stdout == f"bind failed {errno.EADDRINUSE}\n", ran.stderr


@pytest.mark.parametrize("kind", ["unix", "inet"])
def test_bind_performed_by_the_master_makes_the_program_reachable(  # type: ignore[no-untyped-def]
    service: LibcService, tmp_path, kind: str
) -> None:
    real = {"unix": str(tmp_path / "real.sock"), "inet": ("127.0.0.1", 0)}[kind]
    bound: list[object] = []

    def handler(svc: LibcService) -> None:
        if svc.function_.startswith("bind_"):
            (fd,) = svc.descriptors()
            sock = socket.socket(fileno=fd)
            sock.bind(real)
            bound.append(sock.getsockname())
            sock.close()
            svc.send(0)
        else:
            svc.use_slave_credentials()

    proc = service.spawn(
        [sys.executable, "-c", BIND, kind, "/virtual/server.sock"],
        stdout=__import__("subprocess").PIPE,
    )
    result: dict[str, bytes] = {}

    def client() -> None:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"listening\n"
        family = socket.AF_UNIX if kind == "unix" else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.connect(bound[0])  # type: ignore[arg-type]
            result["data"] = sock.recv(100)

    thread = threading.Thread(target=client)
    thread.start()
    assert service.serve(handler, until=proc, timeout=60) == 0
    thread.join(10)
    assert result["data"] == b"hello from the program"


def test_programs_run_behind_the_configured_shim(service: LibcService) -> None:
    ran = run_served(service, ["cat", "/proc/self/maps"], passthrough)
    assert str(shim_path()) in ran.stdout
    if os.environ.get("LIBCFAKE_SANITIZE") == "1":
        assert "libasan" in ran.stdout


@pytest.mark.parametrize("how", ["posix_spawnp", "execvp"])
def test_running_a_name_on_no_path_is_enoent_as_natively(how: str) -> None:
    code = (
        "import os, sys\n"
        "try:\n"
        "    if sys.argv[1] == 'posix_spawnp':\n"
        "        os.posix_spawnp('no-such-program-xyz', ['x'], {'PATH': '/usr/bin:/bin'})\n"
        "    else:\n"
        "        os.execvp('no-such-program-xyz', ['x'])\n"
        "except OSError as error:\n"
        "    print(error.errno)\n"
    )
    native = subprocess.run([sys.executable, "-c", code, how], capture_output=True, text=True)
    with Sandbox() as sb:
        result = sb.run([sys.executable, "-c", code, how], capture_output=True, text=True)
        assert result.stdout == native.stdout == f"{errno.ENOENT}\n", result.stderr
        assert not sb.violations, sb.violations
