"""The monitor's records: capture and ground-truth files into columns, predictions and labels, the join.

Reads SageMaker's data-capture JSONL (docs/CONTRACTS.md §2) and the
ground-truth JSONL of a window's files, decodes the predictions (by
``observedContentType``) and the labels, and joins them on the capture's
``inferenceId`` (else its ``eventId``) = the label's ``eventMetadata.eventId``,
counting what it met (:data:`COUNT_KEYS`).

Scale: parsing is columnar. Each capture/label file is scanned by one
compiled regular expression in C (``re.findall`` over the file's bytes) that
pulls out only the fields the merge needs and skips the request payload; the
extracted strings are unescaped by a single ``json.loads`` call per chunk, and
everything after that is numpy/pandas. Lines that do not have the documented
key order (or are malformed) fall back to ``json.loads`` one by one, with the
same result.

Standard library, numpy and pandas.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from stscontracts import names

#: Lines per parsing chunk (bounds memory whatever the file sizes).
CHUNK_BYTES = 64 * 1024 * 1024

COUNT_KEYS = (
    "captured", "labelled", "matched", "unmatched_captures", "unmatched_labels",
    "duplicate_captures", "duplicate_labels", "malformed_capture_lines", "malformed_label_lines",
)


# --------------------------------------------------------------------------- columnar parsing

_S = rb"\s*"
_STR = rb'"((?:[^"\\]++|\\.)*+)"'  # a JSON string's content, still escaped
_PLAIN = rb'"([^"\\]*+)"'  # a JSON string with no escapes
_OBJ_SKIP = rb'\{(?:[^"{}]++|"[^"\\]*+(?:\\.[^"\\]*+)*+")*+\}'  # a flat object, skipped

#: One capture record in SageMaker's key order (docs/CONTRACTS.md §2), or any other line.
CAPTURE_LINE = re.compile(
    rb"^[ \t]*(?:(\{)" + _S + rb'"captureData"' + _S + rb":" + _S + rb"\{"
    + rb"(?:" + _S + rb'"endpointInput"' + _S + rb":" + _S + _OBJ_SKIP + _S + rb",)?"  # absent: output-only capture
    + _S + rb'"endpointOutput"' + _S + rb":" + _S + rb"\{"
    + _S + rb'"observedContentType"' + _S + rb":" + _S + _PLAIN + _S + rb","
    + _S + rb'"mode"' + _S + rb":" + _S + rb'"OUTPUT"' + _S + rb","
    + _S + rb'"data"' + _S + rb":" + _S + _STR + _S + rb","
    + _S + rb'"encoding"' + _S + rb":" + _S + _PLAIN + _S + rb"\}" + _S + rb"\}" + _S + rb","
    + _S + rb'"eventMetadata"' + _S + rb":" + _S + rb"\{"
    + _S + rb'"eventId"' + _S + rb":" + _S + _PLAIN
    + rb"(?:" + _S + rb"," + _S + rb'"inferenceId"' + _S + rb":" + _S + _PLAIN + rb")?"
    + rb"(?:" + _S + rb"," + _S + rb'"inferenceTime"' + _S + rb":" + _S + rb'"[^"\\]*+"' + rb")?"
    + _S + rb"\}" + _S + rb"," + _S + rb'"eventVersion"' + _S + rb":" + _S + rb'"[^"\\]*+"'
    + _S + rb"\}[ \t\r]*|(.*))$",
    re.M,
)
# groups: 1 "{" (a record), 2 content type, 3 data, 4 encoding, 5 eventId, 6 inferenceId, 7 other line

#: One ground-truth record in the documented key order, or any other line.
LABEL_LINE = re.compile(
    rb"^[ \t]*(?:(\{)" + _S + rb'"groundTruthData"' + _S + rb":" + _S + rb"\{"
    + _S + rb'"data"' + _S + rb":" + _S + _STR + _S + rb","
    + _S + rb'"encoding"' + _S + rb":" + _S + _PLAIN + _S + rb"\}" + _S + rb","
    + _S + rb'"eventMetadata"' + _S + rb":" + _S + rb"\{" + _S + rb'"eventId"' + _S + rb":" + _S + _PLAIN
    + _S + rb"\}" + _S + rb"," + _S + rb'"eventVersion"' + _S + rb":" + _S + rb'"[^"\\]*+"'
    + _S + rb"\}[ \t\r]*|(.*))$",
    re.M,
)
# groups: 1 "{" (a record), 2 data, 3 encoding, 4 eventId, 5 other line


def _chunks(path: Path) -> Iterable[bytes]:
    """A file's bytes in pieces of about CHUNK_BYTES that end at a line break."""
    with open(path, "rb") as handle:
        rest = b""
        while True:
            block = handle.read(CHUNK_BYTES)
            if not block:
                if rest:
                    yield rest
                return
            block = rest + block
            cut = block.rfind(b"\n")
            if cut < 0:
                rest = block
                continue
            yield block[: cut + 1]
            rest = block[cut + 1 :]


def _columns(rows: list[tuple[bytes, ...]], width: int) -> list[np.ndarray]:
    """The regex groups of every line as object arrays, one per group (transposed in C)."""
    table = np.empty((len(rows), width), dtype=object)
    if rows:
        table[:] = rows
    return [table[:, i] for i in range(width)]


def _decode_plain(items: Sequence[bytes]) -> list[str]:
    """Escape-free JSON string contents (ids, content types) as str, in one C call."""
    if len(items) == 0:
        return []
    return b"\x00".join(items).decode("utf-8", "replace").split("\x00")


class _AllValid(list):
    """A list of decoded strings known to hold no None."""


def _unescape(items: Sequence[bytes]) -> list[str | None]:
    """Escaped JSON string contents as str: one ``json.loads`` for all, else one by one.

    An item that is not a valid JSON string body gives None.
    """
    if len(items) == 0:
        return _AllValid()
    try:
        return _AllValid(json.loads(b'["' + b'","'.join(items) + b'"]'))
    except (ValueError, UnicodeDecodeError):
        out: list[str | None] = []
        for item in items:  # rare path: some item has an invalid escape or bytes
            try:
                out.append(json.loads(b'"' + item + b'"'))
            except (ValueError, UnicodeDecodeError):
                out.append(None)
        return out


def _get(record: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(record, dict) or key not in record:
            return None
        record = record[key]
    return record


def _capture_fields(line: bytes) -> tuple[str, str, str, str, str] | None:
    """Slow path: (content type, data, encoding, eventId, inferenceId) of a line, or None."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    output = _get(record, "captureData", "endpointOutput")
    meta = _get(record, "eventMetadata")
    if not isinstance(output, dict) or not isinstance(meta, dict):
        return None
    ct, data, enc = output.get("observedContentType"), output.get("data"), output.get("encoding")
    event_id, inference_id = meta.get("eventId"), meta.get("inferenceId") or ""
    if not all(isinstance(v, str) for v in (ct, data, enc, event_id, inference_id)):
        return None
    if not event_id and not inference_id:
        return None
    return ct, data, enc, event_id, inference_id


def _label_fields(line: bytes) -> tuple[str, str, str] | None:
    """Slow path: (data, encoding, eventId) of a ground-truth line, or None."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    data, enc = _get(record, "groundTruthData", "data"), _get(record, "groundTruthData", "encoding")
    event_id = _get(record, "eventMetadata", "eventId")
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        data = json.dumps(data)
    if not all(isinstance(v, str) for v in (data, enc, event_id)) or not event_id:
        return None
    return data, enc or "CSV", event_id


@dataclass
class Parsed:
    """Columns of the well-formed records of a set of files, in file/line order."""

    columns: dict[str, list]
    malformed: int = 0
    examples: list[str] = field(default_factory=list)

    def add_malformed(self, where: str, count: int = 1) -> None:
        self.malformed += count
        if len(self.examples) < 5:
            self.examples.append(where)


def read_captures(files: Sequence[Path]) -> tuple[pd.DataFrame, int, list[str]]:
    """Capture records: DataFrame(key, content_type, encoding, data), malformed count, examples.

    ``key`` is the inferenceId when the record has one, else the eventId.
    ``data`` is the endpoint output's text as captured (still BASE64 when so
    encoded). Blank lines are ignored; every other unusable line is malformed.
    """
    cols: dict[str, list] = {"key": [], "content_type": [], "encoding": [], "data": []}
    parsed = Parsed(cols)
    for path in files:
        for chunk in _chunks(path):
            rec, ct, data, enc, event_id, inference_id, other = _columns(CAPTURE_LINE.findall(chunk), 7)
            is_rec = rec.astype(bool)
            has_id = event_id.astype(bool) | inference_id.astype(bool)
            parsed.malformed += int(np.count_nonzero(is_rec & ~has_id))  # a record with no id at all
            good = is_rec & has_id
            others = [line for line in other[~is_rec] if line.strip()]  # the slow path's lines
            key = np.where(inference_id[good].astype(bool), inference_id[good], event_id[good])
            datas = _unescape(data[good])
            keys = _decode_plain(key)
            cts = _decode_plain(ct[good])
            encs = _decode_plain(enc[good])
            bad_escape = [] if isinstance(datas, _AllValid) else [i for i, d in enumerate(datas) if d is None]
            if bad_escape:
                parsed.add_malformed(f"{path}: data with an invalid escape", len(bad_escape))
                keep = [i for i, d in enumerate(datas) if d is not None]
                datas, keys, cts, encs = ([seq[i] for i in keep] for seq in (datas, keys, cts, encs))
            cols["key"] += keys
            cols["content_type"] += cts
            cols["encoding"] += encs
            cols["data"] += datas
            for line in others:  # other key order, or malformed
                fields = _capture_fields(line)
                if fields is None:
                    parsed.add_malformed(f"{path}: {line[:80].decode('utf-8', 'replace')!r}")
                    continue
                ct, data, enc, event_id, inference_id = fields
                cols["key"].append(inference_id or event_id)
                cols["content_type"].append(ct)
                cols["encoding"].append(enc)
                cols["data"].append(data)
    frame = pd.DataFrame(cols, dtype=object)
    return frame, parsed.malformed, parsed.examples


def read_labels(files: Sequence[Path]) -> tuple[pd.DataFrame, int, list[str]]:
    """Ground-truth records: DataFrame(key, encoding, data), malformed count, examples."""
    cols: dict[str, list] = {"key": [], "encoding": [], "data": []}
    parsed = Parsed(cols)
    for path in files:
        for chunk in _chunks(path):
            rec, data, enc, event_id, other = _columns(LABEL_LINE.findall(chunk), 5)
            is_rec = rec.astype(bool)
            has_id = event_id.astype(bool)
            parsed.malformed += int(np.count_nonzero(is_rec & ~has_id))  # an empty eventId
            good = is_rec & has_id
            others = [line for line in other[~is_rec] if line.strip()]  # the slow path's lines
            datas = _unescape(data[good])
            keys = _decode_plain(event_id[good])
            encs = _decode_plain(enc[good])
            bad_escape = [] if isinstance(datas, _AllValid) else [i for i, d in enumerate(datas) if d is None]
            if bad_escape:
                parsed.add_malformed(f"{path}: data with an invalid escape", len(bad_escape))
                keep = [i for i, d in enumerate(datas) if d is not None]
                datas, keys, encs = ([seq[i] for i in keep] for seq in (datas, keys, encs))
            cols["key"] += keys
            cols["encoding"] += encs
            cols["data"] += datas
            for line in others:
                fields = _label_fields(line)
                if fields is None:
                    parsed.add_malformed(f"{path}: {line[:80].decode('utf-8', 'replace')!r}")
                    continue
                data, enc, event_id = fields
                cols["key"].append(event_id)
                cols["encoding"].append(enc)
                cols["data"].append(data)
    frame = pd.DataFrame(cols, dtype=object)
    return frame, parsed.malformed, parsed.examples


# --------------------------------------------------------------------------- value decoding

_NUMBER = r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_WS = r"[ \t\r\n]*"
_SEP = "\x00"  # joins the texts of many records for one regex pass (cannot occur in them: checked)


def _key(names: str) -> str:
    return rf'"(?:{names})"{_WS}:{_WS}"?({_NUMBER})"?'


def _one_key(names: str) -> str:
    """A lookahead that fails when the record names the key twice (two predictions)."""
    return rf'(?![^\x00]*?"(?:{names})"[^\x00]*?"(?:{names})")'


#: CSV output, one row: ``label,probability`` (or ``score``). Groups: first, second, other.
_CSV_ROW = re.compile(rf"(?:{_WS}({_NUMBER}){_WS}(?:,{_WS}({_NUMBER}){_WS})?|([^\x00]*))\x00")
#: JSON / JSON-lines output of a classifier, one prediction. Groups: label, probability, other.
_JSON_CLASSIFIER = re.compile(
    rf"(?=[^\x00]*?{_key('label|predicted_label')}){_one_key('label|predicted_label')}"
    rf"(?:(?=[^\x00]*?{_key('probability|score')}))?[^\x00]*\x00|([^\x00]*)\x00"
)
#: JSON / JSON-lines output of a regressor, one prediction. Groups: score, other.
_JSON_REGRESSOR = re.compile(
    rf"(?=[^\x00]*?{_key('score|prediction')}){_one_key('score|prediction')}[^\x00]*\x00|([^\x00]*)\x00"
)


def _scan(pattern: re.Pattern, texts: np.ndarray, width: int) -> np.ndarray:
    """One regex pass over all texts joined; an (n, width) object array of groups, one row per text."""
    n = len(texts)
    if n == 0:
        return np.zeros((0, width), dtype=object)
    joined = _SEP.join(texts.tolist()) + _SEP
    rows = pattern.findall(joined) if joined.count(_SEP) == n else None
    if rows is None or len(rows) != n:  # a text holds the separator itself: one by one (rare)
        rows = []
        for text in texts:
            found = pattern.findall(text + _SEP) if _SEP not in text else []
            rows.append(found[0] if len(found) == 1 else ("",) * (width - 1) + (text,))
    out = np.empty((n, width), dtype=object)
    out[:] = rows if width > 1 else [(r,) if isinstance(r, str) else r for r in rows]
    return out


def _numbers(items: np.ndarray) -> np.ndarray:
    """Strings to floats; empty or non-numeric -> NaN (vectorized, C)."""
    if len(items) == 0:
        return np.zeros(0)
    return pd.to_numeric(items, errors="coerce").astype(float)


def _texts(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(decoded texts, ok mask): BASE64 items decoded (rare: no type our inference returns)."""
    data = frame["data"].to_numpy(dtype=object)
    ok = np.ones(len(data), bool)
    codes, uniques = pd.factorize(frame["encoding"].astype(object))
    base64_codes = [i for i, u in enumerate(uniques) if str(u).upper() == "BASE64"]
    if base64_codes:
        data = data.copy()
        for i in np.flatnonzero(np.isin(codes, base64_codes)):
            try:
                data[i] = base64.b64decode(data[i], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                data[i], ok[i] = "", False
    return data, ok


def decode_predictions(frame: pd.DataFrame, problem_type: str) -> pd.DataFrame:
    """Predictions out of the endpoint outputs, by observedContentType.

    Returns columns ``prediction`` (label 0/1, or the regression score),
    ``score`` (the positive-class probability; NaN when absent) and ``ok``.
    Output formats (docs/CONTRACTS.md §1): CSV ``label,probability`` (or
    ``score``), JSON ``{"predictions": [{"label", "probability"}]}`` (or
    ``{"score"}``), JSON lines. A record must hold exactly one prediction.
    """
    n = len(frame)
    prediction = np.full(n, np.nan)
    score = np.full(n, np.nan)
    if n == 0:
        return pd.DataFrame({"prediction": prediction, "score": score, "ok": np.zeros(0, bool)})
    texts, ok_text = _texts(frame)
    codes, uniques = pd.factorize(frame["content_type"].astype(object))
    json_codes = [i for i, u in enumerate(uniques) if "json" in str(u).split(";")[0].lower()]
    is_json = np.isin(codes, json_codes)

    csv_idx = np.flatnonzero(~is_json & ok_text)
    if len(csv_idx):
        groups = _scan(_CSV_ROW, texts[csv_idx], 3)
        first, second = _numbers(groups[:, 0]), _numbers(groups[:, 1])
        if problem_type == names.REGRESSION:
            first = np.where(groups[:, 1].astype(bool), np.nan, first)  # one column: the score
        prediction[csv_idx], score[csv_idx] = first, second

    json_idx = np.flatnonzero(is_json & ok_text)
    if len(json_idx):
        if problem_type == names.REGRESSION:
            groups = _scan(_JSON_REGRESSOR, texts[json_idx], 2)
            prediction[json_idx] = _numbers(groups[:, 0])
        else:
            groups = _scan(_JSON_CLASSIFIER, texts[json_idx], 3)
            prediction[json_idx], score[json_idx] = _numbers(groups[:, 0]), _numbers(groups[:, 1])

    ok = ~np.isnan(prediction)
    if problem_type == names.BINARY_CLASSIFICATION:
        ok &= np.isin(prediction, (0.0, 1.0))
        ok &= np.isnan(score) | ((score >= 0) & (score <= 1))
    else:
        ok &= np.isfinite(prediction)
    return pd.DataFrame({"prediction": prediction, "score": score, "ok": ok})


def decode_labels(frame: pd.DataFrame, problem_type: str) -> tuple[np.ndarray, np.ndarray]:
    """(label values, ok mask) of ground-truth records: 0/1, or a finite real number.

    ``data`` "1", " 1 ", "1.0" and (JSON encoding) "\"1\"" are all the label 1.
    """
    if len(frame) == 0:
        return np.zeros(0), np.zeros(0, bool)
    texts, ok_text = _texts(frame)
    value = _numbers(texts)
    quoted = np.flatnonzero(np.isnan(value) & ok_text)
    if len(quoted):  # e.g. JSON-encoded "\"1\"": strip the quotes, one pass
        value[quoted] = _numbers(np.char.strip(texts[quoted].astype(str), ' \t\r\n"').astype(object))
    ok = np.isfinite(value) & ok_text
    if problem_type == names.BINARY_CLASSIFICATION:
        ok &= np.isin(value, (0.0, 1.0))
    return value, ok


# --------------------------------------------------------------------------- the join


@dataclass
class Matched:
    """The window's matched records (capture order) and what the reading met on the way."""

    label: np.ndarray  # float: 0/1, or the regression target
    prediction: np.ndarray  # float: 0/1, or the regression score
    score: np.ndarray  # float: P(label 1); NaN where the output had none
    counts: dict[str, int]  # COUNT_KEYS
    capture_examples: list[str]  # the first malformed capture lines / unusable predictions
    label_examples: list[str]


def match(capture_files: Sequence[Path], label_files: Sequence[Path], problem_type: str) -> Matched:
    """Read, decode, de-duplicate and join a window's capture and ground-truth files.

    Duplicate captures of an id: the first (by file order, then line) counts;
    duplicate labels: the latest counts (a later file corrects an earlier one).
    """
    captures, malformed_captures, capture_examples = read_captures(capture_files)
    predictions = decode_predictions(captures, problem_type)
    ok = predictions["ok"].to_numpy()
    malformed_captures += int((~ok).sum())
    if (~ok).any():
        capture_examples += [f"unusable prediction {d!r} ({c})" for d, c in
                             zip(captures["data"][~ok][:3], captures["content_type"][~ok][:3])]
    cap = pd.DataFrame({
        "key": captures["key"].to_numpy()[ok],
        "prediction": predictions["prediction"].to_numpy()[ok],
        "score": predictions["score"].to_numpy()[ok],
    })
    dup_cap = cap["key"].duplicated(keep="first")
    duplicate_captures = int(dup_cap.sum())
    cap = cap[~dup_cap.to_numpy()]

    labels_raw, malformed_labels, label_examples = read_labels(label_files)
    label_values, label_ok = decode_labels(labels_raw, problem_type)
    malformed_labels += int((~label_ok).sum())
    if (~label_ok).any():
        label_examples += [f"unusable label {d!r}" for d in labels_raw["data"][~label_ok][:3]]
    lab = pd.DataFrame({"key": labels_raw["key"].to_numpy()[label_ok], "label": label_values[label_ok]})
    dup_lab = lab["key"].duplicated(keep="last")  # a later label corrects an earlier one
    duplicate_labels = int(dup_lab.sum())
    lab = lab[~dup_lab.to_numpy()]

    merged = cap.merge(lab, on="key", how="inner", sort=False)
    counts = {
        "captured": len(cap),
        "labelled": len(lab),
        "matched": len(merged),
        "unmatched_captures": len(cap) - len(merged),
        "unmatched_labels": len(lab) - len(merged),
        "duplicate_captures": duplicate_captures,
        "duplicate_labels": duplicate_labels,
        "malformed_capture_lines": malformed_captures,
        "malformed_label_lines": malformed_labels,
    }
    return Matched(
        label=merged["label"].to_numpy(float),
        prediction=merged["prediction"].to_numpy(float),
        score=merged["score"].to_numpy(float),
        counts=counts,
        capture_examples=capture_examples,
        label_examples=label_examples,
    )
