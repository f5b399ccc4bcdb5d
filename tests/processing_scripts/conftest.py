"""Fixtures for the step scripts: imports as SageMaker runs them, /opt/ml-like folders, subprocess runs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "processing_scripts"
# The scripts import their siblings as top-level modules (SageMaker runs them
# from the code folder), and pickled models refer to featurizer.PairFeaturizer.
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pairs_fixture  # noqa: E402
from script_runs import OptMl, run_pipeline  # noqa: E402

SIBLINGS = tuple(p.stem for p in SCRIPTS.glob("*.py"))


@pytest.fixture(autouse=True)
def _nothing_written_to_the_real_opt_ml():
    """The scripts' defaults are SageMaker's /opt/ml paths: a test that forgets to pass one of them
    would write on this machine. Fail it instead."""
    existed = Path("/opt/ml").exists()
    yield
    assert existed or not Path("/opt/ml").exists(), "a test wrote under /opt/ml: pass every /opt/ml path as an argument"


@pytest.fixture(autouse=True)
def _scripts_import_from_processing_scripts():
    """``import inference`` (or featurizer ...) must give processing_scripts' module even when
    another test in this process loaded a model package's own copy under the same name."""
    for name in SIBLINGS:
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None) if module is not None else None
        if module is not None and (not file or Path(file).resolve().parent != SCRIPTS):
            del sys.modules[name]
    if sys.path[0] != str(SCRIPTS):
        sys.path.insert(0, str(SCRIPTS))
    yield


@pytest.fixture(scope="session")
def scripts_dir() -> Path:
    return SCRIPTS


@pytest.fixture
def script_env(subprocess_env) -> dict[str, str]:
    env = dict(subprocess_env)
    for key in [k for k in env if k.startswith("SM_")]:
        del env[key]
    env["PYTHONWARNINGS"] = "ignore"
    return env


@pytest.fixture(scope="session")
def session_env() -> dict[str, str]:
    """Like conftest's subprocess_env, for session-scoped fixtures."""
    netguard = Path(__file__).resolve().parents[1] / "_netguard"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SM_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(netguard), env.get("PYTHONPATH", "")]))
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["PYTHONWARNINGS"] = "ignore"
    return env


@pytest.fixture(scope="session")
def binary_run(tmp_path_factory, session_env) -> OptMl:
    """The whole tiny BinaryClassification pipeline, run once per session."""
    return run_pipeline(tmp_path_factory.mktemp("binary") / "opt_ml", pairs_fixture.binary_rows(), session_env)


@pytest.fixture(scope="session")
def regression_run(tmp_path_factory, session_env) -> OptMl:
    """The whole tiny Regression pipeline, run once per session."""
    return run_pipeline(tmp_path_factory.mktemp("regression") / "opt_ml", pairs_fixture.graded_rows(),
                        session_env)
