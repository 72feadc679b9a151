"""Programs that exist only in the model: a script or binary the test (or a program) wrote into
the model, a model symlink to a host binary, a venv made in the Sandbox. Each is executed by real
programs (python's subprocess and posix_spawn, sh, env, and a C program through every exec-family
function), natively in a real directory and in a Sandbox at a virtual root, as this user and as
nobody; what they print must agree. The master answers an exec of a model file with the file's
descriptor; the shim runs it, and reads a script's "#!" line as Linux does (issue #21, 7).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from libcfake import Sandbox

from .conftest import AS_NOBODY

VIRTUAL_ROOT = "/exec-model"  # no such directory on the host: nothing may appear there
MARKER = "libcfake-exec-model-marker-3f1c"  # in every script: found on the host, it leaked
NOBODY = (65534, 65534)
PATH = "/usr/bin:/bin"
PRINT_ERRNO = "except OSError as e: print(e.errno)"

HELLO = f'#!/bin/sh\n# {MARKER}\necho hello "$0" "$@"\n'
ARGS = f'#!/bin/sh\n# {MARKER}\nfor a in "$0" "$@"; do printf \'[%s]\' "$a"; done; echo\n'

# path -> contents (str or bytes: a file, with {R} the root; None: a directory; ("->", target):
# a symlink), mode, whether root owns it (else the user the programs run as)
TREE: list[tuple[str, object, int, bool]] = [
    ("hello.sh", HELLO, 0o755, False),
    ("args.sh", ARGS, 0o755, False),
    # an interpreter that is a model script; one argument: the rest of the line, trimmed
    ("outer", "#!{R}/args.sh  one  two\tthree \t\n", 0o755, False),
    ("spaced", "#!  /bin/echo   spaced  arg  \t \n", 0o755, False),
    ("long", "#!/bin/echo " + "a" * 300, 0o755, False),  # no newline in the first 256 bytes
    ("longname", "#!/" + "x" * 300 + "\n", 0o755, False),  # an interpreter cut short
    ("bare", "#!", 0o755, False),  # the interpreter "": the current directory
    ("nl", "#!\n", 0o755, False),
    ("nul", "#!/bin/ec\0ho a\n", 0o755, False),  # the name ends at the NUL
    ("s0", f'#!/bin/sh\n# {MARKER}\necho s0 "$0" "$@"\n', 0o755, False),
    *((f"s{i}", f"#!{{R}}/s{i - 1} a{i}\n", 0o755, False) for i in range(1, 7)),
    (
        "py.py",
        f"#!/usr/bin/env python3\n# {MARKER}\nprint('py', __import__('sys').argv)\n",
        0o755,
        False,
    ),
    ("true", Path("/bin/true").read_bytes(), 0o755, False),
    ("echo-link", ("->", "/bin/echo"), 0o777, False),
    ("noexec.sh", HELLO, 0o644, False),
    ("garbage", b"\x7fELF-but-not-really\x00\x01\x02\n", 0o755, False),
    ("noshebang.sh", f'# {MARKER}\necho no shebang "$0" "$@"\n', 0o755, False),
    ("badinterp.sh", "#!/no/such/interpreter\n", 0o755, False),
    ("dir", None, 0o755, False),
    ("bin", None, 0o755, False),
    ("bin/hello-on-path", HELLO, 0o755, False),
    ("root-only.sh", HELLO, 0o700, True),  # root runs it (an x bit); nobody may not
    ("private", None, 0o700, True),  # nobody may not search it
    ("private/inner.sh", HELLO, 0o755, True),
]

#: (program under the root, its arguments), run by python's subprocess.
SUBPROCESS_CASES: list[tuple[str, list[str]]] = [
    ("hello.sh", ["a", "b c"]),
    ("args.sh", ["x"]),
    ("outer", ["x", "y"]),
    ("spaced", ["q"]),
    ("long", []),
    ("longname", []),
    ("bare", []),
    ("nl", []),
    ("nul", []),
    *((f"s{i}", ["z"]) for i in range(7)),
    ("py.py", ["p"]),
    ("true", []),
    ("echo-link", ["hi", "there"]),
    ("noexec.sh", []),
    ("garbage", []),
    ("noshebang.sh", []),
    ("badinterp.sh", []),
    ("dir", []),
    ("missing", []),
    ("hello.sh/x", []),
    ("root-only.sh", []),
    ("private/inner.sh", []),
]

SUBPROCESS_RUNNER = """
import errno, os, subprocess, sys
R = os.environ['R']
for name, args in CASES:
    try:
        done = subprocess.run([R + '/' + name, *args], capture_output=True, text=True, timeout=60)
        print(name, done.returncode, repr(done.stdout), repr(done.stderr))
    except OSError as error:
        print(name, errno.errorcode[error.errno])
# posix_spawn and posix_spawnp (glibc's own exec in the child)
for spawn, program in ((os.posix_spawn, R + '/hello.sh'), (os.posix_spawnp, 'hello-on-path'),
                       (os.posix_spawn, R + '/outer'), (os.posix_spawn, R + '/true'),
                       (os.posix_spawn, R + '/noexec.sh'), (os.posix_spawn, R + '/garbage')):
    sys.stdout.flush()
    env = {**os.environ, 'PATH': R + '/bin:' + os.environ['PATH']}
    try:
        pid = spawn(program, [program, 'spawned'], env)
        print(spawn.__name__, program, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    except OSError as error:
        print(spawn.__name__, program, errno.errorcode[error.errno])
# a binary open for writing cannot be executed: ETXTBSY (a script's "#!" line is read by the
# shim, which cannot tell: the interpreter runs it)
fd = os.open(R + '/true', os.O_WRONLY | os.O_APPEND)
try:
    subprocess.run([R + '/true'])
except OSError as error:
    print('while open for writing:', errno.errorcode[error.errno])
os.close(fd)
"""

SHELL_SCRIPT = r"""
cd "$R"
./hello.sh a; echo "rc=$?"
"$R/outer" x; echo "rc=$?"
./echo-link from sh; echo "rc=$?"
./true; echo "rc=$?"
./noexec.sh; echo "rc=$?"
./noshebang.sh n; echo "rc=$?"
./dir; echo "rc=$?"
./private/inner.sh; echo "rc=$?"
printf '#!/bin/sh\necho made "$@"\n' > made.sh; chmod +x made.sh; ./made.sh z; echo "rc=$?"
PATH="$R/bin:$PATH" hello-on-path p; echo "rc=$?"
env ./noshebang.sh through-env; echo "rc=$?"
PATH="$R/bin:$PATH" env hello-on-path by-name; echo "rc=$?"
"""

#: How the C program execs (tests/programs/exec_model.c), and what.
C_HOWS = ["execv", "execvp", "execvpe", "execl", "execlp", "execle", "execveat", "execveat-dir",
          "posix_spawn", "posix_spawnp"]  # fmt: skip
#: A script run from a directory descriptor that stays open is named /dev/fd/N/NAME, as the
#: kernel names it; its interpreter's open of that name is refused (routes: a path through a
#: /proc magic link), though N is a shadow directory of the master's.
KEPT = pytest.param(
    "execveat-dir-kept",
    marks=pytest.mark.xfail(
        strict=True, reason="an open of /dev/fd/N/NAME, N a shadow directory, is refused"
    ),
)
C_PROGRAMS = ["hello.sh", "outer", "true", "echo-link", "noexec.sh", "garbage", "noshebang.sh",
              "s5", "dir"]  # fmt: skip


@dataclasses.dataclass
class Worlds:
    root: Path  # the native tree
    sb: Sandbox  # the virtual one, at VIRTUAL_ROOT
    user: list[str]  # what runs a program as the user the cases run as


def _contents(contents: object, root: str, marker: str = MARKER) -> bytes:
    if isinstance(contents, bytes):
        return contents
    return str(contents).replace("{R}", root).replace(MARKER, marker).encode()


def build_native(root: Path, owner: tuple[int, int] | None) -> None:
    root.mkdir()
    for path, contents, mode, by_root in TREE:
        target = root / path
        if contents is None:
            target.mkdir()
            target.chmod(mode)
        elif isinstance(contents, tuple):
            target.symlink_to(contents[1])
        else:
            target.write_bytes(_contents(contents, str(root)))
            target.chmod(mode)
        if owner is not None and not by_root:
            os.lchown(target, *owner)
    if owner is not None:
        os.chown(root, *owner)


def build_virtual(sb: Sandbox, owner: tuple[int, int] | None, marker: str = MARKER) -> None:
    uid, gid = owner or (os.getuid(), os.getgid())
    sb.fs.create_dir(VIRTUAL_ROOT, uid=uid, gid=gid)
    for path, contents, mode, by_root in TREE:
        target = f"{VIRTUAL_ROOT}/{path}"
        owner_uid, owner_gid = (0, 0) if by_root else (uid, gid)
        if contents is None:
            sb.fs.create_dir(target, perm_bits=mode, uid=owner_uid, gid=owner_gid)
        elif isinstance(contents, tuple):
            sb.fs.create_symlink(target, str(contents[1]), uid=owner_uid, gid=owner_gid)
        else:
            data = _contents(contents, VIRTUAL_ROOT, marker)
            sb.fs.create_file(target, contents=data, st_mode=mode, uid=owner_uid, gid=owner_gid)


@pytest.fixture(params=["as this user", "as nobody"])
def worlds(request: pytest.FixtureRequest) -> Iterator[Worlds]:
    nobody = request.param == "as nobody"
    if nobody and (os.geteuid() != 0 or shutil.which("setpriv") is None):
        pytest.skip("dropping to another user needs root and setpriv")
    base = Path(tempfile.mkdtemp())  # a directory everyone may search
    base.chmod(0o755)
    try:
        owner = NOBODY if nobody else None
        build_native(base / "root", owner)
        with Sandbox(reply_timeout=20) as sb:
            build_virtual(sb, owner)
            yield Worlds(base / "root", sb, AS_NOBODY if nobody else [])
    finally:
        shutil.rmtree(base)
    assert not os.path.lexists(VIRTUAL_ROOT)


def run_both(worlds: Worlds, argv: list[str]) -> tuple[str, str]:
    """argv natively (cwd: the root's parent) and in the Sandbox; both outputs, the root
    spelled $R, after checking they agree and that the Sandbox saw no violation."""
    root, sb = worlds.root, worlds.sb
    argv = [*worlds.user, *argv]
    env = {**os.environ, "PATH": PATH}
    native = subprocess.run(argv, env={**env, "R": str(root)}, cwd=root.parent,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    virtual = sb.run(argv, env={**env, "R": VIRTUAL_ROOT}, capture_output=True, text=True,
                     timeout=120)  # fmt: skip
    expected = (native.returncode, native.stdout.replace(str(root), "$R"),
                native.stderr.replace(str(root), "$R"))  # fmt: skip
    got = (virtual.returncode, virtual.stdout.replace(VIRTUAL_ROOT, "$R"),
           virtual.stderr.replace(VIRTUAL_ROOT, "$R"))  # fmt: skip
    assert got[0] == expected[0], got
    assert got[1].splitlines() == expected[1].splitlines()
    assert got[2].splitlines() == expected[2].splitlines()
    assert not sb.violations, [str(v) for v in sb.violations]
    return got[1], got[2]


def test_programs_run_by_python(worlds: Worlds) -> None:
    code = f"CASES = {SUBPROCESS_CASES!r}\n{SUBPROCESS_RUNNER}"
    out, _ = run_both(worlds, [sys.executable, "-c", code])
    lines = dict(line.split(" ", 1) for line in out.splitlines() if not line.startswith("posix"))
    assert lines["hello.sh"] == "0 'hello $R/hello.sh a b c\\n' ''"  # (a sanity check of the
    assert lines["outer"].startswith("0 '[$R/args.sh][one  two\\tthree][$R/outer][x][y]")  # run)
    assert lines["s4"].startswith("0 's0 $R/s0 a1 $R/s1 a2 $R/s2 a3 $R/s3 a4 $R/s4 z")
    assert lines["s5"] == "ELOOP"
    assert lines["true"] == "0 '' ''"
    assert lines["echo-link"] == "0 'hi there\\n' ''"
    assert lines["noexec.sh"] == "EACCES" and lines["garbage"] == "ENOEXEC"
    assert lines["private/inner.sh"] == (
        "EACCES" if worlds.user else "0 'hello $R/private/inner.sh\\n' ''"
    )


def test_programs_run_by_sh(worlds: Worlds) -> None:
    out, _ = run_both(worlds, ["sh", "-c", SHELL_SCRIPT])
    assert "made z\nrc=0" in out and "hello $R/bin/hello-on-path by-name" in out


@pytest.mark.parametrize("how", [*C_HOWS, KEPT])
def test_programs_run_by_each_exec_function(
    worlds: Worlds, how: str, compile_c: Callable[[str], Path]
) -> None:
    program = worlds.root.parent / "exec_model"  # where nobody may run it
    shutil.copy(compile_c("exec_model"), program)
    lines = [f'"$P" {how} "$R/{name}" arg' for name in C_PROGRAMS]
    lines.append(f'PATH="$R/bin:$PATH" "$P" {how} hello-on-path arg')  # by name, for the p-forms
    script = "\n".join(f"echo '-- {line}'; {line}" for line in lines)
    out, _ = run_both(worlds, ["env", f"P={program}", "sh", "-c", script])
    # the kernel names a script run from a directory descriptor /dev/fd/N/NAME: the program's N
    # is close-on-exec, so its interpreter could not open it (ENOENT)
    hello = "errno ENOENT" if how == "execveat-dir" else "hello $R/hello.sh arg\nstatus 0"
    assert f'"$R/hello.sh" arg\n{hello}\n' in out
    assert '"$R/true" arg\nstatus 0\n' in out


def test_a_venv_made_in_the_sandbox_runs(worlds: Worlds) -> None:
    """``python -m venv`` writes bin/python as a symlink to the host's interpreter and
    pyvenv.cfg beside bin/; Python finds the venv from argv[0], which the exec keeps. (The
    system's python: nobody may not run this venv's, whose interpreter is under /root.)"""
    python = "/usr/bin/python3"
    if subprocess.run([python, "-c", "import venv"], capture_output=True).returncode != 0:
        pytest.skip(f"{python} has no venv module")
    show = "import sys; print(sys.prefix, sys.executable, sys.prefix != sys.base_prefix)"
    script = (
        f'cd "$R" && {python} -m venv --without-pip v && '
        f"v/bin/python -c '{show}' && "
        ". v/bin/activate && python -c 'import sys; print(sys.prefix)' && "
        "env python -c 'import sys; print(sys.executable)'"
    )
    out, _ = run_both(worlds, ["sh", "-c", script])
    assert out == "$R/v $R/v/bin/python True\n$R/v\n$R/v/bin/python\n"


def test_the_journal_shows_the_virtual_path(tmp_path: Path) -> None:
    with Sandbox(reply_timeout=20) as sb:
        sb.fs.create_file(f"{VIRTUAL_ROOT}/hello.sh", contents=HELLO, st_mode=0o755)
        done = sb.run(["sh", "-c", f"{VIRTUAL_ROOT}/hello.sh"], capture_output=True, text=True)
        assert done.stdout == f"hello {VIRTUAL_ROOT}/hello.sh\n", done
        execs = [(e.path, e.answer) for e in sb.journal if e.call == "exec"]
        assert (f"{VIRTUAL_ROOT}/hello.sh", "fd") in execs  # the model's file, by descriptor
        assert execs[-1] == ("/bin/sh", "passthrough")  # its interpreter, the host's
        assert not sb.violations


@pytest.mark.parametrize("who", ["as this user", "as nobody"])
def test_a_setuid_program_of_the_model_is_refused(who: str) -> None:
    user = AS_NOBODY if who == "as nobody" else []
    if user and shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    with Sandbox(reply_timeout=20) as sb:
        sb.fs.create_file(f"{VIRTUAL_ROOT}/suid.sh", contents=HELLO, st_mode=0o4755)
        code = f"import subprocess\ntry: subprocess.run(['{VIRTUAL_ROOT}/suid.sh'])\n{PRINT_ERRNO}"
        done = sb.run([*user, sys.executable, "-c", code], capture_output=True, text=True)
        assert done.stdout.strip() == str(1), done  # EPERM
        assert [v.call for v in sb.violations] == ["exec"], sb.violations
        assert "setuid" in sb.violations[0].reason
        sb.violations.clear()


def test_a_model_symlink_to_a_setuid_host_program_is_refused() -> None:
    program = next((p for p in ("/usr/bin/passwd", "/usr/bin/su", "/usr/bin/mount")
                    if os.path.exists(p) and os.stat(p).st_mode & stat.S_ISUID), None)  # fmt: skip
    if program is None:
        pytest.skip("no setuid program here")
    with Sandbox(reply_timeout=20) as sb:
        sb.fs.create_symlink(f"{VIRTUAL_ROOT}/suid", program)
        code = (
            f"import subprocess\ntry: subprocess.run(['{VIRTUAL_ROOT}/suid', '-h'])\n{PRINT_ERRNO}"
        )
        done = sb.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.stdout.strip() == "1", done
        assert [v.call for v in sb.violations] == ["exec"], sb.violations
        sb.violations.clear()


def test_a_host_copy_runs_from_the_model() -> None:
    """A host binary shown in the model at another path (a read-only copy) runs from there."""
    with Sandbox(reply_timeout=20) as sb:
        sb.fs.add_real_file("/bin/echo", f"{VIRTUAL_ROOT}/tools/echo")
        done = sb.run(["sh", "-c", f"{VIRTUAL_ROOT}/tools/echo copied"], capture_output=True,
                      text=True)  # fmt: skip
        assert (done.returncode, done.stdout) == (0, "copied\n"), done
        assert not sb.violations


def test_nothing_of_the_model_reaches_the_host() -> None:
    """Run every kind of model program, then look at the host from outside: no file holds the
    scripts' marker, and the virtual root does not exist."""
    since = time.time() - 1
    marker = f"{MARKER}-{uuid.uuid4()}"  # (the native worlds of tests beside this one hold MARKER)
    with Sandbox(reply_timeout=20) as sb:
        build_virtual(sb, None, marker)
        code = f"CASES = {SUBPROCESS_CASES!r}\n{SUBPROCESS_RUNNER}"
        sb.run([sys.executable, "-c", code], env={**os.environ, "R": VIRTUAL_ROOT, "PATH": PATH},
               capture_output=True, timeout=120)  # fmt: skip
        sb.run(["sh", "-c", SHELL_SCRIPT], env={**os.environ, "R": VIRTUAL_ROOT, "PATH": PATH},
               capture_output=True, timeout=120)  # fmt: skip
        assert sb.fs.read_text(f"{VIRTUAL_ROOT}/made.sh").startswith("#!/bin/sh")
        assert not os.path.lexists(VIRTUAL_ROOT)
        leaked = _host_files_holding(marker.encode(), since)
    assert not leaked, leaked
    assert not os.path.lexists(VIRTUAL_ROOT)


def _host_files_holding(marker: bytes, since: float) -> list[str]:
    found = []
    for top in sorted({tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"}):
        for dirpath, _, filenames in os.walk(top):
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    info = os.lstat(path)
                    if not stat.S_ISREG(info.st_mode) or info.st_mtime < since:
                        continue
                    if info.st_size < 1 << 20 and marker in Path(path).read_bytes():
                        found.append(path)
                except OSError:
                    continue
    return found
