"""Serving entry point for the SageMaker scikit-learn container (and the local endpoint).

``model_fn(model_dir)`` loads ``model.joblib`` + ``model_info.json``;
``input_fn(body, content_type)`` parses raw sentence pairs;
``predict_fn(data, model)`` scores them; ``output_fn(prediction, accept)``
returns ``(body, content_type)`` with ``body`` a ``str``. The four functions are
safe to call from several threads at once (the model is only read).

Requests (``Content-Type``; an optional ``charset`` must be UTF-8):

- ``text/csv``: one pair per row, two columns ``sentence1,sentence2``, RFC 4180
  quoting, no header;
- ``application/json``: ``{"instances": [{"sentence1": s1, "sentence2": s2}, ...]}``,
  a list of pairs ``[[s1, s2], ...]`` (instances may be either form), or one
  object ``{"sentence1": s1, "sentence2": s2}``;
- ``application/jsonlines``: one ``{"sentence1", "sentence2"}`` object or
  ``[s1, s2]`` per line.

Responses (``Accept``; missing or ``*/*`` -> CSV for a CSV request, else JSON;
a list of types with ``q`` weights is honoured):

- ``application/json``: ``{"predictions": [{"label": 1, "probability": 0.87}, ...]}``
  (Regression: ``{"predictions": [{"score": 3.2}, ...]}``);
- ``text/csv``: ``label,probability`` per row (Regression: ``score``);
- ``application/jsonlines``: one prediction object per line.

``probability`` is the calibrated probability that the pair is a paraphrase;
``label`` is 1 when it is at least 0.5. Numbers have 6 decimals.

Client mistakes raise :class:`InferenceError` with an HTTP status and a message
naming the problem and where: 400 (empty, not UTF-8, malformed CSV/JSON, wrong
column count, missing keys, non-string or empty sentences, too many pairs or
too long a sentence), 413 (body over 6 MB), 415 (content type), 406 (accept).

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

import contract  # noqa: E402

CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"
CONTENT_TYPES = (CSV, JSON, JSONLINES)

#: SageMaker's real-time payload limit.
MAX_BODY_BYTES = 6 * 1024 * 1024
MAX_PAIRS = 10_000
MAX_SENTENCE_CHARS = 5_000
_UTF8 = {"utf-8", "utf8", "us-ascii", "ascii"}

try:  # the real container maps this base class to the status code
    from sagemaker_inference.errors import GenericInferenceToolkitError as _ToolkitError
except ImportError:  # pragma: no cover - depends on the environment
    class _ToolkitError(Exception):
        def __init__(self, status_code, message=None, phrase=None):
            self.status_code = status_code
            self.message = message or "Invalid Request"
            self.phrase = phrase or message
            super().__init__(status_code, message, phrase)


class InferenceError(_ToolkitError):
    """A client error: ``status_code`` (400, 406, 413, 415) and a ``message`` for people."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code, message, message)
        self.status_code = status_code
        self.message = message

    def __str__(self) -> str:
        return self.message


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
        self.problem_type = info.get("problem_type", contract.BINARY_CLASSIFICATION)


class Predictions:
    """What ``predict_fn`` returns: labels and probabilities, or scores."""

    def __init__(self, problem_type: str, values: np.ndarray, probabilities: np.ndarray | None,
                 request_content_type: str | None) -> None:
        self.problem_type = problem_type
        self.values = values
        self.probabilities = probabilities
        self.request_content_type = request_content_type

    def __len__(self) -> int:
        return len(self.values)

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

    path = os.path.join(model_dir, contract.MODEL_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {contract.MODEL_FILE} in {model_dir}")
    info_path = os.path.join(model_dir, contract.MODEL_INFO_FILE)
    info = {}
    if os.path.isfile(info_path):
        with open(info_path, encoding="utf-8") as fh:
            info = json.load(fh)
    _limit_blas_threads()
    pipeline = joblib.load(path)
    if "problem_type" not in info:
        info["problem_type"] = (contract.BINARY_CLASSIFICATION if hasattr(pipeline, "predict_proba")
                                else contract.REGRESSION)
    model = Model(pipeline, info)
    predict_fn(Pairs([("A warm-up sentence.", "A warm-up sentence.")]), model)  # first request fast
    return model


def _limit_blas_threads() -> None:
    """One BLAS thread for the whole serving process.

    Requests carry a few pairs (tiny matrices): BLAS threads only add
    overhead, and several request threads each starting BLAS threads
    oversubscribe the CPUs. OpenMP (gradient boosting) is left alone.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on threadpoolctl
        return
    threadpool_limits(limits=1, user_api="blas")


# -- input -------------------------------------------------------------------------------


def _media_type(value: str | None) -> tuple[str, dict]:
    parts = [p.strip() for p in (value or "").split(";")]
    params = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"').lower()
    return parts[0].lower(), params


def input_fn(input_data, content_type: str | None) -> Pairs:
    """Parse a request body into :class:`Pairs`; every client mistake is an :class:`InferenceError`."""
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


def predict_fn(input_data, model) -> Predictions:
    """Score the pairs (a :class:`Pairs` or any sequence of ``(s1, s2)``) with ``model``."""
    pipeline = getattr(model, "pipeline", model)
    problem_type = getattr(model, "problem_type", None) or (
        contract.BINARY_CLASSIFICATION if hasattr(pipeline, "predict_proba") else contract.REGRESSION)
    pairs = list(input_data)
    request_type = getattr(input_data, "content_type", None)
    if not pairs:
        empty = np.empty(0)
        return Predictions(problem_type, empty.astype(np.int64) if problem_type == contract.BINARY_CLASSIFICATION
                           else empty, empty if problem_type == contract.BINARY_CLASSIFICATION else None,
                           request_type)
    if problem_type == contract.BINARY_CLASSIFICATION:
        prob = pipeline.predict_proba(pairs)[:, 1]
        return Predictions(problem_type, (prob >= 0.5).astype(np.int64), prob, request_type)
    return Predictions(problem_type, np.asarray(pipeline.predict(pairs), dtype=np.float64), None, request_type)


# -- output ------------------------------------------------------------------------------------


def _choose_accept(accept: str | None, request_type: str | None) -> str:
    default = CSV if request_type == CSV else JSON
    if not accept or not accept.strip():
        return default
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
            return default
        if media == "text/*":
            return CSV
        if media == "application/*":
            return default if default != CSV else JSON
    raise InferenceError(406, f"cannot produce {accept!r}; accepted types: {', '.join(CONTENT_TYPES)}")


def output_fn(prediction: Predictions, accept: str | None) -> tuple[str, str]:
    """Serialize the predictions in the ``accept`` type; returns ``(body, content_type)``."""
    content_type = _choose_accept(accept, getattr(prediction, "request_content_type", None))
    records = prediction.records()
    if content_type == JSON:
        return json.dumps({"predictions": records}, separators=(",", ":")), JSON
    if content_type == JSONLINES:
        return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records), JSONLINES
    if prediction.probabilities is not None:
        return "".join(f"{r['label']},{r['probability']:.6f}\n" for r in records), CSV
    return "".join(f"{r['score']:.6f}\n" for r in records), CSV
