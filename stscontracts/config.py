"""The one configuration of stsmodelmonitor: a frozen, validated dataclass.

``app.py`` (the CDK app) and the ``stsmon`` CLI build it with the same
function, :func:`load_config`, from five layers, later ones winning::

    defaults  <  cdk.json "context"  <  .env file  <  environment  <  -c KEY=VALUE

Every setting has one key, spelled the same in all layers (``PIPELINE_NAME``
in cdk.json, in ``.env``, as an environment variable and as ``-c
PIPELINE_NAME=...``). The three names kept from the original project keep
their meaning: ``PIPELINE_NAME``, ``MODEL_PACKAGE_GROUP_NAME`` and
``BASE_JOB_PREFIX``. Invalid values fail with one :class:`ConfigError` that
names every bad value and the layer it came from.

This module is deliberately light (standard library only, no ``aws_cdk``):
the CLI imports it on every command.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import metrics
from .errors import ContractError
from .names import BINARY_CLASSIFICATION, PROBLEM_TYPES

PROFILES = ("dev", "prod")
MONITOR_BACKENDS = ("pipeline", "model-monitor")
#: Model Monitor's distribution comparison methods (constraints.json ``comparison_method``).
DRIFT_METHODS = ("Robust", "Simple")
APPROVAL_STATUSES = ("Approved", "PendingManualApproval", "Rejected")
#: CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_CHOICES = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)

DEFAULT_ACCOUNT = "000000000000"
DEFAULT_REGION = "us-east-1"


class ConfigError(ContractError):
    """One or more configuration values are invalid (exit code 2)."""


# --------------------------------------------------------------------------
# The dataclass


@dataclass(frozen=True)
class Config:
    """Every setting of the app, validated. Build it with :func:`load_config`.

    Times are in hours, retention in days, latency in milliseconds.
    """

    pipeline_name: str = "stsPipeline"
    model_package_group_name: str = "stsPackageGroup"
    base_job_prefix: str = "sts"
    #: Monitoring pipeline name; default ``{PIPELINE_NAME}Monitoring``.
    monitoring_pipeline_name: str = ""
    #: Endpoint name; default ``{BASE_JOB_PREFIX}-endpoint``.
    endpoint_name: str = ""
    #: ``dev``: ``cdk destroy`` removes everything (data, registry, pipeline
    #: leftovers). ``prod``: the bucket, key and model registry are retained.
    profile: str = "dev"
    account: str = DEFAULT_ACCOUNT
    region: str = DEFAULT_REGION
    processing_instance_type: str = "ml.m5.large"
    training_instance_type: str = "ml.m5.large"
    monitoring_instance_type: str = "ml.m5.large"
    endpoint_instance_type: str = "ml.m5.large"
    endpoint_instance_count: int = 1
    #: Approval status of packages the pipeline registers. ``Approved`` so the
    #: flow runs end to end; use ``PendingManualApproval`` for a human gate.
    model_approval_status: str = "Approved"
    problem_type: str = BINARY_CLASSIFICATION
    quality_metric: str = "accuracy"
    quality_threshold: float = 0.7
    monitor_backend: str = "pipeline"
    #: EventBridge Scheduler / Model Monitor expression (UTC).
    monitor_schedule: str = "cron(0 * ? * * *)"
    monitor_window_hours: int = 1
    monitor_label_delay_hours: int = 0
    monitor_min_label_coverage: float = 0.0
    #: baseline_drift_check: a watched feature drifted when its distance to the baseline exceeds this
    #: (chosen from bench/data_quality_thresholds.py: no false alarm in 1000 in-distribution windows of 200
    #: requests, 0.3 % in windows of 50; docs/monitoring.md, "Data-quality thresholds").
    drift_threshold: float = 0.05
    #: Robust (the L-infinity distance less a window's sampling noise) or Simple (the distance).
    drift_method: str = "Robust"
    capture_sampling_percentage: int = 100
    #: Days before captured data, ground truth and monitoring reports expire.
    data_retention_days: int = 30
    #: Days before non-current object versions expire.
    noncurrent_version_days: int = 7
    log_retention_days: int = 30
    #: Alarm when an endpoint returns at least this many 5xx in 5 minutes.
    alarm_5xx_threshold: int = 1
    #: Alarm when p90 model latency exceeds this (milliseconds) for 3 x 5 minutes.
    alarm_latency_ms: int = 1000
    sklearn_image_version: str = "1.9-0"
    #: Serve this model package instead of the latest approved one.
    model_package_arn: str = ""
    #: Change it (any text) to make a deploy look up the latest approved package again.
    model_package_refresh: str = ""
    #: Where each value came from (key -> layer), for messages. Not compared.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    # Derived names -------------------------------------------------------

    @property
    def prefix(self) -> str:
        return self.base_job_prefix

    def stack_name(self, kind: str) -> str:
        """``{p}-foundation``, ``{p}-training``, ``{p}-serving``, ``{p}-monitoring``."""
        return f"{self.base_job_prefix}-{kind}"

    @property
    def is_prod(self) -> bool:
        return self.profile == "prod"

    @property
    def monitoring_schedule_name(self) -> str:
        return f"{self.base_job_prefix}-model-quality"

    @property
    def data_quality_schedule_name(self) -> str:
        """The native backend's data-quality schedule (Model Monitor: one job definition per schedule)."""
        return f"{self.base_job_prefix}-data-quality"

    @property
    def gate_higher_is_better(self) -> bool:
        return metrics.higher_is_better(self.quality_metric, self.problem_type)

    @property
    def monitored_metrics(self) -> tuple[str, ...]:
        """What the dashboard shows and the alarms watch (the metric registry's ``monitored``)."""
        return metrics.monitored_metrics(self.problem_type)

    def metric(self, name: str) -> metrics.Metric:
        """The registry row of one of this problem type's metrics."""
        return metrics.metric(name, self.problem_type)

    def metric_higher_is_better(self, metric: str) -> bool:
        return metrics.higher_is_better(metric, self.problem_type)


# --------------------------------------------------------------------------
# Settings: key, field, parser


@dataclass(frozen=True)
class _Setting:
    key: str
    field: str
    parse: Callable[[Any], Any]
    help: str


def _str(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError("must be text, not a JSON object or list")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = _str(value)
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError("must be a whole number")
    return int(text)


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, (int, float)):
        result = float(value)
    else:
        try:
            result = float(_str(value))
        except ValueError:
            raise ValueError("must be a number") from None
    if result != result or result in (float("inf"), float("-inf")):
        raise ValueError("must be a finite number")
    return result


SETTINGS: tuple[_Setting, ...] = (
    _Setting("PIPELINE_NAME", "pipeline_name", _str, "SageMaker training pipeline name"),
    _Setting("MODEL_PACKAGE_GROUP_NAME", "model_package_group_name", _str, "model registry group"),
    _Setting("BASE_JOB_PREFIX", "base_job_prefix", _str, "prefix of stack, job and resource names and of S3 keys"),
    _Setting("MONITORING_PIPELINE_NAME", "monitoring_pipeline_name", _str, "monitoring pipeline name (default {PIPELINE_NAME}Monitoring)"),
    _Setting("ENDPOINT_NAME", "endpoint_name", _str, "endpoint name (default {BASE_JOB_PREFIX}-endpoint)"),
    _Setting("DEPLOY_PROFILE", "profile", _str, "dev (destroy removes everything) or prod (data and registry retained)"),
    _Setting("CDK_DEFAULT_ACCOUNT", "account", _str, "AWS account id (local default 000000000000)"),
    _Setting("CDK_DEFAULT_REGION", "region", _str, "AWS region"),
    _Setting("PROCESSING_INSTANCE_TYPE", "processing_instance_type", _str, "instance type of processing steps"),
    _Setting("TRAINING_INSTANCE_TYPE", "training_instance_type", _str, "instance type of the training step"),
    _Setting("MONITORING_INSTANCE_TYPE", "monitoring_instance_type", _str, "instance type of the monitoring job"),
    _Setting("ENDPOINT_INSTANCE_TYPE", "endpoint_instance_type", _str, "endpoint instance type"),
    _Setting("ENDPOINT_INSTANCE_COUNT", "endpoint_instance_count", _int, "endpoint instance count"),
    _Setting("MODEL_APPROVAL_STATUS", "model_approval_status", _str, "approval status of registered packages"),
    _Setting("PROBLEM_TYPE", "problem_type", _str, "BinaryClassification or Regression"),
    _Setting("QUALITY_METRIC", "quality_metric", _str, "evaluation.json metric of the quality gate"),
    _Setting("QUALITY_THRESHOLD", "quality_threshold", _float, "default gate threshold (a pipeline parameter)"),
    _Setting("MONITOR_BACKEND", "monitor_backend", _str, "pipeline or model-monitor"),
    _Setting("MONITOR_SCHEDULE", "monitor_schedule", _str, "schedule expression of the monitor (UTC)"),
    _Setting("MONITOR_WINDOW_HOURS", "monitor_window_hours", _int, "hours of traffic per monitoring run"),
    _Setting("MONITOR_LABEL_DELAY_HOURS", "monitor_label_delay_hours", _int, "hours the window lags behind, for late labels"),
    _Setting("MONITOR_MIN_LABEL_COVERAGE", "monitor_min_label_coverage", _float, "minimum labelled share of captures (0-1)"),
    _Setting("DRIFT_THRESHOLD", "drift_threshold", _float, "data-quality drift threshold (L-infinity distance, 0-1)"),
    _Setting("DRIFT_METHOD", "drift_method", _str, "Robust or Simple: the data-quality distance compared with DRIFT_THRESHOLD"),
    _Setting("CAPTURE_SAMPLING_PERCENTAGE", "capture_sampling_percentage", _int, "percentage of requests captured"),
    _Setting("DATA_RETENTION_DAYS", "data_retention_days", _int, "days before capture, ground truth and reports expire"),
    _Setting("NONCURRENT_VERSION_DAYS", "noncurrent_version_days", _int, "days before old object versions expire"),
    _Setting("LOG_RETENTION_DAYS", "log_retention_days", _int, "CloudWatch Logs retention (days)"),
    _Setting("ALARM_5XX_THRESHOLD", "alarm_5xx_threshold", _int, "5xx errors per 5 minutes that raise the alarm"),
    _Setting("ALARM_LATENCY_MS", "alarm_latency_ms", _int, "p90 model latency (ms) that raises the alarm"),
    _Setting("SKLEARN_IMAGE_VERSION", "sklearn_image_version", _str, "SageMaker scikit-learn image version"),
    _Setting("MODEL_PACKAGE_ARN", "model_package_arn", _str, "serve this package instead of the latest approved"),
    _Setting("MODEL_PACKAGE_REFRESH", "model_package_refresh", _str, "change to look up the latest approved package again"),
)
SETTINGS_BY_KEY = {s.key: s for s in SETTINGS}
KEYS = tuple(SETTINGS_BY_KEY)

# --------------------------------------------------------------------------
# Validation

_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # SageMaker resource names
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")  # also an S3 key prefix and bucket-name part
_INSTANCE_RE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_ACCOUNT_RE = re.compile(r"^\d{12}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_SCHEDULE_RE = re.compile(r"^(cron\(\S+( \S+){5}\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\))$")
_IMAGE_VERSION_RE = re.compile(r"^\d+\.\d+-\d+$")
_PACKAGE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[a-zA-Z0-9-]+/\d+$")


def _validate(cfg: Config) -> list[tuple[str, str]]:
    """(field, problem) for every invalid value of an assembled config."""
    problems: list[tuple[str, str]] = []

    def bad(name: str, why: str) -> None:
        problems.append((name, why))

    for name in ("pipeline_name", "model_package_group_name", "monitoring_pipeline_name", "endpoint_name"):
        if not _NAME_RE.match(getattr(cfg, name)):
            bad(name, "must be 1-63 letters, digits and single hyphens, starting and ending with a letter or digit")
    if not _PREFIX_RE.match(cfg.base_job_prefix):
        bad("base_job_prefix", "must be 1-20 lower-case letters, digits or hyphens, starting with a letter (it is part of bucket keys and stack names)")
    if cfg.profile not in PROFILES:
        bad("profile", f"must be one of {', '.join(PROFILES)}")
    if not _ACCOUNT_RE.match(cfg.account):
        bad("account", "must be a 12-digit AWS account id")
    if not _REGION_RE.match(cfg.region):
        bad("region", "must be an AWS region such as us-east-1")
    for name in ("processing_instance_type", "training_instance_type", "monitoring_instance_type", "endpoint_instance_type"):
        if not _INSTANCE_RE.match(getattr(cfg, name)):
            bad(name, "must be a SageMaker instance type such as ml.m5.large")
    if not 1 <= cfg.endpoint_instance_count <= 10:
        bad("endpoint_instance_count", "must be between 1 and 10")
    if cfg.model_approval_status not in APPROVAL_STATUSES:
        bad("model_approval_status", f"must be one of {', '.join(APPROVAL_STATUSES)}")
    if cfg.problem_type not in PROBLEM_TYPES:
        bad("problem_type", f"must be one of {', '.join(PROBLEM_TYPES)}")
    elif cfg.quality_metric not in metrics.gate_metrics(cfg.problem_type):
        bad("quality_metric", f"must be one of {', '.join(metrics.gate_metrics(cfg.problem_type))} for {cfg.problem_type}")
    if cfg.problem_type == BINARY_CLASSIFICATION and not 0.0 <= cfg.quality_threshold <= 1.0:
        bad("quality_threshold", "must be between 0 and 1 for a classification metric")
    if cfg.monitor_backend not in MONITOR_BACKENDS:
        bad("monitor_backend", f"must be one of {', '.join(MONITOR_BACKENDS)}")
    if not _SCHEDULE_RE.match(cfg.monitor_schedule):
        bad("monitor_schedule", "must be a schedule expression such as cron(0 * ? * * *) or rate(1 hour)")
    elif cfg.monitor_backend == "model-monitor" and not cfg.monitor_schedule.startswith("cron("):
        bad("monitor_schedule", "must be a cron(...) expression for the model-monitor backend")
    if not 1 <= cfg.monitor_window_hours <= 168:
        bad("monitor_window_hours", "must be between 1 and 168")
    if not 0 <= cfg.monitor_label_delay_hours <= 168:
        bad("monitor_label_delay_hours", "must be between 0 and 168")
    if not 0.0 <= cfg.monitor_min_label_coverage <= 1.0:
        bad("monitor_min_label_coverage", "must be between 0 and 1")
    if not 0.0 <= cfg.drift_threshold <= 1.0:
        bad("drift_threshold", "must be between 0 and 1 (an L-infinity distance between two distributions)")
    if cfg.drift_method not in DRIFT_METHODS:
        bad("drift_method", f"must be one of {', '.join(DRIFT_METHODS)}")
    if not 0 <= cfg.capture_sampling_percentage <= 100:
        bad("capture_sampling_percentage", "must be between 0 and 100")
    if not 1 <= cfg.data_retention_days <= 3650:
        bad("data_retention_days", "must be between 1 and 3650")
    if not 1 <= cfg.noncurrent_version_days <= 3650:
        bad("noncurrent_version_days", "must be between 1 and 3650")
    if cfg.log_retention_days not in LOG_RETENTION_CHOICES:
        bad("log_retention_days", f"must be one of CloudWatch's periods: {', '.join(map(str, LOG_RETENTION_CHOICES))}")
    if cfg.alarm_5xx_threshold < 1:
        bad("alarm_5xx_threshold", "must be at least 1")
    if cfg.alarm_latency_ms < 1:
        bad("alarm_latency_ms", "must be at least 1")
    if not _IMAGE_VERSION_RE.match(cfg.sklearn_image_version):
        bad("sklearn_image_version", "must look like 1.9-0")
    if cfg.model_package_arn and not _PACKAGE_ARN_RE.match(cfg.model_package_arn):
        bad("model_package_arn", "must be a versioned model package ARN (arn:aws:sagemaker:REGION:ACCOUNT:model-package/GROUP/N) or empty")
    if len(cfg.model_package_refresh) > 128:
        bad("model_package_refresh", "must be at most 128 characters")
    return problems


# --------------------------------------------------------------------------
# Layers


def read_dotenv(path: Path) -> dict[str, tuple[str, str]]:
    """``KEY=VALUE`` lines of a ``.env`` file -> {key: (value, "file:line")}.

    Blank lines and ``#`` comments are skipped, ``export`` is allowed, one
    pair of matching quotes around the value is removed. A missing file is
    an empty layer; a line that is not ``KEY=VALUE`` is a :class:`ConfigError`
    naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    result: dict[str, tuple[str, str]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, got {raw.strip()!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        result[key] = (value, f"{path}:{number}")
    return result


def parse_context_pairs(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` (the CLI's ``-c`` options) -> dict."""
    result: dict[str, str] = {}
    bad = [p for p in pairs if "=" not in p or not p.partition("=")[0].strip()]
    if bad:
        raise ConfigError("-c expects KEY=VALUE, got: " + ", ".join(repr(p) for p in bad))
    for pair in pairs:
        key, _, value = pair.partition("=")
        result[key.strip()] = value
    return result


def _looks_like_ours(key: str) -> bool:
    # cdk.json also holds CDK feature flags ("@aws-cdk/...") and lower-case
    # CLI settings; upper-case snake keys are this app's.
    return bool(re.fullmatch(r"[A-Z][A-Z0-9_]*", key))


def _unknown_keys(layer: Mapping[str, Any], where: str) -> list[str]:
    messages = []
    for key in layer:
        if _looks_like_ours(key) and key not in SETTINGS_BY_KEY:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            messages.append(f"  {key} ({where}): unknown setting{hint}")
    return messages


def load_config(
    context: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    dotenv_path: Path | str | None = None,
    *,
    cdk_json_context: Mapping[str, Any] | None = None,
) -> Config:
    """Build and validate the configuration.

    Args:
        context: the ``-c KEY=VALUE`` overrides (highest precedence). Values
            may be strings or JSON values (numbers, booleans).
        env: the process environment (only the setting keys are read).
        dotenv_path: a ``.env`` file; missing is fine; None skips the layer.
        cdk_json_context: the ``"context"`` object of ``cdk.json``.

    Raises:
        ConfigError: naming every invalid or unknown value and its source.
    """
    context = dict(context or {})
    env = env or {}
    cdk_json_context = dict(cdk_json_context or {})
    dotenv = read_dotenv(Path(dotenv_path)) if dotenv_path is not None else {}

    raw: dict[str, tuple[Any, str]] = {}
    for key in KEYS:
        if key in cdk_json_context:
            raw[key] = (cdk_json_context[key], "cdk.json")
        if key in dotenv:
            raw[key] = dotenv[key]
        if key in env:
            raw[key] = (env[key], "environment")
        if key in context:
            raw[key] = (context[key], "-c")

    messages = _unknown_keys(cdk_json_context, "cdk.json") + _unknown_keys(context, "-c")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    unparsable: set[str] = set()
    for key, (value, source) in raw.items():
        setting = SETTINGS_BY_KEY[key]
        try:
            values[setting.field] = setting.parse(value)
        except ValueError as exc:
            messages.append(f"  {key}={value!r} ({source}): {exc}")
            unparsable.add(setting.field)
        sources[setting.field] = source

    # Validate what parsed (a value that did not parse keeps its default here
    # and is reported once, above), so one message names every bad value.
    prefix = values.get("base_job_prefix", Config.base_job_prefix)
    pipeline = values.get("pipeline_name", Config.pipeline_name)
    derived: dict[str, str] = {}  # a name made from another setting -> that setting's field
    if not values.get("monitoring_pipeline_name"):
        values["monitoring_pipeline_name"] = f"{pipeline}Monitoring"
        derived["monitoring_pipeline_name"] = "pipeline_name"
    if not values.get("endpoint_name"):
        values["endpoint_name"] = f"{prefix}-endpoint"
        derived["endpoint_name"] = "base_job_prefix"
    cfg = Config(**values, sources=sources)
    field_to_key = {s.field: s.key for s in SETTINGS}
    problems = _validate(cfg)
    bad_fields = {name for name, _ in problems} | unparsable
    for name, why in problems:
        if name in unparsable or derived.get(name) in bad_fields:
            continue  # reported once already, or only bad because what it is made from is
        key = field_to_key[name]
        source = sources.get(name, "default")
        messages.append(f"  {key}={getattr(cfg, name)!r} ({source}): {why}")
    if messages:
        raise ConfigError("invalid configuration:\n" + "\n".join(messages))
    return cfg


def cli_overrides(app_context: Mapping[str, Any], cdk_json_context: Mapping[str, Any]) -> dict[str, Any]:
    """The ``-c`` overrides inside a CDK app's merged context.

    The CDK CLI hands the app one merged context (cdk.json, cdk.context.json,
    ``-c``). A key whose value differs from cdk.json's (or that cdk.json
    lacks) came from ``-c`` (or cdk.context.json) and so outranks ``.env``
    and the environment; an unchanged cdk.json value stays below them.
    """
    return {
        key: value
        for key, value in app_context.items()
        if _looks_like_ours(key) and (key not in cdk_json_context or cdk_json_context[key] != value)
    }


def read_cdk_json_context(path: Path | str) -> dict[str, Any]:
    """The ``"context"`` object of a ``cdk.json`` (empty if the file is missing)."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    context = data.get("context", {}) if isinstance(data, dict) else {}
    if not isinstance(context, dict):
        raise ConfigError(f"{path}: \"context\" must be a JSON object")
    return context


def describe(cfg: Config) -> list[tuple[str, str, str]]:
    """(key, value, source) rows for ``stsmon`` to print the effective configuration."""
    rows = []
    for setting in SETTINGS:
        value = getattr(cfg, setting.field)
        rows.append((setting.key, str(value), cfg.sources.get(setting.field, "default")))
    return rows


def replace(cfg: Config, **changes: Any) -> Config:
    """A copy with changes, validated again (tests use it)."""
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "sources"}
    values.update(changes)
    new = Config(**values, sources=cfg.sources)
    problems = _validate(new)
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(f"  {n}: {w}" for n, w in problems))
    return new
