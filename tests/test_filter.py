"""The launcher's seccomp filter, run on every system call number (shim/launcher/launch.c).

``libcfake-launch --filter`` writes the filter it installs and ``--allowed`` its allow list; a
small classic-BPF interpreter here runs the filter as the kernel would, for every number and the
arguments that matter, and checks each decision against what the launcher's text promises:
the allow list by number alone (a binary search), anything from the shim's gate, a few calls by
their arguments, ENOSYS for other ABIs and clone3, and a trap for everything else.
"""

from __future__ import annotations

import errno
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from libcfake import _seccomp

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
ALLOW = 0x7FFF0000
TRAP = 0x7FC00000  # SECCOMP_RET_USER_NOTIF
ENOSYS = 0x00050000 | errno.ENOSYS  # SECCOMP_RET_ERRNO
GATE_H = Path(__file__).resolve().parents[1] / "shim" / "gate.h"

# x86_64 numbers of the calls checked by name
CLONE, CLONE3, SOCKET, SENDTO, RECVFROM, PRLIMIT64, IOCTL = 56, 435, 41, 44, 45, 302, 16
NEVER_ALLOWED = {
    "open": 2, "stat": 4, "lstat": 6, "access": 21, "connect": 42, "bind": 49, "execve": 59,
    "kill": 62, "rename": 82, "mkdir": 83, "unlink": 87, "chmod": 90, "umask": 95,
    "ptrace": 101, "setuid": 105, "setgroups": 116, "chroot": 161, "mount": 165,
    "tkill": 200, "openat": 257, "newfstatat": 262, "tgkill": 234, "execveat": 322,
    "process_vm_readv": 310, "process_vm_writev": 311, "statx": 332, "io_uring_setup": 425,
    "pidfd_open": 434, "pidfd_getfd": 438, "open_by_handle_at": 304, "unshare": 272,
    "setns": 308,
}  # fmt: skip


@dataclass(frozen=True)
class Data:
    """struct seccomp_data."""

    nr: int
    arch: int = AUDIT_ARCH_X86_64
    ip: int = 0x401000
    args: tuple[int, ...] = (0, 0, 0, 0, 0, 0)

    def word(self, offset: int) -> int:
        if offset == 0:
            return self.nr
        if offset == 4:
            return self.arch
        if offset in (8, 12):
            return (self.ip >> (32 if offset == 12 else 0)) & 0xFFFFFFFF
        index, high = divmod(offset - 16, 8)
        return (self.args[index] >> (32 if high else 0)) & 0xFFFFFFFF


def run(program: list[tuple[int, int, int, int]], data: Data) -> int:
    """The filter's action for ``data``: the instructions the launcher uses, as the kernel runs
    them (loads of seccomp_data words, jumps on constants, returns)."""
    a, pc, steps = 0, 0, 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        steps += 1
        assert steps <= len(program), "a filter runs forward only"
        if code == 0x20:  # BPF_LD | BPF_W | BPF_ABS
            a = data.word(k)
        elif code == 0x06:  # BPF_RET | BPF_K
            return k
        elif code == 0x05:  # BPF_JMP | BPF_JA
            pc += k
        elif code in (0x15, 0x35, 0x25, 0x45):  # JEQ, JGE, JGT, JSET with K
            taken = {0x15: a == k, 0x35: a >= k, 0x25: a > k, 0x45: bool(a & k)}[code]
            pc += jt if taken else jf
        else:
            pytest.fail(f"an instruction the filter should not have: {code:#x}")


@pytest.fixture(scope="module")
def launcher() -> Path:
    try:
        return _seccomp.launcher_path()
    except Exception as error:  # not built here
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def program(launcher: Path) -> list[tuple[int, int, int, int]]:
    raw = subprocess.run([launcher, "--filter"], capture_output=True, check=True).stdout
    assert raw and len(raw) % 8 == 0 and len(raw) // 8 <= 4096
    return list(struct.iter_unpack("=HBBI", raw))


@pytest.fixture(scope="module")
def allowed(launcher: Path) -> set[int]:
    out = subprocess.run([launcher, "--allowed"], capture_output=True, text=True, check=True)
    numbers = [int(line) for line in out.stdout.split()]
    assert numbers == sorted(set(numbers)) and len(numbers) > 100
    return set(numbers)


def gate_return() -> int:
    text = GATE_H.read_text()
    address = re.search(r"#define LCF_GATE_ADDRESS (0x[0-9a-fA-F]+)ULL", text)
    offset = re.search(r"#define LCF_GATE_RETURN (\d+)", text)
    assert address is not None and offset is not None
    return int(address.group(1), 16) + int(offset.group(1))


def expected(nr: int, allowed: set[int], args: tuple[int, ...] = (0,) * 6) -> int:
    """What the launcher's text says the filter does with call ``nr`` from outside the gate."""
    if nr in allowed:
        return ALLOW
    if nr == CLONE3:
        return ENOSYS
    if nr == CLONE:
        namespaces = 0x00020000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000
        namespaces |= 0x40000000 | 0x02000000  # NEWNS UTS IPC USER PID NET CGROUP
        return TRAP if args[0] & namespaces else ALLOW
    if nr == SOCKET:
        return ALLOW if args[0] in (1, 2, 10) else TRAP  # AF_UNIX, AF_INET, AF_INET6
    if nr in (SENDTO, RECVFROM):
        return ALLOW if args[4] == 0 else TRAP
    if nr == PRLIMIT64:
        return ALLOW if args[0] == 0 else TRAP
    if nr == IOCTL:
        changes = (0x40086602, 0x40087602, 0x401C5820, 0x40046602, 0x40047602)
        return TRAP if args[1] in changes else ALLOW
    return TRAP


def test_every_call_number_gets_the_decision_the_launcher_promises(
    program: list[tuple[int, int, int, int]], allowed: set[int]
) -> None:
    wrong = [nr for nr in range(1024) if run(program, Data(nr)) != expected(nr, allowed)]
    assert wrong == []


def test_calls_decided_by_an_argument(
    program: list[tuple[int, int, int, int]], allowed: set[int]
) -> None:
    cases = [
        (CLONE, (0x00011F00, 0, 0, 0, 0, 0)),  # a thread: CLONE_VM|FS|FILES|SIGHAND|THREAD...
        (CLONE, (0x10000000, 0, 0, 0, 0, 0)),  # CLONE_NEWUSER
        (CLONE, (0x40000000 | 0x11, 0, 0, 0, 0, 0)),  # CLONE_NEWNET, SIGCHLD
        (SOCKET, (1, 1, 0, 0, 0, 0)), (SOCKET, (2, 2, 0, 0, 0, 0)), (SOCKET, (10, 1, 0, 0, 0, 0)),
        (SOCKET, (16, 3, 0, 0, 0, 0)), (SOCKET, (17, 3, 0, 0, 0, 0)),  # netlink, packet
        (SENDTO, (3, 0x1000, 5, 0, 0x2000, 16)), (RECVFROM, (3, 0x1000, 5, 0, 0x2000, 0)),
        (SENDTO, (3, 0x1000, 5, 0, 0, 0)), (SENDTO, (3, 0x1000, 5, 0, 1 << 32, 0)),  # (high word)
        (PRLIMIT64, (1234, 7, 0, 0, 0, 0)), (PRLIMIT64, (1 << 32, 7, 0, 0, 0, 0)),
        (IOCTL, (3, 0x40086602, 0, 0, 0, 0)), (IOCTL, (3, 0x5401, 0, 0, 0, 0)),
    ]  # fmt: skip
    for nr, args in cases:
        assert run(program, Data(nr, args=args)) == expected(nr, allowed, args), (nr, args)


def test_the_gate_is_allowed_everything_and_no_other_abi_anything(
    program: list[tuple[int, int, int, int]], allowed: set[int]
) -> None:
    gate = gate_return()
    for nr in range(512):
        assert run(program, Data(nr, ip=gate)) == ALLOW, nr
        assert run(program, Data(nr, ip=gate + 2)) == expected(nr, allowed), nr
        assert run(program, Data(nr, ip=gate | 1 << 40)) == expected(nr, allowed), nr
        assert run(program, Data(nr, arch=AUDIT_ARCH_I386)) == ENOSYS
        assert run(program, Data(nr | 0x40000000)) == ENOSYS  # x32


def test_nothing_that_names_a_path_an_address_or_a_process_is_allowed(allowed: set[int]) -> None:
    assert {name for name, nr in NEVER_ALLOWED.items() if nr in allowed} == set()
