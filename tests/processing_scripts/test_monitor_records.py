"""monitor_records' fast path reads exactly what ``json.loads`` of each line reads.

The reference below parses every line with ``json.loads`` (the slow path, in
line order); the reader must give the same records, in the same order, and
the same malformed count, for lines written to stress the regular
expressions: escaped quotes and backslash runs in the request payload,
escapes and non-ASCII in ids, strings left open across a line break, CRLF,
spaces, another key order, empty ids, blank and broken lines.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from processing_scripts import monitor_records
from stscontracts.records import ground_truth_record
from stsmon.monitoring.records import capture_record

H12 = datetime(2033, 5, 17, 12, tzinfo=timezone.utc)


def _reference_captures(text: bytes) -> tuple[list[tuple[str, str, str, str]], int]:
    records, malformed = [], 0
    for line in text.split(b"\n"):
        if not line.strip():
            continue
        fields = monitor_records._capture_fields(line)
        if fields is None:
            malformed += 1
            continue
        ct, data, enc, event_id, inference_id = fields
        records.append((inference_id or event_id, ct, enc, data))
    return records, malformed


def _reference_labels(text: bytes) -> tuple[list[tuple[str, str, str]], int]:
    records, malformed = [], 0
    for line in text.split(b"\n"):
        if not line.strip():
            continue
        fields = monitor_records._label_fields(line)
        if fields is None:
            malformed += 1
            continue
        data, enc, event_id = fields
        records.append((event_id, enc, data))
    return records, malformed


def _compact(record) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def _capture(iid, *, payload='"a","b"\n', output="1,0.9\n", event_id="e", **kw) -> dict:
    return capture_record(event_id=event_id, inference_id=iid, inference_time=H12, output=output,
                          input_data=payload, **kw)


PAYLOADS = [
    'He said "hi"',  # \" in the JSON text
    "a back\\slash",  # \\
    'ends with a backslash\\',  # \\" at the end of the string: the closing quote after two backslashes
    'quote after backslash \\"x\\"',  # \\\" : an escaped backslash, then an escaped quote
    'five \\\\"',  # \\\\\\\\\" in the JSON text: five backslashes before a quote (slow path)
    '{"instances": [{"sentence1": "a \\"q\\"", "sentence2": "b"}]}',
    "café – naïve \u2028 line separator",
    "tab\tand\rcarriage",
    "",
]


def capture_lines() -> list[str]:
    lines = []
    for i, payload in enumerate(PAYLOADS):
        record = _capture(f"p{i}", payload=payload)
        lines.append(_compact(record))
        lines.append(json.dumps(record))  # spaces after , and :
        lines.append(json.dumps(record, ensure_ascii=True, separators=(",", ":")))  # \uXXXX escapes
    lines += [
        _compact(_capture("é-ünïcode")),  # raw UTF-8 id
        json.dumps(_capture("é-escaped"), separators=(",", ":")),  # the same kind of id as \u00e9
        _compact(_capture('quo"te')),  # an escaped quote in an id: slow path
        _compact(_capture("back\\slash")),  # an escaped backslash in an id
        _compact(_capture(None, event_id="only-event-id")),  # no inferenceId: the key is the eventId
        _compact(_capture("", event_id="ev-empty-iid")),  # empty inferenceId: the eventId
        _compact(_capture("iid-empty-eid", event_id="")),  # empty eventId: slow path, inferenceId
        _compact(_capture("", event_id="")),  # no id at all: malformed
        _compact(_capture("ct-escaped", output_type="application/json; charset=\"utf-8\"",
                          output='{"predictions": [{"label": 1, "probability": 0.8}]}')),
        _compact(_capture("jsonl", output_type="application/jsonlines", output='{"label": 0}\n')),
        _compact(_capture("crlf")) + "\r",  # CRLF line ending
        "  " + _compact(_capture("indented")) + " \t",
        json.dumps({"eventVersion": "0", "eventMetadata": {"eventId": "x", "inferenceId": "reordered"},
                    "captureData": _capture("reordered")["captureData"]}),
        _compact({"captureData": {"endpointOutput": _capture("out-only")["captureData"]["endpointOutput"]},
                  "eventMetadata": {"eventId": "e", "inferenceId": "out-only"}, "eventVersion": "0"}),
        "",  # blank
        "   ",
        "not json",
        '{"captureData": broken',
        _compact(_capture("truncated"))[:-30],  # cut mid-record (an open string)
        _compact(_capture("after-truncated")),
        '{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"open string',
        _compact(_capture("after-open-string")),  # the open string above must not swallow this line
        _compact(_capture("bad-escape", output="1,0.9\\q")).replace("\\\\q", "\\q"),  # invalid escape in data
        _compact(_capture("ctrl", output="1,0.9")).replace("1,0.9", "1,\t0.9"),  # raw tab in data: invalid JSON
        _compact(_capture("torn"))[:80] + _compact(_capture("glued")),  # a torn write, then a record
        _compact(_capture("dup")),
        json.dumps(_capture("dup", output="0,0.1\n")),  # a duplicate id on the other path
    ]
    return lines


@pytest.mark.parametrize("chunk_bytes", [64 * 1024 * 1024, 700, 50])  # 50: lines longer than a chunk
def test_capture_reader_equals_json_loads_of_every_line(tmp_path, monkeypatch, chunk_bytes):
    monkeypatch.setattr(monitor_records, "CHUNK_BYTES", chunk_bytes)  # also: lines across chunk ends
    text = "\n".join(capture_lines()) + "\n"
    path = tmp_path / "capture.jsonl"
    path.write_bytes(text.encode())
    records = monitor_records.read_captures([path])
    expected, malformed = _reference_captures(text.encode())
    assert list(zip(records.key, records.content_type, records.encoding, records.data)) == expected
    assert records.malformed == malformed
    keys = set(records.key)
    assert {"é-ünïcode", "é-escaped", 'quo"te', "back\\slash", "only-event-id", "ev-empty-iid",
            "iid-empty-eid", "after-truncated", "after-open-string", "out-only"} <= keys
    assert "glued" not in keys and "torn" not in keys  # a torn line is malformed as a whole


def test_capture_reader_fast_path_takes_the_documented_layout(tmp_path):
    """Not a speed test: every compact or spaced line in SageMaker's key order is read by the
    expression, none falls back to json.loads (which would be slow at scale)."""
    lines = [_compact(_capture(f"p{i}", payload=p)) for i, p in enumerate(PAYLOADS) if "five" not in p]
    lines += [json.dumps(_capture(f"s{i}", payload=p)) for i, p in enumerate(PAYLOADS) if "five" not in p]
    for pattern, text in ((monitor_records.CAPTURE_RECORD, lines[: len(lines) // 2]),
                          (monitor_records.CAPTURE_RECORD_SPACED, lines[len(lines) // 2 :])):
        rows = pattern.findall(("\n" + "\n".join(text)).encode())
        assert len(rows) == len(text) and all(row[3] or row[4] for row in rows)


def test_label_reader_equals_json_loads_of_every_line(tmp_path):
    lines = [json.dumps(ground_truth_record(f"k{i}", i % 2)) for i in range(5)]
    lines += [
        _compact(ground_truth_record("compact", 1)),
        json.dumps(ground_truth_record("é-escaped", 0)),
        _compact(ground_truth_record("é-raw", 0)),
        json.dumps({"groundTruthData": {"data": "\"1\"", "encoding": "JSON"}, "eventMetadata": {"eventId": "json"},
                    "eventVersion": "0"}),
        json.dumps({"eventVersion": "0", "eventMetadata": {"eventId": "reordered"},
                    "groundTruthData": {"encoding": "CSV", "data": "1"}}),
        json.dumps({"groundTruthData": {"data": 1, "encoding": "CSV"}, "eventMetadata": {"eventId": "number"},
                    "eventVersion": "0"}),
        json.dumps(ground_truth_record("", 1)),  # empty eventId: malformed
        json.dumps(ground_truth_record("tab\tid", 1)),
        _compact(ground_truth_record("crlf", 1)) + "\r",
        "{broken",
        "",
        _compact(ground_truth_record("open", 1))[:30],
        _compact(ground_truth_record("after-open", 0)),
    ]
    text = "\n".join(lines) + "\n"
    path = tmp_path / "labels.jsonl"
    path.write_bytes(text.encode())
    records = monitor_records.read_labels([path])
    expected, malformed = _reference_labels(text.encode())
    assert list(zip(records.key, records.encoding, records.data)) == expected
    assert records.malformed == malformed
    assert {"é-escaped", "é-raw", "json", "reordered", "number", "after-open"} <= set(records.key)


def test_a_duplicate_capture_counts_by_line_whichever_path_reads_it(tmp_path):
    """docs/monitoring.md: of duplicate captures of an id, the first by line counts. The reader used to
    append the lines that json.loads read after the chunk's fast-path records, so a later duplicate in
    SageMaker's layout won over an earlier one in another key order."""
    first = json.dumps({"eventVersion": "0", "eventMetadata": {"eventId": "e1", "inferenceId": "a"},
                        "captureData": _capture("a", output="1,0.9\n")["captureData"]})
    later = _compact(_capture("a", output="0,0.2\n"))
    capture = tmp_path / "capture.jsonl"
    capture.write_text(first + "\n" + later + "\n")
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps(ground_truth_record("a", 1)) + "\n")
    matched = monitor_records.match([capture], [labels], "BinaryClassification")
    assert matched.counts["duplicate_captures"] == 1 and matched.counts["matched"] == 1
    assert matched.prediction.tolist() == [1.0]  # the first line's prediction


def test_the_request_payload_is_skipped_not_validated(tmp_path):
    """The one place the fast path is more lenient than json.loads: the request payload, which the
    monitor never reads, is skipped by its quotes only, so a raw control character or an invalid
    escape inside it does not make the record malformed (as before this reader)."""
    good = _compact(_capture("raw-tab", payload="x"))
    line = good.replace('"data":"x"', '"data":"x\ty \\q"', 1)
    assert monitor_records._capture_fields(line.encode()) is None  # json.loads refuses the line
    path = tmp_path / "capture.jsonl"
    path.write_text(line + "\n")
    records = monitor_records.read_captures([path])
    assert records.key == ["raw-tab"] and records.malformed == 0


CSV_OUTPUTS = ["1,0.9\n", "0,0.25", "1,.5\n", "0,5.\n", "1,1e-3\n", "0,2E5\n", "-0,-0.0\n", "1\n", "3.25", "1,2,3\n",
               "1,\n", ",0.5\n", "-\n", "1e,0.2\n", "1.2.3\n", "0,0.5\r\n", " 1 , 0.5 \n", "+1,0.5\n", "1,0.5\n\n",
               "nan,0.5\n", "1_0,0.5\n", "١,0.5\n", "1,0.5e+2\n", "", "0x1,0.5\n", "1\n,0.5\n", "1;0.5\n"]


@pytest.mark.parametrize("problem_type", ["BinaryClassification", "Regression"])
def test_csv_outputs_without_the_regular_expression_read_as_with_it(problem_type):
    """The common CSV outputs skip the CSV regular expression (_csv_numbers); for every text, alone
    or among plain ones, the predictions are those of the expression's reading."""
    def by_regex(texts):
        first, second, _ = zip(*monitor_records._scan(monitor_records._CSV_ROW, texts, 3))
        return monitor_records._floats(first), monitor_records._floats(second)

    for text in CSV_OUTPUTS:
        for texts in ([text], ["1,0.5\n", text, "0,0.1"], [text] * 3):
            fast = monitor_records._csv_numbers(texts)
            expected = by_regex(texts)
            if fast is not None:
                np.testing.assert_array_equal(fast[0], expected[0], err_msg=repr(texts))
                np.testing.assert_array_equal(fast[1], expected[1], err_msg=repr(texts))
            records = monitor_records.Records(key=[f"k{i}" for i in range(len(texts))], content_type=["text/csv"] * len(texts),
                                              encoding=["CSV"] * len(texts), data=list(texts))
            decoded = monitor_records.decode_predictions(records, problem_type)
            if problem_type == "BinaryClassification":
                np.testing.assert_array_equal(decoded.prediction, expected[0], err_msg=repr(texts))
                np.testing.assert_array_equal(decoded.score, expected[1], err_msg=repr(texts))
    assert monitor_records._csv_numbers(["1,0.9\n", "0,0.25"]) is not None  # the plain ones take it
    assert monitor_records._csv_numbers(["3.5\n", "-2e-3"]) is not None


def _keys(rng, n, pool):
    return [f"id-{int(v)}" for v in rng.integers(0, pool, n)]


@pytest.mark.parametrize("seed", range(4))
def test_the_join_on_hashes_is_the_join_on_dicts(seed):
    """_join_by_hash (numpy on the keys' hashes) decides exactly what two dicts decide: the first
    capture of an id, its latest label, with duplicates on both sides and ids on one side only."""
    rng = np.random.default_rng(seed)
    cap, lab = _keys(rng, 3000, 2500), _keys(rng, 2000, 4000)
    by_hash = monitor_records._join_by_hash(cap, lab)
    by_dict = monitor_records._join_by_dict(cap, lab)
    assert by_hash is not None
    np.testing.assert_array_equal(by_hash[0], by_dict[0])
    assert by_hash[1] == by_dict[1]
    np.testing.assert_array_equal(by_hash[2], by_dict[2])


def test_two_ids_with_one_hash_leave_the_join_to_the_dicts(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    cap, lab = _keys(rng, 500, 300), _keys(rng, 400, 600)
    monkeypatch.setattr(monitor_records, "_hash", len)  # "id-1" and "id-2" now collide
    assert monitor_records._join_by_hash(cap, lab) is None
    # the whole reading, with every key colliding, still joins right (through the dicts)
    capture = tmp_path / "c.jsonl"
    capture.write_text("".join(_compact(_capture(k, output=f"{i % 2},0.5\n")) + "\n" for i, k in enumerate(cap)))
    labels = tmp_path / "l.jsonl"
    labels.write_text("".join(json.dumps(ground_truth_record(k, i % 2)) + "\n" for i, k in enumerate(lab)))
    collided = monitor_records.match([capture], [labels], "BinaryClassification")
    monkeypatch.setattr(monitor_records, "_hash", hash)
    normal = monitor_records.match([capture], [labels], "BinaryClassification")
    assert collided.counts == normal.counts and collided.counts["duplicate_captures"] > 0
    np.testing.assert_array_equal(collided.label, normal.label)
    np.testing.assert_array_equal(collided.prediction, normal.prediction)


def test_labels_read_once_per_distinct_text_read_as_one_by_one():
    texts = ["1"] * 40 + ["0"] * 40 + ["1_0", "x", " 1 ", "١", "2.5", "nan", "-0", "1e0", ""]
    few = monitor_records._label_floats(texts)  # few distinct texts: a table
    one_by_one = monitor_records._label_floats(list(dict.fromkeys(texts)))  # all distinct
    table = dict(zip(dict.fromkeys(texts), one_by_one))
    np.testing.assert_array_equal(few, [table[t] for t in texts])
    assert np.isnan(table["1_0"]) and np.isnan(table["١"]) and table[" 1 "] == 1.0 and table["1e0"] == 1.0


def test_the_job_process_keeps_the_memory_it_frees_where_glibc_allows(monkeypatch):
    """monitor.py as a program sets glibc's mmap/trim thresholds (fewer page faults for a large
    window); where there is no glibc it does nothing and says so."""
    import ctypes
    import platform

    from processing_scripts import monitor

    source = (Path(monitor.__file__)).read_text()
    assert 'if __name__ == "__main__":\n    keep_freed_memory()\n    sys.exit(main())' in source

    def no_libc(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert monitor.keep_freed_memory() is False
    monkeypatch.undo()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        import subprocess
        import sys

        probe = "from processing_scripts import monitor; print(monitor.keep_freed_memory())"
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                             cwd=Path(monitor.__file__).parent.parent).stdout
        assert out.strip() == "True"
