"""The pytest plugin, exercised with pytester in a separate pytest process."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

PASSING = """
def test_cat_reads_a_virtual_file(libcfake):
    libcfake.fs.create_file("/etc/app.conf", contents="port = 8080\\n")
    result = libcfake.run(["cat", "/etc/app.conf"], capture_output=True, text=True)
    assert result.stdout == "port = 8080\\n"
"""

UNMODELLED = """
def test_program_resolves_an_unplanned_name(libcfake):
    libcfake.run(["getent", "ahosts", "surprise.example.com"], capture_output=True)
"""


def test_a_passing_test_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_an_unmodelled_call_fails_the_test_with_a_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(UNMODELLED)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, errors=1)  # the test body passed; teardown reports
    result.stdout.fnmatch_lines([
        "*libcfake: 1 call(s) that no model or rule covered:*",
        "*getaddrinfo*surprise.example.com*EAI noname*",
        "*why: surprise.example.com is in no zone of the DNS model*",
        "*libcfake.dns.add('surprise.example.com'*",
    ])  # fmt: skip


def test_warning_mode_reports_violations_without_failing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(UNMODELLED)
    result = pytester.runpytest_subprocess("--libcfake-warn")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*LibcfakeViolationWarning*"])


def test_the_marker_sets_options_per_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.libcfake(strict=False, cwd="/tmp")
        def test_relaxed(libcfake):
            result = libcfake.run(["sh", "-c", "pwd; getent ahosts x.test"],
                                  capture_output=True, text=True)
            assert result.stdout.startswith("/tmp")

        @pytest.mark.libcfake(colour="blue")
        def test_bad_option(libcfake):
            pass
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, errors=1, warnings=1)
    result.stdout.fnmatch_lines(["*unexpected keyword argument 'colour'*"])


def test_trace_adds_the_journal_to_the_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest_subprocess("--libcfake-trace", "-rP")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*libcfake journal*", "*open /etc/app.conf -> fd*"])
    traces = list(pytester.path.glob(".pytest_cache/d/libcfake-trace/*.log"))
    assert len(traces) == 1 and "open /etc/app.conf -> fd" in traces[0].read_text()


def test_the_ini_file_can_relax_strictness(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nlibcfake_strict = false\n")
    pytester.makepyfile(UNMODELLED)
    pytester.runpytest_subprocess().assert_outcomes(passed=1, warnings=1)


def test_runs_under_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(
        "\n".join(
            PASSING.replace("test_cat_reads_a_virtual_file", f"test_cat_{i}") for i in range(6)
        )
    )
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=6)


def test_a_test_using_pyfakefs_shares_its_filesystem_with_programs(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        def test_bridge(fs, libcfake):
            fs.create_file("/etc/app.conf", contents="from pyfakefs\\n")
            with open("/etc/other.conf", "w") as f:  # ordinary open(), patched by pyfakefs
                f.write("written with open()\\n")
            result = libcfake.run(["cat", "/etc/app.conf", "/etc/other.conf"],
                                  capture_output=True, text=True)
            assert result.stdout == "from pyfakefs\\nwritten with open()\\n", result.stderr
            libcfake.run(["sh", "-c", "echo back > /etc/back.txt"], check=True)
            with open("/etc/back.txt") as f:  # what the program wrote, through pyfakefs
                assert f.read() == "back\\n"
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_an_asyncio_test_runs_programs_without_blocking_the_loop(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import asyncio

        def test_async(libcfake):
            libcfake.fs.create_file("/greeting", contents="hi\\n")

            async def main():
                proc = await libcfake.create_subprocess_exec(
                    "cat", "/greeting", stdout=asyncio.subprocess.PIPE)
                out, _ = await proc.communicate()
                return out

            assert asyncio.run(main()) == b"hi\\n"
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_the_ini_file_sets_the_errno_of_violations(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nlibcfake_strict = false\nlibcfake_violation_errno = EPERM\n")
    pytester.makepyfile(
        """
        def test_errno(libcfake):
            result = libcfake.run(["sh", "-c", "echo x > /usr/forbidden"],
                                  capture_output=True, text=True)
            assert "Operation not permitted" in result.stderr
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1, warnings=1)


def test_programs_read_the_projects_own_scripts_but_cannot_write_there(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        app="""
        import sys
        print("app says", sys.argv[1:])
        """
    )
    (pytester.path / "hello.sh").write_text("#!/bin/sh\necho hello from the project\n")
    (pytester.path / "hello.sh").chmod(0o755)
    pytester.makepyfile(
        test_project="""
        import pathlib
        import sys

        import pytest

        HERE = pathlib.Path(__file__).parent

        def test_a_python_script(libcfake):
            result = libcfake.run([sys.executable, str(HERE / "app.py"), "x"],
                                  capture_output=True, text=True)
            assert result.stdout == "app says ['x']\\n", result.stderr

        def test_a_shell_script_relative_to_the_project(libcfake):
            result = libcfake.run(["./hello.sh"], cwd=str(HERE), capture_output=True, text=True)
            assert result.stdout == "hello from the project\\n", result.stderr

        def test_the_editable_package_imports(libcfake):
            # libcfake itself is installed in development mode (pip install -e)
            code = "import libcfake; print(libcfake.__name__)"
            result = libcfake.run([sys.executable, "-c", code], capture_output=True, text=True)
            assert result.stdout == "libcfake\\n", result.stderr

        @pytest.mark.libcfake(strict=False)
        def test_writing_into_the_project_is_a_violation(libcfake):
            libcfake.run(["sh", "-c", f"echo x > {HERE}/written.txt"], capture_output=True)
            assert [v.call for v in libcfake.violations] == ["open"]
            assert not (HERE / "written.txt").exists()
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=4)
    assert not (pytester.path / "written.txt").exists()


def test_the_marker_adds_mounts_and_base_mounts_replaces_them(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = tmp_path_factory.mktemp("data")
    (data / "table.csv").write_text("a,b\n")
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.libcfake(mounts=[{str(data)!r}])
        def test_added(libcfake):
            result = libcfake.run(["cat", {str(data / "table.csv")!r}],
                                  capture_output=True, text=True)
            assert result.stdout == "a,b\\n", result.stderr

        @pytest.mark.libcfake(base_mounts=["/usr", "/lib", "/lib64", "/bin",
                                           "/etc/ld.so.cache"], mounts=[{str(data)!r}])
        def test_replaced(libcfake):
            result = libcfake.run(["cat", {str(data / "table.csv")!r}],
                                  capture_output=True, text=True)
            assert result.stdout == "a,b\\n", result.stderr
            assert not libcfake.fs.exists("/etc/passwd")  # a default left out
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_a_rule_nothing_used_is_a_warning_or_with_the_ini_option_an_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import errno

        def test_typo_in_a_rule(libcfake):
            libcfake.fs.create_file("/etc/app.conf", contents="x")
            libcfake.fail("open", "/etc/app.cnf", errno.EACCES)  # a typo: never fires
            libcfake.run(["cat", "/etc/app.conf"], capture_output=True)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*LibcfakeUnusedRuleWarning*", "*libcfake.fail('open', '/etc/app.cnf'*"]
    )
    pytester.makeini("[pytest]\nlibcfake_unused_rules = error\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*rules and routes this test set up that nothing used*"])


def test_a_failing_test_names_host_files_its_program_did_not_find(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config = tmp_path_factory.mktemp("host") / "app.ini"
    config.write_text("[app]\n")
    pytester.makeini("[pytest]\nlibcfake_mount_rootdir = false\n")
    pytester.makepyfile(
        f"""
        def test_forgot_the_config(libcfake):
            result = libcfake.run(["cat", {str(config)!r}], capture_output=True)
            assert result.returncode == 0
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*libcfake: missing in the sandbox, present on the host*"])
    assert f"\n  {config}\n" in result.stdout.str()
    assert f"@pytest.mark.libcfake(mounts=['{config}'])" in result.stdout.str()


def test_a_failing_test_names_relative_paths_that_exist_where_pytest_runs(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "scripts").mkdir()
    (pytester.path / "scripts" / "app.py").write_text("print('app')\n")
    pytester.makepyfile(
        """
        import sys

        def test_the_script_by_its_relative_path(libcfake):
            result = libcfake.run([sys.executable, "scripts/app.py"], capture_output=True)
            assert result.returncode == 0

        def test_the_script_run_where_the_hint_says(libcfake, request):
            result = libcfake.run([sys.executable, "scripts/app.py"], capture_output=True,
                                  text=True, cwd=str(request.config.invocation_params.dir))
            assert result.stdout == "app\\n", result.stderr
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines([
        "*libcfake: relative paths, looked for in the sandbox's working directory*",
        "*programs start in the sandbox's working directory, / (the model's)*",
    ])  # fmt: skip
    shown = result.stdout.str()
    assert "\n  scripts/app.py\n" in shown and "\n  scripts\n" not in shown
    assert f"run(..., cwd={str(pytester.path)!r})" in shown
