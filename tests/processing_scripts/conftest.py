"""Fixtures for the step scripts: imports as SageMaker runs them, /opt/ml-like folders, subprocess runs."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "processing_scripts"
# The scripts import their siblings as top-level modules (SageMaker runs them
# from the code folder), and pickled models refer to featurizer.PairFeaturizer.
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pairs_fixture  # noqa: E402

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


def run_script(script: str, args: list[str], env: dict[str, str], cwd: Path | None = None,
               check: bool = True) -> subprocess.CompletedProcess:
    """Run a step script like a SageMaker job does: ``python <script> <args>`` with ``SM_*`` env."""
    proc = subprocess.run([sys.executable, str(SCRIPTS / script), *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def pack_model(model_dir: Path, dest_dir: Path) -> Path:
    """Pack a model folder as the Training job does (model.tar.gz of the folder's contents)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    archive = dest_dir / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for item in sorted(model_dir.iterdir()):
            tar.add(item, arcname=item.name)
    return archive


class OptMl:
    """Folders laid out like the containers' /opt/ml for one pipeline run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.input = root / "processing" / "input" / "data"
        self.train = root / "processing" / "train"
        self.validation = root / "processing" / "validation"
        self.test = root / "processing" / "test"
        self.model = root / "model"  # training job SM_MODEL_DIR
        self.packed = root / "processing" / "model"  # model.tar.gz for evaluate / baseline
        self.evaluation = root / "processing" / "evaluation"
        self.baseline = root / "processing" / "baseline"


def run_pipeline(root: Path, rows, env: dict[str, str], extra_train_args=()) -> OptMl:
    """preprocess -> train -> (pack) -> evaluate -> baseline, as subprocesses, like SageMaker."""
    ml = OptMl(root)
    pairs_fixture.write_msrp(ml.input / "pairs.txt", rows)
    run_script("preprocess.py", ["--input", str(ml.input), "--train-dir", str(ml.train),
                                 "--validation-dir", str(ml.validation), "--test-dir", str(ml.test)], env)
    train_env = dict(env, SM_MODEL_DIR=str(ml.model), SM_CHANNEL_TRAIN=str(ml.train),
                     SM_CHANNEL_VALIDATION=str(ml.validation))
    run_script("train.py", list(extra_train_args), train_env)
    pack_model(ml.model, ml.packed)
    run_script("evaluate.py", ["--model-dir", str(ml.packed), "--test-dir", str(ml.test),
                               "--output-dir", str(ml.evaluation), "--bootstrap-samples", "200"], env)
    run_script("baseline.py", ["--model-dir", str(ml.packed), "--validation-dir", str(ml.validation),
                               "--output-dir", str(ml.baseline), "--bootstrap-samples", "200"], env)
    return ml


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
