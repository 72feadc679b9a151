"""The command: read the config, resolve the service's host name, connect, send PING, expect PONG.

The config (``/etc/pingcheck.ini`` unless ``--config`` names another)::

    [pingcheck]
    service = db.internal:5432
    log = /var/log/pingcheck.log
    retries = 3

Exit status: 0 the service is up, 1 it is down, 2 the config or the log cannot be used,
3 its name does not resolve (after ``retries`` temporary failures, EAI_AGAIN).
"""

from __future__ import annotations

import argparse
import configparser
import importlib.metadata
import socket
import sys
import time
from typing import TextIO

DEFAULT_CONFIG = "/etc/pingcheck.ini"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pingcheck", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--version", action="version",
                        version=importlib.metadata.version("pingcheck"))  # fmt: skip
    args = parser.parse_args(argv)

    config = configparser.ConfigParser()
    try:
        with open(args.config, encoding="utf-8") as file:
            config.read_file(file)
        section = config["pingcheck"]
        host, _, port = section["service"].rpartition(":")
        port_number = int(port)
        log_path = section.get("log", "/var/log/pingcheck.log")
        retries = section.getint("retries", 3)
    except (OSError, KeyError, ValueError, configparser.Error) as error:
        print(f"pingcheck: {args.config}: {describe(error)}", file=sys.stderr)
        return 2
    try:
        log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 (kept open to the end)
    except OSError as error:
        print(f"pingcheck: {log_path}: {describe(error)}", file=sys.stderr)
        return 2
    with log:
        return check(host, port_number, retries, log)


def check(host: str, port: int, retries: int, log: TextIO) -> int:
    def say(line: str) -> None:
        print(line, file=log, flush=True)

    for attempt in range(1, retries + 1):
        try:
            address = str(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0])
            break
        except socket.gaierror as error:
            if error.errno != socket.EAI_AGAIN or attempt == retries:
                say(f"{host}: cannot resolve: {error.strerror}")
                print(f"pingcheck: {host}: cannot resolve: {error.strerror}", file=sys.stderr)
                return 3
            say(f"{host}: retrying ({attempt})")
            time.sleep(0.1 * attempt)
    try:
        with socket.create_connection((address, port), timeout=5) as connection:
            connection.sendall(b"PING\n")
            answer = connection.makefile("rb").readline()
    except OSError as error:
        say(f"{host}:{port} ({address}) down: {describe(error)}")
        print(f"{host}:{port} is down: {describe(error)}")
        return 1
    if answer != b"PONG\n":
        say(f"{host}:{port} ({address}) down: answered {answer!r}")
        print(f"{host}:{port} is down: answered {answer!r}")
        return 1
    say(f"{host}:{port} ({address}) up")
    print(f"{host}:{port} is up")
    return 0


def describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    if isinstance(error, KeyError):
        return f"no {error.args[0]!r}"
    return str(error)
