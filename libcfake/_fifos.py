"""FIFOs of the model: each is backed by a real FIFO that the master owns in a private directory.

A program that makes a FIFO (``mkfifo``, ``mknod(S_IFIFO)``) makes an entry of the model; when it
opens it, the master opens the real FIFO behind it as the program asked and hands the descriptor
over, as it hands out a memfd for a regular file. An open that must wait for the other end
(``O_RDONLY`` or ``O_WRONLY`` without ``O_NONBLOCK``) waits in a thread of its own, so the master
goes on serving everyone else, and the program's call is answered when the other end opens (or
fails with EIO after the Sandbox's reply timeout, as any slow answer does).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from pyfakefs.fake_file import FakeFile


class Later:
    """Answer: made by ``make`` in a thread of its own, then delivered; ``what`` for the journal."""

    def __init__(self, make: Callable[[], Any], what: str) -> None:
        self.make = make
        self.what = what

    def __str__(self) -> str:
        return self.what

    def start(self, deferred: Any, deliver: Callable[[Any, Any], None]) -> None:
        """Make the answer in a daemon thread and deliver it to ``deferred``."""

        def run() -> None:
            try:
                outcome = self.make()
            except OSError as error:
                outcome = error
            try:
                deliver(deferred, outcome)
            except Exception:  # the program or the Sandbox is gone: nobody waits for it
                fd = getattr(outcome, "fd", None)
                if isinstance(fd, int):
                    os.close(fd)

        threading.Thread(target=run, name="libcfake-fifo-open", daemon=True).start()


class Fifos:
    """The real FIFOs behind the model's FIFOs, made when first opened."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dir: str | None = None
        self._real: dict[int, tuple[FakeFile, str]] = {}  # id(model file) -> (it, real path)
        self._inodes: dict[tuple[int, int], FakeFile] = {}  # (st_dev, st_ino) -> model file

    def real_path(self, obj: FakeFile) -> str:
        """The real FIFO behind a model FIFO (made now if it has none yet)."""
        with self._lock:
            known = self._real.get(id(obj))
            if known is not None:
                return known[1]
            if self._dir is None:
                self._dir = tempfile.mkdtemp(prefix="libcfake-fifos-")
            path = os.path.join(self._dir, str(len(self._real)))
            os.mkfifo(path, 0o600)
            info = os.stat(path)
            self._real[id(obj)] = (obj, path)
            self._inodes[(info.st_dev, info.st_ino)] = obj
            return path

    def file_of(self, info: os.stat_result) -> FakeFile | None:
        """The model FIFO a descriptor the master handed out (its fstat) refers to, if any."""
        with self._lock:
            return self._inodes.get((info.st_dev, info.st_ino))

    def open(self, obj: FakeFile, flags: int, made: Callable[[int], Any]) -> Any:
        """Open the real FIFO behind ``obj`` with the program's access mode and O_NONBLOCK:
        ``made(fd)`` at once, or a :class:`Later` when the open waits for the other end."""
        path = self.real_path(obj)
        accmode = flags & os.O_ACCMODE
        real_flags = accmode | (flags & os.O_NONBLOCK) | os.O_CLOEXEC
        if flags & os.O_NONBLOCK or accmode == os.O_RDWR:  # never waits (ENXIO: no reader)
            return made(os.open(path, real_flags))
        return Later(lambda: made(os.open(path, real_flags)), "fd, when the FIFO's other end opens")

    def close(self) -> None:
        """Wake every open still waiting (an end that never came) and remove the real FIFOs."""
        with self._lock:
            paths = [path for _, path in self._real.values()]
            directory, self._dir = self._dir, None
            self._real.clear()
            self._inodes.clear()
        for path in paths:
            with contextlib.suppress(OSError):  # both ends, for an instant
                os.close(os.open(path, os.O_RDWR | os.O_NONBLOCK))
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
