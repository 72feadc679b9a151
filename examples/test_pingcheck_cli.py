"""Your own Python command-line tool, installed in development mode, tested as its users run it.

``examples/pingcheck`` is such a project: a ``pyproject.toml``, its package in ``src/``, and a
console script, ``pingcheck``, that reads ``/etc/pingcheck.ini``, resolves the service named
there, connects to it, sends ``PING``, expects ``PONG``, and logs what happened. In your
project you install it once, beside pytest and libcfake::

    pip install -e .

and write tests like these: the command (or ``python -m pingcheck``) runs in the Sandbox,
where its interpreter imports your package from your source tree, read-only, because a sandboxed
interpreter sees every ``sys.path`` entry of the test's interpreter and the source trees of its
editable installs; the config, the log, the name and the service are the test's.

Here the ``pingcheck`` fixture (``examples/conftest.py``) does the ``pip install -e`` for
you, so that the README's one set-up command stays one: at the first run it installs the
project, editable, into the environment pytest runs in, where a user has it (``pip uninstall
pingcheck`` takes it out). Not into a separate virtual environment: libcfake mounts the paths
of the interpreter that runs the test, and a venv made from a venv with
``--system-site-packages`` would not even see libcfake (it gets the base Python's
site-packages). pip builds it with the environment's own setuptools when that can, else with
setuptools from the package registry, as for libcfake itself; no other network.
"""

import errno
import sys

import pytest

CONFIG = """\
[pingcheck]
service = db.internal:5432
log = /var/log/pingcheck.log
"""

EAI_AGAIN = "Temporary failure in name resolution"  # glibc's gai_strerror

PONGS = []  # what the fake service was sent


def pong(sock):
    """The fake database: answers one PING."""
    PONGS.append(sock.makefile("rb").readline())
    sock.sendall(b"PONG\n")


@pytest.fixture(params=["command", "python -m"])
def run_pingcheck(request, libcfake, pingcheck):
    """pingcheck run as its users run it: the installed command, or ``python -m pingcheck``."""
    command = [pingcheck] if request.param == "command" else [sys.executable, "-m", "pingcheck"]
    return lambda *args: libcfake.run([*command, *args], capture_output=True, text=True)


@pytest.fixture
def world(libcfake):
    """The config, an empty /var/log, and db.internal at 10.0.0.5."""
    PONGS.clear()
    libcfake.fs.create_file("/etc/pingcheck.ini", contents=CONFIG)
    libcfake.fs.create_dir("/var/log")
    libcfake.dns.add("db.internal", "10.0.0.5")
    return libcfake


def test_a_service_that_answers_is_up_and_logged(world, run_pingcheck):
    world.net.route(("db.internal", 5432), to=pong)

    result = run_pingcheck()

    assert result.returncode == 0, result.stderr
    assert result.stdout == "db.internal:5432 is up\n"
    assert PONGS == [b"PING\n"]
    assert world.fs.read_text("/var/log/pingcheck.log") == "db.internal:5432 (10.0.0.5) up\n"
    assert "db.internal" in world.journal.names_resolved()
    assert world.journal.connections() == ["10.0.0.5:5432"]


def test_its_version_is_read_from_the_installed_metadata(run_pingcheck):
    result = run_pingcheck("--version")

    assert (result.returncode, result.stdout) == (0, "0.1.0\n"), result.stderr


def test_a_short_dns_outage_is_retried(world, run_pingcheck):
    world.net.route(("db.internal", 5432), to=pong)
    world.dns.fail("db.internal", "again", times=2)  # EAI_AGAIN twice, then the answer

    result = run_pingcheck()

    assert result.returncode == 0, result.stderr
    assert world.fs.read_text("/var/log/pingcheck.log").splitlines() == [
        "db.internal: retrying (1)",
        "db.internal: retrying (2)",
        "db.internal:5432 (10.0.0.5) up",
    ]


def test_a_name_that_stays_unresolvable_is_status_3(world, pingcheck):
    world.dns.fail("db.internal", "again")

    result = world.run([pingcheck], capture_output=True, text=True)

    assert result.returncode == 3
    assert result.stderr == f"pingcheck: db.internal: cannot resolve: {EAI_AGAIN}\n"
    assert world.fs.read_text("/var/log/pingcheck.log").splitlines()[-2:] == [
        "db.internal: retrying (2)",
        f"db.internal: cannot resolve: {EAI_AGAIN}",
    ]


def test_a_refused_connection_is_down(world, pingcheck):
    world.net.fail("db.internal:5432", errno.ECONNREFUSED)

    result = world.run([pingcheck], capture_output=True, text=True)

    assert result.returncode == 1
    assert result.stdout == "db.internal:5432 is down: Connection refused\n"
    assert "down: Connection refused" in world.fs.read_text("/var/log/pingcheck.log")


def test_a_config_given_on_the_command_line(libcfake, pingcheck):
    libcfake.fs.create_file("/srv/ping.ini", contents=CONFIG.replace("/var/log", "/srv"))
    libcfake.dns.add("db.internal", "10.0.0.5")
    libcfake.net.route(("db.internal", 5432), to=pong)

    result = libcfake.run([pingcheck, "--config", "/srv/ping.ini"], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert libcfake.fs.exists("/srv/pingcheck.log")


def test_without_its_config_it_says_so(libcfake, pingcheck):
    result = libcfake.run([pingcheck], capture_output=True, text=True)

    assert result.returncode == 2
    assert result.stderr == "pingcheck: /etc/pingcheck.ini: No such file or directory\n"
    assert "/etc/pingcheck.ini" in libcfake.journal.files_missing()


def test_a_log_it_may_not_write_is_status_2(world, pingcheck):
    world.fail("open", "/var/log/pingcheck.log", errno.EACCES)

    result = world.run([pingcheck], capture_output=True, text=True)

    assert result.returncode == 2
    assert result.stderr == "pingcheck: /var/log/pingcheck.log: Permission denied\n"
