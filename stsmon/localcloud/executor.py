"""Run a SageMaker pipeline definition locally, step by step, like SageMaker does.

:func:`start_execution` runs one execution of a locally registered pipeline
(``pipelines/{name}.json``, written by ``stsmon deploy``) to completion.

- **Step types**: Processing, Training, Condition, RegisterModel, Fail, Model.
  Arguments are the CreateProcessingJob / CreateTrainingJob /
  CreateModelPackage / CreateModel requests, evaluated first (``Get``
  references to parameters, execution variables and step properties,
  ``Std:Join``, ``Std:JsonGet``).
- **Images**: the SageMaker scikit-learn image of the local scikit-learn
  version (e.g. ``683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3``,
  any region's account) runs with this interpreter (``sys.executable``);
  any other image is refused before the execution starts.
- **Staging**: ``s3://`` inputs are copied from the local bucket into the job
  folder; ``/opt/ml`` in entrypoints, arguments and environment values is
  remapped to ``{job}/opt/ml``; processing outputs and the training job's
  ``model.tar.gz`` (packed from ``/opt/ml/model``) are copied to their S3
  URIs after the job succeeds. Training runs in script mode:
  ``sagemaker_submit_directory`` extracted to ``/opt/ml/code``,
  ``sagemaker_program`` run with hyperparameters as ``--key value``, the
  ``SM_*`` environment, channels in ``/opt/ml/input/data/<channel>``.
- **AWS from inside a job**: the execution's :class:`~stsmon.localcloud.job_endpoint.JobEndpoint`
  (loopback) stands in for the regional AWS endpoints; every job gets its URL
  (``AWS_ENDPOINT_URL_S3``), credentials and ``AWS_REGION`` in its environment,
  as a SageMaker container gets its role and region, so a script's boto3 calls
  (e.g. monitor.py listing the window's hours) run unchanged against the local
  buckets.
- **Records**: ``executions/{pipeline}/{id}/execution.json`` (statuses
  Executing/Succeeded/Failed/Stopped per step and for the execution, failure
  reasons, step properties) and per step ``steps/{step}/stdout.log``,
  ``stderr.log``. Written atomically on every change.
- **Graph**: steps run as soon as what they depend on succeeded, up to
  ``ParallelismConfiguration.MaxParallelExecutionSteps`` (default: the CPU
  count) at a time; a failed step stops its dependents; a Fail step stops
  the execution; a condition runs only the chosen branch.
- **Crash safety**: the executor records its pid; an execution left
  Executing by a process that no longer exists is marked Failed the next
  time executions are read. Child processes die with the executor (Linux).
  Outputs are published only after success, file by file with atomic renames;
  a package is registered in one registry transaction.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import string
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import supervisor
from ..clock import Clock
from ..errors import NotDeployedError, StsmonError, UsageError
from ..fileio import write_json_atomic
from ..state import StateDir
from . import LocalEnvironment
from .job_endpoint import JobEndpoint
from .pipelines import StepSpec, collect_steps, definition_problems, load_pipeline
from .registry import Registry

FAILURE_REASON_MAX = 1024
PYTHON_COMMANDS = ("python", "python3", "python3.11", "python3.12", "python3.13", "/usr/bin/python3", "/usr/local/bin/python", "/usr/local/bin/python3", "/usr/bin/python")
SHELL_COMMANDS = ("/bin/bash", "bash", "/bin/sh", "sh")
SKLEARN_REPOSITORY = "sagemaker-scikit-learn"
_IMAGE_RE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)(?::(.+))?$")
_OPT_ML = re.compile(r"(?<![\w.-])/opt/ml(?=/|$|[^\w/])")
#: Fallback when the SageMaker SDK's image config is not installed.
_FALLBACK_SKLEARN_ACCOUNTS = {"us-east-1": "683313688378", "us-east-2": "257758044811", "us-west-2": "246618743249", "eu-west-1": "141502667606"}

TERMINAL = ("Succeeded", "Failed", "Stopped")


class ExecutionError(StsmonError):
    """The execution cannot start (bad parameter, unsupported image or step)."""

    exit_code = 2


class StepFailed(Exception):
    """Raised inside a step runner: the step failed with ``reason`` (for people)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _stamp(moment: datetime) -> str:
    """Times in execution records: ISO-8601 with milliseconds and offset, as before."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def execution_time_value(moment: datetime) -> str:
    """``Execution.StartDateTime`` / ``CurrentDateTime`` as a step receives them: ISO-8601 UTC with
    milliseconds and ``Z`` (``2033-05-17T12:30:00.000Z``), the form of SageMaker's timestamps.

    SageMaker does not document the string; processing_scripts/monitor.py parses
    this form and epoch seconds (what the SageMaker SDK's local mode passes).
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _rand(n: int) -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=n))


# -- images ----------------------------------------------------------------------


def _sklearn_accounts() -> tuple[dict[str, str], list[str]]:
    """region -> account of the scikit-learn image, and the known versions."""
    spec = importlib.util.find_spec("sagemaker")
    if spec and spec.submodule_search_locations:
        for base in spec.submodule_search_locations:
            path = Path(base) / "core" / "image_uri_config" / "sklearn.json"
            if path.is_file():
                data = json.loads(path.read_text())
                section = data.get("training") or data.get("inference") or data
                versions = section.get("versions", {})
                accounts: dict[str, str] = {}
                for v in versions.values():
                    accounts.update(v.get("registries", {}))
                return accounts, list(versions)
    return dict(_FALLBACK_SKLEARN_ACCOUNTS), ["1.9-0"]


def check_image(image: str, where: str) -> None:
    """Refuse any image but the SageMaker scikit-learn image of the local
    scikit-learn version (which this interpreter stands in for)."""
    m = _IMAGE_RE.match(image or "")
    if not m or m.group(3) != SKLEARN_REPOSITORY:
        raise ExecutionError(
            f"{where}: image {image!r} cannot run locally; only the SageMaker scikit-learn image "
            f"({SKLEARN_REPOSITORY}) maps to this machine's Python"
        )
    account, region, _, tag = m.groups()
    accounts, _versions = _sklearn_accounts()
    if accounts.get(region) != account:
        raise ExecutionError(
            f"{where}: image {image!r}: account {account} does not publish {SKLEARN_REPOSITORY} in {region} "
            f"(expected {accounts.get(region, 'none known')})"
        )
    version = (tag or "").split("-cpu")[0].split("-py")[0]
    try:
        import sklearn

        local = ".".join(sklearn.__version__.split(".")[:2])
    except ImportError:  # pragma: no cover - sklearn is a runtime dependency
        local = "?"
    if version.split("-")[0] != local:
        raise ExecutionError(
            f"{where}: image {image!r} runs scikit-learn {version.split('-')[0]}, but this machine has "
            f"scikit-learn {local}: use the {local.replace('.', '-', 1)}-x image or install that scikit-learn"
        )


# -- expressions -------------------------------------------------------------------


_PATH_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def parse_path(path: str) -> list[str | int]:
    """``a.b[0]['c']`` -> ``["a", "b", 0, "c"]``."""
    tokens: list[str | int] = []
    pos = 0
    while pos < len(path):
        m = _PATH_TOKEN.match(path, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot parse path {path!r} at {path[pos:]!r}")
        name, index, quoted1, quoted2 = m.groups()
        if name is not None:
            tokens.append(name)
        elif index is not None:
            tokens.append(int(index))
        else:
            tokens.append(quoted1 if quoted1 is not None else quoted2)
        pos = m.end()
    return tokens


def walk_path(data: Any, tokens: list[str | int], where: str) -> Any:
    """Follow ``tokens`` into ``data``. A string index into a list picks the
    element whose ``*Name`` field equals it (``Outputs['train']``)."""
    current = data
    for i, tok in enumerate(tokens):
        shown = where + "".join(f".{t}" if isinstance(t, str) else f"[{t}]" for t in tokens[: i + 1])
        if isinstance(current, list):
            if isinstance(tok, int):
                if not 0 <= tok < len(current):
                    raise StepFailed(f"{shown}: index out of range")
                current = current[tok]
                continue
            match = [e for e in current if isinstance(e, dict) and any(k.endswith("Name") and v == tok for k, v in e.items())]
            if not match:
                raise StepFailed(f"{shown}: no element named {tok!r}")
            current = match[0]
        elif isinstance(current, dict):
            if tok not in current:
                raise StepFailed(f"{shown}: not found")
            current = current[tok]
        else:
            raise StepFailed(f"{shown}: not found")
    return current


# -- the execution -------------------------------------------------------------------


@dataclass
class _Job:
    """A subprocess the executor may have to stop."""

    proc: subprocess.Popen[bytes] | None = None


def executions_dir(state: StateDir, pipeline: str) -> Path:
    return state.executions / pipeline


class Execution:
    """One pipeline execution. Use :func:`start_execution`."""

    def __init__(
        self,
        state: StateDir,
        pipeline: dict[str, Any],
        parameters: dict[str, Any],
        *,
        display_name: str | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        max_parallel: int | None = None,
        execution_id: str | None = None,
        clock: Clock,
    ) -> None:
        self.state = state
        self.clock = clock
        self.pipeline = pipeline
        self.definition = pipeline["PipelineDefinition"]
        self.env = LocalEnvironment(account=pipeline.get("Account", "000000000000"), region=pipeline.get("Region", "us-east-1"))
        self.name = pipeline["PipelineName"]
        self.id = execution_id or _rand(12)
        self.arn = f"{pipeline['PipelineArn']}/execution/{self.id}"
        self.folder = executions_dir(state, self.name) / self.id
        self.on_event = on_event or (lambda kind, data: None)
        self.steps = collect_steps(self.definition)
        self.parameters = parameters
        configured = (pipeline.get("ParallelismConfiguration") or {}).get("MaxParallelExecutionSteps")
        self.max_parallel = max_parallel or configured or os.cpu_count() or 2
        self.lock = threading.RLock()
        self.stop_event = threading.Event()
        self.jobs: dict[str, _Job] = {}
        self.job_endpoint: JobEndpoint | None = None  # the jobs' AWS endpoint, while run() runs
        self.properties: dict[str, dict[str, Any]] = {}
        self.start_time = clock.now()
        self.record: dict[str, Any] = {
            "PipelineName": self.name,
            "PipelineArn": pipeline["PipelineArn"],
            "PipelineExecutionId": self.id,
            "PipelineExecutionArn": self.arn,
            "PipelineExecutionDisplayName": display_name or f"execution-{self.id}",
            "PipelineExecutionStatus": "Executing",
            "CreationTime": self._now(),
            "LastModifiedTime": self._now(),
            "Parameters": [{"Name": k, "Value": _param_str(v)} for k, v in parameters.items()],
            "Executor": supervisor.ProcessRef.current().to_json(),
            "Steps": [],
            "NotExecuted": [],
        }

    # -- records ----------------------------------------------------------

    def _now(self) -> str:
        return _stamp(self.clock.now())

    def _save(self) -> None:
        with self.lock:
            self.record["LastModifiedTime"] = self._now()
            write_json_atomic(self.folder / "execution.json", self.record)

    def _step_record(self, name: str) -> dict[str, Any]:
        for rec in self.record["Steps"]:
            if rec["StepName"] == name:
                return rec
        spec = self.steps[name]
        rec = {
            "StepName": name,
            "StepDisplayName": spec.raw.get("DisplayName", name),
            "StepType": spec.type,
            "StepStatus": "Starting",
            "StartTime": self._now(),
            "Metadata": {},
        }
        self.record["Steps"].append(rec)
        return rec

    def _set_step(self, name: str, **fields: Any) -> None:
        with self.lock:
            rec = self._step_record(name)
            rec.update(fields)
            if fields.get("StepStatus") in TERMINAL:
                rec["EndTime"] = self._now()
            self._save()
            self.on_event("step", dict(rec))

    # -- expressions ------------------------------------------------------

    def evaluate(self, value: Any, where: str) -> Any:
        """Evaluate pipeline expressions in ``value``."""
        if isinstance(value, dict):
            if len(value) == 1:
                (key, arg), = value.items()
                if key == "Get" and isinstance(arg, str):
                    return self._get(arg, where)
                if key == "Std:Join":
                    values = [self.evaluate(v, where) for v in arg.get("Values", [])]
                    return str(arg.get("On", "")).join(_param_str(v) for v in values)
                if key == "Std:JsonGet":
                    return self._json_get(arg, where)
                if key.startswith("Std:"):
                    raise StepFailed(f"{where}: unsupported function {key}")
            return {k: self.evaluate(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.evaluate(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    def _get(self, path: str, where: str) -> Any:
        head, _, rest = path.partition(".")
        if head == "Parameters":
            if rest not in self.parameters:
                raise StepFailed(f"{where}: no pipeline parameter {rest!r}")
            return self.parameters[rest]
        if head == "Execution":
            variables = {
                "PipelineExecutionId": self.id,
                "PipelineExecutionArn": self.arn,
                "PipelineName": self.name,
                "PipelineArn": self.pipeline["PipelineArn"],
                "StartDateTime": execution_time_value(self.start_time),
                "CurrentDateTime": execution_time_value(self.clock.now()),
            }
            if rest not in variables:
                raise StepFailed(f"{where}: execution variable {rest!r} is not available locally")
            return variables[rest]
        if head == "Steps":
            step, _, prop_path = rest.partition(".")
            props = self.properties.get(step)
            if props is None:
                raise StepFailed(f"{where}: step {step} has not succeeded, its properties are not available")
            tokens = parse_path(prop_path) if prop_path else []
            return walk_path(props, tokens, f"Steps.{step}")
        raise StepFailed(f"{where}: cannot evaluate {{'Get': {path!r}}}")

    def _json_get(self, arg: dict[str, Any], where: str) -> Any:
        if "PropertyFile" in arg:
            ref = arg["PropertyFile"]
            ref_path = ref.get("Get") if isinstance(ref, dict) else None
            m = re.match(r"^Steps\.([^.]+)\.PropertyFiles\.(.+)$", ref_path or "")
            if not m:
                raise StepFailed(f"{where}: Std:JsonGet PropertyFile must be Get Steps.<step>.PropertyFiles.<name>")
            step, file_name = m.groups()
            spec = self.steps.get(step)
            files = {f.get("PropertyFileName"): f for f in (spec.raw.get("PropertyFiles") or [])} if spec else {}
            if file_name not in files:
                raise StepFailed(f"{where}: step {step} declares no property file {file_name!r}")
            pf = files[file_name]
            output_uri = self._get(
                f"Steps.{step}.ProcessingOutputConfig.Outputs['{pf['OutputName']}'].S3Output.S3Uri", where
            )
            uri = output_uri.rstrip("/") + "/" + pf["FilePath"].lstrip("/")
        elif "S3Uri" in arg:
            uri = self.evaluate(arg["S3Uri"], where)
        else:
            raise StepFailed(f"{where}: Std:JsonGet needs PropertyFile or S3Uri")
        path = self.state.s3_path(uri)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StepFailed(f"{where}: Std:JsonGet: {uri} does not exist") from None
        except ValueError as exc:
            raise StepFailed(f"{where}: Std:JsonGet: {uri} is not JSON: {exc}") from None
        try:
            return walk_path(data, parse_path(arg.get("Path", "")), uri)
        except (StepFailed, ValueError) as exc:
            raise StepFailed(f"{where}: Std:JsonGet path {arg.get('Path')!r} in {uri}: {exc}") from None

    # -- scheduling ------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.folder / "definition.json", self.definition)
        self._save()
        self.on_event("execution", dict(self.record))
        status: dict[str, str] = {name: "Pending" for name in self.steps}
        branch_taken: dict[str, str] = {}
        fail_reached = False
        futures: dict[cf.Future[None], str] = {}
        pool = cf.ThreadPoolExecutor(max_workers=self.max_parallel, thread_name_prefix="step")
        self.job_endpoint = JobEndpoint(self.state, region=self.env.region, source=self.id).start()
        try:
            while True:
                if not self.stop_event.is_set() and not fail_reached:
                    for name, spec in self.steps.items():
                        if status[name] != "Pending" or len(futures) >= self.max_parallel:
                            continue
                        verdict = self._readiness(spec, status, branch_taken)
                        if verdict == "ready":
                            status[name] = "Executing"
                            self._set_step(name, StepStatus="Executing", StartTime=self._now())
                            futures[pool.submit(self._run_step, spec)] = name
                        elif verdict == "never":
                            status[name] = "NotExecuted"
                if not futures:
                    break
                done, _ = cf.wait(list(futures), return_when=cf.FIRST_COMPLETED, timeout=0.5)
                for fut in done:
                    name = futures.pop(fut)
                    outcome = fut.result()
                    status[name] = outcome
                    spec = self.steps[name]
                    if outcome == "Succeeded" and spec.type == "Condition":
                        branch_taken[name] = "if" if self.properties[name]["Outcome"] else "else"
                    if spec.type == "Fail" and outcome == "Failed":
                        fail_reached = True
        except KeyboardInterrupt:
            self.stop()
            for fut, name in list(futures.items()):
                with contextlib.suppress(Exception):
                    status[name] = fut.result(timeout=30)
            raise
        finally:
            pool.shutdown(wait=True)
            self.job_endpoint.stop()
            self._finish(status)
        return self.record

    def _readiness(self, spec: StepSpec, status: dict[str, str], branch_taken: dict[str, str]) -> str:
        if spec.branch is not None:
            cond, label = spec.branch
            if status[cond] in ("Failed", "Stopped", "NotExecuted"):
                return "never"
            if cond in branch_taken and branch_taken[cond] != label:
                return "never"
        for dep in spec.depends_on:
            if status[dep] in ("Failed", "Stopped", "NotExecuted"):
                return "never"
            if status[dep] != "Succeeded":
                return "wait"
        if spec.branch is not None and spec.branch[0] not in branch_taken:
            return "wait"
        return "ready"

    def _finish(self, status: dict[str, str]) -> None:
        with self.lock:
            failed = [r for r in self.record["Steps"] if r["StepStatus"] == "Failed"]
            stopped = self.stop_event.is_set() or any(s == "Stopped" for s in status.values())
            self.record["NotExecuted"] = [n for n, s in status.items() if s in ("Pending", "NotExecuted")]
            if stopped:
                self.record["PipelineExecutionStatus"] = "Stopped"
            elif failed:
                self.record["PipelineExecutionStatus"] = "Failed"
                first = failed[0]
                if first["StepType"] == "Fail":
                    self.record["FailureReason"] = first.get("FailureReason", "")
                else:
                    self.record["FailureReason"] = f"Step {first['StepName']} failed: {first.get('FailureReason', '')}"
            else:
                self.record["PipelineExecutionStatus"] = "Succeeded"
            self.record["EndTime"] = self._now()
            self.record.pop("Executor", None)
            self._save()
        self.on_event("execution", dict(self.record))

    def stop(self) -> None:
        """Stop: no new steps; running jobs get SIGTERM, then SIGKILL after 10 s."""
        self.stop_event.set()
        for job in list(self.jobs.values()):
            supervisor.stop_child(job.proc)

    # -- steps -------------------------------------------------------------

    def _run_step(self, spec: StepSpec) -> str:
        runner = {
            "Processing": self._processing,
            "Training": self._training,
            "Condition": self._condition,
            "RegisterModel": self._register_model,
            "Fail": self._fail,
            "Model": self._model,
        }[spec.type]
        try:
            props, metadata = runner(spec)
        except StepFailed as exc:
            if self.stop_event.is_set():
                self._set_step(spec.name, StepStatus="Stopped", FailureReason="stopped by the user")
                return "Stopped"
            self._set_step(spec.name, StepStatus="Failed", FailureReason=exc.reason[:FAILURE_REASON_MAX])
            return "Failed"
        except StsmonError as exc:
            self._set_step(spec.name, StepStatus="Failed", FailureReason=exc.message[:FAILURE_REASON_MAX])
            return "Failed"
        except Exception as exc:  # a bug in the executor: keep the record honest, then surface it
            self._set_step(spec.name, StepStatus="Failed", FailureReason=f"internal error: {type(exc).__name__}: {exc}"[:FAILURE_REASON_MAX])
            raise
        with self.lock:
            self.properties[spec.name] = props
            rec = self._step_record(spec.name)
            rec["Properties"] = _jsonable(props)
        self._set_step(spec.name, StepStatus="Succeeded", Metadata=metadata)
        return "Succeeded"

    def _job_folder(self, spec: StepSpec) -> Path:
        folder = self.folder / "steps" / spec.name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        return folder

    def _job_name(self, spec: StepSpec) -> str:
        step = re.sub(r"[^a-zA-Z0-9-]", "-", spec.name)
        return f"pipelines-{self.id}-{step}"[:52] + "-" + _rand(10).upper()[:10]

    def _processing(self, spec: StepSpec) -> tuple[dict[str, Any], dict[str, Any]]:
        args = self.evaluate(spec.arguments, f"Steps.{spec.name}.Arguments")
        app = args.get("AppSpecification") or {}
        check_image(app.get("ImageUri", ""), f"step {spec.name}")
        job_name = self._job_name(spec)
        folder = self._job_folder(spec)
        root = folder / "opt" / "ml"
        # The job's request first: once the step names its job, DescribeProcessingJob answers for it.
        (root / "config").mkdir(parents=True, exist_ok=True)
        write_json_atomic(root / "config" / "processingjobconfig.json", {**args, "ProcessingJobName": job_name})
        self._set_step(spec.name, StepStatus="Executing", Metadata={"ProcessingJob": {"Arn": self.env.arn("sagemaker", f"processing-job/{job_name.lower()}")}}, LogDir=str(folder))
        for inp in args.get("ProcessingInputs") or []:
            s3 = inp.get("S3Input")
            if s3 is None:
                raise StepFailed(f"input {inp.get('InputName')}: only S3Input is supported locally")
            if s3.get("S3DataType", "S3Prefix") != "S3Prefix":
                raise StepFailed(f"input {inp.get('InputName')}: S3DataType {s3.get('S3DataType')} is not supported locally")
            if s3.get("S3CompressionType", "None") != "None":
                raise StepFailed(f"input {inp.get('InputName')}: S3CompressionType {s3['S3CompressionType']} is not supported locally")
            self._download(s3["S3Uri"], remap_path(s3["LocalPath"], root), inp.get("InputName", ""))
        outputs = (args.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        for out in outputs:
            if "S3Output" not in out:
                raise StepFailed(f"output {out.get('OutputName')}: only S3Output is supported locally")
            remap_path(out["S3Output"]["LocalPath"], root).mkdir(parents=True, exist_ok=True)
        config_dir = root / "config"
        write_json_atomic(config_dir / "resourceconfig.json", {"current_host": "algo-1", "hosts": ["algo-1"]})
        entrypoint = list(app.get("ContainerEntrypoint") or [])
        if not entrypoint:
            raise StepFailed("AppSpecification.ContainerEntrypoint is empty: the local runtime needs the command to run")
        command = [remap(str(a), root) for a in entrypoint + list(app.get("ContainerArguments") or [])]
        command = self._local_command(command, root)
        env = {k: remap(_param_str(v), root) for k, v in (args.get("Environment") or {}).items()}
        message_file = root / "output" / "message"
        try:
            self._exec(spec, command, env, cwd=folder, log_dir=folder, failure_file=message_file)
        except StepFailed as exc:
            # Outputs are uploaded only when the job completes (EndOfJob); the job's ExitMessage
            # (the first 1 KB of /opt/ml/output/message) is kept with the step, as DescribeProcessingJob shows it.
            message = _exit_message(message_file)
            if message:
                with self.lock:  # saved with the Failed status that follows
                    self._step_record(spec.name)["ExitMessage"] = message
            raise StepFailed(exc.reason) from None
        for out in outputs:
            self._upload(remap_path(out["S3Output"]["LocalPath"], root), out["S3Output"]["S3Uri"])
        props = dict(args)
        props.update(
            ProcessingJobName=job_name,
            ProcessingJobArn=self.env.arn("sagemaker", f"processing-job/{job_name.lower()}"),
            ProcessingJobStatus="Completed",
        )
        message = _exit_message(message_file)
        if message:
            props["ExitMessage"] = message
        return props, {"ProcessingJob": {"Arn": props["ProcessingJobArn"]}}

    def _training(self, spec: StepSpec) -> tuple[dict[str, Any], dict[str, Any]]:
        args = self.evaluate(spec.arguments, f"Steps.{spec.name}.Arguments")
        algo = args.get("AlgorithmSpecification") or {}
        check_image(algo.get("TrainingImage", ""), f"step {spec.name}")
        if algo.get("TrainingInputMode", "File") != "File":
            raise StepFailed(f"TrainingInputMode {algo['TrainingInputMode']} is not supported locally (File only)")
        job_name = self._job_name(spec)
        arn = self.env.arn("sagemaker", f"training-job/{job_name.lower()}")
        folder = self._job_folder(spec)
        root = folder / "opt" / "ml"
        self._set_step(spec.name, StepStatus="Executing", Metadata={"TrainingJob": {"Arn": arn}}, LogDir=str(folder))
        hps = {k: _decode_hp(v) for k, v in (args.get("HyperParameters") or {}).items()}
        program = hps.get("sagemaker_program")
        submit = hps.get("sagemaker_submit_directory")
        if not program:
            raise StepFailed("HyperParameters.sagemaker_program is missing: only script mode runs locally")
        channels = []
        for ch in args.get("InputDataConfig") or []:
            src = (ch.get("DataSource") or {}).get("S3DataSource")
            if src is None:
                raise StepFailed(f"channel {ch.get('ChannelName')}: only S3DataSource is supported locally")
            if src.get("S3DataType", "S3Prefix") != "S3Prefix":
                raise StepFailed(f"channel {ch.get('ChannelName')}: S3DataType {src.get('S3DataType')} is not supported locally")
            name = ch["ChannelName"]
            self._download(src["S3Uri"], root / "input" / "data" / name, name)
            channels.append(name)
        code = root / "code"
        code.mkdir(parents=True, exist_ok=True)
        if submit:
            self._stage_code(str(submit), code)
        if not (code / str(program)).is_file():
            raise StepFailed(f"sagemaker_program {program!r} is not in the submitted code ({submit})")
        for sub in ("model", "output/data", "output/intermediate", "input/config"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        user_hps = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
        write_json_atomic(root / "input" / "config" / "hyperparameters.json", {k: json.dumps(v) if not isinstance(v, str) else v for k, v in user_hps.items()})
        write_json_atomic(root / "input" / "config" / "inputdataconfig.json", {c["ChannelName"]: {k: v for k, v in c.items() if k != "DataSource"} for c in args.get("InputDataConfig") or []})
        resource = {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}
        write_json_atomic(root / "input" / "config" / "resourceconfig.json", resource)
        cmd_args: list[str] = []
        for k, v in user_hps.items():
            cmd_args += [f"--{k}", v if isinstance(v, str) else json.dumps(v)]
        env = {k: _param_str(v) for k, v in (args.get("Environment") or {}).items()}
        env.update(self._sm_env(root, channels, hps, user_hps, cmd_args, job_name, str(program), str(submit or "")))
        command = [sys.executable, str(program), *cmd_args]
        self._exec(spec, command, env, cwd=code, log_dir=folder, failure_file=root / "output" / "failure")
        out_path = (args.get("OutputDataConfig") or {}).get("S3OutputPath", "").rstrip("/")
        if not out_path:
            raise StepFailed("OutputDataConfig.S3OutputPath is missing")
        model_uri = f"{out_path}/{job_name}/output/model.tar.gz"
        self._pack(root / "model", model_uri)
        if any((root / "output" / "data").iterdir()):
            self._pack(root / "output" / "data", f"{out_path}/{job_name}/output/output.tar.gz")
        metrics = _final_metrics(algo.get("MetricDefinitions") or [], folder, self._now())
        props = dict(args)
        props.update(
            TrainingJobName=job_name,
            TrainingJobArn=arn,
            TrainingJobStatus="Completed",
            SecondaryStatus="Completed",
            ModelArtifacts={"S3ModelArtifacts": model_uri},
            FinalMetricDataList=metrics,
            HyperParameters=args.get("HyperParameters") or {},
        )
        return props, {"TrainingJob": {"Arn": arn}}

    def _sm_env(self, root: Path, channels: list[str], hps: dict[str, Any], user_hps: dict[str, Any], cmd_args: list[str], job_name: str, program: str, submit: str) -> dict[str, str]:
        env = {
            "SM_MODEL_DIR": str(root / "model"),
            "SM_INPUT_DIR": str(root / "input"),
            "SM_INPUT_CONFIG_DIR": str(root / "input" / "config"),
            "SM_OUTPUT_DIR": str(root / "output"),
            "SM_OUTPUT_DATA_DIR": str(root / "output" / "data"),
            "SM_OUTPUT_INTERMEDIATE_DIR": str(root / "output" / "intermediate"),
            "SM_CHANNELS": json.dumps(channels),
            "SM_HPS": json.dumps(user_hps),
            "SM_HOSTS": json.dumps(["algo-1"]),
            "SM_CURRENT_HOST": "algo-1",
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_NUM_GPUS": "0",
            "SM_NUM_NEURONS": "0",
            "SM_MODULE_NAME": Path(program).stem,
            "SM_USER_ENTRY_POINT": program,
            "SM_MODULE_DIR": submit,
            "SM_USER_ARGS": json.dumps(cmd_args),
            "SM_LOG_LEVEL": str(hps.get("sagemaker_container_log_level", 20)),
            "SM_FRAMEWORK_MODULE": "sagemaker_sklearn_container.training:main",
            "SM_NETWORK_INTERFACE_NAME": "eth0",
            "SM_RESOURCE_CONFIG": json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}),
            "TRAINING_JOB_NAME": job_name,
        }
        for ch in channels:
            env[f"SM_CHANNEL_{ch.upper()}"] = str(root / "input" / "data" / ch)
        for k, v in user_hps.items():
            env[f"SM_HP_{k.upper()}"] = v if isinstance(v, str) else json.dumps(v)
        return env

    def _condition(self, spec: StepSpec) -> tuple[dict[str, Any], dict[str, Any]]:
        conditions = spec.arguments.get("Conditions") or []
        outcome = all(self._condition_value(c, f"Steps.{spec.name}.Conditions[{i}]") for i, c in enumerate(conditions))
        return {"Outcome": outcome}, {"Condition": {"Outcome": "True" if outcome else "False"}}

    def _condition_value(self, cond: dict[str, Any], where: str) -> bool:
        ctype = cond.get("Type")
        if ctype == "Not":
            inner = cond.get("Condition") or cond.get("Expression")
            return not self._condition_value(inner, where)
        if ctype == "Or":
            return any(self._condition_value(c, where) for c in cond.get("Conditions") or [])
        if ctype == "In":
            value = self.evaluate(cond.get("QueryValue"), where)
            return any(_equal(value, self.evaluate(v, where)) for v in cond.get("Values") or [])
        left = self.evaluate(cond.get("LeftValue"), where)
        right = self.evaluate(cond.get("RightValue"), where)
        if ctype == "Equals":
            return _equal(left, right)
        ops = {
            "GreaterThan": lambda a, b: a > b,
            "GreaterThanOrEqualTo": lambda a, b: a >= b,
            "LessThan": lambda a, b: a < b,
            "LessThanOrEqualTo": lambda a, b: a <= b,
        }
        if ctype not in ops:
            raise StepFailed(f"{where}: condition type {ctype!r} is not supported")
        a, b = _comparable(left, right, where)
        return ops[ctype](a, b)

    def _register_model(self, spec: StepSpec) -> tuple[dict[str, Any], dict[str, Any]]:
        args = self.evaluate(spec.arguments, f"Steps.{spec.name}.Arguments")
        args = {k: v for k, v in args.items() if v is not None}
        reg = Registry(self.state.registry_db, env=self.env, clock=self.clock)
        try:
            arn = reg.create_model_package(**args)["ModelPackageArn"]
            package = reg.describe_model_package(ModelPackageName=arn)
        finally:
            reg.close()
        return _jsonable(package), {"RegisterModel": {"Arn": arn}}

    def _model(self, spec: StepSpec) -> tuple[dict[str, Any], dict[str, Any]]:
        args = self.evaluate(spec.arguments, f"Steps.{spec.name}.Arguments")
        name = args.get("ModelName") or f"pipelines-{self.id}-{spec.name}"[:63]
        arn = self.env.arn("sagemaker", f"model/{name.lower()}")
        props = {**args, "ModelName": name, "ModelArn": arn}
        return props, {"Model": {"Arn": arn}}

    def _fail(self, spec: StepSpec) -> tuple[dict[str, Any], dict[str, Any]]:
        message = self.evaluate(spec.arguments.get("ErrorMessage", ""), f"Steps.{spec.name}.ErrorMessage")
        self._set_step(spec.name, Metadata={"Fail": {"ErrorMessage": _param_str(message)}})
        raise StepFailed(_param_str(message))

    # -- processes and files ---------------------------------------------

    def _local_command(self, command: list[str], root: Path) -> list[str]:
        exe = command[0]
        if exe in PYTHON_COMMANDS:
            return [sys.executable, *command[1:]]
        if exe in SHELL_COMMANDS:
            # Shell entrypoints (e.g. the SDK's runproc.sh) were staged from inputs:
            # their /opt/ml paths are remapped too.
            for arg in command[1:]:
                path = Path(arg)
                if path.is_file() and root in path.parents:
                    path.write_text(remap(path.read_text(encoding="utf-8"), root), encoding="utf-8")
            return command
        raise StepFailed(f"entrypoint {exe!r} cannot run locally (python or a shell script only)")

    def _exec(self, spec: StepSpec, command: list[str], env: dict[str, str], *, cwd: Path, log_dir: Path, failure_file: Path | None = None) -> None:
        if self.stop_event.is_set():
            raise StepFailed("stopped by the user")
        full_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SM_", "AWS_")) and k not in ("PYTHONHOME",)
        }
        full_env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), full_env.get("PATH", "")])
        full_env["PYTHONUNBUFFERED"] = "1"
        # What the container gets from SageMaker: its region (AWS_REGION is set in processing
        # containers, aws/sagemaker-spark-container#74; our scripts take the region as an argument
        # anyway) and its role's credentials and AWS endpoints (here: the local job endpoint).
        full_env["AWS_REGION"] = full_env["AWS_DEFAULT_REGION"] = self.env.region
        if self.job_endpoint is not None:
            full_env.update(self.job_endpoint.environment())
        full_env.update(env)
        stdout_path, stderr_path = log_dir / "stdout.log", log_dir / "stderr.log"
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            out.write(f"$ {' '.join(command)}\n".encode())
            out.flush()
            job = _Job()
            self.jobs[spec.name] = job
            try:
                job.proc = subprocess.Popen(
                    command, cwd=cwd, env=full_env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                    preexec_fn=supervisor.child_dies_with_parent(),
                )
                if self.stop_event.is_set():  # stop() ran while the process was starting
                    supervisor.stop_child(job.proc)
                code = job.proc.wait()
            finally:
                self.jobs.pop(spec.name, None)
        if self.stop_event.is_set():
            raise StepFailed("stopped by the user")
        if code != 0:
            reason = ""
            if failure_file is not None and failure_file.is_file():
                reason = failure_file.read_text(encoding="utf-8", errors="replace").strip()
            if not reason:
                reason = _tail(stderr_path) or f"exit code {code}"
            raise StepFailed(f"{reason} (exit code {code}; logs: {log_dir})")

    def _download(self, uri: str, dest: Path, label: str) -> None:
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            raise StepFailed(f"input {label}: {uri!r} is not an s3:// URI")
        src = self.state.s3_path(uri)
        dest.mkdir(parents=True, exist_ok=True)
        if src.is_file():
            shutil.copy2(src, dest / src.name)
        elif src.is_dir() and any(p.is_file() for p in src.rglob("*")):
            shutil.copytree(src, dest, dirs_exist_ok=True)
        else:
            raise StepFailed(f"input {label}: no S3 objects found under {uri} (local path {src})")

    def _upload(self, src: Path, uri: str) -> None:
        dest = self.state.s3_path(uri)
        for path in sorted(src.rglob("*")):
            if path.is_file():
                target = dest / path.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.{_rand(6)}.tmp")
                shutil.copy2(path, tmp)
                os.replace(tmp, target)

    def _stage_code(self, submit: str, code: Path) -> None:
        if not submit.startswith("s3://"):
            raise StepFailed(f"sagemaker_submit_directory {submit!r} is not an s3:// URI")
        src = self.state.s3_path(submit)
        if src.is_file() and (src.name.endswith(".tar.gz") or tarfile.is_tarfile(src)):
            with tarfile.open(src) as tar:
                tar.extractall(code, filter="data")
        elif src.is_dir():
            shutil.copytree(src, code, dirs_exist_ok=True)
        else:
            raise StepFailed(f"sagemaker_submit_directory {submit} does not exist locally ({src})")

    def _pack(self, folder: Path, uri: str) -> None:
        dest = self.state.s3_path(uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{_rand(6)}.tmp")
        with tarfile.open(tmp, "w:gz") as tar:
            for path in sorted(folder.rglob("*")):
                tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
        os.replace(tmp, dest)


# -- helpers -------------------------------------------------------------------------


def remap(text: str, root: Path) -> str:
    """``/opt/ml/...`` -> ``{root}/...`` wherever it appears as a path in ``text``."""
    return _OPT_ML.sub(lambda m: str(root), text)


def remap_path(path: str, root: Path) -> Path:
    mapped = remap(path, root)
    if mapped == path:
        raise StepFailed(f"container path {path!r} is outside /opt/ml, which is all the local runtime maps")
    return Path(mapped)


def _decode_hp(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _param_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _equal(a: Any, b: Any) -> bool:
    try:
        x, y = _comparable(a, b, "")
        return x == y
    except StepFailed:
        return _param_str(a) == _param_str(b)


def _comparable(a: Any, b: Any, where: str) -> tuple[Any, Any]:
    if isinstance(a, str) and isinstance(b, str):
        try:
            return float(a), float(b)
        except ValueError:
            return a, b
    try:
        return float(a), float(b)
    except (TypeError, ValueError):
        raise StepFailed(f"{where}: cannot compare {a!r} with {b!r}") from None


def _exit_message(path: Path) -> str:
    """A processing job's ExitMessage: the first 1 KB of /opt/ml/output/message, UTF-8
    (docs.aws.amazon.com/sagemaker/latest/dg/byoc-metadata.html)."""
    try:
        data = path.read_bytes()[:1024]
    except OSError:
        return ""
    return data.decode("utf-8", "replace").strip()


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(kept)[-FAILURE_REASON_MAX:]


def _final_metrics(definitions: list[dict[str, Any]], log_dir: Path, stamp: str) -> list[dict[str, Any]]:
    if not definitions:
        return []
    text = ""
    for name in ("stdout.log", "stderr.log"):
        with contextlib.suppress(OSError):
            text += (log_dir / name).read_text(encoding="utf-8", errors="replace")
    out = []
    for d in definitions:
        matches = re.findall(d["Regex"], text)
        if matches:
            value = matches[-1][0] if isinstance(matches[-1], tuple) else matches[-1]
            with contextlib.suppress(ValueError):
                out.append({"MetricName": d["Name"], "Value": float(value), "Timestamp": stamp})
    return out


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: o.isoformat() if hasattr(o, "isoformat") else str(o)))


# -- public API ----------------------------------------------------------------------


def resolve_parameters(definition: dict[str, Any], overrides: dict[str, str] | None) -> dict[str, Any]:
    """Pipeline parameters: defaults overridden by ``overrides`` (strings, as on
    the command line), converted to each parameter's type."""
    overrides = dict(overrides or {})
    declared = {p["Name"]: p for p in definition.get("Parameters") or []}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise UsageError(
            f"unknown pipeline parameter(s): {', '.join(unknown)} (the pipeline declares: {', '.join(declared) or 'none'})"
        )
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, spec in declared.items():
        ptype = spec.get("Type", "String")
        if name in overrides:
            raw: Any = overrides[name]
        elif "DefaultValue" in spec:
            raw = spec["DefaultValue"]
        else:
            problems.append(f"{name}: no default, give --parameter {name}=VALUE")
            continue
        try:
            values[name] = _convert(raw, ptype)
        except ValueError:
            problems.append(f"{name}={raw!r}: not a valid {ptype}")
            continue
        enum = spec.get("EnumValues")
        if enum and values[name] not in enum:
            problems.append(f"{name}={raw!r}: must be one of {', '.join(map(str, enum))}")
    if problems:
        raise UsageError("bad pipeline parameters: " + "; ".join(problems))
    return values


def _convert(raw: Any, ptype: str) -> Any:
    if ptype == "Integer":
        if isinstance(raw, bool):
            raise ValueError
        return int(raw)
    if ptype == "Float":
        if isinstance(raw, bool):
            raise ValueError
        return float(raw)
    if ptype == "Boolean":
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("true", "false"):
            return str(raw).lower() == "true"
        raise ValueError
    return str(raw)


def preflight(definition: dict[str, Any], where: str = "pipeline") -> None:
    """Everything checkable before an execution starts: step types, images."""
    problems = definition_problems(definition)
    if problems:
        raise ExecutionError(f"{where} cannot run locally: " + "; ".join(problems))
    for spec in collect_steps(definition).values():
        args = spec.arguments
        image = None
        if spec.type == "Processing":
            image = (args.get("AppSpecification") or {}).get("ImageUri")
        elif spec.type == "Training":
            image = (args.get("AlgorithmSpecification") or {}).get("TrainingImage")
        if isinstance(image, str):  # an expression is checked when the step runs
            check_image(image, f"{where}: step {spec.name}")


def start_execution(
    state: StateDir,
    pipeline_name: str,
    parameters: dict[str, str] | None = None,
    *,
    display_name: str | None = None,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
    max_parallel: int | None = None,
    clock: Clock,
) -> dict[str, Any]:
    """Run one execution of a locally deployed pipeline to the end; returns the
    execution record (``PipelineExecutionStatus`` Succeeded/Failed/Stopped).

    Every time in it (creation, step times, ``Execution.StartDateTime`` and
    ``CurrentDateTime``) comes from ``clock``.

    ``on_event(kind, record)`` is called with ``"execution"`` (started,
    finished) and ``"step"`` (each status change). Ctrl-C stops the running
    jobs, records Stopped and re-raises KeyboardInterrupt.
    Raises :class:`ExecutionError`/:class:`UsageError` before anything runs
    when the pipeline or the parameters are unusable.
    """
    reconcile(state, pipeline_name)
    pipeline = load_pipeline(state, pipeline_name)
    preflight(pipeline["PipelineDefinition"], f"pipeline {pipeline_name}")
    values = resolve_parameters(pipeline["PipelineDefinition"], parameters)
    execution = Execution(state, pipeline, values, display_name=display_name, on_event=on_event,
                          max_parallel=max_parallel, clock=clock)
    previous = None
    if threading.current_thread() is threading.main_thread():
        def on_term(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        return execution.run()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def list_executions(state: StateDir, pipeline_name: str) -> list[dict[str, Any]]:
    """Every recorded execution of a pipeline, newest first (stale ones reconciled)."""
    reconcile(state, pipeline_name)
    folder = executions_dir(state, pipeline_name)
    records = []
    if folder.is_dir():
        for path in folder.glob("*/execution.json"):
            with contextlib.suppress(OSError, ValueError):
                records.append(json.loads(path.read_text(encoding="utf-8")))
    records.sort(key=lambda r: r.get("CreationTime", ""), reverse=True)
    return records


def describe_execution(state: StateDir, pipeline_name: str, execution_id: str) -> dict[str, Any]:
    reconcile(state, pipeline_name)
    path = executions_dir(state, pipeline_name) / execution_id / "execution.json"
    if not path.is_file():
        raise NotDeployedError(f"no execution {execution_id} of pipeline {pipeline_name} in {state.root}")
    return json.loads(path.read_text(encoding="utf-8"))


def reconcile(state: StateDir, pipeline_name: str) -> list[str]:
    """Mark executions whose executor process is gone as Failed. Returns their ids."""
    folder = executions_dir(state, pipeline_name)
    fixed: list[str] = []
    if not folder.is_dir():
        return fixed
    for path in folder.glob("*/execution.json"):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if record.get("PipelineExecutionStatus") != "Executing":
            continue
        if supervisor.is_alive(_executor_of(record)):
            continue
        reason = "the executor process ended before the execution finished (killed or crashed)"
        # It ended some time after its last record: that time is the best end time known (no clock needed).
        ended = record.get("LastModifiedTime") or record.get("CreationTime")
        for step in record.get("Steps", []):
            if step.get("StepStatus") not in TERMINAL:
                step["StepStatus"] = "Failed"
                step["FailureReason"] = reason
                step["EndTime"] = ended
        record["PipelineExecutionStatus"] = "Failed"
        record["FailureReason"] = reason
        record["EndTime"] = ended
        record.pop("Executor", None)
        record.pop("ExecutorPid", None)
        record.pop("ExecutorStartTime", None)
        write_json_atomic(path, record)
        fixed.append(record.get("PipelineExecutionId", path.parent.name))
    return fixed


def _executor_of(record: dict[str, Any]) -> supervisor.ProcessRef | None:
    """The process running an execution (``Executor``; records written before it was kept: ``ExecutorPid``)."""
    if "Executor" in record:
        return supervisor.ProcessRef.from_json(record["Executor"])
    return supervisor.ProcessRef.from_json({"pid": record.get("ExecutorPid")})


def stop_running_executions(state: StateDir, pipeline_name: str, timeout: float = 60.0) -> list[str]:
    """Ask the executors of running executions to stop (SIGTERM) and wait until
    each records a terminal status (or its process is gone). Returns their ids."""
    import time

    reconcile(state, pipeline_name)
    running = [r for r in list_executions(state, pipeline_name) if r.get("PipelineExecutionStatus") == "Executing"]
    for record in running:
        supervisor.send_signal(_executor_of(record), signal.SIGTERM)
    deadline = time.monotonic() + timeout
    pending = {r["PipelineExecutionId"] for r in running}
    while pending and time.monotonic() < deadline:
        time.sleep(0.2)
        reconcile(state, pipeline_name)
        for execution_id in list(pending):
            rec = describe_execution(state, pipeline_name, execution_id)
            if rec.get("PipelineExecutionStatus") in TERMINAL:
                pending.discard(execution_id)
    return [r["PipelineExecutionId"] for r in running]
