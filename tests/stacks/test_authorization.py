"""The offline authorization check: every call each principal makes, on the exact ARN
AWS authorizes, is allowed by the synthesized identity and resource policies, and a
neighbour resource is denied.

The calls are derived from the code and the templates (tests/stacks/authz_model.py);
the evaluator is tests/stacks/iam_eval.py (explicit deny wins; identity Allow or a
same-account resource-policy Allow; KMS needs the key policy; every condition
evaluated). SageMaker's name case in ARNs: stacks/constructs/sagemaker_arns.py.
"""

from __future__ import annotations

import sys

from pathlib import Path

import pytest

from authz_model import (
    EXECUTION_ID,
    LAMBDAS,
    OTHER_ACCOUNT,
    SCRIPTS,
    Call,
    Calls,
    Cloud,
    PipelineRun,
    boto3_calls,
)
from iam_eval import Request, evaluate, service, unsupported_condition_keys


@pytest.fixture(scope="module")
def cloud(dev) -> Cloud:
    return Cloud(dev.templates, account=dev.config.account, region=dev.config.region)


# -- the custom-resource Lambdas ---------------------------------------------------------------

def lambda_calls(cloud: Cloud) -> list[Call]:
    calls = Calls(cloud)
    for stack, lid, fn in cloud.resources("AWS::Lambda::Function"):
        module = fn["Properties"].get("Handler", "").split(".")[0]
        if not (LAMBDAS / f"{module}.py").is_file():
            continue  # CDK's own providers (BucketDeployment, auto-delete)
        info = cloud.role_of(stack, cloud.props(stack, lid)["Role"])
        assert not info.managed_policy_arns, f"{module}: AWS managed policies cannot be evaluated offline"
        users = [(s, l) for s, l, r in cloud.resources_all() if s == stack and r.get("Properties", {}).get("ServiceToken") == {"Fn::GetAtt": [lid, "Arn"]}]
        assert users, f"no custom resource uses {lid}"
        who = f"{stack} {module} Lambda"
        calls.assume(who, info, "lambda.amazonaws.com", {})
        group = cloud.props(stack, lid)["LoggingConfig"]["LogGroup"]
        calls.logs(who, info, group, "2033/05/17/[$LATEST]0123456789abcdef", create_group=False)
        for s, res in users:
            props = cloud.props(s, res)
            for call in boto3_calls(LAMBDAS / f"{module}.py"):
                lambda_call(calls, cloud, who, info, call.action, props, stack=s)
    return calls.out


def lambda_call(calls: Calls, cloud: Cloud, who: str, info, action: str, props: dict, *, stack: str = "") -> None:
    """The resource each Lambda call names, from the custom resource's properties."""
    add = lambda resource, neighbours=(), context=None: calls.add(who, info.principal, info.identity, action, resource, context, neighbours)  # noqa: E731
    group = props.get("ModelPackageGroupName", "")
    package = cloud.sagemaker_arn("model-package", f"{group}/1")
    package_neighbours = [(cloud.sagemaker_arn("model-package", "otherGroup/1"), None),
                          (package.replace(f"/{group}/", f"/{group.lower()}/"), None)]
    if action == "sagemaker:ListModelPackages":
        if group:  # both handlers list packages of a group only
            add("*")  # no resource-level permission (Service Authorization Reference)
    elif action in ("sagemaker:DescribeModelPackage", "sagemaker:DeleteModelPackage"):
        if group:
            add(package, package_neighbours)
    elif action == "sagemaker:DescribeEndpoint":
        if props.get("EndpointName"):
            add(cloud.sagemaker_arn("endpoint", props["EndpointName"]), [(cloud.sagemaker_arn("endpoint", "other-endpoint"), None)])
    elif action in ("sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"):
        if props.get("EndpointName"):
            kind = "EndpointConfig" if action.endswith("EndpointConfig") else "Model"
            (s, lid, _), = cloud.resources(f"AWS::SageMaker::{kind}")
            add(cloud.values(s, lid).attributes[f"{kind}Arn"])
    elif action == "s3:GetObject":
        calls.s3_object(who, info, action, cloud.served_package_attributes_for(props)["BaselineConstraintsUri"])
    elif action == "sagemaker:ListPipelineExecutions":
        for name in props["PipelineNames"]:
            add(cloud.sagemaker_arn("pipeline", name), [(cloud.sagemaker_arn("pipeline", "otherPipeline"), None)])
    elif action in ("sagemaker:StopPipelineExecution", "sagemaker:DescribePipelineExecution"):
        for name in props["PipelineNames"]:
            add(cloud.sagemaker_arn("pipeline", name) + f"/execution/{EXECUTION_ID}",
                [(cloud.sagemaker_arn("pipeline", "otherPipeline") + f"/execution/{EXECUTION_ID}", None)])
    elif action == "cloudformation:DescribeStacks":
        # The cleanup reads the status of its own stack (the event's StackId, AWS::StackId).
        own = cloud.resolve(stack, {"Ref": "AWS::StackId"})
        add(own, [(own.replace(f":stack/{stack}/", ":stack/other-stack/"), None)])
    else:
        raise AssertionError(f"{who} calls {action}: add its resource to lambda_call in {Path(__file__).name}")


# -- the execution role: pipeline steps and the endpoint -------------------------------------

def pipeline_calls(cloud: Cloud) -> list[Call]:
    calls = Calls(cloud)
    for stack, lid, _ in cloud.resources("AWS::SageMaker::Pipeline"):
        props = cloud.props(stack, lid)
        name = props["PipelineName"]
        info = cloud.role_of(stack, props["RoleArn"])
        run = PipelineRun(cloud, stack, cloud.definition(stack, lid))
        pipeline_arn = cloud.sagemaker_arn("pipeline", name)
        calls.assume(f"pipeline {name}", info, "sagemaker.amazonaws.com", {"aws:SourceAccount": cloud.account, "aws:SourceArn": pipeline_arn})
        for step in run.steps.values():
            who = f"pipeline {name}, step {step['Name']} ({step['Type']})"
            step_calls(calls, cloud, run, who, info, step)
    return calls.out


def step_calls(calls: Calls, cloud: Cloud, run: PipelineRun, who: str, info, step: dict) -> None:
    kind, args = step["Type"], run.value(step.get("Arguments", {}))
    job = run.job_name(step["Name"])
    if kind in ("Processing", "Training"):
        lower = kind.lower()
        job_arn = cloud.sagemaker_arn(f"{lower}-job", job)
        for action in (f"sagemaker:Create{kind}Job", f"sagemaker:Describe{kind}Job"):
            calls.add(who, info.principal, info.identity, action, job_arn, {},
                      [(cloud.sagemaker_arn(f"{lower}-job", "other-job"), None)])
        calls.add(who, info.principal, info.identity, "iam:PassRole", args["RoleArn"], {"iam:PassedToService": "sagemaker.amazonaws.com"},
                  [(args["RoleArn"], {"iam:PassedToService": "lambda.amazonaws.com"}),
                   (f"arn:aws:iam::{cloud.account}:role/other-role", None)])
        job_role = cloud.role_of(run.stack, args["RoleArn"])
        jwho = f"{who} job"
        if kind == "Processing":
            image = args["AppSpecification"]["ImageUri"]
            volume_key = args["ProcessingResources"]["ClusterConfig"].get("VolumeKmsKeyId")
            for i in args.get("ProcessingInputs", []):
                calls.s3_read_prefix(jwho, job_role, i["S3Input"]["S3Uri"])
            for o in args.get("ProcessingOutputConfig", {}).get("Outputs", []):
                calls.s3_object(jwho, job_role, "s3:PutObject", o["S3Output"]["S3Uri"].rstrip("/") + "/output.json")
            script_calls(calls, cloud, jwho, job_role, args)
            log_group = "/aws/sagemaker/ProcessingJobs"
        else:
            image = args["AlgorithmSpecification"]["TrainingImage"]
            volume_key = args["ResourceConfig"].get("VolumeKmsKeyId")
            for channel in args.get("InputDataConfig", []):
                calls.s3_read_prefix(jwho, job_role, channel["DataSource"]["S3DataSource"]["S3Uri"])
            submit = args.get("HyperParameters", {}).get("sagemaker_submit_directory", "").strip('"')
            if submit.startswith("s3://"):
                calls.s3_object(jwho, job_role, "s3:GetObject", submit)
            model = run.get(f"Steps.{step['Name']}.ModelArtifacts.S3ModelArtifacts")
            calls.s3_object(jwho, job_role, "s3:PutObject", model)
            log_group = "/aws/sagemaker/TrainingJobs"
        calls.ecr_pull(jwho, job_role, image)
        calls.logs(jwho, job_role, log_group, f"{job.lower()}/algo-1-1700000000", create_group=True)
        if volume_key:
            calls.add(jwho, job_role.principal, job_role.identity, "kms:CreateGrant", volume_key,
                      {"kms:GrantIsForAWSResource": "true", "kms:ViaService": f"sagemaker.{cloud.region}.amazonaws.com", "kms:CallerAccount": cloud.account},
                      [(volume_key, {"kms:GrantIsForAWSResource": "false", "kms:ViaService": f"sagemaker.{cloud.region}.amazonaws.com"})])
    elif kind == "RegisterModel":
        group = args["ModelPackageGroupName"]
        package = cloud.sagemaker_arn("model-package", f"{group}/1")
        calls.add(who, info.principal, info.identity, "sagemaker:CreateModelPackage", package,
                  {"sagemaker:ModelApprovalStatus": args.get("ModelApprovalStatus", "PendingManualApproval")},
                  [(cloud.sagemaker_arn("model-package", "otherGroup/1"), None),
                   (package.replace(f"/{group}/", f"/{group.lower()}/"), None)])
    elif kind == "Condition":
        for cond in step["Arguments"]["Conditions"]:
            for side in (cond.get("LeftValue"), cond.get("RightValue")):
                if isinstance(side, dict) and "Std:JsonGet" in side:
                    ref = side["Std:JsonGet"]["PropertyFile"]["Get"]
                    source, _, file_name = ref.removeprefix("Steps.").partition(".PropertyFiles.")
                    spec = next(f for f in run.steps[source]["PropertyFiles"] if f["PropertyFileName"] == file_name)
                    out = run.get(f"Steps.{source}.ProcessingOutputConfig.Outputs['{spec['OutputName']}'].S3Output.S3Uri")
                    calls.s3_object(who, info, "s3:GetObject", out.rstrip("/") + "/" + spec["FilePath"])
    elif kind != "Fail":
        raise AssertionError(f"{who}: step type {kind} has no calls listed in {Path(__file__).name}")


def script_calls(calls: Calls, cloud: Cloud, who: str, info, args: dict) -> None:
    """The boto3 calls of the step's own script, by AST."""
    entry = [a for a in args["AppSpecification"].get("ContainerEntrypoint", []) if a.endswith(".py")]
    for script in entry:
        path = SCRIPTS / Path(script).name
        for call in boto3_calls(path):
            if call.action == "cloudwatch:PutMetricData":
                settings = _script_settings(path, args["AppSpecification"].get("ContainerArguments", []))
                if not settings.publish_cloudwatch:
                    continue
                calls.add(who, info.principal, info.identity, call.action, "*", {"cloudwatch:namespace": settings.namespace},
                          [("*", {"cloudwatch:namespace": "OtherApp"})])
            elif call.action in ("s3:ListBucket", "s3:GetObject") and path.name == "monitor.py":
                if call.action == "s3:ListBucket":  # one recipe for the script's listings and downloads
                    monitor_window_reads(calls, who, info, path, args["AppSpecification"].get("ContainerArguments", []))
            else:
                raise AssertionError(f"{path.name}:{call.line} calls {call.action}: add it to script_calls")


def monitor_window_reads(calls: Calls, who: str, info, path: Path, argv: list[str]) -> None:
    """monitor.py's own reads, from its own functions: the endpoint's capture prefix (listed with a
    delimiter for the variants), then each variant's and each label hour's ``yyyy/mm/dd/hh/`` prefix
    (listed, and an object under it read)."""
    settings = _script_settings(path, argv)
    module = sys.modules[path.stem]
    from stscontracts.names import VARIANT

    reads = []
    if settings.capture_uri:
        bucket, base = module.parse_s3_uri(settings.capture_uri, "capture")
        reads.append((bucket, base))
        reads += [(bucket, f"{base}{VARIANT}/{module.hour_key(h)}")
                  for h in module.hours_between(settings.window_start, settings.window_end)]
    if settings.ground_truth_uri:
        bucket, base = module.parse_s3_uri(settings.ground_truth_uri, "ground truth")
        reads += [(bucket, base + module.hour_key(h)) for h in module.hours_between(settings.window_start, settings.label_end)]
    assert len(reads) >= 3, f"{who}: monitor.py reads nothing from S3 with these arguments"
    for bucket, prefix in reads:
        calls.s3_read_prefix(who, info, f"s3://{bucket}/{prefix}")


def _script_settings(path: Path, argv: list[str]):
    import importlib
    import sys

    sys.path.insert(0, str(path.parent))
    try:
        module = importlib.import_module(path.stem)
    finally:
        sys.path.remove(str(path.parent))
    from datetime import datetime, timezone

    return module.settings_from_args([str(a) for a in argv], datetime(2033, 5, 17, 10, tzinfo=timezone.utc))


def endpoint_calls(cloud: Cloud) -> list[Call]:
    calls = Calls(cloud)
    _, registered = cloud.registered
    container = registered["InferenceSpecification"]["Containers"][0]
    for stack, lid, _ in cloud.resources("AWS::SageMaker::Model"):
        props = cloud.props(stack, lid)
        info = cloud.role_of(stack, props["ExecutionRoleArn"])
        who = f"{stack} endpoint model"
        calls.assume(who, info, "sagemaker.amazonaws.com", {"aws:SourceAccount": cloud.account})
        calls.ecr_pull(who, info, container["Image"])
        calls.s3_object(who, info, "s3:GetObject", container["ModelDataUrl"])
        for cs, clid, _ in cloud.resources("AWS::SageMaker::EndpointConfig"):
            config = cloud.props(cs, clid)
            capture = config.get("DataCaptureConfig")
            for es, elid, _ in cloud.resources("AWS::SageMaker::Endpoint"):
                endpoint = cloud.props(es, elid)["EndpointName"]
                variant = config["ProductionVariants"][0]["VariantName"]
                calls.logs(who, info, f"/aws/sagemaker/Endpoints/{endpoint}", f"{variant}/i-0123456789abcdef0", create_group=True)
                if capture:
                    key = f"{capture['DestinationS3Uri'].rstrip('/')}/{endpoint}/{variant}/2033/05/17/10/capture-0001.jsonl"
                    calls.s3_object(f"{who} (data capture)", info, "s3:PutObject", key)
    return calls.out


# -- the Scheduler role ------------------------------------------------------------------------

def scheduler_calls(cloud: Cloud) -> list[Call]:
    calls = Calls(cloud)
    pipelines = {cloud.props(s, l)["PipelineName"]: s for s, l, _ in cloud.resources("AWS::SageMaker::Pipeline")}
    for stack, lid, _ in cloud.resources("AWS::Scheduler::Schedule"):
        target = cloud.props(stack, lid)["Target"]
        info = cloud.role_of(stack, target["RoleArn"])
        who = f"schedule {cloud.props(stack, lid)['Name']}"
        # The target must be a real pipeline's ARN as SageMaker writes it.
        real = {cloud.sagemaker_arn("pipeline", n): n for n in pipelines}
        assert target["Arn"] in real, f"{who}: target {target['Arn']} is not the ARN of any pipeline ({sorted(real)})"
        others = [a for a in real if a != target["Arn"]] + [cloud.sagemaker_arn("pipeline", "otherPipeline")]
        calls.assume(who, info, "scheduler.amazonaws.com",
                     {"aws:SourceAccount": cloud.account, "aws:SourceArn": cloud.values(stack, lid).attributes["Arn"]})
        calls.add(who, info.principal, info.identity, "sagemaker:StartPipelineExecution", target["Arn"], {},
                  [(a, None) for a in others])
    return calls.out


# -- services: CloudWatch -> SNS (-> KMS), CloudWatch Logs -> KMS ---------------------------

def alarm_calls(cloud: Cloud) -> list[Call]:
    calls = Calls(cloud)
    cw = service("cloudwatch.amazonaws.com")
    for stack, lid, _ in cloud.resources("AWS::CloudWatch::Alarm"):
        props = cloud.props(stack, lid)
        alarm = cloud.values(stack, lid).attributes["Arn"]
        topics = {a for k in ("AlarmActions", "OKActions", "InsufficientDataActions") for a in props.get(k, []) if ":sns:" in a}
        for topic in sorted(topics):
            who = f"alarm {props['AlarmName']} -> {topic.rsplit(':', 1)[-1]}"
            ctx = {"aws:SourceAccount": cloud.account, "aws:SourceArn": alarm, "aws:SecureTransport": "true"}
            other_app = {**ctx, "aws:SourceArn": cloud.arn("cloudwatch", "alarm:other-app-alarm")}
            other_account = {**ctx, "aws:SourceAccount": OTHER_ACCOUNT, "aws:SourceArn": alarm.replace(cloud.account, OTHER_ACCOUNT)}
            calls.out.append(Call(who, Request(cw, "sns:Publish", topic, ctx), resource_policy=cloud.topic_policy(topic),
                                  neighbours=[Request(cw, "sns:Publish", topic, other_app), Request(cw, "sns:Publish", topic, other_account)]))
            key = cloud.topic_key(topic)
            if key:
                kctx = {"aws:SourceAccount": cloud.account, "aws:SourceArn": alarm, "kms:ViaService": f"sns.{cloud.region}.amazonaws.com"}
                for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                    calls.out.append(Call(f"{who} (SNS encrypts with the topic key)", Request(cw, action, key, kctx),
                                          key_policy=cloud.key_policy(key),
                                          neighbours=[Request(cw, action, key, {**kctx, "aws:SourceArn": other_app["aws:SourceArn"]}),
                                                      Request(cw, action, key, {**kctx, "aws:SourceAccount": OTHER_ACCOUNT})]))
    return calls.out


def rule_calls(cloud: Cloud) -> list[Call]:
    """EventBridge delivering a rule's events to an SNS topic, and SNS encrypting them with the topic's key.

    To SNS, EventBridge's Publish carries ``aws:SourceArn`` (the rule) and ``aws:SourceAccount``
    (EventBridge User Guide, "Amazon SNS permissions"). SNS then asks KMS on EventBridge's behalf:
    ``kms:ViaService`` is SNS, the encryption context is the topic's ARN
    (``kms:EncryptionContext:aws:sns:topicArn``), and no ``aws:SourceArn``/``aws:SourceAccount``
    (FoundationStack.allow_alarms_to_notify). Neighbours: another rule, another account, another
    topic encrypted with the same key, the key used outside SNS."""
    calls = Calls(cloud)
    events = service("events.amazonaws.com")
    for stack, lid, _ in cloud.resources("AWS::Events::Rule"):
        props = cloud.props(stack, lid)
        rule = cloud.values(stack, lid).attributes["Arn"]
        for topic in sorted(t["Arn"] for t in props.get("Targets", []) if ":sns:" in t["Arn"]):
            who = f"rule {props['Name']} -> {topic.rsplit(':', 1)[-1]}"
            ctx = {"aws:SourceAccount": cloud.account, "aws:SourceArn": rule, "aws:SecureTransport": "true"}
            other_rule = {**ctx, "aws:SourceArn": cloud.arn("events", "rule/other-app-rule")}
            other_account = {**ctx, "aws:SourceAccount": OTHER_ACCOUNT, "aws:SourceArn": rule.replace(cloud.account, OTHER_ACCOUNT)}
            calls.out.append(Call(who, Request(events, "sns:Publish", topic, ctx), resource_policy=cloud.topic_policy(topic),
                                  neighbours=[Request(events, "sns:Publish", topic, other_rule),
                                              Request(events, "sns:Publish", topic, other_account)]))
            key = cloud.topic_key(topic)
            if key:
                kctx = {"kms:ViaService": f"sns.{cloud.region}.amazonaws.com", "kms:EncryptionContext:aws:sns:topicArn": topic}
                other_topic = {**kctx, "kms:EncryptionContext:aws:sns:topicArn": cloud.arn("sns", "other-topic")}
                not_sns = {**kctx, "kms:ViaService": f"sqs.{cloud.region}.amazonaws.com"}
                for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                    calls.out.append(Call(f"{who} (SNS encrypts with the topic key)", Request(events, action, key, kctx),
                                          key_policy=cloud.key_policy(key),
                                          neighbours=[Request(events, action, key, other_topic),
                                                      Request(events, action, key, not_sns)]))
    return calls.out


def log_key_calls(cloud: Cloud) -> list[Call]:
    calls = []
    logs = service(f"logs.{cloud.region}.amazonaws.com")
    for stack, lid, _ in cloud.resources("AWS::Logs::LogGroup"):
        key = cloud.props(stack, lid).get("KmsKeyId")
        if not key:
            continue
        name = cloud.values(stack, lid).physical_id
        ctx = {"kms:EncryptionContext:aws:logs:arn": cloud.arn("logs", f"log-group:{name}")}
        other = {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{cloud.region}:{OTHER_ACCOUNT}:log-group:{name}"}
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            calls.append(Call(f"CloudWatch Logs for {name}", Request(logs, action, key, ctx), key_policy=cloud.key_policy(key),
                              neighbours=[Request(logs, action, key, other)]))
    return calls


ALL = {
    "lambdas": lambda_calls,
    "pipeline steps": pipeline_calls,
    "endpoint": endpoint_calls,
    "scheduler": scheduler_calls,
    "alarms to SNS": alarm_calls,
    "rules to SNS": rule_calls,
    "logs to KMS": log_key_calls,
}


def _decide(call: Call, request: Request):
    return evaluate(request, identity=call.identity, resource_policy=call.resource_policy, key_policy=call.key_policy)


@pytest.mark.parametrize("group", list(ALL))
def test_every_call_is_allowed_and_its_neighbours_are_denied(cloud, group):
    calls = ALL[group](cloud)
    assert calls, f"no {group} calls found: the derivation is broken"
    denied = [f"{c}: {d.reason}" for c in calls if not (d := _decide(c, c.request))]
    assert not denied, "denied on AWS:\n  " + "\n  ".join(denied)
    leaks = [f"{c.who}: {n}" for c in calls for n in c.neighbours if _decide(c, n)]
    assert not leaks, "a neighbour resource is allowed:\n  " + "\n  ".join(leaks)


def test_the_local_twin_writes_arns_as_sagemaker_does(cloud, tmp_path):
    """The twin's model registry and pipelines give the ARNs IAM authorizes on AWS: package
    versions keep the group name's case (aws-samples/ml-edge-getting-started issue #18),
    pipelines are lower-cased (``list-pipelines``: AbalonePipeline -> pipeline/abalonepipeline,
    alfredcs/SM_Pipeline_Demo README). A twin that lower-cases packages hides fault 2."""
    from datetime import datetime, timezone

    from stsmon.clock import FixedClock
    from stsmon.localcloud import LocalEnvironment
    from stsmon.localcloud.pipelines import pipeline_arn
    from stsmon.localcloud.registry import Registry

    env = LocalEnvironment(account=cloud.account, region=cloud.region)
    registry = Registry(tmp_path / "registry.sqlite", env=env, clock=FixedClock(datetime(2033, 5, 17, tzinfo=timezone.utc)))
    group_arn = registry.create_model_package_group(ModelPackageGroupName="stsPackageGroup")["ModelPackageGroupArn"]
    spec = {"Containers": [{"Image": "img", "ModelDataUrl": "s3://b/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]}
    package = registry.create_model_package(ModelPackageGroupName="stsPackageGroup", InferenceSpecification=spec)["ModelPackageArn"]
    registry.close()
    assert package == cloud.sagemaker_arn("model-package", "stsPackageGroup/1") == cloud.registered[0]
    assert group_arn == cloud.sagemaker_arn("model-package-group", "stsPackageGroup")
    assert pipeline_arn(env, "stsPipeline") == cloud.sagemaker_arn("pipeline", "stsPipeline")


def test_no_allow_statement_is_dead(cloud):
    """A condition key an action never carries (Service Authorization Reference) makes the
    statement never match that action: e.g. s3:GetBucketLocation under an s3:prefix condition."""
    documents = []
    for stack, lid, r in cloud.resources_all():
        props = r.get("Properties", {})
        if r["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy", "AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy"):
            documents.append((f"{stack}/{lid}", props["PolicyDocument"]))
        elif r["Type"] == "AWS::IAM::Role":
            documents += [(f"{stack}/{lid}", p["PolicyDocument"]) for p in props.get("Policies", [])]
        elif r["Type"] == "AWS::KMS::Key":
            documents.append((f"{stack}/{lid}", props["KeyPolicy"]))
    assert len(documents) > 10
    dead = [f"{where} {s.get('Sid', '')}: {p}" for where, doc in documents for s in doc["Statement"]
            if s["Effect"] == "Allow" for p in unsupported_condition_keys(s)]
    assert not dead, "statements that never match some of their actions:\n  " + "\n  ".join(dead)
