"""What one run of the monitoring pipeline reads from S3, whatever the bucket's retention.

The definition that pipeline_code builds is run as SageMaker would run its
processing job against a moto bucket: every File-mode ``S3Prefix`` input is
copied in full to its local path (what SageMaker does before the container
starts: all objects under the prefix), then the step's program runs with the
step's arguments (``/opt/ml`` mapped to a temporary folder) and makes its
own S3 calls. The bytes of both together must be the same with 1 day and
with 30 days of capture and ground truth in the bucket.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest

from pipeline_code import placeholders
from processing_scripts.monitor import PROGRAM_FILES
from pipeline_code.monitoring import build_monitoring_definition
from stscontracts.config import load_config
import stscontracts
from stscontracts import names
from stscontracts.names import hour_prefix
from stscontracts.records import ground_truth_record
from stsmon.monitoring.records import capture_record

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
START = "2033-05-17T13:00:04.517Z"  # Execution.StartDateTime: the default window is [12:00, 13:00)
H13 = datetime(2033, 5, 17, 13, tzinfo=timezone.utc)
CODE_PREFIX = "sts/code/0123456789abcdef/"


def _seed(bucket: str, key: str, body: bytes) -> None:
    """Put an object straight into moto's S3 backend: seeding 30 days object by object through the
    client takes seconds; the code under test reads through its own boto3 client as usual."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    s3_backends[DEFAULT_ACCOUNT_ID]["aws"].put_object(bucket, key, body)


def _fill(s3, bucket: str, days: int) -> None:
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    for name in PROGRAM_FILES:
        _seed(bucket, CODE_PREFIX + name, (REPO / "processing_scripts" / name).read_bytes())
    for name, path in stscontracts.package_files():
        _seed(bucket, CODE_PREFIX + name, path.read_bytes())
    body = {"version": 0.0, "binary_classification_constraints": {
        "accuracy": {"threshold": 0.1, "comparison_operator": "LessThanThreshold"}}}
    _seed(bucket, "sts/baseline/constraints.json", json.dumps(body).encode())
    for h in range(days * 24):
        hour = H13 - timedelta(hours=h)
        tag = hour.strftime("%m%d%H")
        records = [capture_record(event_id=f"e{tag}{i}", inference_id=f"{tag}-{i}", inference_time=hour,
                                  output=f"{i % 2},0.7\n", output_type="text/csv", input_data="a,b\n") for i in range(3)]
        _seed(bucket, f"sts/datacapture/sts-endpoint/{names.VARIANT}/{hour_prefix(hour)}/f-{tag}.jsonl",
                      "".join(json.dumps(r) + "\n" for r in records).encode())
        _seed(bucket, f"sts/ground-truth/{hour_prefix(hour)}/l-{tag}.jsonl",
                      "".join(json.dumps(ground_truth_record(f"{tag}-{i}", i % 2)) + "\n" for i in range(3)).encode())


def _value(arg, values):
    if isinstance(arg, dict):
        if "Get" in arg:
            return values[arg["Get"]]
        join = arg["Std:Join"]
        return join["On"].join(str(_value(v, values)) for v in join["Values"])
    return arg


def _run_processing_step(s3, step: dict, parameters: dict, root: Path) -> tuple[int, int, dict]:
    """(bytes SageMaker copies for the inputs, bytes the program reads itself, its result)."""
    args = step["Arguments"]
    values = {"Execution.StartDateTime": START, "Execution.PipelineExecutionId": "a1b2c3d4e5f6",
              **{f"Parameters.{k}": v for k, v in parameters.items()}}

    def local(path: str) -> Path:
        assert path.startswith("/opt/ml/"), path
        return root / path[len("/opt/ml/"):]

    copied = 0
    for item in args["ProcessingInputs"]:
        s3in = item["S3Input"]
        assert (s3in["S3DataType"], s3in["S3InputMode"]) == ("S3Prefix", "File")
        bucket, _, prefix = _value(s3in["S3Uri"], values)[len("s3://"):].partition("/")
        dest = local(s3in["LocalPath"])
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in (o for page in pages for o in page.get("Contents", [])):
            rel = obj["Key"][len(prefix):].lstrip("/") or obj["Key"].rsplit("/", 1)[-1]
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            copied += obj["Size"]
    for out in args["ProcessingOutputConfig"]["Outputs"]:
        local(out["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
    app = args["AppSpecification"]
    program = local(app["ContainerEntrypoint"][1])
    argv = [str(_value(a, values)) for a in app["ContainerArguments"]]
    argv = [str(root / a[len("/opt/ml/"):]) if a.startswith("/opt/ml/") else a for a in argv]
    sys.path.insert(0, str(program.parent))
    try:
        spec = importlib.util.spec_from_file_location("monitor_under_test", program)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # as `python monitor.py` would have it (dataclasses look it up)
        spec.loader.exec_module(module)
        code = module.main(argv)
    finally:
        sys.path.remove(str(program.parent))
        for name in (spec.name, *(Path(f).stem for f in PROGRAM_FILES)):
            sys.modules.pop(name, None)
    assert code == 0
    output = local(args["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["LocalPath"])
    result = json.loads((output / "monitoring_result.json").read_text())
    return copied, (result.get("read") or {}).get("bytes", 0), result


@pytest.fixture(scope="module")
def built():
    """The definition as pipeline_code builds it for the default configuration (placeholders intact)."""
    return build_monitoring_definition(load_config({}), CODE_PREFIX)


@pytest.mark.parametrize("backfill", [False, True])
def test_one_run_reads_the_same_bytes_with_1_or_30_days_of_history(tmp_path, monkeypatch, backfill, built):
    """Fault 5 (the class): no processing input may be a prefix that grows with the retention, and the
    program's own reads must not grow either - also for a window given explicitly (a backfill)."""
    import moto

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    parameters = {p["Name"]: p.get("DefaultValue") for p in built["Parameters"]}
    parameters["PublishCloudWatch"] = "false"
    if backfill:
        parameters.update(WindowEnd="2033-05-17T03:00:00Z", WindowHours=3, LabelDelayHours=2)
    totals = {}
    with moto.mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for days in (1, 30):
            bucket = f"sts-artifacts-{days}"
            _fill(s3, bucket, days)
            definition = placeholders.substitute(built, {
                placeholders.BUCKET: bucket, placeholders.REGION: REGION,
                placeholders.BASELINE_URI: f"s3://{bucket}/sts/baseline/constraints.json",
                placeholders.DATA_QUALITY_BASELINE_URI: f"s3://{bucket}/sts/baseline/",
                placeholders.ROLE_ARN: "arn:aws:iam::123456789012:role/sts", placeholders.KMS_KEY_ARN: "k"})
            # A package without a data-quality baseline (its folder holds the model-quality files only).
            params = dict(parameters, BaselineConstraintsUri=f"s3://{bucket}/sts/baseline/constraints.json",
                          DataQualityBaselineUri=f"s3://{bucket}/sts/baseline/")
            (step,) = definition["Steps"]
            copied, read, result = _run_processing_step(s3, step, params, tmp_path / f"days-{days}" / "opt" / "ml")
            totals[days] = (copied, read)
            assert result["counts"]["captured"] == 3 * (3 if backfill else 1)
    assert totals[1] == totals[30], f"bytes (copied by SageMaker, read by monitor.py): {totals}"
    assert totals[30][1] > 0
