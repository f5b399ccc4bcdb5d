"""Loading a model package the way SageMaker's scikit-learn container does, and
answering requests as that container does.

A model is ``model.tar.gz`` (or the folder it extracts to): ``model.joblib``,
``model_info.json`` and ``code/inference.py`` with its sibling modules. The
container's environment names the program: ``SAGEMAKER_PROGRAM``
(default ``inference.py``) in ``SAGEMAKER_SUBMIT_DIRECTORY`` (default
``/opt/ml/model/code``; a path under ``/opt/ml/model`` means the same path
inside the extracted model). The code folder goes first on ``sys.path`` so
``model.joblib`` can unpickle classes of its sibling modules (``featurizer``).

What the container does, and this module with it (aws/sagemaker-scikit-learn-container
``serving.py``; aws/sagemaker-containers 2.8.6.post2 ``_transformer.py``,
``_worker.py``, ``_functions.py``; checked against the rebuilt image by
tests/serving/):

- The program's ``model_fn(model_dir)`` loads the model. Then either its
  ``transform_fn(model, body, content_type, accept)`` answers each request
  (its result carries the status: a response, or a ``(body, mimetype)``
  tuple for 200), or - without ``transform_fn`` - ``input_fn`` ->
  ``predict_fn`` -> ``output_fn``. Defining both kinds is refused.
- Whatever those functions raise becomes a **500** (Werkzeug's "Internal
  Server Error" page): sagemaker-containers wraps every user function in
  ``error_wrapper``, so no exception keeps a status of its own.
- ``body`` is text (UTF-8, bad bytes replaced) when the request's
  ``Content-Type`` is exactly ``application/json`` or ``text/csv``, else
  bytes; a missing ``Content-Type`` is ``application/json``; a missing or
  ``*/*`` ``Accept`` is ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` (default
  ``application/json``). See :func:`container_request`.

Prediction is never re-implemented here. Requests that arrive together are
answered together when the program allows it: with ``transform_fn``, through
its optional ``batch_transform_fn(model, requests)`` (a local extension
SageMaker never calls: one answer per request, each what ``transform_fn``
would give); with the three functions, each request's body goes through
``input_fn``, the parsed inputs through **one** ``predict_fn`` call, and each
request's share of the predictions through ``output_fn``. That stacking
assumes ``predict_fn`` treats rows independently (true for a scikit-learn
``Pipeline``); inputs that are not row-shaped (lists, numpy arrays, pandas
frames) are predicted one request at a time.
"""

from __future__ import annotations

import copy
import hashlib
import json
import importlib.util
import math
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

from ..errors import StsmonError

log = logging.getLogger("stsmon.endpoint.model")

#: The container paths of the model and its code (SageMaker's).
CONTAINER_MODEL_DIR = PurePosixPath("/opt/ml/model")
DEFAULT_PROGRAM = "inference.py"
DEFAULT_SUBMIT_DIRECTORY = str(CONTAINER_MODEL_DIR / "code")
REQUIRED_FUNCTIONS = ("model_fn", "input_fn", "predict_fn", "output_fn")


class ModelLoadError(StsmonError):
    """The model package cannot be served (bad archive, missing code, model_fn failed)."""


# -- the model folder --------------------------------------------------------


def prepare_model_dir(source: Path, cache_dir: Path) -> Path:
    """The folder to serve for ``source``: a model folder as is, or a
    ``model.tar.gz`` extracted (once, by content hash) under ``cache_dir``.

    Extraction refuses members that would land outside the folder, links and
    device files (``tarfile``'s ``data`` filter) and happens in a temporary
    folder renamed into place, so a failure leaves nothing half-extracted.
    """
    source = Path(source)
    if source.is_dir():
        return source.resolve()
    if not source.is_file():
        raise ModelLoadError(f"model not found: {source}")
    digest = _sha256(source)[:16]
    target = cache_dir / digest
    if target.is_dir():
        return target.resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{digest}-", dir=cache_dir))
    try:
        try:
            with tarfile.open(source, "r:*") as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ModelLoadError(f"cannot extract model archive {source}: {exc}") from exc
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():  # not another process winning the same race
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target.resolve()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def code_location(model_dir: Path, env: Mapping[str, str]) -> tuple[Path, str]:
    """(code folder, program file name) for a model folder and container env."""
    program = env.get("SAGEMAKER_PROGRAM") or DEFAULT_PROGRAM
    submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY") or DEFAULT_SUBMIT_DIRECTORY
    if submit.startswith("s3://"):
        raise ModelLoadError(
            f"SAGEMAKER_SUBMIT_DIRECTORY={submit} is an S3 source archive; the local endpoint "
            "serves self-contained packages (code inside model.tar.gz under code/)"
        )
    posix = PurePosixPath(submit)
    if posix == CONTAINER_MODEL_DIR or CONTAINER_MODEL_DIR in posix.parents:
        code_dir = model_dir.joinpath(*posix.relative_to(CONTAINER_MODEL_DIR).parts)
    else:
        code_dir = Path(submit)
    if PurePosixPath(program).name != program:
        raise ModelLoadError(f"SAGEMAKER_PROGRAM must be a file name, got {program!r}")
    return code_dir, program


# -- what the container hands the program ------------------------------------

JSON = "application/json"
#: Request types the container hands over as text (sagemaker-containers ``_content_types.UTF8_TYPES``).
UTF8_TYPES = (JSON, "text/csv")
#: Its default ``Accept`` (``_env.ServingEnv.default_accept``) and request ``Content-Type`` (``_worker.Request``).
DEFAULT_ACCEPT = JSON
DEFAULT_CONTENT_TYPE = JSON
DEFAULT_ACCEPT_ENV = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"

#: Werkzeug's answer to an unhandled exception (``werkzeug.exceptions.InternalServerError``), as Flask sends it.
INTERNAL_ERROR_TYPE = "text/html; charset=utf-8"
INTERNAL_ERROR_PAGE = (
    b"<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
    b"<h1>Internal Server Error</h1>\n<p>The server encountered an internal error and was unable to complete "
    b"your request. Either the server is overloaded or there is an error in the application.</p>\n"
)
# Werkzeug adds a charset to these mimetypes (werkzeug.utils.get_content_type).
_CHARSET_MIMETYPES = {"application/ecmascript", "application/javascript", "application/sql", "application/xml",
                      "application/xml-dtd", "application/xml-external-parsed-entity"}


def default_accept(env: Mapping[str, str]) -> str:
    """The container's default answer type for a model environment."""
    return env.get(DEFAULT_ACCEPT_ENV, DEFAULT_ACCEPT)


def container_request(headers: Mapping[str, str], default: str = DEFAULT_ACCEPT) -> tuple[str, str]:
    """``(content_type, accept)`` as the container passes them to the program,
    from request headers with lower-case names (``_worker.Request``: the
    ``ContentType`` header, else ``Content-Type``, else JSON; ``Accept``
    unless missing or ``*/*``, else ``default``)."""
    content_type = headers.get("contenttype") or headers.get("content-type") or DEFAULT_CONTENT_TYPE
    accept = headers.get("accept")
    if not accept or accept == "*/*":
        accept = default
    return content_type, accept


def container_body(body: bytes, content_type: str) -> str | bytes:
    """The body as the program receives it (``_worker.Request.content``)."""
    return body.decode("utf-8", "replace") if content_type in UTF8_TYPES else body


def _werkzeug_content_type(mimetype: str) -> str:
    if mimetype.startswith("text/") or mimetype in _CHARSET_MIMETYPES or mimetype.endswith("+xml"):
        return f"{mimetype}; charset=utf-8"
    return mimetype


# -- the inference functions -------------------------------------------------


@dataclass(frozen=True)
class Result:
    """The outcome of one request: an HTTP status, a body and its content type.

    ``kind``: ``ok`` (2xx); ``client`` (the program answered 4xx, ``message``
    is its body); ``server`` (5xx: the program failed or answered so).
    """

    status: int
    body: bytes
    content_type: str
    kind: str = "ok"
    message: str = ""


def _result(status: int, body: bytes, content_type: str) -> Result:
    if 200 <= status < 300:
        return Result(status, body, content_type)
    kind = "client" if 400 <= status < 500 else "server"
    return Result(status, body, content_type, kind, body.decode("utf-8", "replace").strip()[:1000])


def _failure(exc: BaseException, where: str) -> Result:
    """What the container answers when the program raises: 500, details only in the log."""
    log.error("%s raised %s (the container answers 500)", where, _one_line(exc), exc_info=exc)
    return Result(500, INTERNAL_ERROR_PAGE, INTERNAL_ERROR_TYPE, "server",
                  f"the inference code failed in {where} ({type(exc).__name__}); see the endpoint log")


def _answer(out: Any, where: str) -> Result:
    """What the container makes of a ``transform_fn``/``output_fn`` result
    (``_transformer.Transformer.transform``, then Flask's ``make_response``)."""
    if isinstance(out, tuple):  # (body, mimetype) -> Response(response=body, mimetype=mimetype), 200
        body, mimetype = (out + (None, None))[:2]  # worker.Response's default mimetype is JSON
        content_type = _werkzeug_content_type(str(mimetype)) if mimetype else JSON
        return _body_result(200, body, content_type, where)
    status = getattr(out, "status_code", None)
    if isinstance(status, int) and callable(getattr(out, "get_data", None)):  # a (Flask-like) response
        headers = getattr(out, "headers", {}) or {}
        content_type = headers.get("Content-Type") or getattr(out, "content_type", None) or JSON
        return _body_result(status, out.get_data(), content_type, where)
    if isinstance(out, (str, bytes, bytearray)):  # Flask: a text/html response
        return _body_result(200, out, _werkzeug_content_type("text/html"), where)
    if isinstance(out, (dict, list)):  # Flask: jsonify
        body = json.dumps(out, separators=(",", ":"), sort_keys=True) + "\n"
        return _body_result(200, body, JSON, where)
    return _failure(TypeError(f"{where} returned a {type(out).__name__}, which Flask cannot send"), where)


def _body_result(status: int, body: Any, content_type: str, where: str) -> Result:
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif body is None:
        body = b""
    elif not isinstance(body, (bytes, bytearray, memoryview)):
        return _failure(TypeError(f"{where} returned a {type(body).__name__} body, not bytes or str"), where)
    return _result(status, bytes(body), content_type)


class InferenceHandler:
    """The package's inference program and the loaded model.

    Construct with :meth:`load`. :meth:`infer` answers a batch of requests.
    """

    def __init__(self, module: ModuleType, model: Any, model_dir: Path, *, max_batch: int = 64) -> None:
        self.module = module
        self.model = model
        self.model_dir = model_dir
        self.max_batch = max(1, int(max_batch))
        self.transform_fn: Callable | None = getattr(module, "transform_fn", None)
        self.batch_transform_fn: Callable | None = getattr(module, "batch_transform_fn", None)
        if self.transform_fn is None:
            self.input_fn: Callable = module.input_fn
            self.predict_fn: Callable = module.predict_fn
            self.output_fn: Callable = module.output_fn
        #: Answer requests together (switched off if the first stacking check fails).
        self.batching = self.max_batch > 1 and (self.transform_fn is None or self.batch_transform_fn is not None)
        self._verified = False

    @classmethod
    def load(cls, model_dir: Path, env: Mapping[str, str] | None = None, *, max_batch: int = 64) -> InferenceHandler:
        """Import the package's inference program and call its ``model_fn``.

        Meant for a fresh process (a server worker): the code folder is put
        first on ``sys.path`` and the program imported under its own name,
        as the SageMaker container does.
        """
        model_dir = Path(model_dir).resolve()
        code_dir, program = code_location(model_dir, env or {})
        path = code_dir / program
        if not path.is_file():
            raise ModelLoadError(f"inference program not found: {path} (SAGEMAKER_PROGRAM={program})")
        sys.path.insert(0, str(code_dir))
        name = path.stem
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise ModelLoadError(f"cannot import {path}: {_one_line(exc)}\n{traceback.format_exc()}") from exc
        if not callable(getattr(module, "model_fn", None)):
            raise ModelLoadError(f"{path} does not define model_fn")
        functions = [f for f in ("input_fn", "predict_fn", "output_fn") if getattr(module, f, None) is not None]
        if getattr(module, "transform_fn", None) is not None:
            if functions:  # the image's serving._user_module_transformer refuses to start
                raise ModelLoadError(f"{path} defines transform_fn and {', '.join(functions)}; the SageMaker "
                                     "scikit-learn container refuses that (\"Cannot use transform_fn implementation "
                                     "with input_fn, predict_fn, and/or output_fn\")")
        else:
            missing = [f for f in ("input_fn", "predict_fn", "output_fn") if f not in functions]
            if missing:
                raise ModelLoadError(f"{path} defines neither transform_fn nor {', '.join(missing)} (the local "
                                     "endpoint does not run the container's default functions)")
        try:
            model = module.model_fn(str(model_dir))
        except Exception as exc:
            raise ModelLoadError(f"model_fn({model_dir}) failed: {_one_line(exc)}\n{traceback.format_exc()}") from exc
        return cls(module, model, model_dir, max_batch=max_batch)

    # -- running requests --------------------------------------------------

    def infer(self, requests: Sequence[tuple[bytes, str, str]]) -> list[Result]:
        """Answer ``(body, content_type, accept)`` requests; one :class:`Result` each.

        ``content_type`` and ``accept`` as the container passes them
        (:func:`container_request`); the body is converted as it does
        (:func:`container_body`).
        """
        if self.transform_fn is not None:
            return self._transform(requests)
        return self._functions(requests)

    def _transform(self, requests: Sequence[tuple[bytes, str, str]]) -> list[Result]:
        calls = [(container_body(body, ct), ct, accept) for body, ct, accept in requests]
        results: list[Result] = []
        for start in range(0, len(calls), self.max_batch):
            chunk = calls[start:start + self.max_batch]
            if len(chunk) > 1 and self.batching:
                try:
                    outs = self.batch_transform_fn(self.model, chunk)
                    if len(outs) != len(chunk):
                        raise ValueError(f"{len(outs)} answers for {len(chunk)} requests")
                except Exception as exc:  # a broken batch hook: answer one by one from now on
                    self._disable_batching(f"batch_transform_fn failed ({_one_line(exc)})")
                else:
                    results.extend(_failure(out, "transform_fn") if isinstance(out, BaseException)
                                   else _answer(out, "transform_fn") for out in outs)
                    continue
            for call in chunk:
                try:
                    out = self.transform_fn(self.model, *call)
                except Exception as exc:
                    results.append(_failure(exc, "transform_fn"))
                    continue
                results.append(_answer(out, "transform_fn"))
        return results

    def _functions(self, requests: Sequence[tuple[bytes, str, str]]) -> list[Result]:
        """input_fn per request, one predict_fn per group of requests whose parsed
        inputs can be stacked (same type and attributes, up to ``max_batch``
        requests per call), output_fn per request. If a stacked call fails, its
        requests are predicted one by one so one bad input cannot fail its
        neighbours. The first stacked call is checked: its split predictions must
        equal one-by-one predictions (floats to 1e-9), else stacking is switched
        off for this model (``batching`` becomes False, with a warning in the log).
        """
        results: list[Result | None] = [None] * len(requests)
        groups: dict[Any, list[tuple[int, Any, int]]] = {}
        single: list[tuple[int, Any]] = []
        for i, (body, content_type, _accept) in enumerate(requests):
            try:
                data = self.input_fn(container_body(body, content_type), content_type)
            except Exception as exc:
                results[i] = _failure(exc, "input_fn")
                continue
            rows = _rows(data)
            key = _stack_key(data) if self.batching and rows is not None else None
            if key is None:
                single.append((i, data))
            else:
                groups.setdefault(key, []).append((i, data, rows))

        for group in groups.values():
            for start in range(0, len(group), self.max_batch):
                chunk = group[start:start + self.max_batch]
                preds = self._predict_group(chunk) if len(chunk) > 1 and self.batching else None
                if preds is None:
                    single.extend((i, data) for i, data, _n in chunk)
                    continue
                for (i, _data, _n), pred in zip(chunk, preds):
                    results[i] = self._output(pred, requests[i][2])
        for i, data in single:
            try:
                pred = self.predict_fn(data, self.model)
            except Exception as exc:
                results[i] = _failure(exc, "predict_fn")
                continue
            results[i] = self._output(pred, requests[i][2])
        return results  # type: ignore[return-value]

    def _predict_group(self, group: list[tuple[int, Any, int]]) -> list[Any] | None:
        """Predictions of a group with one ``predict_fn`` call, split per request; None if not possible."""
        try:
            stacked = _concat([data for _i, data, _n in group])
        except Exception:
            return None
        if stacked is None:
            return None
        try:
            pred = self.predict_fn(stacked, self.model)
        except Exception:
            return None  # retried one by one: the error belongs to one request
        sizes = [n for _i, _d, n in group]
        try:
            parts = _split(pred, sizes)
        except Exception as exc:
            self._disable_batching(f"its predictions cannot be split per request ({exc})")
            return None
        if not self._verified:
            try:
                alone = [self.predict_fn(data, self.model) for _i, data, _n in group]
            except Exception:
                return None
            if not all(_same(a, b) for a, b in zip(parts, alone)):
                self._disable_batching("stacked predictions differ from one-by-one predictions")
                return alone
            self._verified = True
            log.info("batching verified: %d requests in one predict_fn call give the same predictions", len(group))
        return parts

    def _disable_batching(self, why: str) -> None:
        if self.batching:
            self.batching = False
            log.warning("batching switched off for this model: %s; answering one request at a time", why)

    def _output(self, prediction: Any, accept: str) -> Result:
        try:
            out = self.output_fn(prediction, accept)
        except Exception as exc:
            return _failure(exc, "output_fn")
        return _answer(out, "output_fn")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


# -- stacking row-shaped inputs ----------------------------------------------


def _kind(x: Any) -> str | None:
    if isinstance(x, list):
        return "list"
    module = type(x).__module__
    if module.startswith("numpy") and type(x).__name__ == "ndarray":
        return "ndarray" if x.ndim >= 1 else None
    if module.startswith("pandas") and type(x).__name__ in ("DataFrame", "Series"):
        return "pandas"
    return None


def _rows(x: Any) -> int | None:
    """Number of rows of a row-shaped input, None if it is not one."""
    return len(x) if _kind(x) is not None else None


def _stack_key(x: Any) -> Any:
    """Inputs with equal keys may be stacked: same type, same extra attributes
    (``Pairs(content_type=...)``), same trailing shape/dtype or columns."""
    kind = _kind(x)
    attrs = ""
    if kind == "list" and type(x) is not list:
        try:
            attrs = repr(sorted(vars(x).items()))
        except TypeError:
            return None
    if kind == "ndarray":
        return (type(x), attrs, x.shape[1:], str(x.dtype))
    if kind == "pandas":
        cols = tuple(x.columns) if hasattr(x, "columns") else x.name
        return (type(x), attrs, cols)
    return (type(x), attrs)


def _concat(items: list[Any]) -> Any | None:
    kinds = {_kind(x) for x in items}
    if len(kinds) != 1 or len({_stack_key(x) for x in items}) != 1:
        return None
    kind = kinds.pop()
    if kind == "list":
        out = copy.copy(items[0])  # keeps a list subclass and its attributes
        out[:] = [row for x in items for row in x]
        return out
    if kind == "ndarray":
        import numpy as np

        return np.concatenate(items, axis=0)
    if kind == "pandas":
        import pandas as pd

        return pd.concat(items, ignore_index=True)
    return None


def _slice(x: Any, start: int, n: int) -> Any:
    if _kind(x) == "pandas":
        return x.iloc[start:start + n].reset_index(drop=True)
    return x[start:start + n]


def _split(pred: Any, sizes: list[int]) -> list[Any]:
    """Split stacked predictions back into per-request parts (row counts ``sizes``).

    Handles row-shaped values (lists, arrays, frames), tuples and dicts of
    them, and objects whose row-shaped attributes all have the stacked row
    count (``Predictions(values, probabilities, ...)``).
    """
    total = sum(sizes)
    if isinstance(pred, tuple) and pred and all(_rows(p) == total for p in pred):
        parts = [_split(p, sizes) for p in pred]
        return [tuple(part[k] for part in parts) for k in range(len(sizes))]
    if isinstance(pred, dict) and pred and all(_rows(v) == total for v in pred.values()):
        parts = {k: _split(v, sizes) for k, v in pred.items()}
        return [{k: parts[k][j] for k in pred} for j in range(len(sizes))]
    kind = _kind(pred)
    if kind is not None:
        if len(pred) != total:
            raise ValueError(f"{len(pred)} predictions for {total} stacked rows")
        out, start = [], 0
        for n in sizes:
            out.append(_slice(pred, start, n))
            start += n
        return out
    if hasattr(pred, "__dict__"):
        if hasattr(pred, "__len__") and len(pred) != total:
            raise ValueError(f"{len(pred)} predictions for {total} stacked rows")
        row_attrs = [k for k, v in vars(pred).items() if _rows(v) == total]
        if not row_attrs:
            raise ValueError(f"{type(pred).__name__} has no per-row attribute")
        out, start = [], 0
        for n in sizes:
            part = copy.copy(pred)
            for k in row_attrs:
                setattr(part, k, _slice(getattr(pred, k), start, n))
            if hasattr(part, "__len__") and len(part) != n:
                raise ValueError(f"{type(pred).__name__} part has the wrong length")
            out.append(part)
            start += n
        return out
    raise ValueError(f"cannot split a {type(pred).__name__}")


def _same(a: Any, b: Any) -> bool:
    """Equal predictions: same structure, floats equal to 1e-9 (BLAS may sum in another order)."""
    if type(a) is not type(b):
        return False
    kind = _kind(a)
    if kind == "ndarray":
        import numpy as np

        if a.shape != b.shape:
            return False
        if a.dtype.kind in "fc":
            return bool(np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True))
        return bool(np.array_equal(a, b))
    if kind == "pandas":
        import numpy as np

        try:
            return a.shape == b.shape and bool(np.allclose(a.to_numpy(dtype=float), b.to_numpy(dtype=float),
                                                           rtol=1e-9, atol=1e-12, equal_nan=True))
        except (TypeError, ValueError):
            return bool(a.equals(b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b)) and \
            (not hasattr(a, "__dict__") or _same(vars(a), vars(b)))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))
    if hasattr(a, "__dict__") and not isinstance(a, type):
        return _same(vars(a), vars(b))
    try:
        return bool(a == b)
    except Exception:
        return False
