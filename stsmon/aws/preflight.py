"""``stsmon doctor --target aws``: will a first deploy work in this account and region?

Each check reads, never writes: STS GetCallerIdentity, SSM GetParameter,
Service Quotas List*, SageMaker List*, S3 HeadBucket/GetBucketTagging,
CloudFormation DescribeStacks; the image check is offline (the pinned
SageMaker SDK's image table). Clients come in from the CLI (``make_client``)
so tests hand in botocore Stubbers.

What is verified and what is assumed, per check:

- **bootstrap**: the version parameter the assembly names
  (``bootstrapStackVersionSsmParameter``) against the highest
  ``requiresBootstrapStackVersion`` of its stacks and asset manifests — the
  comparison ``cdk deploy`` itself makes (it reads the parameter through the
  bootstrap deploy role, so a user who may not read it directly gets a warning,
  not a failure).
- **quotas**: quota names as Service Quotas spells them ("ml.m5.large for
  processing job usage", "... for training job usage", "... for endpoint
  usage"); the applied value when the account has one, else AWS's default
  (ListServiceQuotas returns only applied values; the defaults of these quotas
  are 0 for many instance types, which is why new accounts fail). The
  monitoring job counts as a processing job (true of our pipeline backend; for
  Model Monitor's schedules it is the documented behaviour of monitoring
  executions, which run as processing jobs). An endpoint update provisions a
  second fleet before retiring the first (SageMaker's default blue/green
  deployment, docs "Blue/Green Deployments"), so updates need twice the
  instance count: fewer is a warning.
- **model monitor**: AWS closed SageMaker Model Monitor to new customers;
  there is no API that says whether an account is "existing". Verified: whether
  the account has monitoring schedules or model-quality job definitions in the
  region (it has used Model Monitor there). Assumed: such an account keeps
  access; an account with none may be refused when the monitoring stack
  creates the schedule — a warning, with the default backend as the way out.
- **buckets**: HeadBucket 404 = free; 200 = exists, ours when CloudFormation's
  ``aws:cloudformation:stack-name`` tag names the foundation stack and that
  stack is deployed; 403 = another account's (or unreadable to you).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from stscontracts.config import Config

from ..errors import StsmonError
from ..preflight import FAIL, OK, SKIP, WARN, Check
from .environment import AwsEnvironment, assembly_environments

DEFAULT_BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403", "Forbidden"}


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code", type(exc).__name__))


def _message(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Message", exc))


# --------------------------------------------------------------------------
# Credentials, region, assembly


def credentials_check(sts: Any, environment: AwsEnvironment) -> tuple[Check, dict[str, str] | None]:
    """STS GetCallerIdentity: which account and principal the credentials are."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    profile = f"profile {environment.profile} ({environment.profile_source})" if environment.profile else \
        "default credential chain"
    login = f"aws sso login --profile {environment.profile}" if environment.profile else "aws configure"
    try:
        identity = sts.get_caller_identity()
    except NoCredentialsError:
        return Check("credentials", FAIL, f"no AWS credentials found ({profile})",
                     f"{login}, or set AWS_PROFILE / pass --profile"), None
    except ClientError as exc:
        return Check("credentials", FAIL, f"rejected: {_code(exc)}: {_message(exc)} ({profile})",
                     f"refresh them: {login}"), None
    except BotoCoreError as exc:
        return Check("credentials", FAIL, f"cannot use them: {exc} ({profile})", f"check the profile, then {login}"), None
    return Check("credentials", OK, f"account {identity['Account']} as {identity['Arn']} ({profile})"), identity


def sagemaker_regions() -> set[str]:
    """Regions with a SageMaker endpoint in botocore's endpoint data (every partition; offline)."""
    import botocore.session

    session = botocore.session.get_session()
    return {r for partition in session.get_available_partitions()
            for r in session.get_available_regions("sagemaker", partition_name=partition)}


def region_check(environment: AwsEnvironment, cfg: Config, known_regions: set[str] | None = None) -> Check:
    """Where the commands act and why; a warning when botocore knows no SageMaker endpoint there."""
    if cfg.region != environment.region:
        source = cfg.sources.get("region", "configuration")
        detail = f"{cfg.region} (CDK_DEFAULT_REGION from {source}; your AWS region is {environment.describe()})"
    else:
        detail = environment.describe()
    if known_regions is not None and cfg.region not in known_regions:
        import botocore

        return Check("region", WARN, f"{detail}: botocore {botocore.__version__} knows no SageMaker endpoint there",
                     "check the region (AWS_REGION, the profile's region, -c CDK_DEFAULT_REGION)")
    return Check("region", OK, detail)


def assembly_check(assembly: Path, region: str, account: str | None) -> Check:
    """Are cdk.out's stacks for this account and region (``cdk deploy --app cdk.out`` deploys where they say)?"""
    if not (assembly / "manifest.json").is_file():
        return Check("cloud assembly", WARN, f"no {assembly} yet", "stsmon synth (with these credentials) before deploying")
    envs = assembly_environments(assembly)
    wrong_region = sorted({r for _, r in envs.values() if r != region})
    wrong_account = sorted({a for a, _ in envs.values() if account and a != account})
    if wrong_region or wrong_account:
        found = ", ".join(sorted({f"aws://{a}/{r}" for a, r in envs.values()}))
        return Check("cloud assembly", FAIL, f"{assembly} is for {found}, not aws://{account or '?'}/{region}",
                     "stsmon synth again (with these credentials and region)")
    found = ", ".join(sorted({f"aws://{a}/{r}" for a, r in envs.values()})) or "no stacks"
    return Check("cloud assembly", OK, f"{assembly}: {found}")


# --------------------------------------------------------------------------
# CDK bootstrap


@dataclass(frozen=True)
class BootstrapRequirement:
    version: int
    parameter: str


def bootstrap_requirement(assembly: Path) -> BootstrapRequirement | None:
    """The highest bootstrap version cdk.out's stacks and asset manifests require, and its SSM parameter."""
    try:
        manifest = json.loads((assembly / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    versions, parameters = [], set()
    for artifact in (manifest.get("artifacts") or {}).values():
        props = artifact.get("properties") or {}
        if artifact.get("type") in ("aws:cloudformation:stack", "cdk:asset-manifest") and \
                isinstance(props.get("requiresBootstrapStackVersion"), int):
            versions.append(props["requiresBootstrapStackVersion"])
            parameters.add(props.get("bootstrapStackVersionSsmParameter") or DEFAULT_BOOTSTRAP_PARAMETER)
    if not versions:
        return None
    return BootstrapRequirement(max(versions), sorted(parameters)[0])


def bootstrap_check(ssm: Any, assembly: Path, account: str, region: str) -> Check:
    from botocore.exceptions import ClientError

    need = bootstrap_requirement(assembly)
    parameter = need.parameter if need else DEFAULT_BOOTSTRAP_PARAMETER
    bootstrap = f"npx cdk bootstrap aws://{account}/{region}"
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ClientError as exc:
        if _code(exc) == "ParameterNotFound":
            return Check("cdk bootstrap", FAIL, f"{account}/{region} is not bootstrapped ({parameter} not found)", bootstrap)
        if _code(exc) in ACCESS_DENIED:
            return Check("cdk bootstrap", WARN, f"could not read {parameter} ({_code(exc)}: ssm:GetParameter)",
                         "cdk deploy reads it through the bootstrap deploy role; ask for ssm:GetParameter to check here")
        raise
    try:
        version = int(value)
    except ValueError:
        return Check("cdk bootstrap", FAIL, f"{parameter} = {value!r} is not a version", bootstrap)
    if need is None:
        return Check("cdk bootstrap", WARN, f"version {version}; no cdk.out, so the required version is unknown",
                     "stsmon synth, then run doctor again")
    if version < need.version:
        return Check("cdk bootstrap", FAIL, f"version {version}, cdk.out requires {need.version}",
                     f"{bootstrap} (upgrades the CDKToolkit stack)")
    return Check("cdk bootstrap", OK, f"version {version} (cdk.out requires {need.version})")


# --------------------------------------------------------------------------
# Service quotas


@dataclass
class QuotaNeed:
    minimum: int
    peak: int
    uses: list[str]


def quota_needs(cfg: Config) -> dict[str, QuotaNeed]:
    """Quota name -> instances the flow needs at least (one job or the endpoint)
    and at its peak (training while the hourly monitor runs; an endpoint update)."""
    needs: dict[str, QuotaNeed] = {}

    def add(instance_type: str, use: str, minimum: int, peak: int, why: str) -> None:
        name = f"{instance_type} for {use} usage"
        need = needs.setdefault(name, QuotaNeed(0, 0, []))
        need.minimum = max(need.minimum, minimum)
        need.peak += peak
        need.uses.append(why)

    add(cfg.processing_instance_type, "processing job", 1, 1, "training pipeline steps")
    add(cfg.training_instance_type, "training job", 1, 1, "training step")
    add(cfg.monitoring_instance_type, "processing job", 1, 1, "hourly monitor")
    count = cfg.endpoint_instance_count
    add(cfg.endpoint_instance_type, "endpoint", count, 2 * count, "endpoint")
    return needs


def _all_quotas(client: Any, operation: str) -> dict[str, dict[str, Any]]:
    quotas: dict[str, dict[str, Any]] = {}
    for page in client.get_paginator(operation).paginate(ServiceCode="sagemaker", PaginationConfig={"PageSize": 100}):
        for quota in page.get("Quotas", []):
            quotas[quota["QuotaName"]] = quota
    return quotas


def quota_checks(quotas: Any, cfg: Config) -> list[Check]:
    """One line per (instance type, use) the configuration needs."""
    from botocore.exceptions import ClientError

    needs = quota_needs(cfg)
    try:
        applied = _all_quotas(quotas, "list_service_quotas")
        defaults = _all_quotas(quotas, "list_aws_default_service_quotas")
    except ClientError as exc:
        if _code(exc) not in ACCESS_DENIED:
            raise
        return [Check(f"quota {name}", WARN, f"could not read quotas ({_code(exc)}: servicequotas:ListServiceQuotas)",
                      "check it in the Service Quotas console") for name in needs]
    checks = []
    for name, need in needs.items():
        label = f"quota {name}"
        quota = applied.get(name) or defaults.get(name)
        if quota is None:
            checks.append(Check(label, FAIL, f"no such quota in {cfg.region}: the instance type is not offered there "
                                             f"for this use", "choose another instance type (-c ..._INSTANCE_TYPE=...)"))
            continue
        value = int(quota.get("Value", 0))
        where = "applied" if name in applied else "AWS default"
        request = (f"request {need.peak}: aws service-quotas request-service-quota-increase --service-code sagemaker "
                   f"--quota-code {quota.get('QuotaCode', '?')} --desired-value {need.peak} --region {cfg.region}")
        uses = " + ".join(need.uses)
        if value < need.minimum:
            checks.append(Check(label, FAIL, f"{value} ({where}); {uses} need {need.minimum}", request))
        elif value < need.peak:
            checks.append(Check(label, WARN, f"{value} ({where}); {uses} need {need.minimum}, {need.peak} at once "
                                             "(training during a monitor run, or an endpoint update's second fleet)",
                                request))
        else:
            checks.append(Check(label, OK, f"{value} ({where}); {uses} need at most {need.peak}"))
    return checks


# --------------------------------------------------------------------------
# Images (offline: the pinned SageMaker SDK's image table)


@lru_cache(maxsize=None)
def image_table(framework: str) -> dict[str, Any]:
    """``sagemaker/core/image_uri_config/{framework}.json`` of the installed (pinned) SDK."""
    spec = importlib.util.find_spec("sagemaker.core")
    if spec is None or not spec.submodule_search_locations:
        raise StsmonError("sagemaker-core is not installed (pip install -r requirements.txt)")
    path = Path(next(iter(spec.submodule_search_locations))) / "image_uri_config" / f"{framework}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _sdk_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"sagemaker-core {version('sagemaker-core')}"
    except PackageNotFoundError:  # pragma: no cover - image_table failed first
        return "sagemaker-core"


def _domain(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def image_checks(cfg: Config) -> list[Check]:
    """The scikit-learn image (training, processing, serving) and, for the
    model-monitor backend, Model Monitor's analyzer: published in the region?"""
    checks = []
    version, region = cfg.sklearn_image_version, cfg.region
    table = image_table("sklearn")
    for scope in ("training", "inference"):
        versions = table.get(scope, {}).get("versions", {})
        if version not in versions:
            checks.append(Check(f"image sklearn {scope}", FAIL,
                                f"scikit-learn image {version} is not in the {_sdk_version()} table "
                                f"(it has {', '.join(versions)})", "set SKLEARN_IMAGE_VERSION to one of those"))
            continue
        entry = versions[version]
        account = entry.get("registries", {}).get(region)
        if account is None:
            checks.append(Check(f"image sklearn {scope}", FAIL, f"scikit-learn {version} is not published in {region}",
                                "deploy to a region that has it (AWS_REGION / --profile)"))
            continue
        uri = f"{account}.dkr.ecr.{region}.{_domain(region)}/{entry['repository']}:{version}-cpu-py3"
        checks.append(Check(f"image sklearn {scope}", OK, f"{uri} ({_sdk_version()} table)"))
    if cfg.monitor_backend == "model-monitor":
        entry = image_table("model-monitor").get("versions", {}).get("", {})
        account = entry.get("registries", {}).get(region)
        if account is None:
            checks.append(Check("image model-monitor", FAIL, f"Model Monitor's analyzer is not published in {region}",
                                "use MONITOR_BACKEND=pipeline"))
        else:
            checks.append(Check("image model-monitor", OK,
                                f"{account}.dkr.ecr.{region}.{_domain(region)}/{entry['repository']}:latest"))
    return checks


# --------------------------------------------------------------------------
# Model Monitor (only for MONITOR_BACKEND=model-monitor)


def model_monitor_check(sagemaker: Any, cfg: Config) -> Check:
    from botocore.exceptions import ClientError

    if cfg.monitor_backend != "model-monitor":
        return Check("model monitor", OK, "not used (MONITOR_BACKEND=pipeline: our monitoring pipeline)")
    try:
        schedules = sagemaker.list_monitoring_schedules(MaxResults=1).get("MonitoringScheduleSummaries", [])
        definitions = sagemaker.list_model_quality_job_definitions(MaxResults=1).get("JobDefinitionSummaries", [])
    except ClientError as exc:
        if _code(exc) not in ACCESS_DENIED:
            raise
        return Check("model monitor", WARN, f"could not check ({_code(exc)}: sagemaker:ListMonitoringSchedules)",
                     "or use MONITOR_BACKEND=pipeline (the default)")
    if schedules or definitions:
        return Check("model monitor", OK, f"this account has used Model Monitor in {cfg.region} "
                                          "(existing customers keep it)")
    return Check("model monitor", WARN, f"no Model Monitor schedules or job definitions in {cfg.region}: AWS closed "
                                        "Model Monitor to new customers, so the monitoring stack may be refused",
                 "use MONITOR_BACKEND=pipeline (the default), or confirm access with AWS")


# --------------------------------------------------------------------------
# Bucket names (fixed names: {p}-artifacts-{account}-{region}, {p}-access-logs-{account}-{region})


def bucket_names(prefix: str, account: str, region: str) -> dict[str, str]:
    """The foundation stack's literal bucket names (stacks/constructs/storage.py; docs/CONTRACTS.md)."""
    return {"artifact bucket": f"{prefix}-artifacts-{account}-{region}",
            "access-log bucket": f"{prefix}-access-logs-{account}-{region}"}


def _stack_exists(cfn: Any, name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in _message(exc):
            return False
        raise
    return any(s.get("StackStatus") not in ("DELETE_COMPLETE",) for s in stacks)


def bucket_checks(s3: Any, cfn: Any, cfg: Config, account: str) -> list[Check]:
    from botocore.exceptions import ClientError

    stack = cfg.stack_name("foundation")
    checks = []
    deployed: bool | None = None
    for label, name in bucket_names(cfg.prefix, account, cfg.region).items():
        try:
            s3.head_bucket(Bucket=name)
        except ClientError as exc:
            code = _code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                checks.append(Check(label, OK, f"{name} is free ({stack} creates it)"))
            elif code in ("403", "AccessDenied", "Forbidden"):
                if deployed is None:
                    deployed = _stack_exists(cfn, stack)
                if deployed:
                    checks.append(Check(label, WARN, f"{name} exists and {stack} is deployed, but you may not read "
                                                     "the bucket (s3:ListBucket) to confirm it is the stack's"))
                else:
                    checks.append(Check(label, FAIL, f"{name} exists and you may not read it: another account "
                                                     "owns it, or your policy lacks s3:ListBucket on it",
                                        "change BASE_JOB_PREFIX, or ask who owns the bucket"))
            elif code in ("301", "PermanentRedirect", "400"):
                checks.append(Check(label, FAIL, f"{name} exists in another region",
                                    "delete it there, or change BASE_JOB_PREFIX"))
            else:
                raise
            continue
        try:
            tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=name).get("TagSet", [])}
        except ClientError as exc:
            if _code(exc) in ACCESS_DENIED:
                checks.append(Check(label, WARN, f"{name} exists; could not read its tags ({_code(exc)}: "
                                                 f"s3:GetBucketTagging) to tell whether it is {stack}'s"))
                continue
            if _code(exc) != "NoSuchTagSet":
                raise
            tags = {}
        if deployed is None:
            deployed = _stack_exists(cfn, stack)
        owner = tags.get("aws:cloudformation:stack-name")
        if owner == stack and deployed:
            checks.append(Check(label, OK, f"{name} exists: {stack}'s own"))
        elif owner == stack:
            checks.append(Check(label, FAIL, f"{name} was left by an earlier {stack} (retained: prod profile) and "
                                             f"{stack} is not deployed: creating it again fails",
                                f"empty and delete it (aws s3 rb s3://{name} --force), or import it"))
        else:
            checks.append(Check(label, FAIL, f"{name} exists but was not created by {stack}"
                                             + (f" (tagged for {owner})" if owner else ""),
                                "delete or rename it, or change BASE_JOB_PREFIX"))
    return checks


# --------------------------------------------------------------------------
# All of them


def run_aws_checks(make_client: Callable[[str], Any], cfg: Config, environment: AwsEnvironment,
                   assembly: Path) -> list[Check]:
    """Every check, in the order of a first deploy. ``make_client(service)`` gives a boto3 client."""
    from botocore.exceptions import BotoCoreError, ClientError

    def guarded(name: str, run: Callable[[], Check | list[Check]]) -> list[Check]:
        try:
            result = run()
        except (ClientError, BotoCoreError, StsmonError) as exc:
            return [Check(name, WARN, f"could not check: {_code(exc)}: {_message(exc)}")]
        return result if isinstance(result, list) else [result]

    checks: list[Check] = []
    try:
        sts = make_client("sts")
    except StsmonError as exc:
        checks.append(Check("credentials", FAIL, exc.message, "check the profile name and the AWS config files"))
        identity = None
    else:
        credentials, identity = credentials_check(sts, environment)
        checks.append(credentials)
    account = identity["Account"] if identity else None
    checks.append(region_check(environment, cfg, sagemaker_regions()))
    checks += guarded("cloud assembly", lambda: assembly_check(assembly, cfg.region, account))
    checks += guarded("images", lambda: image_checks(cfg))
    if account is None:
        needs = ["cdk bootstrap", *(f"quota {n}" for n in quota_needs(cfg)), "model monitor", *bucket_names("", "", "")]
        return checks + [Check(name, SKIP, "needs working credentials") for name in needs]
    checks += guarded("cdk bootstrap", lambda: bootstrap_check(make_client("ssm"), assembly, account, cfg.region))
    checks += guarded("service quotas", lambda: quota_checks(make_client("service-quotas"), cfg))
    checks += guarded("model monitor", lambda: model_monitor_check(make_client("sagemaker"), cfg))
    checks += guarded("buckets", lambda: bucket_checks(make_client("s3"), make_client("cloudformation"), cfg, account))
    return checks
