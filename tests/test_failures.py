"""Fail closed: a dead, slow or garbled master fails the program's call cleanly (EIO, one line on
stderr, no hang); a garbled or dying program never takes down the master."""

from __future__ import annotations

import errno
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pytest

import libcfake
from libcfake import LibcService, ProtocolError, StatResult, protocol
from libcfake._shim import preload_environment

from .conftest import passthrough, run_served

EIO_TEXT = os.strerror(errno.EIO)


def run_against(socket_path: str, args: list[str], timeout: float = 20) -> tuple[int, str, float]:
    """Run ``args`` behind the shim talking to ``socket_path``; (status, stderr, seconds)."""
    start = time.monotonic()
    proc = subprocess.run(
        args, env=preload_environment(socket_path), capture_output=True, text=True, timeout=timeout
    )
    return proc.returncode, proc.stderr, time.monotonic() - start


def test_without_a_master_calls_fail_with_eio(tmp_path: Path) -> None:
    status, stderr, _ = run_against(str(tmp_path / "nobody.sock"), ["cat", "/virtual/x"])
    assert status == 1
    assert f"cat: /virtual/x: {EIO_TEXT}" in stderr
    assert "libcfake:" in stderr


#: The master runs the program itself: only its own descendants are served.
MASTER_THAT_DIES = """
import os, signal, sys
from libcfake import LibcService
with LibcService() as svc:
    svc.spawn(["sh", "-c", 'cat /virtual/x; echo "status $?" >&2'], stderr=open(sys.argv[1], "w"))
    print("started", flush=True)
    while True:
        svc.receive()
        if str(svc.arguments()[0]) == "/virtual/x":
            os.kill(os.getpid(), signal.SIGKILL)
        svc.use_slave_credentials()
"""


def test_a_master_killed_mid_call_fails_the_call_quickly(tmp_path: Path) -> None:
    errors = tmp_path / "stderr"
    master = subprocess.Popen(
        [sys.executable, "-c", MASTER_THAT_DIES, str(errors)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert master.stdout is not None
        assert master.stdout.readline() == "started\n"
        start = time.monotonic()
        while "status" not in errors.read_text() and time.monotonic() < start + 20:
            time.sleep(0.01)
        seconds = time.monotonic() - start
    finally:
        master.kill()
        master.wait()
    stderr = errors.read_text()
    assert master.returncode == -signal.SIGKILL
    assert "status 1" in stderr and f"cat: /virtual/x: {EIO_TEXT}" in stderr
    assert "libcfake:" in stderr and "refused" not in stderr
    assert seconds < 5


def test_a_master_that_never_answers_times_out() -> None:
    with LibcService(reply_timeout=0.5) as svc:
        proc = svc.spawn(["cat", "/virtual/x"], stderr=subprocess.PIPE, text=True)
        while True:
            svc.receive(timeout=10)
            if str(svc.arguments()[0]) == "/virtual/x":
                break
            svc.use_slave_credentials()
        _, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 1 and f"cat: /virtual/x: {EIO_TEXT}" in stderr
        assert "500 ms" in stderr
        assert svc.send(-1, errno.ENOENT) is False  # the program gave up on this call


def test_a_program_killed_mid_call_does_not_disturb_the_master(service: LibcService) -> None:
    victim = service.spawn(["cat", "/virtual/victim"])
    while True:
        service.receive(timeout=10)
        if str(service.arguments()[0]) == "/virtual/victim":
            break
        service.use_slave_credentials()
    victim.kill()
    victim.wait()
    assert service.send(-1, errno.ENOENT) is False
    ran = run_served(service, ["cat", "/etc/hostname"], passthrough)
    assert ran.returncode == 0 and ran.stdout


# -- malformed requests: the master raises, closes that connection, serves everyone else ----

HELLO = protocol.encode_hello(pid=4242, exe="/fuzz")
GOOD_CALL = protocol.encode_call("stat", b"/x")


def _with_length(data: bytes, length: int) -> bytes:
    return data[:8] + length.to_bytes(4, "little") + data[12:]


def _a_note() -> bytes:
    """A well-formed note for /x, which belongs in a note ring, not in a message."""
    note = protocol.ffi.new("struct lcf_note *")
    note.header.magic, note.header.version = protocol.MAGIC, protocol.VERSION
    note.header.kind = protocol.lib.LCF_NOTE
    note.header.length = protocol.ffi.sizeof(note[0]) + 2
    note.function, note.symbol, note.mode, note.length = protocol.lib.LCF_STAT, b"stat", 0o644, 2
    return bytes(protocol.ffi.buffer(note)) + b"/x"


BAD_MESSAGES = {
    "shorter than a message header": [b"xx"],
    "bad magic": [b"\0" * 4 + HELLO[4:]],
    "expected a hello, got a call": [GOOD_CALL],
    "header says": [_with_length(HELLO, len(HELLO) + 5)],
    "unknown function number": [HELLO, protocol.encode_call("stat", b"/x", number=99)],
    "do not fit the packet": [HELLO, protocol.encode_call("stat", b"/x", length1=3000)],
    "out of range": [HELLO, protocol.encode_call("stat", b"/x", length2=-7)],
    "announces 1 descriptors, 0 arrived": [HELLO, protocol.encode_call("connect_inet", fds=4)],
    "unknown descriptor bits": [HELLO, protocol.encode_call("stat", b"/x", fds=64)],
    "expected a call, got a reply": [HELLO, protocol.encode_reply(1, protocol.ANSWER)],
    "a note sent as a message": [HELLO, _a_note()],
}


@pytest.mark.parametrize("reason", sorted(BAD_MESSAGES))
def test_a_malformed_request_is_a_clear_error_for_that_program_only(
    service: LibcService, reason: str
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as bad:
        bad.connect(service.socket_path)
        for message in BAD_MESSAGES[reason]:
            bad.send(message)
        with pytest.raises(ProtocolError, match=reason):
            while True:
                service.receive(timeout=5)
                service.use_slave_credentials()
        bad.settimeout(5)
        leftover = [bad.recv(protocol.MAX_MESSAGE) for _ in range(3)]
        assert leftover[-1] == b""  # the master closed that connection
    ran = run_served(service, ["cat", "/etc/hostname"], passthrough)
    assert ran.returncode == 0 and ran.stdout


def test_a_shim_of_another_protocol_version_is_refused_with_a_message(
    service: LibcService,
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as old:
        old.connect(service.socket_path)
        old.send(protocol.encode_hello(version=protocol.VERSION + 1))
        with pytest.raises(ProtocolError, match="protocol version"):
            service.receive(timeout=5)
        old.settimeout(5)
        welcome = old.recv(protocol.MAX_MESSAGE)
    ffi = protocol.ffi
    refusal = ffi.from_buffer("struct lcf_welcome *", welcome)
    assert refusal.status == errno.EPROTO
    assert b"install libcfake again" in welcome[ffi.sizeof("struct lcf_welcome") :]


def test_receive_times_out(service: LibcService) -> None:
    with pytest.raises(TimeoutError):
        service.receive(timeout=0.05)


# -- garbled replies: the program's call fails with EIO and one line ------------------------


class RawMaster:
    """A master written against the wire format directly, to send replies LibcService never would.

    Calls on ``target`` get ``reply(seq)``; every other call is passed through.
    """

    def __init__(
        self,
        tmp_path: Path,
        target: bytes,
        reply: Callable[[int], bytes | None],
        welcome: Callable[[socket.socket], None] | None = None,
    ):
        self.welcome = welcome or (lambda conn: conn.send(protocol.encode_welcome(20_000, [])))
        self.path = str(tmp_path / "raw.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(self.path)
        self.listener.listen(8)
        self.target, self.reply = target, reply
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            protocol.decode_hello(conn.recv(protocol.MAX_MESSAGE))
            self.welcome(conn)
            while True:
                data, ancillary, _, _ = conn.recvmsg(protocol.MAX_MESSAGE, 64)
                if not data:
                    return
                fds = protocol_fds(ancillary)
                for fd in fds:
                    os.close(fd)
                call = protocol.decode_call(data, len(fds))
                if call.string1 == self.target:
                    answer = self.reply(call.seq)
                    if answer is None:
                        return  # hang up
                    conn.send(answer)
                else:
                    conn.send(protocol.encode_reply(call.seq, protocol.PASSTHROUGH))

    def close(self) -> None:
        self.listener.close()


def protocol_fds(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    import array

    fds = array.array("i")
    for _, _, data in ancillary:
        fds.frombytes(data[: len(data) - len(data) % 4])
    return list(fds)


def _stat_reply(seq: int, mode: int) -> bytes:
    good = protocol.encode_reply(
        seq, protocol.ANSWER, 0, 0, stat=StatResult(type="regular", mode=0o644)
    )
    ffi = protocol.ffi
    buffer = bytearray(good)
    st = ffi.from_buffer("struct lcf_stat *", memoryview(buffer)[ffi.sizeof("struct lcf_reply") :])
    st.mode = mode
    return bytes(buffer)


GARBLED = {
    "hang up": lambda seq: None,
    "bad magic": lambda seq: b"\0\0\0\0" + protocol.encode_reply(seq, protocol.ANSWER, -1, 2)[4:],
    "wrong size": lambda seq: protocol.encode_reply(seq, protocol.ANSWER, -1, 2)[:-3],
    "length field lies": lambda seq: _with_length(
        protocol.encode_reply(seq, protocol.ANSWER, -1, 2), 999
    ),
    "wrong seq": lambda seq: protocol.encode_reply(seq + 1, protocol.ANSWER, -1, 2),
    "unknown action": lambda seq: protocol.encode_reply(seq, 77, -1, 2),
    "garbage stat mode": lambda seq: _stat_reply(seq, 0o170777),
    "open answered without a descriptor": lambda seq: protocol.encode_reply(
        seq, protocol.ANSWER, 5, 0
    ),
    "trailing garbage": lambda seq: protocol.encode_reply(seq, protocol.ANSWER, -1, 2) + b"junk",
}


@pytest.mark.parametrize("case", sorted(GARBLED))
@pytest.mark.parametrize("program", [["cat", "/virtual/x"], ["stat", "/virtual/x"]])
def test_a_garbled_reply_fails_the_call_cleanly(
    tmp_path: Path, case: str, program: list[str]
) -> None:
    master = RawMaster(tmp_path, b"/virtual/x", GARBLED[case])
    try:
        status, stderr, seconds = run_against(master.path, program)
    finally:
        master.close()
    assert status == 1, stderr
    assert EIO_TEXT in stderr
    libcfake_lines = [line for line in stderr.splitlines() if line.startswith("libcfake:")]
    assert len(libcfake_lines) == 1, stderr
    assert seconds < 10


def _welcome_with_memfds(snapshot: tuple[int, int], ring: tuple[int, int]) -> Callable[..., None]:
    """A welcome sending a snapshot and a note ring: each (its size said, the memfd's real
    size), the memfds left as ftruncate makes them (zeros: no valid layout)."""

    def send(conn: socket.socket) -> None:
        import array

        fds = []
        for said, real in (snapshot, ring):
            if said:
                fds.append(os.memfd_create("bad", os.MFD_CLOEXEC))
                os.ftruncate(fds[-1], real)
        welcome = protocol.encode_welcome(20_000, [], (), snapshot[0], ring[0])
        conn.sendmsg([welcome], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        for fd in fds:
            os.close(fd)

    return send


BAD_MEMFDS = {  # what the master sent -> the line the program prints
    "a snapshot that is no snapshot": ((8192, 8192), (0, 0), "invalid snapshot (8192 bytes)"),
    "a note ring that is no ring": ((0, 0), (4160, 4160), "invalid note ring (4160 bytes)"),
    "a note ring shorter than said": ((0, 0), (4160, 64), "invalid note ring (4160 bytes)"),
}


@pytest.mark.parametrize("case", sorted(BAD_MEMFDS))
def test_a_welcome_with_a_bad_memfd_fails_the_call_cleanly(tmp_path: Path, case: str) -> None:
    snapshot, ring, line = BAD_MEMFDS[case]
    welcome = _welcome_with_memfds(snapshot, ring)
    master = RawMaster(tmp_path, b"/virtual/x", lambda seq: None, welcome)
    try:
        status, stderr, _ = run_against(master.path, ["stat", "/virtual/x"])
    finally:
        master.close()
    assert status == 1 and f"'/virtual/x': {EIO_TEXT}" in stderr, stderr
    # each call (stat makes a few before its statx) fails alike, each with one line
    libcfake_lines = [text for text in stderr.splitlines() if text.startswith("libcfake:")]
    assert libcfake_lines and all(f"the master sent an {line}" in text for text in libcfake_lines)
    assert 'statx("/virtual/x")' in libcfake_lines[-1], stderr


def test_a_path_too_long_is_refused_without_a_round_trip(service: LibcService) -> None:
    code = "import os\ntry:\n  os.stat('/v/' + 'a' * 5000)\nexcept OSError as e:\n  print(e.errno)"
    ran = run_served(service, [sys.executable, "-c", code], passthrough)
    assert ran.stdout.strip() == str(errno.ENAMETOOLONG)
    assert not [args for _, _, args in ran.calls if str(args[0]).startswith("/v/")]


def test_a_relative_path_too_long_once_resolved_is_refused(service: LibcService) -> None:
    code = "import os\ntry:\n  os.stat('a' * 4092)\nexcept OSError as e:\n  print(e.errno)"
    ran = run_served(service, [sys.executable, "-c", code], passthrough, cwd="/tmp")
    assert ran.stdout.strip() == str(errno.ENAMETOOLONG)


def test_the_shim_needs_nothing_but_libc() -> None:
    installed = Path(libcfake.__file__).parent / "libcfake_preload.so"  # not the sanitizer build
    out = subprocess.run(
        ["readelf", "-d", str(installed)], capture_output=True, text=True, check=True
    ).stdout
    needed = {line.split("[")[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line}
    assert needed <= {"libc.so.6", "libdl.so.2"}, needed


def test_paths_are_pure_posix_paths(service: LibcService) -> None:
    ran = run_served(service, ["cat", "/etc/hostname"], passthrough)
    assert all(
        isinstance(args[0], PurePosixPath)
        for _, function, args in ran.calls
        if function in ("open", "stat")
    )


def _limit_leaving(free: int) -> int:
    """The descriptor limit that leaves this process ``free`` more descriptors."""
    used = {int(name) for name in os.listdir("/proc/self/fd")}
    number = 0
    while free > 0:
        if number not in used:
            free -= 1
        number += 1
    return number


@pytest.mark.parametrize("backend", ["preload", "hybrid"])
def test_a_master_out_of_descriptors_fails_the_call_as_a_violation_that_says_so(
    backend: str,
) -> None:
    # the master holds a memfd for each virtual file programs opened: the descriptor limit
    # bounds them, and reaching it must read as what it is, not as the model's answer (also
    # when the supervisor runs out while reading a trapped call)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    files = [f"/many/f{i}" for i in range(40)]
    with libcfake.Sandbox(backend=backend) as sb:
        for path in files:
            sb.fs.create_file(path, contents="x")
        resource.setrlimit(resource.RLIMIT_NOFILE, (_limit_leaving(30), hard))
        try:  # (the program itself gets the usual limit back)
            done = sb.run(["sh", "-c", f'ulimit -n {soft}; exec cat "$@"', "sh", *files],
                          capture_output=True, text=True)  # fmt: skip
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert done.returncode != 0 and "Too many open files" in done.stderr
        assert 0 < done.stdout.count("x") < len(files)
        reasons = {violation.reason for violation in sb.violations}
        assert reasons and all("ran out of file descriptors" in reason for reason in reasons)
        assert sb.run(["cat", files[0]], capture_output=True, text=True).stdout == "x"
