"""The toy model's parsing, prediction and rendering (what ``inference.py`` serves).

The wire contract of processing_scripts/inference.py in small: CSV / JSON / JSON
Lines in and out, ``InferenceError`` with 400/406/415. Bodies arrive as the
container hands them over (text for ``text/csv`` and ``application/json``, with
replacement characters for bytes that were not UTF-8; else bytes).

Test hooks (this toy only): a pair whose first sentence is ``__sleep__ S`` sleeps S
seconds in ``predict`` (``__sleep__ S FILE`` first creates FILE, so a test can wait until
the model is busy with it), ``__boom__`` raises a bug (500), ``__exit__`` kills the worker.
"""

import csv
import io
import json
import os
import time

import joblib

CSV = "text/csv"
JSON = "application/json"
JSONL = "application/jsonlines"
MAX_BODY = 6 * 1024 * 1024


class InferenceError(Exception):
    def __init__(self, status_code, message):
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def load(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))


def _pair(obj, where):
    if isinstance(obj, dict):
        if set(obj) != {"sentence1", "sentence2"}:
            raise InferenceError(400, f"{where}: expected keys sentence1, sentence2")
        obj = [obj["sentence1"], obj["sentence2"]]
    if not isinstance(obj, list) or len(obj) != 2 or not all(isinstance(s, str) for s in obj):
        raise InferenceError(400, f"{where}: expected a pair of strings")
    return obj


def parse(body, content_type):
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in (CSV, JSON, JSONL):
        raise InferenceError(415, f"content type {content_type!r} is not supported; use {CSV}, {JSON} or {JSONL}")
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError as exc:
        raise InferenceError(400, f"body is not UTF-8 (byte {exc.start})")
    if "\ufffd" in text:
        raise InferenceError(400, f"body is not UTF-8 (character {text.index(chr(0xfffd))})")
    size = len(body) if isinstance(body, bytes) else len(text.encode("utf-8"))
    if size > MAX_BODY:
        raise InferenceError(413, f"request body is {size} bytes; the limit is {MAX_BODY}")
    if not text.strip():
        raise InferenceError(400, "empty body")
    if media == CSV:
        try:
            rows = list(csv.reader(io.StringIO(text), strict=True))
        except csv.Error as exc:
            raise InferenceError(400, f"malformed CSV: {exc}")
        rows = [r for r in rows if r]
        for n, r in enumerate(rows, 1):
            if len(r) != 2:
                raise InferenceError(400, f"CSV row {n}: expected 2 columns, got {len(r)}")
        return rows
    if media == JSON:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InferenceError(400, f"malformed JSON: {exc}")
        if isinstance(data, dict):
            data = data.get("instances")
        if not isinstance(data, list) or not data:
            raise InferenceError(400, "expected {\"instances\": [...]} or a list of pairs")
        return [_pair(x, f"instance {i}") for i, x in enumerate(data)]
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(_pair(json.loads(line), f"line {n}"))
            except ValueError as exc:
                raise InferenceError(400, f"line {n}: malformed JSON: {exc}")
    return rows


def predict(data, model):
    for a, _b in data:
        if a.startswith("__sleep__"):
            _, seconds, *started = a.split(maxsplit=2)
            if started:
                open(started[0], "w").close()
            time.sleep(float(seconds))
        elif a == "__boom__":
            raise RuntimeError("a bug in the model code")
        elif a == "__exit__":
            os._exit(1)
    proba = model.predict_proba(data)[:, 1]
    return [(int(p >= 0.5), float(p)) for p in proba]


def render(prediction, accept):
    media = (accept or "*/*").split(";")[0].strip().lower()
    if media in ("*/*", ""):
        media = JSON
    if media == CSV:
        return "".join(f"{label},{p:.6f}\n" for label, p in prediction), CSV
    objs = [{"label": label, "probability": round(p, 6)} for label, p in prediction]
    if media == JSON:
        return json.dumps({"predictions": objs}), JSON
    if media == JSONL:
        return "".join(json.dumps(o) + "\n" for o in objs), JSONL
    raise InferenceError(406, f"accept type {accept!r} is not supported; use {CSV}, {JSON} or {JSONL}")
