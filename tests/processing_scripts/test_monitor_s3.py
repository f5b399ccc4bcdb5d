"""monitor.py reads the window's hours from S3 itself: what one run reads does not depend on retention.

The buckets are moto's (S3 semantics: keys, prefixes, pages); monitor.py
makes its own boto3 client, exactly as in the container, with the region
given as an argument. A hook on that client records every call it makes.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest

from processing_scripts import monitor, monitor_window
from stscontracts.names import hour_prefix
from stscontracts.records import ground_truth_record
from stsmon.monitoring.records import capture_record
from stsmon.monitoring.synthetic import write_constraints

REGION = "eu-west-1"
H12 = datetime(2033, 5, 17, 12, tzinfo=timezone.utc)
EXEC = "2033-05-17T13:00:04.517Z"  # default window: [12:00, 13:00); labels: 12:00 and 13:00
ENDPOINT = "sts-endpoint"
CAPTURE = "sts/datacapture"
LABELS = "sts/ground-truth"
PER_HOUR = 4  # capture records per hour (and labels for them)


def _seed(bucket: str, key: str, body: bytes) -> None:
    """Put an object straight into moto's S3 backend: seeding 30 days object by object through the
    client takes seconds; the code under test reads through its own boto3 client as usual."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    s3_backends[DEFAULT_ACCOUNT_ID]["aws"].put_object(bucket, key, body)


def _capture_body(hour: datetime, tag: str) -> bytes:
    lines = [json.dumps(capture_record(event_id=f"e-{tag}-{i}", inference_id=f"{tag}-{i}",
                                       inference_time=hour + timedelta(minutes=i), output=f"{i % 2},0.{6 + i % 3}\n",
                                       output_type="text/csv", input_data='"a ""b""",c\n'))
             for i in range(PER_HOUR)]
    return ("\n".join(lines) + "\n").encode()


def _label_body(tag: str) -> bytes:
    return "".join(json.dumps(ground_truth_record(f"{tag}-{i}", i % 2)) + "\n" for i in range(PER_HOUR)).encode()


def fill(s3, bucket: str, days: int) -> dict[str, int]:
    """``days`` of hourly capture (two variants; another endpoint's for the last day) and labels up to 13:00;
    key -> size."""
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    sizes = {}
    for h in range(days * 24):
        hour = H12 + timedelta(hours=1) - timedelta(hours=h)
        tag = hour.strftime("%m%d%H")
        objects = {
            f"{CAPTURE}/{ENDPOINT}/AllTraffic/{hour_prefix(hour)}/00-00-000-{tag}.jsonl": _capture_body(hour, tag),
            f"{LABELS}/{hour_prefix(hour)}/labels-{tag}.jsonl": _label_body(tag),
        }
        if h < 24:  # another endpoint's capture next to ours
            objects[f"{CAPTURE}/other-endpoint/AllTraffic/{hour_prefix(hour)}/00-00-000-{tag}.jsonl"] = _capture_body(hour, "x" + tag)
        if h % 24 == 0:
            objects[f"{CAPTURE}/{ENDPOINT}/Shadow/{hour_prefix(hour)}/00-00-000-{tag}.jsonl"] = _capture_body(hour, "s" + tag)
        for key, body in objects.items():
            _seed(bucket, key, body)
            sizes[key] = len(body)
    return sizes


@pytest.fixture(scope="module")
def buckets():
    """One moto account with a bucket of 1 day and one of 30 days of history (same latest hours)."""
    import moto

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        with moto.mock_aws():
            s3 = boto3.client("s3", region_name=REGION)
            yield {"short": fill(s3, "sts-short", 1), "long": fill(s3, "sts-long", 30)}


@pytest.fixture
def creds(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


class Calls:
    """Every API call of the clients monitor.py makes (operation, parameters), via botocore's events."""

    def __init__(self, monkeypatch) -> None:
        self.made: list[tuple[str, dict]] = []
        self.regions: list[str] = []
        real = monitor_window.s3_client

        def tracked(region: str):
            client = real(region)
            self.regions.append(client.meta.region_name)
            client.meta.events.register("provide-client-params.s3.*", self._record)
            return client

        monkeypatch.setattr(monitor_window, "s3_client", tracked)

    def _record(self, params, model, **kwargs):
        self.made.append((model.name, dict(params)))

    def count(self) -> Counter:
        return Counter(op for op, _ in self.made)


def run(tmp_path: Path, bucket: str, *extra: str, execution_time: str = EXEC) -> tuple[int, dict]:
    baseline = tmp_path / "baseline"
    write_constraints(baseline, accuracy=0.1, f1=0.1, auc=None)
    out = tmp_path / "out"
    code = monitor.main([
        "--capture-uri", f"s3://{bucket}/{CAPTURE}/{ENDPOINT}", "--ground-truth-uri", f"s3://{bucket}/{LABELS}",
        "--region", REGION, "--download-dir", str(tmp_path / "window"), "--baseline-dir", str(baseline),
        "--output-dir", str(out), "--exit-message-file", str(tmp_path / "message"),
        "--execution-time", execution_time, "--endpoint-name", ENDPOINT,
        "--schedule-name", "sts-model-quality", *extra])
    result = json.loads((out / monitor.RESULT_FILE).read_text()) if (out / monitor.RESULT_FILE).is_file() else {}
    return code, result


def test_a_run_reads_only_its_window_whatever_the_retention(buckets, creds, tmp_path, monkeypatch):
    """Fault 5: with the capture and label prefixes as processing inputs, each hourly run copied
    everything the bucket kept (up to the retention). Now 1 day or 30 days of history: the same
    calls, the same objects, the same bytes - those of the window's hours."""
    seen = {}
    calls = Calls(monkeypatch)
    for name in ("short", "long"):
        calls.made, calls.regions = [], []
        code, result = run(tmp_path / name, f"sts-{name}")
        assert code == 0, result
        assert calls.regions == [REGION]
        seen[name] = (calls.count(), result)
        window_hour = hour_prefix(H12)
        got = [p["Key"] for op, p in calls.made if op == "GetObject"]
        h13 = H12 + timedelta(hours=1)
        # the endpoint's capture of the window's hour (its other variant has none then), the labels of 12:00 and 13:00
        assert sorted(got) == sorted([f"{CAPTURE}/{ENDPOINT}/AllTraffic/{window_hour}/00-00-000-051712.jsonl",
                                      f"{LABELS}/{hour_prefix(H12)}/labels-051712.jsonl",
                                      f"{LABELS}/{hour_prefix(h13)}/labels-051713.jsonl"])
        listed = [p for op, p in calls.made if op == "ListObjectsV2"]
        assert listed[0] == {"Bucket": f"sts-{name}", "Prefix": f"{CAPTURE}/{ENDPOINT}/", "Delimiter": "/"}
        assert [p["Prefix"] for p in listed[1:]] == [
            f"{CAPTURE}/{ENDPOINT}/AllTraffic/{window_hour}/", f"{CAPTURE}/{ENDPOINT}/Shadow/{window_hour}/",
            f"{LABELS}/{window_hour}/", f"{LABELS}/{hour_prefix(h13)}/"]
        sizes = buckets[name]
        assert result["read"]["bytes"] == sum(sizes[k] for k in got)
        assert result["read"]["objects"] == len(got) == calls.count()["GetObject"]
        assert result["read"]["list_calls"] == calls.count()["ListObjectsV2"]
        assert result["counts"]["captured"] == PER_HOUR and result["counts"]["matched"] == PER_HOUR
    short, long = seen["short"][1], seen["long"][1]
    assert short["read"] == long["read"]
    assert short["counts"] == long["counts"] and short["metrics"] == long["metrics"]
    assert seen["short"][0] == seen["long"][0] == Counter({"ListObjectsV2": 5, "GetObject": 3})
    # what the old File-mode inputs (the endpoint's capture prefix, the ground-truth prefix) would have
    # copied grows 30-fold with the retention; what a run reads does not
    def whole_prefixes(sizes):
        return sum(v for k, v in sizes.items() if k.startswith((f"{CAPTURE}/{ENDPOINT}/", f"{LABELS}/")))

    assert whole_prefixes(buckets["long"]) > 29 * whole_prefixes(buckets["short"]) > 29 * long["read"]["bytes"]
    assert not (tmp_path / "long" / "window").exists() or not any((tmp_path / "long" / "window").iterdir())


def test_s3_and_folder_inputs_give_the_same_result(buckets, creds, tmp_path, monkeypatch):
    """The folder arguments (unit tests, benchmarks) and the S3 ones read the same records."""
    code, from_s3 = run(tmp_path / "s3", "sts-short")
    s3 = boto3.client("s3", region_name=REGION)
    folder = tmp_path / "mirror"
    for key in buckets["short"]:
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket="sts-short", Key=key)["Body"].read())
    baseline = tmp_path / "baseline"
    write_constraints(baseline, accuracy=0.1, f1=0.1, auc=None)
    code2 = monitor.main(["--capture-dir", str(folder / CAPTURE), "--ground-truth-dir", str(folder / LABELS),
                          "--baseline-dir", str(baseline), "--output-dir", str(tmp_path / "out2"),
                          "--execution-time", EXEC, "--endpoint-name", ENDPOINT, "--schedule-name", "sts-model-quality"])
    from_folder = json.loads((tmp_path / "out2" / monitor.RESULT_FILE).read_text())
    assert code == code2 == 0
    for key in ("status", "counts", "metrics", "window", "violations", "files"):
        assert from_s3[key] == from_folder[key], key
    assert from_folder["read"] is None and from_s3["read"]["objects"] == 3


def test_a_backfill_reads_the_window_and_the_label_delay_not_the_time_since(buckets, creds, tmp_path, monkeypatch):
    """A window years before the run reads window + delay + 1 label hours, not every hour since."""
    calls = Calls(monkeypatch)
    code, result = run(tmp_path, "sts-long", "--window-end", "2033-05-10T06:00:00Z", "--window-hours", "2",
                       "--label-delay-hours", "3", execution_time="2036-01-01T00:00:00Z")
    assert code == 0
    assert result["window"] == {"start": "2033-05-10T04:00:00Z", "end": "2033-05-10T06:00:00Z"}
    labels = [p["Prefix"] for op, p in calls.made if op == "ListObjectsV2" and p["Prefix"].startswith(LABELS)]
    assert labels == [f"{LABELS}/2033/05/10/{h:02d}/" for h in range(4, 10)]  # 04..09: window, delay 3, +1
    assert result["counts"]["captured"] == 2 * PER_HOUR and result["counts"]["matched"] == 2 * PER_HOUR


def test_every_page_of_a_listing_is_read(tmp_path):
    """ListObjectsV2 answers at most 1000 keys a page: the continuation token is followed (botocore Stubber)."""
    from botocore.stub import Stubber

    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    stats = monitor_window.ReadStats()
    prefix = f"{LABELS}/2033/05/17/12/"
    with Stubber(s3) as stub:
        stub.add_response("list_objects_v2", {"IsTruncated": True, "NextContinuationToken": "t1",
                                              "Contents": [{"Key": prefix + "a.jsonl", "Size": 3}]},
                          {"Bucket": "b", "Prefix": prefix})
        stub.add_response("list_objects_v2", {"IsTruncated": False, "Contents": [{"Key": prefix + "b.jsonl", "Size": 4}]},
                          {"Bucket": "b", "Prefix": prefix, "ContinuationToken": "t1"})
        assert monitor_window.list_objects(s3, "b", prefix, stats) == [(prefix + "a.jsonl", 3), (prefix + "b.jsonl", 4)]
        stub.assert_no_pending_responses()
    assert stats.list_calls == 2


def test_an_unreadable_bucket_exits_1_and_writes_nothing(buckets, creds, tmp_path, capsys):
    code, result = run(tmp_path, "sts-missing")
    assert code == 1 and result == {}
    err = capsys.readouterr().err
    assert "reading the window from S3" in err and "NoSuchBucket" in err
    assert not (tmp_path / "out").exists()
    assert "NoSuchBucket" in (tmp_path / "message").read_text()  # the job's ExitMessage on SageMaker


@pytest.mark.parametrize("args, message", [
    (["--capture-uri", "s3://b/p", "--capture-dir", "c", "--ground-truth-dir", "g"],
     "give exactly one of --capture-uri (S3) and --capture-dir"),
    (["--capture-uri", "s3://b/p", "--ground-truth-uri", "s3://b/g"], "--region is required"),
    (["--capture-uri", "b/p", "--ground-truth-uri", "s3://b/g", "--region", REGION], "'b/p' is not an s3://bucket/prefix URI"),
    (["--capture-dir", "c", "--ground-truth-dir", "g", "--ground-truth-uri", "s3://b/g"], "give exactly one of --ground-truth-uri"),
])
def test_input_arguments_are_checked(tmp_path, capsys, args, message):
    write_constraints(tmp_path / "baseline")
    code = monitor.main([*args, "--baseline-dir", str(tmp_path / "baseline"), "--output-dir", str(tmp_path / "out"),
                         "--exit-message-file", str(tmp_path / "message"), "--execution-time", EXEC])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value, expected", [
    ("2033-05-17T13:00:04.517Z", datetime(2033, 5, 17, 13, 0, 4, 517000, tzinfo=timezone.utc)),  # the local executor's form
    ("2033-05-17T13:00:04Z", datetime(2033, 5, 17, 13, 0, 4, tzinfo=timezone.utc)),
    ("2033-05-17 15:00:04.517+02:00", datetime(2033, 5, 17, 13, 0, 4, 517000, tzinfo=timezone.utc)),
    ("1999947604.517", datetime(2033, 5, 17, 13, 0, 4, 517000, tzinfo=timezone.utc)),  # the SDK's local mode: epoch s
    ("1999947604517", datetime(2033, 5, 17, 13, 0, 4, 517000, tzinfo=timezone.utc)),  # epoch ms
])
def test_execution_start_time_forms(value, expected):
    assert monitor.parse_time(value, "--execution-time") == expected
