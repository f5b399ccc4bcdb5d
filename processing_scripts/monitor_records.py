"""The monitor's records: capture and ground-truth files into columns, predictions and labels, the join.

Reads SageMaker's data-capture JSONL (docs/CONTRACTS.md §2) and the
ground-truth JSONL of a window's files, decodes the predictions (by
``observedContentType``) and the labels, and joins them on the capture's
``inferenceId`` (else its ``eventId``) = the label's ``eventMetadata.eventId``,
counting what it met (:data:`COUNT_KEYS`).

Scale (1 million captures + labels, 683 MB, in seconds: docs/monitoring.md):
no per-record Python on the common path.

- Each file is read into one reused buffer in runs of whole lines of up to
  ``CHUNK_BYTES``, with a line break put before the first line; nothing is
  copied but by the read itself. One compiled regular expression scans a run
  in C (``re.findall`` with bounds): a record in the documented key order
  gives the fields the join needs, any other line gives itself. It starts
  with a line break, a literal, so the engine's literal search finds line
  starts, and it walks the request payload (the bulk of a capture line,
  never used) with single-character loops (``[^"]*+``) that the engine runs
  without per-character dispatch; a quote preceded by exactly one or three
  backslashes is an escaped one inside the payload, any other quote ends it
  (five or more backslashes before a quote send the line to json.loads).
  The payload is skipped, not validated (a raw control character or an
  invalid escape in it does not make the record malformed).
- Two layouts: compact (SageMaker's capture, the local endpoint's) and
  spaced (``json.dumps``' default, ``stsmon ground-truth``); a run is read
  with its first line's layout, its other lines again with the other one.
  Allowing optional spaces in one expression would cost a third of the scan.
- The fields are taken raw and unescaped by one ``json.loads`` of all of
  them at once; few-valued ones (content types, encodings, binary labels)
  once per distinct value.
- Any other line (another key order, an empty ``eventId``, malformed) is
  parsed by ``json.loads`` alone, in its place: same result, slower. A run
  where a match went over a line break (a string left open) is re-read line
  by line.
- Predictions: plain CSV outputs (``label,probability`` numbers only) are
  split and read by ``float``; anything else by a regular expression pass
  over all outputs joined. The join: the keys' hashes sorted and searched
  with numpy, every match checked as strings (a collision of two ids hands
  the join to two dicts).

Standard library and numpy.
"""

from __future__ import annotations

import base64
import binascii
import gc
import json
import operator
import re
from contextlib import contextmanager
from functools import lru_cache
from itertools import repeat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from stscontracts import names

#: Bytes per parsing chunk (bounds memory whatever the file sizes).
CHUNK_BYTES = 64 * 1024 * 1024

COUNT_KEYS = (
    "captured", "labelled", "matched", "unmatched_captures", "unmatched_labels",
    "duplicate_captures", "replaced_labels", "malformed_capture_lines", "malformed_label_lines",
)


# --------------------------------------------------------------------------- the line expressions

def _capture_record(sp: bytes, content_type: bytes | None = None, encoding: bytes | None = None) -> re.Pattern:
    """One capture record in SageMaker's key order with ``sp`` between tokens, or any other line.

    Groups: content type, data, encoding, inferenceId (non-empty), eventId (when there is no
    inferenceId), other line. With ``content_type`` and ``encoding`` (raw) given, the record
    must have those (the common case: a file holds one kind of output) and their groups are
    empty: two objects fewer per line. A record's eventId is not empty (else: json.loads).
    """

    def k(name: bytes) -> bytes:
        return sp + b'"' + name + b'"' + sp + b":" + sp

    def field(value: bytes | None) -> bytes:
        return _FIELD if value is None else b'"' + re.escape(value) + b'"()'

    return re.compile(
        rb"\n(?:" + sp + rb"\{" + k(b"captureData") + rb"\{"
        + rb"(?:" + k(b"endpointInput") + rb"\{" + k(b"observedContentType") + _SKIP + sp + b","
        + k(b"mode") + rb'"INPUT"' + sp + b"," + k(b"data") + _PAYLOAD + sp + b","
        + k(b"encoding") + _SKIP + sp + rb"\}" + sp + b",)?"  # absent: output-only capture
        + k(b"endpointOutput") + rb"\{" + k(b"observedContentType") + field(content_type) + sp + b","
        + k(b"mode") + rb'"OUTPUT"' + sp + b"," + k(b"data") + _STR + sp + b","
        + k(b"encoding") + field(encoding) + sp + rb"\}" + sp + rb"\}" + sp + b","
        + k(b"eventMetadata") + rb"\{" + k(b"eventId")
        + rb'(?:"[^"]++"' + sp + b"," + k(b"inferenceId") + _NONEMPTY  # the key: the inferenceId
        + rb"|" + _NONEMPTY + rb"(?:" + sp + b"," + k(b"inferenceId") + rb'"")?)'  # else the eventId
        + rb"(?:" + sp + b"," + k(b"inferenceTime") + _SKIP + rb")?"
        + sp + rb"\}" + sp + b"," + k(b"eventVersion") + _SKIP + sp + rb"\}" + _END
        + rb"|(.*))"
    )


def _label_record(sp: bytes, encoding: bytes | None = None) -> re.Pattern:
    """One ground-truth record in the documented key order with ``sp`` between tokens, or any
    other line. Groups: data, encoding, eventId (non-empty), other line; ``encoding`` as in
    :func:`_capture_record`."""

    def k(name: bytes) -> bytes:
        return sp + b'"' + name + b'"' + sp + b":" + sp

    field = _FIELD if encoding is None else b'"' + re.escape(encoding) + b'"()'
    return re.compile(
        rb"\n(?:" + sp + rb"\{" + k(b"groundTruthData") + rb"\{" + k(b"data") + _STR + sp + b","
        + k(b"encoding") + field + sp + rb"\}" + sp + b","
        + k(b"eventMetadata") + rb"\{" + k(b"eventId") + _NONEMPTY + sp + rb"\}" + sp + b","
        + k(b"eventVersion") + _SKIP + sp + rb"\}" + _END
        + rb"|(.*))"
    )


_FIELD = rb'"([^"]*+)"'  # a string's raw content, escapes kept (unescaped later, all at once)
_NONEMPTY = rb'"([^"]++)"'
_SKIP = rb'"[^"]*+"'  # a short string, skipped (a quote inside it fails the line: slow path)
#: The request payload, skipped: a quote after exactly one or three backslashes is escaped.
_PAYLOAD = rb'"[^"]*+(?:(?:(?<=[^\\]\\)|(?<=[^\\]\\\\\\))"[^"]*+)*+"'
_STR = rb'"((?:[^"\\]++|\\.)*+)"'  # a JSON string's content, escapes kept, exact
_END = rb"[ \t\r]*(?=\n|\Z)"


@lru_cache(maxsize=64)
def _capture_specialized(spaced: bool, content_type: bytes, encoding: bytes) -> re.Pattern:
    return _capture_record(rb" *" if spaced else b"", content_type, encoding)


@lru_cache(maxsize=64)
def _label_specialized(spaced: bool, encoding: bytes) -> re.Pattern:
    return _label_record(rb" *" if spaced else b"", encoding)


@dataclass(frozen=True)
class _Kind:
    """How to read one kind of file (capture or ground truth) in its two layouts: compact, as
    SageMaker and the local endpoint write capture, and spaced, as ``json.dumps`` writes
    (``stsmon ground-truth``). Each layout is the first choice for the runs written in it
    (optional spaces between tokens would cost a third of the scan when there are none), with
    the constant fields of the run's first record inlined."""

    compact: re.Pattern
    spaced: re.Pattern
    specialize: Any  # (spaced, the first record's groups) -> the pattern with its constants inlined
    ids: tuple[int, ...]  # the groups of which one is not empty in a record
    constants: tuple[int, ...]  # the groups a specialized pattern leaves empty


#: The general patterns (any content type and encoding), compact and spaced.
CAPTURE_RECORD = _capture_record(b"")
CAPTURE_RECORD_SPACED = _capture_record(rb" *")
LABEL_RECORD = _label_record(b"")
LABEL_RECORD_SPACED = _label_record(rb" *")
_CAPTURE = _Kind(CAPTURE_RECORD, CAPTURE_RECORD_SPACED,
                 lambda spaced, g: _capture_specialized(spaced, g[0], g[2]), ids=(3, 4), constants=(0, 2))
_LABEL = _Kind(LABEL_RECORD, LABEL_RECORD_SPACED,
               lambda spaced, g: _label_specialized(spaced, g[1]), ids=(2,), constants=(1,))


def _chunks(path: Path, buffer: bytearray) -> Iterator[tuple[bytearray, int, int]]:
    """A file as runs of whole lines, without copying them: ``(buffer, start, end)`` where
    ``buffer[start]`` is a line break put before the first line and ``buffer[start:end]`` holds
    up to ``CHUNK_BYTES`` (the last line break of the run excluded). ``buffer`` is reused from
    file to file (and grown for a line longer than it)."""
    with open(path, "rb", buffering=0) as handle:
        buffer[0] = 0x0A
        filled = 1
        while True:
            if filled == len(buffer):  # a line longer than the buffer: grow it
                buffer.extend(bytes(max(len(buffer), 1024)))
            got = handle.readinto(memoryview(buffer)[filled:])
            if not got:
                if filled > 1:
                    yield buffer, 0, filled
                return
            filled += got
            cut = buffer.rfind(b"\n", 1, filled)
            if cut <= 0:
                continue
            yield buffer, 0, cut
            rest = filled - cut - 1
            buffer[1 : 1 + rest] = buffer[cut + 1 : filled]  # the partial last line, to the front
            filled = 1 + rest


def _buffer(files: Sequence[Path]) -> bytearray:
    """One read buffer for a set of files: as large as the largest, at most ``CHUNK_BYTES`` (+1)."""
    largest = max((p.stat().st_size for p in files), default=0)
    return bytearray(max(1, min(CHUNK_BYTES, largest)) + 1)


def _lines(kind: _Kind, chunk: tuple[bytearray, int, int]) -> tuple[list[tuple] | None, list[tuple[bytes, ...]]]:
    """The groups of every line of a chunk: ``(columns, rows)``.

    The chunk's layout and constant fields are its first line's. ``columns``
    (one tuple per group) when every line is such a record - the common case,
    no per-line work - else None. ``rows``: one tuple per line, in order; the
    lines not read as records are read again with the general pattern of the
    layout, then of the other layout.
    """
    buffer, start, end = chunk
    first, second = kind.compact, kind.spaced
    colon = buffer.find(b'":', start, min(end, start + 4096))  # after the first line's first key
    spaced = colon > 0 and buffer[colon + 2 : colon + 3] == b" "
    if spaced:
        first, second = second, first
    line_end = buffer.find(b"\n", start + 1, end)
    head = first.findall(buffer, start, line_end if line_end > 0 else end)
    constants = head[0] if head and any(head[0][i] for i in kind.ids) else None
    pattern = first if constants is None else kind.specialize(spaced, constants)
    rows = pattern.findall(buffer, start, end)
    if len(rows) != buffer.count(b"\n", start, end):
        # A match ran over a line break (a string left open by a malformed line): line by line.
        rows = [pattern.findall(b"\n" + line)[0] for line in bytes(buffer[start + 1 : end]).split(b"\n")]
    columns = list(zip(*rows))
    ids = columns[kind.ids[0]] if len(kind.ids) == 1 else list(map(operator.add, *(columns[i] for i in kind.ids)))  # at most one is not empty
    if all(ids):
        if constants is not None:
            for i in kind.constants:
                columns[i] = (constants[i],) * len(rows)
        return columns, rows
    if constants is not None:  # the specialized pattern's records get their constant fields back
        for n, row in enumerate(rows):
            if ids[n]:
                row = list(row)
                for i in kind.constants:
                    row[i] = constants[i]
                rows[n] = tuple(row)
    for again_with in ((first, second) if constants is not None else (second,)):
        others = [n for n, row in enumerate(rows) if not any(row[i] for i in kind.ids) and row[-1]]
        if not others:
            break
        again = again_with.findall(b"\n" + b"\n".join(rows[n][-1] for n in others))
        if len(again) != len(others):
            again = [again_with.findall(b"\n" + rows[n][-1])[0] for n in others]
        for n, row in zip(others, again):
            rows[n] = row
    return None, rows


@contextmanager
def _no_gc() -> Iterator[None]:
    """Millions of tuples and strings are made and kept: the cyclic collector would walk them
    again and again (none of them can form a cycle). Re-enabled after, if it was on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --------------------------------------------------------------------------- strings


def _unescape(items: Sequence[bytes]) -> list[str | None]:
    """Raw JSON string contents as str: one ``json.loads`` for all, else one by one.

    An item that is not a valid JSON string body (bad escape, control
    character, not UTF-8) gives None.
    """
    if not items:
        return []
    try:
        return json.loads(b'["' + b'","'.join(items) + b'"]')
    except (ValueError, UnicodeDecodeError):
        out: list[str | None] = []
        for item in items:  # rare path: some item has an invalid escape or bytes
            try:
                out.append(json.loads(b'"' + item + b'"'))
            except (ValueError, UnicodeDecodeError):
                out.append(None)
        return out


def _repeated(items: Sequence[bytes]) -> list[str | None]:
    """Raw JSON string contents that usually take few distinct values (content types, encodings,
    binary labels): each distinct value unescaped once, the same string object for each of its
    occurrences; many distinct values are unescaped all at once (:func:`_unescape`)."""
    if not items:
        return []
    if items.count(items[0]) == len(items):  # one value (the common case)
        return _unescape_each(items[:1]) * len(items)
    distinct = list(set(items))
    if len(distinct) * 8 > len(items):
        return _unescape(items)
    table = dict(zip(distinct, _unescape_each(distinct)))
    return list(map(table.__getitem__, items))


def _unescape_each(items: Iterable[bytes]) -> list[str | None]:
    out: list[str | None] = []
    for item in items:
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
class Records:
    """Columns of the usable records of a set of files, in file and line order.

    ``content_type`` is empty for ground truth. ``malformed`` counts the
    lines that are not records (blank lines are not counted), ``examples``
    quotes the first few.
    """

    key: list[str] = field(default_factory=list)
    content_type: list[str] = field(default_factory=list)
    encoding: list[str] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    malformed: int = 0
    examples: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.key)

    def add_malformed(self, where: str, count: int = 1) -> None:
        self.malformed += count
        if len(self.examples) < 5:
            self.examples.append(where)


def _keep(columns: list[list], valid: list[bool]) -> list[list]:
    return [[v for v, ok in zip(column, valid) if ok] for column in columns]


def read_captures(files: Sequence[Path]) -> Records:
    """Capture records: key, content type, encoding and data of each.

    ``key`` is the inferenceId when the record has one, else the eventId.
    ``data`` is the endpoint output's text as captured (still BASE64 when so
    encoded). Blank lines are ignored; every other unusable line is malformed.
    """
    out = Records()
    buffer = _buffer(files)
    with _no_gc():
        for path in files:
            for chunk in _chunks(path, buffer):
                columns, rows = _lines(_CAPTURE, chunk)
                if columns is not None:  # every line a record on the fast path
                    _add_captures(out, path, *columns[:5])
                    continue
                for run in _runs(rows, _CAPTURE.ids):  # in line order: runs of fast-path records, other lines
                    if isinstance(run, list):
                        _add_captures(out, path, *list(zip(*run))[:5])
                        continue
                    fields = _capture_fields(run[5])
                    if fields is None:
                        out.add_malformed(f"{path}: {run[5][:80].decode('utf-8', 'replace')!r}")
                        continue
                    c, d, e, eid, iid = fields
                    out.key.append(iid or eid)
                    out.content_type.append(c)
                    out.encoding.append(e)
                    out.data.append(d)
    return out


def _runs(rows: list[tuple[bytes, ...]], ids: tuple[int, ...]) -> Iterator[list[tuple[bytes, ...]] | tuple[bytes, ...]]:
    """The lines of a chunk in order: lists of consecutive fast-path records (one of their ``ids``
    groups is not empty), and each other non-blank line's groups alone (its text is the last group)."""
    run: list[tuple[bytes, ...]] = []
    for row in rows:
        if any(row[i] for i in ids):
            run.append(row)
        elif row[-1].strip():
            if run:
                yield run
                run = []
            yield row
    if run:
        yield run


def _add_captures(out: Records, path: Path, ct, data, enc, inference_id, event_id) -> None:
    """Fast-path rows (raw groups) into ``out``; a field that does not unescape makes its row malformed."""
    keys = _unescape(inference_id if all(inference_id) else list(map(operator.add, inference_id, event_id)))
    datas = _unescape(data)
    cts = _repeated(ct)
    encs = _repeated(enc)
    columns = [keys, cts, encs, datas]
    valid = None
    if None in keys or None in datas or None in cts or None in encs:  # rare: an invalid escape
        valid = [all(v is not None for v in row) for row in zip(*columns)]
        out.add_malformed(f"{path}: a field with an invalid escape", valid.count(False))
        columns = _keep(columns, valid)
    out.key += columns[0]
    out.content_type += columns[1]
    out.encoding += columns[2]
    out.data += columns[3]


def read_labels(files: Sequence[Path]) -> Records:
    """Ground-truth records: key (eventId), encoding and data of each."""
    out = Records()
    buffer = _buffer(files)
    with _no_gc():
        for path in files:
            for chunk in _chunks(path, buffer):
                columns, rows = _lines(_LABEL, chunk)
                if columns is not None:
                    _add_labels(out, path, *columns[:3])
                    continue
                for run in _runs(rows, _LABEL.ids):
                    if isinstance(run, list):
                        _add_labels(out, path, *list(zip(*run))[:3])
                        continue
                    fields = _label_fields(run[3])
                    if fields is None:
                        out.add_malformed(f"{path}: {run[3][:80].decode('utf-8', 'replace')!r}")
                        continue
                    d, e, eid = fields
                    out.key.append(eid)
                    out.encoding.append(e)
                    out.data.append(d)
    return out


def _add_labels(out: Records, path: Path, data, enc, event_id) -> None:
    keys = _unescape(event_id)
    datas = _repeated(data)  # labels take few values (0/1): each unescaped once
    encs = _repeated(enc)
    columns = [keys, encs, datas]
    if None in keys or None in datas or None in encs:
        valid = [all(v is not None for v in row) for row in zip(*columns)]
        out.add_malformed(f"{path}: a field with an invalid escape", valid.count(False))
        columns = _keep(columns, valid)
    out.key += columns[0]
    out.encoding += columns[1]
    out.data += columns[2]


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


def _scan(pattern: re.Pattern, texts: Sequence[str], width: int) -> list[tuple[str, ...]]:
    """One regex pass over all texts joined; the groups of each text, one tuple per text."""
    n = len(texts)
    if n == 0:
        return []
    joined = _SEP.join(texts) + _SEP
    rows = pattern.findall(joined) if joined.count(_SEP) == n else None
    if rows is None or len(rows) != n:  # a text holds the separator itself: one by one (rare)
        rows = []
        for text in texts:
            found = pattern.findall(text + _SEP) if _SEP not in text else []
            rows.append(found[0] if len(found) == 1 else ("",) * (width - 1) + (text,))
    if width == 1:
        rows = [(r,) if isinstance(r, str) else r for r in rows]
    return rows


#: The characters of CSV outputs that need no regular expression: digits, point, minus, exponent.
_PLAIN_NUMBER_CHARS = b"0123456789.-eE"


def _csv_numbers(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The common CSV outputs without a regular expression: every text two comma-separated
    numbers (or every text one number) made of ``_PLAIN_NUMBER_CHARS`` only, with at most a
    trailing ``\\n``.

    Returns (first column, second column (NaN where absent), has a second column), or None when
    some text is anything else (then :data:`_CSV_ROW` reads them all). The result is
    :data:`_CSV_ROW`'s: with no whitespace, sign ``+`` or letter other than ``e``/``E``, a text
    ``float`` reads is a text ``_NUMBER`` matches, and ``float`` refuses the rest.
    """
    n = len(texts)
    joined = "\x00".join(texts).replace("\n\x00", "\x00").removesuffix("\n")
    if not joined.isascii():
        return None
    separators = joined.encode("ascii").translate(None, _PLAIN_NUMBER_CHARS)
    if separators == b",\x00" * (n - 1) + b",":
        two = True
    elif separators == b"\x00" * (n - 1):
        two = False
    else:
        return None  # other characters, or a mix of one and two columns, or empty texts
    items = joined.replace(",", "\x00").split("\x00")
    try:
        if two:  # the first column is a label: few values, each read once
            return _few_floats(items[0::2]), np.array(items[1::2], dtype=np.float64), np.ones(n, dtype=bool)
        return np.array(items, dtype=np.float64), np.full(n, np.nan), np.zeros(n, dtype=bool)
    except ValueError:
        return None


def _few_floats(items: list[str]) -> np.ndarray:
    """``float`` of each item (ValueError as ``float``), each distinct item read once when they are few."""
    distinct = set(items)
    if len(distinct) * 8 > len(items):
        return np.array(items, dtype=np.float64)
    table = {text: float(text) for text in distinct}
    return np.fromiter(map(table.__getitem__, items), dtype=np.float64, count=len(items))


def _floats(items: Sequence[str]) -> np.ndarray:
    """Number strings to floats; an empty or non-numeric string is NaN."""
    try:
        return np.fromiter(map(float, items), dtype=np.float64, count=len(items))
    except ValueError:
        return np.fromiter(map(_float_or_nan, items), dtype=np.float64, count=len(items))


def _label_floats(texts: Sequence[str]) -> np.ndarray:
    """Label texts to floats: what ``float`` reads, except its extensions to plain ASCII
    numbers (digit separators ``1_000``, non-ASCII digits), which are NaN. Few distinct texts
    (binary labels) are each read once."""
    distinct = set(texts)
    if len(distinct) * 8 <= len(texts):
        table = dict(zip(distinct, _label_floats(list(distinct))))
        return np.fromiter(map(table.__getitem__, texts), dtype=np.float64, count=len(texts))
    values = _floats(texts)
    joined = "".join(texts)
    if "_" in joined or not joined.isascii():
        values[[i for i, t in enumerate(texts) if "_" in t or not t.isascii()]] = np.nan
    return values


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _texts(records: Records) -> tuple[list[str], np.ndarray]:
    """(decoded texts, ok mask): BASE64 items decoded (rare: no type our inference returns)."""
    data = records.data
    ok = np.ones(len(data), bool)
    base64_encodings = {e for e in set(records.encoding) if e.upper() == "BASE64"}
    if base64_encodings:
        data = list(data)
        for i, encoding in enumerate(records.encoding):
            if encoding in base64_encodings:
                try:
                    data[i] = base64.b64decode(data[i], validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError, ValueError):
                    data[i], ok[i] = "", False
    return data, ok


def _where(values: Sequence[str], wanted: set[str]) -> np.ndarray:
    """Indices of the items of ``values`` that are in ``wanted``."""
    if not wanted:
        return np.zeros(0, dtype=np.intp)
    if len(wanted) == len(set(values)):
        return np.arange(len(values))
    return np.flatnonzero(np.fromiter((v in wanted for v in values), dtype=bool, count=len(values)))


@dataclass
class Predictions:
    """Per capture record: ``prediction`` (label 0/1, or the regression score), ``score``
    (P(label 1); NaN when absent) and ``ok`` (a usable prediction)."""

    prediction: np.ndarray
    score: np.ndarray
    ok: np.ndarray


def decode_predictions(records: Records, problem_type: str) -> Predictions:
    """Predictions out of the endpoint outputs, by observedContentType.

    Output formats (docs/CONTRACTS.md §1): CSV ``label,probability`` (or
    ``score``), JSON ``{"predictions": [{"label", "probability"}]}`` (or
    ``{"score"}``), JSON lines. A record must hold exactly one prediction.
    """
    n = len(records)
    prediction = np.full(n, np.nan)
    score = np.full(n, np.nan)
    if n == 0:
        return Predictions(prediction, score, np.zeros(0, bool))
    texts, ok_text = _texts(records)
    kinds = set(records.content_type)
    json_types = {c for c in kinds if "json" in c.split(";")[0].lower()}
    json_idx = _where(records.content_type, json_types)
    csv_idx = _where(records.content_type, kinds - json_types)
    if not ok_text.all():
        json_idx, csv_idx = json_idx[ok_text[json_idx]], csv_idx[ok_text[csv_idx]]

    if len(csv_idx):
        csv_texts = _pick(texts, csv_idx)
        columns = _csv_numbers(csv_texts)
        if columns is not None:
            values, second_values, two = columns
        else:
            first, second, _ = zip(*_scan(_CSV_ROW, csv_texts, 3))
            values, second_values = _floats(first), _floats(second)
            two = np.fromiter(map(bool, second), dtype=bool, count=len(second))
        if problem_type == names.REGRESSION:  # one column: the score
            values[two] = np.nan
        prediction[csv_idx], score[csv_idx] = values, second_values

    if len(json_idx):
        if problem_type == names.REGRESSION:
            first, _ = zip(*_scan(_JSON_REGRESSOR, _pick(texts, json_idx), 2))
            prediction[json_idx] = _floats(first)
        else:
            first, second, _ = zip(*_scan(_JSON_CLASSIFIER, _pick(texts, json_idx), 3))
            prediction[json_idx], score[json_idx] = _floats(first), _floats(second)

    ok = ~np.isnan(prediction)
    if problem_type == names.BINARY_CLASSIFICATION:
        ok &= np.isin(prediction, (0.0, 1.0))
        ok &= np.isnan(score) | ((score >= 0) & (score <= 1))
    else:
        ok &= np.isfinite(prediction)
    return Predictions(prediction, score, ok)


def _pick(items: list, idx: np.ndarray) -> list:
    return items if len(idx) == len(items) else [items[i] for i in idx]


def decode_labels(records: Records, problem_type: str) -> tuple[np.ndarray, np.ndarray]:
    """(label values, ok mask) of ground-truth records: 0/1, or a finite real number.

    ``data`` "1", " 1 ", "1.0" and (JSON encoding) "\"1\"" are all the label 1.
    """
    if len(records) == 0:
        return np.zeros(0), np.zeros(0, bool)
    texts, ok_text = _texts(records)
    value = _label_floats(texts)
    quoted = np.flatnonzero(np.isnan(value) & ok_text)
    if len(quoted):  # e.g. JSON-encoded "\"1\"": strip the quotes
        value[quoted] = _label_floats([texts[i].strip(' \t\r\n"') for i in quoted])
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
    #: Every captured record's prediction and probability (the first of each id, labelled or not):
    #: the quality estimated before labels reads them.
    captured_prediction: np.ndarray = field(default_factory=lambda: np.zeros(0))
    captured_score: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class _Part:
    """What the join needs of a run of capture (or ground-truth) files, in their order."""

    key: list[str]
    value: np.ndarray  # capture: the prediction; ground truth: the label
    score: np.ndarray | None  # capture: P(label 1) (NaN where absent); ground truth: None
    ok: np.ndarray  # a usable prediction / label
    malformed: int  # lines that are not records
    examples: list[str]  # the first malformed lines
    unusable: list[str]  # the first unusable predictions / labels


def _capture_part(files: Sequence[Path], problem_type: str) -> _Part:
    records = read_captures(files)
    predictions = decode_predictions(records, problem_type)
    unusable = [f"unusable prediction {records.data[i]!r} ({records.content_type[i]})"
                for i in np.flatnonzero(~predictions.ok)[:3]]
    return _Part(records.key, predictions.prediction, predictions.score, predictions.ok, records.malformed,
                 records.examples, unusable)


def _label_part(files: Sequence[Path], problem_type: str) -> _Part:
    records = read_labels(files)
    values, ok = decode_labels(records, problem_type)
    unusable = [f"unusable label {records.data[i]!r}" for i in np.flatnonzero(~ok)[:3]]
    return _Part(records.key, values, None, ok, records.malformed, records.examples, unusable)


def _read_window(capture_files: Sequence[Path], label_files: Sequence[Path], problem_type: str) -> tuple[_Part, _Part]:
    """Both sides of the window, in this process.

    (Reading the capture files in one process per core was measured on the
    project's shared 2-core machine: slower, 5.7-6.4 s against 5.3 s for a
    million records, and 759 against 466 MiB - the labels, the join and the
    transfer of a million ids between processes do not shrink.)
    """
    return _capture_part(capture_files, problem_type), _label_part(label_files, problem_type)


def match(capture_files: Sequence[Path], label_files: Sequence[Path], problem_type: str) -> Matched:
    """Read, decode, de-duplicate and join a window's capture and ground-truth files.

    Duplicate captures of an id: the first (by file order, then line) counts;
    several labels of an id: the latest counts (a later file corrects an earlier one), and each
    earlier one is a *replaced* label (``replaced_labels``) — a relabel, not a fault.
    """
    with _no_gc():
        captures, labels = _read_window(capture_files, label_files, problem_type)
        usable = np.flatnonzero(captures.ok)
        cap_keys = captures.key if len(usable) == len(captures.key) else [captures.key[i] for i in usable.tolist()]
        good = np.flatnonzero(labels.ok)
        lab_keys = labels.key if len(good) == len(labels.key) else [labels.key[i] for i in good.tolist()]
        joined = _join_by_hash(cap_keys, lab_keys) or _join_by_dict(cap_keys, lab_keys)
    kept, labelled, found = joined
    hit = found >= 0
    rows = usable[kept[hit]]
    matched = int(hit.sum())
    counts = {
        "captured": len(kept),
        "labelled": labelled,
        "matched": matched,
        "unmatched_captures": len(kept) - matched,
        "unmatched_labels": labelled - matched,
        "duplicate_captures": len(usable) - len(kept),
        "replaced_labels": len(good) - labelled,
        "malformed_capture_lines": captures.malformed + len(captures.ok) - len(usable),
        "malformed_label_lines": labels.malformed + len(labels.ok) - len(good),
    }
    return Matched(
        label=labels.value[good[found[hit]]],
        prediction=captures.value[rows],
        score=captures.score[rows],
        counts=counts,
        capture_examples=captures.examples + captures.unusable,
        label_examples=labels.examples + labels.unusable,
        captured_prediction=captures.value[usable[kept]],
        captured_score=captures.score[usable[kept]],
    )


#: The hash of a key for the join (Python's own, cached on the string); tests replace it to
#: make every key collide.
_hash = hash


def _join_by_dict(cap_keys: list[str], lab_keys: list[str]) -> tuple[np.ndarray, int, np.ndarray]:
    """The join with two dicts: (kept captures: the first of each id, ascending; how many distinct
    labels; per kept capture the index of its id's latest label, or -1)."""
    # The first capture of an id: filled backwards, so an earlier index overwrites a later one.
    first = dict(zip(reversed(cap_keys), range(len(cap_keys) - 1, -1, -1)))
    kept = np.fromiter(first.values(), dtype=np.intp, count=len(first))
    kept.sort()
    del first
    latest = dict(zip(lab_keys, range(len(lab_keys))))  # a later label of an id overwrites an earlier one
    in_order = cap_keys if len(kept) == len(cap_keys) else [cap_keys[i] for i in kept.tolist()]
    found = np.fromiter(map(latest.get, in_order, repeat(-1)), dtype=np.intp, count=len(kept))
    return kept, len(latest), found


def _join_by_hash(cap_keys: list[str], lab_keys: list[str]) -> tuple[np.ndarray, int, np.ndarray] | None:
    """The same join as :func:`_join_by_dict` on the keys' 64-bit hashes with numpy (sorts instead
    of a million random dict probes); every pair the hashes call equal is compared as strings,
    and the first pair of different keys with one hash gives None (then the dicts decide)."""
    cap = _distinct(cap_keys, last=False)
    lab = _distinct(lab_keys, last=True)
    if cap is None or lab is None:
        return None
    kept, cap_hashes = cap
    lab_kept, lab_hashes = lab  # lab_hashes sorted, lab_kept[i] the latest label of hash i
    pos = np.searchsorted(lab_hashes, cap_hashes)
    pos[pos == len(lab_hashes)] = 0
    hit = (lab_hashes[pos] == cap_hashes) if len(lab_hashes) else np.zeros(len(kept), dtype=bool)
    found = np.full(len(kept), -1, dtype=np.intp)
    found[hit] = lab_kept[pos[hit]]
    if not _same_keys(cap_keys, kept[hit], lab_keys, found[hit]):
        return None
    return kept, len(lab_kept), found


def _distinct(keys: list[str], *, last: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """Of each distinct key, the index of its first (or ``last``) occurrence, and the keys' hashes.

    ``first``: (indices ascending, their hashes in that order); ``last``: (indices ordered by hash,
    the hashes sorted). None when two different keys share a hash.
    """
    hashes = np.fromiter(map(_hash, keys), dtype=np.int64, count=len(keys))
    if last:
        unique, back, inverse = np.unique(hashes[::-1], return_index=True, return_inverse=True)
        chosen = len(keys) - 1 - back
        inverse = inverse[::-1]
    else:
        unique, chosen, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    if len(unique) < len(keys):  # equal hashes: the same id again, or two ids with one hash
        others = np.flatnonzero(chosen[inverse] != np.arange(len(keys)))
        if not _same_keys(keys, others, keys, chosen[inverse[others]]):
            return None
    if last:
        return chosen, unique
    order = np.argsort(chosen)
    return chosen[order], unique[order]


def _same_keys(a: list[str], a_index: np.ndarray, b: list[str], b_index: np.ndarray) -> bool:
    """Whether ``a[a_index[i]] == b[b_index[i]]`` for every i."""
    return all(map(operator.eq, [a[i] for i in a_index.tolist()], [b[i] for i in b_index.tolist()]))
