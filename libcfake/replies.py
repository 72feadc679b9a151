"""The master's side of the reply checks (the shim's are in ``shim/replies.c``): an answer a
handler gives, as the reply bytes of the call it answers, or a ValueError/TypeError that says why
it does not fit the call. What a call's reply may carry is its :class:`~libcfake.protocol.ReplyKind`
in the call table; the common answers are found first, each by one quick test.
"""

from __future__ import annotations

import errno as _errno
import functools
import ipaddress
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from . import protocol
from .calls import Call
from .gai import GAI_ERRORS, socket_types
from .protocol import Function, ReplyKind
from .stat import FsStats, StatResult

_AI_CANONNAME = int(socket.AI_CANONNAME)  # an int: "&" on the IntFlag costs a microsecond


def _named(*kinds: ReplyKind) -> frozenset[str]:
    return frozenset(function.text for function in Function if function.reply in kinds)


#: Calls whose success carries the descriptor the program gets (chdir: the directory to enter).
_FD_FUNCTIONS = _named(ReplyKind.DESCRIPTOR, ReplyKind.DIRECTORY)
#: Calls whose success carries text, and the reply's result as a function of the text.
_TEXT_RESULTS: dict[ReplyKind, Callable[[bytes], int]] = {
    ReplyKind.LINK_TEXT: len,  # the number of bytes placed in the buffer
    ReplyKind.PATH_TEXT: lambda text: 0,
    ReplyKind.HOST_TEXT: lambda text: 0,
    ReplyKind.DNS_MESSAGE: len,  # the answer's length, like res_query's return value
}
_TEXT_FUNCTIONS: dict[str, Callable[[bytes], int]] = {
    function.text: _TEXT_RESULTS[function.reply]
    for function in Function
    if function.reply in _TEXT_RESULTS
}
#: Calls whose success may carry a descriptor: connect and bind the socket that replaces the
#: program's, exec the file to run instead of the one named (a program of the model).
_MAYBE_FD_FUNCTIONS = _named(ReplyKind.SOCKET, ReplyKind.PROGRAM)
_STAT_FUNCTIONS = _named(ReplyKind.STAT)
_STATFS_FUNCTIONS = _named(ReplyKind.STATFS)
#: Calls whose success is a plain integer >= 0, with nothing else in the reply.
_PLAIN_FUNCTIONS = _named(ReplyKind.STATUS, ReplyKind.SOCKET, ReplyKind.PROGRAM)
_EAI_FUNCTIONS = _named(ReplyKind.ADDRESSES, ReplyKind.HOST_TEXT)
_ADDRESS_FUNCTIONS = _named(ReplyKind.ADDRESSES)


def errno_number(errno: int | OSError) -> int:
    if isinstance(errno, OSError):
        if errno.errno is None:
            raise ValueError(f"{errno!r} carries no errno")
        return int(errno.errno)
    if isinstance(errno, bool) or not isinstance(errno, int) or errno < 0:
        raise ValueError(f"errno must be a non-negative int or an OSError, not {errno!r}")
    return errno


def encode_answer(
    call: Call, result: Any, fds: Sequence[int], error: int, canonical: str | None = None
) -> bytes:
    """The reply bytes for ``result`` (and ``fds``, ``error``) to ``call``; ValueError/TypeError
    explain a result that does not fit."""
    raw = call.raw
    function, seq = raw.function, raw.seq
    # The common answers first, each found by one quick test; the checks below name what is
    # wrong with any other.
    kind = type(result)
    if not fds and kind is int:
        if (result >= 0 and not error and function in _PLAIN_FUNCTIONS) or (
            result == -1 and error > 0 and function not in _ADDRESS_FUNCTIONS
        ):
            return protocol.encode_result(seq, result, error)
    elif kind is int and len(fds) == 1 and result >= 0 and not error:
        if function in _FD_FUNCTIONS or function in _MAYBE_FD_FUNCTIONS:
            return protocol.encode_result(seq, result)
    elif (
        (kind is protocol.PackedStat or kind is StatResult)
        and not (fds or error)
        and function in _STAT_FUNCTIONS
    ):
        return protocol.encode_stat_reply(seq, result)
    if len(fds) > 1 or (fds and function not in _FD_FUNCTIONS | _MAYBE_FD_FUNCTIONS):
        raise ValueError(
            f"{function} replies carry at most one descriptor, and only "
            "open, openat, chdir, connect, bind and exec take one"
        )
    if function in _ADDRESS_FUNCTIONS:
        return _encode_getaddrinfo(call, result, error, canonical)
    if function in _EAI_FUNCTIONS and isinstance(result, str) and result in GAI_ERRORS:
        code = (error or _errno.EIO) if result == "system" else 0
        return protocol.encode_reply(seq, protocol.ANSWER, GAI_ERRORS[result], code)
    if _is_int(result) and result == -1:
        if error <= 0:
            raise ValueError(f"a failed {function} (-1) needs an errno")
        if fds:
            raise ValueError(f"a failed {function} (-1) carries no descriptor")
        return protocol.encode_reply(seq, protocol.ANSWER, -1, error)
    if error:
        raise ValueError(f"errno {error} given with a successful {function} result {result!r}")
    if function in _STATFS_FUNCTIONS:
        if not isinstance(result, FsStats):
            raise TypeError(f"{function} answers an FsStats or -1, not {result!r}")
        return protocol.encode_statfs_reply(seq, result)
    if function in _STAT_FUNCTIONS:
        table = result if isinstance(result, protocol.PackedStat) else StatResult.coerce(result)
        return protocol.encode_reply(seq, protocol.ANSWER, 0, 0, stat=table)
    if function in _TEXT_FUNCTIONS:
        text = _text_bytes(function, result)
        return protocol.encode_reply(seq, protocol.ANSWER, _TEXT_FUNCTIONS[function](text), 0,
                                     text=text)  # fmt: skip
    if not _is_int(result) or result < 0:
        raise TypeError(f"{function} answers an integer >= 0 or -1, not {result!r}")
    if function in _FD_FUNCTIONS and not fds:
        raise ValueError(f"a successful {function} needs the file: use send_with_fds(0, [fd])")
    return protocol.encode_reply(seq, protocol.ANSWER, result, 0)


def _text_bytes(function: str, value: Any) -> bytes:
    if isinstance(value, (str, os.PathLike)):
        value = os.fsencode(value)
    if not isinstance(value, bytes):
        raise TypeError(f"{function} answers str, bytes or a path, or -1; not {value!r}")
    if Function.of(function).reply is ReplyKind.DNS_MESSAGE:  # binary
        if not 12 <= len(value) <= _MAX_DNS_MESSAGE:
            raise ValueError(f"res_query answers a DNS message of 12 to {_MAX_DNS_MESSAGE} bytes")
        return value
    if not value or len(value) > protocol.MAX_PATH or b"\0" in value:
        raise ValueError(f"{function} answers text of 1 to {protocol.MAX_PATH} bytes without NUL")
    return value


#: The largest DNS answer a reply carries (a message is at most LCF_MAX_MESSAGE bytes).
_MAX_DNS_MESSAGE = protocol.MAX_MESSAGE - 64


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _encode_getaddrinfo(call: Call, result: Any, error: int, canonical_name: str | None) -> bytes:
    seq = call.raw.seq
    if isinstance(result, str):
        if result not in GAI_ERRORS:
            raise ValueError(
                f"unknown getaddrinfo error {result!r}; one of {', '.join(GAI_ERRORS)}"
            )
        if result == "system":
            error = error or _errno.EIO
        elif error:
            raise ValueError(f"errno goes with getaddrinfo error 'system' only, not {result!r}")
        return protocol.encode_reply(seq, protocol.ANSWER, GAI_ERRORS[result], error)
    if error:
        raise ValueError("a getaddrinfo answer with addresses takes no errno")
    if result is None:
        return protocol.encode_reply(seq, protocol.ANSWER, 0, 0)
    if isinstance(result, (str, bytes)) or not isinstance(result, Iterable):
        raise TypeError("getaddrinfo answers a list of (ip, port or None), None or an error name")
    raw = call.raw
    hints = (raw.socktype, raw.protocol, raw.string2 is not None)
    items = tuple(result)
    try:
        hash(items)
    except TypeError:  # (a list inside, say): made afresh, and its errors said
        packed = _packed_entries.__wrapped__(items, *hints)
    else:
        packed = _packed_entries(items, *hints)  # a test answers the same few lists again
    canonical = None
    if packed and raw.flags & _AI_CANONNAME and raw.string1 is not None:
        canonical = raw.string1 if canonical_name is None else canonical_name.encode()
    return protocol.encode_reply(seq, protocol.ANSWER, addresses=packed, text=canonical)


@functools.lru_cache(maxsize=256)
def _packed_entries(items: tuple[Any, ...], socktype: int, proto: int, has_service: bool) -> bytes:
    """getaddrinfo's answer ``items`` as a reply's entries, for a call with these hints."""
    entries = []
    for item in items:
        if not isinstance(item, tuple) or len(item) not in (2, 4):
            raise TypeError(
                f"getaddrinfo entry {item!r} is not (ip, port or None) "
                "or (ip, port, socktype, protocol)"
            )
        ip_value, port = item[:2]
        ip = (
            ip_value
            if isinstance(ip_value, (ipaddress.IPv4Address, ipaddress.IPv6Address))
            else ipaddress.ip_address(ip_value)
        )
        if port is not None and (not _is_int(port) or not 0 <= port <= 65535):
            raise ValueError(f"getaddrinfo port {port!r} is not an integer from 0 to 65535")
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        if len(item) == 4:
            entries.append((family, item[2], item[3], ip, port or 0))
            continue
        for pair in socket_types(socktype, proto, port is not None and has_service):
            entries.append((family, *pair, ip, port or 0))
    if len(entries) > protocol.MAX_ADDRESSES:
        raise ValueError(
            f"{len(entries)} getaddrinfo entries; at most {protocol.MAX_ADDRESSES} fit"
        )
    return protocol.pack_addresses(entries)
