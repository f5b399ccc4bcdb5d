"""Fixtures of the real-serving-stack tests: the stack, a real model package, its container environment."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import warnings
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "processing_scripts"))
sys.path.insert(0, str(REPO / "tests" / "pipeline_code"))
sys.path.insert(0, str(REPO / "tests" / "stsmon" / "endpoint"))

import pairs_fixture  # noqa: E402
import realstack  # noqa: E402

#: A CI run must not skip these tests for want of setup (only for want of namespaces).
IN_CI = bool(os.environ.get("CI"))


@pytest.fixture(scope="session")
def real_stack() -> None:
    """Skips (with the reason) when the rebuilt serving stack or network namespaces
    are unavailable; fails instead of skipping for a missing stack in CI."""
    reason = realstack.namespace_unavailable_reason()
    if reason:
        pytest.skip(f"the real serving stack runs in a network namespace: {reason}")
    reason = realstack.unavailable_reason()
    if reason:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    note = realstack.SERVING_VENV / "PYTHON_NOTE"
    if note.is_file():
        warnings.warn(note.read_text().strip(), stacklevel=1)


def _env() -> dict[str, str]:
    netguard = REPO / "tests" / "_netguard"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SM_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(netguard), env.get("PYTHONPATH", "")]))
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _definition_environment() -> dict[str, str]:
    from pipeline_graph import all_steps

    from pipeline_code.training import build_training_definition
    from stscontracts.config import load_config

    definition = build_training_definition(load_config(), "sts/code/0123456789abcdef/")
    (container,) = all_steps(definition)["RegisterModel"]["Arguments"]["InferenceSpecification"]["Containers"]
    return dict(container["Environment"])


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A real model package: ``model.tar.gz`` (the tiny fixture corpus through
    preprocess.py and train.py, packed as the Training step packs ``/opt/ml/model``)
    and its container ``Environment``, taken from the RegisterModel step of the
    training pipeline definition that synth puts in the template. Training runs
    while the definition is built."""
    root = tmp_path_factory.mktemp("package")
    scripts = REPO / "processing_scripts"
    pairs_fixture.write_msrp(root / "input" / "pairs.txt", pairs_fixture.binary_rows())
    train = subprocess.Popen(
        ["sh", "-c", '"$0" "$1" --input "$2" --train-dir "$3" --validation-dir "$4" --test-dir "$5" && '
                     '"$0" "$6" --train "$3" --validation "$4" --model-dir "$7"',
         sys.executable, str(scripts / "preprocess.py"), str(root / "input"), str(root / "train"),
         str(root / "validation"), str(root / "test"), str(scripts / "train.py"), str(root / "model")],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        env = _definition_environment()
    finally:
        out, _ = train.communicate(timeout=300)
    assert train.returncode == 0, out
    archive = root / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted((root / "model").rglob("*")):
            tar.add(path, arcname=path.relative_to(root / "model").as_posix(), recursive=False)
    return archive, env


@pytest.fixture(scope="module")
def model_archive(package) -> Path:
    return package[0]


@pytest.fixture(scope="module")
def package_env(package) -> dict[str, str]:
    return package[1]


@pytest.fixture(scope="module")
def local_endpoint(package, tmp_path_factory):
    """The same package on the local endpoint, as ``stsmon deploy`` serves it: the archive
    extracted, the package's container environment, a real background server."""
    from endpoint_fixtures import ServerFactory

    from stsmon.endpoint.model import prepare_model_dir

    archive, env = package
    folder = tmp_path_factory.mktemp("local")
    factory = ServerFactory(folder)
    model_dir = prepare_model_dir(archive, folder / "models")
    server = factory(model_dir, name="sts-endpoint", capture=False, workers=1, env=env)
    yield server
    factory.stop_all()
