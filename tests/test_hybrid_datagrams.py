"""Datagrams under the hybrid backend come from the address the program sent them to.

A program's ``sendto`` of a routed address is sent by the master to the real address behind
it; the answer's real source is that real address. A resolver that checks where its answer came
from (musl's, dnspython's) would drop it. With a source buffer, ``recvfrom`` traps and the
master receives the datagram itself, writing the address the program named: here Python, run
in a hybrid Sandbox, asks the model's nameserver at its virtual address, blocking in
``recvfrom`` before the answer is there, and with dnspython's resolver.
"""

from __future__ import annotations

import sys
import textwrap

import pytest

from libcfake import Sandbox, _hybrid

NAMESERVER = "198.19.255.53"  # where the model's /etc/resolv.conf points (DNS on the wire)

pytestmark = pytest.mark.skipif(
    _hybrid.unavailable() is not None, reason=f"no hybrid backend here: {_hybrid.unavailable()}"
)


@pytest.fixture
def sb() -> Sandbox:
    with Sandbox(backend="hybrid") as sandbox:
        sandbox.fs.create_file("/etc/resolv.conf", contents=f"nameserver {NAMESERVER}\n")
        sandbox.dns.add("db.internal", "10.0.0.5")
        yield sandbox


def test_a_blocking_recvfrom_reports_the_address_asked(sb: Sandbox) -> None:
    """The answer comes 0.5 s late (a fault's delay): recvfrom waits in the master, which
    serves the other calls meanwhile, then writes the datagram and the address asked."""
    sb.dns.fail("slow.internal", "noname", delay=0.5)
    code = textwrap.dedent(f"""
        import socket, dns.message, dns.rcode
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(None)
        for name in ("db.internal", "slow.internal"):
            sock.sendto(dns.message.make_query(name, "A").to_wire(), ("{NAMESERVER}", 53))
            wire, source = sock.recvfrom(4096)
            answer = dns.message.from_wire(wire)
            found = answer.answer[0][0] if answer.answer else dns.rcode.to_text(answer.rcode())
            print(source[0], source[1], found)
    """)
    done = sb.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{NAMESERVER} 53 10.0.0.5", f"{NAMESERVER} 53 NXDOMAIN"]
    assert sb.violations == []


def test_dnspythons_resolver_accepts_the_answer(sb: Sandbox) -> None:
    code = textwrap.dedent("""
        import dns.resolver
        resolver = dns.resolver.Resolver(configure=True)
        resolver.lifetime = 5
        print(resolver.resolve("db.internal", "A")[0])
    """)
    done = sb.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "10.0.0.5"
    assert sb.violations == []
