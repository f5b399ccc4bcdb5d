"""Monitoring stack intents: schedule, scheduler role, pipeline, native backend, alarms, dashboard."""

from __future__ import annotations

import json

import pytest

from cdk_helpers import logical_id, pipeline_definition, policy_statements, render
from stscontracts import names


def test_monitored_package_is_the_one_the_endpoint_serves(dev):
    lookup = dev.one("monitoring", "Custom::StsApprovedModelPackage")["Properties"]
    assert lookup["EndpointName"] == "sts-endpoint"
    assert lookup["ModelPackageGroupName"] == "stsPackageGroup"


def test_pipeline_backend_schedule_runs_the_monitoring_pipeline_hourly(dev):
    schedule = dev.one("monitoring", "AWS::Scheduler::Schedule")["Properties"]
    assert schedule["ScheduleExpression"] == "cron(0 * ? * * *)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["State"] == "ENABLED"
    target = schedule["Target"]
    assert target["Arn"] == "arn:aws:sagemaker:us-east-1:000000000000:pipeline/stspipelinemonitoring"
    assert target["SageMakerPipelineParameters"]["PipelineParameterList"] == [{"Name": "PublishCloudWatch", "Value": "true"}]


def test_scheduler_role_may_only_start_that_pipeline(dev):
    template = dev.template("monitoring")
    role_id = logical_id(template, "AWS::IAM::Role", "Monitor/SchedulerRole")
    role = template["Resources"][role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "000000000000"}}
    assert policy_statements(template, role_id) == [
        {
            "Action": "sagemaker:StartPipelineExecution",
            "Effect": "Allow",
            "Resource": "arn:aws:sagemaker:us-east-1:000000000000:pipeline/stspipelinemonitoring",
            "Sid": "StartMonitoringPipeline",
        }
    ]
    schedule = dev.one("monitoring", "AWS::Scheduler::Schedule")
    assert schedule["Properties"]["Target"]["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}


def test_monitoring_pipeline_defaults_to_the_served_baseline(dev):
    template = dev.template("monitoring")
    lookup_id = logical_id(template, "Custom::StsApprovedModelPackage", "MonitoredPackage/Resource")
    resource = dev.one("monitoring", "AWS::SageMaker::Pipeline")
    assert resource["Properties"]["PipelineName"] == "stsPipelineMonitoring"
    definition = pipeline_definition(resource)
    params = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert params["BaselineConstraintsUri"] == f"<{lookup_id}.BaselineUri>"
    assert params["DataQualityBaselineUri"] == f"<{lookup_id}.DataQualityBaselineUri>"
    code = next(i for i in definition["Steps"][0]["Arguments"]["ProcessingInputs"] if i["InputName"] == "code")
    assert code["S3Input"]["S3Uri"] == f"s3://sts-artifacts-000000000000-us-east-1/{dev.stacks.training.code.key_prefix}"


def test_quality_alarms_use_the_constraints_of_the_served_package(dev):
    template = dev.template("monitoring")
    lookup_id = logical_id(template, "Custom::StsApprovedModelPackage", "MonitoredPackage/Resource")
    alarms = {a["Properties"]["MetricName"]: a["Properties"] for a in dev.resources("monitoring", "AWS::CloudWatch::Alarm").values()}
    assert set(alarms) == {"accuracy", "precision", "recall", "f1", "auc", "ExecutionFailed", "monitoring_failed",
                           "baseline_drift_violations", "estimated_accuracy", "estimated_precision", "estimated_recall",
                           "estimated_f1"}
    for metric in ("accuracy", "precision", "recall", "f1", "auc"):
        alarm = alarms[metric]
        assert alarm["Namespace"] == "stsmodelmonitor"
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"Endpoint": "sts-endpoint", "MonitoringSchedule": "sts-model-quality"}
        assert alarm["Threshold"] == {"Fn::GetAtt": [lookup_id, f"{metric}Threshold"]}
        assert alarm["ComparisonOperator"] == {"Fn::GetAtt": [lookup_id, f"{metric}Comparison"]}
        assert alarm["Period"] == 3600 and alarm["AlarmActions"]
        assert alarm["Statistic"] == "Minimum"  # the worst run of the hour; scores: lower is worse
    failed = alarms["ExecutionFailed"]
    assert failed["Dimensions"] == [{"Name": "PipelineName", "Value": "stsPipelineMonitoring"}]


def test_a_failed_window_or_no_result_at_all_raises_an_alarm(dev):
    """Fault 6: a Failed window (monitoring_failed = 1) and an hour in which no run published anything
    both alarm: Maximum of monitoring_failed >= 1 with missing data breaching, one period per run."""
    alarms = {a["Properties"]["AlarmName"]: a["Properties"] for a in dev.resources("monitoring", "AWS::CloudWatch::Alarm").values()}
    no_result = alarms["sts-monitor-no-result"]
    assert {k: no_result[k] for k in ("Namespace", "MetricName", "Statistic", "Period", "EvaluationPeriods", "Threshold",
                                      "ComparisonOperator", "TreatMissingData")} == {
        "Namespace": "stsmodelmonitor", "MetricName": "monitoring_failed", "Statistic": "Maximum", "Period": 3600,
        "EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "breaching"}
    assert {d["Name"]: d["Value"] for d in no_result["Dimensions"]} == {"Endpoint": "sts-endpoint", "MonitoringSchedule": "sts-model-quality"}
    assert no_result["AlarmActions"] == no_result["OKActions"] and len(no_result["AlarmActions"]) == 1
    failed = alarms["sts-monitor-failed"]  # every failed execution, a Failed window included (monitor.py exits 3)
    assert (failed["MetricName"], failed["Statistic"], failed["Threshold"], failed["TreatMissingData"]) == (
        "ExecutionFailed", "Sum", 1, "notBreaching")


@pytest.mark.slow
def test_the_no_result_alarm_period_follows_the_schedule(tmp_path):
    from cdk_helpers import synthesize

    synth = synthesize(tmp_path, {"MONITOR_SCHEDULE": "cron(30 */6 ? * * *)"}, nag=False)
    alarms = {a["Properties"]["AlarmName"]: a["Properties"] for a in synth.resources("monitoring", "AWS::CloudWatch::Alarm").values()}
    assert alarms["sts-monitor-no-result"]["Period"] == 6 * 3600  # a run in every period


def test_dashboard_shows_traffic_latency_errors_quality_and_alarms(dev):
    body = render(dev.one("monitoring", "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"])
    widgets = json.loads(body)["widgets"]
    titles = [w["properties"].get("title") for w in widgets]
    for title in ("Invocations", "Model latency (microseconds)", "Errors", "Quality: accuracy", "Quality: auc", "Alarms"):
        assert title in titles
    outputs = dev.template("monitoring")["Outputs"]
    assert outputs["DashboardUrl"]["Value"] == (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards:name=sts-model-quality"
    )
    assert outputs["MonitoringScheduleName"]["Value"] == "sts-model-quality"
    assert outputs["MonitoringOutputUri"]["Value"] == "s3://sts-artifacts-000000000000-us-east-1/sts/monitoring/sts-model-quality/"
    assert outputs["MonitoringPipelineName"]["Value"] == "stsPipelineMonitoring"


def test_label_free_alarms_watch_drift_and_the_estimated_quality(dev):
    """Issue 12: an alarm on data-quality drift and one per estimated metric, against the served package's
    model-quality constraints, all on what monitor.py publishes with no label."""
    template = dev.template("monitoring")
    lookup_id = logical_id(template, "Custom::StsApprovedModelPackage", "MonitoredPackage/Resource")
    alarms = {a["Properties"]["AlarmName"]: a["Properties"] for a in dev.resources("monitoring", "AWS::CloudWatch::Alarm").values()}
    drift = alarms["sts-data-quality-drift"]
    assert {k: drift[k] for k in ("Namespace", "MetricName", "Statistic", "Period", "Threshold", "ComparisonOperator",
                                  "TreatMissingData")} == {
        "Namespace": "stsmodelmonitor", "MetricName": "baseline_drift_violations", "Statistic": "Maximum",
        "Period": 3600, "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching"}
    assert {d["Name"]: d["Value"] for d in drift["Dimensions"]} == {"Endpoint": "sts-endpoint", "MonitoringSchedule": "sts-model-quality"}
    assert drift["AlarmActions"] == drift["OKActions"] and len(drift["AlarmActions"]) == 1
    for metric in ("accuracy", "precision", "recall", "f1"):
        alarm = alarms[f"sts-estimated-{metric}"]
        assert alarm["MetricName"] == f"estimated_{metric}" and alarm["Statistic"] == "Minimum"
        # the realized metric's threshold and operator: an estimated drop below the constraint alarms
        assert alarm["Threshold"] == {"Fn::GetAtt": [lookup_id, f"{metric}Threshold"]}
        assert alarm["ComparisonOperator"] == {"Fn::GetAtt": [lookup_id, f"{metric}Comparison"]}
        assert alarm["TreatMissingData"] == "notBreaching"
    assert "sts-estimated-auc" not in alarms  # CBPE estimates accuracy, precision, recall and F1 only
    body = json.loads(render(dev.one("monitoring", "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"]))
    widgets = {w["properties"].get("title"): w["properties"] for w in body["widgets"]}
    drift_widget = widgets["Data quality: baseline drift per feature (no labels needed)"]
    charted = {m[1] for m in drift_widget["metrics"]}
    assert charted == {f"feature_baseline_drift_{f}" for f in names.data_quality_features("BinaryClassification")}
    assert drift_widget["annotations"]["horizontal"][0]["value"] == dev.config.drift_threshold
    estimated = widgets["Estimated (before labels) vs realized: accuracy"]
    assert [m[1] for m in estimated["metrics"]] == ["estimated_accuracy", "estimated_accuracy_lower",
                                                     "estimated_accuracy_upper", "accuracy"]
    status = widgets["Alarms"]["alarms"]
    assert len(status) == len(alarms)


def test_dev_stops_monitoring_executions_on_destroy(dev, prod):
    cleanup = dev.one("monitoring", "Custom::StsPipelineCleanup")["Properties"]
    assert cleanup["PipelineNames"] == ["stsPipelineMonitoring"] and "ModelPackageGroupName" not in cleanup
    assert prod.resources("monitoring", "Custom::StsPipelineCleanup") == {}


def test_model_monitor_backend_declares_the_native_schedule(prod):
    template = prod.template("monitoring")
    assert prod.resources("monitoring", "AWS::SageMaker::Pipeline") == {}
    assert prod.resources("monitoring", "AWS::Scheduler::Schedule") == {}
    lookup_id = logical_id(template, "Custom::StsApprovedModelPackage", "MonitoredPackage/Resource")
    job = prod.one("monitoring", "AWS::SageMaker::ModelQualityJobDefinition")["Properties"]
    assert job["ModelQualityAppSpecification"]["ProblemType"] == "BinaryClassification"
    assert job["ModelQualityAppSpecification"]["ImageUri"].endswith("/sagemaker-model-monitor-analyzer:latest")
    assert job["ModelQualityBaselineConfig"]["ConstraintsResource"]["S3Uri"] == {"Fn::GetAtt": [lookup_id, "BaselineConstraintsUri"]}
    endpoint_input = job["ModelQualityJobInput"]["EndpointInput"]
    assert endpoint_input["EndpointName"] == "para-endpoint"
    assert (endpoint_input["InferenceAttribute"], endpoint_input["ProbabilityAttribute"]) == ("0", "1")
    assert job["ModelQualityJobInput"]["GroundTruthS3Input"]["S3Uri"] == "s3://para-artifacts-000000000000-us-east-1/para/ground-truth"
    assert "Fn::ImportValue" in job["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"]
    assert "Fn::ImportValue" in job["ModelQualityJobOutputConfig"]["KmsKeyId"]
    # Replacement-safe name: a hash of the settings plus the served package version.
    name = render(job["JobDefinitionName"])
    assert name.startswith("para-mq-") and name.endswith(f"-v<{lookup_id}.ModelPackageVersion>")
    schedules = {s["Properties"]["MonitoringScheduleConfig"]["MonitoringType"]: s["Properties"]
                 for s in prod.resources("monitoring", "AWS::SageMaker::MonitoringSchedule").values()}
    schedule = schedules["ModelQuality"]
    assert schedule["MonitoringScheduleName"] == "para-model-quality"
    assert schedule["MonitoringScheduleConfig"]["MonitoringType"] == "ModelQuality"
    assert schedule["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"] == "cron(0 * ? * * *)"
    assert schedule["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"] == job["JobDefinitionName"]
    alarms = [a["Properties"] for a in prod.resources("monitoring", "AWS::CloudWatch::Alarm").values()]
    assert {a["Namespace"] for a in alarms if "Namespace" in a} == {"aws/sagemaker/Endpoints/model-metrics"}


def test_model_monitor_backend_declares_the_native_data_quality_schedule_on_the_same_baseline(prod):
    """Issue 12: MONITOR_BACKEND=model-monitor gets a DataQualityJobDefinition + its own schedule, fed by the
    served package's DriftCheckBaselines.ModelDataQuality folder (the pipeline backend's baseline), with the
    baseline step's preprocessor.py as the record preprocessor."""
    template = prod.template("monitoring")
    lookup_id = logical_id(template, "Custom::StsApprovedModelPackage", "MonitoredPackage/Resource")
    job = prod.one("monitoring", "AWS::SageMaker::DataQualityJobDefinition")["Properties"]
    folder = {"Fn::GetAtt": [lookup_id, "DataQualityBaselineUri"]}
    app = job["DataQualityAppSpecification"]
    assert app["ImageUri"].endswith("/sagemaker-model-monitor-analyzer:latest")
    assert app["RecordPreprocessorSourceUri"] == {"Fn::Join": ["", [folder, "preprocessor.py"]]}
    assert app["Environment"] == {"publish_cloudwatch_metrics": "Enabled"}
    baseline = job["DataQualityBaselineConfig"]
    assert baseline["ConstraintsResource"]["S3Uri"] == {"Fn::Join": ["", [folder, "constraints.json"]]}
    assert baseline["StatisticsResource"]["S3Uri"] == {"Fn::Join": ["", [folder, "statistics.json"]]}
    assert job["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == "para-endpoint"
    assert "Fn::ImportValue" in job["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"]
    assert "Fn::ImportValue" in job["DataQualityJobOutputConfig"]["KmsKeyId"]
    assert job["NetworkConfig"]["EnableNetworkIsolation"] is True
    output = job["DataQualityJobOutputConfig"]["MonitoringOutputs"][0]["S3Output"]["S3Uri"]
    assert output == "s3://para-artifacts-000000000000-us-east-1/para/monitoring/para-data-quality/"
    name = render(job["JobDefinitionName"])
    assert name.startswith("para-dq-") and name.endswith(f"-v<{lookup_id}.ModelPackageVersion>")
    schedules = {s["Properties"]["MonitoringScheduleConfig"]["MonitoringType"]: s["Properties"]
                 for s in prod.resources("monitoring", "AWS::SageMaker::MonitoringSchedule").values()}
    schedule = schedules["DataQuality"]
    assert schedule["MonitoringScheduleName"] == "para-data-quality"
    assert schedule["MonitoringScheduleConfig"]["MonitoringJobDefinitionName"] == job["JobDefinitionName"]
    assert schedule["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"] == "cron(0 * ? * * *)"
    # Drift alarms: the largest feature_baseline_drift_<feature> of each group of <= 10 features (the
    # metric-math limit) above DRIFT_THRESHOLD; together they cover every watched feature.
    alarms = {a["Properties"]["AlarmName"]: a["Properties"] for a in prod.resources("monitoring", "AWS::CloudWatch::Alarm").values()}
    drift = [a for n, a in sorted(alarms.items()) if n.startswith("para-data-quality-drift-")]
    assert len(drift) == 2
    covered = []
    for alarm in drift:
        queries = alarm["Metrics"]
        stats = [q["MetricStat"] for q in queries if "MetricStat" in q]
        assert len(stats) <= 10
        assert {s["Metric"]["Namespace"] for s in stats} == {"aws/sagemaker/Endpoints/data-metrics"}
        assert all({d["Name"]: d["Value"] for d in s["Metric"]["Dimensions"]} ==
                   {"Endpoint": "para-endpoint", "MonitoringSchedule": "para-data-quality"} for s in stats)
        covered += [s["Metric"]["MetricName"] for s in stats]
        (expression,) = [q for q in queries if q.get("ReturnData", True) and "Expression" in q]
        assert expression["Expression"].startswith("MAX([")
        assert alarm["Threshold"] == prod.config.drift_threshold
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["TreatMissingData"] == "notBreaching"
    assert sorted(covered) == sorted(f"feature_baseline_drift_{f}" for f in names.data_quality_features("BinaryClassification"))
    body = json.loads(render(prod.one("monitoring", "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"]))
    titles = {w["properties"].get("title") for w in body["widgets"]}
    assert "Data quality: baseline drift per feature (no labels needed)" in titles
    assert not any(t and t.startswith("Estimated") for t in titles)  # Model Monitor does not estimate
    assert "Data-quality violations" not in titles  # nor publish violation counts


def test_regression_alarms_watch_the_worst_value_of_the_hour(tmp_path):
    from cdk_helpers import synthesize

    synth = synthesize(tmp_path, {"PROBLEM_TYPE": "Regression", "QUALITY_METRIC": "r2", "QUALITY_THRESHOLD": "0.2"},
                       nag=False)
    alarms = {a["Properties"]["MetricName"]: a["Properties"]
              for a in synth.resources("monitoring", "AWS::CloudWatch::Alarm").values()}
    assert {m: alarms[m]["Statistic"] for m in ("mae", "rmse", "r2")} == {
        "mae": "Maximum", "rmse": "Maximum", "r2": "Minimum"}  # errors: higher is worse
