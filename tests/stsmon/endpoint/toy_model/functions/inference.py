"""The toy model served through the container's other path: ``input_fn`` ->
``predict_fn`` -> ``output_fn`` (no ``transform_fn``). On that path the container
answers 500 for anything these raise, client mistakes included."""

from toy_serving import load as model_fn  # noqa: F401
from toy_serving import parse as input_fn  # noqa: F401
from toy_serving import predict as predict_fn  # noqa: F401
from toy_serving import render as output_fn  # noqa: F401
