"""The network model: real programs connect and serve on virtual addresses, every byte stays on
loopback, and failures come on demand."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from libcfake import Sandbox
from libcfake.net import reset

ROOT = Path(__file__).resolve().parent.parent


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"ok {self.path} host={self.headers['Host']}\n".encode()
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, int]]:
    """An HTTP server the test runs on loopback: GET /health answers "ok"."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield ("127.0.0.1", server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(reply_timeout=20) as sandbox:
        yield sandbox


def python(sb: Sandbox, code: str, *args: str, timeout: float = 60) -> str:
    """Run a Python program in the sandbox; its stdout (it must exit 0)."""
    result = sb.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                    timeout=timeout)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


# -- clients reach the test's servers --------------------------------------------------------


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.skipif(
    os.environ.get("LIBCFAKE_SANITIZE") == "1",
    reason="curl deadlocks in setlocale() at startup behind the ASan build of the shim, "
    "with or without the network model (a shim issue of its own)",
)
def test_curl_fetches_a_virtual_host_from_the_tests_http_server(
    sb: Sandbox, http_server: tuple[str, int]
) -> None:
    sb.net.route(("api.example.test", 80), to=http_server)
    result = sb.run(["curl", "-sS", "--fail", "http://api.example.test/health"],
                    capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok /health host=api.example.test\n"
    assert not sb.violations


HTTP_CLIENT = """
import http.client
conn = http.client.HTTPConnection("api.example.test", 80, timeout=10)
conn.request("GET", "/health")
response = conn.getresponse()
print(response.status, response.read().decode(), end="")
"""
URLLIB = """
import urllib.request
with urllib.request.urlopen("http://api.example.test/health", timeout=10) as response:
    print(response.status, response.read().decode(), end="")
"""


@pytest.mark.parametrize("client", [HTTP_CLIENT, URLLIB], ids=["http.client", "urllib"])
def test_python_http_clients_fetch_a_virtual_host(
    sb: Sandbox, http_server: tuple[str, int], client: str
) -> None:
    sb.net.route(("api.example.test", 80), to=http_server)
    assert python(sb, client) == "200 ok /health host=api.example.test\n"
    assert not sb.violations


def test_a_route_by_name_uses_the_names_own_dns_addresses(
    sb: Sandbox, http_server: tuple[str, int]
) -> None:
    sb.dns.add("db.internal", ["10.0.0.5", "2001:db8::5"])
    sb.net.route(("db.internal", 8080), to=http_server)
    code = (
        "import socket\n"
        "for family in (socket.AF_INET, socket.AF_INET6):\n"
        "    ip = socket.getaddrinfo('db.internal', 8080, family, socket.SOCK_STREAM)[0][4]\n"
        "    with socket.create_connection(ip[:2]) as s:\n"
        "        s.sendall(b'GET /health HTTP/1.0\\r\\nHost: db\\r\\n\\r\\n')\n"
        "        print(ip[0], s.makefile('rb').read().split(b'\\r\\n')[0].decode())\n"
    )
    assert python(sb, code).splitlines() == ["10.0.0.5 HTTP/1.0 200 OK",
                                            "2001:db8::5 HTTP/1.0 200 OK"]  # fmt: skip
    assert not sb.violations


ECHO_CLIENT = """
import socket, sys
target = sys.argv[1]
if target.startswith("/") or target.startswith("@"):
    s = socket.socket(socket.AF_UNIX)
    s.connect(target if target.startswith("/") else "\\0" + target[1:])
else:
    s = socket.create_connection((target, 7), timeout=10)
s.sendall(b"ping")
s.shutdown(socket.SHUT_WR)
print(s.makefile("rb").read().decode())
"""


def echo(sock: socket.socket) -> None:
    sock.sendall(b"echo:" + sock.recv(100))


async def async_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"echo:" + await reader.read(100))
    await writer.drain()


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert isinstance(self.transport, asyncio.Transport)
        self.transport.write(b"echo:" + data)
        self.transport.close()


@pytest.mark.parametrize("handler", [echo, async_echo, EchoProtocol])
@pytest.mark.parametrize(
    ("address", "target"),
    [
        (("echo.test", 7), "echo.test"),
        (("10.0.0.7", 7), "10.0.0.7"),
        (("2001:db8::7", 7), "2001:db8::7"),
        ("/run/echo.sock", "/run/echo.sock"),
        (b"\0echo", "@echo"),
    ],
    ids=["name", "inet", "inet6", "unix", "abstract"],
)
def test_a_python_handler_answers_on_a_virtual_address(
    sb: Sandbox, handler: object, address: object, target: str
) -> None:
    sb.net.route(address, to=handler)  # type: ignore[arg-type]
    assert python(sb, ECHO_CLIENT, target) == "echo:ping\n"
    assert not sb.violations and not sb.net.errors
    if isinstance(address, str):
        assert sb.run(["stat", "-c", "%F", address], capture_output=True,
                      text=True).stdout == "socket\n"  # fmt: skip


def test_a_handler_may_reset_or_close_mid_stream(sb: Sandbox) -> None:
    def half_then_reset(sock: socket.socket) -> None:
        sock.recv(100)
        sock.sendall(b"partial")
        time.sleep(0.2)
        reset(sock)

    def half_then_close(sock: socket.socket) -> None:
        sock.recv(100)
        sock.sendall(b"partial")

    sb.net.route(("flaky.test", 7), to=half_then_reset)
    sb.net.route(("short.test", 7), to=half_then_close)
    code = (
        "import socket, sys\n"
        "s = socket.create_connection((sys.argv[1], 7), timeout=10)\n"
        "s.sendall(b'ping')\n"
        "got = b''\n"
        "try:\n"
        "    while chunk := s.recv(100):\n"
        "        got += chunk\n"
        "    print(got.decode(), 'eof')\n"
        "except OSError as e:\n"
        "    print(got.decode(), e.errno)\n"
    )
    assert python(sb, code, "flaky.test") == f"partial {errno.ECONNRESET}\n"
    assert python(sb, code, "short.test") == "partial eof\n"
    assert not sb.violations


def test_a_non_blocking_connect_keeps_einprogress_then_so_error(sb: Sandbox) -> None:
    sb.net.route(("10.0.0.7", 7), to=echo)
    code = (
        "import select, socket, errno\n"
        "s = socket.socket(); s.setblocking(False)\n"
        "code = s.connect_ex(('10.0.0.7', 7))\n"
        "print(errno.errorcode.get(code, code))\n"
        "select.select([], [s], [], 10)\n"
        "print('so_error', s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))\n"
        "s.setblocking(True); s.sendall(b'nb'); print(s.recv(100).decode())\n"
    )
    first, *rest = python(sb, code).splitlines()
    assert first in ("EINPROGRESS", "0")  # loopback may finish the handshake at once
    assert rest == ["so_error 0", "echo:nb"]
    entry = next(e for e in sb.journal if e.call == "connect_inet")
    assert entry.errno in (errno.EINPROGRESS, 0) and not entry.violation
    assert not sb.violations


def test_a_udp_program_sends_to_a_virtual_address_the_test_listens_on(sb: Sandbox) -> None:
    listener = sb.net.listen(("10.0.0.53", 53), type=socket.SOCK_DGRAM)
    code = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.connect(('10.0.0.53', 53)); s.send(b'query'); print(s.recv(100).decode())\n"
    )
    proc = sb.popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    listener.settimeout(30)
    data, peer = listener.recvfrom(100)
    listener.sendto(b"answer:" + data, peer)
    stdout, _ = proc.communicate(timeout=30)
    assert stdout == "answer:query\n"
    assert not sb.violations


#: sendto, sendmsg or sendmmsg (through ctypes: the shim's symbol) of datagrams to an address.
SEND = """
import ctypes, socket, sys


class Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_char_p), ("len", ctypes.c_size_t)]


class Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.POINTER(Iovec)), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", Msghdr), ("len", ctypes.c_uint)]


def sockaddr(family, address):
    if family == socket.AF_UNIX:
        return family.to_bytes(2, sys.byteorder) + address.encode()
    host, port = address
    if family == socket.AF_INET:
        return (family.to_bytes(2, sys.byteorder) + port.to_bytes(2, "big")
                + socket.inet_pton(family, host) + bytes(8))
    return (family.to_bytes(2, sys.byteorder) + port.to_bytes(2, "big") + bytes(4)
            + socket.inet_pton(family, host) + bytes(4))


def sendmmsg(s, datagrams, address):
    name = sockaddr(s.family, address)
    vec = (Mmsghdr * len(datagrams))()
    iovs = [Iovec(data, len(data)) for data in datagrams]
    for i, iov in enumerate(iovs):
        vec[i].hdr.name, vec[i].hdr.namelen = name, len(name)
        vec[i].hdr.iov, vec[i].hdr.iovlen = ctypes.pointer(iov), 1
    libc = ctypes.CDLL(None, use_errno=True)
    sent = libc.sendmmsg(s.fileno(), vec, len(datagrams), 0)
    if sent < 0:
        raise OSError(ctypes.get_errno(), "sendmmsg")
    return sent


def send(how, s, datagrams, address):
    if how == "sendmmsg":
        return sendmmsg(s, datagrams, address)
    for data in datagrams:
        if how == "sendto":
            s.sendto(data, address)
        else:
            s.sendmsg([data], [], 0, address)
    return len(datagrams)


family = {"inet": socket.AF_INET, "inet6": socket.AF_INET6, "unix": socket.AF_UNIX}[sys.argv[2]]
how, host = sys.argv[1], sys.argv[3]
address = host if family == socket.AF_UNIX else (host, int(sys.argv[4]))
s = socket.socket(family, socket.SOCK_DGRAM)
s.settimeout(30)
if family == socket.AF_UNIX:
    s.bind("")  # autobind: a unix datagram socket needs a name to be answered
try:
    print("sent", send(how, s, [b"query", b"again"], address), flush=True)
except OSError as e:
    print(errno.errorcode[e.errno] if (errno := __import__("errno")) else "")
    sys.exit(0)
try:
    s.getpeername()
    print("connected")
except OSError:
    print("unconnected")
data, _ = s.recvfrom(100)
print(data.decode())
"""
SENDS = ["sendto", "sendmsg", "sendmmsg"]


@pytest.mark.parametrize("how", SENDS)
@pytest.mark.parametrize(
    ("address", "argv"),
    [
        (("10.0.0.53", 53), ["inet", "10.0.0.53", "53"]),
        (("10.0.0.53", 53), ["inet6", "::ffff:10.0.0.53", "53"]),
        ("/run/dns/query.sock", ["unix", "/run/dns/query.sock"]),
    ],
    ids=["inet", "inet6-mapped", "unix"],
)
def test_a_program_sends_datagrams_to_a_virtual_address_unconnected(
    sb: Sandbox, how: str, address: tuple[str, int] | str, argv: list[str]
) -> None:
    listener = sb.net.listen(address, type=socket.SOCK_DGRAM)
    listener.settimeout(30)
    proc = sb.popen([sys.executable, "-c", SEND, how, *argv], stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True)  # fmt: skip
    first, peer = listener.recvfrom(100)
    second, _ = listener.recvfrom(100)
    listener.sendto(b"answer:" + first + b"," + second, peer)  # back to the program's socket
    stdout, stderr = proc.communicate(timeout=30)
    assert stdout == "sent 2\nunconnected\nanswer:query,again\n", stderr
    assert not sb.violations
    sends = [e for e in sb.journal if e.symbol == how]
    assert len(sends) == 2
    assert all(e.call.startswith("connect_") and e.answer == "fd" for e in sends)


@pytest.mark.parametrize("how", SENDS)
def test_an_unrouted_send_is_a_violation_and_nothing_arrives(sb: Sandbox, how: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as real:
        real.bind(("127.0.0.1", 0))
        port = real.getsockname()[1]
        stdout = python(sb, SEND, how, "inet", "127.0.0.1", str(port))
        assert stdout == "ECONNREFUSED\n"
        real.setblocking(False)
        with pytest.raises(BlockingIOError):
            real.recvfrom(100)  # nothing ever reached it
    (violation,) = sb.violations
    assert violation.call == "connect_inet" and violation.symbol == how
    assert f"{how} to 127.0.0.1:{port}: no route" in violation.reason


def test_an_af_unspec_destination_is_read_as_ipv4_like_the_kernel_does(sb: Sandbox) -> None:
    code = (
        "import ctypes, errno, socket, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "to = bytes(2) + int(sys.argv[1]).to_bytes(2, 'big') + socket.inet_aton('127.0.0.1')\n"
        "to += bytes(8)  # sin_family AF_UNSPEC: UDP sends to the address all the same\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "sent = libc.sendto(s.fileno(), b'x', 1, 0, to, len(to))\n"
        "print(sent, errno.errorcode.get(ctypes.get_errno()) if sent < 0 else '')\n"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as real:
        real.bind(("127.0.0.1", 0))
        assert python(sb, code, str(real.getsockname()[1])) == "-1 ECONNREFUSED\n"
        real.setblocking(False)
        with pytest.raises(BlockingIOError):
            real.recvfrom(100)
    assert [v.symbol for v in sb.violations] == ["sendto"]


def test_an_unrouted_unix_datagram_to_a_host_socket_is_a_violation(
    sb: Sandbox, tmp_path: Path
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as real:
        real.bind(str(tmp_path / "log.sock"))
        assert python(sb, SEND, "sendto", "unix", str(tmp_path / "log.sock")) == "ENOENT\n"
        real.setblocking(False)
        with pytest.raises(BlockingIOError):
            real.recvfrom(100)
    assert [v.symbol for v in sb.violations] == ["sendto"]


def test_datagram_failures_come_on_demand(sb: Sandbox) -> None:
    sb.net.listen(("dns.test", 53), type=socket.SOCK_DGRAM)
    sb.net.fail("dns.test:53", errno.EHOSTUNREACH)  # a name stands for its model addresses
    assert python(sb, SEND, "sendto", "inet", "dns.test", "53") == "EHOSTUNREACH\n"
    assert not sb.violations
    (entry,) = [e for e in sb.journal if e.symbol == "sendto"]
    assert entry.fault


EXCHANGE = """
import socket, sys
family = socket.AF_INET if sys.argv[1] == "inet" else socket.AF_UNIX
server = socket.socket(family, socket.SOCK_DGRAM)
server.bind(("0.0.0.0", 5300) if family == socket.AF_INET else "/tmp/server.sock")
client = socket.socket(family, socket.SOCK_DGRAM)
if family == socket.AF_UNIX:
    client.bind("/tmp/client.sock")
client.sendto(b"ping", ("127.0.0.1", 5300) if family == socket.AF_INET else "/tmp/server.sock")
data, peer = server.recvfrom(100)
server.sendto(b"pong:" + data, peer)  # peer: the client's real address
print(client.recv(100).decode())
"""


@pytest.mark.parametrize("family", ["inet", "unix"])
def test_programs_exchange_datagrams_and_answer_their_source(sb: Sandbox, family: str) -> None:
    sb.net.allow_bind(("0.0.0.0", 5300))
    assert python(sb, EXCHANGE, family) == "pong:ping\n"
    assert not sb.violations


def test_a_program_answers_the_tests_datagram_client(sb: Sandbox) -> None:
    sb.net.allow_bind(("0.0.0.0", 5353))
    code = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.bind(('0.0.0.0', 5353)); print('bound', flush=True)\n"
        "data, peer = s.recvfrom(100); s.sendto(b'answer:' + data, peer)\n"
    )
    proc = sb.popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "bound\n"
    with sb.net.connect(("127.0.0.1", 5353), type=socket.SOCK_DGRAM) as client:
        client.send(b"query")
        assert client.recv(100) == b"answer:query"
    assert proc.wait(timeout=30) == 0
    assert not sb.violations


def test_tcp_fast_open_sendto_connects_in_place_then_sends(sb: Sandbox) -> None:
    sb.net.route(("10.0.0.7", 7), to=echo)
    code = (
        "import socket\n"
        "s = socket.socket()\n"
        "s.sendto(b'fast', socket.MSG_FASTOPEN, ('10.0.0.7', 7))\n"
        "print(s.getpeername(), s.recv(100).decode())\n"
    )
    assert python(sb, code) == "('10.0.0.7', 7) echo:fast\n"
    assert not sb.violations and not sb.net.errors
    (entry,) = [e for e in sb.journal if e.symbol == "sendto"]
    assert entry.call == "connect_inet" and entry.answer == "0"


def test_a_datagram_to_a_python_handler_is_refused(sb: Sandbox) -> None:
    sb.net.route(("10.0.0.7", 7), to=echo)
    assert python(sb, SEND, "sendto", "inet", "10.0.0.7", "7") == "ECONNREFUSED\n"
    assert "serves stream sockets only" in sb.violations[0].reason


# -- nothing else is reachable ---------------------------------------------------------------


CONNECT = """
import socket, sys, time
start = time.monotonic()
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30).close()
    print("connected")
except OSError as e:
    print(errno.errorcode[e.errno] if (errno := __import__("errno")) else "", end=" ")
    print(round(time.monotonic() - start, 1))
"""


def connect_outcome(sb: Sandbox, host: str, port: int) -> tuple[str, float]:
    name, seconds = python(sb, CONNECT, host, str(port)).split()
    return name, float(seconds)


def test_an_unrouted_connect_is_a_violation_and_refused(sb: Sandbox) -> None:
    assert connect_outcome(sb, "192.0.2.1", 443)[0] == "ECONNREFUSED"
    (violation,) = sb.violations
    assert violation.call == "connect_inet" and violation.arguments[1] == 443
    assert "connect to 192.0.2.1:443: no route" in violation.reason


def test_the_unrouted_errno_is_configurable(sb: Sandbox) -> None:
    sb.net.unrouted = errno.ENETUNREACH
    assert connect_outcome(sb, "2001:db8::1", 80)[0] == "ENETUNREACH"
    assert "[2001:db8::1]:80" in sb.violations[0].reason


def test_a_real_loopback_service_without_a_route_is_unreachable(sb: Sandbox) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.setblocking(False)
        assert connect_outcome(sb, "127.0.0.1", server.getsockname()[1])[0] == "ECONNREFUSED"
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever reached it
    assert len(sb.violations) == 1


@pytest.mark.parametrize(
    ("error", "delay"),
    [
        (errno.ECONNREFUSED, 0.0),
        (errno.ENETUNREACH, 0.0),
        (errno.EHOSTUNREACH, 0.0),
        (errno.ETIMEDOUT, 1.0),
    ],
)
def test_connect_failures_come_on_demand(
    sb: Sandbox, http_server: tuple[str, int], error: int, delay: float
) -> None:
    sb.net.route(("api.example.test", 80), to=http_server)
    sb.net.fail("api.example.test:80", error, delay=delay)
    name, seconds = connect_outcome(sb, "api.example.test", 80)
    assert name == errno.errorcode[error]
    assert delay <= seconds < delay + 5
    assert not sb.violations  # a planned failure is no violation
    (entry,) = [e for e in sb.journal if e.call == "connect_inet"]
    assert entry.fault


def test_a_generic_fault_rule_matches_ip_and_port(sb: Sandbox) -> None:
    sb.fail("connect", "10.0.0.*:5432", errno.ECONNREFUSED)
    assert connect_outcome(sb, "10.0.0.5", 5432)[0] == "ECONNREFUSED"
    assert not sb.violations


# -- programs serve ----------------------------------------------------------------------------


SERVER = """
import socket, sys
kind, where = sys.argv[1], sys.argv[2]
family = {"inet": socket.AF_INET, "inet6": socket.AF_INET6}.get(kind, socket.AF_UNIX)
s = socket.socket(family, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((where, 8080) if family != socket.AF_UNIX else where.replace("@", "\\0"))
except OSError as e:
    print("bind failed", e.errno, flush=True)
    sys.exit(0)
s.listen(4)
print("listening", flush=True)
c, _ = s.accept()
c.sendall(b"hello " + c.recv(100))
"""


@pytest.mark.parametrize(
    ("kind", "where", "reach"),
    [
        ("inet", "0.0.0.0", ("127.0.0.1", 8080)),
        ("inet", "10.0.0.9", ("10.0.0.9", 8080)),
        ("inet6", "::", ("::1", 8080)),
        ("unix", "/run/app.sock", "/run/app.sock"),
        ("unix", "@app", b"\0app"),
    ],
)
def test_a_program_serves_on_a_virtual_address_the_test_connects_to(
    sb: Sandbox, kind: str, where: str, reach: object
) -> None:
    sb.net.allow_bind(("0.0.0.0", 8080))
    sb.net.allow_bind(("::", 8080))
    sb.fs.create_dir("/run")
    proc = sb.popen([sys.executable, "-c", SERVER, kind, where], stdout=subprocess.PIPE,
                    text=True)  # fmt: skip
    try:
        with sb.net.connect(reach, timeout=30) as sock:  # type: ignore[arg-type]
            sock.sendall(b"test")
            assert sock.recv(100) == b"hello test"
    finally:
        stdout, _ = proc.communicate(timeout=30)
    assert stdout == "listening\n"
    assert not sb.violations
    if kind == "unix" and where.startswith("/"):
        assert sb.fs.fake.resolve(where).st_mode & 0o170000 == 0o140000  # a socket file


@contextlib.contextmanager
def wildcard_server(sb: Sandbox) -> Iterator[None]:
    """SERVER listening on 0.0.0.0:8080 in the sandbox for the block, then ended."""
    proc = sb.popen([sys.executable, "-c", SERVER, "inet", "0.0.0.0"], stdout=subprocess.PIPE,
                    text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "listening\n"
        yield
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def test_a_program_bound_to_the_wildcard_is_reached_at_any_virtual_address(sb: Sandbox) -> None:
    sb.net.allow_bind(("0.0.0.0", 8080))
    with wildcard_server(sb), sb.net.connect(("10.0.0.9", 8080), timeout=30) as sock:
        sock.sendall(b"test")
        assert sock.recv(100) == b"hello test"
    assert not sb.violations


def test_a_connect_nothing_serves_says_what_programs_bound(sb: Sandbox) -> None:
    sb.net.allow_bind(("0.0.0.0", 0))
    with wildcard_server(sb):
        assert connect_outcome(sb, "10.0.0.9", 8081)[0] == "ECONNREFUSED"
    [violation] = sb.violations
    assert "programs have bound: 0.0.0.0:8080" in violation.reason


def test_a_route_goes_to_localhost_or_to_a_server_object(
    sb: Sandbox, http_server: tuple[str, int]
) -> None:
    class Server:  # what pytest-httpserver's HTTPServer offers: host and port
        host, port = "localhost", http_server[1]

    class SocketServer:  # socketserver's and http.server's servers
        server_address = http_server

    sb.net.route(("by-name.test", 80), to=("localhost", http_server[1]))
    sb.net.route(("by-object.test", 80), to=Server())
    sb.net.route(("by-address.test", 80), to=SocketServer())
    code = (
        "import sys, urllib.request\n"
        "for host in sys.argv[1:]:\n"
        "    print(urllib.request.urlopen(f'http://{host}/health', timeout=20).read().decode(),"
        " end='')\n"
    )
    out = python(sb, code, "by-name.test", "by-object.test", "by-address.test")
    assert out.splitlines() == [f"ok /health host={h}" for h in ("by-name.test", "by-object.test",
                                                                 "by-address.test")]  # fmt: skip
    with pytest.raises(ValueError, match="loopback"):
        sb.net.route(("elsewhere.test", 80), to=("example.com", 80))


def test_a_connect_fault_names_the_host_as_programs_do(sb: Sandbox) -> None:
    sb.dns.add("down.test", "10.0.0.7")
    rule = sb.fail("connect", "down.test:80", errno.ECONNREFUSED)
    assert connect_outcome(sb, "10.0.0.7", 80)[0] == "ECONNREFUSED"
    assert rule.fired == 1
    assert not sb.violations
    assert sb.unused_rules() == []


def test_rules_and_routes_nothing_used_are_listed(
    sb: Sandbox, http_server: tuple[str, int]
) -> None:
    sb.fail("open", "/etc/never-read.conf", errno.EACCES)
    sb.dns.fail("never-resolved.test", "again")
    sb.net.route(("never-called.test", 80), to=http_server)
    sb.net.route(("refused.test", 80), to=http_server)
    sb.fail("connect", "refused.test:80", errno.ECONNREFUSED)  # the route counts as tried
    assert connect_outcome(sb, "refused.test", 80)[0] == "ECONNREFUSED"
    assert sb.unused_rules() == [
        "fail('open', '/etc/never-read.conf', errno.EACCES)",
        "dns.fail('getaddrinfo', 'never-resolved.test', again)",
        f"net.route never-called.test:80 -> {http_server[0]}:{http_server[1]}",
    ]


def test_programs_reach_each_other_at_virtual_addresses(sb: Sandbox) -> None:
    sb.net.allow_bind(("0.0.0.0", 8080))
    server = sb.popen([sys.executable, "-c", SERVER, "inet", "0.0.0.0"], stdout=subprocess.PIPE,
                      text=True)  # fmt: skip
    assert server.stdout is not None and server.stdout.readline() == "listening\n"
    code = (
        "import socket\n"
        "s = socket.create_connection(('localhost', 8080), timeout=10)\n"
        "s.sendall(b'client'); print(s.recv(100).decode())\n"
    )
    assert python(sb, code) == "hello client\n"
    server.communicate(timeout=30)
    assert not sb.violations


def test_an_undeclared_bind_is_a_violation(sb: Sandbox) -> None:
    assert python(sb, SERVER, "inet", "0.0.0.0") == f"bind failed {errno.EADDRNOTAVAIL}\n"
    (violation,) = sb.violations
    assert violation.call == "bind_inet" and "sb.net.allow_bind" in violation.reason


def test_a_second_bind_of_a_busy_virtual_address_is_eaddrinuse(sb: Sandbox) -> None:
    sb.net.allow_bind(("0.0.0.0", 8080))
    sb.fs.create_dir("/run")
    first = sb.popen([sys.executable, "-c", SERVER, "inet", "0.0.0.0"], stdout=subprocess.PIPE,
                     text=True)  # fmt: skip
    assert first.stdout is not None and first.stdout.readline() == "listening\n"
    try:
        assert python(sb, SERVER, "inet", "0.0.0.0") == f"bind failed {errno.EADDRINUSE}\n"
    finally:
        with sb.net.connect(("0.0.0.0", 8080)) as sock:
            sock.sendall(b"bye")
        first.communicate(timeout=30)
    # the port is free again once its server is gone: a third program binds it
    third = sb.popen([sys.executable, "-c", SERVER, "inet", "0.0.0.0"], stdout=subprocess.PIPE,
                     text=True)  # fmt: skip
    assert third.stdout is not None and third.stdout.readline() == "listening\n"
    with sb.net.connect(("127.0.0.1", 8080)) as sock:
        sock.sendall(b"again")
        assert sock.recv(100) == b"hello again"
    third.communicate(timeout=30)
    assert not sb.violations


def test_a_unix_bind_where_a_file_exists_is_eaddrinuse(sb: Sandbox) -> None:
    sb.fs.create_file("/run/app.sock")
    assert python(sb, SERVER, "unix", "/run/app.sock") == f"bind failed {errno.EADDRINUSE}\n"
    assert not sb.violations


def test_bind_failures_come_on_demand(sb: Sandbox) -> None:
    sb.net.allow_bind(("0.0.0.0", 8080))
    sb.fail("bind", "0.0.0.0:8080", errno.EADDRINUSE)
    assert python(sb, SERVER, "inet", "0.0.0.0") == f"bind failed {errno.EADDRINUSE}\n"
    assert not sb.violations


def test_python_http_server_serves_on_its_virtual_port_and_says_so(sb: Sandbox) -> None:
    sb.net.allow_bind(("0.0.0.0", 8080))
    sb.dns.add(socket.gethostname(), "10.0.0.9")  # http.server looks its own name up
    sb.fs.create_file("/srv/index.txt", contents="served from the virtual filesystem\n")
    proc = sb.popen([sys.executable, "-u", "-m", "http.server", "8080", "--bind", "0.0.0.0"],
                    cwd="/srv", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                    text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()  # from getsockname: the virtual address, not loopback
        assert banner.startswith("Serving HTTP on 0.0.0.0 port 8080"), banner
        _, (ip, port, *_) = sb.net.real_address(("127.0.0.1", 8080))
        assert ip == "127.0.0.1"  # what the test can use with any client
        with urllib.request.urlopen(f"http://{ip}:{port}/index.txt", timeout=10) as response:
            assert response.read() == b"served from the virtual filesystem\n"
    finally:
        proc.terminate()
        proc.wait(30)
    assert not sb.violations


NAMES = """
import socket, sys
s = socket.create_connection(("api.example.test", 80), timeout=10)
print("peer", s.getpeername())
server = socket.socket()
server.bind(("10.0.0.9", 0))
server.listen(1)
host, port = server.getsockname()
print("bound", host, port > 0)
print(port, flush=True)
conn, _ = server.accept()
print("accepted on", conn.getsockname() == (host, port))
"""


def test_programs_see_virtual_addresses_in_getpeername_and_getsockname(
    sb: Sandbox, http_server: tuple[str, int]
) -> None:
    sb.net.route(("api.example.test", 80), to=http_server)
    sb.net.allow_bind(("10.0.0.9", 0))
    proc = sb.popen([sys.executable, "-c", NAMES], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines = [proc.stdout.readline().strip() for _ in range(3)]
    (ip,) = {str(a) for a in sb.dns.resolve("api.example.test", "A")[1]}
    assert lines[:2] == [f"peer ('{ip}', 80)", "bound 10.0.0.9 True"]
    with sb.net.connect(("10.0.0.9", int(lines[2]))):
        pass
    assert proc.communicate(timeout=30)[0] == "accepted on True\n"
    assert not sb.violations


@pytest.mark.parametrize(
    ("setup", "expected", "violation"),
    [
        ("nothing", "ENOENT", True),
        ("file", "ECONNREFUSED", False),  # the kernel's answer: no one listens on a plain file
    ],
)
def test_a_unix_connect_without_a_server_gets_the_kernels_answer(
    sb: Sandbox, setup: str, expected: str, violation: bool
) -> None:
    if setup == "file":
        sb.fs.create_file("/run/stale.sock")
    code = (
        "import errno, socket\n"
        "try:\n    socket.socket(socket.AF_UNIX).connect('/run/stale.sock')\n"
        "except OSError as e:\n    print(errno.errorcode[e.errno])\n"
    )
    assert python(sb, code) == expected + "\n"
    assert bool(sb.violations) == violation


# -- the proof that nothing leaves loopback ----------------------------------------------------


def _namespace_works() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo", "up"],
                           capture_output=True)  # fmt: skip
    return probe.returncode == 0


@pytest.mark.skipif(os.environ.get("LIBCFAKE_IN_NETNS") == "1", reason="already inside")
def test_the_network_tests_pass_in_a_namespace_with_only_loopback() -> None:
    if not _namespace_works():
        pytest.skip("no unprivileged user+network namespaces (unshare -rn) here")
    script = (
        "ip link set lo up && "
        "test \"$(ip -o link show | cut -d: -f2 | tr -d ' ')\" = lo && "
        f"exec {sys.executable} -m pytest -q -p no:cacheprovider -x {__file__}"
    )
    env = {**os.environ, "LIBCFAKE_IN_NETNS": "1"}
    result = subprocess.run(["unshare", "-rn", "sh", "-c", script], capture_output=True,
                            text=True, cwd=ROOT, env=env, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout


def test_a_long_virtual_unix_name_comes_back_whole(sb: Sandbox) -> None:
    # longer than the master's real socket path: the real call's length must not cut it
    name = "/run/" + "a-rather-long-virtual-socket-name-" * 2 + ".sock"
    code = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "s.bind(sys.argv[1]); s.listen(1)\n"
        "c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "c.connect(sys.argv[1])\n"
        "print(s.getsockname()); print(c.getpeername())\n"
    )
    sb.fs.create_dir("/run")
    assert python(sb, code, name) == f"{name}\n{name}\n"
    assert not sb.violations
