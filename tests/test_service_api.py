"""The master's API on forged calls: the seed's argument shapes, reply checking, asyncio."""

from __future__ import annotations

import array
import asyncio
import errno
import ipaddress
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import PurePosixPath
from typing import Any

import pytest

from libcfake import LibcService, StatResult, protocol


class FakeShim:
    """A connection that speaks the shim's side of the protocol, call by call."""

    def __init__(self, svc: LibcService) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.connect(svc.socket_path)
        self.sock.settimeout(5)
        self.sock.send(protocol.encode_hello(pid=os.getpid(), exe="/usr/bin/fake"))
        self.seq = 0

    def call(
        self,
        function: str,
        string1: bytes | None = None,
        string2: bytes | None = None,
        fds: Sequence[int] = (),
        **fields: Any,
    ) -> None:
        self.seq += 1
        bits = 0
        if fds:
            bits = (
                protocol.FD_SOCKET if function.startswith(("connect", "bind")) else protocol.FD_DIR1
            )
        message = protocol.encode_call(function, string1, string2, seq=self.seq, fds=bits, **fields)
        ancillary = (
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
        )
        self.sock.sendmsg([message], ancillary)

    def reply(self) -> dict[str, Any]:
        data = self.sock.recv(protocol.MAX_MESSAGE)
        if protocol.ffi.from_buffer("struct lcf_header *", data).kind == protocol.lib.LCF_WELCOME:
            data = self.sock.recv(protocol.MAX_MESSAGE)  # the answer to our hello comes first
        return protocol.decode_reply(data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def shim(service: LibcService) -> Iterator[FakeShim]:
    fake = FakeShim(service)
    yield fake
    fake.close()


O_CREAT_EXCL_RDWR = os.O_CREAT | os.O_EXCL | os.O_RDWR

ARGUMENTS = [
    (("open", b"/a", None), {"flags": os.O_RDONLY}, (PurePosixPath("/a"), ["read_only"])),
    (
        ("open", b"/a", None),
        {"flags": O_CREAT_EXCL_RDWR, "mode": 0o600},
        (PurePosixPath("/a"), ["create", "exclusive", "read_write"], 0o600),
    ),
    (
        ("open", b"/d", None),
        {"flags": os.O_TMPFILE | os.O_WRONLY, "mode": 0o600},
        (PurePosixPath("/d"), ["temporary", "write_only"], 0o600),
    ),
    (
        ("open", b"/a", None),
        {"flags": os.O_PATH | os.O_NOFOLLOW},
        (PurePosixPath("/a"), ["no_follow", "path"]),
    ),
    (
        ("open", b"/a", None),
        {"flags": os.O_WRONLY | os.O_SYNC | os.O_TRUNC | os.O_DIRECTORY},
        (PurePosixPath("/a"), ["directory", "sync_all_on_write", "truncate", "write_only"]),
    ),
    (
        ("openat", b"rel", None),
        {"flags": os.O_RDONLY, "resolve": 0x08 | 0x04 | 0x20},
        (
            PurePosixPath("rel"),
            ["read_only", "resolve_beneath", "resolve_cached", "resolve_no_symlinks"],
        ),
    ),
    (("rename", b"/a", b"/b"), {}, (PurePosixPath("/a"), PurePosixPath("/b"))),
    (("access", b"/a", None), {"flags": os.F_OK}, (PurePosixPath("/a"), "f")),
    (("eaccess", b"/a", None), {"flags": os.R_OK | os.X_OK}, (PurePosixPath("/a"), ["r", "x"])),
    (("mkdir", b"/a", None), {"mode": 0o755}, (PurePosixPath("/a"), 0o755)),
    (
        ("connect_inet", None, None),
        {"port": 80, "address": list(bytes([10, 0, 0, 5]) + bytes(12))},
        (ipaddress.IPv4Address("10.0.0.5"), 80),
    ),
    (
        ("bind_inet6", None, None),
        {"port": 443, "address": list(ipaddress.IPv6Address("::1").packed)},
        (ipaddress.IPv6Address("::1"), 443),
    ),
    (("connect_unix", b"\0abstract", None), {}, (b"\0abstract",)),
    (
        ("getaddrinfo", b"db.test", b"http"),
        {"socktype": socket.SOCK_DGRAM},
        ("db.test", "http", "udp"),
    ),
    (("getaddrinfo", None, b"80"), {}, (None, "80", None)),
]


@pytest.mark.parametrize(("call", "fields", "expected"), ARGUMENTS)
def test_arguments_have_the_seed_shapes(
    service: LibcService,
    shim: FakeShim,
    call,
    fields,  # type: ignore[no-untyped-def]
    expected,
) -> None:
    function, first, second = call
    fds = [os.open("/", os.O_RDONLY)] if function.startswith(("connect", "bind")) else []
    shim.call(function, first, second, fds=fds, **fields)
    for fd in fds:
        os.close(fd)
    received = service.receive(timeout=5)
    assert received.function == service.function_ == function
    assert service.arguments() == expected
    assert service.process.pid == os.getpid() and service.process.exe == "/usr/bin/fake"
    for fd in service.descriptors():
        os.close(fd)
    service.use_slave_credentials()
    assert shim.reply()["action"] == protocol.PASSTHROUGH


BAD_ANSWERS = [
    ("stat", (-1,), {}, ValueError, "needs an errno"),
    ("stat", ({"type": "regular"},), {}, ValueError, "needs mode"),
    ("stat", ({"type": "regular", "mode": 0o644, "colour": 1},), {}, ValueError, "unknown stat"),
    ("stat", ({"type": "pipe", "mode": 0o644},), {}, ValueError, "not one of"),
    ("stat", ({"type": "directory", "mode": 0o100644},), {}, ValueError, "says regular"),
    ("stat", ("big",), {}, TypeError, "stat reply"),
    ("open", (3,), {}, ValueError, "send_with_fds"),
    ("open", (0,), {"errno": errno.ENOENT}, ValueError, "errno 2 given"),
    ("mkdir", ("zero",), {}, TypeError, "integer"),
    ("mkdir", (0,), {"errno": -4}, ValueError, "non-negative"),
    ("mkdir", (0,), {"errno": OSError("no errno")}, ValueError, "carries no errno"),
    ("getaddrinfo", ("unknownerror",), {}, ValueError, "one of again"),
    ("getaddrinfo", ([("10.0.0.1", 70000)],), {}, ValueError, "0 to 65535"),
    ("getaddrinfo", ([("not-an-ip", 80)],), {}, ValueError, "does not appear"),
    ("getaddrinfo", (["10.0.0.1"],), {}, TypeError, "is not \\(ip, port or None\\)"),
    ("getaddrinfo", ([["10.0.0.1", 80]],), {}, TypeError, "is not \\(ip, port or None\\)"),
    ("getaddrinfo", ("again",), {"errno": errno.EIO}, ValueError, "'system' only"),
]


@pytest.mark.parametrize(("function", "args", "kwargs", "error", "match"), BAD_ANSWERS)
def test_a_wrong_answer_is_a_clear_error_and_the_call_stays_open(  # type: ignore[no-untyped-def]
    service: LibcService, shim: FakeShim, function, args, kwargs, error, match
) -> None:
    shim.call(function, b"/x" if function != "getaddrinfo" else b"host", None)
    service.receive(timeout=5)
    with pytest.raises(error, match=match):
        service.send(*args, **kwargs)
    assert service.send(-1, errno.EPERM) if function != "getaddrinfo" else service.send("fail")
    reply = shim.reply()
    assert reply["action"] == protocol.ANSWER


def test_receiving_again_before_answering_is_an_error(service: LibcService, shim: FakeShim) -> None:
    shim.call("stat", b"/x")
    service.receive(timeout=5)
    with pytest.raises(RuntimeError, match="before receiving the next call"):
        service.receive(timeout=0.1)
    service.send(-1, errno.ENOENT)
    assert shim.reply()["error"] == errno.ENOENT


def test_answering_with_nothing_received_is_an_error(service: LibcService) -> None:
    with pytest.raises(RuntimeError, match="receive"):
        service.send(0)
    with pytest.raises(RuntimeError, match="receive"):
        service.use_slave_credentials()


def test_getaddrinfo_answers_expand_per_socket_type(service: LibcService, shim: FakeShim) -> None:
    shim.call("getaddrinfo", b"db.test", None, flags=socket.AI_CANONNAME)
    service.receive(timeout=5)
    service.send([("192.0.2.1", None), (ipaddress.IPv6Address("2001:db8::1"), None)])
    reply = shim.reply()
    assert reply["count"] == 6 and reply["text_length"] == len(b"db.test")
    assert isinstance(reply["payload"], bytes) and reply["payload"].endswith(b"db.test")
    # the same answer to a call with other hints: its own entries, not the last call's
    shim.call("getaddrinfo", b"db.test", None, socktype=socket.SOCK_STREAM)
    service.receive(timeout=5)
    service.send([("192.0.2.1", None), (ipaddress.IPv6Address("2001:db8::1"), None)])
    reply = shim.reply()
    assert reply["count"] == 2 and reply["text_length"] == -1


def test_receive_async_serves_from_an_event_loop(service: LibcService, shim: FakeShim) -> None:
    async def main() -> str:
        async def later() -> None:
            await asyncio.sleep(0.05)
            shim.call("unlink", b"/tmp/x")

        task = asyncio.ensure_future(later())
        call = await service.receive_async(timeout=5)
        await task
        service.send(0)
        return call.function

    assert asyncio.run(main()) == "unlink"
    assert shim.reply()["result"] == 0


def test_receive_async_times_out(service: LibcService) -> None:
    with pytest.raises(TimeoutError):
        asyncio.run(service.receive_async(timeout=0.05))


def test_stat_result_from_os_round_trips(service: LibcService, shim: FakeShim) -> None:
    table = StatResult.from_os(os.stat("/"))
    assert table.type == "directory"
    shim.call("lstat", b"/")
    service.receive(timeout=5)
    service.send(table)
    assert shim.reply()["count"] == 1


def test_a_deferred_call_does_not_hold_up_the_others(service: LibcService) -> None:
    """One program's answer is set aside; another program is served meanwhile."""
    slow, fast = FakeShim(service), FakeShim(service)
    try:
        slow.call("stat", b"/slow")
        service.receive(timeout=5)
        deferred = service.defer()
        fast.call("stat", b"/fast")
        assert service.receive(timeout=5).raw.string1 == b"/fast"
        service.send(-1, errno.ENOENT)
        assert fast.reply()["error"] == errno.ENOENT
        answer = threading.Timer(0.05, deferred.send, args=(-1, errno.ETIMEDOUT))
        answer.start()
        assert slow.reply()["error"] == errno.ETIMEDOUT
        answer.join()
        with pytest.raises(RuntimeError, match="answered already"):
            deferred.send(-1, errno.EIO)
    finally:
        slow.close()
        fast.close()
