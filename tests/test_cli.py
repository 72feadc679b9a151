"""The command line, on real commands: ``libcfake run`` and ``libcfake trace``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from libcfake.cli import VIOLATION_STATUS


def libcfake(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "libcfake", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd)  # fmt: skip


def test_run_shows_a_host_file_at_a_virtual_path(tmp_path: Path) -> None:
    (tmp_path / "app.conf").write_text("port = 8080\n")
    result = libcfake("run", "--file", f"/etc/app.conf={tmp_path / 'app.conf'}", "--",
                      "cat", "/etc/app.conf")  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (0, "port = 8080\n", "")


def test_run_builds_the_tree_from_a_directory(tmp_path: Path) -> None:
    (tmp_path / "srv" / "site").mkdir(parents=True)
    (tmp_path / "srv" / "site" / "index.html").write_text("<h1>hi</h1>\n")
    result = libcfake("run", "--fs-dir", str(tmp_path), "--cwd", "/srv/site", "--",
                      "sh", "-c", "cat index.html && echo changed > index.html")  # fmt: skip
    assert result.stdout == "<h1>hi</h1>\n", result.stderr
    assert (
        tmp_path / "srv/site/index.html"
    ).read_text() == "<h1>hi</h1>\n"  # the host is untouched


def test_run_answers_names_from_a_hosts_file(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("192.0.2.9 db.test\n")
    result = libcfake("run", "--hosts", str(tmp_path / "hosts"), "--", "getent", "ahostsv4",
                      "db.test")  # fmt: skip
    assert result.stdout.split()[:2] == ["192.0.2.9", "STREAM"]


def test_run_injects_faults(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    result = libcfake("run", "--file", f"/f={tmp_path / 'f'}", "--fail", "open:/f:EACCES", "--",
                      "cat", "/f")  # fmt: skip
    assert result.returncode == 1 and "Permission denied" in result.stderr


def test_run_exits_distinctly_after_violations() -> None:
    result = libcfake("run", "--", "sh", "-c", "echo x > /usr/forbidden")
    assert result.returncode == VIOLATION_STATUS
    assert "call(s) that no model or rule covered" in result.stderr
    assert "/usr/forbidden" in result.stderr
    assert "--fs-dir DIR, or --file VPATH=HOSTPATH" in result.stderr  # hints are options here
    assert "sb." not in result.stderr
    relaxed = libcfake("run", "--violations-ok", "--", "sh", "-c", "echo x > /usr/forbidden")
    assert relaxed.returncode == 2  # the shell's own status


def test_run_keeps_the_commands_status() -> None:
    assert libcfake("run", "--", "sh", "-c", "exit 7").returncode == 7


def test_trace_prints_every_forwarded_call(tmp_path: Path) -> None:
    target = tmp_path / "seen.txt"
    target.write_text("traced\n")
    result = libcfake("trace", "--", "cat", str(target))
    assert result.stdout == "traced\n"
    assert f"open('{target}', ['read_only']) = fd" in result.stderr


def test_trace_shows_each_outcome_and_a_summary(tmp_path: Path) -> None:
    """As strace would: the descriptor, the stat, the errno, the addresses; then what was
    missing (a PATH search that found its program elsewhere is not), and the names resolved."""
    target = tmp_path / "seen.txt"
    target.write_text("abc")
    missing = tmp_path / "missing.conf"
    script = f"cat {missing} 2>/dev/null; stat -c %s {target}; getent hosts localhost"
    result = libcfake("trace", "--", "sh", "-c", script)
    assert result.stdout.splitlines()[0] == "3"
    lines = result.stderr.splitlines()
    assert any(line.endswith(f"open('{missing}', ['read_only']) = -1 ENOENT") for line in lines)
    assert any(f"('{target}') = 0 (-rw-r--r-- 3 bytes)" in line for line in lines)
    assert any("('localhost'" in line and line.endswith("= 127.0.0.1") for line in lines)
    summary = {line.partition(": ")[0]: line.partition(": ")[2] for line in lines[-3:]}
    assert str(missing) in summary["files missing"].split(", ")
    assert not [m for m in summary["files missing"].split(", ") if m.endswith("/cat")]  # PATH
    assert "localhost = 127.0.0.1" in summary["names resolved"]


def test_trace_refuses_writes_unless_allowed(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    refused = libcfake("trace", "--", "sh", "-c", f"echo x > {target}")
    assert refused.returncode != 0 and not target.exists()
    assert "EROFS (refused)" in refused.stderr
    allowed = libcfake("trace", "--allow-writes", "-o", str(tmp_path / "trace"), "--",
                       "sh", "-c", f"echo x > {target}")  # fmt: skip
    assert allowed.returncode == 0 and target.read_text() == "x\n"
    assert "real call" in (tmp_path / "trace").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "run",
                "--",
            ],
            "no command given",
        ),
        (["run", "--fail", "open:/x", "--", "true"], "expected X:X:X"),
        (["run", "--fail", "open:/x:EBOGUS", "--", "true"], "unknown errno 'EBOGUS'"),
        (["run", "--fail", "opne:/x:EIO", "--", "true"], "unknown call 'opne'"),
        (["run", "--file", "relative=/etc/hostname", "--", "true"], "must be absolute"),
        (["run", "--file", "/x=/no/such/file", "--", "true"], "is not a file"),
        (["run", "--", "/no/such/program"], "No such file or directory"),
        (["trace", "--", "/no/such/program"], "cannot run /no/such/program"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_options_are_a_clear_error_with_status_2(args: list[str], message: str) -> None:
    result = libcfake(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_run_names_host_files_the_command_did_not_find(tmp_path: Path) -> None:
    config = tmp_path / "app.ini"
    config.write_text("[app]\n")
    result = libcfake("run", "--", "cat", str(config))
    assert result.returncode == 1
    assert "exist on the host but not in the sandbox" in result.stderr
    assert f"  {config}\n" in result.stderr
