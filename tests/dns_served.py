"""Run a program behind a LibcService whose name lookups a :class:`~libcfake.dns.Dns` answers.

The handler answers as the Sandbox does (see its ``_dispatch``): getaddrinfo (and so
gethostbyname*) from :meth:`Dns.getaddrinfo`, getnameinfo (and gethostbyaddr*) from
:meth:`Dns.getnameinfo`, res_query & co. from :meth:`Dns.query`; a name in no zone of the model
is answered "no such host" and recorded as a violation. Every other call is the real one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from libcfake import LibcService
from libcfake.dns import HOST_NOT_FOUND, Answer, Dns, Hints, LookupRefused

from .conftest import Ran, run_served


def dns_handler(model: Dns, violations: list[str]) -> Callable[[LibcService], None]:
    """A handler answering the name-resolution calls from ``model``."""

    def handle(svc: LibcService) -> None:
        raw = svc.call.raw
        function = svc.function_
        try:
            if function == "getaddrinfo":
                node = None if raw.string1 is None else os.fsdecode(raw.string1)
                service = None if raw.string2 is None else os.fsdecode(raw.string2)
                hints = Hints(raw.flags, raw.family, raw.socktype, raw.protocol)
                answer = model.getaddrinfo(node, service, hints)
                if isinstance(answer, Answer):
                    svc.send(answer.entries, canonical_name=answer.canonical_name)
                else:
                    svc.send(answer)
            elif function == "getnameinfo":
                svc.send(model.getnameinfo(raw.ip_address(), raw.flags))
            elif function == "res_query":
                name, rdclass, rdtype = svc.arguments()
                result = model.query(name, rdclass, rdtype)
                svc.send(result) if isinstance(result, bytes) else svc.send(-1, result)
            else:
                svc.use_slave_credentials()
        except LookupRefused as refused:
            violations.append(f"{raw.symbol}: {refused} is in no zone of the DNS model")
            svc.send("noname") if function != "res_query" else svc.send(-1, HOST_NOT_FOUND)

    return handle


def run_with_dns(
    svc: LibcService, model: Dns, args: Sequence[str], **kwargs: Any
) -> tuple[Ran, list[str]]:
    """Run ``args`` behind ``svc`` with ``model`` answering; what it did, and the violations."""
    violations: list[str] = []
    ran = run_served(svc, [str(a) for a in args], dns_handler(model, violations), **kwargs)
    return ran, violations
