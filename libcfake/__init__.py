"""libcfake: run real programs in a fake world of files, names and networks.

A preloaded shim forwards each program's file, socket and name-resolution calls to a master in
the test process. :class:`LibcService` is that master's low-level request-reply API (after
Emilua's ``libc_service.master``)::

    from libcfake import LibcService

    with LibcService() as svc:
        proc = svc.spawn(["stat", "/virtual/x"])
        svc.serve(lambda svc: svc.send(-1, errno.ENOENT) if svc.function_ == "stat"
                  else svc.use_slave_credentials(), until=proc)
"""

from ._hybrid import LibcfakeBackendWarning
from ._shim import shim_path
from .calls import Call
from .errors import LibcfakeError, ProtocolError, ShimNotBuiltError
from .faults import FaultRule
from .fs import FileSystem
from .gai import GAI_ERRORS
from .journal import JournalEntry, Violation, ViolationError
from .net import Network, NetworkViolation
from .protocol import ProcessInfo
from .sandbox import Sandbox
from .service import Deferred, LibcService, ServiceError
from .stat import FILE_TYPES, StatResult

__all__ = [
    "FILE_TYPES",
    "GAI_ERRORS",
    "Call",
    "Deferred",
    "FaultRule",
    "FileSystem",
    "JournalEntry",
    "LibcService",
    "LibcfakeBackendWarning",
    "LibcfakeError",
    "Network",
    "NetworkViolation",
    "ProcessInfo",
    "ProtocolError",
    "Sandbox",
    "ServiceError",
    "ShimNotBuiltError",
    "StatResult",
    "Violation",
    "ViolationError",
    "shim_path",
]
__version__ = "0.1.0"
