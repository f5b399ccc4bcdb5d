"""``stsmon report --target aws``: the monitoring results from S3 and the alarm states from CloudWatch."""

from __future__ import annotations

import json
from typing import Any

from stscontracts import names

from ..errors import StsmonError
from .aws import describe_alarms
from .report import RunResult


def aws_results(s3: Any, cloudwatch: Any, output_uri: str, alarm_prefix: str | tuple[str, ...], *, limit: int = 500
                ) -> tuple[list[RunResult], list[dict[str, Any]]]:
    """Every ``{output uri}/{execution id}/monitoring_result.json`` (newest ``limit``, oldest first) and the alarms."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not output_uri.startswith("s3://"):
        raise StsmonError(f"MonitoringOutputUri {output_uri!r} is not an s3:// URI")
    bucket, _, prefix = output_uri[len("s3://"):].partition("/")
    prefix = prefix.rstrip("/") + "/"
    try:
        found = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend(o for o in page.get("Contents", []) if o["Key"].endswith("/" + names.RESULT_FILE))
        found.sort(key=lambda o: o["LastModified"])
        runs = []
        for obj in found[-limit:]:
            result = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            execution_id = obj["Key"][len(prefix):].split("/")[0]
            report = f"s3://{bucket}/{obj['Key'].rsplit('/', 1)[0]}/{names.REPORT_FILE}"
            runs.append(RunResult.from_result(execution_id, result, report_path=report))
        alarms = [{"AlarmName": a["AlarmName"], "StateValue": a["StateValue"], "StateReason": a.get("StateReason", ""),
                   "Definition": {"MetricName": a.get("MetricName", "")}}
                  for a in describe_alarms(cloudwatch, alarm_prefix)]
    except (ClientError, BotoCoreError) as exc:
        raise StsmonError(f"reading the monitoring results from {output_uri} failed: {exc}") from None
    runs.sort(key=lambda r: (r.window_end is None, r.window_end or 0))
    return runs, alarms
