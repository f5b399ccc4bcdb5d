"""The monitoring pipeline definition that pipeline_code/ builds (what the CDK app deploys)
runs monitor.py through the local executor: the interface between the two holds."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from monitoring_deploy import BASELINE_URI, BUCKET, ENDPOINT, PIPELINE, deploy_monitoring, published_points, run_monitor

from stsmon.localcloud import LocalEnvironment
from stsmon.localcloud.pipelines import pipeline_arn, write_pipeline
from stsmon.monitoring.synthetic import write_window


@pytest.mark.slow
def test_the_generated_monitoring_definition_runs_monitor_py(tmp_path, monkeypatch, local_clients):
    from pipeline_code import placeholders
    from pipeline_code.monitoring import build_monitoring_definition

    from stscontracts.config import load_config

    monkeypatch.setenv("STSMON_SCHEDULER_AUTOSTART", "0")
    deployment = deploy_monitoring(tmp_path)
    cfg = load_config(context={}, env={}, dotenv_path=None, cdk_json_context={})
    assert (cfg.endpoint_name, cfg.monitoring_pipeline_name) == (ENDPOINT, PIPELINE)
    definition = placeholders.substitute(build_monitoring_definition(cfg, "sts/code/abc"), {
        placeholders.BUCKET: BUCKET, placeholders.BASELINE_URI: BASELINE_URI, placeholders.REGION: "us-east-1",
        # a package without a data-quality baseline: the model-quality folder (the served package's fallback)
        placeholders.DATA_QUALITY_BASELINE_URI: BASELINE_URI.rsplit("/", 1)[0] + "/",
        placeholders.ROLE_ARN: "arn:aws:iam::000000000000:role/sts", placeholders.KMS_KEY_ARN: "arn:aws:kms:us-east-1:000000000000:key/k"})
    env = LocalEnvironment()
    write_pipeline(deployment.state, {"PipelineName": PIPELINE, "PipelineArn": pipeline_arn(env, PIPELINE),
                                      "PipelineDefinition": definition, "Region": env.region, "Account": env.account})
    write_window(deployment.capture_root, deployment.ground_truth_root, datetime(2026, 11, 27, 12, tzinfo=timezone.utc),
                 250, accuracy=0.9, endpoint=ENDPOINT)
    run = run_monitor(local_clients(deployment.state), "2026-11-27T13:00:00Z", MinLabelCoverage="0.5")
    assert run.execution["PipelineExecutionStatus"] == "Succeeded", run.execution.get("FailureReason")
    assert run.status == "Completed" and run.result["counts"]["matched"] == 250
    assert run.result["data_quality"]["status"] == "NotEvaluated"
    assert run.result["min_label_coverage"] == 0.5 and run.result["schedule_name"] == cfg.monitoring_schedule_name
    assert run.output_uri.startswith(f"s3://{BUCKET}/sts/monitoring/{cfg.monitoring_schedule_name}/")
    assert published_points(deployment.state, run) > 0  # by monitor.py in the stack's region, to the local CloudWatch
