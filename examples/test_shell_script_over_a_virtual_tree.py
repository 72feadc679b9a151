"""A shell script using coreutils over a tree that exists only in memory."""

ROTATE = r"""
set -e
cd /var/log/app
for f in *.log; do
    mv "$f" "$f.1"
done
touch current.log
ls
"""


def test_log_rotation_script(libcfake):
    libcfake.fs.create_file("/var/log/app/access.log", contents="GET /\n")
    libcfake.fs.create_file("/var/log/app/error.log", contents="oops\n")

    result = libcfake.run(["sh", "-c", ROTATE], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["access.log.1", "current.log", "error.log.1"]
    assert libcfake.fs.read_text("/var/log/app/error.log.1") == "oops\n"
    assert [e.path for e in libcfake.journal if e.call == "rename"] == [
        "/var/log/app/access.log",
        "/var/log/app/error.log",
    ]


def test_find_and_grep_over_the_tree(libcfake):
    for name, text in {"a.conf": "port=1", "sub/b.conf": "port=2", "sub/c.txt": "port=3"}.items():
        libcfake.fs.create_file(f"/etc/app/{name}", contents=text + "\n")

    result = libcfake.run(
        ["sh", "-c", "find /etc/app -name '*.conf' | sort | xargs grep -h port"],
        capture_output=True,
        text=True,
    )

    assert result.stdout == "port=1\nport=2\n"
