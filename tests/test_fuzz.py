"""Fuzzing both decoders of the wire: the master's (hello and call) and the shim's (reply, welcome).

- ``protocol.decode_hello`` and ``protocol.decode_call`` get random bytes and mutations of real
  messages (``encode_hello``/``encode_call``) from hypothesis, and may raise nothing but
  ``ProtocolError``.
- A live ``LibcService`` gets the same garbage from a raw client on its socket: ``receive()``
  raises ``ProtocolError`` for that connection and then serves a real program.
- A ``Sandbox`` must survive the same: a program can reach the master's socket
  (``$LIBCFAKE_SOCKET`` is in its environment) and send anything.
- The shim's reply checks (shim/replies.c ``check_reply``, passthrough.c's ``table_load``), its
  snapshot reader and the master's C checks and writer (note records, snapshot batches) run
  under libFuzzer with ASan and UBSan (shim/fuzz/reply_fuzzer.c), seeded with replies encoded by
  ``libcfake.protocol``; skipped without clang. The same harness built with gcc replays the seeds
  and seeded random mutations of them under ASan and UBSan wherever gcc is.

``LIBCFAKE_FUZZ_SECONDS`` (default 10) bounds the libFuzzer run.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from libcfake._wire import lib

from libcfake import LibcService, ProtocolError, Sandbox, StatResult, protocol
from libcfake.fs import FileSystem, lstat_records
from libcfake.snapshot import Snapshot

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "shim" / "fuzz" / "reply_fuzzer.c"
#: The shim's units the harness links (it includes only their headers).
FUZZ_UNITS = [
    ROOT / "shim" / f"{unit}.c"
    for unit in ("replies", "passthrough", "snapshot_answers", "transport", "errline", "real",
                 "gate", "ring", "snapshot")
]  # fmt: skip
FUZZ_SECONDS = int(os.environ.get("LIBCFAKE_FUZZ_SECONDS", "10"))
BOUNDED = settings(max_examples=300, deadline=None, derandomize=True)

# -- the master's decoder ------------------------------------------------------------------

FUNCTIONS = sorted(protocol.FUNCTIONS.values())
strings = st.one_of(st.none(), st.binary(max_size=64))


@st.composite
def calls(draw: st.DrawFn) -> bytes:
    """A well-formed call as the shim sends it, with arbitrary field values."""
    fields = {
        "flags": draw(st.integers(-(2**31), 2**31 - 1)),
        "mode": draw(st.integers(0, 2**32 - 1)),
        "resolve": draw(st.integers(0, 2**64 - 1)),
        "family": draw(st.integers(-(2**31), 2**31 - 1)),
        "port": draw(st.integers(0, 2**32 - 1)),
        "values": draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=4, max_size=4)),
    }
    return protocol.encode_call(
        draw(st.sampled_from(FUNCTIONS)),
        draw(strings),
        draw(strings),
        seq=draw(st.integers(0, 2**32 - 1)),
        fds=draw(st.integers(0, 15)),
        **fields,
    )


hellos = st.builds(
    protocol.encode_hello,
    pid=st.integers(-(2**31), 2**31 - 1),
    exe=st.text(max_size=40),
    version=st.integers(0, 2**16 - 1),
    seq=st.integers(0, 2**32 - 1),
)


@st.composite
def mutated(draw: st.DrawFn, messages: st.SearchStrategy[bytes]) -> bytes:
    """A message with bytes flipped, 32-bit fields overwritten, cut or extended."""
    data = bytearray(draw(messages))
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["flip", "int", "cut", "extend"]))
        if how == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "int" and len(data) >= 4:
            at = draw(st.integers(0, (len(data) - 4) // 4)) * 4
            value = draw(st.sampled_from([-1, 0, 1, 4095, 4096, 16384, 2**31 - 1, -(2**31)]))
            struct.pack_into("=i", data, at, value)
        elif how == "cut":
            del data[draw(st.integers(0, len(data))) :]
        elif how == "extend":
            data += draw(st.binary(min_size=1, max_size=32))
    return bytes(data)


def decode_quietly(data: bytes, fds: int) -> None:
    """Decode as the service does; only ProtocolError may come out."""
    with contextlib.suppress(ProtocolError):
        protocol.decode_hello(data)
    with contextlib.suppress(ProtocolError):
        protocol.decode_call(data, fds)


@BOUNDED
@given(st.binary(max_size=300), st.integers(0, 5))
def test_random_bytes_raise_only_protocol_error(data: bytes, fds: int) -> None:
    decode_quietly(data, fds)


@BOUNDED
@given(mutated(st.one_of(calls(), hellos)), st.integers(0, 5))
def test_mutated_messages_raise_only_protocol_error(data: bytes, fds: int) -> None:
    decode_quietly(data, fds)


@BOUNDED
@given(calls())
def test_well_formed_calls_decode_and_describe(data: bytes) -> None:
    header_fds = struct.unpack_from("=I", data, protocol.ffi.offsetof("struct lcf_call", "fds"))[0]
    raw = protocol.decode_call(data, bin(header_fds & 15).count("1"))
    assert raw.function in FUNCTIONS


# -- through a live service and a sandbox: a raw client sending garbage ----------------------


def _client(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    sock.settimeout(5)
    sock.connect(path)
    return sock


def _motd(svc: LibcService) -> None:
    """A handler: /etc/motd holds "served", everything else is the real call."""
    if svc.function_ in ("open", "openat") and str(svc.arguments()[0]) == "/etc/motd":
        fd = os.memfd_create("motd")
        os.write(fd, b"served\n")
        os.lseek(fd, 0, 0)
        svc.send_with_fds(0, [fd])
        os.close(fd)
    else:
        svc.use_slave_credentials()


@pytest.fixture(scope="module")
def live_service() -> Iterator[LibcService]:
    with LibcService(reply_timeout=10) as svc:
        yield svc


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.one_of(
        st.tuples(st.binary(min_size=1, max_size=200)),  # a garbage hello
        st.tuples(hellos, mutated(calls())),  # a hello, then a mutated call
    )
)
def test_the_service_drops_a_garbage_connection(
    live_service: LibcService, messages: tuple[bytes, ...]
) -> None:
    with _client(live_service.socket_path) as sock:
        for message in messages:
            sock.send(message)
        try:
            call = live_service.receive(timeout=2)
        except (ProtocolError, TimeoutError):
            return  # refused; or the hello was not version 2 and nothing more came
        live_service.send(-1, 5)  # the mutation happened to be a valid call: answer it
        assert call.function in FUNCTIONS


def test_the_service_serves_a_real_program_after_garbage(live_service: LibcService) -> None:
    with _client(live_service.socket_path) as sock:
        sock.send(b"\x00" * 7)
        with pytest.raises(ProtocolError, match="shorter than a message header"):
            live_service.receive(timeout=5)
    proc = live_service.spawn(["cat", "/etc/motd"], stdout=subprocess.PIPE)
    assert live_service.serve(_motd, until=proc, timeout=30) == 0
    assert proc.stdout is not None and proc.stdout.read() == b"served\n"
    proc.stdout.close()


def _sandbox_serves(sb: Sandbox) -> subprocess.CompletedProcess[str]:
    """cat /etc/motd in the sandbox; a master that stopped answering shows as TimeoutExpired."""
    return sb.run(["cat", "/etc/motd"], capture_output=True, text=True, timeout=5)


def test_a_sandbox_serves_a_real_program_after_garbage() -> None:
    with Sandbox(reply_timeout=5) as sb:
        sb.fs.create_file("/etc/motd", contents="served\n")
        with _client(sb._service.socket_path) as sock:
            sock.send(b"garbage!")
            result = _sandbox_serves(sb)
        assert (result.returncode, result.stdout) == (0, "served\n"), result.stderr


def test_a_sandbox_survives_a_forged_call() -> None:
    with Sandbox(reply_timeout=5) as sb:
        sb.fs.create_file("/etc/motd", contents="served\n")
        with _client(sb._service.socket_path) as sock:
            sock.send(protocol.encode_hello(pid=os.getpid()))
            sock.recv(protocol.MAX_MESSAGE)  # the welcome
            sock.send(protocol.encode_call("chown", b"/etc/motd", values=[0, -5, 0, 0]))
            protocol.decode_reply(sock.recv(protocol.MAX_MESSAGE))
            result = _sandbox_serves(sb)
        assert (result.returncode, result.stdout) == (0, "served\n"), result.stderr


# -- the shim's decoder: libFuzzer on shim/replies.c's reply checks --------------------------


def seeds(directory: Path) -> list[Path]:
    """Valid replies and a welcome table, in reply_fuzzer.c's input layout, from the codec."""
    answer, through = protocol.ANSWER, protocol.PASSTHROUGH
    regular = StatResult(type="regular", mode=0o644, size=7)
    address = protocol.pack_addresses([(2, 1, 6, ipaddress.ip_address("10.0.0.5"), 80)])
    address6 = protocol.pack_addresses([(10, 1, 6, ipaddress.ip_address("2001:db8::5"), 443)])
    replies = [  # (function, descriptors byte, encode_reply arguments)
        (lib.LCF_OPEN, 1 << 2, {"action": answer, "result": 3}),
        (lib.LCF_OPENAT, 0, {"action": answer, "result": -1, "error": 2}),
        (lib.LCF_STAT, 0, {"action": answer, "stat": regular}),
        (lib.LCF_LSTAT, 0, {"action": through}),
        (lib.LCF_FSTAT, 0, {"action": answer, "result": -1, "error": 9}),
        (lib.LCF_READLINK, 0, {"action": answer, "result": 4, "text": b"/abc"}),
        (lib.LCF_GETCWD, 0, {"action": answer, "text": b"/srv/app"}),
        (lib.LCF_REALPATH, 0, {"action": answer, "text": b"/a/b"}),
        (lib.LCF_CHDIR, (1 << 2) | (1 << 5), {"action": answer}),
        (lib.LCF_GETADDRINFO, 0, {"action": answer, "addresses": address + address6}),
        (lib.LCF_GETADDRINFO, 0, {"action": answer, "addresses": address, "text": b"db"}),
        (lib.LCF_GETADDRINFO, 0, {"action": answer, "result": -2}),
        (lib.LCF_GETNAMEINFO, 0, {"action": answer, "text": b"host.example"}),
        (lib.LCF_RES_QUERY, 0, {"action": answer, "result": 12, "text": bytes(12)}),
        (lib.LCF_RES_QUERY, 0, {"action": answer, "result": -1, "error": 1}),
        (lib.LCF_CONNECT_INET, 1 << 2, {"action": answer}),
        (lib.LCF_BIND_UNIX, 0, {"action": answer, "result": -1, "error": 98}),
        (lib.LCF_EXEC, 0, {"action": through}),
        (lib.LCF_MKDIR, 0, {"action": answer, "result": -1, "error": 17}),
    ]
    inputs = [
        bytes([0, function, bits]) + protocol.encode_reply(7, **fields)
        for function, bits, fields in replies
    ]
    welcome = protocol.encode_welcome(1000, ["/usr", "/lib/", "/"])
    table = welcome[protocol.ffi.sizeof("struct lcf_welcome") :]
    inputs.append(bytes([1, 3]) + table + b"\xff/usr/bin/true")
    inputs.append(bytes([1, 3]) + table + b"\xff/usr/../etc/shadow")
    inputs += [bytes([2, len(path)]) + path + snapshot_image() for path in (b"/a", b"/a/l", b"/")]
    inputs.append(bytes([4]) + note_records())
    inputs.append(bytes([8]) + snapshot_records())
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, data in enumerate(inputs):
        path = directory / f"seed-{index:02d}"
        path.write_bytes(data)
        paths.append(path)
    return paths


def snapshot_image() -> bytes:
    """A small snapshot as the master writes it: a directory, a file and a symlink."""
    snapshot = Snapshot("/dev/shm/shadow", slots=16, size=8192)
    try:
        snapshot.put("/a", protocol.encode_stat(StatResult(type="directory", mode=0o755)))
        snapshot.put("/a/f", protocol.encode_stat(StatResult(type="regular", mode=0o644)))
        link = StatResult(type="symlink", mode=0o777, size=1)
        snapshot.put("/a/l", protocol.encode_stat(link), "f")
        return os.pread(snapshot.fd, snapshot.size, 0)
    finally:
        snapshot.close()


def snapshot_records() -> bytes:
    """A directory's entries as the master publishes them in one batch: a file, a symlink and a
    name only."""
    fs = FileSystem(mounts=())
    try:
        fs.create_file("/a/f", contents="seven b")
        fs.create_symlink("/a/l", "f")
        entries = [("/a", fs.resolve("/a")), ("/a/f", fs.resolve("/a/f"))]
        entries += [("/a/l", fs.resolve("/a/l", follow=False)), ("/a/unseen", None)]
        return lstat_records(entries)
    finally:
        fs.close()


def note_records() -> bytes:
    """Two notes as a ring holds them (a stat, a readlink), each padded to 8 bytes."""
    records = b""
    for function, path, target in ((lib.LCF_STAT, b"/a/f", b""), (lib.LCF_READLINK, b"/a/l", b"f")):
        note = protocol.ffi.new("struct lcf_note *")
        note.header.magic, note.header.version = protocol.MAGIC, protocol.VERSION
        note.header.kind = lib.LCF_NOTE
        note.header.length = protocol.ffi.sizeof(note[0]) + len(path) + len(target)
        note.function, note.result, note.length = function, len(target), len(path)
        record = bytes(protocol.ffi.buffer(note)) + path + target
        records += record + bytes(-len(record) % 8)
    assert len(protocol.Notes(records)) == 2  # valid, as the master checks them
    return records


def _compile(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)}\n{done.stderr}"


SANITIZE_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}


@pytest.mark.skipif(
    shutil.which("clang") is None,
    reason="clang is not installed (libFuzzer ships with it): apt-get install -y clang",
)
def test_libfuzzer_on_the_shims_reply_checks(tmp_path: Path) -> None:
    fuzzer = tmp_path / "reply_fuzzer"
    flags = ["-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all"]
    _compile(
        ["clang", *flags, "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-I", str(ROOT / "shim"),
         "-o", str(fuzzer), str(HARNESS), *map(str, FUZZ_UNITS), "-ldl"]
    )  # fmt: skip
    corpus = tmp_path / "corpus"
    seeds(corpus)
    artifacts = tmp_path / "crashes"
    artifacts.mkdir()
    run = subprocess.run(
        [str(fuzzer), f"-max_total_time={FUZZ_SECONDS}", "-max_len=16500", "-seed=1",
         "-print_final_stats=1", f"-artifact_prefix={artifacts}/", str(corpus)],
        capture_output=True, text=True, env={**os.environ, **SANITIZE_ENV},
        timeout=FUZZ_SECONDS + 120,
    )  # fmt: skip
    crashes = sorted(artifacts.iterdir())
    tail = run.stderr[-4000:]
    assert run.returncode == 0 and not crashes, f"{crashes}\n{tail}"
    runs = [line for line in run.stderr.splitlines() if "number_of_executed_units" in line]
    assert runs and int(runs[0].split()[-1]) > 1000, tail


@pytest.mark.skipif(shutil.which(os.environ.get("CC", "gcc")) is None, reason="no C compiler")
def test_seeded_mutations_of_replies_under_asan_and_ubsan(tmp_path: Path) -> None:
    """The harness without libFuzzer: 20000 seeded mutations of each seed, ASan + UBSan."""
    replay = tmp_path / "reply_replay"
    cc = os.environ.get("CC", "gcc")
    _compile(
        [cc, "-g", "-O1", "-std=gnu11", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
         "-DLCF_FUZZ_STANDALONE", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror",
         "-I", str(ROOT / "shim"), "-o", str(replay), str(HARNESS), *map(str, FUZZ_UNITS), "-ldl"]
    )  # fmt: skip
    paths = seeds(tmp_path / "corpus")
    run = subprocess.run(
        [str(replay), "20000", "1", *map(str, paths)],
        capture_output=True, text=True, env={**os.environ, **SANITIZE_ENV}, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    assert f"ran {20001 * len(paths)} inputs" in run.stdout


def test_the_harness_is_not_part_of_the_shim() -> None:
    sys.path.insert(0, str(ROOT / "shim"))
    try:
        import build as shim_build
    finally:
        sys.path.pop(0)
    assert HARNESS not in shim_build.sources()
    assert all(path.parent == ROOT / "shim" for path in shim_build.sources())


def test_no_c_file_of_the_shim_includes_another() -> None:
    """The harness links the shim's units through their headers; no unit is included whole."""
    for path in (ROOT / "shim").rglob("*.c"):
        included = re.findall(r'^\s*#\s*include\s*[<"]([^">]+\.c)[">]', path.read_text(), re.M)
        assert not included, f"{path.relative_to(ROOT)} includes {included}"
