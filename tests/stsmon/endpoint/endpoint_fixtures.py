"""Fixtures of the endpoint tests (and ``stsmon traffic``'s): a toy model package and real
background servers. ``conftest.py`` here re-exports them; other folders import them.

The toy model (``toy_model/``) follows the serving contract of
``processing_scripts/inference.py`` (``transform_fn`` answering CSV / JSON /
JSON Lines, client errors 400/406/415 with their status, the local
``batch_transform_fn``) and pickles a featurizer class from a sibling module,
like the real package; ``toy_functions_model_dir`` serves the same toy through
``input_fn``/``predict_fn``/``output_fn``. Servers run as real background
processes (``stsmon.endpoint.process.start_endpoint``) on a free loopback
port, under the network guard.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from stsmon.endpoint.capture import CaptureSettings
from stsmon.endpoint.process import start_endpoint, stop_endpoint
from stsmon.endpoint.server import ServerSpec
from stsmon.endpoint.worker import WorkerLimits
from stsmon.state import StateDir

HERE = Path(__file__).resolve().parent
TOY = HERE / "toy_model"
NETGUARD = HERE.parent.parent / "_netguard"


def guarded_env() -> dict[str, str]:
    """Like the suite's ``subprocess_env`` fixture, usable from session fixtures."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NETGUARD), env.get("PYTHONPATH", "")]))
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def build_toy_model(out: Path, work: int = 0) -> Path:
    subprocess.run([sys.executable, str(TOY / "build.py"), str(out), str(work)], check=True, env=guarded_env())
    return out


@pytest.fixture(scope="session")
def toy_builder():
    """``toy_builder(out_dir, work=0) -> out_dir``: build a toy model package."""
    return build_toy_model


@pytest.fixture(scope="session")
def server_env() -> dict[str, str]:
    """The environment background servers of these tests run with (network guard on)."""
    return guarded_env()


@pytest.fixture(scope="session")
def toy_model_dir(tmp_path_factory) -> Path:
    return build_toy_model(tmp_path_factory.mktemp("toy") / "model")


@pytest.fixture(scope="session")
def toy_functions_model_dir(tmp_path_factory) -> Path:
    """The toy served through input_fn/predict_fn/output_fn instead of transform_fn."""
    out = build_toy_model(tmp_path_factory.mktemp("toy-functions") / "model")
    (out / "code" / "inference.py").write_bytes((TOY / "functions" / "inference.py").read_bytes())
    return out


@pytest.fixture
def isolated_imports() -> Iterator[None]:
    """Undo what loading a model package does to ``sys.path``/``sys.modules``
    (forget the package's own modules; installed libraries stay imported)."""
    path = list(sys.path)
    before = dict(sys.modules)
    installed = (sys.prefix, sys.base_prefix)
    yield
    sys.path[:] = path
    for name, module in list(sys.modules.items()):
        if before.get(name) is module:
            continue
        file = getattr(module, "__file__", None) or ""
        if name in before:  # replaced (e.g. another `inference` imported earlier in this process): put it back
            sys.modules[name] = before[name]
        elif file and not file.startswith(installed):
            del sys.modules[name]


class Server:
    """A running background endpoint server (what ``start_endpoint`` returned)."""

    def __init__(self, state: StateDir, record: dict, capture: CaptureSettings | None) -> None:
        self.state = state
        self.record = record
        self.name = record["endpoint_name"]
        self.url = record["url"]
        self.port = record["port"]
        self.capture = capture

    @property
    def capture_root(self) -> Path:
        return self.capture.endpoint_folder(self.name)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def ping(self) -> int:
        return self.request("GET", "/ping")[0]

    def stop(self) -> None:
        stop_endpoint(self.state, self.name)


class ServerFactory:
    """Starts background servers under one folder and stops them all at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[Server] = []

    def __call__(self, model_dir: Path, *, name: str = "toy-endpoint", capture: bool = True,
                 sampling: float = 100.0, workers: int = 1, limits: WorkerLimits | None = None,
                 state: StateDir | None = None, flush_interval: float = 0.2, env: dict | None = None,
                 capture_folder: Path | None = None) -> Server:
        state = state or StateDir(self.folder / "state")
        settings = None
        if capture:
            folder = capture_folder or state.s3_path("s3://bucket/sts/datacapture")
            settings = CaptureSettings(folder=folder, destination_uri="s3://bucket/sts/datacapture",
                                       sampling_percentage=sampling, flush_interval=flush_interval)
        spec = ServerSpec(endpoint_name=name, model_dir=str(model_dir), model_env=env or {}, port=0,
                          workers=workers, capture=settings, limits=limits or WorkerLimits())
        record = start_endpoint(state, spec, env=guarded_env())
        server = Server(state, record, settings)
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.started:
            try:
                server.stop()
            except Exception:  # already stopped (or its record removed) by the test
                pass


@pytest.fixture
def start_server(tmp_path) -> Iterator[ServerFactory]:
    """``start_server(model_dir, **options) -> Server``; every server is stopped at teardown."""
    factory = ServerFactory(tmp_path)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def module_servers(tmp_path_factory) -> Iterator[ServerFactory]:
    """Like ``start_server`` for servers shared by a test module."""
    factory = ServerFactory(tmp_path_factory.mktemp("servers"))
    yield factory
    factory.stop_all()


@pytest.fixture(scope="session")
def toy_server(tmp_path_factory, toy_model_dir) -> Iterator[Server]:
    """One toy endpoint (``toy-endpoint``, one worker, capture on) shared by the files that only send it
    requests (test_endpoint_contract.py, test_http_framing.py: one work unit, tests/scheduling.py)."""
    factory = ServerFactory(tmp_path_factory.mktemp("toy-server"))
    yield factory(toy_model_dir, name="toy-endpoint", workers=1)
    factory.stop_all()


@pytest.fixture
def runtime_client():
    """``runtime_client(url)``: a real boto3 ``sagemaker-runtime`` client for a local
    endpoint (dummy credentials, no retries)."""
    import boto3
    from botocore.config import Config

    def make(url: str):
        return boto3.client(
            "sagemaker-runtime", region_name="us-east-1", endpoint_url=url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=70),
        )

    return make


def host_port(url: str) -> tuple[str, int]:
    u = urlparse(url)
    return u.hostname, u.port
