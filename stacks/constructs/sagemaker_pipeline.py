"""An ``AWS::SageMaker::Pipeline`` from a definition built by ``pipeline_code``.

The definition arrives as a dict with literal placeholders
(``pipeline_code.placeholders``); this construct swaps them for CDK tokens
(bucket name, role ARN, key ARN, ...) and serializes the result with
``Stack.to_json_string``, so the template carries the definition as one
``Fn::Join`` of literal JSON and references: standard intrinsics only.

The definition may be given as a function: it is then called when the
template is synthesized (a ``Lazy`` value), after every construct exists, so
a definition built by a background process (``pipeline_code.build``) is
collected as late as possible.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jsii
from aws_cdk import IStableStringProducer, Lazy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pipeline_code import placeholders

from .sagemaker_arns import pipeline_arn


class SageMakerPipeline(Construct):
    """A SageMaker pipeline.

    Attributes:
        pipeline_name: the literal pipeline name.
        pipeline_arn: its ARN, the name lower-cased as SageMaker writes it
            (``AWS::SageMaker::Pipeline`` has no ARN attribute; see sagemaker_arns.py).
        definition: the definition dict as built (placeholders intact), for tests.
    """

    _definition: Mapping[str, Any] | None

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        pipeline_name: str,
        definition: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
        role: iam.IRole,
        replacements: Mapping[str, str],
        description: str,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self._build = definition if callable(definition) else (lambda: definition)
        self._definition = None
        self._replacements = dict(replacements)
        self.pipeline_name = pipeline_name
        body = Lazy.string(_Producer(lambda: stack.to_json_string(self._substituted())))
        self.resource = sagemaker.CfnPipeline(
            self,
            "Resource",
            pipeline_name=pipeline_name,
            pipeline_display_name=pipeline_name,
            pipeline_description=description,
            role_arn=role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": body},
        )
        self.pipeline_arn = pipeline_arn(self, pipeline_name)

    @property
    def definition(self) -> Mapping[str, Any]:
        if self._definition is None:
            self._definition = self._build()
        return self._definition

    def _substituted(self) -> dict[str, Any]:
        definition = self.definition
        missing = [p for p in placeholders.ALL if p in _strings(definition) and p not in self._replacements]
        if missing:
            raise ValueError(f"pipeline {self.pipeline_name}: no value for placeholders {missing}")
        return placeholders.substitute(dict(definition), self._replacements)

    def grant_start_execution(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow ``grantee`` to start executions (e.g. EventBridge Scheduler's role)."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:StartPipelineExecution"], resource_arns=[self.pipeline_arn]
        )


@jsii.implements(IStableStringProducer)
class _Producer:
    """A string computed once, when the template is synthesized."""

    def __init__(self, produce: Callable[[], str]) -> None:
        self._produce = produce

    def produce(self) -> str:
        return self._produce()


def _strings(value: Any) -> str:
    """All strings inside a JSON-like value, joined (for placeholder checks)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return "\n".join(_strings(k) + "\n" + _strings(v) for k, v in value.items())
    if isinstance(value, list):
        return "\n".join(_strings(v) for v in value)
    return ""
