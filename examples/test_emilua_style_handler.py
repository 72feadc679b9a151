"""The low-level master: answer each call yourself, Emilua's libc_service.master style."""

import errno
import os
import subprocess
from pathlib import PurePosixPath

from libcfake import LibcService, StatResult

MOTD = PurePosixPath("/etc/motd")


def handler(svc):
    """Serve /etc/motd from memory, hide /etc/shadow, let everything else through."""
    function, args = svc.function_, svc.arguments()
    if function == "open" and args[0] == MOTD:
        fd = os.memfd_create("motd")
        os.write(fd, b"welcome\n")
        os.lseek(fd, 0, os.SEEK_SET)
        svc.send_with_fds(0, [fd])
        os.close(fd)
    elif function in ("stat", "lstat") and args[0] == MOTD:
        svc.send(StatResult(type="regular", mode=0o644, size=8))
    elif function in ("open", "stat", "lstat") and args[0] == PurePosixPath("/etc/shadow"):
        svc.send(-1, errno.ENOENT)
    else:
        svc.use_slave_credentials()


def test_cat_reads_what_the_handler_serves():
    with LibcService() as svc:
        proc = svc.spawn(["cat", "/etc/motd"], stdout=subprocess.PIPE)
        assert svc.serve(handler, until=proc, timeout=30) == 0
        assert proc.stdout.read() == b"welcome\n"


def test_the_handler_hides_a_file():
    with LibcService() as svc:
        proc = svc.spawn(["cat", "/etc/shadow"], stderr=subprocess.PIPE)
        assert svc.serve(handler, until=proc, timeout=30) == 1
        assert b"No such file or directory" in proc.stderr.read()
