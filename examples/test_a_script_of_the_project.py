"""A script of your project, run by its path in the project: examples/scripts/logstats.py.

The project (pytest's rootdir) is mounted read-only, so programs read your scripts where they
are. Programs start in the sandbox's working directory, the model's ``/``, not where pytest
runs: run a script by a path relative to the project with ``cwd=`` the project (as here), or
by its absolute path. Its log is the test's, in the model.
"""

import sys

import pytest

LOG = """\
09:00 INFO started
09:01 INFO connected
09:02 ERROR lost the connection
"""


@pytest.fixture
def project(request):
    return str(request.config.rootpath)


def test_the_script_counts_the_levels_of_a_log(libcfake, project):
    libcfake.fs.create_file("/var/log/app.log", contents=LOG)

    result = libcfake.run(
        [sys.executable, "examples/scripts/logstats.py", "/var/log/app.log"],
        cwd=project,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 1  # an ERROR line
    assert result.stdout == "ERROR 1\nINFO 2\n"
    assert "/var/log/app.log" in libcfake.journal.files_read()


def test_the_script_without_its_log(libcfake, project):
    result = libcfake.run(
        [sys.executable, "examples/scripts/logstats.py", "/var/log/app.log"],
        cwd=project,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 1
    assert "FileNotFoundError" in result.stderr
    assert "/var/log/app.log" in libcfake.journal.files_missing()
