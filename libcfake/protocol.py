"""The wire codec: bytes on the channel to and from Python values.

The struct layouts are not written here: they come from ``shim/libcfake_wire.h`` through the cffi
module ``libcfake._wire``, which was compiled against that header, so the master and the shim
cannot disagree on them. The hot path (calls in, replies out) packs with ``struct.Struct``
objects whose formats are derived from cffi's view of those structs at import time, and checked
against the field order this module uses, so a changed header fails loudly at import instead of
sending misplaced values. Every received message is checked strictly; anything unreadable raises
:class:`~libcfake.errors.ProtocolError` with the reason.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import ipaddress
import socket
import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from ._wire import ffi, lib
from .errors import ProtocolError
from .stat import FILE_TYPES, FsStats, StatResult, split_time

MAGIC: int = lib.LCF_MAGIC
VERSION: int = lib.LCF_VERSION
MAX_MESSAGE: int = lib.LCF_MAX_MESSAGE
MAX_FDS: int = lib.LCF_MAX_FDS
MAX_PATH: int = lib.LCF_MAX_PATH
MAX_BYTES: int = lib.LCF_MAX_BYTES  # most bytes a BYTES reply carries
MAX_XATTR_VALUE: int = lib.LCF_MAX_XATTR_VALUE  # largest attribute value setxattr carries

FD_DIR1: int = lib.LCF_FD_DIR1
FD_DIR2: int = lib.LCF_FD_DIR2
FD_SOCKET: int = lib.LCF_FD_SOCKET
FD_FILE: int = lib.LCF_FD_FILE

#: LCF_WATCH_* (struct lcf_reply.flags of an open): the data calls the shim asks about
WATCH_READS: int = lib.LCF_WATCH_READS
WATCH_WRITES: int = lib.LCF_WATCH_WRITES
WATCH_CLOSE: int = lib.LCF_WATCH_CLOSE
WATCH_ALL: int = lib.LCF_WATCH_ALL

ANSWER: int = lib.LCF_ANSWER
PASSTHROUGH: int = lib.LCF_PASSTHROUGH

#: In a call's or a hello's umask: the low 9 bits are the program's umask (0: not said).
UMASK_KNOWN: int = lib.LCF_UMASK_KNOWN
_NOT_UMASK = ~(UMASK_KNOWN | 0o777)  # bits no umask field has


class Family(enum.IntEnum):
    """What a call works on (enum lcf_family)."""

    FS = lib.LCF_FAMILY_FS  # a path of the filesystem
    FILE = lib.LCF_FAMILY_FILE  # a descriptor of the master's (FD_FILE)
    NET = lib.LCF_FAMILY_NET  # the program's socket and an address
    NAMES = lib.LCF_FAMILY_NAMES  # name resolution


class Subject(enum.IntEnum):
    """What fault rules and the journal name a call by (enum lcf_subject)."""

    PATH = lib.LCF_SUBJECT_PATH  # the first string, a path resolved from DIR1
    LINK = lib.LCF_SUBJECT_LINK  # the second string: a link's own path, resolved from DIR2
    FILE = lib.LCF_SUBJECT_FILE  # the path of the FILE descriptor
    SOCKET_NAME = lib.LCF_SUBJECT_SOCKET_NAME  # a unix socket's name: a path, or @abstract
    ADDRESS = lib.LCF_SUBJECT_ADDRESS  # address:port
    HOST = lib.LCF_SUBJECT_HOST  # the first string: a host or DNS name
    IP = lib.LCF_SUBJECT_IP  # the address
    CWD = lib.LCF_SUBJECT_CWD  # the working directory the first string names


class ReplyKind(enum.IntEnum):
    """What a successful answer carries besides the result (enum lcf_reply_kind)."""

    STATUS = lib.LCF_REPLY_STATUS  # 0, or -1 with errno
    DESCRIPTOR = lib.LCF_REPLY_DESCRIPTOR  # the descriptor the program gets
    DIRECTORY = lib.LCF_REPLY_DIRECTORY  # 0 and a directory descriptor to enter
    STAT = lib.LCF_REPLY_STAT  # 0 and a stat table
    STATFS = lib.LCF_REPLY_STATFS  # 0 and a filesystem's statfs
    LINK_TEXT = lib.LCF_REPLY_LINK_TEXT  # a symlink's target; the result is its length
    BYTES = lib.LCF_REPLY_BYTES  # bytes (NULs allowed); the result is their length
    PATH_TEXT = lib.LCF_REPLY_PATH_TEXT  # 0 and an absolute path
    HOST_TEXT = lib.LCF_REPLY_HOST_TEXT  # 0 and a host name, or an EAI_* code
    DNS_MESSAGE = lib.LCF_REPLY_DNS_MESSAGE  # a DNS message; the result is its length
    ADDRESSES = lib.LCF_REPLY_ADDRESSES  # 0 and addresses, or an EAI_* code
    SOCKET = lib.LCF_REPLY_SOCKET  # 0 or -1, maybe with a socket replacing the program's
    PROGRAM = lib.LCF_REPLY_PROGRAM  # 0 or -1, maybe with the file to run instead (exec)
    COUNT = lib.LCF_REPLY_COUNT  # bytes a read or write may move, or -1 with errno


class Effect(enum.IntEnum):
    """Whether a call may change files (enum lcf_effect)."""

    READS = lib.LCF_EFFECT_READS
    CHANGES = lib.LCF_EFFECT_CHANGES
    BY_FLAGS = lib.LCF_EFFECT_BY_FLAGS  # when its O_* flags write, create or truncate


class _Row(NamedTuple):
    name: str
    family: Family
    subject: Subject
    reply: ReplyKind
    effect: Effect
    noted: bool


_TABLE: dict[int, _Row] = {
    row.function: _Row(
        ffi.string(row.name).decode(),
        Family(row.family),
        Subject(row.subject),
        ReplyKind(row.reply),
        Effect(row.effect),
        bool(row.noted),
    )
    for row in (lib.lcf_call_table[i] for i in range(lib.lcf_call_count))
}


class Function(enum.IntEnum):
    """A call of the wire: its number, and what the master needs to know of it, from the one
    table both ends read (``LCF_CALLS`` in ``shim/libcfake_wire.h``, through cffi). Members are
    named as in C without the prefix (``Function["OPEN"]``, ``Function(1)``); ``text`` is the
    seed's name of the call, which :class:`RawCall` carries::

        >>> Function.of("stat").reply, Function.of("stat").noted
        (<ReplyKind.STAT: 11>, True)
    """

    _ignore_ = "number"
    for number in _TABLE:
        vars()[ffi.string(ffi.cast("enum lcf_function", number)).removeprefix("LCF_")] = number

    @classmethod
    def of(cls, text: str) -> Function:
        """The function the seed's name ``text`` names (KeyError for none)."""
        return _BY_TEXT[text]

    @property
    def text(self) -> str:
        """The seed's name: "open", "stat", "connect_inet", "getaddrinfo", ..."""
        return _TABLE[self].name

    @property
    def family(self) -> Family:
        return _TABLE[self].family

    @property
    def subject(self) -> Subject:
        return _TABLE[self].subject

    @property
    def reply(self) -> ReplyKind:
        return _TABLE[self].reply

    @property
    def effect(self) -> Effect:
        return _TABLE[self].effect

    @property
    def noted(self) -> bool:
        """Whether the shim may answer it from the metadata snapshot (and note it)."""
        return _TABLE[self].noted

    @property
    def seed(self) -> bool:
        """Whether it is one of the 17 calls of Emilua's libc_service.master."""
        return int(self) <= int(lib.LCF_GETADDRINFO)


_BY_TEXT: dict[str, Function] = {function.text: function for function in Function}
#: The seed's function names by their number on the wire.
FUNCTIONS: dict[int, str] = {int(function): function.text for function in Function}
#: The 17 names of Emilua's libc_service.master; the others are libcfake's extensions.
SEED_FUNCTIONS: frozenset[str] = frozenset(f.text for f in Function if f.seed)
#: The calls that change files whatever their flags (see :attr:`Function.effect`).
CHANGING_FUNCTIONS = frozenset(f.text for f in Function if f.effect is Effect.CHANGES)

_HEADER_SIZE = ffi.sizeof("struct lcf_header")
_HELLO_SIZE = ffi.sizeof("struct lcf_hello")
_CALL_SIZE = ffi.sizeof("struct lcf_call")
_KIND_CALL: int = lib.LCF_CALL
_STAT_SIZE = ffi.sizeof("struct lcf_stat")
_REPLY_SIZE = ffi.sizeof("struct lcf_reply")
_KIND_SLICE = slice(6, 8)  # struct lcf_header.kind
_NOTE_KIND = struct.pack("=H", lib.LCF_NOTE)
assert ffi.offsetof("struct lcf_header", "kind") == _KIND_SLICE.start
_STAT_REPLY_SIZE = _REPLY_SIZE + _STAT_SIZE
_ADDRESS_SIZE = ffi.sizeof("struct lcf_address")
_NOTE_SIZE = ffi.sizeof("struct lcf_note")
_KIND_NAMES = {
    lib.LCF_HELLO: "hello",
    lib.LCF_WELCOME: "welcome",
    lib.LCF_CALL: "call",
    lib.LCF_REPLY: "reply",
    lib.LCF_NOTE: "note",
}
#: The calls the shim may answer from the metadata snapshot's entries (and then tells in a note).
NOTED_FUNCTIONS = frozenset(
    f.text for f in Function if f.noted and f.reply is not ReplyKind.DESCRIPTOR
)
#: The opens it may answer itself, of a directory the snapshot says is listed (also noted).
NOTED_OPENS = frozenset(f.text for f in Function if f.noted and f.reply is ReplyKind.DESCRIPTOR)

#: How many getaddrinfo entries fit in one reply.
MAX_ADDRESSES = (MAX_MESSAGE - _REPLY_SIZE - 256) // _ADDRESS_SIZE


@dataclasses.dataclass(frozen=True)
class ProcessInfo:
    """Who is on the other end of a connection: one thread of one process."""

    version: int
    pid: int
    ppid: int
    tid: int
    uid: int
    gid: int
    euid: int
    egid: int
    level: int
    exe: str
    #: the process's umask when it connected (its calls each say theirs: ``RawCall.umask``);
    #: None when its hello did not say it
    umask: int | None = None


_FD_BITS = FD_DIR1 | FD_DIR2 | FD_SOCKET | FD_FILE
assert _FD_BITS & (_FD_BITS + 1) == 0  # the lowest bits, so "fds > _FD_BITS" finds unknown ones
_FD_COUNTS = {bits: bin(bits).count("1") for bits in range(_FD_BITS + 1)}
_C_CODES = {
    "uint8_t": "B",
    "uint16_t": "H",
    "uint32_t": "I",
    "int32_t": "i",
    "uint64_t": "Q",
    "int64_t": "q",
    "char": "c",
}


def _layout(ctype: Any, prefix: str = "") -> tuple[str, list[str]]:
    """The struct-module format and flattened field names of a cffi struct type."""
    fmt, names, offset = "", [], 0
    for name, field in ctype.fields:
        if field.offset > offset:
            fmt += f"{field.offset - offset}x"
        if field.type.kind == "struct":
            nested, nested_names = _layout(field.type, f"{prefix}{name}.")
            fmt += nested
            names += nested_names
        elif field.type.kind == "array":
            fmt += f"{ffi.sizeof(field.type)}s"
            names.append(prefix + name)
        else:
            fmt += _C_CODES[field.type.cname]
            names.append(prefix + name)
        offset = field.offset + ffi.sizeof(field.type)
    if ffi.sizeof(ctype) > offset:
        fmt += f"{ffi.sizeof(ctype) - offset}x"
    return fmt, names


def _packer(name: str, fields: str) -> struct.Struct:
    """A ``struct.Struct`` for ``struct NAME`` of the header, whose fields must be ``fields``."""
    ctype = ffi.typeof(f"struct {name}")
    fmt, names = _layout(ctype)
    if names != fields.split():
        raise ImportError(
            f"struct {name} in shim/libcfake_wire.h has the fields {names}, but "
            f"libcfake/protocol.py packs {fields.split()}: update both together"
        )
    packer = struct.Struct("=" + fmt)
    assert packer.size == ffi.sizeof(ctype), name
    return packer


_HEADER_FIELDS = "header.magic header.version header.kind header.length header.seq"
_HEADER = _packer("lcf_header", _HEADER_FIELDS.replace("header.", ""))
_CALL = _packer(
    "lcf_call",
    f"{_HEADER_FIELDS} function symbol flags mode reserved1 resolve fds family socktype "
    "protocol port flowinfo scope_id address length1 length2 umask values",
)
_REPLY = _packer("lcf_reply", f"{_HEADER_FIELDS} action result error count text_length flags")
_STAT = _packer(
    "lcf_stat",
    "dev ino nlink mode uid gid reserved rdev size blksize blocks atime_sec atime_nsec "
    "mtime_sec mtime_nsec ctime_sec ctime_nsec",
)
_NOTE = _packer("lcf_note", f"{_HEADER_FIELDS} function symbol flags result mode size length error")
_STATFS = _packer(
    "lcf_statfs", "type bsize blocks bfree bavail files ffree fsid namelen frsize flags"
)
_VALUES = struct.Struct("=4q")  # struct lcf_call.values
assert _VALUES.size == ffi.sizeof(dict(ffi.typeof("struct lcf_call").fields)["values"].type)
_ADDRESS = _packer("lcf_address", "family socktype protocol port flowinfo scope_id address")


class RawCall(NamedTuple):
    """One forwarded call exactly as the shim sent it (strings as bytes, flags as integers)."""

    seq: int
    function: str
    symbol: str
    flags: int
    mode: int
    resolve: int
    fds: int
    family: int
    socktype: int
    protocol: int
    port: int
    flowinfo: int
    scope_id: int
    address: bytes
    string1: bytes | None
    string2: bytes | None
    values: tuple[int, int, int, int]
    #: ``UMASK_KNOWN | the umask`` when the program made the call, as the shim says it in every
    #: call; 0 when the call does not say it (the seccomp supervisor's: see :meth:`said_umask`)
    umask: int = 0

    @property
    def said_umask(self) -> int | None:
        """The program's umask when it made the call, if the call says it."""
        return self.umask & 0o777 if self.umask & UMASK_KNOWN else None

    @property
    def descriptor_count(self) -> int:
        """How many descriptors the shim attached to this call."""
        return _FD_COUNTS[self.fds & _FD_BITS]

    def ip_address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """The address of a connect_inet/inet6, bind_inet/inet6 or getnameinfo call."""
        # family is the socket's domain for connect/bind (an inet6 socket may connect to an
        # inet address), and the address's family only for getnameinfo
        if self.function.endswith("inet6") or (
            self.function == "getnameinfo" and self.family == socket.AF_INET6
        ):
            return ipaddress.IPv6Address(self.address)
        return ipaddress.IPv4Address(self.address[:4])


def _check_header(data: bytes, kind: int, minimum: int, what: str) -> int:
    """Check a message's header; its sequence number."""
    if len(data) < _HEADER_SIZE:
        raise ProtocolError(f"{what}: {len(data)} bytes is shorter than a message header")
    magic, version, got_kind, length, seq = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ProtocolError(f"{what}: bad magic {magic:#010x} (expected {MAGIC:#010x})")
    if version != VERSION:
        raise ProtocolError(
            f"{what}: the program's shim speaks protocol version {version}, this master "
            f"speaks {VERSION}; install libcfake again so both come from one build"
        )
    if got_kind != kind:
        name = _KIND_NAMES.get(got_kind, f"unknown kind {got_kind}")
        raise ProtocolError(f"{what}: expected a {_KIND_NAMES[kind]}, got a {name}")
    if length != len(data):
        raise ProtocolError(f"{what}: header says {length} bytes, packet has {len(data)}")
    if len(data) < minimum:
        raise ProtocolError(f"{what}: {len(data)} bytes is too short (at least {minimum})")
    return int(seq)


def decode_hello(data: bytes) -> ProcessInfo:
    """Read the first message of a connection."""
    _check_header(data, lib.LCF_HELLO, _HELLO_SIZE, "hello")
    hello = ffi.from_buffer("struct lcf_hello *", data)
    if hello.exe_length < 0 or _HELLO_SIZE + hello.exe_length != len(data):
        raise ProtocolError(f"hello: executable length {hello.exe_length} does not fit the packet")
    exe = bytes(data[_HELLO_SIZE:]).decode("utf-8", "surrogateescape")
    if hello.umask & _NOT_UMASK:
        raise ProtocolError(f"hello: umask field {hello.umask:#x} is not a umask")
    return ProcessInfo(
        VERSION,
        hello.pid,
        hello.ppid,
        hello.tid,
        hello.uid,
        hello.gid,
        hello.euid,
        hello.egid,
        hello.level,
        exe,
        hello.umask & 0o777 if hello.umask & UMASK_KNOWN else None,
    )


def peek_version(data: bytes) -> int | None:
    """The protocol version a message claims, if it has a header with our magic."""
    if len(data) < _HEADER_SIZE:
        return None
    magic, version, _, _, _ = _HEADER.unpack_from(data)
    return int(version) if magic == MAGIC else None


def decode_call(data: bytes, received_fds: int) -> RawCall:
    """Read one forwarded call; ``received_fds`` is how many descriptors came with it."""
    size = len(data)
    if size < _CALL_SIZE:
        _check_header(data, _KIND_CALL, _CALL_SIZE, "call")  # raises, saying what is wrong
    (magic, version, kind, length, seq, number, symbol, flags, mode, _, resolve, fds, family,
     socktype, proto, port, flowinfo, scope_id, address, length1, length2, umask,
     values) = _CALL.unpack_from(data)  # fmt: skip
    if magic != MAGIC or version != VERSION or kind != _KIND_CALL or length != size:
        _check_header(data, _KIND_CALL, _CALL_SIZE, "call")  # raises, saying what is wrong
    function = FUNCTIONS.get(number)
    if function is None:
        raise ProtocolError(f"call: unknown function number {number}")
    end1 = _CALL_SIZE + length1 if length1 > 0 else _CALL_SIZE
    # one quick test that a valid call passes (fds is unsigned, so never negative)
    if (
        length1 > MAX_PATH or length2 > MAX_PATH or length1 < -1 or length2 < -1
        or (end1 + length2 if length2 > 0 else end1) != size
        or fds > _FD_BITS or _FD_COUNTS[fds] != received_fds or umask & _NOT_UMASK
    ):  # fmt: skip
        _check_call(function, length1, length2, end1, size, fds, received_fds, umask)
    name = _SYMBOLS.get(symbol)
    if name is None:
        name = symbol.split(b"\0", 1)[0].decode("ascii", "replace")
        if len(_SYMBOLS) < 256:
            _SYMBOLS[symbol] = name
    return _new_tuple(RawCall, (
        seq, function, name, flags, mode, resolve, fds, family, socktype, proto, port, flowinfo,
        scope_id, address, None if length1 < 0 else data[_CALL_SIZE:end1],
        None if length2 < 0 else data[end1:], _VALUES.unpack(values), umask,
    ))  # fmt: skip


def _check_call(
    function: str, length1: int, length2: int, end1: int, size: int, fds: int, received_fds: int,
    umask: int,
) -> None:  # fmt: skip
    """Raise the ProtocolError saying what is wrong with a call that failed decode_call's test."""
    if umask & _NOT_UMASK:
        raise ProtocolError(f"call {function}: umask field {umask:#x} is not a umask")
    if not (-1 <= length1 <= MAX_PATH and -1 <= length2 <= MAX_PATH):
        raise ProtocolError(f"call {function}: string lengths {length1}, {length2} out of range")
    if end1 + max(length2, 0) != size:
        raise ProtocolError(
            f"call {function}: string lengths {length1}, {length2} do not fit the packet"
        )
    if fds & ~_FD_BITS:
        raise ProtocolError(f"call {function}: unknown descriptor bits {fds:#x}")
    raise ProtocolError(
        f"call {function}: announces {_FD_COUNTS[fds]} descriptors, {received_fds} arrived"
    )


#: The symbol field's bytes -> its name: the shim's symbols are a few dozen (bounded all the same,
#: against a program that sends garbage).
_SYMBOLS: dict[bytes, str] = {}
#: Builds a NamedTuple from a tuple of all its fields without the generated __new__'s overhead.
_new_tuple = tuple.__new__


class Note(NamedTuple):
    """A call the shim answered from the metadata snapshot, as it told the master."""

    function: str
    symbol: str
    flags: int  # access: the amode; open: its flags
    result: int  # 0, or -1 with error; readlink: the target's length
    mode: int  # the st_mode and st_size of the entry it answered from (0 when it is missing)
    size: int
    path: str  # the virtual path
    target: str | None  # readlink: the target the program got
    error: int = 0  # ENOENT: a name missing from a complete directory; getxattr: ENODATA


def is_note(data: bytes) -> bool:
    """Whether a message (from a welcomed program) is a note rather than a call."""
    return data[_KIND_SLICE] == _NOTE_KIND


#: What a noted call may have failed with: a name a complete directory lacks; and getxattr, a
#: name the model keeps none of.
_NOTED_FAILURES = frozenset({(-1, errno.ENOENT)})
_NOTED_FAILURES_OF_GETXATTR = frozenset({(-1, errno.ENOENT), (-1, errno.ENODATA)})


def decode_note(data: bytes) -> Note:
    """Read one note, as strictly as a call."""
    _check_header(data, lib.LCF_NOTE, _NOTE_SIZE, "note")
    number, symbol, flags, result, mode, size, length, error = _NOTE.unpack_from(data)[5:]
    function = FUNCTIONS.get(number)
    if function not in NOTED_FUNCTIONS and function not in NOTED_OPENS:
        raise ProtocolError(f"note: function number {number} is not answered from a snapshot")
    failures = _NOTED_FAILURES_OF_GETXATTR if function == "getxattr" else _NOTED_FAILURES
    if (result, error) not in failures and (error or result < 0):
        raise ProtocolError(f"note {function}: result {result} with errno {error}")
    if result > 0 and function != "readlink":
        raise ProtocolError(f"note {function}: result {result}")
    text = result if function == "readlink" and result > 0 else 0
    if not 0 < length <= MAX_PATH or not 0 <= text <= MAX_PATH:
        raise ProtocolError(f"note {function}: lengths {length}, {result} out of range")
    if _NOTE_SIZE + length + text != len(data):
        raise ProtocolError(f"note {function}: lengths {length}, {result} do not fit the packet")
    path = bytes(data[_NOTE_SIZE : _NOTE_SIZE + length]).decode("utf-8", "surrogateescape")
    if not path.startswith("/"):
        raise ProtocolError(f"note {function}: path {path!r} is not absolute")
    target = None
    if function == "readlink" and result >= 0:
        target = bytes(data[_NOTE_SIZE + length :]).decode("utf-8", "surrogateescape")
    name = symbol.split(b"\0", 1)[0].decode("ascii", "replace")
    return Note(function, name, flags, result, mode, size, path, target, error)


class Notes:
    """Notes that arrived together: the records a note ring held.

    Checked when made (a :class:`ProtocolError` says what is wrong with the first bad one), and
    decoded only when iterated, which yields :class:`Note` in the order the program made them:
    a master that journals them pays for the decoding only when the journal is read.
    """

    __slots__ = ("count", "data")

    def __init__(self, data: bytes) -> None:
        count = lib.lcf_notes_check(data, len(data))
        if count < 0:
            decode_note(_bad_record(data, -1 - count))  # raises, saying what is wrong with it
            raise ProtocolError("note: a record not padded to 8 bytes")  # the note itself is fine
        self.data = data
        self.count = int(count)

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Note]:
        return map(decode_note, _records(self.data, self.count))


def _records(data: bytes, count: int) -> Iterator[bytes]:
    """The first ``count`` note records of ``data``, each padded to 8 bytes as in a note ring."""
    at = 0
    for _ in range(count):
        length = _HEADER.unpack_from(data, at)[3]
        yield data[at : at + length]
        at += -(-length // 8) * 8


def _bad_record(data: bytes, index: int) -> bytes:
    """Record ``index`` of ``data`` (which the C check found invalid), as far as it can be cut."""
    at = sum(-(-len(record) // 8) * 8 for record in _records(data, index))
    rest = data[at:]
    length = _HEADER.unpack_from(rest)[3] if len(rest) >= _HEADER_SIZE else 0
    return rest[:length] if _NOTE_SIZE <= length <= len(rest) else rest


def _header(kind: int, struct: str, length: int, seq: int) -> Any:
    message = ffi.new(f"struct {struct} *")
    message.header.magic = MAGIC
    message.header.version = VERSION
    message.header.kind = kind
    message.header.length = length
    message.header.seq = seq
    return message


def encode_welcome(
    timeout_ms: int,
    passthrough: Sequence[str],
    devices: Sequence[int] = (),
    snapshot_bytes: int = 0,
    ring_bytes: int = 0,
) -> bytes:
    """The master's acceptance of a hello: the reply timeout, the passthrough table, the
    devices whose descriptors (the master's files and directories) have fstat & co. forwarded,
    and the sizes of the snapshot and note ring memfds sent with it (0: none)."""
    payload = b"".join(prefix.encode() + b"\0" for prefix in passthrough)
    size = ffi.sizeof("struct lcf_welcome")
    welcome = _header(lib.LCF_WELCOME, "lcf_welcome", size + len(payload), 0)
    welcome.status = 0
    welcome.timeout_ms = timeout_ms
    welcome.passthrough_count = len(passthrough)
    welcome.payload_length = len(payload)
    for index, device in enumerate(devices):
        welcome.devices[index] = device
    welcome.snapshot_bytes = snapshot_bytes
    welcome.ring_bytes = ring_bytes
    return bytes(ffi.buffer(welcome)) + payload


def encode_refusal(status: int, message: str) -> bytes:
    """A welcome that refuses the connection; the shim prints ``message``."""
    payload = message.encode()[:1024]
    size = ffi.sizeof("struct lcf_welcome")
    welcome = _header(lib.LCF_WELCOME, "lcf_welcome", size + len(payload), 0)
    welcome.status = status
    welcome.payload_length = len(payload)
    return bytes(ffi.buffer(welcome)) + payload


def encode_reply(
    seq: int,
    action: int,
    result: int = 0,
    error: int = 0,
    stat: StatResult | PackedStat | None = None,
    addresses: bytes = b"",
    text: bytes | None = None,
) -> bytes:
    """One reply. ``addresses``: getaddrinfo's entries, as :func:`pack_addresses` packs them;
    ``text`` is getaddrinfo's canonical name, readlink's target, getcwd's or realpath's path."""
    parts = []
    if stat is not None:
        parts.append(stat.data if isinstance(stat, PackedStat) else encode_stat(stat))
    parts.append(addresses)
    count = (stat is not None) + len(addresses) // _ADDRESS.size
    if text is not None:
        parts.append(text)
    payload = b"".join(parts)
    size = _REPLY.size + len(payload)
    if size > MAX_MESSAGE:
        raise ValueError(f"reply of {size} bytes exceeds the protocol's {MAX_MESSAGE}")
    text_length = -1 if text is None else len(text)
    header = _REPLY.pack(
        MAGIC, VERSION, lib.LCF_REPLY, size, seq, action, result, error, count, text_length, 0
    )
    return header + payload


def pack_addresses(addresses: Iterable[tuple[int, int, int, Any, int]]) -> bytes:
    """getaddrinfo entries, (family, socktype, protocol, ip, port) each, as a reply carries them."""
    parts = []
    for family, socktype, protocol, ip, port in addresses:
        scope = getattr(ip, "scope_id", None)
        scope_id = int(scope) if scope and scope.isdigit() else 0
        parts.append(_ADDRESS.pack(family, socktype, protocol, port, 0, scope_id, ip.packed))
    return b"".join(parts)


def encode_statfs_reply(seq: int, stats: FsStats) -> bytes:
    """A successful statfs or fstatfs reply: result 0 and one struct lcf_statfs."""
    payload = _STATFS.pack(*stats)
    return _REPLY.pack(MAGIC, VERSION, lib.LCF_REPLY, _REPLY_SIZE + len(payload), seq,
                       lib.LCF_ANSWER, 0, 0, 1, -1, 0) + payload  # fmt: skip


def encode_bytes_reply(seq: int, data: bytes | None, length: int) -> bytes:
    """A successful reply of the BYTES kind: ``data`` (its length the result), or, when the
    program asked the size alone, no bytes and ``length``."""
    if data is None:
        return _REPLY.pack(MAGIC, VERSION, lib.LCF_REPLY, _REPLY_SIZE, seq, lib.LCF_ANSWER,
                           length, 0, 0, -1, 0)  # fmt: skip
    return _REPLY.pack(MAGIC, VERSION, lib.LCF_REPLY, _REPLY_SIZE + len(data), seq,
                       lib.LCF_ANSWER, len(data), 0, 0, len(data), 0) + data  # fmt: skip


def encode_result(seq: int, result: int, error: int = 0, flags: int = 0) -> bytes:
    """A reply with a result and an errno only: ``encode_reply(seq, ANSWER, result, error)``,
    the master's most common reply, packed in one step. ``flags``: LCF_WATCH_* bits, for a
    successful open only."""
    return _REPLY.pack(MAGIC, VERSION, lib.LCF_REPLY, _REPLY_SIZE, seq, lib.LCF_ANSWER, result,
                       error, 0, -1, flags)  # fmt: skip


def encode_stat_reply(seq: int, stat: StatResult | PackedStat) -> bytes:
    """``encode_reply(seq, ANSWER, stat=stat)`` in one step."""
    data = stat.data if isinstance(stat, PackedStat) else encode_stat(stat)
    return _REPLY.pack(MAGIC, VERSION, lib.LCF_REPLY, _STAT_REPLY_SIZE, seq, lib.LCF_ANSWER, 0, 0,
                       1, -1, 0) + data  # fmt: skip


def encode_stat(value: StatResult) -> bytes:
    """A ``struct lcf_stat``: a stat reply's payload, and a snapshot entry."""
    # Kept on the table, which is immutable: a handler answering many stats with one table
    # packs it once.
    packed: bytes | None = value.__dict__.get("_packed")
    if packed is None:
        packed = _pack_stat(
            value.st_mode, value.size, value.dev, value.ino, value.nlink, value.uid, value.gid,
            value.atime, value.mtime, value.ctime, value.rdev, value.blksize, value.st_blocks,
        )  # fmt: skip
        object.__setattr__(value, "_packed", packed)
    return packed


_TYPE_NAMES = {bits: name for name, bits in FILE_TYPES.items()}


class PackedStat(NamedTuple):
    """A stat table already in wire form, and what a journal shows of it; see :func:`pack_stat`."""

    type: str  # as StatResult.type: "regular", "directory", "symlink", ...
    mode: int  # the permission bits
    size: int
    data: bytes  # struct lcf_stat


def pack_stat(
    st_mode: int, size: int, dev: int, ino: int, nlink: int, uid: int, gid: int,
    atime: float, mtime: float, ctime: float,
) -> PackedStat:  # fmt: skip
    """A stat reply's table, packed straight from the values (``st_mode`` with its type bits).

    The wire form of ``StatResult(type, mode, size, dev, ino, nlink, uid, gid, atime=atime,
    mtime=mtime, ctime=ctime)``, for a master that answers many stats (the Sandbox's filesystem
    model): building and checking a StatResult costs several times more. ``send`` takes either.
    A value out of range raises ValueError.
    """
    times = (split_time(name, value) for name, value in
             (("atime", atime), ("mtime", mtime), ("ctime", ctime)))  # fmt: skip
    atime_ns, mtime_ns, ctime_ns = (seconds * 10**9 + nanoseconds for seconds, nanoseconds in times)
    return pack_stat_ns(st_mode, size, dev, ino, nlink, uid, gid, atime_ns, mtime_ns, ctime_ns)


def pack_stat_ns(
    st_mode: int, size: int, dev: int, ino: int, nlink: int, uid: int, gid: int,
    atime_ns: int, mtime_ns: int, ctime_ns: int,
) -> PackedStat:  # fmt: skip
    """:func:`pack_stat` with the times in nanoseconds, kept to the nanosecond (a float of
    seconds since 1970 keeps about a tenth of a microsecond)."""
    kind = st_mode & 0o170000
    if kind not in _TYPE_NAMES:
        raise ValueError(f"stat mode {st_mode:#o} has no file type")
    blocks = -(-size // 4096) * 8  # as StatResult.st_blocks with blksize 4096
    try:
        data = _STAT.pack(
            dev, ino, nlink, st_mode, uid, gid, 0, 0, size, 4096, blocks,
            *divmod(atime_ns, 10**9), *divmod(mtime_ns, 10**9), *divmod(ctime_ns, 10**9),
        )  # fmt: skip
    except struct.error as error:
        raise ValueError(f"a stat value is out of range: {error}") from None
    return PackedStat(_TYPE_NAMES[kind], st_mode & 0o7777, size, data)


def _pack_stat(
    st_mode: int, size: int, dev: int, ino: int, nlink: int, uid: int, gid: int,
    atime: Any, mtime: Any, ctime: Any, rdev: int, blksize: int, blocks: int,
) -> bytes:  # fmt: skip
    return _STAT.pack(
        dev, ino, nlink, st_mode, uid, gid, 0, rdev, size, blksize, blocks,
        *split_time("atime", atime), *split_time("mtime", mtime), *split_time("ctime", ctime),
    )  # fmt: skip


# -- the shim's side, in Python: for tests and fuzzers that play a program -----------------


def encode_hello(
    pid: int = 1, exe: str = "/test", version: int = VERSION, seq: int = 0, umask: int | None = None
) -> bytes:
    """A hello as the shim sends it (``umask``: the one it says, if any)."""
    payload = exe.encode()
    hello = _header(lib.LCF_HELLO, "lcf_hello", _HELLO_SIZE + len(payload), seq)
    hello.header.version = version
    hello.pid = pid
    hello.umask = 0 if umask is None else UMASK_KNOWN | umask
    hello.exe_length = len(payload)
    return bytes(ffi.buffer(hello)) + payload


def encode_call(
    function: str,
    string1: bytes | None = None,
    string2: bytes | None = None,
    *,
    seq: int = 1,
    symbol: str = "",
    fds: int = 0,
    number: int | None = None,
    **fields: Any,
) -> bytes:
    """A call as the shim sends it; ``fields`` sets struct lcf_call's other fields.

    ``number`` overrides the function's number on the wire (to forge an unknown one).
    """
    if number is None:
        number = int(Function.of(function))
    strings = [s for s in (string1, string2) if s is not None]
    size = _CALL_SIZE + sum(map(len, strings))
    call = _header(lib.LCF_CALL, "lcf_call", size, seq)
    call.function = number
    call.symbol = (symbol or function).encode()[: lib.LCF_SYMBOL_SIZE - 1]
    call.fds = fds
    call.length1 = -1 if string1 is None else len(string1)
    call.length2 = -1 if string2 is None else len(string2)
    for name, value in fields.items():
        setattr(call, name, value)
    return bytes(ffi.buffer(call)) + b"".join(strings)


def decode_reply(data: bytes) -> dict[str, Any]:
    """A reply's fixed fields and payload, for tests that play the shim's part."""
    seq = _check_header(data, lib.LCF_REPLY, _REPLY_SIZE, "reply")
    reply = ffi.from_buffer("struct lcf_reply *", data)
    return {
        "seq": seq,
        "action": reply.action,
        "result": reply.result,
        "error": reply.error,
        "count": reply.count,
        "text_length": reply.text_length,
        "payload": bytes(data[_REPLY_SIZE:]),
    }
