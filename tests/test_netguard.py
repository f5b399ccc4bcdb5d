"""The suite's network guard works, in this process and in Python subprocesses."""

import socket
import subprocess
import sys

import pytest

import netguard_impl


def test_connect_to_public_address_is_refused():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(netguard_impl.NetworkBlocked):
            sock.connect(("93.184.216.34", 443))


def test_name_resolution_of_public_host_is_refused():
    with pytest.raises(netguard_impl.NetworkBlocked):
        socket.getaddrinfo("aws.amazon.com", 443)


def test_loopback_is_allowed():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=2):
            pass


def test_subprocess_is_guarded(subprocess_env):
    code = "import socket; socket.create_connection(('1.1.1.1', 80), timeout=2)"
    result = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "blocked by the test suite" in result.stderr
