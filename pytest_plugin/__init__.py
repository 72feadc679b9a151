"""libcfake's pytest plugin (registered as the ``pytest11`` entry point ``libcfake``).

    def test_app_reads_its_config(libcfake):
        libcfake.fs.create_file("/etc/app.conf", contents="port = 8080\\n")
        result = libcfake.run(["/usr/bin/app", "--check"], capture_output=True, text=True)
        assert result.returncode == 0

``libcfake`` is a fresh :class:`libcfake.Sandbox` per test. Calls that no model or rule covered
fail the test at teardown with a report (``--libcfake-warn`` or ``libcfake_strict = false`` turn
them into warnings), and ``--libcfake-trace`` adds every forwarded call to the test's report.
"""
