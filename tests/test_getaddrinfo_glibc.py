"""The differential test of getaddrinfo: glibc reading a hosts file against the DNS model.

For each case of the corpus, tests/programs/dns_gai.c makes one getaddrinfo call twice:

- for real, with glibc reading the test's hosts file: the program runs in private user, mount
  and network namespaces (``unshare -rmn``) with that file bind-mounted over /etc/hosts and an
  nsswitch.conf of ``hosts: files`` over /etc/nsswitch.conf, so nothing but the file answers
  and no name server is asked;
- behind the shim, answered by the model loaded from the same file (``Dns.load_hosts``) through
  a LibcService handler that answers as the Sandbox does.

Both print every entry (family, socket type, protocol, address, port, canonical name) and the
outputs must agree, order included — except the order *between* the two families: glibc sorts
mixed results by RFC 3484/6724 with the host's routes and source addresses (rule 1 "avoid
unusable destinations", rule 9 "longest matching prefix" ...), so on one host IPv6 comes first
and on another IPv4 does. There the test compares each family's own order and the canonical
name, and the model keeps its documented choice (IPv4 first). Addresses come from the
documentation ranges (198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32), which no host routes to
specially, so within a family glibc keeps the file's order.

Genuine limits of the model, skipped with the reason in the corpus:

- AI_ADDRCONFIG depends on the addresses the host's interfaces have; the model ignores it.
- glibc's files backend compares names as strings, so "alpha.test." (an absolute name) does not
  match "alpha.test"; the model is a DNS, where both are the same name.
- An IPv6 scope given by interface name is looked up in the test's network namespace by the
  model, and in the program's by glibc; the corpus uses numeric scopes and "lo" only.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from libcfake import LibcService
from libcfake.dns import Dns

from .dns_served import run_with_dns

HOSTS = """\
# the differential test's hosts file
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
198.51.100.1 alpha.test alpha
198.51.100.2 beta.test beta
2001:db8::2 beta.test
198.51.100.3 multi.test
198.51.100.4 multi.test multi-alias
2001:db8::10 six.test six
198.51.100.5 beta
198.51.100.7 Mixed.Case.test
2001:db8::7 cross.test
198.51.100.8 cross-v4.test cross.test
203.0.113.9 dup.test
203.0.113.9 dup.test
203.0.113.10 many.test
203.0.113.11 many.test
203.0.113.12 many.test
2001:db8::a many.test
2001:db8::b many.test
"""
NSSWITCH = "hosts: files\nservices: files\nprotocols: files\n"

PASSIVE, CANON, NUMHOST = socket.AI_PASSIVE, socket.AI_CANONNAME, socket.AI_NUMERICHOST
NUMSERV, V4MAPPED, ALL = socket.AI_NUMERICSERV, socket.AI_V4MAPPED, socket.AI_ALL
INET, INET6 = socket.AF_INET, socket.AF_INET6
STREAM, DGRAM, RAW, SEQPACKET = socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW, 5
DCCP, RDM = 6, 4
TCP, UDP, SCTP, UDPLITE = socket.IPPROTO_TCP, socket.IPPROTO_UDP, 132, 136
AI_IDN, UNKNOWN_FLAG, AF_UNIX = 0x40, 0x800, socket.AF_UNIX

#: Names the model has in no zone: it answers "no such name", and reports a violation.
NOT_IN_THE_MODEL = {"1.2.3.4.5"}


@dataclass(frozen=True)
class Case:
    node: str | None
    service: str | None
    flags: int = 0
    family: int = 0
    socktype: int = 0
    protocol: int = 0
    skip: str | None = None

    def argv(self) -> list[str]:
        node = "-" if self.node is None else self.node
        service = "-" if self.service is None else self.service
        return [node, service, *map(str, (self.flags, self.family, self.socktype, self.protocol))]

    def __str__(self) -> str:
        return " ".join(repr(a) if a in ("", " 80") else a for a in self.argv())


# fmt: off
CORPUS = [
    # names: files-backend semantics of the model's hosts names
    Case("alpha.test", None),
    Case("alpha.test", None, CANON),
    Case("alpha", None, CANON, INET, STREAM),
    Case("ALPHA.TEST", None, CANON, INET, STREAM),
    Case("mixed.case.test", None, CANON, INET, STREAM),
    Case("beta", None, CANON, 0, STREAM),
    Case("beta.test", None, CANON, 0, STREAM),
    Case("beta.test", None, 0, INET6, STREAM),
    Case("beta.test", None, 0, INET, 0),
    Case("multi.test", None, 0, INET, STREAM),
    Case("multi-alias", None, CANON, INET, STREAM),
    Case("six", None, 0, INET, STREAM),
    Case("six", None, CANON, INET6, STREAM),
    Case("alpha", None, 0, INET6, STREAM),
    Case("alpha", None, V4MAPPED, INET6, STREAM),
    Case("beta", None, V4MAPPED | ALL, INET6, STREAM),
    Case("beta.test", None, V4MAPPED | ALL, INET6, STREAM),
    Case("beta.test", None, V4MAPPED, INET6, STREAM),
    Case("beta.test", None, ALL, INET6, STREAM),
    Case("cross.test", None, CANON, 0, STREAM),
    Case("cross.test", None, CANON, INET, STREAM),
    Case("cross.test", None, CANON, INET6, STREAM),
    Case("many.test", None, 0, INET, STREAM),
    Case("many.test", None, 0, INET6, STREAM),
    Case("many.test", "22", CANON, 0, 0),
    Case("dup.test", None, 0, INET, STREAM),
    Case("dup.test", None, 0, 0, 0),
    Case("localhost", None, V4MAPPED | ALL, INET6, STREAM),
    Case("alpha", None, V4MAPPED | CANON, INET6, STREAM),
    Case("nosuch.test", None),
    Case("localhost", None, 0, 0, STREAM),
    Case("ip6-localhost", None, CANON, 0, STREAM),
    Case("localhost", "80", CANON, INET, STREAM),
    # numeric hosts
    Case("198.51.100.77", "80"),
    Case("198.51.100.77", None, CANON, 0, STREAM),
    Case("127.1", None, CANON, 0, STREAM),
    Case("0x7f.1", None, 0, 0, STREAM),
    Case("2130706433", "80", 0, 0, STREAM),
    Case("2001:db8::99", "80", 0, 0, STREAM),
    Case("2001:db8::99", "80", 0, INET, STREAM),
    Case("198.51.100.77", None, 0, INET6, STREAM),
    Case("198.51.100.77", None, V4MAPPED, INET6, STREAM),
    Case("::ffff:198.51.100.1", None, CANON, INET, STREAM),
    Case("fe80::1%1", "80", 0, INET6, STREAM),
    Case("fe80::1%lo", "80", 0, INET6, STREAM),
    Case("1.2.3.4.5", None, 0, 0, STREAM),
    Case("alpha.test", "80", NUMHOST, 0, STREAM),
    Case("198.51.100.77", "80", NUMHOST, 0, STREAM),
    Case("", "80", 0, 0, STREAM),
    Case("*", "80", 0, 0, STREAM),
    Case("*", "80", PASSIVE, 0, STREAM),
    # no node
    Case(None, "80"),
    Case(None, "80", PASSIVE),
    Case(None, "80", PASSIVE, INET),
    Case(None, "80", PASSIVE, INET6, STREAM),
    Case(None, None),
    Case(None, "80", CANON),
    Case(None, "*"),
    # services
    Case("alpha.test", "http", 0, INET),
    Case("alpha.test", "domain", 0, INET),
    Case("alpha.test", "http", 0, INET, DGRAM),
    Case("alpha.test", "nonesuch", 0, INET),
    Case("alpha.test", "http", NUMSERV, INET),
    Case("alpha.test", "80", NUMSERV, INET),
    Case("alpha.test", "70000", 0, INET, STREAM),
    Case("alpha.test", "-1", 0, INET, STREAM),
    Case("alpha.test", " 80", 0, INET, STREAM),
    Case("alpha.test", "+80", 0, INET, STREAM),
    Case("alpha.test", "4294967296", 0, INET, STREAM),
    Case("alpha.test", "", 0, INET),
    Case("alpha.test", "*", 0, INET),
    # socket types and protocols: glibc's table
    Case("alpha.test", "80", 0, INET, RAW),
    Case("alpha.test", None, 0, INET, RAW),
    Case("alpha.test", None, 0, INET, 0, TCP),
    Case("alpha.test", "80", 0, INET, 0, UDP),
    Case("alpha.test", "80", 0, INET, 0, SCTP),
    Case("alpha.test", "80", 0, INET, SEQPACKET),
    Case("alpha.test", "80", 0, INET, DCCP),
    Case("alpha.test", "80", 0, INET, 0, UDPLITE),
    Case("alpha.test", "80", 0, INET, STREAM, UDP),
    Case("alpha.test", "80", 0, INET, RDM),
    Case("alpha.test", None, 0, INET, 0, 99),
    Case("alpha.test", "80", 0, INET, RAW, TCP),
    Case("alpha.test", "http", 0, INET, RAW, TCP),
    Case("alpha.test", "http", NUMSERV, INET, RDM),
    # flags and families, and the order of glibc's checks
    Case("alpha.test", "80", UNKNOWN_FLAG, INET, STREAM),
    Case("alpha.test", "80", AI_IDN, INET, STREAM),
    Case("alpha.test", "80", 0, AF_UNIX, STREAM),
    Case(None, None, UNKNOWN_FLAG),
    Case("alpha.test", "80", UNKNOWN_FLAG, AF_UNIX),
    Case(None, "http", CANON | UNKNOWN_FLAG),
    # genuine limits
    Case("alpha.test", "80", socket.AI_ADDRCONFIG, 0, STREAM,
         skip="AI_ADDRCONFIG depends on the host's interfaces; the model ignores it"),
    Case("alpha.test.", None, 0, INET, STREAM,
         skip="glibc's files backend does not match an absolute name; the model is a DNS"),
]
# fmt: on


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("gai-glibc")
    hosts, nsswitch = directory / "hosts", directory / "nsswitch.conf"
    hosts.write_text(HOSTS)
    nsswitch.write_text(NSSWITCH)
    return hosts, nsswitch


@pytest.fixture(scope="module")
def real(files: tuple[Path, Path]) -> Iterator[Callable[[Path, list[str]], str]]:
    """Runs a program for real, glibc reading only the test's hosts file."""
    hosts, nsswitch = files
    script = (
        'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/nsswitch.conf && '
        'shift 2 && exec "$@"'
    )
    probe = subprocess.run(["unshare", "-rmn", "sh", "-c", script, "sh", str(hosts),
                            str(nsswitch), "true"], capture_output=True, text=True)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"cannot bind-mount a hosts file in a private namespace: {probe.stderr}")

    def run(program: Path, argv: list[str]) -> str:
        command = ["unshare", "-rmn", "sh", "-c", script, "sh", str(hosts), str(nsswitch),
                   str(program), *argv]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        return result.stdout

    yield run


def _comparable(output: str) -> tuple[str, ...] | tuple[str, dict[str, list[str]]]:
    """The output as compared: exact, or, with both families, each family's lines in order and
    the canonical name (on the first entry, whichever family that is)."""
    lines = output.splitlines()
    families = {line.split()[0] for line in lines if not line.startswith("error")}
    if len(families) < 2:
        return tuple(lines)
    canonical = lines[0].rsplit(" ", 1)[1]
    per_family: dict[str, list[str]] = {}
    for line in lines:
        per_family.setdefault(line.split()[0], []).append(line.rsplit(" ", 1)[0])
    return canonical, per_family


@pytest.mark.parametrize("case", CORPUS, ids=str)
def test_the_model_answers_as_glibc_reads_the_hosts_file(
    case: Case,
    real: Callable[[Path, list[str]], str],
    files: tuple[Path, Path],
    compile_c: Callable[[str], Path],
    service: LibcService,
) -> None:
    if case.skip:
        pytest.skip(case.skip)
    program = compile_c("dns_gai")
    expected = real(program, case.argv())
    model = Dns()
    model.load_hosts(files[0])
    ran, violations = run_with_dns(service, model, [str(program), *case.argv()])
    assert ran.returncode == 0, ran.stderr
    assert _comparable(ran.stdout) == _comparable(expected), (
        f"glibc:\n{expected}model:\n{ran.stdout}"
    )
    assert bool(violations) == (case.node in NOT_IN_THE_MODEL), violations


def test_the_corpus_is_large_enough() -> None:
    assert len([case for case in CORPUS if not case.skip]) >= 60
