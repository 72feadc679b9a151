"""Reaching a file needs search (x) permission on every directory the path leads through, as the
kernel checks it for every call: the same programs run natively and in a Sandbox, as an
unprivileged user, over a tree of root's, and must agree (and a secret in a directory that user
may not search must not reach its output)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from libcfake import Sandbox

from .conftest import AS_NOBODY

SECRET = "closed-secret-4e1f"
VROOT = "/search-root"  # the tree in the Sandbox

#: The tree both worlds start from, all root's: path -> (contents or None for a directory, mode).
TREE: list[tuple[str, str | None, int]] = [
    ("open", None, 0o755),
    ("open/inner", None, 0o755),
    ("open/f", "x", 0o644),
    ("closed", None, 0o700),
    ("closed/f", SECRET, 0o644),
    ("closed/sub", None, 0o755),
    ("closed/sub/g", SECRET, 0o644),
    ("f2", "x", 0o644),
    ("xonly", None, 0o711),
    ("xonly/g", "g", 0o644),
    ("xonly/h", SECRET, 0o600),
    ("w", None, 0o777),
    ("w/rootdir", None, 0o755),
    ("w/theirs", "t", 0o644),
    ("w/shared", "s", 0o666),
    ("w2", None, 0o777),
    ("sticky", None, 0o1777),
    ("sticky/theirs", "r", 0o666),
]
LINKS = [("link", "closed"), ("open/up", ".."), ("w/in", "../closed/f")]

#: Paths stat'ed (lstat: stat without -L) under the tree.
PATHS = [
    "open/f",
    "closed",
    "closed/f",
    "closed/../f2",
    "open/../closed/f",
    "link",
    "link/f",
    "open/inner/../f",
    "missing/f",
]

#: Scripts run as nobody; $R is the tree's root. Every call on a path in or through "closed"
#: needs search permission there; "xonly" may be searched, not listed; "sticky" is /tmp-like.
SCRIPTS: dict[str, str] = {
    "cat": "cat $R/closed/f",
    "cat through a symlink": "cat $R/link/f",
    "cat through dotdot": "cat $R/open/up/closed/f",
    "cat a deeper file": "cat $R/closed/sub/g",
    "test -r": "test -r $R/closed/f; echo $?",
    "test -e": "test -e $R/closed/f; echo $?",
    "test -d": "test -d $R/closed/sub; echo $?",
    "readlink -f": "readlink -f $R/closed/f",
    "readlink -f a link": "readlink -f $R/link/sub",
    "realpath": "realpath $R/closed/sub",
    "readlink in": "readlink $R/closed/sub; echo $?",
    "stat -L": "stat -L -c %s $R/w/in",
    "ls": "ls $R/closed",
    "ls through a symlink": "ls $R/link/",
    "ls a deeper directory": "ls $R/closed/sub",
    "cd": "cd $R/closed",
    "cd deeper": "cd $R/closed/sub && pwd",
    "touch": "touch $R/closed/new",
    "echo into": "echo x > $R/closed/sub/new",
    "rm": "rm -f $R/closed/f",
    "rmdir": "rmdir $R/closed/sub",
    "mkdir": "mkdir $R/closed/d",
    "mv out": "mv $R/closed/f $R/w/f",
    "mv in": "echo x > $R/w/mine && mv $R/w/mine $R/closed/sub/mine",
    "ln": "ln $R/closed/f $R/w/hard",
    "ln -s": "ln -s x $R/closed/sub/s",
    "chmod": "chmod 600 $R/closed/f",
    "python open": "python3 -c 'import sys; print(open(sys.argv[1]).read())' $R/closed/f",
    "python listdir": "python3 -c 'import os, sys; print(os.listdir(sys.argv[1]))' $R/closed",
    "python chdir": "python3 -c 'import os, sys; os.chdir(sys.argv[1])' $R/closed",
    "python access": "python3 -c 'import os, sys; print(os.access(sys.argv[1], 0))' $R/closed/f",
    "cat in a search-only directory": "cat $R/xonly/g",
    "ls a search-only directory": "ls $R/xonly",
    "cat another's 0600 file": "cat $R/xonly/h",
    "touch another's file": "touch $R/xonly/g",
    "touch -d another's file": "touch -d @1 $R/xonly/g",
    "chgrp another's file": "chgrp 65534 $R/xonly/g",
    "hard-link another's file": "ln $R/xonly/g $R/w/hard",
    "rm another's file in a sticky directory": "rm -f $R/sticky/theirs",
    "mv another's file out of a sticky directory": "mv $R/sticky/theirs $R/w/",
    "write another's file in a sticky directory": "echo y > $R/sticky/theirs; cat $R/sticky/theirs",
    "cd into a search-only directory, cat": "cd $R/xonly && cat g",
    "cd into a search-only directory, ls": "cd $R/xonly && ls",
    "cd into a search-only directory, ls -d .": "cd $R/xonly && ls -d .",
    "cat relative through a closed directory": "cd $R/open && cat ../closed/f",
    "test -r relative through a closed directory": "cd $R/open && test -r ../closed/f; echo $?",
    "python open relative to a directory descriptor": "python3 -c 'import os, sys; "
    'd = os.open(sys.argv[1], os.O_RDONLY); os.open("closed/f", os.O_RDONLY, dir_fd=d)\' $R',
    "create in a sticky directory": "echo y > $R/sticky/mine && rm $R/sticky/mine",
    "rm another's file in a writable directory": "rm -f $R/w/theirs",
    "mv another's directory to another parent": "mv $R/w/rootdir $R/w2/",
    "mv another's directory in its parent": "mv $R/w/rootdir $R/w/renamed",
    "mkdir in a search-only directory": "mkdir $R/xonly/d",
    "mv within a search-only directory": "mv $R/xonly/g $R/xonly/g2",
    "truncate another's file": "truncate -s 0 $R/w/theirs",
    "truncate a shared file": "truncate -s 0 $R/w/shared && stat -c %s $R/w/shared",
    "touch a shared file": "touch $R/w/shared",
    "touch -d a shared file": "touch -d @1 $R/w/shared",
    "chmod another's file": "chmod 777 $R/w/theirs",
    "ls -l through a search-only directory": "ls -l $R/xonly/g | cut -c1-10",
    "stat a search-only directory": "stat -c %a $R/xonly",
    "python O_TRUNC read-only": "python3 -c 'import os, sys; os.open(sys.argv[1], os.O_TRUNC)' "
    "$R/w/theirs",
    "python access W_OK": "python3 -c 'import os, sys; print(os.access(sys.argv[1], 2))' "
    "$R/w/theirs",
    "python utime now": "python3 -c 'import os, sys; os.utime(sys.argv[1])' $R/w/shared",
    "python utime given": "python3 -c 'import os, sys; os.utime(sys.argv[1], (1, 1))' $R/w/shared",
    "python rename over another's file": "cd $R/w && python3 -c "
    '\'import os; open("m", "w").close(); os.rename("m", "theirs")\'',
}

needs_setpriv = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="dropping to another user needs root and setpriv",
)


@pytest.fixture
def native_root() -> Iterator[str]:
    root = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.chmod(root, 0o755)
    for path, contents, mode in TREE:
        if contents is None:
            os.mkdir(f"{root}/{path}")
        else:
            with open(f"{root}/{path}", "w") as file:
                file.write(contents)
        os.chmod(f"{root}/{path}", mode)
    for path, target in LINKS:
        os.symlink(target, f"{root}/{path}")
    yield root
    shutil.rmtree(root)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(reply_timeout=20) as sandbox:
        sandbox.fs.create_dir(VROOT)
        for path, contents, mode in TREE:
            if contents is None:
                sandbox.fs.create_dir(f"{VROOT}/{path}", perm_bits=mode, uid=0, gid=0)
            else:
                sandbox.fs.create_file(f"{VROOT}/{path}", contents, st_mode=mode, uid=0, gid=0)
        for path, target in LINKS:
            sandbox.fs.create_symlink(f"{VROOT}/{path}", target)
        yield sandbox


def outcome(result: subprocess.CompletedProcess[str], root: str) -> str:
    if result.returncode == 0:
        return "ok"
    return result.stderr.replace(root, "R").strip()


def native_tree(root: str) -> list[tuple[str, str, str]]:
    found = []
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            data = "-"
            if stat.S_ISREG(info.st_mode):
                with open(path) as file:
                    data = file.read()
            elif stat.S_ISLNK(info.st_mode):
                data = os.readlink(path)
            found.append((os.path.relpath(path, root), oct(info.st_mode), data))
    return sorted(found)


def virtual_tree(sb: Sandbox) -> list[tuple[str, str, str]]:
    found = []

    def walk(directory: str) -> None:
        for name in sb.fs.listdir(directory):
            path = f"{directory}/{name}"
            obj = sb.fs.resolve(path, follow=False)
            mode = obj.st_mode
            data = "-"
            if stat.S_ISREG(mode):
                data = sb.fs.read_text(path)
            elif stat.S_ISLNK(mode):
                data = obj.contents
            found.append((path[len(VROOT) + 1 :], oct(mode), data))
            if stat.S_ISDIR(mode):
                walk(path)

    walk(VROOT)
    return sorted(found)


@needs_setpriv
@pytest.mark.parametrize("path", PATHS)
def test_stat_needs_search_permission_as_natively(sb: Sandbox, native_root: str, path: str) -> None:
    command = [*AS_NOBODY, "stat", "-c", "%a"]
    native = subprocess.run([*command, f"{native_root}/{path}"], capture_output=True, text=True)
    sandboxed = sb.run([*command, f"{VROOT}/{path}"], capture_output=True, text=True, timeout=60)
    assert outcome(sandboxed, VROOT) == outcome(native, native_root)
    assert sandboxed.stdout == native.stdout


@needs_setpriv
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_call_needs_search_permission_as_natively(
    sb: Sandbox, native_root: str, script: str
) -> None:
    command = [*AS_NOBODY, "sh", "-c", SCRIPTS[script]]
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    native = subprocess.run(command, env={**env, "R": native_root}, cwd="/",
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    sandboxed = sb.run(command, env={**env, "R": VROOT}, capture_output=True, text=True, timeout=60)
    assert SECRET not in sandboxed.stdout + sandboxed.stderr or SECRET in native.stdout
    got = (sandboxed.returncode, sandboxed.stdout.replace(VROOT, "R"), outcome(sandboxed, VROOT))
    expected = (native.returncode, native.stdout.replace(native_root, "R"),
                outcome(native, native_root))  # fmt: skip
    assert got == expected
    assert virtual_tree(sb) == native_tree(native_root)


def test_every_filesystem_answer_walks_its_paths_as_its_caller() -> None:
    """The Sandbox's answers (``_fs_*``) reach the model only through ``_view(call)``, the walk
    that checks the caller's search permission: never through the test's own view
    (``fs.resolve``, ``fs.lookup``, ``fs.locate``, ...) nor pyfakefs itself."""
    import ast
    import inspect

    from libcfake import sandbox

    unchecked = {"resolve", "lookup", "locate", "lexists", "exists", "_walk", "_locate"}
    found = []
    for node in ast.walk(ast.parse(inspect.getsource(sandbox))):
        if not isinstance(node, ast.FunctionDef) or not node.name.startswith("_fs_"):
            continue
        for inner in ast.walk(node):
            if (
                isinstance(inner, ast.Attribute)
                and isinstance(inner.value, ast.Attribute)
                and inner.value.attr == "fs"
                and (inner.attr in unchecked or inner.attr in ("_os", "_fake", "fake", "os"))
            ):
                found.append(f"{node.name}: self.fs.{inner.attr}")
    assert not found
