"""A Python client run as a real program talks to a pytest-httpserver API by its host name.

pytest-httpserver's ``httpserver`` fixture listens on localhost; ``net.route`` takes the server
itself and gives the name an address in the DNS model. The program never knows.
"""

import sys

import pytest

pytest.importorskip("pytest_httpserver")

CLIENT = """
import json, sys, urllib.request
with urllib.request.urlopen("http://api.example.test/v1/users/7", timeout=20) as response:
    user = json.load(response)
print(user["name"])
"""


def test_a_client_fetches_a_user_from_the_fake_api(libcfake, httpserver):
    httpserver.expect_request("/v1/users/7").respond_with_json({"name": "Ada"})
    libcfake.net.route(("api.example.test", 80), to=httpserver)

    result = libcfake.run([sys.executable, "-c", CLIENT], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "Ada\n"
    httpserver.check_assertions()  # the request arrived as expected
    assert libcfake.journal.names_resolved() == ["api.example.test"]
