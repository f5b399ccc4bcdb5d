"""The local cloud: deploys a synthesized CDK cloud assembly onto this machine.

- :mod:`.assembly` reads ``cdk.out`` (manifest, templates, asset manifests);
- :mod:`.intrinsics` resolves CloudFormation intrinsic functions;
- :mod:`.plan` works out what deploying a stack would do (pure: template against record);
- :mod:`.deployer` deploys stacks (plan and check everything, then apply, roll back on failure);
- :mod:`.handlers` holds the resource-type handlers and their registry;
- :mod:`.executor` runs SageMaker pipeline definitions, with :mod:`.expressions`
  (pipeline expressions, pure), :mod:`.container` (the job-container contract)
  and :mod:`.executions` (the execution records);
- :mod:`.registry` is the model registry (SQLite);
- :mod:`.api` is what the commands see of it: the boto3 methods of SageMaker, S3,
  CloudWatch, Scheduler and CloudFormation over this state, and the local
  target's runtime (deploy, cleanup, this machine's checks).

The local environment: account ``000000000000``, the configured region, every
S3 bucket a folder under the state directory (``stsmon.state.StateDir``).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The account id of the local environment (the one moto and LocalStack use too).
LOCAL_ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class LocalEnvironment:
    """What the pseudo parameters resolve to locally."""

    account: str = LOCAL_ACCOUNT
    region: str = DEFAULT_REGION
    partition: str = "aws"
    url_suffix: str = "amazonaws.com"

    def arn(self, service: str, resource: str, *, region: str | None = None, account: str | None = None) -> str:
        """``arn:{partition}:{service}:{region}:{account}:{resource}`` (pass ``region=""`` for global services)."""
        reg = self.region if region is None else region
        acct = self.account if account is None else account
        return f"arn:{self.partition}:{service}:{reg}:{acct}:{resource}"
