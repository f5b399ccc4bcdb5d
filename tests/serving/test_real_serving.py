"""The model package on the SageMaker scikit-learn image's real serving stack, with network isolation.

The stack (``realstack.py``): the image 1.9-0's pins (aws/sagemaker-scikit-learn-container
``requirements.txt``, commit eae7b6b), sagemaker-containers 2.8.6.post2 patched like the
image's Dockerfile, the image's ``serve`` (``serving.py``: ``serving_entrypoint`` ->
sagemaker-containers ``_server.start`` -> ``pip install`` of the code, gunicorn with
gevent workers -> ``serving.main``), in a network namespace with only loopback, as an
endpoint with ``EnableNetworkIsolation`` runs. The package is a real ``model.tar.gz``
(the fixture corpus through ``preprocess.py`` and ``train.py``) with the container
``Environment`` of the RegisterModel step of the synthesized training pipeline.
"""

from __future__ import annotations

import pytest

import realstack

pytestmark = pytest.mark.usefixtures("real_stack")

#: The environment the package was registered with before the fix (issue 10, fault 1).
BEFORE_FIX = ("SAGEMAKER_PROGRAM", "SAGEMAKER_SUBMIT_DIRECTORY")


@pytest.fixture(scope="module")
def container(model_archive, package_env, tmp_path_factory):
    """The package served by the real stack, shared by this module's tests."""
    run = realstack.Container(model_archive, package_env, tmp_path_factory.mktemp("container"))
    ready = run.start()
    yield run, ready
    run.close()


def test_package_serves_with_network_isolation(container):
    """The image's ``serve`` always runs ``pip install .`` on the code folder before
    gunicorn starts (sagemaker-containers ``_server.start`` -> ``_modules.import_module``);
    with the package's environment that install succeeds offline and /ping is 200."""
    run, ready = container
    assert ready == {"ready": True, "ping": 200, "exit_code": None}, run.log_tail()
    assert run.request("GET", "/ping").status == 200
    log = run.log.read_text(errors="replace")
    assert "-m pip install ." in log and "Successfully installed inference-1.0.0" in log, run.log_tail()
    assert "Booting worker" in log and "gevent" in log


def test_without_the_package_environment_serve_fails_under_isolation(model_archive, package_env, tmp_path):
    """The fault class: the package as registered before (program and submit directory
    only) never serves under network isolation - ``pip install .`` cannot download
    setuptools for its isolated build, ``serve`` exits, /ping never answers. The code
    folder on ``PYTHONPATH`` alone does not help: the install runs before gunicorn,
    whether or not the module is importable."""
    variants = {"as registered before": BEFORE_FIX, "PYTHONPATH only": BEFORE_FIX + ("PYTHONPATH",)}
    runs = {}
    try:
        for i, (name, keys) in enumerate(variants.items()):  # started together, they fail together
            env = {k: v for k, v in package_env.items() if k in keys}
            assert set(keys) == set(env)
            runs[name] = realstack.Container(model_archive, env, tmp_path / f"container{i}")
            runs[name].launch()
        for name, run in runs.items():
            ready = run.wait_ready()
            log = run.log.read_text(errors="replace")
            assert ready["ready"] is False and ready["ping"] is None and ready["exit_code"] not in (None, 0), \
                f"{name}: {ready}\n{log[-3000:]}"
            assert "InstallModuleError" in log and "setuptools" in log, f"{name}:\n{log[-3000:]}"
    finally:
        for run in runs.values():
            run.close()
