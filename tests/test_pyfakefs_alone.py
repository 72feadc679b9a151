"""Installing libcfake must not change what pyfakefs's ``fs`` fixture does in other tests.

Each test here runs a small suite in a fresh pytest process, once with the libcfake plugin (it is
installed, so pytest loads it) and once with ``-p no:libcfake``, and checks from outside: the same
outcomes, a real directory named like a fake one still whole on the real disk, and nothing the
suite made in its fake filesystem on the real one.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

#: Tests that use only pyfakefs. Each prints the paths it made, which must not exist for real.
PYFAKEFS_ONLY = """
import os
import shutil
import tempfile

VICTIM = {victim!r}  # exists on the real disk, with a canary in it


def test_rmtree_of_a_fake_tree_named_like_a_real_one(fs):
    fs.create_file(VICTIM + "/fake.txt", contents="fake")
    shutil.rmtree(VICTIM)
    assert not os.path.exists(VICTIM)


def test_move_of_a_fake_tree_named_like_a_real_one(fs):
    fs.create_file(VICTIM + "/fake.txt", contents="fake")
    shutil.move(VICTIM, "/moved")
    assert open("/moved/fake.txt").read() == "fake"
    assert not os.path.exists(VICTIM)


def test_mkstemp(fs):
    fd, path = tempfile.mkstemp()
    os.write(fd, b"data")
    os.close(fd)
    assert open(path).read() == "data"
    print("MADE", path)


def test_mkdtemp_and_copytree(fs):
    made = tempfile.mkdtemp()
    print("MADE", made)
    fs.create_file("/src/a/b.txt", contents="b")
    shutil.copytree("/src", made + "/copy")
    assert open(made + "/copy/a/b.txt").read() == "b"
    fs.create_dir(os.path.dirname(VICTIM))
    shutil.copy(made + "/copy/a/b.txt", VICTIM + "-copied.txt")
    print("MADE", VICTIM + "-copied.txt")
    assert os.path.exists(VICTIM + "-copied.txt")


def test_temporary_directory(fs):
    with tempfile.TemporaryDirectory() as name:
        print("MADE", name)
        with open(os.path.join(name, "x"), "w") as file:
            file.write("1")
        assert os.listdir(name) == ["x"]
    assert not os.path.exists(name)


def test_named_temporary_file(fs):
    with tempfile.NamedTemporaryFile("w", delete=False) as file:
        file.write("named")
    print("MADE", file.name)
    assert open(file.name).read() == "named"
"""

#: pyfakefs and libcfake in one test: the test's own tempfile/shutil calls stay in the fake
#: filesystem, and programs see it.
TOGETHER = """
import os
import shutil
import tempfile

VICTIM = {victim!r}


def test_fs_and_libcfake(fs, libcfake):
    made = tempfile.mkdtemp()
    print("MADE", made)
    with open(os.path.join(made, "app.conf"), "w") as file:
        file.write("port = 1\\n")
    shutil.copytree(made, "/etc/app")
    fs.create_file(VICTIM + "/fake.txt", contents="fake")
    result = libcfake.run(["cat", "/etc/app/app.conf", VICTIM + "/fake.txt"],
                          capture_output=True, text=True)
    assert result.stdout == "port = 1\\nfake", result.stderr
    libcfake.run(["sh", "-c", "echo back > /etc/app/back.txt"], check=True)
    assert open("/etc/app/back.txt").read() == "back\\n"
    shutil.rmtree(VICTIM)
    assert not os.path.exists(VICTIM)
"""


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A real directory, with a canary file, that the suites also create in a fake filesystem."""
    path = tmp_path / "victim"
    path.mkdir()
    (path / "canary.txt").write_text("real")
    return path


def _run(pytester: pytest.Pytester, suite: str, victim: Path, *args: str) -> dict[str, str]:
    pytester.makepyfile(test_suite=textwrap.dedent(suite.format(victim=str(victim))))
    result = pytester.runpytest_subprocess("-s", "-rA", "-p", "no:cacheprovider", *args)
    found = re.findall(r"^(PASSED|FAILED|ERROR) test_suite.py::(\w+)", result.stdout.str(), re.M)
    outcomes = {name: outcome for outcome, name in found}
    assert outcomes, result.stdout.str()
    made = re.findall(r"^MADE (\S+)", result.stdout.str(), re.MULTILINE)
    assert made or "libcfake" in suite, result.stdout.str()
    for path in made:
        assert not Path(path).exists(), f"{path} was made on the real disk"
    assert (victim / "canary.txt").read_text() == "real", "the real directory was changed"
    return outcomes


def test_pyfakefs_only_tests_behave_as_without_the_plugin(
    pytester: pytest.Pytester, victim: Path
) -> None:
    without = _run(pytester, PYFAKEFS_ONLY, victim, "-p", "no:libcfake")
    with_plugin = _run(pytester, PYFAKEFS_ONLY, victim)
    assert with_plugin == without
    assert set(with_plugin.values()) == {"PASSED"}, with_plugin


def test_pyfakefs_and_libcfake_together_keep_the_test_in_the_fake_filesystem(
    pytester: pytest.Pytester, victim: Path
) -> None:
    outcomes = _run(pytester, TOGETHER, victim)
    assert outcomes == {"test_fs_and_libcfake": "PASSED"}


def test_the_master_uses_the_real_system_while_pyfakefs_patches(victim: Path) -> None:
    """A Sandbox made inside a pyfakefs Patcher (not through the fixture) still serves."""
    from pyfakefs.fake_filesystem_unittest import Patcher

    from libcfake import Sandbox

    with Patcher() as patcher:
        assert patcher.fs is not None
        patcher.fs.create_file("/etc/motd", contents="fake motd\n")
        with Sandbox(fake_filesystem=patcher.fs) as sb:
            result = sb.run(["cat", "/etc/motd"], capture_output=True, text=True, timeout=60)
            assert result.stdout == "fake motd\n", result.stderr
            assert not sb.violations
    assert (victim / "canary.txt").read_text() == "real"
