"""A SageMaker endpoint that captures its traffic, with its alarms.

The SageMaker alpha module has no data-capture construct; this one fills the
gap in the shape of an L2: typed props, public attributes, ``metric_*``.

Model and endpoint config have generated names, so a new model package
(a new ``ModelPackageName``) replaces both under new names while the
endpoint - the one name operators use - is updated in place to the new
config: no name clash, no downtime (SageMaker's blue/green update).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from stscontracts import names

CSV_TYPES = ["text/csv"]
JSON_TYPES = ["application/json", "application/jsonlines"]


class CaptureEndpoint(Construct):
    """Model (from a model package) + endpoint config with data capture + endpoint.

    Args:
        model_package_arn: the package to serve (a deploy-time token is fine).
        capture_uri: ``s3://...`` prefix; SageMaker writes
            ``{capture_uri}/{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl``.
        sampling_percentage: share of requests captured (0-100).

    Attributes:
        endpoint_name, variant_name, model, endpoint_config, endpoint.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        model_package_arn: str,
        role: iam.IRole,
        key: kms.IKey,
        capture_uri: str,
        sampling_percentage: int,
        instance_type: str,
        instance_count: int,
    ) -> None:
        super().__init__(scope, id)
        self.endpoint_name = endpoint_name
        self.variant_name = names.VARIANT
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=role.role_arn,
            containers=[sagemaker.CfnModel.ContainerDefinitionProperty(model_package_name=model_package_arn)],
            # The package is self-contained (code in model.tar.gz) and its
            # container environment lets the scikit-learn image start with no
            # network (pipeline_code/serving_env.py; tests/serving/ runs the
            # image's serving stack in a network namespace to prove it).
            enable_network_isolation=True,
        )
        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            kms_key_id=key.key_arn,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=names.VARIANT,
                    model_name=self.model.attr_model_name,
                    initial_instance_count=instance_count,
                    instance_type=instance_type,
                    initial_variant_weight=1.0,
                )
            ],
            data_capture_config=sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=sampling_percentage,
                destination_s3_uri=capture_uri,
                kms_key_id=key.key_arn,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
                ],
                capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                    csv_content_types=CSV_TYPES, json_content_types=JSON_TYPES
                ),
            ),
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
        )

    # Metrics ---------------------------------------------------------------

    def metric(self, name: str, *, statistic: str = "Sum", period: Duration = Duration.minutes(5)) -> cloudwatch.Metric:
        """A metric of the ``AWS/SageMaker`` namespace for this endpoint's variant."""
        return cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name=name,
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": self.variant_name},
            statistic=statistic,
            period=period,
        )

    def metric_invocations(self) -> cloudwatch.Metric:
        return self.metric("Invocations")

    def metric_5xx_errors(self) -> cloudwatch.Metric:
        return self.metric("Invocation5XXErrors")

    def metric_4xx_errors(self) -> cloudwatch.Metric:
        return self.metric("Invocation4XXErrors")

    def metric_model_latency(self, statistic: str = "p90") -> cloudwatch.Metric:
        """Model latency in microseconds (SageMaker's unit)."""
        return self.metric("ModelLatency", statistic=statistic)

    # Alarms ----------------------------------------------------------------

    def add_alarms(self, *, topic: sns.ITopic, max_5xx: int, max_latency_ms: int, prefix: str) -> list[cloudwatch.Alarm]:
        """5xx errors (sum over 5 minutes >= ``max_5xx``) and p90 model latency
        (> ``max_latency_ms`` for three 5-minute periods); both notify ``topic``."""
        errors = cloudwatch.Alarm(
            self,
            "Errors5xx",
            alarm_name=f"{prefix}-endpoint-5xx",
            alarm_description=f"{self.endpoint_name} returned at least {max_5xx} 5xx responses in 5 minutes",
            metric=self.metric_5xx_errors(),
            threshold=max_5xx,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        latency = cloudwatch.Alarm(
            self,
            "Latency",
            alarm_name=f"{prefix}-endpoint-latency",
            alarm_description=f"{self.endpoint_name} p90 model latency above {max_latency_ms} ms for 15 minutes",
            metric=self.metric_model_latency(),
            threshold=max_latency_ms * 1000,  # ModelLatency is in microseconds
            evaluation_periods=3,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (errors, latency):
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
            alarm.add_ok_action(cw_actions.SnsAction(topic))
        return [errors, latency]
