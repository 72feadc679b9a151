"""A C program reads its config and writes a log; the test plans the files and reads the log.

The program is compiled by the test from the source below, then run unmodified in the sandbox:
it sees /etc/greeter.conf (which exists only in memory) and its log lands in memory too.
"""

import errno
import subprocess

import pytest

SOURCE = r"""
#include <stdio.h>
#include <string.h>
int main(void) {
    char name[64] = "world";
    FILE *conf = fopen("/etc/greeter.conf", "r");
    if (conf) { fscanf(conf, "name = %63s", name); fclose(conf); }
    FILE *log = fopen("/var/log/greeter.log", "a");
    if (!log) { perror("cannot open log"); return 2; }
    fprintf(log, "greeted %s\n", name);
    fclose(log);
    printf("hello, %s\n", name);
    return 0;
}
"""


@pytest.fixture(scope="module")
def greeter(tmp_path_factory):
    exe = tmp_path_factory.mktemp("greeter") / "greeter"
    source = exe.with_suffix(".c")
    source.write_text(SOURCE)
    subprocess.run(["gcc", "-O1", "-o", str(exe), str(source)], check=True)
    return str(exe)


def test_greeter_uses_its_config_and_logs(libcfake, greeter):
    libcfake.fs.create_file("/etc/greeter.conf", contents="name = libcfake\n")
    libcfake.fs.create_dir("/var/log")

    result = libcfake.run([greeter], capture_output=True, text=True)

    assert result.stdout == "hello, libcfake\n"
    assert libcfake.fs.read_text("/var/log/greeter.log") == "greeted libcfake\n"


def test_greeter_without_config_uses_the_default(libcfake, greeter):
    libcfake.fs.create_dir("/var/log")
    assert libcfake.run([greeter], capture_output=True, text=True).stdout == "hello, world\n"


def test_greeter_reports_a_log_it_cannot_open(libcfake, greeter):
    libcfake.fs.create_dir("/var/log")
    libcfake.fail("open", "/var/log/greeter.log", errno.EACCES)

    result = libcfake.run([greeter], capture_output=True, text=True)

    assert result.returncode == 2
    assert "cannot open log: Permission denied" in result.stderr
