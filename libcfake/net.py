"""The network model: where programs' connections go, and where programs may serve.

:class:`Network` is ``sb.net`` of a Sandbox::

    sb.net.route(("api.example.test", 80), to=("127.0.0.1", server_port))  # the test's server
    sb.net.route(("db.internal", 5432), to="/tmp/pg/.s.PGSQL.5432")         # a host unix socket
    sb.net.route(("10.0.0.7", 7), to=echo)              # def echo(sock): sock.sendall(...)
    sb.net.route("/run/app.sock", to=handler)           # a unix path of the virtual filesystem
    listener = sb.net.listen(("10.0.0.9", 5432))        # the test accepts there itself
    sb.net.allow_bind(("0.0.0.0", 8080))                # a program may serve on port 8080 ...
    with sb.net.connect(("127.0.0.1", 8080)) as sock:   # ... and the test reaches it
        ...
    sb.net.fail("api.example.test:80", errno.ETIMEDOUT, delay=1.0)

Every connection is real, and only ever on loopback: when a program calls connect, its own
socket travels to the master, which connects that very socket to the route's real endpoint (a
``127.0.0.1``/``::1`` address, a host unix socket, or a listener the model runs for a Python
handler), so the program's descriptor is connected in place and keeps every socket option.
Non-blocking connects keep their semantics (EINPROGRESS, then writable, then SO_ERROR). Only
when the families cannot meet (an IPv4 socket routed to a unix socket) does the program get a
new connected socket under its old descriptor number.

Decisions, so a test can rely on them:

- A route by host name routes every address the DNS model gives that name *when a program
  connects*. If the name has no address when the route is made, the model gives it one from
  198.18.0.0/15 (an A record), so ``route(("api.example.test", 80), ...)`` alone is enough.
- A connect to an address no route covers is a violation and fails with ``unrouted``
  (ECONNREFUSED by default). Loopback is not special: a real service on 127.0.0.1 that no route
  names is unreachable. A unix path with nothing there is a violation too (ENOENT); a file with
  no server behind it is the kernel's ECONNREFUSED, and no violation.
- A send with a destination (sendto, sendmsg, sendmmsg) is decided like a connect to it: the
  shim forwards it as ``connect_inet``/``connect_inet6``/``connect_unix`` with the entry point as
  symbol (the journal's ``symbol``; ``sb.net.fail`` rules for "connect" apply), and an unrouted
  destination is a violation answered with ``unrouted`` (the datagram never leaves). A datagram
  socket is never connected: the model answers with a *probe*, a socket of its own connected to
  the route's real loopback or unix endpoint; the shim reads the probe's peer address, checks it
  is on loopback, closes the probe and sends the datagram there from the program's own socket
  (so replies come back to it). Only UDP and unix datagrams are delivered (and only to
  endpoints, not to Python handlers); raw, ICMP and SCTP sends with an address are violations.
  ``sendto(MSG_FASTOPEN)`` on TCP is a connect (the program's socket connected in place) and
  then a send without the address. Datagrams carry their real source: a program's ``recvfrom``
  reports 127.0.0.1 and a real port (or a unix path in the model's directory), not the virtual
  address. Answering that source is allowed: the real addresses of the sandbox's own datagram
  sockets (programs' bound, connected or sending sockets, the model binds an unbound sender the
  way the kernel's autobind would; the test's :meth:`Network.listen` and :meth:`Network.connect`
  sockets) are destinations too. Any other real address is unrouted.
- bind on an IP address must be declared with :meth:`Network.allow_bind` (else EADDRNOTAVAIL
  and a violation). The model binds the program's socket to 127.0.0.1 or ::1 on a port the
  kernel picks; other programs of the sandbox and :meth:`Network.connect` reach it at the
  virtual address. A later bind of the same virtual address goes to the same real port, so
  EADDRINUSE, SO_REUSEADDR and SO_REUSEPORT behave as the kernel makes them.
- bind on a unix path needs no declaration: it follows the filesystem model's rules (ENOENT,
  EACCES, EADDRINUSE when anything is there) and leaves a socket file at the path, as the kernel
  does. Abstract names are private to the sandbox. A route for a unix path creates the socket
  file too (and missing parent directories).
- Handlers run in the test process: ``def handler(sock)`` in a thread per connection,
  ``async def handler(reader, writer)`` and :class:`asyncio.Protocol` subclasses on one event
  loop. Their exceptions are collected in :attr:`Network.errors`; :func:`reset` aborts a
  connection with a TCP reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import fnmatch
import inspect
import ipaddress
import os
import posixpath
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from pyfakefs.fake_file import FakeFile

from . import _realos
from .dns import Dns, LookupRefused
from .faults import CALL_GROUPS, FaultRule
from .fs import Caller, FileSystem

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: A virtual address: (host name or IP, port), a unix path, or an abstract name (b"\0name").
Address = tuple[str, int] | str | bytes
#: What a program's address is, once decoded: (IP, port), a virtual path, or an abstract name.
Destination = tuple[IPAddress, int] | str | bytes
SyncHandler = Callable[[socket.socket], object]
AsyncHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]
#: Where a route leads: a loopback (ip or "localhost", port), a server object (with ``host`` and
#: ``port``, or ``server_address``), a host unix socket path, a listening socket, a handler, or
#: an asyncio.Protocol subclass.
Target = (
    tuple[str, int]
    | str
    | os.PathLike[str]
    | socket.socket
    | SyncHandler
    | AsyncHandler
    | type
    | Any
)

#: Names without an address get one from here (RFC 2544's benchmarking range: never routed).
VIRTUAL_POOL = ipaddress.ip_network("198.18.0.0/15")
_LOOPBACK: dict[int, str] = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}
_WILDCARDS = (ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("::"))
#: The calls whose subject is an address, which fault rules may name by host name.
NETWORK_CALLS = CALL_GROUPS["connect"] | CALL_GROUPS["bind"]


class NetworkViolation(Exception):
    """A connect, bind or send the model does not cover: answered with ``errno``, reported."""

    def __init__(self, error: int, reason: str) -> None:
        super().__init__(reason)
        self.errno = error
        self.reason = reason


@dataclass(frozen=True)
class Replacement:
    """Answer: this connected socket (a descriptor the caller sends, then closes) replaces the
    program's socket under its descriptor number; for a datagram send, a probe whose peer is
    where the datagram goes."""

    fd: int


@dataclass(frozen=True)
class SocketRequest:
    """A program's connect, bind or send with a destination, as the sandbox hands it over."""

    fd: int  # the program's own socket (a copy of the descriptor: the same socket)
    family: int  # its domain, type and protocol
    socktype: int
    destination: Destination
    caller: Caller = field(default_factory=lambda: Caller(os.getuid(), os.getgid()))
    protocol: int = 0  # the socket's protocol (IPPROTO_UDP ...)
    symbol: str = "connect"  # the entry point the program called: connect, bind, sendto ...


def reset(connection: socket.socket | asyncio.StreamWriter | asyncio.BaseTransport) -> None:
    """Abort a handler's connection with a TCP reset (the program sees ECONNRESET)."""
    linger = struct.pack("ii", 1, 0)
    if isinstance(connection, socket.socket):
        if connection.family != socket.AF_UNIX:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        connection.close()
        return
    transport = connection.transport if isinstance(connection, asyncio.StreamWriter) else connection
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family != socket.AF_UNIX:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    if isinstance(transport, (asyncio.WriteTransport, asyncio.ReadTransport)):
        transport.abort()  # type: ignore[union-attr]
    else:
        transport.close()


def _ip(text: str | IPAddress) -> IPAddress:
    address = (
        text
        if isinstance(text, (ipaddress.IPv4Address, ipaddress.IPv6Address))
        else (ipaddress.ip_address(text))
    )
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.5 is 10.0.0.5 reached from an IPv6 socket
    return address


def _ip_or_none(text: str) -> IPAddress | None:
    try:
        return _ip(text)
    except ValueError:
        return None


def _normal(destination: Destination) -> Destination:
    """An IPv4-mapped IPv6 destination as the IPv4 one it stands for."""
    return (_ip(destination[0]), destination[1]) if isinstance(destination, tuple) else destination


def _server_address(to: Any) -> Any:
    """A server object's (host, port): pytest-httpserver's ``host``/``port``, socketserver's and
    http.server's ``server_address``; anything else as it is."""
    if isinstance(to, (tuple, str, bytes, os.PathLike)) or callable(to):
        return to
    address = getattr(to, "server_address", None)
    if isinstance(address, tuple):
        return address
    host, port = getattr(to, "host", None), getattr(to, "port", None)
    if isinstance(host, str) and isinstance(port, int):
        return (host, port)
    return to


def _loopback_of(host: str) -> IPAddress:
    """The IP of a route target: a literal, or "localhost" (what test servers listen on)."""
    if host == "localhost":
        return ipaddress.ip_address("127.0.0.1")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"route targets are loopback endpoints (127.0.0.1, ::1, localhost), not {host!r}: "
            "libcfake never contacts another address"
        ) from None


def _loopback_for(family: int, peer: Any) -> str:
    """The loopback address a datagram socket of ``family`` sends to ``peer`` from."""
    if family == socket.AF_INET:
        return "127.0.0.1"
    return "::ffff:127.0.0.1" if str(peer[0]).startswith("::ffff:") else "::1"


def _check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"a port is an integer from 0 to 65535, not {port!r}")
    return port


def _family_of(ip: IPAddress) -> int:
    return socket.AF_INET if ip.version == 4 else socket.AF_INET6


def describe(destination: Destination) -> str:
    """How messages name a destination: "10.0.0.5:80", "[2001:db8::1]:443", a path, "@name"."""
    if isinstance(destination, tuple):
        ip, port = destination
        return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
    if isinstance(destination, bytes):
        return "@" + os.fsdecode(destination[1:])
    return destination


# -- targets ------------------------------------------------------------------------------------


class _Endpoint:
    """A real endpoint that already exists: the test's server, or a program's bound socket."""

    def __init__(self, family: int, address: Any, what: str) -> None:
        self.family = family
        self.address = address
        self.what = what

    def endpoint(self, family: int, socktype: int) -> tuple[int, Any]:
        return self.family, self.address

    def close(self) -> None:
        pass


class _Loop:
    """The event loop (in its own thread) that serves asyncio handlers."""

    def __init__(self, errors: list[BaseException]) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(lambda loop, context: errors.append(
            context.get("exception") or RuntimeError(context["message"])
        ))  # fmt: skip
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="libcfake-net", daemon=True
        )
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


class _Served:
    """A Python handler, served on loopback listeners the model opens as programs need them
    (one per socket family: 127.0.0.1, ::1 or a unix socket in the model's directory)."""

    def __init__(self, handler: Any, network: Network) -> None:
        self.handler = handler
        self.network = network
        self.what = f"the handler {getattr(handler, '__qualname__', repr(handler))}"
        self.kind = (
            "protocol" if isinstance(handler, type) and issubclass(handler, asyncio.BaseProtocol)
            else "async" if inspect.iscoroutinefunction(handler) else "sync"
        )  # fmt: skip
        self._listeners: dict[int, socket.socket] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False

    def endpoint(self, family: int, socktype: int) -> tuple[int, Any]:
        if socktype != socket.SOCK_STREAM:
            raise NetworkViolation(errno.ECONNREFUSED, f"{self.what} serves stream sockets only")
        with self._lock:
            listener = self._listeners.get(family)
            if listener is None:
                try:
                    listener = self._listeners[family] = self._listen(family)
                except OSError:
                    if family != socket.AF_INET6:
                        raise
                    family = socket.AF_INET  # no ::1 here: IPv6 sockets reach ::ffff:127.0.0.1
                    listener = self._listeners.get(family) or self._listen(family)
                    self._listeners[family] = listener
            return family, listener.getsockname()

    def _listen(self, family: int) -> socket.socket:
        listener = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        if family == socket.AF_UNIX:
            listener.bind(self.network._private_path())
        else:
            listener.bind((_LOOPBACK[family], 0))
        listener.listen(64)
        if self.kind == "sync":
            threading.Thread(target=self._accept, args=(listener,), daemon=True,
                             name=f"libcfake-net {self.what}").start()  # fmt: skip
            return listener
        loop = self.network._event_loop()
        listener.setblocking(False)
        if self.kind == "async":
            server = loop.run(asyncio.start_server(self._guarded, sock=listener))
        else:
            server = loop.run(loop.loop.create_server(self.handler, sock=listener))
        self._servers.append(server)
        return listener

    async def _guarded(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self.handler(reader, writer)
        except Exception as error:  # the test sees it in sb.net.errors
            self.network.errors.append(error)
        finally:
            writer.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # closed
                return
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                self._connections.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handler(conn)
        except Exception as error:  # the test sees it in sb.net.errors
            self.network.errors.append(error)
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, set()
            listeners, self._listeners = list(self._listeners.values()), {}
        for server in self._servers:
            server.close()
        for sock in (*listeners, *connections):
            if sock.fileno() >= 0:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked in recv
                if sock in listeners:
                    sock.close()


_Target = _Endpoint | _Served


@dataclass
class _Route:
    host: str | None  # a host name or IP; None for a unix route
    port: int
    unix: str | bytes | None
    target: _Target
    used: int = 0  # connections and sends it served
    internal: bool = False  # the Sandbox's own (its nameserver): never reported as unused

    def __str__(self) -> str:
        where = f"{self.host}:{self.port}" if self.host is not None else describe(self.unix or "")
        return f"route {where} -> {self.target.what}"


# -- fault rules that know host names -----------------------------------------------------------


@dataclass
class NetFaultRule(FaultRule):
    """A connect/bind fault whose pattern may name a host: "api.example.test:80", "db.*:*"."""

    dns: Dns | None = None

    def applies(self, call: str, subject: str | None) -> bool:
        if subject is not None and self.dns is not None:
            host, _, port = self.pattern.rpartition(":")
            ip_text, _, subject_port = subject.rpartition(":")
            ip = _ip_or_none(ip_text.strip("[]"))
            names = _addresses_of(self.dns, host) if host and _ip_or_none(host) is None else set()
            if ip is not None and ip in names and fnmatch.fnmatchcase(subject_port, port):
                subject = f"{host}:{subject_port}"  # the subject as the pattern names it
        return super().applies(call, subject)


def _addresses_of(dns: Dns, host: str) -> set[IPAddress]:
    """The addresses a host name (or literal IP) stands for in the DNS model right now."""
    literal = _ip_or_none(host)
    if literal is not None:
        return {literal}
    if any(char in host for char in "*?["):
        return set()
    found: set[IPAddress] = set()
    for rdtype in ("A", "AAAA"):
        try:
            _, records = dns.resolve(host, rdtype)
        except (KeyError, LookupRefused, ValueError):
            continue
        found.update(_ip(record.to_text()) for record in records)
    if not found and host == "localhost":
        found = {_ip("127.0.0.1"), _ip("::1")}
    return found


# -- the model ----------------------------------------------------------------------------------


class Network:
    """The routes, listeners and bindings of one Sandbox (thread-safe)."""

    def __init__(self, dns: Dns, fs: FileSystem, faults: list[FaultRule] | None = None) -> None:
        self.dns = dns
        self.fs = fs
        #: The errno an unrouted connect fails with (it is also reported as a violation).
        self.unrouted = errno.ECONNREFUSED
        #: How long the master waits for a blocking connect to a loopback endpoint.
        self.connect_timeout = 10.0
        #: Exceptions raised by handlers (a test may assert it is empty).
        self.errors: list[BaseException] = []
        self._faults = faults if faults is not None else []
        self._routes: list[_Route] = []
        self._bindable: list[tuple[IPAddress, int]] = []
        self._bindings: dict[tuple[int, IPAddress, int], tuple[int, Any]] = {}
        self._unix_nodes: dict[int, tuple[FakeFile, str]] = {}  # id(socket file) -> real path
        self._abstract: dict[tuple[int, bytes], bytes] = {}
        #: Real addresses of the sandbox's own datagram sockets (programs' and the test's):
        #: (socktype, loopback port), or a unix path or abstract name. Replies go there.
        self._own: set[tuple[int, int] | str | bytes] = set()
        self._owned: list[socket.socket] = []
        self._next_virtual = 1
        self._next_path = 0
        self._loop: _Loop | None = None
        self._dir = _realos.mkdtemp("libcfake-net-")
        self._lock = threading.RLock()
        #: each datagram socket's sends (by inode): {(real ip, port): (virtual ip, port)}
        self._datagram_sources: dict[int, dict[tuple[str, int], tuple[str, int]]] = {}

    # -- what a test arranges -------------------------------------------------------------

    def route(self, address: Address, to: Target) -> None:
        """Send programs' connections to ``address`` to ``to``.

        ``address`` is (host name or IP, port), a virtual unix path, or an abstract name
        (b"\\0name"). ``to`` is a loopback ``(ip or "localhost", port)``, a server object (a
        pytest-httpserver ``HTTPServer``, a ``socketserver`` server), a host unix socket path, a
        listening socket, ``def handler(sock)``, ``async def handler(reader, writer)`` or an
        :class:`asyncio.Protocol` subclass. A later route for the same address wins.
        """
        self._add_route(address, to)

    def route_nameserver(self, address: IPAddress, to: tuple[str, int]) -> None:
        """Route ``address`` port 53 (UDP and TCP) to the Sandbox's own nameserver at ``to``:
        a route like any other, except that it is never reported as unused."""
        self._add_route((str(address), 53), to, internal=True)

    def _add_route(self, address: Address, to: Target, *, internal: bool = False) -> None:
        target = self._target(to)
        if isinstance(address, tuple):
            host, port = self._inet(address)
            route = _Route(host, port, None, target, internal=internal)
        else:
            name = self._unix(address)
            if isinstance(name, str):
                self._make_socket_file(name)
            route = _Route(None, 0, name, target, internal=internal)
        with self._lock:  # never held while taking the filesystem's lock: the master takes both
            self._routes.append(route)

    def listen(self, address: Address, *, type: int = socket.SOCK_STREAM,
               backlog: int = 16) -> socket.socket:  # fmt: skip
        """A real socket the test owns, reachable by programs at ``address`` (listening for a
        stream type; just bound for SOCK_DGRAM). Closed with the sandbox."""
        if isinstance(address, tuple):
            host, _ = self._inet(address)
            ips = _addresses_of(self.dns, host)
            family = (
                socket.AF_INET6 if ips and all(ip.version == 6 for ip in ips) else socket.AF_INET
            )
            real: Any = (_LOOPBACK[family], 0)
        else:
            family, real = socket.AF_UNIX, self._private_path()
        sock = socket.socket(family, type | socket.SOCK_CLOEXEC)
        sock.bind(real)
        if type != socket.SOCK_DGRAM:
            sock.listen(backlog)
        self._mark_own(type, sock.getsockname())
        with self._lock:
            self._owned.append(sock)
        self.route(address, to=sock)
        return sock

    def allow_bind(self, address: tuple[str, int]) -> None:
        """Let programs bind ``(ip, port)``. "0.0.0.0"/"::" as ip allow any address of that
        family, port 0 any port (a program binding port 0 gets the real one the kernel picks)."""
        ip, port = _ip(address[0]), _check_port(address[1])
        with self._lock:
            self._bindable.append((ip, port))

    def fail(self, pattern: str, error: int, *, call: str = "connect", nth: int | None = None,
             times: int | None = None, delay: float = 0.0) -> FaultRule:  # fmt: skip
        """Make connects (or binds) to ``pattern`` fail with ``error`` after ``delay`` seconds.

        ``pattern`` is "host:port" with shell globs: a host name stands for its addresses in the
        DNS model ("api.example.test:80"), or an IP ("10.0.0.*:*"), or a unix path.
        """
        rule = NetFaultRule(call, pattern, error, nth=nth, times=times, delay=delay, dns=self.dns)
        with self._lock:
            self._faults.append(rule)
        return rule

    def connect(self, address: Address, *, type: int = socket.SOCK_STREAM,
                timeout: float = 10.0) -> socket.socket:  # fmt: skip
        """A socket of the test connected to ``address`` as a program would reach it (a program
        that serves there, or a route). Waits up to ``timeout`` for a program to bind and
        listen."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                family, real = self.real_address(address, type)
                sock = socket.socket(family, type | socket.SOCK_CLOEXEC)
                try:
                    sock.settimeout(max(0.1, deadline - time.monotonic()))
                    sock.connect(real)
                    self._mark_own(type, sock.getsockname())
                except BaseException:
                    sock.close()
                    raise
                return sock
            except (LookupError, ConnectionRefusedError, FileNotFoundError):
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)

    def real_address(self, address: Address, type: int = socket.SOCK_STREAM) -> tuple[int, Any]:
        """The (family, real loopback address) that ``address`` leads to; LookupError if none."""
        if isinstance(address, tuple):
            host, port = self._inet(address)
            ips = _addresses_of(self.dns, host)
            if not ips:
                raise LookupError(f"{host} has no address in the DNS model")
            destinations: list[Destination] = [(ip, port) for ip in sorted(ips, key=str)]
        else:
            destinations = [self._unix(address)]
        for destination in destinations:
            target = self._find(destination, type)
            if target is not None:
                family = (
                    _family_of(destination[0])
                    if isinstance(destination, tuple)
                    else (socket.AF_UNIX)
                )
                return target.endpoint(family, type)
        raise LookupError(f"nothing serves {address!r}: no route, and no program bound it")

    def unused_routes(self, attempted: Iterable[str] = ()) -> list[str]:
        """The routes nothing used, as "route HOST:PORT -> ...": no program (nor ``connect``)
        reached through one, and none of the ``attempted`` destinations (the journal's
        connections, a fault rule may have refused them) was its address."""
        tried = set(attempted)
        with self._lock:
            routes = [route for route in self._routes if not route.used and not route.internal]
        return [str(route) for route in routes if not tried & self._spellings(route)]

    def _spellings(self, route: _Route) -> set[str]:
        """The destinations, as the journal writes them, that lead to ``route``."""
        if route.host is None:
            return {describe(route.unix)} if route.unix is not None else set()
        return {describe((ip, route.port)) for ip in _addresses_of(self.dns, route.host)}

    def close(self) -> None:
        """Stop the handlers and close the listeners the model made."""
        with self._lock:
            targets = [route.target for route in self._routes]
            owned, self._owned = self._owned, []
            loop, self._loop = self._loop, None
        for target in targets:
            target.close()
        for sock in owned:
            sock.close()
        if loop is not None:
            loop.close()
        _realos.rmtree(self._dir)

    # -- what programs do (called by the sandbox, with the program's socket) ----------------

    def program_connect(self, request: SocketRequest) -> int | Replacement:
        """Connect the program's socket where its destination leads: 0, a Replacement, or
        OSError (the kernel's answer, EINPROGRESS for a non-blocking socket) or
        NetworkViolation (unrouted)."""
        destination = _normal(request.destination)
        target = self._routed(request, destination, "connect")
        family, real = target.endpoint(request.family, request.socktype)
        return self._connect(request, family, real)

    def program_send(self, request: SocketRequest) -> int | Replacement:
        """A sendto/sendmsg/sendmmsg with a destination. A stream socket (MSG_FASTOPEN) is
        connected as for :meth:`program_connect`. A datagram socket stays as it is: the answer
        is a Replacement carrying a probe, a socket connected to the real (loopback or unix)
        endpoint, whose peer address the shim sends the datagram to; or NetworkViolation
        (unrouted, or a datagram other than UDP and unix, which no route serves)."""
        if request.socktype == socket.SOCK_STREAM:
            return self.program_connect(request)
        destination = _normal(request.destination)
        what = f"{request.symbol} to {describe(destination)}"
        udp = request.family == socket.AF_UNIX or request.protocol == socket.IPPROTO_UDP
        if request.socktype != socket.SOCK_DGRAM or not udp:
            raise NetworkViolation(
                self.unrouted, f"{what}: libcfake delivers UDP and unix datagrams only"
            )
        target = self._own_socket(destination) or self._routed(request, destination, request.symbol)
        family, real = self._reachable(request, *target.endpoint(request.family, request.socktype))
        if family != request.family:
            raise NetworkViolation(
                self.unrouted, f"{what}: routed to {target.what}, which a "
                f"{socket.AddressFamily(request.family).name} datagram socket cannot reach",
            )  # fmt: skip
        probe = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            probe.connect(real)  # a datagram socket's connect only names its peer
        except BaseException:
            probe.close()
            raise
        if family != socket.AF_UNIX:
            with socket.socket(fileno=os.dup(request.fd)) as sock:
                if sock.getsockname()[1] == 0:  # the kernel's autobind, made here to know it,
                    sock.bind((_loopback_for(family, real), 0))  # on loopback, not everywhere
                self._mark_own(socket.SOCK_DGRAM, sock.getsockname())
            self._remember_source(request.fd, real, destination)
        return Replacement(probe.detach())

    def _remember_source(self, fd: int, real: Any, destination: Destination) -> None:
        """The program's datagram socket ``fd`` sent to ``destination``, really to ``real``."""
        if not isinstance(destination, tuple):
            return
        with self._lock:
            if len(self._datagram_sources) > 4096:
                self._datagram_sources.clear()  # (sockets long closed, most of them)
            sources = self._datagram_sources.setdefault(os.fstat(fd).st_ino, {})
            sources[(str(real[0]), int(real[1]))] = (str(destination[0]), int(destination[1]))

    def datagram_sources(self, inode: int) -> dict[tuple[str, int], tuple[str, int]] | None:
        """For the datagram socket ``inode``: the addresses its sends named, by the real address
        each went to, so that an answer from there reads as coming from the address named (the
        hybrid backend's recvfrom). None if it sent to no routed address."""
        with self._lock:
            sources = self._datagram_sources.get(inode)
            return dict(sources) if sources else None

    def program_bind(self, request: SocketRequest) -> int:
        """Bind the program's socket to a real address standing for its destination: 0, or
        OSError (EADDRINUSE, EACCES ...) or NetworkViolation (an undeclared address)."""
        destination = _normal(request.destination)
        with socket.socket(fileno=os.dup(request.fd)) as sock:
            if isinstance(destination, tuple):
                self._bind_inet(sock, request, destination)
            elif isinstance(destination, bytes):
                self._bind_abstract(sock, request, destination)
            else:
                self._bind_path(sock, request, destination)
        return 0

    # -- internals --------------------------------------------------------------------------

    def _inet(self, address: tuple[str, int]) -> tuple[str, int]:
        if not isinstance(address, tuple) or len(address) != 2 or not isinstance(address[0], str):
            raise TypeError(f"an inet address is (host or ip, port), not {address!r}")
        host, port = address[0], _check_port(address[1])
        if _ip_or_none(host) is None and not _addresses_of(self.dns, host):
            self.dns.add(host, self._allocate())
        return host, port

    def _allocate(self) -> IPAddress:
        with self._lock:
            address = VIRTUAL_POOL[self._next_virtual]
            self._next_virtual += 1
        return address

    def _unix(self, address: str | bytes | os.PathLike[str]) -> str | bytes:
        if isinstance(address, bytes):
            if not address.startswith(b"\0"):
                raise ValueError(f"an abstract unix name starts with a NUL byte: {address!r}")
            return address
        path = os.fspath(address)
        if not path.startswith("/"):
            raise ValueError(f"a virtual unix path must be absolute, not {path!r}")
        return posixpath.normpath(path)

    def _target(self, to: Target) -> _Target:
        if isinstance(to, socket.socket):
            return _Endpoint(to.family, to.getsockname(), f"the socket at {to.getsockname()}")
        to = _server_address(to)
        if isinstance(to, tuple):
            if len(to) < 2 or not isinstance(to[0], str):
                raise TypeError(f"a route target is (loopback ip or 'localhost', port), not {to!r}")
            ip = _loopback_of(to[0])
            if not ip.is_loopback:
                raise ValueError(
                    f"route targets must be loopback endpoints (127.0.0.1, ::1), not {to[0]}: "
                    "libcfake never contacts another address"
                )
            return _Endpoint(_family_of(ip), (str(ip), _check_port(to[1])), f"{to[0]}:{to[1]}")
        if isinstance(to, (str, os.PathLike)):
            return _Endpoint(socket.AF_UNIX, os.fspath(to), os.fspath(to))
        if callable(to):
            return _Served(to, self)
        raise TypeError(f"cannot route to {to!r}")

    def _find(self, destination: Destination, socktype: int) -> _Target | None:
        """What serves ``destination``: the latest route, else a program's binding."""
        with self._lock:
            for route in reversed(self._routes):
                if isinstance(destination, tuple):
                    if route.host is None or route.port != destination[1]:
                        continue
                    if destination[0] in _addresses_of(self.dns, route.host):
                        route.used += 1
                        return route.target
                elif route.unix == destination:
                    route.used += 1
                    return route.target
            if isinstance(destination, tuple):
                return self._bound(destination, socktype)
            if isinstance(destination, bytes):
                real = self._abstract.get((socktype, destination))
                return None if real is None else _Endpoint(socket.AF_UNIX, real, "a program")
        return self._bound_path(destination)

    def _bound(self, destination: tuple[IPAddress, int], socktype: int) -> _Target | None:
        ip, port = destination
        found = self._bindings.get((socktype, ip, port))
        if found is None:  # a program bound to 0.0.0.0 or :: is reachable at every address
            for wildcard in _WILDCARDS:
                found = found or self._bindings.get((socktype, wildcard, port))
        return None if found is None else _Endpoint(*found, "a program")

    def _what_is_bound(self) -> str:
        with self._lock:
            bound = sorted(
                describe((ip, port)) for (_, ip, port) in self._bindings if port
            )  # fmt: skip
        return f" (programs have bound: {', '.join(bound)})" if bound else ""

    def _bound_path(self, path: str) -> _Target | None:
        try:
            with self.fs.lock:
                node = self.fs.resolve(path)
        except OSError:
            return None
        with self._lock:
            entry = self._unix_nodes.get(id(node))
        if entry is None or entry[0] is not node:
            return None
        return _Endpoint(socket.AF_UNIX, entry[1], "a program")

    def _routed(self, request: SocketRequest, destination: Destination, verb: str) -> _Target:
        """What serves ``destination``; NetworkViolation (or the kernel's answer) if nothing."""
        target = self._find(destination, request.socktype)
        if target is None:
            if isinstance(destination, str):
                self._check_unix_path(destination)  # an answer (ECONNREFUSED) where a file is
            error = errno.ENOENT if isinstance(destination, str) else self.unrouted
            raise NetworkViolation(
                error, f"{verb} to {describe(destination)}: no route (sb.net.route) and no "
                f"program of the sandbox serves there{self._what_is_bound()}",
            )  # fmt: skip
        return target

    def _mark_own(self, socktype: int, real: Any) -> None:
        """Remember the real address of a sandbox's datagram socket: replies may go there."""
        if socktype != socket.SOCK_DGRAM or not real:
            return
        with self._lock:
            self._own.add((socktype, real[1]) if isinstance(real, tuple) else real)

    def _own_socket(self, destination: Destination) -> _Target | None:
        """A real address of the sandbox's own datagram sockets (a datagram's source, which a
        program answers), as a target."""
        with self._lock:
            if isinstance(destination, tuple):
                ip, port = destination
                if not ip.is_loopback or (socket.SOCK_DGRAM, port) not in self._own:
                    return None
                return _Endpoint(_family_of(ip), (str(ip), port), "a socket of the sandbox")
            if destination not in self._own:
                return None
            return _Endpoint(socket.AF_UNIX, destination, "a socket of the sandbox")

    def _reachable(self, request: SocketRequest, family: int, real: Any) -> tuple[int, Any]:
        """A real endpoint as the program's socket reaches it: an IPv4 one through ::ffff: from
        an IPv6 socket that is not IPV6_V6ONLY."""
        if family == socket.AF_INET and request.family == socket.AF_INET6:
            with socket.socket(fileno=os.dup(request.fd)) as sock:
                if not sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY):
                    return socket.AF_INET6, (f"::ffff:{real[0]}", real[1])
        return family, real

    def _check_unix_path(self, path: str) -> None:
        """A connect to a unix path with no server: the kernel's answer, if a file is there."""
        try:
            with self.fs.lock:
                self.fs.resolve(path)
        except OSError:
            return
        raise OSError(errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED), path)

    def _connect(self, request: SocketRequest, family: int, real: Any) -> int | Replacement:
        family, real = self._reachable(request, family, real)
        with socket.socket(fileno=os.dup(request.fd)) as sock:
            if family != request.family:
                return self._replacement(family, request.socktype, real)
            if request.socktype == socket.SOCK_DGRAM:  # connects at once
                sock.connect(real)
                self._mark_own(request.socktype, sock.getsockname())
                return 0
            if fcntl.fcntl(request.fd, fcntl.F_GETFL) & os.O_NONBLOCK:
                sock.setblocking(False)  # it was: the flag is shared with the program's socket
                code = sock.connect_ex(real)
                if code:
                    raise OSError(code, os.strerror(code))
                return 0
            try:
                sock.settimeout(self.connect_timeout)
                sock.connect(real)
            except TimeoutError as error:
                if error.errno is None:
                    raise OSError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT)) from None
                raise
            finally:
                sock.setblocking(True)
        return 0

    def _replacement(self, family: int, socktype: int, real: Any) -> Replacement:
        sock = socket.socket(family, socktype | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(self.connect_timeout)
            sock.connect(real)
            sock.setblocking(True)
        except BaseException:
            sock.close()
            raise
        return Replacement(sock.detach())

    def _bind_inet(self, sock: socket.socket, request: SocketRequest,
                   destination: tuple[IPAddress, int]) -> None:  # fmt: skip
        ip, port = destination
        # A datagram socket bound to "any port" is a client's (dig, host, nslookup bind before
        # they query): on a loopback port, what reaches it is what the model routes there. A
        # stream socket so bound could listen next, so it still needs allow_bind.
        ephemeral = port == 0 and request.symbol == "bind" and request.socktype == socket.SOCK_DGRAM
        if not ephemeral and not self._may_bind(ip, port):
            raise NetworkViolation(
                errno.EADDRNOTAVAIL,
                f"bind to {describe(destination)} is not declared (sb.net.allow_bind)",
            )
        family = request.family
        key = (request.socktype, ip, port)
        with self._lock:
            known = self._bindings.get(key) if port else None
            loopback = (
                _LOOPBACK[family]
                if ip.version == 6 or family == socket.AF_INET
                else ("::ffff:127.0.0.1")
            )
            try:
                sock.bind(known[1] if known is not None else (loopback, 0))
            except OSError as error:
                if known is not None or loopback != "::1" or error.errno != errno.EADDRNOTAVAIL:
                    raise
                sock.bind(("::ffff:127.0.0.1", 0))  # a host without ::1
            real = sock.getsockname()
            self._bindings[(request.socktype, ip, port or real[1])] = (family, real)
        self._mark_own(request.socktype, real)

    def _may_bind(self, ip: IPAddress, port: int) -> bool:
        with self._lock:
            return any(
                (allowed == ip or (allowed.is_unspecified and allowed.version == ip.version))
                and allowed_port in (0, port)
                for allowed, allowed_port in self._bindable
            )

    def _bind_abstract(self, sock: socket.socket, request: SocketRequest, name: bytes) -> None:
        key = (request.socktype, name)
        with self._lock:
            real = self._abstract.get(key)
            if real is None:
                real = b"\0" + os.fsencode(self._dir) + b"/" + name[1:]
            sock.bind(real)
            self._abstract[key] = real
        self._mark_own(request.socktype, real)

    def _bind_path(self, sock: socket.socket, request: SocketRequest, path: str) -> None:
        fs = self.fs
        if fs.protection_of(posixpath.normpath(path)) is not None:
            raise NetworkViolation(errno.EROFS, f"bind to {path}: {fs.protection_of(path)}")
        if fs.lexists(path):
            raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE), path)
        fs.check_parent_writable(path, request.caller)
        real = self._private_path()
        sock.bind(real)
        node = self._make_socket_file(path, request.caller)
        with self._lock:
            self._unix_nodes[id(node)] = (node, real)
        self._mark_own(request.socktype, real)

    def _make_socket_file(self, path: str, caller: Caller | None = None) -> FakeFile:
        """The socket file a bound unix socket leaves at ``path`` (kept if one is there)."""
        if caller is None:  # a route the test arranged
            return self.fs.create_socket(path)
        bits = 0o777 & ~caller.umask
        return self.fs.create_socket(path, bits, caller.uid, caller.gid)

    def _private_path(self) -> str:
        with self._lock:
            self._next_path += 1
            return os.path.join(self._dir, f"s{self._next_path}")

    def _event_loop(self) -> _Loop:
        with self._lock:
            if self._loop is None:
                self._loop = _Loop(self.errors)
            return self._loop
