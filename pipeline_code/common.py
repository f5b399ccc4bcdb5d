"""Pieces shared by the training and monitoring pipeline builders.

Every builder works inside :func:`pipeline_code.sdk.offline_sdk` and with the
literal placeholders of :mod:`pipeline_code.placeholders`; the stacks swap
those for CDK tokens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from . import placeholders

#: Where SageMaker mounts processing inputs and where our scripts' defaults point.
PROCESSING_ROOT = "/opt/ml/processing"
CODE_DIR = f"{PROCESSING_ROOT}/input/code"


@dataclass(frozen=True)
class Literals:
    """Literal values a definition needs; the rest are placeholders.

    ``code_prefix`` is the S3 key prefix of the step-script asset
    (``{p}/code/{content-hash}/``); it is computed from the scripts' bytes
    at synth, so it is a literal, and a script change changes it.
    """

    prefix: str
    code_prefix: str
    region: str
    sklearn_image_version: str

    @property
    def bucket_uri(self) -> str:
        return f"s3://{placeholders.BUCKET}"

    @property
    def code_uri(self) -> str:
        return f"{self.bucket_uri}/{self.code_prefix.rstrip('/')}/"

    def sklearn_image(self) -> str:
        """The SageMaker scikit-learn image URI for the region (no AWS call)."""
        from sagemaker.core import image_uris

        return image_uris.retrieve(
            framework="sklearn",
            region=self.region,
            version=self.sklearn_image_version,
            py_version="py3",
            instance_type="ml.m5.large",
        )


def processing_input(name: str, source: Any, destination: str) -> Any:
    """A File-mode S3Prefix processing input."""
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=source,
            local_path=destination,
            s3_data_type="S3Prefix",
            s3_input_mode="File",
            s3_data_distribution_type="FullyReplicated",
        ),
    )


def processing_output(name: str, source: str, destination: Any) -> Any:
    """An end-of-job processing output."""
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(s3_uri=destination, local_path=source, s3_upload_mode="EndOfJob"),
    )


def script_processor(
    session: Any,
    *,
    literals: Literals,
    script: str,
    step: str,
    instance_type: Any,
    network_isolation: bool,
) -> Any:
    """A Processor that runs ``python3 {CODE_DIR}/{script}`` on the sklearn image.

    The script reaches the container as the ``code`` processing input (the
    step-script asset), so the job needs no network when isolated.
    """
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.processing import Processor

    return Processor(
        role=placeholders.ROLE_ARN,
        image_uri=literals.sklearn_image(),
        instance_count=1,
        instance_type=instance_type,
        entrypoint=["python3", f"{CODE_DIR}/{script}"],
        volume_size_in_gb=30,
        volume_kms_key=placeholders.KMS_KEY_ARN,
        output_kms_key=placeholders.KMS_KEY_ARN,
        max_runtime_in_seconds=3600,
        base_job_name=f"{literals.prefix}-{step.lower()}",
        sagemaker_session=session,
        network_config=NetworkConfig(
            enable_network_isolation=network_isolation,
            encrypt_inter_container_traffic=True,
        ),
    )


def code_input(literals: Literals) -> Any:
    return processing_input("code", literals.code_uri, CODE_DIR)


def definition_dict(pipeline: Any) -> dict[str, Any]:
    """The pipeline's definition as a dict (the SDK serializes to a string)."""
    return json.loads(pipeline.definition())
