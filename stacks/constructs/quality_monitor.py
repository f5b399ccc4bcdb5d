"""Hourly model-quality monitoring of an endpoint: two interchangeable backends.

- :class:`PipelineQualityMonitor` (default): a one-step SageMaker pipeline
  running ``processing_scripts/monitor.py``, started by EventBridge Scheduler
  under a role that may start exactly that pipeline and nothing else.
- :class:`NativeQualityMonitor`: SageMaker Model Monitor's
  ``ModelQualityJobDefinition`` + ``MonitoringSchedule``, for accounts that
  still have Model Monitor (closed to new customers).

Both expose ``schedule_name``, ``output_uri`` and :meth:`metric_quality`, so
alarms and the dashboard (:class:`QualityAlarms`, :class:`MonitoringDashboard`)
work with either.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from aws_cdk import CfnResource, Duration, Fn, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from stscontracts import names
from stscontracts.metrics import Metric

from .capture_endpoint import CaptureEndpoint
from .custom_resources import ServedModelPackage
from .sagemaker_pipeline import SageMakerPipeline

QUALITY_PERIOD = Duration.hours(1)


class QualityMonitor(Protocol):
    schedule_name: str
    output_uri: str

    def metric_quality(self, metric: str) -> cloudwatch.Metric: ...


def _quality_metric(namespace: str, metric: str, endpoint_name: str, schedule_name: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=namespace,
        metric_name=metric,
        dimensions_map={names.DIMENSION_ENDPOINT: endpoint_name, names.DIMENSION_SCHEDULE: schedule_name},
        statistic="Average",
        period=QUALITY_PERIOD,
    )


class PipelineQualityMonitor(Construct):
    """The monitoring pipeline and its hourly EventBridge schedule.

    ``definition`` comes from ``pipeline_code.monitoring`` with placeholders;
    ``replacements`` maps them to tokens (bucket, role, key, baseline URI).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        pipeline_name: str,
        schedule_name: str,
        schedule_expression: str,
        definition: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
        replacements: Mapping[str, str],
        role: iam.IRole,
        endpoint_name: str,
        output_uri: str,
    ) -> None:
        super().__init__(scope, id)
        self.endpoint_name = endpoint_name
        self.schedule_name = schedule_name
        self.output_uri = output_uri
        self.pipeline = SageMakerPipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_name,
            definition=definition,
            role=role,
            replacements=replacements,
            description=f"Hourly model-quality monitor of endpoint {endpoint_name} (processing_scripts/monitor.py)",
        )
        stack = Stack.of(self)
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            description=f"EventBridge Scheduler: start the {pipeline_name} pipeline, nothing else",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
        )
        # A managed policy rather than an inline one (NIST IAMNoInlinePolicy).
        self.scheduler_policy = iam.ManagedPolicy(
            self,
            "SchedulerPolicy",
            roles=[self.scheduler_role],
            statements=[
                iam.PolicyStatement(
                    sid="StartMonitoringPipeline",
                    actions=["sagemaker:StartPipelineExecution"],
                    resources=[self.pipeline.pipeline_arn],
                )
            ],
        )
        self.schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            name=schedule_name,
            description=f"Runs {pipeline_name} ({schedule_expression}, UTC)",
            schedule_expression=schedule_expression,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.pipeline.pipeline_arn,
                role_arn=self.scheduler_role.role_arn,
                sage_maker_pipeline_parameters=scheduler.CfnSchedule.SageMakerPipelineParametersProperty(
                    pipeline_parameter_list=[
                        scheduler.CfnSchedule.SageMakerPipelineParameterProperty(name="PublishCloudWatch", value="true"),
                    ]
                ),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(maximum_retry_attempts=3, maximum_event_age_in_seconds=3600),
            ),
        )
        self.schedule.node.add_dependency(self.pipeline)
        # The role's policy must exist before the first invocation.
        self.schedule.node.add_dependency(self.scheduler_policy)

    def metric_quality(self, metric: str) -> cloudwatch.Metric:
        """A quality metric as monitor.py publishes it (Model Monitor's names)."""
        return _quality_metric(names.METRICS_NAMESPACE, metric, self.endpoint_name, self.schedule_name)

    def metric_data_quality(self, metric: str, statistic: str = "Maximum") -> cloudwatch.Metric:
        """A metric of monitor.py's data-quality half (``feature_baseline_drift_<feature>``,
        ``baseline_drift_violations``, ``estimated_<metric>``, ...): same namespace and dimensions
        as the quality metrics, the worst value of the hour by default."""
        return _quality_metric(names.METRICS_NAMESPACE, metric, self.endpoint_name, self.schedule_name).with_(
            statistic=statistic)

    def metric_monitoring_failed(self, period: Duration = QUALITY_PERIOD) -> cloudwatch.Metric:
        """monitor.py's ``monitoring_failed`` (1 for a Failed window, else 0; one data point per run), worst of the period."""
        return cloudwatch.Metric(
            namespace=names.METRICS_NAMESPACE,
            metric_name=names.METRIC_MONITORING_FAILED,
            dimensions_map={names.DIMENSION_ENDPOINT: self.endpoint_name, names.DIMENSION_SCHEDULE: self.schedule_name},
            statistic="Maximum",
            period=period,
        )

    def metric_failed_runs(self) -> cloudwatch.Metric:
        """Failed executions of the monitoring pipeline per hour."""
        return cloudwatch.Metric(
            namespace=names.PIPELINE_METRICS_NAMESPACE,
            metric_name=names.METRIC_EXECUTION_FAILED,
            dimensions_map={names.DIMENSION_PIPELINE: self.pipeline.pipeline_name},
            statistic="Sum",
            period=QUALITY_PERIOD,
        )



def _job_name(stem: str, literal: dict[str, Any], package: ServedModelPackage) -> str:
    """``{stem}-{hash of the synth-time settings}-v{served package version}``: job definitions are
    immutable, so a change of either gets a new name and never clashes with the old one."""
    digest = hashlib.sha256(json.dumps(literal, sort_keys=True).encode()).hexdigest()[:8]
    return Fn.join("", [f"{stem}-{digest}-v", package.model_package_version])


def _schedule(scope: Construct, job_definition: CfnResource, job_name: str, monitoring_type: str,
              endpoint: CaptureEndpoint, schedule_name: str, schedule_expression: str) -> sagemaker.CfnMonitoringSchedule:
    """The hourly Model Monitor schedule of ``job_definition`` (created after it and the endpoint)."""
    job_definition.node.add_dependency(endpoint.endpoint)
    schedule = sagemaker.CfnMonitoringSchedule(
        scope,
        "Schedule",
        monitoring_schedule_name=schedule_name,
        endpoint_name=endpoint.endpoint_name,
        monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
            monitoring_job_definition_name=job_name,
            monitoring_type=monitoring_type,
            schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(schedule_expression=schedule_expression),
        ),
    )
    schedule.add_dependency(job_definition)
    return schedule


class NativeQualityMonitor(Construct):
    """Model Monitor's model-quality job definition and hourly schedule."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        schedule_name: str,
        schedule_expression: str,
        endpoint: CaptureEndpoint,
        package: ServedModelPackage,
        role: iam.IRole,
        key: kms.IKey,
        image_uri: str,
        problem_type: str,
        instance_type: str,
        ground_truth_uri: str,
        output_uri: str,
    ) -> None:
        super().__init__(scope, id)
        self.endpoint_name = endpoint.endpoint_name
        self.schedule_name = schedule_name
        self.output_uri = output_uri
        endpoint_input: dict[str, Any] = {
            "endpoint_name": endpoint.endpoint_name,
            "local_path": "/opt/ml/processing/input/endpoint",
            # The endpoint answers "label,probability" (docs/CONTRACTS.md §1).
            "inference_attribute": "0",
        }
        if problem_type == "BinaryClassification":
            endpoint_input.update(probability_attribute="1", probability_threshold_attribute=0.5)
        literal = {
            "image": image_uri, "problem": problem_type, "instance": instance_type,
            "input": endpoint_input, "schedule": schedule_name,
        }
        job_name = _job_name(f"{prefix}-mq", literal, package)
        self.job_definition = sagemaker.CfnModelQualityJobDefinition(
            self,
            "JobDefinition",
            job_definition_name=job_name,
            endpoint_name=endpoint.endpoint_name,
            role_arn=role.role_arn,
            model_quality_app_specification=sagemaker.CfnModelQualityJobDefinition.ModelQualityAppSpecificationProperty(
                image_uri=image_uri, problem_type=problem_type,
            ),
            model_quality_baseline_config=sagemaker.CfnModelQualityJobDefinition.ModelQualityBaselineConfigProperty(
                constraints_resource=sagemaker.CfnModelQualityJobDefinition.ConstraintsResourceProperty(
                    s3_uri=package.baseline_constraints_uri
                ),
            ),
            model_quality_job_input=sagemaker.CfnModelQualityJobDefinition.ModelQualityJobInputProperty(
                endpoint_input=sagemaker.CfnModelQualityJobDefinition.EndpointInputProperty(**endpoint_input),
                ground_truth_s3_input=sagemaker.CfnModelQualityJobDefinition.MonitoringGroundTruthS3InputProperty(s3_uri=ground_truth_uri),
            ),
            model_quality_job_output_config=sagemaker.CfnModelQualityJobDefinition.MonitoringOutputConfigProperty(
                kms_key_id=key.key_arn,
                monitoring_outputs=[
                    sagemaker.CfnModelQualityJobDefinition.MonitoringOutputProperty(
                        s3_output=sagemaker.CfnModelQualityJobDefinition.S3OutputProperty(
                            local_path="/opt/ml/processing/output", s3_uri=output_uri, s3_upload_mode="EndOfJob",
                        )
                    )
                ],
            ),
            job_resources=sagemaker.CfnModelQualityJobDefinition.MonitoringResourcesProperty(
                cluster_config=sagemaker.CfnModelQualityJobDefinition.ClusterConfigProperty(
                    instance_count=1, instance_type=instance_type, volume_size_in_gb=20, volume_kms_key_id=key.key_arn,
                )
            ),
            network_config=sagemaker.CfnModelQualityJobDefinition.NetworkConfigProperty(
                enable_inter_container_traffic_encryption=True, enable_network_isolation=False,
            ),
            stopping_condition=sagemaker.CfnModelQualityJobDefinition.StoppingConditionProperty(max_runtime_in_seconds=1800),
        )
        self.schedule = _schedule(self, self.job_definition, job_name, "ModelQuality", endpoint, schedule_name,
                                  schedule_expression)

    def metric_quality(self, metric: str) -> cloudwatch.Metric:
        return _quality_metric(names.MODEL_MONITOR_NAMESPACE, metric, self.endpoint_name, self.schedule_name)


class NativeDataQualityMonitor(Construct):
    """Model Monitor's data-quality job definition and its own hourly schedule, fed by the served
    package's data-quality baseline (``DriftCheckBaselines.ModelDataQuality``: the same statistics
    and constraints the pipeline backend checks against).

    Model Monitor parses the capture itself; the baseline step's ``preprocessor.py``
    (``pair_features.py`` with the model's training vocabulary) is its record preprocessor, so
    each captured request becomes the same watched features the baseline has (AWS docs,
    "Preprocessing and Postprocessing": ``preprocess_handler(inference_record)``).
    It publishes ``feature_baseline_drift_<feature>`` to ``aws/sagemaker/Endpoints/data-metrics``
    (dimensions Endpoint, MonitoringSchedule) when ``publish_cloudwatch_metrics`` is Enabled.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        schedule_name: str,
        schedule_expression: str,
        endpoint: CaptureEndpoint,
        package: ServedModelPackage,
        role: iam.IRole,
        key: kms.IKey,
        image_uri: str,
        instance_type: str,
        output_uri: str,
    ) -> None:
        super().__init__(scope, id)
        self.endpoint_name = endpoint.endpoint_name
        self.schedule_name = schedule_name
        self.output_uri = output_uri
        cfn = sagemaker.CfnDataQualityJobDefinition
        literal = {"image": image_uri, "instance": instance_type, "schedule": schedule_name}
        job_name = _job_name(f"{prefix}-dq", literal, package)
        folder = package.data_quality_baseline_uri  # ends with "/"
        self.job_definition = cfn(
            self,
            "JobDefinition",
            job_definition_name=job_name,
            endpoint_name=endpoint.endpoint_name,
            role_arn=role.role_arn,
            data_quality_app_specification=cfn.DataQualityAppSpecificationProperty(
                image_uri=image_uri,
                record_preprocessor_source_uri=Fn.join("", [folder, names.PREPROCESSOR_FILE]),
                environment={"publish_cloudwatch_metrics": "Enabled"},
            ),
            data_quality_baseline_config=cfn.DataQualityBaselineConfigProperty(
                constraints_resource=cfn.ConstraintsResourceProperty(s3_uri=Fn.join("", [folder, names.CONSTRAINTS_FILE])),
                statistics_resource=cfn.StatisticsResourceProperty(s3_uri=Fn.join("", [folder, names.STATISTICS_FILE])),
            ),
            data_quality_job_input=cfn.DataQualityJobInputProperty(
                endpoint_input=cfn.EndpointInputProperty(
                    endpoint_name=endpoint.endpoint_name, local_path="/opt/ml/processing/input/endpoint",
                    s3_input_mode="File", s3_data_distribution_type="FullyReplicated",
                ),
            ),
            data_quality_job_output_config=cfn.MonitoringOutputConfigProperty(
                kms_key_id=key.key_arn,
                monitoring_outputs=[cfn.MonitoringOutputProperty(s3_output=cfn.S3OutputProperty(
                    local_path="/opt/ml/processing/output", s3_uri=output_uri, s3_upload_mode="EndOfJob"))],
            ),
            job_resources=cfn.MonitoringResourcesProperty(cluster_config=cfn.ClusterConfigProperty(
                instance_count=1, instance_type=instance_type, volume_size_in_gb=20, volume_kms_key_id=key.key_arn)),
            network_config=cfn.NetworkConfigProperty(
                enable_inter_container_traffic_encryption=True, enable_network_isolation=True),
            stopping_condition=cfn.StoppingConditionProperty(max_runtime_in_seconds=1800),
        )
        self.schedule = _schedule(self, self.job_definition, job_name, "DataQuality", endpoint, schedule_name,
                                  schedule_expression)

    def metric_data_quality(self, metric: str, statistic: str = "Maximum") -> cloudwatch.Metric:
        """Model Monitor's data-quality metric (``feature_baseline_drift_<feature>``, ...)."""
        return _quality_metric(names.MODEL_MONITOR_DATA_NAMESPACE, metric, self.endpoint_name, self.schedule_name).with_(
            statistic=statistic)


#: CloudWatch evaluates at most 10 metrics in one metric-math alarm (a hard limit: "Alarms based on
#: metric math expressions can reference a maximum of 10 metrics", CloudWatch alarm limits).
MATH_ALARM_METRICS = 10


class NativeDriftAlarms(Construct):
    """Drift alarms of the native data-quality schedule: the largest ``feature_baseline_drift_<feature>``
    of the hour above the baseline's ``comparison_threshold`` (``DRIFT_THRESHOLD``), one alarm per
    group of at most :data:`MATH_ALARM_METRICS` features (``{prefix}-data-quality-drift-1``, ...)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        monitor: NativeDataQualityMonitor,
        features: Sequence[str],
        threshold: float,
        topic: sns.ITopic,
        prefix: str,
    ) -> None:
        super().__init__(scope, id)
        self.alarms: list[cloudwatch.Alarm] = []
        groups = [features[i:i + MATH_ALARM_METRICS] for i in range(0, len(features), MATH_ALARM_METRICS)]
        for n, group in enumerate(groups, start=1):
            using = {f"f{i}": monitor.metric_data_quality(names.feature_drift_metric(f)) for i, f in enumerate(group)}
            alarm = cloudwatch.Alarm(
                self,
                f"Drift{n}",
                alarm_name=f"{prefix}-data-quality-drift-{n}",
                alarm_description=f"Baseline drift above {threshold:g} (Model Monitor) in one of: {', '.join(group)}",
                metric=cloudwatch.MathExpression(expression=f"MAX([{','.join(using)}])", using_metrics=using,
                                                 period=QUALITY_PERIOD, label="largest feature_baseline_drift"),
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
            alarm.add_ok_action(cw_actions.SnsAction(topic))
            self.alarms.append(alarm)


class QualityAlarms(Construct):
    """One alarm per quality metric against the served package's constraints.

    Threshold and comparison operator come from the package's
    ``constraints.json`` at deploy time (``ServedModelPackage``), so the alarm
    fires exactly when the monitor would report a violation.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        monitor: QualityMonitor,
        package: ServedModelPackage,
        metrics: Sequence[Metric],
        topic: sns.ITopic,
        prefix: str,
    ) -> None:
        super().__init__(scope, id)
        self.alarms: dict[str, cloudwatch.CfnAlarm] = {}
        for row in metrics:
            metric = row.name
            # The worst value of the hour, not the average: a rerun of a window (or a
            # backfill) in the same hour must not dilute a violating run into an OK one.
            statistic = row.alarm_statistic
            quality = monitor.metric_quality(metric)
            alarm = cloudwatch.CfnAlarm(
                self,
                metric,
                alarm_name=f"{prefix}-quality-{metric}",
                alarm_description=f"{metric} of the monitored endpoint violates the baseline constraint",
                namespace=quality.namespace,
                metric_name=metric,
                dimensions=[cloudwatch.CfnAlarm.DimensionProperty(name=k, value=v) for k, v in quality.dimensions.items()],
                statistic=statistic,
                period=int(QUALITY_PERIOD.to_seconds()),
                evaluation_periods=1,
                threshold=package.threshold(metric),
                comparison_operator=package.comparison(metric),
                # No quality metrics in an hour (a Failed window publishes none, a run that
                # never happened publishes nothing) is not a quality problem: those have their
                # own alarms ({prefix}-monitor-failed, {prefix}-monitor-no-result).
                treat_missing_data="notBreaching",
                alarm_actions=[topic.topic_arn],
                ok_actions=[topic.topic_arn],
            )
            self.alarms[metric] = alarm


class DataQualityAlarms(Construct):
    """The label-free alarms of the pipeline backend (monitor.py's data-quality half).

    - ``{prefix}-data-quality-drift``: ``baseline_drift_violations`` of the hour
      (Maximum) >= 1, i.e. some watched feature's distance to the served
      package's data-quality baseline exceeded its constraint's
      ``comparison_threshold`` (the monitor decides with the package's own
      constraints, so the alarm fires exactly when constraint_violations.json
      has a baseline_drift_check);
    - ``{prefix}-estimated-{metric}`` per estimated metric: the CBPE estimate's
      worst value of the hour against the same threshold and operator as the
      realized metric's alarm (the served package's model-quality constraint).

    No data in an hour (no run, no capture, no data-quality baseline) is not
    breaching: the monitor's own alarms watch for missing runs.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        monitor: PipelineQualityMonitor,
        package: ServedModelPackage,
        estimated: Sequence[Metric],
        topic: sns.ITopic,
        prefix: str,
    ) -> None:
        super().__init__(scope, id)
        self.alarms: dict[str, cloudwatch.CfnAlarm] = {}

        def alarm(cid: str, name: str, description: str, metric: cloudwatch.Metric, threshold: Any, comparison: str) -> None:
            self.alarms[cid] = cloudwatch.CfnAlarm(
                self,
                cid,
                alarm_name=name,
                alarm_description=description,
                namespace=metric.namespace,
                metric_name=metric.metric_name,
                dimensions=[cloudwatch.CfnAlarm.DimensionProperty(name=k, value=v) for k, v in metric.dimensions.items()],
                statistic=metric.statistic,
                period=int(QUALITY_PERIOD.to_seconds()),
                evaluation_periods=1,
                threshold=threshold,
                comparison_operator=comparison,
                treat_missing_data="notBreaching",
                alarm_actions=[topic.topic_arn],
                ok_actions=[topic.topic_arn],
            )

        alarm("Drift", f"{prefix}-data-quality-drift",
              "A watched input or prediction feature drifted from the served package's data-quality baseline "
              "(no labels needed)",
              monitor.metric_data_quality(names.METRIC_DRIFT_VIOLATIONS, "Maximum"), 1,
              "GreaterThanOrEqualToThreshold")
        for row in estimated:
            alarm(f"Estimated{row.name}", f"{prefix}-estimated-{row.name}",
                  f"{row.name} estimated before labels (CBPE) violates the baseline constraint",
                  monitor.metric_data_quality(names.estimated_metric(row.name), row.alarm_statistic),
                  package.threshold(row.name), package.comparison(row.name))


class MonitoringDashboard(Construct):
    """Invocations, latency, errors, quality metrics over time, data quality, alarm states."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        dashboard_name: str,
        endpoint: CaptureEndpoint,
        monitor: QualityMonitor,
        metrics: Sequence[str],
        alarm_arns: Sequence[str],
        data_quality: Callable[[str, str], cloudwatch.Metric] | None = None,
        features: Sequence[str] = (),
        estimated: Sequence[str] = (),
        drift_threshold: float | None = None,
        violation_counts: bool = True,
    ) -> None:
        """``data_quality(metric, statistic)``: the monitor's data-quality metric (None: no
        data-quality widgets); ``features``: the watched features; ``estimated``: the metrics
        estimated before labels, each charted with its interval beside the realized one;
        ``violation_counts``: chart the monitor's violation counts (Model Monitor publishes none)."""
        super().__init__(scope, id)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=dashboard_name, default_interval=Duration.days(7))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Invocations", left=[endpoint.metric_invocations()], width=8),
            cloudwatch.GraphWidget(
                title="Model latency (microseconds)",
                left=[endpoint.metric_model_latency("p50"), endpoint.metric_model_latency("p90"), endpoint.metric_model_latency("p99")],
                width=8,
            ),
            cloudwatch.GraphWidget(title="Errors", left=[endpoint.metric_4xx_errors(), endpoint.metric_5xx_errors()], width=8),
        )
        self.dashboard.add_widgets(
            *[cloudwatch.GraphWidget(title=f"Quality: {metric}", left=[monitor.metric_quality(metric)], width=8) for metric in metrics]
        )
        if data_quality is not None and features:
            annotations = ([cloudwatch.HorizontalAnnotation(value=drift_threshold, label="DRIFT_THRESHOLD")]
                           if drift_threshold is not None else [])
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title="Data quality: baseline drift per feature (no labels needed)",
                    left=[data_quality(names.feature_drift_metric(f), "Maximum").with_(label=f) for f in features],
                    left_annotations=annotations, width=16 if violation_counts else 24, height=8,
                ),
                *([cloudwatch.GraphWidget(
                    title="Data-quality violations",
                    left=[data_quality(names.METRIC_DATA_QUALITY_VIOLATIONS, "Maximum"),
                          data_quality(names.METRIC_DRIFT_VIOLATIONS, "Maximum")],
                    width=8, height=8,
                )] if violation_counts else []),
            )
        if data_quality is not None and estimated:
            self.dashboard.add_widgets(*[
                cloudwatch.GraphWidget(
                    title=f"Estimated (before labels) vs realized: {metric}",
                    left=[data_quality(names.estimated_metric(metric), "Average").with_(label="estimated"),
                          data_quality(f"{names.estimated_metric(metric)}_lower", "Average").with_(label="95% lower"),
                          data_quality(f"{names.estimated_metric(metric)}_upper", "Average").with_(label="95% upper"),
                          monitor.metric_quality(metric).with_(label="realized")],
                    width=24 // len(estimated),
                )
                for metric in estimated
            ])
        if alarm_arns:
            self.dashboard.add_widgets(
                cloudwatch.AlarmStatusWidget(
                    title="Alarms",
                    alarms=[cloudwatch.Alarm.from_alarm_arn(self, f"Alarm{i}", arn) for i, arn in enumerate(alarm_arns)],
                    width=24,
                )
            )
        region = Stack.of(self).region
        self.dashboard_url = f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards:name={dashboard_name}"


def add_no_result_alarm(
    scope: Construct, monitor: PipelineQualityMonitor, topic: sns.ITopic, prefix: str, interval: Duration
) -> cloudwatch.Alarm:
    """Alarm when the last monitoring run gave no usable result, or no run published one at all.

    ``monitoring_failed`` is 1 for a Failed window (no capture in it, no labels,
    coverage too low) and 0 otherwise; every run that gets to its end publishes
    it. ALARM when the period's worst value is 1, and - missing data treated as
    breaching - when no run published it: the schedule stopped or cannot start
    the pipeline, the job crashed before publishing, or it published to another
    region. CloudWatch fills missing periods only when its evaluation range has
    no real data point, so a stopped monitor alarms once that range (a few
    periods; its size is not documented) has passed without a run.

    ``interval``: the schedule's longest gap between runs; the period is that,
    in whole hours (at least one), so every period holds a run.
    """
    hours = max(1, -(-int(interval.to_seconds()) // 3600))
    alarm = cloudwatch.Alarm(
        scope,
        "MonitorNoResult",
        alarm_name=f"{prefix}-monitor-no-result",
        alarm_description=(
            "The last model-quality monitoring run failed (no capture in its window, no labels, label coverage too "
            "low: monitoring_failed = 1), or no run published a result at all (schedule stopped, pipeline not "
            "started, job crashed): missing data is breaching"
        ),
        metric=monitor.metric_monitoring_failed(Duration.hours(hours)),
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
    )
    alarm.add_alarm_action(cw_actions.SnsAction(topic))
    alarm.add_ok_action(cw_actions.SnsAction(topic))
    return alarm


def add_failure_alarm(scope: Construct, monitor: PipelineQualityMonitor, topic: sns.ITopic, prefix: str) -> cloudwatch.Alarm:
    """Alarm when a monitoring run fails (the pipeline backend): monitor.py exits non-zero on a
    Failed window, so SageMaker's ExecutionFailed counts Failed windows as well as crashes."""
    alarm = cloudwatch.Alarm(
        scope,
        "MonitorFailed",
        alarm_name=f"{prefix}-monitor-failed",
        alarm_description="The model-quality monitoring pipeline failed",
        metric=monitor.metric_failed_runs(),
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cw_actions.SnsAction(topic))
    return alarm
