"""gethostbyname*, gethostbyaddr*, getnameinfo and res_query in real programs, answered by the
DNS model (``libcfake.dns.Dns``) through a LibcService handler that answers as the Sandbox does
(tests/dns_served.py)."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from libcfake import LibcService
from libcfake.dns import Dns

from .conftest import PROGRAMS, run_served
from .dns_served import run_with_dns

HOST_NOT_FOUND, TRY_AGAIN, NO_RECOVERY, NO_DATA = 1, 2, 3, 4


@pytest.fixture
def model() -> Dns:
    dns = Dns()
    dns.add("db.internal", ["10.0.0.5", "2001:db8::5"])
    dns.add("v4only.internal", "10.0.0.4")
    dns.add("mail.internal", "10.0.0.25")
    dns.add_record("www.internal", "CNAME", "db.internal.")
    dns.add_record("internal", "MX", "10 mail.internal.")
    dns.add_record("internal", "MX", "20 backup-mail.internal.")
    dns.add_record("_ldap._tcp.internal", "SRV", "0 5 389 db.internal.")
    dns.add_record("_ldap._tcp.internal", "SRV", "1 0 3389 v4only.internal.")
    dns.add_record("internal", "TXT", '"v=spf1 -all" "second string"')
    dns.add_record("10.0.0.99", "PTR", "printer.internal.")
    return dns


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Compile ``tests/programs/NAME.c`` (with extra linker flags) once per session."""
    out = tmp_path_factory.mktemp("dns-programs")

    def compile_program(name: str, *libs: str) -> Path:
        source = PROGRAMS / f"{name}.c"
        exe = out / f"{name}-{hashlib.sha256(source.read_bytes()).hexdigest()[:12]}"
        if not exe.exists():
            cc = os.environ.get("CC", "gcc")
            subprocess.run([cc, "-O1", "-g", "-Wall", "-Werror", "-o", str(exe), str(source),
                            *libs], check=True)  # fmt: skip
        return exe

    return compile_program


def run(service: LibcService, model: Dns, *args: str | Path) -> tuple[str, list[str]]:
    ran, violations = run_with_dns(service, model, [str(a) for a in args])
    assert ran.returncode == 0, ran.stderr
    return ran.stdout, violations


def python(service: LibcService, model: Dns, code: str) -> str:
    out, violations = run(service, model, sys.executable, "-c", code)
    assert not violations
    return out.strip()


# -- gethostbyname*, gethostbyaddr -------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("db.internal", "2001:db8::5     db.internal"),  # gethostbyname2(AF_INET6) first
        ("v4only.internal", "10.0.0.4        v4only.internal"),  # no AAAA: then AF_INET
        ("www.internal", "2001:db8::5     db.internal"),  # the canonical name
        ("10.0.0.5", "10.0.0.5        db.internal"),  # gethostbyaddr: the PTR add() made
        ("10.0.0.99", "10.0.0.99       printer.internal"),
    ],
)
def test_getent_hosts_answers_from_the_model(
    service: LibcService, model: Dns, key: str, expected: str
) -> None:
    out, violations = run(service, model, "getent", "hosts", key)
    assert out.strip() == expected
    assert not violations


def test_getent_hosts_of_a_missing_name_fails(service: LibcService, model: Dns) -> None:
    ran, violations = run_with_dns(service, model, ["getent", "hosts", "missing.internal"])
    assert (ran.returncode, ran.stdout, violations) == (2, "", [])


def test_python_gethostbyname_and_gethostbyname_ex(service: LibcService, model: Dns) -> None:
    code = (
        "import socket\n"
        "print(socket.gethostbyname('www.internal'))\n"
        "print(socket.gethostbyname_ex('www.internal'))\n"
        "try:\n    socket.gethostbyname_ex('missing.internal')\n"
        "except socket.gaierror as e:\n    print('gaierror', e.errno)\n"
    )
    assert python(service, model, code).splitlines() == [
        "10.0.0.5",
        "('db.internal', [], ['10.0.0.5'])",
        f"gaierror {socket.EAI_NONAME}",
    ]


def test_python_gethostbyaddr(service: LibcService, model: Dns) -> None:
    code = (
        "import socket\n"
        "print(socket.gethostbyaddr('10.0.0.5'))\n"
        "print(socket.gethostbyaddr('2001:db8::5'))\n"
        "try:\n    socket.gethostbyaddr('10.0.0.200')\n"
        "except socket.herror as e:\n    print('herror', e.errno)\n"
    )
    assert python(service, model, code).splitlines() == [
        "('db.internal', [], ['10.0.0.5'])",
        "('db.internal', [], ['2001:db8::5'])",
        f"herror {HOST_NOT_FOUND}",
    ]


def test_python_getnameinfo(service: LibcService, model: Dns) -> None:
    code = (
        "import socket\n"
        "print(socket.getnameinfo(('10.0.0.5', 443), 0))\n"
        "print(socket.getnameinfo(('10.0.0.5', 53), socket.NI_DGRAM))\n"
        "print(socket.getnameinfo(('10.0.0.200', 80), 0))\n"
        "numeric = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV\n"
        "print(socket.getnameinfo(('10.0.0.5', 80), numeric))\n"
        "print(socket.getnameinfo(('::1', 22), 0))\n"
        "try:\n    socket.getnameinfo(('10.0.0.200', 80), socket.NI_NAMEREQD)\n"
        "except socket.gaierror as e:\n    print('gaierror', e.errno)\n"
    )
    assert python(service, model, code).splitlines() == [
        "('db.internal', 'https')",
        "('db.internal', 'domain')",
        "('10.0.0.200', 'http')",  # no PTR: the numeric form
        "('10.0.0.5', '80')",
        "('localhost', 'ssh')",
        f"gaierror {socket.EAI_NONAME}",
    ]


@pytest.mark.parametrize(
    ("name", "family", "buflen", "expected"),
    [
        ("db.internal", socket.AF_INET, 1024,
         ["r 0 h_errno 0", "hostent_r db.internal 0 10.0.0.5", "hostent db.internal 0 10.0.0.5"]),
        ("db.internal", socket.AF_INET, 16,  # too small: ERANGE, as glibc's _r functions say
         ["r 34 h_errno -1", "hostent db.internal 0 10.0.0.5"]),
        ("v4only.internal", socket.AF_INET6, 1024,
         [f"r 0 h_errno {NO_DATA}", f"hostent_r none h_errno {NO_DATA}",
          f"hostent none h_errno {NO_DATA}"]),
        ("missing.internal", socket.AF_INET, 1024,
         [f"r 0 h_errno {HOST_NOT_FOUND}", f"hostent_r none h_errno {HOST_NOT_FOUND}",
          f"hostent none h_errno {HOST_NOT_FOUND}"]),
    ],
)  # fmt: skip
def test_gethostbyname2_r_and_its_static_twin(
    service: LibcService, model: Dns, build: Callable[..., Path], name: str, family: int,
    buflen: int, expected: list[str],
) -> None:  # fmt: skip
    out, violations = run(service, model, build("dns_hostent"), name, str(family), str(buflen))
    assert out.splitlines() == expected
    assert not violations


def test_a_long_address_list_grows_the_thread_buffer(
    service: LibcService, model: Dns, build: Callable[..., Path]
) -> None:
    addresses = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(300)]
    model.add("many.internal", addresses)
    out, _ = run(service, model, build("dns_hostent"), "many.internal", "2", "100000")
    lines = out.splitlines()
    assert lines[0] == "r 0 h_errno 0"
    assert lines[2].split()[3:] == addresses


# -- res_query -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "name", "rdtype", "expected"),
    [
        ("query", "internal", 15, ["internal 15 10 mail.internal",
                                   "internal 15 20 backup-mail.internal"]),
        ("query", "_ldap._tcp.internal", 33, ["_ldap._tcp.internal 33 0 5 389 db.internal",
                                              "_ldap._tcp.internal 33 1 0 3389 v4only.internal"]),
        ("query", "internal", 16, ['internal 16 "v=spf1 -all" "second string"']),
        ("query", "www.internal", 1, ["www.internal 5 db.internal", "db.internal 1 10.0.0.5"]),
        ("query", "db.internal", 28, ["db.internal 28 2001:db8::5"]),
        ("query", "5.0.0.10.in-addr.arpa", 12, ["5.0.0.10.in-addr.arpa 12 db.internal"]),
        ("query", "db.internal.", 1, ["db.internal 1 10.0.0.5"]),
        ("search", "db.internal", 1, ["db.internal 1 10.0.0.5"]),
        ("querydomain", "db", 1, ["db.internal 1 10.0.0.5"], ),
        ("nquery", "internal", 15, ["internal 15 10 mail.internal",
                                    "internal 15 20 backup-mail.internal"]),
        ("query", "missing.internal", 1, [f"error {HOST_NOT_FOUND}"]),
        ("query", "v4only.internal", 28, [f"error {NO_DATA}"]),
        ("query", "9.9.9.9.in-addr.arpa", 12, [f"error {HOST_NOT_FOUND}"]),
        ("nquery", "missing.internal", 1, [f"state h_errno {HOST_NOT_FOUND}",
                                           f"error {HOST_NOT_FOUND}"]),
    ],
)  # fmt: skip
def test_res_query_answers_from_the_model(
    service: LibcService, model: Dns, build: Callable[..., Path], how: str, name: str,
    rdtype: int, expected: list[str],
) -> None:  # fmt: skip
    extra = ["internal"] if how == "querydomain" else []
    out, violations = run(service, model, build("dns_resquery", "-lresolv"), how, name,
                          str(rdtype), *extra)  # fmt: skip
    lines = out.splitlines()
    assert [line for line in lines if not line.startswith("length ")] == expected
    assert not violations


def test_res_query_of_a_name_in_no_zone_is_a_violation(
    service: LibcService, model: Dns, build: Callable[..., Path]
) -> None:
    out, violations = run(service, model, build("dns_resquery", "-lresolv"), "query",
                          "example.com", "1")  # fmt: skip
    assert out.splitlines() == [f"error {HOST_NOT_FOUND}"]
    assert violations == ["res_query: example.com is in no zone of the DNS model"]


def test_a_large_answer_is_cut_to_the_buffer_with_tc(
    service: LibcService, model: Dns, build: Callable[..., Path]
) -> None:
    for i in range(60):
        model.add_record("big.internal", "TXT", f'"{i:02d} {"x" * 90}"')
    ran, _ = run_with_dns(service, model, [str(build("dns_resquery", "-lresolv")), "query",
                                           "big.internal", "16"])  # fmt: skip
    first = ran.stdout.splitlines()[0]
    assert first.startswith("length ") and int(first.split()[1]) > 4096  # the full length


def test_a_reply_with_an_unknown_h_errno_fails_closed(
    service: LibcService, build: Callable[..., Path]
) -> None:
    def handler(svc: LibcService) -> None:
        if svc.function_ == "res_query":
            svc.send(-1, 7)  # no h_errno is 7
        else:
            svc.use_slave_credentials()

    ran = run_served(service, [str(build("dns_resquery", "-lresolv")), "query", "x.test", "1"],
                     handler)  # fmt: skip
    assert ran.stdout.splitlines() == ["error -1"]  # NETDB_INTERNAL, errno EIO
    assert 'libcfake: res_query("x.test"): invalid reply (h_errno 7' in ran.stderr
