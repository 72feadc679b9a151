"""DNS on the wire: a nameserver on loopback answering from the DNS model, for every resolver
that does its own lookups (dig, host, nslookup, dnspython, c-ares, musl, Go, glibc's internal
lookups) instead of calling getaddrinfo.

A Sandbox starts one and gives the model an ``/etc/resolv.conf`` naming :data:`ADDRESS`, a
virtual address the network model routes to it (UDP and TCP, port 53). Answers come from
:meth:`libcfake.dns.Dns.query`, so they agree with getaddrinfo and res_query; the model's fault
rules (``sb.dns.fail``) apply too:

    again            SERVFAIL          fail, badflags, family, service, socktype, memory, system:
    noname           NXDOMAIN                 REFUSED
    nodata           an empty NOERROR  (delay= holds the answer back; other queries go on)

A name in no zone of the model is answered REFUSED and reported as a violation.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import select
import socket
import struct
import threading
from collections.abc import Callable

import dns.exception
import dns.flags
import dns.message
import dns.rcode

from .dns import Dns, LookupRefused

#: The nameserver's virtual address: the last /24 of the pool the network model gives names
#: from (it allocates from the other end).
ADDRESS = ipaddress.ip_address("198.19.255.53")
#: What a Sandbox writes to the model's /etc/resolv.conf when the test made none.
RESOLV_CONF = f"# libcfake: the DNS model, on the wire\nnameserver {ADDRESS}\n"

_RCODE_OF_OUTCOME = {"again": dns.rcode.SERVFAIL, "noname": dns.rcode.NXDOMAIN}
_MAX_TCP_MESSAGE = 65535


class NameServer:
    """A UDP and TCP nameserver on 127.0.0.1 answering from ``model``; ``on_refused(name,
    reason)`` hears of each query for a name in no zone of the model."""

    def __init__(self, model: Dns, on_refused: Callable[[str, str], None]) -> None:
        self._model = model
        self._on_refused = on_refused
        self._tcp, self._udp = _bind_pair()
        self.port: int = self._tcp.getsockname()[1]
        self._stop_read, self._stop_write = socket.socketpair()
        self._timers: list[threading.Timer] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="libcfake-dns", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> tuple[str, int]:
        """Where the network model routes ADDRESS:53 to."""
        return ("127.0.0.1", self.port)

    def close(self) -> None:
        self._stop_write.send(b"x")
        self._thread.join()
        with self._lock:
            for timer in self._timers:
                timer.cancel()
        for sock in (self._tcp, self._udp, self._stop_read, self._stop_write):
            sock.close()

    # -- serving ----------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            ready, _, _ = select.select([self._udp, self._tcp, self._stop_read], [], [])
            if self._stop_read in ready:
                return
            if self._udp in ready:
                with contextlib.suppress(OSError):
                    query, peer = self._udp.recvfrom(_MAX_TCP_MESSAGE)
                    self._reply(query, functools.partial(self._send_udp, peer=peer))
            if self._tcp in ready:
                with contextlib.suppress(OSError):
                    conn, _ = self._tcp.accept()
                    threading.Thread(target=self._serve_tcp, args=(conn,), daemon=True).start()

    def _send_udp(self, wire: bytes, *, peer: tuple[str, int]) -> None:
        if len(wire) > 512:  # the classic limit: say so, and the resolver asks again over TCP
            with contextlib.suppress(dns.exception.DNSException):
                message = dns.message.from_wire(wire)
                message.flags |= dns.flags.TC
                message.answer.clear()
                message.authority.clear()
                message.additional.clear()
                wire = message.to_wire()
        with contextlib.suppress(OSError):
            self._udp.sendto(wire, peer)

    def _serve_tcp(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            done = threading.Event()
            while True:
                try:
                    length = _receive_exactly(conn, 2)
                    if length is None:
                        return
                    query = _receive_exactly(conn, struct.unpack("!H", length)[0])
                except OSError:
                    return
                if query is None:
                    return
                done.clear()

                def send(wire: bytes) -> None:
                    with contextlib.suppress(OSError):
                        conn.sendall(struct.pack("!H", len(wire)) + wire)
                    done.set()

                self._reply(query, send)
                done.wait(60)  # a delayed answer comes before the next query is read

    def _reply(self, query: bytes, send: Callable[[bytes], None]) -> None:
        wire, delay = self._answer(query)
        if wire is None:
            return
        if delay <= 0:
            send(wire)
            return
        timer = threading.Timer(delay, send, (wire,))
        timer.daemon = True
        with self._lock:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def _answer(self, query: bytes) -> tuple[bytes | None, float]:
        try:
            request = dns.message.from_wire(query)
        except dns.exception.DNSException:
            return None, 0.0  # not a DNS message: no answer, as a server would
        if not request.question:
            return _with_rcode(request, dns.rcode.FORMERR), 0.0
        question = request.question[0]
        name = question.name.to_text(omit_final_dot=True)
        for rule in self._model.faults:
            if rule.applies("getaddrinfo", name):
                outcome = str(rule.error)
                if outcome == "nodata":
                    return _with_rcode(request, dns.rcode.NOERROR), rule.delay
                return _with_rcode(request, _RCODE_OF_OUTCOME.get(outcome, dns.rcode.REFUSED)), (
                    rule.delay
                )
        try:
            answer = self._model.query(name, question.rdclass, question.rdtype)
        except LookupRefused as refused:
            self._on_refused(name, f"a DNS query for {refused}: it is in no zone of the DNS model")
            return _with_rcode(request, dns.rcode.REFUSED), 0.0
        if isinstance(answer, int):  # not a valid name
            return _with_rcode(request, dns.rcode.FORMERR), 0.0
        response = dns.message.from_wire(answer)
        response.id = request.id
        if not request.flags & dns.flags.RD:
            response.flags &= ~dns.flags.RD
        return response.to_wire(), 0.0


def _with_rcode(request: dns.message.Message, rcode: dns.rcode.Rcode) -> bytes:
    response = dns.message.make_response(request)
    response.flags |= dns.flags.RA
    response.set_rcode(rcode)
    return response.to_wire()


def _receive_exactly(conn: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _bind_pair() -> tuple[socket.socket, socket.socket]:
    """A listening TCP socket and a UDP socket on the same loopback port."""
    for _ in range(50):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        tcp.bind(("127.0.0.1", 0))
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            udp.bind(tcp.getsockname())
        except OSError:
            tcp.close()
            udp.close()
            continue
        tcp.listen(16)
        return tcp, udp
    raise OSError("no loopback port free for both UDP and TCP")
