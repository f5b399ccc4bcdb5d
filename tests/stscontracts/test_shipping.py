"""The step scripts stay standalone programs: the contracts package ships next to them.

A SageMaker job runs ``python3 /opt/ml/processing/input/code/<script>.py``
(the folder is the step-code asset) or, for training, ``python train.py`` in
the extracted ``sourcedir.tar.gz``; either way the script's folder is first on
``sys.path`` and ``import stscontracts`` must find the package *there*. Here
each script of the real staged asset (and of its archive) is imported in a
fresh interpreter started with ``-I`` (no PYTHONPATH, no user site, no
current directory), and the test asserts the package came from the staged
folder, not from this checkout. The model's ``code/`` folder is covered by
tests/processing_scripts/test_pipeline.py and by the real serving stack,
which has no copy of this repository at all (tests/serving/).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile

import pytest

from stacks.constructs.step_code import stage
from stscontracts import names

SCRIPTS = ("preprocess", "train", "evaluate", "baseline", "monitor", "inference")

PROBE = r"""
import importlib, json, sys
folder = sys.argv[1]
sys.path.insert(0, folder)  # what `python <folder>/<script>.py` does
for name in sys.argv[2:]:
    importlib.import_module(name)
print(json.dumps({name: getattr(module, "__file__", None) for name, module in sys.modules.items()
                  if name == "stscontracts" or name.startswith("stscontracts.")}))
"""


def _origins(folder, subprocess_env) -> dict[str, str]:
    proc = subprocess.run([sys.executable, "-I", "-c", PROBE, str(folder), *SCRIPTS], env=subprocess_env,
                          cwd=folder, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def staged(tmp_path_factory, repo_root):
    folder = tmp_path_factory.mktemp("code")
    stage(repo_root / "processing_scripts", folder, names.SOURCEDIR_ARCHIVE)
    return folder


@pytest.mark.slow
def test_scripts_import_the_contracts_from_the_step_code_folder(staged, subprocess_env):
    origins = _origins(staged, subprocess_env)
    assert {"stscontracts", "stscontracts.names"} <= set(origins)
    assert all(path and path.startswith(str(staged / names.PACKAGE)) for path in origins.values()), origins


@pytest.mark.slow
def test_train_imports_the_contracts_from_the_extracted_sourcedir(staged, tmp_path, subprocess_env):
    extracted = tmp_path / "opt-ml-code"
    with tarfile.open(staged / names.SOURCEDIR_ARCHIVE) as tar:
        tar.extractall(extracted, filter="data")
    origins = _origins(extracted, subprocess_env)
    assert {"stscontracts", "stscontracts.names"} <= set(origins)
    assert all(path and path.startswith(str(extracted / names.PACKAGE)) for path in origins.values()), origins
