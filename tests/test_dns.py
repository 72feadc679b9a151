"""The DNS model: real programs resolve names from dnspython records, with glibc's semantics
and failures on demand."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from libcfake import Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(reply_timeout=20) as sandbox:
        sandbox.dns.add("db.internal", ["10.0.0.5", "2001:db8::5"])
        sandbox.dns.add("v4only.internal", "10.0.0.4")
        sandbox.dns.add_record("www.internal", "CNAME", "db.internal")
        yield sandbox


def lookup(sb: Sandbox, *args: object, **kwargs: object) -> str:
    """socket.getaddrinfo(*args, **kwargs) in a program under the sandbox: its result or error."""
    kwargs = {key: int(value) for key, value in kwargs.items()}  # type: ignore[call-overload]
    code = (
        "import socket, sys\n"
        f"try:\n  r = socket.getaddrinfo(*{args!r}, **{kwargs!r})\n"
        "  print(sorted({(a[0].name, a[1].name, a[4][0], a[4][1], a[3]) for a in r}))\n"
        "except socket.gaierror as e:\n  print('error', e.errno)"
    )
    result = sb.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_getent_ahosts_lists_every_address_and_socket_type(sb: Sandbox) -> None:
    result = sb.run(["getent", "ahosts", "db.internal"], capture_output=True, text=True)
    rows = [line.split()[:2] for line in result.stdout.splitlines()]
    assert rows == [[ip, kind] for ip in ("10.0.0.5", "2001:db8::5")
                    for kind in ("STREAM", "DGRAM", "RAW")]  # fmt: skip
    assert not sb.violations


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        (
            ("db.internal", 80),
            {"family": socket.AF_INET, "type": socket.SOCK_STREAM},
            "[('AF_INET', 'SOCK_STREAM', '10.0.0.5', 80, '')]",
        ),
        (
            ("db.internal", 53),
            {"family": socket.AF_INET6, "type": socket.SOCK_DGRAM},
            "[('AF_INET6', 'SOCK_DGRAM', '2001:db8::5', 53, '')]",
        ),
        (("v4only.internal", 80), {"family": socket.AF_INET6}, "error -5"),
        (
            ("v4only.internal", 80),
            {"family": socket.AF_INET6, "type": socket.SOCK_STREAM, "flags": socket.AI_V4MAPPED},
            "[('AF_INET6', 'SOCK_STREAM', '::ffff:10.0.0.4', 80, '')]",
        ),
        (
            ("www.internal", "https"),
            {"family": socket.AF_INET, "type": socket.SOCK_STREAM, "flags": socket.AI_CANONNAME},
            "[('AF_INET', 'SOCK_STREAM', '10.0.0.5', 443, 'db.internal')]",
        ),
        (("db.internal", "no-such-service"), {}, f"error {socket.EAI_SERVICE}"),
        (("db.internal", "http"), {"flags": socket.AI_NUMERICSERV}, f"error {socket.EAI_NONAME}"),
        (("missing.internal", 80), {}, f"error {socket.EAI_NONAME}"),
        (("db.internal", 80), {"flags": socket.AI_NUMERICHOST}, f"error {socket.EAI_NONAME}"),
        (
            ("10.1.2.3", 80),
            {"type": socket.SOCK_STREAM},
            "[('AF_INET', 'SOCK_STREAM', '10.1.2.3', 80, '')]",
        ),
        (
            (None, 8080),
            {"type": socket.SOCK_STREAM, "flags": socket.AI_PASSIVE},
            "[('AF_INET', 'SOCK_STREAM', '0.0.0.0', 8080, ''), "
            "('AF_INET6', 'SOCK_STREAM', '::', 8080, '')]",
        ),
        (
            ("localhost", 80),
            {"family": socket.AF_INET, "type": socket.SOCK_STREAM},
            "[('AF_INET', 'SOCK_STREAM', '127.0.0.1', 80, '')]",
        ),
    ],
)
def test_python_getaddrinfo_follows_glibc(sb: Sandbox, args, kwargs, expected) -> None:  # type: ignore[no-untyped-def]
    assert lookup(sb, *args, **kwargs) == expected
    assert not sb.violations


def test_a_name_in_no_zone_is_a_violation(sb: Sandbox) -> None:
    assert lookup(sb, "example.com", 443) == f"error {socket.EAI_NONAME}"
    (violation,) = sb.violations
    assert violation.call == "getaddrinfo" and "example.com is in no zone" in violation.reason


RETRY = """
import socket, sys
for attempt in range(5):
    try:
        socket.getaddrinfo("db.internal", 5432, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        print("retrying", e.errno, file=sys.stderr)
        continue
    print("connected after", attempt + 1)
    break
else:
    sys.exit(3)
"""


def test_a_program_that_retries_on_eai_again_gets_through(sb: Sandbox) -> None:
    sb.dns.fail("db.internal", "again", times=2)
    result = sb.run([sys.executable, "-c", RETRY], capture_output=True, text=True)
    assert result.stdout == "connected after 3\n"
    assert result.stderr.count(f"retrying {socket.EAI_AGAIN}") == 2


def test_a_permanent_outage_makes_the_program_give_up(sb: Sandbox) -> None:
    sb.dns.fail("*.internal", "again")
    result = sb.run([sys.executable, "-c", RETRY], capture_output=True, text=True)
    assert result.returncode == 3


def test_hosts_files_and_zone_files_load(sb: Sandbox, tmp_path) -> None:  # type: ignore[no-untyped-def]
    hosts = tmp_path / "hosts"
    hosts.write_text("# comment\n192.0.2.7 api.example.test api-alias.example.test\n")
    sb.dns.load_hosts(hosts)
    sb.dns.load_zone(
        "$ORIGIN corp.test.\n$TTL 60\n@ IN SOA ns h 1 2 3 4 5\nldap IN A 198.51.100.9\n"
    )
    assert "192.0.2.7" in lookup(sb, "api-alias.example.test", 80, type=socket.SOCK_STREAM)
    assert "198.51.100.9" in lookup(sb, "ldap.corp.test", 389, type=socket.SOCK_STREAM)
    assert lookup(sb, "nope.corp.test", 1) == f"error {socket.EAI_NONAME}"


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (lambda sb: sb.dns.add("x.internal", "not-an-ip"), ValueError, "does not appear"),
        (lambda sb: sb.dns.add_record("x.internal", "MX", "nonsense"), ValueError, "bad MX"),
        (lambda sb: sb.dns.fail("x.internal", "sometimes"), ValueError, "unknown outcome"),
        (lambda sb: sb.dns.load_hosts("192.0.2.1\n"), ValueError, "no name"),
    ],
)
def test_wrong_use_is_a_clear_error(sb: Sandbox, action, error, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=message):
        action(sb)


def test_curl_style_lookup_through_getent_in_a_shell(sb: Sandbox) -> None:
    result = sb.run(["sh", "-c", "getent ahostsv4 www.internal | head -1"],
                    capture_output=True, text=True)  # fmt: skip
    assert result.stdout.split()[:3] == ["10.0.0.5", "STREAM", "db.internal"]


def test_dns_faults_are_journaled(sb: Sandbox) -> None:
    sb.dns.fail("db.internal", "fail")
    lookup(sb, "db.internal", 80)
    (entry,) = [e for e in sb.journal if e.call == "getaddrinfo"]
    assert entry.fault and entry.answer == "EAI fail"


def test_lists_made_and_freed_from_threads_stay_intact(
    sb: Sandbox, compile_c: Callable[[str], Path]
) -> None:
    # the shim keeps a freed list's page for the next list: no list may see another's entries
    sb.dns.add("pool.test", "10.0.0.9")
    program = str(compile_c("dns_lists"))
    done = sb.run([program, "pool.test", "10.0.0.9", "4", "300"], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "wrong 0\n", "")
