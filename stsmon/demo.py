"""The whole flow on one machine: what ``stsmon demo`` runs.

synth → local deploy (foundation, training) → train → deploy (serving,
monitoring) → traffic over the test split → true labels → monitor →
noisy labels (the drift drill) → monitor → the test split again as
mismatched pairs with no labels (the label-free drill) → monitor (data-quality
drift and its alarm in the same hour) → report.

Each step is the same ``stsmon`` command a person would type (invoked
in-process), so the demo proves the commands, not a shortcut around them.
Rerunning is safe: synth is skipped when its inputs did not change, the
deploys apply only differences, training is skipped when the deployed
pipeline definition and the data are those of the approved package already
registered (``--retrain`` registers a new version, which the endpoint swaps
in without dropping requests), traffic reuses the same inference ids (the
monitor counts the repeats) and newer labels replace older ones (the monitor
takes the latest label of an id).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from stscontracts import names

from .errors import StsmonError, UsageError
from .state import StateDir

#: What the synthesized assembly depends on (relative to the project folder).
SYNTH_INPUTS = ("app.py", "cdk.json", "stacks", "pipeline_code", "processing_scripts", "stscontracts", ".env")
SYNTH_STAMP = "stsmon-synth-inputs.sha256"

#: The drill's label noise: 30 % wrong labels must trip the accuracy constraint.
DRILL_ERROR_RATE = 0.3
#: The label-free drill: the test split again as mismatched pairs (``stsmon traffic --shift``), with
#: inference ids of their own and no labels; the data-quality check must find drift in the same hour.
SHIFT = "mismatched"
SHIFT_SEED = 11
SHIFT_PREFIX = "shift_"
#: At least this many shifted requests: the Robust drift check subtracts a window's sampling noise, so
#: a handful of pairs cannot show drift (bench/data_quality_thresholds.py: 200-request windows with a
#: quarter shifted are found 96-100 % of the time). A smaller test split is sent again, reshuffled.
SHIFT_MIN_REQUESTS = 200


class DemoFailed(StsmonError):
    """A step of the demo did not give the outcome the flow needs."""


def synth_inputs_digest(project: Path, context: Iterable[str] = ()) -> str:
    """SHA-256 over the files the CDK app reads and the ``-c`` overrides."""
    digest = hashlib.sha256()
    for name in SYNTH_INPUTS:
        root = project / name
        paths = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else ([root] if root.is_file() else [])
        for path in paths:
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            digest.update(str(path.relative_to(project)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    for pair in sorted(context):
        digest.update(b"-c\0" + pair.encode() + b"\0")
    return digest.hexdigest()


def assembly_is_current(project: Path, assembly: Path, context: Iterable[str] = ()) -> bool:
    stamp = assembly / SYNTH_STAMP
    return (assembly / "manifest.json").is_file() and stamp.is_file() and \
        stamp.read_text().strip() == synth_inputs_digest(project, context)


def mark_assembly(project: Path, assembly: Path, context: Iterable[str] = ()) -> None:
    (assembly / SYNTH_STAMP).write_text(synth_inputs_digest(project, context) + "\n")


def traffic_window(started: datetime, ended: datetime) -> str:
    """Whole UTC hours covering a traffic run, as ``START/END`` for --window."""
    start = started.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    end = ended.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%SZ}"


@dataclass
class StepTiming:
    name: str
    seconds: float
    note: str = ""


@dataclass
class DemoResult:
    state: StateDir
    timings: list[StepTiming] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "state_dir": str(self.state.root),
            "timings": [{"step": t.name, "seconds": round(t.seconds, 1), "note": t.note} for t in self.timings],
            "files": self.files,
            **self.facts,
        }


class Step:
    """Times one step and prints its heading."""

    def __init__(self, result: DemoResult, echo: Callable[[str], None], number: int, total: int, name: str) -> None:
        self.result, self.echo, self.name = result, echo, name
        self.heading = f"[{number}/{total}] {name}"
        self.note = ""

    def __enter__(self) -> Step:
        self.echo("")
        self.echo(f"\033[1m{self.heading}\033[0m")
        self.started = time.monotonic()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        seconds = time.monotonic() - self.started
        if exc_type is None:
            self.result.timings.append(StepTiming(self.name, seconds, self.note))
            self.echo(f"    done in {seconds:.1f} s" + (f" — {self.note}" if self.note else ""))


def wait_for_s3_capture(s3: Any, capture_uri: str, endpoint: str, start: datetime, end: datetime,
                        expected: set[str], *, timeout: float = 900.0, poll: float = 20.0,
                        sleep: Callable[[float], None] = time.sleep,
                        echo: Callable[[str], None] = lambda line: None) -> int:
    """Wait until SageMaker has written the capture records of ``expected``
    inference ids to S3 (it delivers them in batches, typically within minutes).
    Returns how many arrived; raises DemoFailed after ``timeout`` seconds."""
    from .monitoring.ground_truth import read_captures

    waited = 0.0
    while True:
        seen = {c.inference_id for c in read_captures(s3, capture_uri, endpoint, start, end)}
        arrived = len(expected & seen)
        if arrived >= len(expected):
            return arrived
        if waited >= timeout:
            raise DemoFailed(f"after {timeout:g} s only {arrived} of {len(expected)} capture records are in "
                             f"{capture_uri}/{endpoint}/ — is data capture enabled on the endpoint?")
        echo(f"    waiting for data capture in S3: {arrived} of {len(expected)} records so far")
        sleep(poll)
        waited += poll


def latest_monitor_result(clients: Any, pipeline: str, output_uri: str | None,
                          alarm_prefixes: tuple[str, ...]) -> dict[str, Any]:
    """The newest monitoring run's status, violations, metrics, the alarm states and where its report is."""
    from .monitoring import runs

    found = runs.list_runs(clients, pipeline, output_uri=output_uri, limit=1)
    if not found:
        raise DemoFailed(f"the monitoring pipeline {pipeline} recorded no run")
    last = found[-1]
    result = last.result or {}
    report = f"{last.output_uri}/{names.REPORT_FILE}" if last.output_uri and last.result else None
    states = runs.alarm_states(clients, alarm_prefixes)
    dq = result.get("data_quality") or {}
    return {
        "execution_id": last.execution_id,
        "status": last.status,
        "failure_reason": last.failure_reason,
        "violations": sorted(v.get("metric_name") for v in result.get("violations", [])),
        "counts": result.get("counts", {}),
        "metrics": {k: v for k, v in (result.get("metrics") or {}).items() if isinstance(v, (int, float))},
        "alarms": {a["name"]: a["state"] for a in states},
        "alarm_metrics": {a["name"]: a.get("metric") for a in states},
        "model_quality_status": (result.get("model_quality") or {}).get("status", last.status),
        "data_quality": {"status": dq.get("status"), "records": dq.get("records"),
                         "drifted": sorted({v.get("feature_name", "") for v in dq.get("violations") or []
                                            if v.get("constraint_check_type") == "baseline_drift_check"}),
                         "violations": len(dq.get("violations") or [])},
        "report": clients.runtime.show_uri(report) if report else None,
    }


def drift_alarms(outcome: dict[str, Any]) -> list[str]:
    """The names of the outcome's data-quality drift alarms: on ``baseline_drift_violations`` or a
    ``feature_baseline_drift_<feature>`` metric, or a metric-math alarm named ``*-data-quality-drift*``
    (the model-monitor backend's, which has no single metric name)."""
    return sorted(name for name, metric in (outcome.get("alarm_metrics") or {}).items()
                  if metric == names.METRIC_DRIFT_VIOLATIONS or str(metric or "").startswith(names.FEATURE_DRIFT_PREFIX)
                  or "-data-quality-drift" in name)


TRAIN_KEY_FILE = "train_key.json"


def training_key(clients: Any, pipeline_name: str, data: Path) -> str:
    """What a training run depends on: the deployed pipeline definition (``describe_pipeline``, with its
    code prefix, so any script change) and the input data's bytes."""
    from . import executions

    digest = hashlib.sha256()
    definition = executions.describe_pipeline(clients.sagemaker, pipeline_name, where=clients.runtime.where(),
                                              hint=clients.deploy_hint())["Definition"]
    digest.update(json.dumps(definition, sort_keys=True).encode())
    files = sorted(p for p in data.rglob("*") if p.is_file()) if data.is_dir() else [data]
    for path in files:
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def reusable_training(clients: Any, key: str) -> dict[str, Any] | None:
    """The run record of an earlier demo training with the same key whose package is still
    Approved (``describe_model_package``), else None."""
    from botocore.exceptions import BotoCoreError, ClientError

    saved = clients.state.root / "demo" / TRAIN_KEY_FILE
    try:
        known = json.loads(saved.read_text())
    except (OSError, ValueError):
        return None
    record = known.get("record") or {}
    if known.get("key") != key or not record.get("model_package_arn") or record.get("target") != clients.target:
        return None
    try:
        package = clients.sagemaker.describe_model_package(ModelPackageName=record["model_package_arn"])
    except (ClientError, BotoCoreError):
        return None
    return record if package.get("ModelApprovalStatus") == "Approved" else None


def endpoint_in_service(clients: Any, name: str) -> str:
    """The endpoint's URL once ``describe_endpoint`` says it is InService; DemoFailed otherwise."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        status = clients.sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"]
    except (ClientError, BotoCoreError) as exc:
        raise DemoFailed(f"the serving stack deployed but endpoint {name} cannot be described ({exc}); "
                         "see `stsmon status`") from None
    if status != "InService":
        raise DemoFailed(f"the serving stack deployed but endpoint {name} is {status}; see `stsmon status`")
    return clients.runtime.endpoint_url(name)


def remember_training(state: StateDir, key: str, record: dict[str, Any]) -> None:
    from .fileio import write_json_atomic

    write_json_atomic(state.root / "demo" / TRAIN_KEY_FILE, {"key": key, "record": record})


def write_summary(result: DemoResult) -> Path:
    folder = result.state.root / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "demo_summary.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def check_project(project: Path) -> None:
    if not (project / "cdk.json").is_file() or not (project / "app.py").is_file():
        raise UsageError(
            f"{project} is not the stsmodelmonitor project folder (no cdk.json/app.py): "
            "run the demo from the repository root, e.g. `./run.sh demo`")


def parse_time(text: str) -> datetime:
    """An ISO-8601 UTC time as :func:`traffic_window` writes it."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def traffic_in_window(record_file: Path, window: str) -> bool:
    """Whether the traffic run of ``record_file`` (``started``..``ended``) falls in ``window``
    (``START/END``); False when there is no such record. An earlier label-free drill in the hour
    the demo monitors again (a rerun within the hour) is in that window's data."""
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
        started, ended = parse_time(record["started"]), parse_time(record["ended"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    start, end = (parse_time(t) for t in window.split("/"))
    return started < end and ended >= start
