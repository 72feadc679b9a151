"""glibc's getaddrinfo vocabulary, shared by the reply encoder and the DNS model: the error
names (the seed's, and glibc's two more) with their EAI_* codes, and glibc's table of socket
types and protocols (``gaih_inet_typeproto``), which decides the entries listed per address.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

#: The seed's getaddrinfo error names and their EAI_* codes (plus glibc's nodata and addrfamily).
GAI_ERRORS: dict[str, int] = {
    "again": socket.EAI_AGAIN,
    "badflags": socket.EAI_BADFLAGS,
    "fail": socket.EAI_FAIL,
    "family": socket.EAI_FAMILY,
    "memory": socket.EAI_MEMORY,
    "noname": socket.EAI_NONAME,
    "service": socket.EAI_SERVICE,
    "socktype": socket.EAI_SOCKTYPE,
    "system": socket.EAI_SYSTEM,
    "nodata": socket.EAI_NODATA,
    "addrfamily": socket.EAI_ADDRFAMILY,
}

_SOCK_DCCP, _SOCK_SEQPACKET = 6, 5
_IPPROTO_DCCP, _IPPROTO_UDPLITE, _IPPROTO_SCTP = 33, 136, 132


@dataclass(frozen=True)
class TypeProto:
    """A row of glibc's gaih_inet_typeproto table."""

    socktype: int
    protocol: int
    name: str  # the protocol's name in /etc/services
    default: bool = False  # listed when the hints name neither socket type nor protocol
    any_protocol: bool = False  # raw: takes the hints' protocol, whatever it is
    no_service: bool = False  # raw: has no ports

    def protocol_for(self, hinted: int) -> int:
        """The protocol an entry of this row carries for the hints' protocol."""
        return hinted if self.any_protocol else self.protocol


#: glibc's table, in its order: what getaddrinfo lists for a socket type and protocol.
TYPEPROTO = (
    TypeProto(socket.SOCK_STREAM, socket.IPPROTO_TCP, "tcp", default=True),
    TypeProto(socket.SOCK_DGRAM, socket.IPPROTO_UDP, "udp", default=True),
    TypeProto(_SOCK_DCCP, _IPPROTO_DCCP, "dccp"),
    TypeProto(socket.SOCK_DGRAM, _IPPROTO_UDPLITE, "udplite"),
    TypeProto(socket.SOCK_STREAM, _IPPROTO_SCTP, "sctp"),
    TypeProto(_SOCK_SEQPACKET, _IPPROTO_SCTP, "sctp"),
    TypeProto(socket.SOCK_RAW, 0, "raw", default=True, any_protocol=True, no_service=True),
)


def chosen_row(socktype: int, protocol: int) -> TypeProto | None:
    """The first row the hints' socket type and protocol (both nonzero: either) select; None
    when they name neither, or no row (EAI_SOCKTYPE or EAI_SERVICE)."""
    for row in TYPEPROTO:
        if socktype and socktype != row.socktype:
            continue
        if protocol and not row.any_protocol and protocol != row.protocol:
            continue
        return row
    return None


def socket_types(socktype: int, protocol: int, has_port: bool) -> list[tuple[int, int]]:
    """The (socktype, protocol) pairs glibc lists per address for these hints; ``has_port``: a
    service was resolved, which rows without ports (raw) cannot carry."""
    if socktype or protocol:
        row = chosen_row(socktype, protocol)
        return (
            [(socktype or socket.SOCK_RAW, protocol)]
            if row is None
            else [(row.socktype, row.protocol_for(protocol))]
        )
    return [(row.socktype, row.protocol) for row in TYPEPROTO
            if row.default and not (has_port and row.no_service)]  # fmt: skip
