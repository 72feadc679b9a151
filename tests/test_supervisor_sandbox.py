"""The Sandbox's own handler serves a static program through the supervisor's adapter.

The adapter hands the Sandbox a TrappedCall, which has the surface of a LibcService serving one
call; nothing in the Sandbox knows the call was trapped by seccomp rather than sent by the shim.
This uses ``Sandbox._answer`` directly, as ``Sandbox(backend="hybrid")`` does for every program
it starts (tests/test_hybrid.py); ``_answer`` takes any :class:`~libcfake.outcomes.Serving`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from libcfake import _seccomp
from libcfake._supervisor import Supervisor, SupervisorError
from libcfake.sandbox import Sandbox

from .test_supervisor_adapter import program, scratch  # noqa: F401 - fixtures


def test_the_sandbox_answers_a_static_program(program: Path, scratch: Path) -> None:  # noqa: F811
    with Sandbox() as sandbox:
        sandbox.fs.create_file("/etc/app.conf", contents="port = 8080\n")
        sandbox.fs.create_dir("/work")
        proc, listener = _seccomp.spawn(
            [str(program), "read", "/etc/app.conf", "stat", "/etc/app.conf", "mkdir",
             "/work/out", "create", str(scratch / "canary")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        errors: list[SupervisorError] = []
        with Supervisor(listener, sandbox._answer, on_error=errors.append) as supervisor:
            supervisor.serve(until=proc, timeout=60)
        stdout, stderr = proc.communicate(timeout=30)
        lines = stdout.splitlines()
        assert lines[0] == "read: port = 8080", stderr
        assert lines[1].startswith("stat: size=12 mode=100644")
        assert lines[2] == "mkdir: ok"
        assert lines[3].startswith("create: ") and lines[3] != "create: ok"  # refused
        assert sandbox.fs.exists("/work/out")
        assert not (scratch / "canary").exists()
        assert errors == []
        symbols = [entry.symbol for entry in sandbox.journal]
        # static glibc's start-up reads the link /proc/self/exe: answered, no violation (the
        # launcher's exec of the program went through the shim's gate: not journaled)
        assert symbols[:1] == ["readlink"] and "newfstatat" in symbols
        assert sandbox.violations == []
