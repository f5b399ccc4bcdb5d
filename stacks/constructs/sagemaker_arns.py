"""SageMaker resource ARNs exactly as SageMaker writes them (and IAM authorizes them).

IAM compares a policy's ``Resource`` with the request's ARN case-sensitively,
and SageMaker does not treat every name alike:

- **Lower-cased**: pipelines (and their executions), endpoints, endpoint
  configs, models, processing and training jobs. Observed:
  ``aws sagemaker list-pipelines`` answers ``PipelineName: AbalonePipeline``
  with ``PipelineArn: ...:pipeline/abalonepipeline`` and executions
  ``...:pipeline/abalonepipeline/execution/...`` (alfredcs/SM_Pipeline_Demo,
  README.md, real CLI output); endpoint ARNs are lower case whatever the
  name's case (prometheus-community/yet-another-cloudwatch-exporter PR #1178:
  "Resource ARN is only in lower case"); boto3 issue #4606 shows the same for
  tuning jobs.
- **Case kept**: model packages in a group, ``model-package/{GroupName}/{N}``.
  IAM denied ``sagemaker:DescribeModelPackage on resource
  ...:model-package/modelPackageGroupTurbine/1`` to a policy that named the
  lower-cased group (aws-samples/ml-edge-getting-started issue #18, fixed by
  PR #19 removing ``.lower()``, 2023). The SageMaker Developer Guide's 2020
  pipeline tutorial output still shows a lower-cased
  ``model-package/abalonemodelpackagegroupname/1``; the 2023 denial is the
  newer observation of the live service, and the model registry's resource
  policies are documented with the group name as given
  (``model-package/<model-package-group-name>/*``, "Set up model package
  group discoverability" in the Developer Guide).

Prefer a resource's own ARN attribute where CloudFormation has one
(``AWS::SageMaker::ModelPackageGroup`` ``ModelPackageGroupArn``,
``AWS::SageMaker::Endpoint`` ``EndpointArn``). ``AWS::SageMaker::Pipeline``
has none (its ``Ref`` is the name: the resource schema's primary identifier is
``PipelineName``, aws-cloudformation-resource-providers-sagemaker), and
package versions are created by pipeline runs, so those ARNs are built here.

The local twin (``stsmon/localcloud/registry.py``, ``pipelines.py``, the
endpoint handlers) writes ARNs by the same rules;
``tests/stacks/test_authorization.py`` holds both to them.
"""

from __future__ import annotations

from constructs import Construct
from aws_cdk import Stack

#: SageMaker resource types whose names keep their case in ARNs.
CASE_KEPT = frozenset({"model-package", "model-package-group"})


def arn_name(resource_type: str, name: str) -> str:
    """The name as it appears in the ARN of a ``resource_type``."""
    return name if resource_type in CASE_KEPT else name.lower()


def sagemaker_arn(scope: Construct, resource_type: str, name: str) -> str:
    """``arn:{partition}:sagemaker:{region}:{account}:{resource_type}/{name}``, the name cased as SageMaker does."""
    stack = Stack.of(scope)
    return f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:{resource_type}/{arn_name(resource_type, name)}"


def pipeline_arn(scope: Construct, pipeline_name: str) -> str:
    return sagemaker_arn(scope, "pipeline", pipeline_name)


def pipeline_executions_arn(scope: Construct, pipeline_name: str) -> str:
    """Every execution of the pipeline: ``.../pipeline/{name}/execution/*``."""
    return pipeline_arn(scope, pipeline_name) + "/execution/*"


def model_packages_arn(scope: Construct, group_name: str) -> str:
    """Every version in the group: ``.../model-package/{GroupName}/*`` (case kept)."""
    return sagemaker_arn(scope, "model-package", f"{group_name}/*")


def endpoint_arn(scope: Construct, endpoint_name: str) -> str:
    return sagemaker_arn(scope, "endpoint", endpoint_name)
