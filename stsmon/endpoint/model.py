"""Loading a model package the way SageMaker's scikit-learn container does, and
running requests through its ``inference.py`` functions (batched).

A model is ``model.tar.gz`` (or the folder it extracts to): ``model.joblib``,
``model_info.json`` and ``code/inference.py`` with its sibling modules. The
container's environment names the program: ``SAGEMAKER_PROGRAM``
(default ``inference.py``) in ``SAGEMAKER_SUBMIT_DIRECTORY`` (default
``/opt/ml/model/code``; a path under ``/opt/ml/model`` means the same path
inside the extracted model). The code folder goes first on ``sys.path`` so
``model.joblib`` can unpickle classes of its sibling modules (``featurizer``).

Prediction is never re-implemented here: each request's body goes through
``input_fn``, the parsed inputs of a batch of requests go through **one**
``predict_fn`` call, and each request's share of the predictions through
``output_fn``. Batching assumes ``predict_fn`` treats rows independently (true
for a scikit-learn ``Pipeline``); inputs that are not row-shaped (lists,
numpy arrays, pandas frames) are predicted one request at a time.
"""

from __future__ import annotations

import copy
import hashlib
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


# -- the inference functions -------------------------------------------------


@dataclass(frozen=True)
class Result:
    """The outcome of one request: an HTTP status, a body and its content type.

    ``kind``: ``ok``; ``client`` (the inference code refused the input, a 4xx
    with its message); ``server`` (the inference code failed: 500, details
    only in the log).
    """

    status: int
    body: bytes
    content_type: str
    kind: str = "ok"
    message: str = ""


class InferenceHandler:
    """The package's ``inference.py`` functions and the loaded model.

    Construct with :meth:`load`. :meth:`infer` runs a batch of requests.
    """

    def __init__(self, module: ModuleType, model: Any, model_dir: Path, *, max_batch: int = 64) -> None:
        self.module = module
        self.model = model
        self.model_dir = model_dir
        self.max_batch = max(1, int(max_batch))
        #: Stack requests into one predict_fn call (switched off if the first check fails).
        self.batching = self.max_batch > 1
        self._verified = False
        self.input_fn: Callable = module.input_fn
        self.predict_fn: Callable = module.predict_fn
        self.output_fn: Callable = module.output_fn

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
        missing = [f for f in REQUIRED_FUNCTIONS if not callable(getattr(module, f, None))]
        if missing:
            raise ModelLoadError(f"{path} does not define {', '.join(missing)}")
        try:
            model = module.model_fn(str(model_dir))
        except Exception as exc:
            raise ModelLoadError(f"model_fn({model_dir}) failed: {_one_line(exc)}\n{traceback.format_exc()}") from exc
        return cls(module, model, model_dir, max_batch=max_batch)

    # -- running requests --------------------------------------------------

    def infer(self, requests: Sequence[tuple[bytes, str, str]]) -> list[Result]:
        """Run ``(body, content_type, accept)`` requests; one :class:`Result` each.

        ``input_fn`` and ``output_fn`` run per request; ``predict_fn`` once
        per group of requests whose parsed inputs can be stacked (same type and
        attributes, e.g. the same content type; up to ``max_batch`` requests
        per call). If a stacked call fails, its requests are predicted one by
        one so one bad input cannot fail its neighbours.

        The first stacked call is checked: its split predictions must equal
        one-by-one predictions (floats to 1e-9), else stacking is switched off
        for this model (``batching`` becomes False, with a warning in the log).
        """
        results: list[Result | None] = [None] * len(requests)
        groups: dict[Any, list[tuple[int, Any, int]]] = {}
        single: list[tuple[int, Any]] = []
        for i, (body, content_type, _accept) in enumerate(requests):
            try:
                data = self.input_fn(body, content_type)
            except Exception as exc:
                results[i] = _error_result(exc, "input_fn")
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
                results[i] = _error_result(exc, "predict_fn")
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
            log.warning("batching switched off for this model: %s; predicting one request at a time", why)

    def _output(self, prediction: Any, accept: str) -> Result:
        try:
            out = self.output_fn(prediction, accept)
        except Exception as exc:
            return _error_result(exc, "output_fn")
        if isinstance(out, tuple) and len(out) == 2:
            body, content_type = out
        else:  # the toolkit's older convention: body only, in the Accept type
            body, content_type = out, accept
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, (bytes, bytearray, memoryview)):
            return _error_result(TypeError(f"output_fn returned {type(body).__name__}, not bytes or str"), "output_fn")
        return Result(200, bytes(body), str(content_type or "application/octet-stream"))

def client_status(exc: BaseException) -> int | None:
    """The 4xx status a client error carries (``InferenceError`` and the
    SageMaker toolkit's ``GenericInferenceToolkitError`` have ``status_code``)."""
    code = getattr(exc, "status_code", None)
    if isinstance(code, int) and 400 <= code <= 499:
        return code
    return None


def _error_result(exc: BaseException, where: str) -> Result:
    status = client_status(exc)
    if status is not None:
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return Result(status, str(message).encode("utf-8"), "text/plain; charset=utf-8", "client", str(message))
    log.error("%s raised %s", where, _one_line(exc), exc_info=exc)
    message = f"the inference code failed in {where} ({type(exc).__name__}); see the endpoint log"
    return Result(500, message.encode("utf-8"), "text/plain; charset=utf-8", "server", message)


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
