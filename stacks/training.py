"""``{p}-training``: the step scripts and the training pipeline.

Preprocess -> Train -> Evaluate -> CheckQuality -> [Baseline -> RegisterModel]
else QualityGateFailed, generated at synth by ``pipeline_code.training``.
In the dev profile a cleanup resource stops running executions and deletes
the model packages the pipeline registered when the stack is destroyed.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_logs as logs
from constructs import Construct

from pipeline_code import placeholders
from pipeline_code.build import DefinitionSource
from stscontracts import names
from stscontracts.config import Config

from .common import log_retention, removal
from .constructs.custom_resources import PipelineCleanup
from .constructs.sagemaker_pipeline import SageMakerPipeline
from .constructs.step_code import StepCode
from .foundation import FoundationStack


class TrainingStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, config: Config, foundation: FoundationStack, scripts_dir: Path,
        definitions: DefinitionSource, **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        cfg = config
        self.add_stack_dependency(foundation)
        bucket = foundation.artifact_bucket(self)
        code_logs = logs.LogGroup(self, "CodeDeploymentLogs", retention=log_retention(cfg), encryption_key=foundation.key, removal_policy=removal(cfg))
        self.code = StepCode(
            self,
            "StepCode",
            scripts_dir=scripts_dir,
            bucket=bucket,
            key=foundation.key,
            prefix=cfg.prefix,
            archive_name=names.SOURCEDIR_ARCHIVE,
            log_group=code_logs,
        )
        if definitions.code_prefix != self.code.key_prefix:  # the scripts changed while synthesizing
            raise RuntimeError(f"step scripts changed during synth ({definitions.code_prefix} != {self.code.key_prefix}); run it again")
        self.pipeline = SageMakerPipeline(
            self,
            "Pipeline",
            pipeline_name=cfg.pipeline_name,
            definition=lambda: definitions.get("training"),
            role=foundation.execution_role,
            replacements=replacements(foundation),
            description="Trains, evaluates, gates, baselines and registers the paraphrase model",
        )
        # Executions must not start before their code is in the bucket.
        self.pipeline.node.add_dependency(self.code.deployment)
        if not cfg.is_prod:
            cleanup = PipelineCleanup(
                self,
                "Cleanup",
                pipeline_names=[cfg.pipeline_name],
                model_package_group_name=cfg.model_package_group_name,
                key=foundation.key,
                log_retention=log_retention(cfg),
            )
            # Created after, so deleted before, the pipeline.
            cleanup.node.add_dependency(self.pipeline)
        CfnOutput(self, "TrainingPipelineName", value=cfg.pipeline_name, description="Start it with stsmon train --target aws")
        CfnOutput(self, "StepCodeUri", value=foundation.uri(self.code.key_prefix.rstrip("/")) + "/", description="The step scripts used by the pipelines")
        CfnOutput(self, "TrainingInputUri", value=foundation.uri(cfg.prefix, names.KEY_INPUT) + "/", description="Default InputDataUri of the pipeline")


def replacements(foundation: FoundationStack) -> dict[str, str]:
    """Placeholder -> token for the values every pipeline definition needs."""
    return {
        placeholders.BUCKET: foundation.bucket_name,
        placeholders.ROLE_ARN: foundation.execution_role.role_arn,
        placeholders.KMS_KEY_ARN: foundation.key.key_arn,
    }
