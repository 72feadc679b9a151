"""Runs pyfakefs's own real-filesystem test cases and prints each test id's outcome as JSON.

Usage: ``TEST_REAL_FS=1 TMPDIR=<base> python pyfakefs_realfs_runner.py [--not-in-docker]
MODULE[.CLASS] ...`` (a MODULE is a name in ``pyfakefs.tests``). ``--not-in-docker`` runs the
cases pyfakefs skips inside a Docker container (``IN_DOCKER``: the scandir inode tests, as
overlayfs may give a directory entry another inode number than stat): for a base directory
whose filesystem agrees with itself. Only the cases whose ``use_real_fs()`` is true are
run: the ones pyfakefs checks against the real filesystem. Their base directories are
``tempfile.mkdtemp()``, so under ``TMPDIR``. The last line of stdout is a JSON object mapping
each test id to ``"pass"``, ``"fail"``, ``"error"`` or ``"skip"``. Used by
``test_pyfakefs_suite.py``, both natively and as the program inside a Sandbox.
"""

from __future__ import annotations

import importlib
import json
import sys
import unittest
from collections.abc import Iterator


def _cases(suite: unittest.TestSuite) -> Iterator[unittest.TestCase]:
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            yield from _cases(test)
        else:
            yield test


def _real_fs(case: unittest.TestCase) -> bool:
    use_real_fs = getattr(case, "use_real_fs", None)
    return callable(use_real_fs) and bool(use_real_fs())


class _Outcomes(unittest.TextTestResult):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.outcomes: dict[str, str] = {}

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self.outcomes[test.id()] = "pass"

    def addFailure(self, test: unittest.TestCase, err: object) -> None:
        super().addFailure(test, err)  # type: ignore[arg-type]
        self.outcomes[test.id()] = "fail"

    def addError(self, test: unittest.TestCase, err: object) -> None:
        super().addError(test, err)  # type: ignore[arg-type]
        self.outcomes[test.id()] = "error"

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        self.outcomes[test.id()] = "skip"

    def addExpectedFailure(self, test: unittest.TestCase, err: object) -> None:
        super().addExpectedFailure(test, err)  # type: ignore[arg-type]
        self.outcomes[test.id()] = "pass"

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        super().addUnexpectedSuccess(test)
        self.outcomes[test.id()] = "fail"


def main(args: list[str]) -> int:
    not_in_docker = "--not-in-docker" in args
    names = [arg for arg in args if arg != "--not-in-docker"]
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for name in names:
        module_name, _, class_name = name.partition(".")
        module = importlib.import_module(f"pyfakefs.tests.{module_name}")
        if not_in_docker and hasattr(module, "IN_DOCKER"):
            module.IN_DOCKER = False  # (each module has its own name from pyfakefs.helpers)
        loaded = (
            loader.loadTestsFromTestCase(getattr(module, class_name))
            if class_name
            else loader.loadTestsFromModule(module)
        )
        suite.addTests(case for case in _cases(loaded) if _real_fs(case))
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2, resultclass=_Outcomes)
    result = runner.run(suite)
    sys.stdout.write(json.dumps(result.outcomes, sort_keys=True) + "\n")  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
