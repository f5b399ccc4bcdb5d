"""The default port taken at bind time: a free port when it was only the default, an error when it was asked for."""

from __future__ import annotations

import socket

import pytest

from endpoint_fixtures import guarded_env
from stsmon.endpoint.process import start_endpoint, stop_endpoint
from stsmon.endpoint.server import ServerSpec
from stsmon.errors import StsmonError
from stsmon.state import StateDir


@pytest.fixture
def taken_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_a_default_port_in_use_falls_back_to_a_free_one(tmp_path, toy_model_dir, taken_port):
    state = StateDir(tmp_path / "state")
    spec = ServerSpec(endpoint_name="e", model_dir=str(toy_model_dir), port=taken_port, port_fallback=True, workers=1)
    record = start_endpoint(state, spec, env=guarded_env())
    try:
        assert record["status"] == "InService" and record["port"] not in (0, taken_port)
    finally:
        stop_endpoint(state, "e")


def test_an_asked_for_port_in_use_is_a_clear_error(tmp_path, toy_model_dir, taken_port):
    state = StateDir(tmp_path / "state")
    spec = ServerSpec(endpoint_name="e", model_dir=str(toy_model_dir), port=taken_port, workers=1)
    with pytest.raises(StsmonError, match=str(taken_port)):
        start_endpoint(state, spec, env=guarded_env())
