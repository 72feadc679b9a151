"""curl talks to api.example.test — which is an HTTP server this test runs on loopback.

The route gives the name an address in the DNS model and connects curl's own socket to the
test's server; a second test shows what curl does when the API is down.
"""

import errno
import http.server
import os
import shutil
import threading

import pytest

pytestmark = [
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
    pytest.mark.skipif(
        os.environ.get("LIBCFAKE_SANITIZE") == "1",
        reason="curl deadlocks in setlocale behind the ASan build of the shim (tracked)",
    ),
]


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"status": "ok"}\n'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def api():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address
    server.shutdown()
    server.server_close()


def test_curl_reads_the_health_of_a_fake_api(libcfake, api):
    libcfake.net.route(("api.example.test", 80), to=api)

    result = libcfake.run(
        ["curl", "-sS", "--fail", "http://api.example.test/health"], capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == '{"status": "ok"}\n'
    assert libcfake.journal.connections()  # curl connected to the virtual address


def test_curl_reports_a_refused_connection(libcfake, api):
    libcfake.net.route(("api.example.test", 80), to=api)
    libcfake.net.fail("api.example.test:80", errno.ECONNREFUSED)

    result = libcfake.run(
        ["curl", "-sS", "http://api.example.test/health"], capture_output=True, text=True
    )

    assert result.returncode == 7  # curl: failed to connect
    assert "Failed to connect to api.example.test port 80" in result.stderr
