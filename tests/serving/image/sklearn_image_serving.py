"""The serving module of the SageMaker scikit-learn image, rebuilt for the offline check.

What the image's ``serve`` runs, from aws/sagemaker-scikit-learn-container
``src/sagemaker_sklearn_container/serving.py`` (master, commit eae7b6b: the
1.9-0 image, aws/deep-learning-containers ``docker/sklearn/1.9-0``, installs
the wheel its CI builds from that branch, scripts/ci/build/sklearn/pre_build.sh;
the package is not on PyPI, so this file does what it does, line for line
where it matters):

- ``serving_entrypoint()`` is the image's ``serve`` console script (its
  setup.py: ``serve=sagemaker_sklearn_container.serving:serving_entrypoint``).
  Single-model: ``server.start(env.ServingEnv().framework_module)``, i.e.
  sagemaker-containers' ``_server.start``, which **installs the user module
  with pip before starting gunicorn** (``_modules.import_module(module_dir,
  module_name)``: copy ``SAGEMAKER_SUBMIT_DIRECTORY`` to ``/opt/ml/code``,
  write a ``setup.py``, ``python -m pip install .``) and then runs
  ``gunicorn -k gevent -w <workers> ... <SAGEMAKER_SERVING_MODULE>``.
- ``main(environ, start_response)`` is that WSGI app
  (``SAGEMAKER_SERVING_MODULE=sagemaker_sklearn_container.serving:main`` in
  the image's Dockerfile): on the first request of each worker it imports
  ``SAGEMAKER_PROGRAM`` (``importlib.import_module``, else
  ``modules.import_module``: the same pip install), builds a
  ``transformer.Transformer`` from the module's functions (``transform_fn``
  xor ``input_fn``/``predict_fn``/``output_fn``), calls ``model_fn`` and
  serves ``worker.Worker`` (Flask): ``/ping`` and ``/invocations``.

Left out: the multi-model path (``SAGEMAKER_MULTI_MODEL``, Multi Model
Server). Here ``SAGEMAKER_SERVING_MODULE`` names this module instead of the
image's.
"""

from __future__ import absolute_import

import importlib
import logging

import numpy as np
from sagemaker_containers.beta.framework import content_types, encoders, env, modules, server, transformer, worker

logging.basicConfig(format="%(asctime)s %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
logging.getLogger("boto3").setLevel(logging.INFO)
logging.getLogger("s3transfer").setLevel(logging.INFO)
logging.getLogger("botocore").setLevel(logging.WARN)

logger = logging.getLogger(__name__)
logger.setLevel(logging.DEBUG)


class UserError(Exception):
    """sagemaker_sklearn_container.exceptions.UserError."""


def default_model_fn(model_dir):
    return transformer.default_model_fn(model_dir)


def default_input_fn(input_data, content_type):
    np_array = encoders.decode(input_data, content_type)
    return np_array.astype(np.float32) if content_type in content_types.UTF8_TYPES else np_array


def default_predict_fn(input_data, model):
    return model.predict(input_data)


def default_output_fn(prediction, accept):
    return worker.Response(encoders.encode(prediction, accept), accept, mimetype=accept)


def _user_module_transformer(user_module):
    model_fn = getattr(user_module, "model_fn", default_model_fn)
    input_fn = getattr(user_module, "input_fn", None)
    predict_fn = getattr(user_module, "predict_fn", None)
    output_fn = getattr(user_module, "output_fn", None)
    transform_fn = getattr(user_module, "transform_fn", None)

    if transform_fn and (input_fn or predict_fn or output_fn):
        raise UserError("Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn")

    if transform_fn is not None:
        return transformer.Transformer(model_fn=model_fn, transform_fn=transform_fn)
    return transformer.Transformer(
        model_fn=model_fn,
        input_fn=input_fn or default_input_fn,
        predict_fn=predict_fn or default_predict_fn,
        output_fn=output_fn or default_output_fn,
    )


def _user_module_execution_parameters_fn(user_module):
    return getattr(user_module, "execution_parameters_fn", None)


def import_module(module_name, module_dir):
    try:  # if module_name already exists, use the existing one
        user_module = importlib.import_module(module_name)
    except ImportError:  # if the module has not been loaded, 'modules' downloads and installs it.
        user_module = modules.import_module(module_dir, module_name)
    except Exception:  # this shouldn't happen
        logger.info("Encountered an unexpected error.")
        raise

    user_module_transformer = _user_module_transformer(user_module)
    user_module_transformer.initialize()

    return user_module_transformer, _user_module_execution_parameters_fn(user_module)


app = None


def main(environ, start_response):
    global app

    if app is None:
        serving_env = env.ServingEnv()

        user_module_transformer, execution_parameters_fn = import_module(serving_env.module_name,
                                                                         serving_env.module_dir)

        app = worker.Worker(transform_fn=user_module_transformer.transform,
                            module_name=serving_env.module_name,
                            execution_parameters_fn=execution_parameters_fn)

    return app(environ, start_response)


def serving_entrypoint():
    """Start the inference server (the image's ``serve``; single-model: gunicorn)."""
    server.start(env.ServingEnv().framework_module)


if __name__ == "__main__":
    serving_entrypoint()
