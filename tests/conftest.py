"""Suite-wide fixtures: no network but loopback, the repo root, the MSRP corpus."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from stsmon.clock import FixedClock

REPO_ROOT = Path(__file__).resolve().parent.parent
NETGUARD_DIR = Path(__file__).resolve().parent / "_netguard"

sys.path.insert(0, str(NETGUARD_DIR))
import netguard_impl  # noqa: E402

netguard_impl.install()

import scheduling  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """The longest work units first (tests/scheduling.py), so no worker is left with one at the end."""
    scheduling.order_items(items)


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with the files that share session fixtures kept together (tests/scheduling.py)."""
    if config.getvalue("dist") == "loadfile":
        return scheduling.SharedFixtureScheduling(config, log)
    return None

#: Environment variable naming a folder with the MSRP files (tests, CI, demo).
MSRP_ENV = "STSMON_MSRP_DIR"
MSRP_FILES = ("msr_paraphrase_train.txt", "msr_paraphrase_test.txt", "stsmsrpc.txt")


def msrp_dir() -> Path:
    """``$STSMON_MSRP_DIR``, else ``../shared/data/msrp`` next to the repo."""
    return Path(os.environ.get(MSRP_ENV) or REPO_ROOT.parent / "shared" / "data" / "msrp")


#: What the CLI reads to find the AWS region and profile (stsmon/aws/environment.py).
AMBIENT_AWS = ("AWS_REGION", "AMAZON_REGION", "AWS_DEFAULT_REGION", "AMAZON_DEFAULT_REGION", "AWS_PROFILE",
               "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@pytest.fixture(autouse=True)
def _no_ambient_aws(monkeypatch, tmp_path_factory):
    """The developer's own AWS region, profile, credentials and config files stay
    out of every test (a test that wants them sets its own)."""
    for name in AMBIENT_AWS:
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path_factory.getbasetemp() / "no-aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


#: The suite's "now": years from any day it runs on, so nothing can lean on the wall clock.
TEST_NOW = datetime(2033, 5, 17, 12, 30, tzinfo=timezone.utc)


@pytest.fixture
def clock() -> FixedClock:
    """A clock at :data:`TEST_NOW` that moves 1 ms per read (successive records get ordered times)."""
    return FixedClock(TEST_NOW, tick=timedelta(milliseconds=1))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def msrp() -> Path:
    """The folder with the full MSRP corpus; fails (not skips) when it is missing."""
    folder = msrp_dir()
    missing = [f for f in MSRP_FILES if not (folder / f).is_file()]
    if missing:
        pytest.fail(f"MSRP corpus not found: {folder} lacks {missing}; set {MSRP_ENV}")
    return folder


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for Python subprocesses: the same network guard, no AWS credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NETGUARD_DIR), env.get("PYTHONPATH", "")]))
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


@pytest.fixture
def local_clients(clock):
    """``make(state, config=None, clock=clock)``: the local target's boto3-shaped clients over a state
    folder (stsmon.clients), every call checked against botocore's model and recorded in ``.call_log``."""
    from stsmon.clients import make_clients
    from stsmon.clients.validation import CallLog
    from stscontracts.config import Config

    made = []

    def make(state, *, config=None, clock=clock):
        clients = make_clients("local", config=config or Config(), state=state, clock=clock, call_log=CallLog())
        made.append(clients)
        return clients

    yield make
    for clients in made:
        clients.close()


@pytest.fixture
def boto_client():
    """``make(service, region="us-east-1")``: a real botocore client with dummy credentials, for botocore's
    Stubber (no network is used)."""
    import botocore.session

    def make(service: str, region: str = "us-east-1"):
        return botocore.session.get_session().create_client(service, region_name=region, aws_access_key_id="x",
                                                            aws_secret_access_key="y")

    return make


@pytest.fixture
def aws_clients(clock, tmp_path):
    """``make({"sagemaker": client, ...}, state=None, config=None)``: the aws target's Clients over the
    given boto3 clients (Stubber-wrapped, or moto's), as stsmon.clients.make_clients builds them."""
    from stscontracts.config import Config
    from stsmon.aws.runtime import AwsRuntime
    from stsmon.clients.factory import AWS_TIMING, Clients
    from stsmon.state import StateDir

    def make(services, *, state=None, config=None):
        cfg = config or Config()
        folder = state or StateDir(tmp_path / "state")
        return Clients("aws", cfg, folder, clock, AWS_TIMING, cfg.region,
                       AwsRuntime(config=cfg, state=folder, clock=clock), services.__getitem__)

    return make
