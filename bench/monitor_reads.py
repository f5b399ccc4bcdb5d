"""What one hourly monitoring run reads from S3, with 1 day and with 30 days of history kept.

    .venv/bin/python bench/monitor_reads.py                       # 1 and 30 days, 200 captures an hour
    .venv/bin/python bench/monitor_reads.py --days 1 7 30 --per-hour 1000

For each retention it fills a moto bucket with that many days of hourly data
capture (SageMaker's JSONL, 4 files an hour) and ground truth, then runs the
monitoring pipeline's step as SageMaker runs a processing job: the
definition pipeline_code builds (default configuration), every File-mode
``S3Prefix`` input copied in full (what SageMaker does before the container
starts), then ``processing_scripts/monitor.py`` with the step's arguments,
making its own S3 calls. It prints, per retention, what the inputs copied,
what monitor.py read itself (``monitoring_result.json`` ``read``), and what
the capture and ground-truth prefixes hold - what the step copied before
issue 10's fault 5 was fixed, when they were inputs.

moto keeps the bucket in memory: 30 days at 200 captures an hour is about
150 MB.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline_code import placeholders  # noqa: E402
from processing_scripts.monitor import PROGRAM_FILES  # noqa: E402
from pipeline_code.monitoring import build_monitoring_definition  # noqa: E402
from stscontracts.config import load_config  # noqa: E402
import stscontracts  # noqa: E402
from stscontracts import names  # noqa: E402
from stsmon.monitoring.synthetic import write_window  # noqa: E402

REGION = "us-east-1"
RUN = datetime(2033, 5, 17, 13, 0, 4, tzinfo=timezone.utc)  # Execution.StartDateTime: window [12:00, 13:00)
CODE_PREFIX = "sts/code/bench/"


def _seed(bucket: str, key: str, body: bytes) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    s3_backends[DEFAULT_ACCOUNT_ID]["aws"].put_object(bucket, key, body)


def fill(s3, bucket: str, days: int, per_hour: int, scratch: Path) -> int:
    """``days`` of hourly capture and labels ending with the run's hour; returns their bytes."""
    s3.create_bucket(Bucket=bucket)
    for name in PROGRAM_FILES:
        _seed(bucket, CODE_PREFIX + name, (REPO / "processing_scripts" / name).read_bytes())
    for name, path in stscontracts.package_files():
        _seed(bucket, CODE_PREFIX + name, path.read_bytes())
    constraints = {"version": 0.0, "binary_classification_constraints": {
        "accuracy": {"threshold": 0.7, "comparison_operator": "LessThanThreshold"}}}
    _seed(bucket, "sts/baseline/constraints.json", json.dumps(constraints).encode())
    one = write_window(scratch / "c", scratch / "g", RUN, per_hour, files=4, endpoint="sts-endpoint")
    captures = [(p.name, p.read_bytes()) for p in one.capture_files]
    labels = [(p.name, p.read_bytes()) for p in one.label_files]
    total = 0
    for h in range(days * 24):
        hour = RUN.replace(minute=0, second=0) - timedelta(hours=h)
        for name, body in captures:
            _seed(bucket, f"{names.capture_prefix('sts')}/{names.capture_hour_prefix('sts-endpoint', hour)}/{name}", body)
            total += len(body)
        for name, body in labels:
            _seed(bucket, f"{names.ground_truth_prefix('sts')}/{names.hour_prefix(hour)}/{name}", body)
            total += len(body)
    return total


def _value(arg, values):
    if isinstance(arg, dict):
        if "Get" in arg:
            return values[arg["Get"]]
        join = arg["Std:Join"]
        return join["On"].join(str(_value(v, values)) for v in join["Values"])
    return arg


def run_step(s3, step: dict, parameters: dict, root: Path) -> dict:
    """The processing job: inputs copied in full, then monitor.py; what each read."""
    args = step["Arguments"]
    values = {"Execution.StartDateTime": RUN.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "Execution.PipelineExecutionId": "bench",
              **{f"Parameters.{k}": v for k, v in parameters.items()}}

    def local(path: str) -> Path:
        return root / path[len("/opt/ml/"):]

    copied = {"objects": 0, "bytes": 0}
    for item in args["ProcessingInputs"]:
        bucket, _, prefix = _value(item["S3Input"]["S3Uri"], values)[len("s3://"):].partition("/")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix):].lstrip("/") or obj["Key"].rsplit("/", 1)[-1]
                dest = local(item["S3Input"]["LocalPath"]) / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
                copied["objects"] += 1
                copied["bytes"] += obj["Size"]
    app = args["AppSpecification"]
    program = local(app["ContainerEntrypoint"][1])
    argv = [str(_value(a, values)) for a in app["ContainerArguments"]]
    argv = [str(local(a)) if a.startswith("/opt/ml/") else a for a in argv]
    sys.path.insert(0, str(program.parent))
    spec = importlib.util.spec_from_file_location("monitor_bench", program)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    with open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet
        try:
            code = module.main(argv)
        finally:
            sys.stdout = stdout
            sys.path.remove(str(program.parent))
            for name in (spec.name, *(Path(f).stem for f in PROGRAM_FILES)):
                sys.modules.pop(name, None)
    if code != 0:
        raise SystemExit(f"monitor.py exited {code}")
    result = json.loads((local(args["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["LocalPath"])
                         / "monitoring_result.json").read_text())
    return {"copied": copied, "read": result["read"], "counts": result["counts"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, nargs="+", default=[1, 30], help="retentions to compare")
    parser.add_argument("--per-hour", type=int, default=200, help="captured requests per hour (and labels)")
    args = parser.parse_args(argv)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_EC2_METADATA_DISABLED="true")
    import boto3
    import moto

    definition = build_monitoring_definition(load_config({}), CODE_PREFIX)
    params = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    rows = []
    with moto.mock_aws(), tempfile.TemporaryDirectory() as tmp:
        s3 = boto3.client("s3", region_name=REGION)
        for days in args.days:
            bucket = f"sts-bench-{days}d"
            held = fill(s3, bucket, days, args.per_hour, Path(tmp) / f"scratch-{days}")
            step = placeholders.substitute(definition, {
                placeholders.BUCKET: bucket, placeholders.REGION: REGION,
                placeholders.BASELINE_URI: f"s3://{bucket}/sts/baseline/constraints.json",
                placeholders.DATA_QUALITY_BASELINE_URI: f"s3://{bucket}/sts/baseline/",
                placeholders.ROLE_ARN: "arn:aws:iam::123456789012:role/bench", placeholders.KMS_KEY_ARN: "k"})["Steps"][0]
            out = run_step(s3, step, dict(params, PublishCloudWatch="false",
                                          BaselineConstraintsUri=f"s3://{bucket}/sts/baseline/constraints.json",
                                          DataQualityBaselineUri=f"s3://{bucket}/sts/baseline/"),
                           Path(tmp) / f"job-{days}" / "opt" / "ml")
            rows.append((days, held, out))
    print(f"One monitoring run (default window: the previous hour), {args.per_hour} captures an hour, 4 files an hour\n")
    print("| history kept | capture + labels in the bucket | inputs copied (code, baseline) "
          "| monitor.py read: objects / bytes / list calls | captured in the window |")
    print("|---|---|---|---|---|")
    for days, held, out in rows:
        read = out["read"]
        print(f"| {days} day{'s' if days > 1 else ''} | {held:,} B | {out['copied']['objects']} objects, {out['copied']['bytes']:,} B "
              f"| {read['objects']} / {read['bytes']:,} B / {read['list_calls']} | {out['counts']['captured']} |")
    print("\nBefore the fix the capture and ground-truth prefixes were File-mode inputs: each run copied "
          "the whole of column 2.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
