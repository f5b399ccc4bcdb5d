"""Serving entry point for the SageMaker scikit-learn container (and the local endpoint).

The container (sagemaker-containers' ``Transformer``, what the scikit-learn
image 1.9-0 serves with) calls ``model_fn(model_dir)`` once per worker and
``transform_fn(model, body, content_type, accept)`` once per request, which
returns a response carrying its own status. A ``transform_fn`` because the
container's other path (``input_fn``/``predict_fn``/``output_fn``) turns every
exception of those functions into a 500: a malformed request would be a server
error there (sagemaker-containers ``_functions.error_wrapper``, ``_transformer``).
The module must not define ``input_fn``, ``predict_fn`` or ``output_fn`` next to
``transform_fn`` (the image refuses to start).

What the container hands over (sagemaker-containers ``_worker.Request``):
``body`` is text for a ``Content-Type`` of exactly ``application/json`` or
``text/csv`` (decoded as UTF-8 with replacement characters), else bytes;
``content_type`` is ``application/json`` when the request has none; ``accept``
is ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` (the package sets
``application/json``; the container's default is the same) when the request
has none or ``*/*``.

Requests (``Content-Type``; an optional ``charset`` must be UTF-8):

- ``text/csv``: one pair per row, two columns ``sentence1,sentence2``, RFC 4180
  quoting, no header;
- ``application/json``: ``{"instances": [{"sentence1": s1, "sentence2": s2}, ...]}``,
  a list of pairs ``[[s1, s2], ...]`` (instances may be either form), or one
  object ``{"sentence1": s1, "sentence2": s2}``;
- ``application/jsonlines``: one ``{"sentence1", "sentence2"}`` object or
  ``[s1, s2]`` per line.

Responses (``Accept``; a list of types with ``q`` weights is honoured, ``*/*``
in it means the default type, ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` or
``application/json``):

- ``application/json``: ``{"predictions": [{"label": 1, "probability": 0.87}, ...]}``
  (Regression: ``{"predictions": [{"score": 3.2}, ...]}``);
- ``text/csv``: ``label,probability`` per row (Regression: ``score``);
- ``application/jsonlines``: one prediction object per line.

The ``Content-Type`` of an answer is exactly one of these three.
``probability`` is the calibrated probability that the pair is a paraphrase;
``label`` is 1 when it is at least 0.5. Numbers have 6 decimals.

Client mistakes are answered with their status and a one-line message naming
the problem and where (``text/plain; charset=utf-8``): 400 (empty, not UTF-8,
malformed CSV/JSON, wrong column count, missing keys, non-string or empty
sentences, too many pairs or too long a sentence), 413 (body over 6 MB), 415
(content type), 406 (accept). Anything else raised is a bug: the container
answers 500.

``batch_transform_fn(model, requests)`` answers several requests with one
prediction call, each exactly as ``transform_fn`` would; SageMaker never calls
it, the local endpoint (``stsmon.endpoint``) does. The building blocks
``parse_request``, ``predict`` and ``format_response`` are public for tests and
benchmarks.

This file ships in ``model.tar.gz`` under ``code/`` next to the modules the
pickled model refers to (``featurizer``, ``stsmodel``), and puts its own folder
on ``sys.path`` so that unpickling finds them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import numpy as np  # noqa: E402

from stscontracts import names  # noqa: E402

CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"
CONTENT_TYPES = (CSV, JSON, JSONLINES)
#: The container's default answer type (sagemaker-containers ``_env.ServingEnv.default_accept``).
DEFAULT_ACCEPT_ENV = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
ERROR_CONTENT_TYPE = "text/plain; charset=utf-8"

#: SageMaker's real-time payload limit.
MAX_BODY_BYTES = 6 * 1024 * 1024
MAX_PAIRS = 10_000
MAX_SENTENCE_CHARS = 5_000
_UTF8 = {"utf-8", "utf8", "us-ascii", "ascii"}


class InferenceError(Exception):
    """A client error: ``status_code`` (400, 406, 413, 415) and a ``message`` for people."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message

    def __str__(self) -> str:
        return self.message


class Response:
    """An HTTP answer: ``status_code``, ``headers["Content-Type"]``, ``get_data()``.

    Outside the container (tests, the local endpoint) :func:`transform_fn`
    returns this; inside it, the toolkit's own ``worker.Response`` (a Flask
    response) with the same attributes.
    """

    def __init__(self, body: bytes, status: int, content_type: str) -> None:
        self.status_code = status
        self.headers = {"Content-Type": content_type}
        self._body = body

    @property
    def content_type(self) -> str:
        return self.headers["Content-Type"]

    def get_data(self) -> bytes:
        return self._body


def _response(body: bytes, status: int, content_type: str):
    toolkit = sys.modules.get("sagemaker_containers._worker")
    if toolkit is not None:  # in the container: Flask serves only its own response type
        # An explicit Content-Type header is kept as is (a mimetype would get "; charset=utf-8").
        return toolkit.Response(response=body, status=status, headers={"Content-Type": content_type})
    return Response(body, status, content_type)


class Pairs(list):
    """The parsed request: a list of ``(sentence1, sentence2)`` tuples plus its ``content_type``."""

    def __init__(self, pairs=(), content_type: str | None = None) -> None:
        super().__init__(pairs)
        self.content_type = content_type


class Model:
    """What ``model_fn`` returns: the fitted pipeline, its problem type and ``model_info.json``."""

    def __init__(self, pipeline, info: dict) -> None:
        self.pipeline = pipeline
        self.info = info
        self.problem_type = info.get("problem_type", names.BINARY_CLASSIFICATION)


class Predictions:
    """What ``predict`` returns: labels and probabilities, or scores."""

    def __init__(self, problem_type: str, values: np.ndarray, probabilities: np.ndarray | None) -> None:
        self.problem_type = problem_type
        self.values = values
        self.probabilities = probabilities

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, rows: slice) -> Predictions:
        return Predictions(self.problem_type, self.values[rows],
                           None if self.probabilities is None else self.probabilities[rows])

    def records(self) -> list[dict]:
        """One dict per pair: ``{"label", "probability"}`` or ``{"score"}``."""
        if self.probabilities is not None:
            return [{"label": int(v), "probability": round(float(p), 6)}
                    for v, p in zip(self.values, self.probabilities)]
        return [{"score": round(float(v), 6)} for v in self.values]


# -- model ------------------------------------------------------------------------------


def model_fn(model_dir: str) -> Model:
    """Load the model from ``model_dir`` (the extracted ``model.tar.gz``) and warm it up."""
    import joblib

    path = os.path.join(model_dir, names.MODEL_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {names.MODEL_FILE} in {model_dir}")
    info_path = os.path.join(model_dir, names.MODEL_INFO_FILE)
    info = {}
    if os.path.isfile(info_path):
        with open(info_path, encoding="utf-8") as fh:
            info = json.load(fh)
    pipeline = joblib.load(path)
    _limit_threads()  # after loading: threadpoolctl caps only the libraries loaded (OpenMP comes with the model)
    if "problem_type" not in info:
        info["problem_type"] = (names.BINARY_CLASSIFICATION if hasattr(pipeline, "predict_proba")
                                else names.REGRESSION)
    model = Model(pipeline, info)
    predict([("A warm-up sentence.", "A warm-up sentence.")], model)  # first request fast
    return model


def _limit_threads() -> None:
    """One BLAS and one OpenMP thread for the serving thread.

    The scikit-learn image runs one gunicorn worker per vCPU, each serving its
    requests on one thread (gevent): an OpenMP pool per worker (the gradient
    boosting model's) on shared cores spin-waits, and requests carry a few
    pairs, where extra threads only add overhead. threadpoolctl caps the
    libraries already loaded (so this runs once the model, and with it
    scikit-learn's OpenMP runtime, is loaded), for the calling thread
    (OpenMP's limit is per thread); the package's container environment
    (``OMP_NUM_THREADS=1`` and the BLAS equivalents,
    pipeline_code/serving_env.py) caps every thread from the start.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on threadpoolctl
        return
    threadpool_limits(limits=1)  # every API: BLAS and OpenMP


# -- serving -----------------------------------------------------------------------------


def transform_fn(model, request_body, content_type: str | None, accept: str | None):
    """Answer one request: a response with status 200 and the predictions in the
    ``accept`` type, or the client error's status and message."""
    return batch_transform_fn(model, [(request_body, content_type, accept)])[0]


def batch_transform_fn(model, requests) -> list:
    """Answer ``(body, content_type, accept)`` requests, each exactly as
    :func:`transform_fn` would, with one :func:`predict` call for all of them.

    Each item is a response, or the exception ``transform_fn`` would raise
    for that request (a bug, not a client error).
    """
    answers: list = [None] * len(requests)
    parsed = []
    for i, (body, content_type, accept) in enumerate(requests):
        try:
            parsed.append((i, parse_request(body, content_type), accept))
        except InferenceError as exc:
            answers[i] = _error(exc)
    if not parsed:
        return answers
    groups = [parsed]
    if len(parsed) > 1:
        try:
            predictions = predict([pair for _i, pairs, _a in parsed for pair in pairs], model)
        except Exception:  # noqa: BLE001 - predicted one by one below, so the error belongs to its request
            groups = [[item] for item in parsed]
        else:
            start = 0
            for i, pairs, accept in parsed:
                answers[i] = _answer(predictions[start:start + len(pairs)], accept)
                start += len(pairs)
            return answers
    for group in groups:
        for i, pairs, accept in group:
            try:
                answers[i] = _answer(predict(pairs, model), accept)
            except Exception as exc:  # noqa: BLE001 - what transform_fn would raise
                if len(requests) == 1:
                    raise
                answers[i] = exc
    return answers


def _answer(predictions: Predictions, accept: str | None):
    try:
        body, content_type = format_response(predictions, accept)
    except InferenceError as exc:
        return _error(exc)
    return _response(body.encode("utf-8"), 200, content_type)


def _error(exc: InferenceError):
    return _response(exc.message.encode("utf-8"), exc.status_code, ERROR_CONTENT_TYPE)


# -- input -------------------------------------------------------------------------------


def _media_type(value: str | None) -> tuple[str, dict]:
    parts = [p.strip() for p in (value or "").split(";")]
    params = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"').lower()
    return parts[0].lower(), params


def parse_request(input_data, content_type: str | None) -> Pairs:
    """Parse a request body (bytes, or text as the container decodes it) into
    :class:`Pairs`; every client mistake is an :class:`InferenceError`."""
    media, params = _media_type(content_type)
    if media not in CONTENT_TYPES:
        raise InferenceError(415, f"unsupported content type {content_type!r}; send one of "
                                  f"{', '.join(CONTENT_TYPES)}")
    charset = params.get("charset")
    if charset and charset not in _UTF8:
        raise InferenceError(415, f"unsupported charset {charset!r}; send UTF-8")
    if input_data is None:
        input_data = b""
    if isinstance(input_data, str):
        # The container decoded it with replacement characters: one means bytes that were not UTF-8.
        bad = input_data.find("\ufffd")
        if bad >= 0:
            raise InferenceError(400, f"request body is not UTF-8 text (character {bad} decodes to U+FFFD, "
                                      "the replacement character)")
        text = input_data
        size = len(text.encode("utf-8", "surrogatepass"))
    elif isinstance(input_data, (bytes, bytearray, memoryview)):
        data = bytes(input_data)
        size = len(data)
        if size > MAX_BODY_BYTES:
            raise InferenceError(413, f"request body is {size} bytes; the limit is {MAX_BODY_BYTES}")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InferenceError(400, f"request body is not UTF-8 text (byte 0x{data[exc.start]:02x} "
                                      f"at offset {exc.start})") from None
    else:
        raise InferenceError(400, f"request body must be bytes, got {type(input_data).__name__}")
    if size > MAX_BODY_BYTES:
        raise InferenceError(413, f"request body is {size} bytes; the limit is {MAX_BODY_BYTES}")
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise InferenceError(400, f"empty request body; send sentence pairs as {media}")
    if media == CSV:
        pairs = _parse_csv(text)
    elif media == JSON:
        pairs = _parse_json(text)
    else:
        pairs = _parse_jsonlines(text)
    if not pairs:
        raise InferenceError(400, "the request has no sentence pairs")
    if len(pairs) > MAX_PAIRS:
        raise InferenceError(400, f"the request has {len(pairs)} pairs; the limit is {MAX_PAIRS} per request")
    return Pairs(pairs, media)


def _check_sentence(value, where: str, name: str) -> str:
    if not isinstance(value, str):
        kind = "null" if value is None else type(value).__name__
        raise InferenceError(400, f"{where}: {name} must be a string, got {kind}")
    if not value.strip():
        raise InferenceError(400, f"{where}: {name} is empty")
    if len(value) > MAX_SENTENCE_CHARS:
        raise InferenceError(400, f"{where}: {name} has {len(value)} characters; the limit is "
                                  f"{MAX_SENTENCE_CHARS}")
    return value


def _parse_csv(text: str) -> list[tuple[str, str]]:
    reader = csv.reader(io.StringIO(text.rstrip("\r\n"), newline=""), strict=True)
    pairs = []
    try:
        for row in reader:
            where = f"text/csv row {reader.line_num}"
            if not row:
                raise InferenceError(400, f"{where} is empty")
            if len(row) != 2:
                raise InferenceError(400, f"{where}: expected 2 columns (sentence1,sentence2), got {len(row)}")
            pairs.append((_check_sentence(row[0], where, "sentence1"),
                          _check_sentence(row[1], where, "sentence2")))
            if len(pairs) > MAX_PAIRS:
                break
    except csv.Error as exc:
        raise InferenceError(400, f"malformed CSV at row {reader.line_num}: {exc}") from None
    return pairs


def _instance(item, where: str) -> tuple[str, str]:
    if isinstance(item, dict):
        missing = [k for k in ("sentence1", "sentence2") if k not in item]
        extra = sorted(k for k in item if k not in ("sentence1", "sentence2"))
        if missing or extra:
            problem = "; ".join(filter(None, [
                f"missing {', '.join(missing)}" if missing else "",
                f"unexpected {', '.join(map(repr, extra))}" if extra else ""]))
            raise InferenceError(400, f"{where}: expected keys sentence1 and sentence2 ({problem})")
        return (_check_sentence(item["sentence1"], where, "sentence1"),
                _check_sentence(item["sentence2"], where, "sentence2"))
    if isinstance(item, list):
        if len(item) != 2:
            raise InferenceError(400, f"{where}: expected a pair [sentence1, sentence2], got {len(item)} values")
        return (_check_sentence(item[0], where, "sentence1"), _check_sentence(item[1], where, "sentence2"))
    kind = "null" if item is None else type(item).__name__
    raise InferenceError(400, f"{where}: expected an object {{\"sentence1\", \"sentence2\"}} or a pair "
                              f"[sentence1, sentence2], got {kind}")


def _loads(text: str, where: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InferenceError(400, f"malformed JSON{where} at line {exc.lineno} column {exc.colno}: "
                                  f"{exc.msg}") from None
    except RecursionError:
        raise InferenceError(400, f"malformed JSON{where}: nested too deeply") from None


def _parse_json(text: str) -> list[tuple[str, str]]:
    doc = _loads(text, "")
    if isinstance(doc, dict):
        if "instances" in doc:
            extra = sorted(k for k in doc if k != "instances")
            if extra:
                raise InferenceError(400, f"unexpected key(s) {', '.join(map(repr, extra))} next to "
                                          "'instances'")
            items = doc["instances"]
            if not isinstance(items, list):
                raise InferenceError(400, f"'instances' must be a list, got {type(items).__name__}")
            return [_instance(item, f"instance {i}") for i, item in enumerate(items[:MAX_PAIRS + 1])]
        return [_instance(doc, "the request object")]
    if isinstance(doc, list):
        if len(doc) == 2 and all(isinstance(x, str) for x in doc):
            raise InferenceError(400, "expected a list of pairs; wrap a single pair: [[sentence1, sentence2]]")
        return [_instance(item, f"instance {i}") for i, item in enumerate(doc[:MAX_PAIRS + 1])]
    raise InferenceError(400, 'expected {"instances": [...]}, a list of pairs or a '
                              f'{{"sentence1", "sentence2"}} object, got {type(doc).__name__}')


def _parse_jsonlines(text: str) -> list[tuple[str, str]]:
    pairs = []
    for no, line in enumerate(text.rstrip().split("\n"), 1):
        where = f"application/jsonlines line {no}"
        if not line.strip():
            raise InferenceError(400, f"{where} is empty")
        pairs.append(_instance(_loads(line, f" on line {no}"), where))
        if len(pairs) > MAX_PAIRS:
            break
    return pairs


# -- prediction ------------------------------------------------------------------------------


def predict(input_data, model) -> Predictions:
    """Score the pairs (a :class:`Pairs` or any sequence of ``(s1, s2)``) with ``model``."""
    pipeline = getattr(model, "pipeline", model)
    problem_type = getattr(model, "problem_type", None) or (
        names.BINARY_CLASSIFICATION if hasattr(pipeline, "predict_proba") else names.REGRESSION)
    pairs = list(input_data)
    if not pairs:
        empty = np.empty(0)
        if problem_type == names.BINARY_CLASSIFICATION:
            return Predictions(problem_type, empty.astype(np.int64), empty)
        return Predictions(problem_type, empty, None)
    if problem_type == names.BINARY_CLASSIFICATION:
        prob = pipeline.predict_proba(pairs)[:, 1]
        return Predictions(problem_type, (prob >= 0.5).astype(np.int64), prob)
    return Predictions(problem_type, np.asarray(pipeline.predict(pairs), dtype=np.float64), None)


# -- output ------------------------------------------------------------------------------------


def default_accept() -> str:
    """``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` when it is a type this code writes, else JSON
    (the container's default)."""
    value = _media_type(os.environ.get(DEFAULT_ACCEPT_ENV))[0]
    return value if value in CONTENT_TYPES else JSON


def _choose_accept(accept: str | None) -> str:
    if not accept or not accept.strip():
        return default_accept()
    ranges = []
    for order, part in enumerate(accept.split(",")):
        media, params = _media_type(part)
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 0.0
        if media and q > 0:
            ranges.append((-q, order, media))
    for _, _, media in sorted(ranges):
        if media in CONTENT_TYPES:
            return media
        if media == "*/*":
            return default_accept()
        if media == "text/*":
            return CSV
        if media == "application/*":
            return JSON
    raise InferenceError(406, f"cannot produce {accept!r}; accepted types: {', '.join(CONTENT_TYPES)}")


def format_response(prediction: Predictions, accept: str | None) -> tuple[str, str]:
    """Serialize the predictions in the ``accept`` type; returns ``(body, content_type)``."""
    content_type = _choose_accept(accept)
    records = prediction.records()
    if content_type == JSON:
        return json.dumps({"predictions": records}, separators=(",", ":")), JSON
    if content_type == JSONLINES:
        return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records), JSONLINES
    if prediction.probabilities is not None:
        return "".join(f"{r['label']},{r['probability']:.6f}\n" for r in records), CSV
    return "".join(f"{r['score']:.6f}\n" for r in records), CSV
