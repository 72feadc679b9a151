"""Without the pytest fixture: a Sandbox in a ``with`` block, here in a ``unittest.TestCase``.

``Sandbox(strict=True)`` does what the fixture does by default: leaving the block raises
``libcfake.ViolationError`` with the report when a program made a call nothing planned. It is
an ``AssertionError``, so unittest (and pytest) count a failure, not an error.
"""

import unittest

from libcfake import Sandbox, ViolationError


class TestGrepOverAConfig(unittest.TestCase):
    def test_grep_finds_the_port(self):
        with Sandbox(strict=True) as sb:
            sb.fs.create_file("/etc/app.conf", contents="name = app\nport = 8080\n")
            result = sb.run(["grep", "port", "/etc/app.conf"], capture_output=True, text=True)

        self.assertEqual(result.stdout, "port = 8080\n")

    def test_a_name_the_test_did_not_plan_fails_the_block(self):
        with self.assertRaises(ViolationError) as raised, Sandbox(strict=True) as sb:
            sb.run(["getent", "hosts", "db.internal"], capture_output=True)

        self.assertIsInstance(raised.exception, AssertionError)
        self.assertIn("db.internal", str(raised.exception))
        self.assertEqual({v.call for v in raised.exception.violations}, {"getaddrinfo"})


if __name__ == "__main__":
    unittest.main()
