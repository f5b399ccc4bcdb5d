"""Running the step scripts as SageMaker jobs run them: subprocesses with ``SM_*`` env in /opt/ml-like folders.

A module of its own (not conftest.py) so tests import it by a name no other test folder uses:
``from conftest import ...`` picks whichever conftest.py was imported first when several folders
are collected in one pytest run.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pairs_fixture

SCRIPTS = Path(__file__).resolve().parents[2] / "processing_scripts"


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
