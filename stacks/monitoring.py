"""``{p}-monitoring``: hourly model-quality monitoring, alarms and dashboard.

Backend ``pipeline`` (default): the monitoring pipeline from
``pipeline_code.monitoring`` started by EventBridge Scheduler. Backend
``model-monitor``: SageMaker Model Monitor's native schedule. Both read the
baseline of the package the endpoint serves, resolved at deploy time.
"""

from __future__ import annotations

from datetime import timedelta

from aws_cdk import Annotations, CfnOutput, Duration, Stack
from constructs import Construct

from pipeline_code import placeholders
from pipeline_code.images import model_monitor_image
from pipeline_code.build import DefinitionSource
from stscontracts import names
from stscontracts.config import Config
from stscontracts.schedule import longest_gap

from .common import log_retention, removal
from .constructs.custom_resources import PipelineCleanup, ServedModelPackage
from .constructs.quality_monitor import (
    DataQualityAlarms,
    MonitoringDashboard,
    NativeDataQualityMonitor,
    NativeDriftAlarms,
    NativeQualityMonitor,
    PipelineQualityMonitor,
    QualityAlarms,
    add_failure_alarm,
    add_no_result_alarm,
)
from .foundation import FoundationStack
from .serving import ServingStack
from .training import TrainingStack, replacements


class MonitoringStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, config: Config, foundation: FoundationStack,
        training: TrainingStack, serving: ServingStack, definitions: DefinitionSource, **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        cfg = config
        self.add_stack_dependency(serving)  # the endpoint (by name) and, through training, the step code
        # The package the endpoint serves now: its baseline and thresholds.
        self.package = ServedModelPackage(
            self,
            "MonitoredPackage",
            model_package_group_name=cfg.model_package_group_name,
            bucket=foundation.artifact_bucket(self),
            key=foundation.key,
            prefix=cfg.prefix,
            metric_names=cfg.monitored_metrics,
            log_retention=log_retention(cfg),
            removal=removal(cfg),
            pinned_arn=cfg.model_package_arn,
            refresh=cfg.model_package_refresh,
            endpoint_name=cfg.endpoint_name,
        )
        output_uri = foundation.uri(names.monitoring_prefix(cfg.prefix), cfg.monitoring_schedule_name) + "/"
        alarm_arns = []
        if cfg.monitor_backend == "pipeline":
            values = replacements(foundation)
            values[placeholders.BASELINE_URI] = self.package.baseline_uri
            values[placeholders.DATA_QUALITY_BASELINE_URI] = self.package.data_quality_baseline_uri
            values[placeholders.REGION] = self.region  # monitor.py makes its S3 and CloudWatch clients here
            monitor = PipelineQualityMonitor(
                self,
                "Monitor",
                pipeline_name=cfg.monitoring_pipeline_name,
                schedule_name=cfg.monitoring_schedule_name,
                schedule_expression=cfg.monitor_schedule,
                definition=lambda: definitions.get("monitoring"),
                replacements=values,
                role=foundation.execution_role,
                endpoint_name=cfg.endpoint_name,
                output_uri=output_uri,
            )
            alarm_arns.append(add_failure_alarm(self, monitor, foundation.alarm_topic, cfg.prefix).alarm_arn)
            interval = longest_gap(cfg.monitor_schedule)
            if interval is not None and interval <= timedelta(days=1):
                no_result = add_no_result_alarm(self, monitor, foundation.alarm_topic, cfg.prefix,
                                                Duration.seconds(interval.total_seconds()))
                alarm_arns.append(no_result.alarm_arn)
            else:
                Annotations.of(self).add_warning_v2(
                    "stsmon:NoMonitorHeartbeat",
                    f"MONITOR_SCHEDULE {cfg.monitor_schedule} runs less than daily (or once): no "
                    f"'{cfg.prefix}-monitor-no-result' alarm (a CloudWatch alarm period is at most one day)")
            if not cfg.is_prod:
                cleanup = PipelineCleanup(
                    self, "Cleanup", pipeline_names=[cfg.monitoring_pipeline_name],
                    key=foundation.key, log_retention=log_retention(cfg),
                )
                cleanup.node.add_dependency(monitor.pipeline)
            CfnOutput(self, "MonitoringPipelineName", value=cfg.monitoring_pipeline_name, description="Run it now with stsmon monitor --target aws")
        else:
            monitor = NativeQualityMonitor(
                self,
                "Monitor",
                prefix=cfg.prefix,
                schedule_name=cfg.monitoring_schedule_name,
                schedule_expression=cfg.monitor_schedule,
                endpoint=serving.endpoint,
                package=self.package,
                role=foundation.execution_role,
                key=foundation.key,
                image_uri=model_monitor_image(cfg.region),
                problem_type=cfg.problem_type,
                instance_type=cfg.monitoring_instance_type,
                ground_truth_uri=foundation.ground_truth_uri,
                output_uri=output_uri,
            )
        alarms = QualityAlarms(
            self, "QualityAlarms", monitor=monitor, package=self.package,
            metrics=[cfg.metric(m) for m in cfg.monitored_metrics],
            topic=foundation.alarm_topic, prefix=cfg.prefix,
        )
        alarm_arns += [alarm.attr_arn for alarm in alarms.alarms.values()]
        data_quality_widgets: dict = {}
        if cfg.monitor_backend == "pipeline":
            # Label-free (monitor.py's data-quality half): drift, and the quality estimated before labels.
            estimated = [m for m in cfg.monitored_metrics if m in names.ESTIMATED_METRICS
                         and cfg.problem_type == names.BINARY_CLASSIFICATION]
            data_alarms = DataQualityAlarms(
                self, "DataQualityAlarms", monitor=monitor, package=self.package,
                estimated=[cfg.metric(m) for m in estimated], topic=foundation.alarm_topic, prefix=cfg.prefix,
            )
            alarm_arns += [alarm.attr_arn for alarm in data_alarms.alarms.values()]
            data_quality_widgets = dict(data_quality=monitor.metric_data_quality, estimated=estimated)
        else:
            # Model Monitor's own data-quality schedule, on the same baseline as the pipeline backend's check.
            data_monitor = NativeDataQualityMonitor(
                self,
                "DataQualityMonitor",
                prefix=cfg.prefix,
                schedule_name=cfg.data_quality_schedule_name,
                schedule_expression=cfg.monitor_schedule,
                endpoint=serving.endpoint,
                package=self.package,
                role=foundation.execution_role,
                key=foundation.key,
                image_uri=model_monitor_image(cfg.region),
                instance_type=cfg.monitoring_instance_type,
                output_uri=foundation.uri(names.monitoring_prefix(cfg.prefix), cfg.data_quality_schedule_name) + "/",
            )
            drift = NativeDriftAlarms(
                self, "DataQualityAlarms", monitor=data_monitor, features=names.data_quality_features(cfg.problem_type),
                threshold=cfg.drift_threshold, topic=foundation.alarm_topic, prefix=cfg.prefix,
            )
            alarm_arns += [alarm.alarm_arn for alarm in drift.alarms]
            data_quality_widgets = dict(data_quality=data_monitor.metric_data_quality, violation_counts=False)
            CfnOutput(self, "DataQualityScheduleName", value=cfg.data_quality_schedule_name,
                      description="Model Monitor's data-quality schedule")
        dashboard = MonitoringDashboard(
            self, "Dashboard", dashboard_name=f"{cfg.prefix}-model-quality", endpoint=serving.endpoint,
            monitor=monitor, metrics=cfg.monitored_metrics, alarm_arns=alarm_arns,
            features=names.data_quality_features(cfg.problem_type), drift_threshold=cfg.drift_threshold,
            **data_quality_widgets,
        )
        CfnOutput(self, "MonitoringScheduleName", value=cfg.monitoring_schedule_name, description="Schedule of the monitor")
        CfnOutput(self, "MonitoringOutputUri", value=output_uri, description="Reports: {uri}{execution id}/")
        CfnOutput(self, "DashboardUrl", value=dashboard.dashboard_url, description="CloudWatch dashboard")
        CfnOutput(self, "BaselineUri", value=self.package.baseline_uri, description="Baseline of the monitored package")
