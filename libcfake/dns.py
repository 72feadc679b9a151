"""The DNS model: names programs resolve, answered from dnspython records.

:class:`Dns` is ``sb.dns`` of a Sandbox::

    sb.dns.add("db.internal", "10.0.0.5")                    # A (and AAAA for IPv6 addresses)
    sb.dns.add_record("www.internal", "CNAME", "db.internal")
    sb.dns.load_hosts("192.0.2.7 api.example.test api\\n")
    sb.dns.fail("db.internal", "again", times=2)             # EAI_AGAIN twice, then the answer

Every name added makes its parent domain a *zone the model owns* ("internal" above): a name in
such a zone that the model lacks is answered "no such name" (EAI_NONAME), while a name in no
zone of the model is a violation — the program asked for something the test did not plan.
Numeric hosts ("10.0.0.5", "::1") and "localhost" need no records.

``getaddrinfo`` follows glibc: the hints' family, socket type and protocol; AI_PASSIVE,
AI_CANONNAME, AI_NUMERICHOST, AI_NUMERICSERV, AI_V4MAPPED and AI_ALL; services by number or
by name from the host's /etc/services; one entry per socket type when the hints give none;
the canonical name through CNAME chains.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone

from .faults import FaultRule

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The seed's error names a lookup can fail with, plus "nodata" (no address of that family).
OUTCOMES = ("again", "badflags", "fail", "family", "memory", "noname", "service", "socktype",
            "system", "nodata")  # fmt: skip

_KNOWN_FLAGS = (
    socket.AI_PASSIVE | socket.AI_CANONNAME | socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
    | socket.AI_V4MAPPED | socket.AI_ALL | socket.AI_ADDRCONFIG
    | 0x0040 | 0x0080 | 0x0100 | 0x0200  # glibc's AI_IDN and friends: accepted, no effect
)  # fmt: skip
#: Socket types getaddrinfo lists, with their default protocol.
_SOCKTYPES: dict[int, int] = {
    socket.SOCK_STREAM: socket.IPPROTO_TCP,
    socket.SOCK_DGRAM: socket.IPPROTO_UDP,
    socket.SOCK_RAW: 0,
}
_PROTOCOL_NAMES = {socket.IPPROTO_TCP: "tcp", socket.IPPROTO_UDP: "udp"}
_MAX_CNAME_CHAIN = 16


class LookupRefused(Exception):
    """A name in no zone of the model: the caller answers it and reports a violation."""


@dataclass(frozen=True)
class Hints:
    """The ``hints`` argument of a getaddrinfo call."""

    flags: int = 0
    family: int = socket.AF_UNSPEC
    socktype: int = 0
    protocol: int = 0


@dataclass(frozen=True)
class Answer:
    """A successful lookup: entries of (address, port, socktype, protocol), canonical name."""

    entries: list[tuple[IPAddress, int, int, int]]
    canonical_name: str | None


def _name(text: str) -> dns.name.Name:
    if not isinstance(text, str) or not text:
        raise ValueError(f"a host name must be a non-empty str, not {text!r}")
    return dns.name.from_text(text if text.endswith(".") else text + ".")


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True)


class Dns:
    """The names programs can resolve, held as dnspython zones."""

    def __init__(self) -> None:
        self._zones: dict[dns.name.Name, dns.zone.Zone] = {}
        self.faults: list[FaultRule] = []

    def fail(
        self,
        name: str,
        outcome: str,
        *,
        nth: int | None = None,
        times: int | None = None,
        delay: float = 0.0,
    ) -> FaultRule:
        """Make lookups of ``name`` (a glob) fail with ``outcome`` ("again", "noname", ...).

        ``nth``/``times`` choose which matching lookups fail; ``delay`` adds latency first.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
        rule = FaultRule("getaddrinfo", name, outcome, nth=nth, times=times, delay=delay)
        self.faults.append(rule)
        return rule

    # -- what a test arranges -------------------------------------------------------------

    def add(self, name: str, addresses: str | IPAddress | Iterable[str | IPAddress],
            ttl: int = 300) -> None:  # fmt: skip
        """Give ``name`` A and/or AAAA records, in the order given."""
        values: list[str | IPAddress] = (
            [addresses]
            if isinstance(addresses, (str, ipaddress.IPv4Address, ipaddress.IPv6Address))
            else list(addresses)
        )
        for value in values:
            address = ipaddress.ip_address(value)
            self.add_record(name, "A" if address.version == 4 else "AAAA", str(address), ttl)

    def add_record(self, name: str, rdtype: str, rdata: str, ttl: int = 300) -> None:
        """Add one record (A, AAAA, CNAME, PTR, MX, SRV, TXT, ...) in presentation format."""
        owner = _name(name)
        try:
            record = dns.rdata.from_text(dns.rdataclass.IN, rdtype, rdata, origin=dns.name.root)
        except Exception as error:  # dnspython raises several kinds for bad text
            raise ValueError(f"bad {rdtype} record for {name}: {rdata!r} ({error})") from None
        zone = self._zone_for_new(owner)
        with zone.writer() as txn:
            txn.add(owner, ttl, record)

    def load_zone(self, text_or_path: str | os.PathLike[str], origin: str | None = None) -> None:
        """Load a zone file (text, or a path to one); the model then owns its origin."""
        text = _read(text_or_path)
        zone = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
        assert zone.origin is not None  # from_text sets it or raises
        self._zones[zone.origin] = zone

    def load_hosts(self, text_or_path: str | os.PathLike[str]) -> None:
        """Add the names of a hosts file ("ADDRESS NAME [ALIAS...]" lines, # comments)."""
        for number, line in enumerate(_read(text_or_path).splitlines(), 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            if len(fields) < 2:
                raise ValueError(f"hosts line {number}: {line!r} has an address but no name")
            for host in fields[1:]:
                self.add(host, fields[0])

    def _zone_for_new(self, owner: dns.name.Name) -> dns.zone.Zone:
        zone = self._zone_of(owner)
        if zone is None:
            origin = owner.parent() if len(owner.labels) > 2 else owner  # "a.b." -> "b."
            zone = self._zones.setdefault(origin, dns.zone.Zone(origin, relativize=False))
        return zone

    def _zone_of(self, name: dns.name.Name) -> dns.zone.Zone | None:
        """The most specific zone of the model that ``name`` lies in."""
        origins = [origin for origin in self._zones if name.is_subdomain(origin)]
        return self._zones[max(origins, key=len)] if origins else None

    # -- answering ------------------------------------------------------------------------

    def resolve(self, host: str, rdtype: str) -> tuple[str, list[dns.rdata.Rdata]]:
        """Follow CNAMEs from ``host``; its canonical name and the records of ``rdtype`` there.

        Raises KeyError for a name the model's zones lack, LookupRefused for a name in none.
        """
        name = _name(host)
        for _ in range(_MAX_CNAME_CHAIN):
            zone = self._zone_of(name)
            if zone is None:
                raise LookupRefused(_text(name))
            node = zone.get_node(name)
            if node is None:
                raise KeyError(_text(name))
            cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if cname is None or rdtype == "CNAME":
                found = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype))
                return _text(name), list(found) if found is not None else []
            name = next(iter(cname)).target.derelativize(dns.name.root)
        raise KeyError(f"{host}: CNAME chain longer than {_MAX_CNAME_CHAIN}")

    def getaddrinfo(self, node: str | None, service: str | None, hints: Hints) -> Answer | str:
        """glibc's getaddrinfo over the model: an Answer, or an error name of OUTCOMES."""
        problem = _check_hints(node, service, hints)
        if problem:
            return problem
        ports = _ports(service, hints)
        if isinstance(ports, str):
            return ports
        addresses = self._addresses(node, hints)
        if isinstance(addresses, str):
            return addresses
        found, canonical = addresses
        entries = [(ip, port, socktype, proto) for ip in found for port, socktype, proto in ports]
        return Answer(entries, canonical if hints.flags & socket.AI_CANONNAME else None)

    def _addresses(self, node: str | None, hints: Hints) -> tuple[list[IPAddress], str] | str:
        family = hints.family
        if node is None:
            passive = hints.flags & socket.AI_PASSIVE
            any_or_loopback = ["::", "0.0.0.0"] if passive else ["::1", "127.0.0.1"]
            return _of_family([ipaddress.ip_address(a) for a in any_or_loopback], family), ""
        try:
            literal = ipaddress.ip_address(node)
        except ValueError:
            literal = None
        if literal is not None:
            mapped = self._literal(literal, hints)
            return mapped if isinstance(mapped, str) else (mapped, node)
        if hints.flags & socket.AI_NUMERICHOST:
            return "noname"
        if node == "localhost" and self._zone_of(_name(node)) is None:
            loopback = _of_family([ipaddress.ip_address("::1"), ipaddress.ip_address("127.0.0.1")],
                                  family)  # fmt: skip
            return (loopback, node) if loopback else "noname"
        try:
            canonical, a_records = self.resolve(node, "A")
            _, aaaa_records = self.resolve(node, "AAAA")
        except KeyError:
            return "noname"
        v4_addresses = [ipaddress.ip_address(record.to_text()) for record in a_records]
        v6_addresses = [ipaddress.ip_address(record.to_text()) for record in aaaa_records]
        if family == socket.AF_INET:
            found = v4_addresses
        elif family == socket.AF_INET6:
            mapped = [ipaddress.IPv6Address(f"::ffff:{a}") for a in v4_addresses]
            if hints.flags & socket.AI_V4MAPPED and hints.flags & socket.AI_ALL:
                found = v6_addresses + mapped
            elif hints.flags & socket.AI_V4MAPPED and not v6_addresses:
                found = mapped
            else:
                found = v6_addresses
        else:
            found = v4_addresses + v6_addresses
        if not found:
            return "nodata" if v4_addresses or v6_addresses else "noname"
        return found, canonical

    @staticmethod
    def _literal(address: IPAddress, hints: Hints) -> list[IPAddress] | str:
        family = hints.family
        if family == socket.AF_UNSPEC or (family == socket.AF_INET) == (address.version == 4):
            return [address]
        if address.version == 4 and hints.flags & socket.AI_V4MAPPED:
            return [ipaddress.IPv6Address(f"::ffff:{address}")]
        return "addrfamily"


def _read(text_or_path: str | os.PathLike[str]) -> str:
    if isinstance(text_or_path, os.PathLike) or (
        isinstance(text_or_path, str) and "\n" not in text_or_path and os.path.isfile(text_or_path)
    ):
        with open(text_or_path) as file:
            return file.read()
    return str(text_or_path)


def _of_family(addresses: list[IPAddress], family: int) -> list[IPAddress]:
    if family == socket.AF_INET:
        return [a for a in addresses if a.version == 4]
    if family == socket.AF_INET6:
        return [a for a in addresses if a.version == 6]
    return addresses


def _check_hints(node: str | None, service: str | None, hints: Hints) -> str | None:
    if hints.flags & ~_KNOWN_FLAGS:
        return "badflags"
    if hints.flags & socket.AI_CANONNAME and node is None:
        return "badflags"
    if node is None and service is None:
        return "noname"
    if hints.family not in (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6):
        return "family"
    if hints.socktype not in (0, *_SOCKTYPES):
        return "socktype"
    return None


def _ports(service: str | None, hints: Hints) -> list[tuple[int, int, int]] | str:
    """(port, socktype, protocol) for each socket type the service and hints allow."""
    if hints.socktype:
        kinds = [(hints.socktype, hints.protocol or _SOCKTYPES[hints.socktype])]
    elif hints.protocol:
        kinds = [(t, p) for t, p in _SOCKTYPES.items() if p == hints.protocol]
        kinds = kinds or [(socket.SOCK_RAW, hints.protocol)]
    else:
        kinds = list(_SOCKTYPES.items())
    if service is None:
        return [(0, t, p) for t, p in kinds]
    if service.isdigit():
        port = int(service)
        if port > 65535:
            return "service"
        return [(port, t, p) for t, p in kinds if t != socket.SOCK_RAW or hints.socktype]
    if hints.flags & socket.AI_NUMERICSERV:
        return "noname"
    found = []
    for socktype, proto in kinds:
        name = _PROTOCOL_NAMES.get(proto)
        if name is None:
            continue
        try:
            found.append((socket.getservbyname(service, name), socktype, proto))
        except OSError:
            continue
    return found or "service"
