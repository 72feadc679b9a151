"""The DNS model: names programs resolve, answered from dnspython records.

:class:`Dns` is ``sb.dns`` of a Sandbox::

    sb.dns.add("db.internal", "10.0.0.5")                    # A (AAAA for IPv6) and the PTR back
    sb.dns.add_record("www.internal", "CNAME", "db.internal")
    sb.dns.add_record("internal", "MX", "10 mail.internal")  # MX, SRV, TXT ... for res_query
    sb.dns.load_hosts("192.0.2.7 api.example.test api\\n")
    sb.dns.fail("db.internal", "again", times=2)             # EAI_AGAIN twice, then the answer

Every name added makes its parent domain a *zone the model owns* ("internal" above): a name in
such a zone that the model lacks is answered "no such name" (EAI_NONAME, NXDOMAIN), while a name
in no zone of the model is a violation — the program asked for something the test did not plan.
Numeric hosts ("10.0.0.5", "::1") and "localhost" need no records. The reverse trees
(in-addr.arpa, ip6.arpa) are always the model's: an address without a PTR record has no name.

The model answers four kinds of question:

- ``getaddrinfo`` follows glibc 2.36: its checks in glibc's order, the hints' family, socket
  type and protocol (glibc's table: tcp, udp, dccp, udplite, sctp, raw); AI_PASSIVE,
  AI_CANONNAME, AI_NUMERICHOST, AI_NUMERICSERV, AI_V4MAPPED and AI_ALL; numeric hosts as
  ``inet_aton`` reads them ("127.1") and IPv6 with a scope; services by number as ``strtoul``
  reads them or by name from the host's /etc/services; "*" for NULL; one entry per socket type
  when the hints give none; the canonical name through CNAME chains. Names from a hosts file
  (:meth:`Dns.load_hosts`) behave as glibc's files backend: the canonical name is the first
  name of the first matching line, and a name without an address of the family asked for is
  EAI_NONAME, where a DNS name gives EAI_NODATA.
- ``getnameinfo`` (and gethostbyaddr) answers from PTR records: :meth:`Dns.getnameinfo`.
- gethostbyname* are getaddrinfo lookups (the shim builds the hostent).
- ``res_query`` gets a wire-format DNS response built with dnspython: :meth:`Dns.query`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.reversename
import dns.rrset
import dns.zone

from .faults import FaultRule
from .gai import GAI_ERRORS, TYPEPROTO, TypeProto, chosen_row

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The error names a lookup can fail with: glibc's getaddrinfo errors.
OUTCOMES = tuple(GAI_ERRORS)

#: The resolver's h_errno values that :meth:`Dns.query` and the shim use.
HOST_NOT_FOUND, TRY_AGAIN, NO_RECOVERY, NO_DATA = 1, 2, 3, 4

_KNOWN_FLAGS = int(  # an int: ~ of Python's AddressInfo flag would keep only its known bits
    socket.AI_PASSIVE | socket.AI_CANONNAME | socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
    | socket.AI_V4MAPPED | socket.AI_ALL | socket.AI_ADDRCONFIG
    | 0x0040 | 0x0080 | 0x0100 | 0x0200  # glibc's AI_IDN and friends: accepted, no effect
)  # fmt: skip
#: getnameinfo's flags glibc accepts: NI_NUMERICHOST, NI_NUMERICSERV, NI_NOFQDN, NI_NAMEREQD,
#: NI_DGRAM, NI_IDN and its two deprecated companions.
_NI_KNOWN_FLAGS = 0xFF
NI_NUMERICHOST, NI_NAMEREQD = socket.NI_NUMERICHOST, socket.NI_NAMEREQD

_MAX_CNAME_CHAIN = 16
_REVERSE_TREES = (dns.name.from_text("in-addr.arpa."), dns.name.from_text("ip6.arpa."))
#: The largest response :meth:`Dns.query` builds: what one reply of the protocol carries.
MAX_RESPONSE = 16384 - 64
_C_SPACE = " \t\n\v\f\r"


class LookupRefused(Exception):
    """A name in no zone of the model: the caller answers it and reports a violation."""


@dataclass
class _HostsName:
    """A name from a hosts file, as glibc's files backend answers it."""

    canonical: dict[int, str]  # per family asked for (AF_UNSPEC: the first line)
    inet: list[IPAddress]  # an AF_INET lookup: its IPv4 lines, and ::1 and ::ffff:a.b.c.d lines
    inet6: list[IPAddress]  # an AF_INET6 lookup: its IPv6 lines
    unspec: list[IPAddress]  # an AF_UNSPEC lookup: every line, in file order


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
        #: names from hosts files, answered by getaddrinfo as glibc's files backend does
        self._hosts: dict[dns.name.Name, _HostsName] = {}
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

    def add(
        self,
        name: str,
        addresses: str | IPAddress | Iterable[str | IPAddress],
        ttl: int = 300,
        *,
        reverse: bool = True,
    ) -> None:
        """Give ``name`` A and/or AAAA records, in the order given.

        With ``reverse`` (the default) each address that has no PTR record yet gets one back
        to ``name``, so getnameinfo and gethostbyaddr find it: the first name given an address
        is its name, as the first line of a hosts file is. ``reverse=False`` adds none;
        :meth:`add_record` with "PTR" sets one explicitly.
        """
        values: list[str | IPAddress] = (
            [addresses]
            if isinstance(addresses, (str, ipaddress.IPv4Address, ipaddress.IPv6Address))
            else list(addresses)
        )
        for value in values:
            address = ipaddress.ip_address(value)
            self.add_record(name, "A" if address.version == 4 else "AAAA", str(address), ttl)
            if reverse and not self._ptr_names(address):
                self.add_record(dns.reversename.from_address(str(address)).to_text(), "PTR",
                                _name(name).to_text(), ttl)  # fmt: skip

    def add_record(self, name: str, rdtype: str, rdata: str, ttl: int = 300) -> None:
        """Add one record (A, AAAA, CNAME, PTR, MX, SRV, TXT, ...) in presentation format.

        Names in ``rdata`` are absolute (``"10 mail.internal"``); for PTR, ``name`` is the
        reverse name (``"5.0.0.10.in-addr.arpa"``) or simply the address (``"10.0.0.5"``).
        """
        if rdtype.upper() == "PTR":
            with contextlib.suppress(ValueError, dns.exception.DNSException):
                name = dns.reversename.from_address(name).to_text()
        owner = _name(name)
        try:
            record = dns.rdata.from_text(
                dns.rdataclass.IN, rdtype, rdata, origin=dns.name.root, relativize=False
            )
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
        """Add the names of a hosts file ("ADDRESS NAME [ALIAS...]" lines, # comments).

        Each name gets A/AAAA records (for res_query) and each address a PTR to the first name
        of its first line. getaddrinfo answers the names as glibc's files backend does: each
        name's addresses in file order, repeated if the file repeats them; the canonical name
        the first name of the first line (of the family asked for); and for an AF_INET lookup
        "::1" lines as 127.0.0.1 and "::ffff:a.b.c.d" lines as a.b.c.d.
        """
        for number, line in enumerate(_read(text_or_path).splitlines(), 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            if len(fields) < 2:
                raise ValueError(f"hosts line {number}: {line!r} has an address but no name")
            try:
                address = ipaddress.ip_address(fields[0])
            except ValueError:
                raise ValueError(f"hosts line {number}: {fields[0]!r} is no address") from None
            as_inet: IPAddress | None = address
            if isinstance(address, ipaddress.IPv6Address):
                as_inet = address.ipv4_mapped
                if address.is_loopback:
                    as_inet = ipaddress.IPv4Address("127.0.0.1")
            for host in fields[1:]:
                self.add(host, address, reverse=host == fields[1])
                entry = self._hosts.setdefault(_name(host), _HostsName({}, [], [], []))
                entry.canonical.setdefault(socket.AF_UNSPEC, fields[1])
                entry.unspec.append(address)
                if address.version == 6:
                    entry.canonical.setdefault(socket.AF_INET6, fields[1])
                    entry.inet6.append(address)
                if as_inet is not None:
                    entry.canonical.setdefault(socket.AF_INET, fields[1])
                    entry.inet.append(as_inet)

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

    def _ptr_names(self, address: IPAddress) -> list[str]:
        reverse = dns.reversename.from_address(str(address))
        zone = self._zone_of(reverse)
        node = zone.get_node(reverse) if zone is not None else None
        found = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.PTR) if node else None
        return [_text(record.target) for record in found] if found is not None else []

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
        node = None if node == "*" else node
        service = None if service == "*" else service
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

    def getnameinfo(self, address: str | IPAddress, flags: int = 0) -> str:
        """The host part of glibc's getnameinfo over the model: a name, or an error name.

        The name of an address is its first PTR record (an IPv4-mapped IPv6 address is looked
        up as its IPv4 address, as glibc's DNS backend does); the loopback addresses are
        "localhost" when they have none. Without a name the answer is the numeric form
        (inet_ntop's), or "noname" with NI_NAMEREQD; NI_NUMERICHOST always gives the numeric
        form. NI_NOFQDN has no effect: glibc strips the host's own domain, which the model
        does not have. Unknown flags give "badflags".
        """
        ip = ipaddress.ip_address(address)
        if flags & ~_NI_KNOWN_FLAGS:
            return "badflags"
        numeric = _ntop(ip)
        if flags & NI_NUMERICHOST:
            return numeric
        lookup: IPAddress = ip
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            lookup = ip.ipv4_mapped
        names = self._ptr_names(lookup)
        if names:
            return names[0]
        if lookup.is_loopback:
            return "localhost"
        return "noname" if flags & NI_NAMEREQD else numeric

    def query(self, name: str, rdclass: int = 1, rdtype: int = 1) -> bytes | int:
        """res_query over the model: the wire-format DNS response for (name, class, type).

        The response is authoritative (AA, and RA as a recursive resolver sets it) and holds
        the records of that name and type, the CNAMEs that lead there, and in the additional
        section the addresses of MX, SRV and NS targets the model knows. A name the model's
        zones lack is NXDOMAIN and a name without records of the type is an empty NOERROR
        answer (both with the zone's SOA, if it has one); class ANY (255) and type ANY (255)
        work; a class other than IN or ANY is REFUSED. The caller (the shim) turns a response
        without answers into -1 with h_errno as glibc's res_query does.

        Returns h_errno NO_RECOVERY (an int) for a name that is not a valid domain name;
        raises LookupRefused for a name in no zone of the model (the reverse trees are
        always the model's).
        """
        try:
            qname = dns.name.from_text(name if name.endswith(".") else name + ".")
            request = dns.message.make_query(
                qname, dns.rdatatype.RdataType.make(rdtype), dns.rdataclass.RdataClass.make(rdclass)
            )
        except (dns.exception.DNSException, ValueError):
            return NO_RECOVERY
        response = dns.message.make_response(request)
        response.flags |= dns.flags.AA | dns.flags.RA
        if rdclass not in (dns.rdataclass.IN, dns.rdataclass.ANY):
            response.set_rcode(dns.rcode.REFUSED)
            return _wire(response)
        self._answer(response, qname, rdtype)
        return _wire(response)

    def _answer(self, response: dns.message.Message, qname: dns.name.Name, rdtype: int) -> None:
        name = qname
        zone = None
        for _ in range(_MAX_CNAME_CHAIN):
            zone = self._zone_of(name)
            if zone is None:
                if any(name.is_subdomain(tree) for tree in _REVERSE_TREES):
                    response.set_rcode(dns.rcode.NXDOMAIN)
                    return
                raise LookupRefused(_text(name))
            node = zone.get_node(name)
            if node is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                break
            cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if cname is not None and rdtype not in (dns.rdatatype.CNAME, dns.rdatatype.ANY):
                response.answer.append(_rrset(name, cname))
                name = next(iter(cname)).target.derelativize(dns.name.root)
                continue
            found = [
                rdataset for rdataset in node.rdatasets
                if rdtype == dns.rdatatype.ANY or rdataset.rdtype == rdtype
            ]  # fmt: skip
            response.answer.extend(_rrset(name, rdataset) for rdataset in found)
            self._additional(response, found)
            break
        if zone is not None and not any(rrset.name == name for rrset in response.answer):
            soa = zone.get_rdataset(zone.origin, dns.rdatatype.SOA) if zone.origin else None
            if soa is not None:
                assert zone.origin is not None
                response.authority.append(_rrset(zone.origin, soa))

    def _additional(self, response: dns.message.Message,
                    found: list[dns.rdataset.Rdataset]) -> None:  # fmt: skip
        """The addresses of the MX, SRV and NS targets among ``found`` that the model has."""
        targets: list[dns.name.Name] = []
        for rdataset in found:
            if rdataset.rdtype == dns.rdatatype.MX:
                targets += [record.exchange for record in rdataset]
            elif rdataset.rdtype in (dns.rdatatype.SRV, dns.rdatatype.NS):
                targets += [record.target for record in rdataset]
        for target in dict.fromkeys(targets):
            zone = self._zone_of(target)
            node = zone.get_node(target) if zone is not None else None
            if node is None:
                continue
            for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                addresses = node.get_rdataset(dns.rdataclass.IN, rdtype)
                if addresses is not None:
                    response.additional.append(_rrset(target, addresses))

    def _addresses(self, node: str | None, hints: Hints) -> tuple[list[IPAddress], str] | str:
        family = hints.family
        if node is None:
            passive = hints.flags & socket.AI_PASSIVE
            any_or_loopback = ["::", "0.0.0.0"] if passive else ["::1", "127.0.0.1"]
            return _of_family([ipaddress.ip_address(a) for a in any_or_loopback], family), ""
        literal = _numeric_host(node)
        if isinstance(literal, str):
            return literal
        if literal is not None:
            mapped = self._literal(literal, hints)
            return mapped if isinstance(mapped, str) else (mapped, node)
        if hints.flags & socket.AI_NUMERICHOST or not node:
            return "noname"
        if node == "localhost" and self._zone_of(_name(node)) is None:
            loopback = _of_family([ipaddress.ip_address("::1"), ipaddress.ip_address("127.0.0.1")],
                                  family)  # fmt: skip
            return (loopback, node) if loopback else "noname"
        try:
            hosts = self._hosts.get(_name(node))
            if hosts is not None:
                return self._hosts_addresses(hosts, hints)
            canonical, a_records = self.resolve(node, "A")
            _, aaaa_records = self.resolve(node, "AAAA")
        except KeyError:
            return "noname"
        except dns.exception.DNSException:  # not a domain name at all ("a..b", labels > 63)
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
    def _hosts_addresses(hosts: _HostsName, hints: Hints) -> tuple[list[IPAddress], str] | str:
        """A hosts name's addresses for getaddrinfo, as glibc asks its files backend."""
        family, flags = hints.family, hints.flags
        if family == socket.AF_INET:
            found, canonical = hosts.inet, hosts.canonical.get(socket.AF_INET)
        elif family == socket.AF_INET6:
            found, canonical = hosts.inet6, hosts.canonical.get(socket.AF_INET6)
            mapped: list[IPAddress] = [ipaddress.IPv6Address(f"::ffff:{a}") for a in hosts.inet]
            if flags & socket.AI_V4MAPPED and (flags & socket.AI_ALL or not found):
                found = found + mapped
                canonical = canonical or hosts.canonical.get(socket.AF_INET)
        else:
            found = [a for a in hosts.unspec if a.version == 4]
            found += [a for a in hosts.unspec if a.version == 6]
            canonical = hosts.canonical[socket.AF_UNSPEC]
        if not found or canonical is None:
            return "noname"  # the files backend cannot tell "no such name" from "no address"
        return list(found), canonical

    @staticmethod
    def _literal(address: IPAddress, hints: Hints) -> list[IPAddress] | str:
        family = hints.family
        if family == socket.AF_UNSPEC or (family == socket.AF_INET) == (address.version == 4):
            return [address]
        if address.version == 4 and hints.flags & socket.AI_V4MAPPED:
            return [ipaddress.IPv6Address(f"::ffff:{address}")]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return [address.ipv4_mapped]
        return "addrfamily"


def _rrset(name: dns.name.Name, rdataset: dns.rdataset.Rdataset) -> dns.rrset.RRset:
    return dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))


def _wire(response: dns.message.Message) -> bytes:
    """The response in wire format, records in the order added (dnspython shuffles them by
    default); truncated (TC, no records) if larger than one reply."""
    try:
        return response.to_wire(max_size=MAX_RESPONSE, want_shuffle=False)
    except dns.exception.TooBig:
        response.answer.clear()
        response.authority.clear()
        response.additional.clear()
        response.flags |= dns.flags.TC
        return response.to_wire()


def _ntop(ip: IPAddress) -> str:
    """inet_ntop's text for ``ip`` (Python writes "::ffff:a00:5" where glibc has "10.0.0.5")."""
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    return socket.inet_ntop(family, ip.packed)


def _numeric_host(node: str) -> IPAddress | str | None:
    """``node`` as glibc's getaddrinfo reads a numeric host: inet_aton's IPv4 forms ("127.1",
    "0x7f.1"), or IPv6 with an optional %scope (a number or an interface name); None for a
    name, or "noname" for an IPv6 address whose scope names no interface."""
    if node and not any(c in _C_SPACE for c in node):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(node))
        except OSError:
            pass
    text, _, scope = node.partition("%")
    try:
        address = ipaddress.IPv6Address(socket.inet_pton(socket.AF_INET6, text))
    except (OSError, ValueError):
        return None
    if not scope:
        return address
    if not scope.isdigit():
        try:
            scope = str(socket.if_nametoindex(scope))
        except OSError:
            return "noname"
    return ipaddress.IPv6Address(f"{address}%{int(scope) & 0xFFFFFFFF}")


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
    """glibc's first checks, in its order."""
    if node is None and service is None:
        return "noname"
    if hints.flags & ~_KNOWN_FLAGS:
        return "badflags"
    if hints.flags & socket.AI_CANONNAME and node is None:
        return "badflags"
    if hints.family not in (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6):
        return "family"
    return None


_STRTOUL = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)")


def _service_number(service: str) -> int | None:
    """The port number glibc reads from ``service``: strtoul's value cast to int (so "70000"
    is 70000 and "-1" is -1, a name); None when the text is not all number."""
    match = _STRTOUL.fullmatch(service)
    if match is None:
        return None
    value = min(int(match.group(2)), 2**64 - 1)  # strtoul saturates at ULONG_MAX
    if match.group(1) == "-" and value != 2**64 - 1:
        value = -value % 2**64
    value &= 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


def _ports(service: str | None, hints: Hints) -> list[tuple[int, int, int]] | str:
    """(port, socktype, protocol) for each socket type the service and hints allow, as glibc's
    gaih_inet chooses them from its table."""
    number: int | None = None
    if service:  # glibc treats "" as no service
        number = _service_number(service)
        if number is None and hints.flags & socket.AI_NUMERICSERV:
            return "noname"
        number = -1 if number is None else number
    chosen: TypeProto | None = None
    if hints.socktype or hints.protocol:
        chosen = chosen_row(hints.socktype, hints.protocol)
        if chosen is None:
            return "socktype" if hints.socktype else "service"
    if number is not None and chosen is not None and chosen.no_service:
        return "service"
    if number is not None and number < 0:
        assert service is not None
        rows = [chosen] if chosen is not None else [row for row in TYPEPROTO if not row.no_service]
        found = []
        for row in rows:
            try:
                port = socket.getservbyname(service, row.name)
            except OSError:
                continue
            found.append((port, row.socktype, row.protocol_for(hints.protocol)))
        return found or "service"
    port = (number or 0) & 0xFFFF
    if chosen is not None:
        return [(port, chosen.socktype, chosen.protocol_for(hints.protocol))]
    return [(port, row.socktype, row.protocol) for row in TYPEPROTO if row.default]
