"""DNS on the wire: programs that send their own DNS queries (to the nameserver of the model's
/etc/resolv.conf) get the DNS model's answers and faults, over UDP and TCP."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator

import pytest

from libcfake import Sandbox

#: A resolver of its own, as c-ares, Go or bind's tools do: the nameserver from resolv.conf,
#: a connected UDP socket (TCP with "tcp"), one question; prints the rcode and the answers.
QUERY = """
import socket, sys, dns.message, dns.rcode
nameserver = next(line.split()[1] for line in open("/etc/resolv.conf")
                  if line.startswith("nameserver"))
name, kind, transport = sys.argv[1], sys.argv[2], sys.argv[3]
query = dns.message.make_query(name, kind).to_wire()
if transport == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(20)
    s.connect((nameserver, 53))
    s.send(query)
    wire = s.recv(65535)
else:
    s = socket.create_connection((nameserver, 53), timeout=20)
    s.sendall(len(query).to_bytes(2, "big") + query)
    length = int.from_bytes(s.recv(2), "big")
    wire = b""
    while len(wire) < length:
        wire += s.recv(length - len(wire))
response = dns.message.from_wire(wire)
answers = sorted(r.to_text() for rr in response.answer for r in rr)
print(dns.rcode.to_text(response.rcode()), *answers)
"""


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(reply_timeout=20) as sandbox:
        sandbox.dns.add("db.internal", ["10.0.0.5", "2001:db8::5"])
        sandbox.dns.add_record("www.internal", "CNAME", "db.internal")
        sandbox.dns.add_record("internal", "MX", "10 mail.internal")
        sandbox.dns.add("mail.internal", "10.0.0.25")
        yield sandbox


def query(sb: Sandbox, name: str, kind: str = "A", transport: str = "udp") -> str:
    result = sb.run([sys.executable, "-c", QUERY, name, kind, transport], capture_output=True,
                    text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_resolver_of_its_own_gets_the_models_records(sb: Sandbox, transport: str) -> None:
    assert query(sb, "db.internal", "A", transport) == "NOERROR 10.0.0.5"
    assert query(sb, "db.internal", "AAAA", transport) == "NOERROR 2001:db8::5"
    assert query(sb, "www.internal", "A", transport) == "NOERROR 10.0.0.5 db.internal."
    assert query(sb, "internal", "MX", transport) == "NOERROR 10 mail.internal."
    assert query(sb, "missing.internal", "A", transport) == "NXDOMAIN"
    assert not sb.violations
    assert sb.unused_rules() == []  # the nameserver's own route is not the test's


@pytest.mark.parametrize(
    ("outcome", "answer"), [("again", "SERVFAIL"), ("noname", "NXDOMAIN"), ("nodata", "NOERROR")]
)
def test_dns_faults_reach_resolvers_of_their_own(sb: Sandbox, outcome: str, answer: str) -> None:
    rule = sb.dns.fail("db.internal", outcome)
    assert query(sb, "db.internal") == answer
    assert rule.fired == 1


def test_a_delayed_answer_holds_only_its_own_query(sb: Sandbox) -> None:
    sb.dns.fail("slow.internal", "again", delay=4)
    slow = sb.popen([sys.executable, "-c", QUERY, "slow.internal", "A", "udp"], stdout=-1,
                    text=True)  # fmt: skip
    started = time.monotonic()
    assert query(sb, "db.internal") == "NOERROR 10.0.0.5"
    quick = time.monotonic() - started
    out, _ = slow.communicate(timeout=60)
    assert out.strip() == "SERVFAIL"
    assert time.monotonic() - started >= 4
    assert quick < 4  # the quick query was answered while the slow one waited


def test_a_query_for_a_name_in_no_zone_is_refused_and_a_violation(sb: Sandbox) -> None:
    assert query(sb, "www.example.com") == "REFUSED"
    [violation] = sb.violations
    assert violation.path == "www.example.com"
    assert "in no zone of the DNS model" in violation.reason


def test_the_tests_own_resolv_conf_is_kept() -> None:
    with Sandbox() as sb:
        sb.fs.create_file("/etc/resolv.conf", contents="nameserver 10.9.9.9\n")
        result = sb.run(["cat", "/etc/resolv.conf"], capture_output=True, text=True)
        assert result.stdout == "nameserver 10.9.9.9\n"
    with Sandbox() as sb:
        result = sb.run(["cat", "/etc/resolv.conf"], capture_output=True, text=True)
        assert "nameserver 198.19.255.53" in result.stdout


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["dig", "+short", "db.internal"], "10.0.0.5"),
        (["dig", "+short", "MX", "internal"], "10 mail.internal."),
        (["host", "www.internal"], "www.internal is an alias for db.internal."),
        (["nslookup", "db.internal"], "Address: 10.0.0.5"),
    ],
)
def test_bind_tools_resolve_from_the_model(sb: Sandbox, command: list[str], expected: str) -> None:
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed (Debian: bind9-dnsutils)")
    result = sb.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert expected in result.stdout
    assert not sb.violations, sb.violations
