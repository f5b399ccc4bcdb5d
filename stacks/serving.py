"""``{p}-serving``: the endpoint with data capture, and its alarms.

The model comes from the model registry: the latest *Approved* package of the
group, resolved at deploy time by ``Custom::StsApprovedModelPackage``, or the
package pinned with ``-c MODEL_PACKAGE_ARN=...``. Synth never calls AWS.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_logs as logs
from constructs import Construct

from stscontracts import names
from stscontracts.config import Config

from .common import log_retention, removal
from .constructs.capture_endpoint import CaptureEndpoint
from .constructs.custom_resources import ServedModelPackage
from .foundation import FoundationStack
from .training import TrainingStack


class ServingStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: Config, foundation: FoundationStack, training: TrainingStack, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        cfg = config
        # Packages come from training runs; destroying serving first keeps
        # the served package alive until its endpoint is gone.
        self.add_stack_dependency(training)
        self.package = ServedModelPackage(
            self,
            "ServedPackage",
            model_package_group_name=cfg.model_package_group_name,
            bucket=foundation.artifact_bucket(self),
            key=foundation.key,
            prefix=cfg.prefix,
            metric_names=cfg.monitored_metrics,
            log_retention=log_retention(cfg),
            removal=removal(cfg),
            pinned_arn=cfg.model_package_arn,
            refresh=cfg.model_package_refresh,
        )
        self.capture_uri = foundation.uri(names.capture_prefix(cfg.prefix))
        self.endpoint = CaptureEndpoint(
            self,
            "Endpoint",
            endpoint_name=cfg.endpoint_name,
            model_package_arn=self.package.model_package_arn,
            role=foundation.execution_role,
            key=foundation.key,
            capture_uri=self.capture_uri,
            sampling_percentage=cfg.capture_sampling_percentage,
            instance_type=cfg.endpoint_instance_type,
            instance_count=cfg.endpoint_instance_count,
        )
        # SageMaker writes the endpoint's container logs to /aws/sagemaker/Endpoints/{name}
        # (AWS docs: "Log groups and streams that Amazon SageMaker AI sends to Amazon
        # CloudWatch Logs") and would create it with no retention and keep it after a
        # destroy. The group is the endpoint's own, so it is declared: retention, the
        # app's key (its policy lets logs.{region} use it for this account's groups),
        # deleted with the stack in dev. The shared /aws/sagemaker/ProcessingJobs and
        # TrainingJobs groups are not: other workloads in the account write there.
        self.endpoint_logs = logs.LogGroup(
            self,
            "EndpointLogs",
            log_group_name=f"/aws/sagemaker/Endpoints/{cfg.endpoint_name}",
            retention=log_retention(cfg),
            encryption_key=foundation.key,
            removal_policy=removal(cfg),
        )
        # Before the endpoint, or SageMaker creates the group first and ours clashes.
        self.endpoint.endpoint.node.add_dependency(self.endpoint_logs)
        self.endpoint.add_alarms(
            topic=foundation.alarm_topic,
            max_5xx=cfg.alarm_5xx_threshold,
            max_latency_ms=cfg.alarm_latency_ms,
            prefix=cfg.prefix,
        )
        CfnOutput(self, "EndpointName", value=cfg.endpoint_name, description="Invoke with sagemaker-runtime")
        CfnOutput(self, "DataCaptureUri", value=self.capture_uri, description="Capture files: {uri}/{endpoint}/AllTraffic/yyyy/mm/dd/hh/")
        CfnOutput(self, "ServedModelPackageArn", value=self.package.model_package_arn, description="The model package behind the endpoint")
