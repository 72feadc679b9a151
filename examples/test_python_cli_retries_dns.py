"""A Python CLI, run as a subprocess, that retries when name resolution fails temporarily.

This is the scenario from the project's mission: the database host name fails with EAI_AGAIN,
and the program must say it is retrying and eventually give up with status 3.
"""

import sys

APP = r"""
import socket, sys, time
host = open("/etc/app.conf").read().split("=")[1].strip().split(":")[0]
for attempt in range(3):
    try:
        address = socket.getaddrinfo(host, 5432, type=socket.SOCK_STREAM)[0][4][0]
    except socket.gaierror as error:
        if error.errno != socket.EAI_AGAIN:
            raise
        print(f"retrying {host} ({attempt + 1})", file=sys.stderr)
        continue
    print(f"would connect to {address}")
    sys.exit(0)
sys.exit(3)
"""


def run_app(libcfake):
    return libcfake.run([sys.executable, "-c", APP], capture_output=True, text=True)


def test_app_survives_a_short_dns_outage(libcfake):
    libcfake.fs.create_file("/etc/app.conf", contents="db = db.internal:5432\n")
    libcfake.dns.add("db.internal", "10.0.0.5")
    libcfake.dns.fail("db.internal", "again", times=2)

    result = run_app(libcfake)

    assert result.returncode == 0
    assert result.stdout == "would connect to 10.0.0.5\n"
    assert result.stderr.count("retrying") == 2


def test_app_gives_up_when_dns_stays_down(libcfake):
    libcfake.fs.create_file("/etc/app.conf", contents="db = db.internal:5432\n")
    libcfake.dns.fail("db.internal", "again")

    result = run_app(libcfake)

    assert result.returncode == 3
    assert "retrying" in result.stderr
