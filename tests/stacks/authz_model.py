"""The synthesized app as AWS would see it, for the offline authorization check.

:class:`Cloud` resolves the four templates' intrinsics with the values AWS
gives after deployment (role and key ARNs, topic ARNs, generated names, the
served package's attributes as the Lambda returns them) using the local
runtime's own resolver (``stsmon.localcloud.intrinsics``), and finds each
principal's identity policies and each resource's policy.

:func:`calls` lists every API call each principal makes, each as the
:class:`~iam_eval.Request` IAM evaluates (the exact resource ARN, the context
keys) together with *neighbour* requests that must be denied. The list is
derived, not written by hand, wherever the code says it:

- the custom-resource Lambdas: the boto3 calls in ``stacks/lambdas/*.py``,
  found by AST (a new call fails the check until it has an ARN recipe below);
- the execution role in each pipeline step: the synthesized pipeline
  definitions, step by step (processing and training jobs: inputs, outputs,
  volume and output keys, image, logs; RegisterModel: CreateModelPackage;
  Condition: the property file it reads), plus the boto3 calls of the step's
  script (``processing_scripts``, by AST; the CloudWatch namespace comes from
  the script's own argument parser run on the step's arguments);
- the role behind the endpoint: its model package (image, model data), data
  capture destination and key, logs;
- the Scheduler role: each schedule's target and role;
- CloudWatch -> SNS: every alarm action on a topic; EventBridge -> SNS: every
  rule target that is a topic; SNS -> KMS for encrypted topics; CloudWatch
  Logs -> KMS for every encrypted log group.

SageMaker's name case in ARNs is the service's, not the app's
(:data:`SAGEMAKER_CASE_KEPT`); see ``stacks/constructs/sagemaker_arns.py``
for the evidence.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
from botocore import xform_name

from iam_eval import Principal, Request, as_list, role, service
from stsmon.localcloud import LocalEnvironment
from stsmon.localcloud.expressions import parse_path, walk_path
from stsmon.localcloud.intrinsics import ResourceValues, Scope, resolve

REPO = Path(__file__).resolve().parents[2]
LAMBDAS = REPO / "stacks" / "lambdas"
SCRIPTS = REPO / "processing_scripts"

#: SageMaker resource types whose names keep their case in ARNs; every other
#: SageMaker name is lower-cased (observed behaviour, cited in sagemaker_arns.py).
SAGEMAKER_CASE_KEPT = {"model-package", "model-package-group"}
EXECUTION_ID = "a1b2c3d4e5f6"
#: boto3 operations whose IAM action is not "{service}:{Operation}" (Service Authorization Reference).
IAM_ACTION_FOR = {"s3:ListObjectsV2": "s3:ListBucket", "s3:HeadObject": "s3:GetObject"}
OTHER_ACCOUNT = "999999999999"


# -- values AWS gives ----------------------------------------------------------------------

def _generated(stack: str, lid: str) -> str:
    """A CloudFormation-style generated physical name: {stack}-{logicalId}-{SUFFIX}."""
    return f"{stack}-{lid}"[:50] + "-" + hashlib.sha256(f"{stack}/{lid}".encode()).hexdigest()[:12].upper()


class _Lazy(Mapping):
    def __init__(self, keys, get) -> None:
        self._keys, self._get = list(keys), get

    def __getitem__(self, key):
        if key not in self._keys:
            raise KeyError(key)
        return self._get(key)

    def __contains__(self, key) -> bool:
        return key in self._keys

    def __iter__(self):
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class Cloud:
    """The deployed app: resolved templates, principals, policies."""

    def __init__(self, templates: Mapping[str, dict], *, account: str, region: str) -> None:
        self.templates = dict(templates)
        self.account, self.region = account, region
        self.env = LocalEnvironment(account=account, region=region)
        self._values: dict[tuple[str, str], ResourceValues] = {}

    # resolution ------------------------------------------------------------------------
    def arn(self, service_: str, resource: str, region: str | None = None) -> str:
        reg = self.region if region is None else region
        return f"arn:aws:{service_}:{reg}:{self.account}:{resource}"

    def sagemaker_arn(self, resource_type: str, name: str) -> str:
        return self.arn("sagemaker", f"{resource_type}/{name if resource_type in SAGEMAKER_CASE_KEPT else name.lower()}")

    @functools.cached_property
    def exports(self) -> dict[str, str]:
        names = {}
        for stack, template in self.templates.items():
            for output in template.get("Outputs", {}).values():
                if "Export" in output:
                    names[output["Export"]["Name"]] = (stack, output["Value"])
        return _Lazy(names, lambda n: self.resolve(names[n][0], names[n][1]))

    def resolve(self, stack: str, value: Any) -> Any:
        resources = self.templates[stack]["Resources"]
        scope = Scope(env=self.env, stack_name=stack,
                      resources=_Lazy(resources, lambda lid: self.values(stack, lid)), exports=self.exports)
        return resolve(value, scope, stack)

    def resources_all(self) -> Iterator[tuple[str, str, dict]]:
        for stack, template in self.templates.items():
            for lid, r in template["Resources"].items():
                yield stack, lid, r

    def resources(self, type_: str) -> Iterator[tuple[str, str, dict]]:
        for stack, template in self.templates.items():
            for lid, r in template["Resources"].items():
                if r["Type"] == type_:
                    yield stack, lid, r

    def props(self, stack: str, lid: str) -> dict:
        return self.resolve(stack, self.templates[stack]["Resources"][lid].get("Properties", {}))

    def values(self, stack: str, lid: str) -> ResourceValues:
        if (stack, lid) not in self._values:
            self._values[(stack, lid)] = self._physical(stack, lid)
        return self._values[(stack, lid)]

    def _physical(self, stack: str, lid: str) -> ResourceValues:
        r = self.templates[stack]["Resources"][lid]
        t, raw = r["Type"], r.get("Properties", {})
        gen = _generated(stack, lid)

        def prop(name: str, default: str) -> str:
            return self.resolve(stack, raw[name]) if name in raw else default

        if t == "AWS::IAM::Role":
            name = prop("RoleName", gen)
            return ResourceValues(name, {"Arn": f"arn:aws:iam::{self.account}:role/{name}", "RoleId": "AROA" + gen[-12:]})
        if t == "AWS::IAM::ManagedPolicy":
            return ResourceValues(f"arn:aws:iam::{self.account}:policy/{gen}")
        if t == "AWS::KMS::Key":
            kid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{stack}/{lid}"))
            return ResourceValues(kid, {"Arn": self.arn("kms", f"key/{kid}"), "KeyId": kid})
        if t == "AWS::S3::Bucket":
            name = prop("BucketName", gen.lower())
            return ResourceValues(name, {"Arn": f"arn:aws:s3:::{name}"})
        if t == "AWS::SNS::Topic":
            name = prop("TopicName", gen)
            arn = self.arn("sns", name)
            return ResourceValues(arn, {"TopicArn": arn, "TopicName": name})
        if t == "AWS::SageMaker::ModelPackageGroup":
            arn = self.sagemaker_arn("model-package-group", prop("ModelPackageGroupName", gen))
            return ResourceValues(arn, {"ModelPackageGroupArn": arn})
        if t == "AWS::SageMaker::Pipeline":
            return ResourceValues(prop("PipelineName", gen))
        for kind, rtype in (("Model", "model"), ("EndpointConfig", "endpoint-config"), ("Endpoint", "endpoint")):
            if t == f"AWS::SageMaker::{kind}":
                name = prop(f"{kind}Name", gen)
                arn = self.sagemaker_arn(rtype, name)
                return ResourceValues(arn, {f"{kind}Name": name, f"{kind}Arn": arn})
        if t == "AWS::Lambda::Function":
            name = prop("FunctionName", gen)
            return ResourceValues(name, {"Arn": self.arn("lambda", f"function:{name}")})
        if t == "AWS::Logs::LogGroup":
            name = prop("LogGroupName", gen)
            return ResourceValues(name, {"Arn": self.arn("logs", f"log-group:{name}:*")})
        if t == "AWS::CloudWatch::Alarm":
            name = prop("AlarmName", gen)
            return ResourceValues(name, {"Arn": self.arn("cloudwatch", f"alarm:{name}")})
        if t == "AWS::Events::Rule":
            name = prop("Name", gen)
            bus = raw.get("EventBusName", "default")
            path = f"rule/{name}" if bus == "default" else f"rule/{bus}/{name}"
            return ResourceValues(name, {"Arn": self.arn("events", path)})
        if t == "AWS::Scheduler::Schedule":
            name = prop("Name", gen)
            return ResourceValues(name, {"Arn": self.arn("scheduler", f"schedule/{raw.get('GroupName', 'default')}/{name}")})
        if t == "Custom::StsApprovedModelPackage":
            return ResourceValues(f"{prop('ModelPackageGroupName', '')}-served-package", self.served_package_attributes(stack, lid))
        return ResourceValues(gen)

    # the model registry as a training run leaves it ------------------------------------
    @functools.cached_property
    def training_run(self) -> PipelineRun:
        # The pipeline with a RegisterModel step (looked up in the raw template: the other
        # pipeline's definition refers to the served package, which comes from this one).
        (stack, lid, _), = [x for x in self.resources("AWS::SageMaker::Pipeline") if '\\"Type\\":\\"RegisterModel\\"' in json.dumps(x[2])]
        return PipelineRun(self, stack, self.definition(stack, lid))

    @functools.cached_property
    def registered(self) -> tuple[str, dict]:
        """The package the training pipeline registers (version 1) and its DescribeModelPackage answer."""
        run = self.training_run
        step = next(s for s in _all_steps(run.definition) if s["Type"] == "RegisterModel")
        args = run.value(step["Arguments"])
        arn = self.sagemaker_arn("model-package", f"{args['ModelPackageGroupName']}/1")
        return arn, {**args, "ModelPackageArn": arn, "ModelPackageVersion": 1, "ModelPackageName": args["ModelPackageGroupName"]}

    def served_package_attributes_for(self, props: dict) -> dict:
        """What ``approved_package.handle`` returns for the registered package, from its own
        ``package_attributes`` (thresholds aside)."""
        sys.path.insert(0, str(LAMBDAS))
        try:
            import approved_package
        finally:
            sys.path.remove(str(LAMBDAS))
        return approved_package.package_attributes(self.registered[1])

    def served_package_attributes(self, stack: str, lid: str) -> dict:
        data = self.served_package_attributes_for({})
        for metric in self.resolve(stack, self.templates[stack]["Resources"][lid]["Properties"]).get("MetricNames", []):
            data[f"{metric}Threshold"], data[f"{metric}Comparison"] = "0.5", "LessThanThreshold"
        return data

    def definition(self, stack: str, lid: str) -> dict:
        body = self.props(stack, lid)["PipelineDefinition"]["PipelineDefinitionBody"]
        return json.loads(body)

    # principals and policies ----------------------------------------------------------
    def role_of(self, stack: str, arn: str) -> RoleInfo:
        for s, lid, r in self.resources("AWS::IAM::Role"):
            if self.values(s, lid).attributes["Arn"] == arn:
                return self.role_info(s, lid)
        raise AssertionError(f"no role with ARN {arn} in the templates (from {stack})")

    def role_info(self, stack: str, lid: str) -> RoleInfo:
        props = self.props(stack, lid)
        arn = self.values(stack, lid).attributes["Arn"]
        identity = [{"Statement": p["PolicyDocument"]["Statement"]} for p in props.get("Policies", [])]
        for s, plid, p in list(self.resources("AWS::IAM::ManagedPolicy")) + list(self.resources("AWS::IAM::Policy")):
            if s == stack and {"Ref": lid} in p["Properties"].get("Roles", []):
                identity.append(self.props(s, plid)["PolicyDocument"])
        return RoleInfo(stack, lid, role(arn), identity, props["AssumeRolePolicyDocument"], list(props.get("ManagedPolicyArns", [])))

    def bucket_policy(self, bucket: str) -> dict | None:
        for s, lid, _ in self.resources("AWS::S3::BucketPolicy"):
            props = self.props(s, lid)
            if props["Bucket"] == bucket:
                return props["PolicyDocument"]
        return None

    def bucket_key(self, bucket: str) -> str | None:
        for s, lid, _ in self.resources("AWS::S3::Bucket"):
            if self.values(s, lid).physical_id == bucket:
                rule = self.props(s, lid)["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
                return rule.get("KMSMasterKeyID")
        return None

    def topic_policy(self, topic_arn: str) -> dict | None:
        for s, lid, _ in self.resources("AWS::SNS::TopicPolicy"):
            props = self.props(s, lid)
            if topic_arn in props["Topics"]:
                return props["PolicyDocument"]
        return None

    def topic_key(self, topic_arn: str) -> str | None:
        for s, lid, _ in self.resources("AWS::SNS::Topic"):
            if self.values(s, lid).physical_id == topic_arn:
                return self.props(s, lid).get("KmsMasterKeyId")
        return None

    def key_policy(self, key_arn: str) -> dict:
        for s, lid, _ in self.resources("AWS::KMS::Key"):
            if self.values(s, lid).attributes["Arn"] == key_arn:
                return self.props(s, lid)["KeyPolicy"]
        raise AssertionError(f"no key {key_arn} in the templates")


@dataclass
class RoleInfo:
    stack: str
    lid: str
    principal: Principal
    identity: list[dict]
    trust: dict
    managed_policy_arns: list[str]


# -- pipeline expressions ------------------------------------------------------------------

def _all_steps(definition: dict) -> Iterator[dict]:
    def walk(steps):
        for step in steps:
            yield step
            if step["Type"] == "Condition":
                yield from walk(step["Arguments"].get("IfSteps", []))
                yield from walk(step["Arguments"].get("ElseSteps", []))
    yield from walk(definition["Steps"])


class PipelineRun:
    """One execution's values: parameters at their defaults, a fixed execution id,
    step properties as SageMaker reports them."""

    def __init__(self, cloud: Cloud, stack: str, definition: dict) -> None:
        self.cloud, self.stack, self.definition = cloud, stack, definition
        self.steps = {s["Name"]: s for s in _all_steps(definition)}
        self.parameters = {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters", [])}

    def job_name(self, step: str) -> str:
        """SageMaker Pipelines names jobs pipelines-{execution id}-{step}-{random}."""
        return f"pipelines-{EXECUTION_ID}-{step}-Xy12Ab34Cd"

    def value(self, v: Any) -> Any:
        if isinstance(v, dict):
            if len(v) == 1:
                ((k, arg),) = v.items()
                if k == "Get":
                    return self.get(arg)
                if k == "Std:Join":
                    return arg.get("On", "").join(str(self.value(x)) for x in arg["Values"])
                if k == "Std:JsonGet":
                    return "0.9"
                if k.startswith("Std:"):
                    raise AssertionError(f"pipeline function {k} has no value here")
            return {k: self.value(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.value(x) for x in v]
        return v

    def get(self, path: str) -> Any:
        head, _, rest = path.partition(".")
        if head == "Parameters":
            return self.value(self.parameters[rest])
        if head == "Execution":
            return {"PipelineExecutionId": EXECUTION_ID, "StartDateTime": "2033-05-17T10:00:00Z"}[rest]
        if head == "Steps":
            step, _, prop = rest.partition(".")
            args = self.steps[step]["Arguments"]
            if prop == "ModelArtifacts.S3ModelArtifacts":
                out = self.value(args["OutputDataConfig"]["S3OutputPath"]).rstrip("/")
                return f"{out}/{self.job_name(step)}/output/model.tar.gz"
            return self.value(walk_path(args, parse_path(prop), f"Steps.{step}"))
        raise AssertionError(f"cannot evaluate Get {path}")


# -- calls ----------------------------------------------------------------------------------

@dataclass
class Call:
    """One API call: who makes it (for messages), the request, the policies that decide it,
    and neighbour requests that must be denied."""

    who: str
    request: Request
    identity: list[dict] = field(default_factory=list)
    resource_policy: dict | None = None
    key_policy: dict | None = None
    neighbours: list[Request] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.who}: {self.request}"


def _s3(uri: str) -> tuple[str, str]:
    assert uri.startswith("s3://"), uri
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


class Calls:
    """Builds :class:`Call` lists; S3 calls bring their KMS calls along."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.out: list[Call] = []

    def add(self, who: str, principal: Principal, identity: list[dict], action: str, resource: str, context: dict | None = None,
            neighbours: list[tuple[str, dict | None]] = (), resource_policy: dict | None = None) -> None:
        ctx = dict(context or {})
        key_policy = self.cloud.key_policy(resource) if action.startswith("kms:") else None
        req = Request(principal, action, resource, ctx)
        self.out.append(Call(who, req, identity, resource_policy, key_policy,
                             [Request(principal, action, r, ctx if c is None else c) for r, c in neighbours]))

    # S3 with its bucket key -------------------------------------------------------------
    def s3_object(self, who: str, info: RoleInfo, action: str, uri: str) -> None:
        bucket, key = _s3(uri)
        c = self.cloud
        top, _, rest = key.partition("/")
        neighbours = [(f"arn:aws:s3:::{bucket}/other-app/{rest}", None), (f"arn:aws:s3:::{bucket}-other/{key}", None)]
        self.add(who, info.principal, info.identity, action, f"arn:aws:s3:::{bucket}/{key}", {"aws:SecureTransport": "true"},
                 neighbours, resource_policy=c.bucket_policy(bucket))
        key_arn = c.bucket_key(bucket)
        if key_arn and key_arn.startswith("arn:aws:kms"):
            kms_action = "kms:Decrypt" if action == "s3:GetObject" else "kms:GenerateDataKey"
            ctx = {"kms:ViaService": f"s3.{c.region}.amazonaws.com", "kms:CallerAccount": c.account,
                   "kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{bucket}"}
            other_key = c.arn("kms", f"key/{uuid.uuid5(uuid.NAMESPACE_URL, 'other')}")
            self.add(f"{who} (S3 for {action})", info.principal, info.identity, kms_action, key_arn, ctx)
            self.out[-1].neighbours.append(Request(info.principal, kms_action, other_key, ctx))

    def s3_read_prefix(self, who: str, info: RoleInfo, uri: str) -> None:
        """SageMaker's S3Prefix download: list the prefix, get each object."""
        bucket, key = _s3(uri)
        prefix = key if key.endswith("/") or not key else key + "/"
        _, _, rest = prefix.partition("/")
        self.add(who, info.principal, info.identity, "s3:ListBucket", f"arn:aws:s3:::{bucket}",
                 {"s3:prefix": prefix, "aws:SecureTransport": "true"},
                 [(f"arn:aws:s3:::{bucket}", {"s3:prefix": f"other-app/{rest}", "aws:SecureTransport": "true"}),
                  (f"arn:aws:s3:::{bucket}-other", None)],
                 resource_policy=self.cloud.bucket_policy(bucket))
        self.s3_object(who, info, "s3:GetObject", f"s3://{bucket}/{prefix}part-00000")

    def s3_read_uri(self, who: str, info: RoleInfo, uri: str) -> None:
        if uri.endswith(".tar.gz") or uri.endswith(".json") or uri.endswith(".csv"):
            self.s3_object(who, info, "s3:GetObject", uri)
        else:
            self.s3_read_prefix(who, info, uri)

    def ecr_pull(self, who: str, info: RoleInfo, image: str) -> None:
        registry, _, path = image.partition("/")
        account, _, _, region, *_ = registry.split(".")
        repo = path.split(":")[0].split("@")[0]
        repo_arn = f"arn:aws:ecr:{region}:{account}:repository/{repo}"
        self.add(who, info.principal, info.identity, "ecr:GetAuthorizationToken", "*")
        for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"):
            self.add(who, info.principal, info.identity, action, repo_arn, {},
                     [(f"arn:aws:ecr:{region}:{account}:repository/other-image", None)])

    def logs(self, who: str, info: RoleInfo, group: str, stream: str, *, create_group: bool) -> None:
        c = self.cloud
        group_arn = c.arn("logs", f"log-group:{group}")
        stream_arn = f"{group_arn}:log-stream:{stream}"
        other = c.arn("logs", "log-group:/other-app/logs:log-stream:x")
        if create_group:
            self.add(who, info.principal, info.identity, "logs:CreateLogGroup", group_arn, {}, [(c.arn("logs", "log-group:/other-app/logs"), None)])
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            self.add(who, info.principal, info.identity, action, stream_arn, {}, [(other, None)])

    def assume(self, who: str, info: RoleInfo, service_name: str, context: dict) -> None:
        other = {**context, "aws:SourceAccount": OTHER_ACCOUNT} if "aws:SourceAccount" in context else None
        self.out.append(Call(f"{who} (trust)", Request(service(service_name), "sts:AssumeRole", info.principal.arn, context),
                             resource_policy=info.trust,
                             neighbours=[Request(service("ec2.amazonaws.com"), "sts:AssumeRole", info.principal.arn, context)]
                             + ([Request(service(service_name), "sts:AssumeRole", info.principal.arn, other)] if other else [])))


# -- boto3 calls by AST ---------------------------------------------------------------------

@dataclass(frozen=True)
class Boto3Call:
    service: str
    operation: str
    file: str
    line: int

    @property
    def action(self) -> str:
        action = f"{self.service}:{self.operation}"
        return IAM_ACTION_FOR.get(action, action)


@functools.lru_cache(maxsize=None)
def _operations(service_name: str) -> dict[str, str]:
    model = botocore.session.get_session().get_service_model(service_name)
    return {xform_name(op): op for op in model.operation_names}


def boto3_calls(path: Path) -> list[Boto3Call]:
    """``x.method(...)`` where ``x`` was bound to ``boto3.client("service")`` in the module
    (also as ``x = x or boto3.client(...)``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    clients: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            for sub in ast.walk(node.value):
                if (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "client"
                        and isinstance(sub.func.value, ast.Name) and sub.func.value.id == "boto3"
                        and sub.args and isinstance(sub.args[0], ast.Constant)):
                    clients[node.targets[0].id] = sub.args[0].value
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            svc = clients.get(node.func.value.id)
            if svc and node.func.attr != "client":
                ops = _operations(svc)
                if node.func.attr in ops:
                    found.append(Boto3Call(svc, ops[node.func.attr], path.name, node.lineno))
    return sorted(set(found), key=lambda c: (c.file, c.line))


def as_iam_list(value: Any) -> list:
    return as_list(value) if value is not None else []
