"""Ground-truth generation: true labels, seeded noise, random labels; local buckets and S3."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from stsmon.errors import StsmonError, UsageError
from stsmon.monitoring import ground_truth as gt
from stsmon.monitoring.records import CapturedInference, capture_record

H12 = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)


def captured(n, prefix="sts"):
    return [CapturedInference(f"{prefix}_{i}", f"{prefix}_{i}", f"e{i}", "", "1,0.9\n", "text/csv") for i in range(n)]


def truth(n, prefix="sts", problem="BinaryClassification"):
    labels = {f"{prefix}_{i}": float(i % 2) if problem == "BinaryClassification" else i / 10 for i in range(n)}
    return gt.Truth(labels, problem, "traffic.json")


def test_true_labels_are_the_traffic_record_labels():
    plan = gt.plan_labels(captured(4) + captured(1), "true", truth=truth(4))  # a duplicate capture id
    assert plan.labels == [("sts_0", 0), ("sts_1", 1), ("sts_2", 0), ("sts_3", 1)]
    assert plan.captured == 4 and plan.changed == 0


def test_noise_flips_about_the_error_rate_deterministically():
    plan = gt.plan_labels(captured(2000), "noise", truth=truth(2000), error_rate=0.3, seed=7)
    assert 0.27 < plan.changed / 2000 < 0.33
    again = gt.plan_labels(captured(2000), "noise", truth=truth(2000), error_rate=0.3, seed=7)
    assert again.labels == plan.labels
    other = gt.plan_labels(captured(2000), "noise", truth=truth(2000), error_rate=0.3, seed=8)
    assert other.labels != plan.labels
    # a record's label depends on its id only, not on what else is in the window
    subset = gt.plan_labels(captured(10), "noise", truth=truth(2000), error_rate=0.3, seed=7)
    assert subset.labels == plan.labels[:10]


def test_noise_on_regression_replaces_with_other_labels():
    plan = gt.plan_labels(captured(500), "noise", truth=truth(500, problem="Regression"), error_rate=0.3, seed=1)
    values = {k: v for k, v in plan.labels}
    assert set(values.values()) <= {i / 10 for i in range(500)}
    assert 0.24 < plan.changed / 500 < 0.36
    # the same labels whatever order the requests were captured in (concurrent traffic reorders them)
    shuffled = list(reversed(captured(500)))
    again = gt.plan_labels(shuffled, "noise", truth=truth(500, problem="Regression"), error_rate=0.3, seed=1)
    assert dict(again.labels) == values


def test_random_labels_like_the_original_script():
    plan = gt.plan_labels(captured(3000), "random", positive_rate=0.7, seed=3)
    share = sum(v for _, v in plan.labels) / 3000
    assert 0.67 < share < 0.73 and {v for _, v in plan.labels} == {0, 1}
    regression = gt.plan_labels(captured(50), "random", problem_type="Regression", label_range=(0.0, 5.0))
    assert all(0.0 <= v <= 5.0 for _, v in regression.labels)


def test_ids_missing_from_the_traffic_record_are_reported_not_labelled():
    plan = gt.plan_labels(captured(3) + captured(2, prefix="other"), "true", truth=truth(3))
    assert len(plan.labels) == 3 and plan.without_truth == ["other_0", "other_1"]
    assert any("2 captured inferences are not in the traffic record" in line
               for line in gt.summary_lines(plan, "s3://bkt/k", truth(3)))


def test_plan_refuses_bad_modes_and_missing_truth():
    with pytest.raises(UsageError, match="needs the true labels"):
        gt.plan_labels(captured(1), "noise")
    with pytest.raises(UsageError, match="--error-rate 1.5"):
        gt.plan_labels(captured(1), "noise", truth=truth(1), error_rate=1.5)


@pytest.mark.parametrize("body", [
    {"inferences": [{"inference_id": "sts_0", "label": 0}, {"inference_id": "sts_1", "label": "1"},
                    {"inference_id": "sts_2", "error": "503"}]},
    {"records": [{"inferenceId": "sts_0", "true_label": 0}, {"inferenceId": "sts_1", "true_label": 1}]},
    {"sts_0": 0, "sts_1": 1},
])
def test_read_truth_accepts_traffic_record_shapes(tmp_path, body):
    path = tmp_path / "traffic.json"
    path.write_text(json.dumps(body))
    found = gt.read_truth(path)
    assert found.labels == {"sts_0": 0.0, "sts_1": 1.0} and found.problem_type == "BinaryClassification"


@pytest.mark.parametrize("text, message", [
    ("{nope", "is not JSON"),
    ('{"inferences": []}', "no inference ids with true labels"),
    ('{"inferences": [{"inference_id": "a", "label": "yes"}]}', "label 'yes' is not a number"),
])
def test_read_truth_errors_name_the_file(tmp_path, text, message):
    path = tmp_path / "traffic.json"
    path.write_text(text)
    with pytest.raises(StsmonError, match=message):
        gt.read_truth(path)


def test_hour_windows():
    now = datetime(2026, 11, 27, 12, 40, tzinfo=timezone.utc)
    assert gt.hour_window("current", now) == (H12, H12.replace(hour=13))
    assert gt.hour_window("previous", now) == (H12.replace(hour=11), H12)
    assert gt.hour_window("2026-11-27T10:00:00Z/2026-11-27T12:00:00Z", now) == (H12.replace(hour=10), H12)


@pytest.fixture(params=["local", "aws"])
def s3(request, tmp_path, local_clients):
    """An S3 client with the bucket ``bkt``: the local runtime's, or boto3's against moto."""
    if request.param == "local":
        from stsmon.state import StateDir

        state = StateDir(tmp_path / "state")
        (state.s3_root / "bkt").mkdir(parents=True)
        yield local_clients(state).s3
        return
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
        client.create_bucket(Bucket="bkt")
        yield client


def test_capture_read_and_labels_written_through_s3_on_both_targets(s3):
    lines = "".join(json.dumps(capture_record(event_id=f"e{i}", inference_id=f"sts_{i}", inference_time=H12,
                                              output="1,0.9\n")) + "\n" for i in range(3))
    s3.put_object(Bucket="bkt", Key="sts/datacapture/ep/AllTraffic/2026/11/27/12/00-00-000-x.jsonl", Body=lines)
    s3.put_object(Bucket="bkt", Key="sts/datacapture/ep/AllTraffic/2026/11/27/13/00-00-000-y.jsonl", Body=lines)
    found = gt.read_captures(s3, "s3://bkt/sts/datacapture", "ep", H12, H12.replace(hour=13))
    assert [c.key for c in found] == ["sts_0", "sts_1", "sts_2"]
    plan = gt.plan_labels(found, "true", truth=truth(3))
    uri = gt.write_labels(s3, "s3://bkt/sts/ground-truth", plan.labels, H12, H12, kms_key_id="arn:aws:kms:us-east-1:000000000000:key/k")
    assert uri.startswith("s3://bkt/sts/ground-truth/2026/11/27/12/00-00-000-") and uri.endswith(".jsonl")
    key = uri[len("s3://bkt/"):]
    body = s3.get_object(Bucket="bkt", Key=key)["Body"].read().decode()
    assert [json.loads(line) for line in body.splitlines()][1] == {
        "groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "sts_1"}, "eventVersion": "0"}


def test_s3_errors_are_messages():
    from botocore.stub import Stubber
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(s3) as stub:
        stub.add_client_error("put_object", "AccessDenied", "Access Denied")
        with pytest.raises(StsmonError, match="writing ground truth to s3://bkt/gt/2026/11/27/12/.* failed.*AccessDenied"):
            gt.write_labels(s3, "s3://bkt/gt", [("a", 1)], H12, H12)
