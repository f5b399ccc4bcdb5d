"""The serving container's environment, registered with every model package.

The endpoint serves the package with the SageMaker scikit-learn image (1.9-0,
built from aws/deep-learning-containers docker/sklearn/1.9-0), with network
isolation on. What the image does at start, read in its source
(aws/sagemaker-scikit-learn-container ``serving.py``; aws/sagemaker-containers
2.8.6.post2 ``_server.py``, ``_modules.py``): its ``serve`` calls
``_server.start``, which **always** installs the user module before starting
gunicorn (``_modules.import_module``: copy ``SAGEMAKER_SUBMIT_DIRECTORY`` to
``/opt/ml/code``, write a ``setup.py``, ``python -m pip install .``). The
image's pip builds in an isolated environment that downloads setuptools, so
without a network ``serve`` exits and the endpoint never passes its health
check. Hence (each checked on the rebuilt serving stack, tests/serving/):

- ``PIP_NO_BUILD_ISOLATION=0``: pip builds with the image's own setuptools
  (in its lock: aws/deep-learning-containers docker/sklearn/1.9-0/uv.lock).
  The value reads backwards: pip
  stores an environment value of ``--no-build-isolation`` straight into
  ``build_isolation`` (pip ``cli/parser.py``), so ``0`` means *no* isolation;
- ``PIP_NO_INDEX=1``: that install never reaches for an index, so it cannot
  wait on a network there is none of;
- ``PYTHONPATH`` = the code folder: ``SAGEMAKER_PROGRAM`` imports from the
  model itself (the fast path of the image's ``serving.import_module``), not
  only from the installed copy.

Numeric thread pools: the image runs one gunicorn worker per vCPU, so each
worker's libraries get one thread (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
``MKL_NUM_THREADS``); an OpenMP pool per worker (HistGradientBoosting) on
shared cores spin-waits (docs/endpoint.md § On AWS has the measurement).
``model_fn`` caps the same through threadpoolctl.

And the answer type for a request without ``Accept`` (or ``*/*``):
``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``, which the container substitutes
before ``transform_fn`` sees the request (sagemaker-containers ``_worker.Request.accept``;
its own default is the same ``application/json``), set so the package says it.
"""

from __future__ import annotations

from stscontracts import names

#: Where SageMaker extracts the package's code (``code/`` of model.tar.gz).
CODE_DIR = f"/opt/ml/model/{names.MODEL_CODE_DIR}"
#: The answer type when a request has no ``Accept`` (or ``*/*``).
DEFAULT_ACCEPT = "application/json"
#: Thread-pool sizes of the numeric libraries (OpenMP, OpenBLAS, MKL).
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def serving_environment() -> dict[str, str]:
    """The ``Environment`` of the package's inference container."""
    return {
        "SAGEMAKER_PROGRAM": names.INFERENCE_PROGRAM,
        "SAGEMAKER_SUBMIT_DIRECTORY": CODE_DIR,
        # Network isolation: the image's unconditional `pip install .` of the code
        # folder must work offline, and the program must import without it.
        "PIP_NO_BUILD_ISOLATION": "0",
        "PIP_NO_INDEX": "1",
        "PYTHONPATH": CODE_DIR,
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": DEFAULT_ACCEPT,
        # One worker per vCPU: one numeric thread per worker.
        **{var: "1" for var in THREAD_VARS},
    }
