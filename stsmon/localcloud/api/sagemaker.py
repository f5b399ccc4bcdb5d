"""SageMaker over the local runtime's state, with boto3's method names and shapes.

Pipelines (the records ``stsmon deploy`` wrote, the executor's execution
records), model packages (the local registry) and endpoints (the local
servers' records):

- ``start_pipeline_execution`` starts the execution in a background thread of
  this process and returns its ARN at once, recorded ``Executing`` — as
  SageMaker does — so a command waits for it with the same
  ``describe_pipeline_execution`` / ``list_pipeline_execution_steps`` loop on
  both targets. The execution's times come from the runtime's clock. Its end
  is reported only after the local runtime has done what the cloud does when
  an execution ends (SageMaker's pipeline metrics, CloudWatch's alarm
  evaluation: :func:`~stsmon.localcloud.api.cloudwatch.record_pipeline_execution`).
- ``stop_pipeline_execution`` stops it (running jobs get SIGTERM; the
  execution records ``Stopped``); an execution another process runs gets
  SIGTERM, as ``stsmon cleanup`` sends it. Closing the client (the command's
  end, Ctrl-C, SIGTERM) stops what it started and has not finished: as
  before, Ctrl-C records ``Stopped``, and nothing runs on once the command
  is gone.
- Refusals are SageMaker's errors: an unknown pipeline ``ResourceNotFound``,
  bad parameters or a definition the local executor cannot run
  ``ValidationException`` with the reason.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ...clients.errors import client_error
from ...clock import Clock
from ...errors import StsmonError
from ...state import StateDir
from .shapes import conform_output

#: Step metadata members ListPipelineExecutionSteps returns (what the executor records for its step types).
_METADATA = {"ProcessingJob": ("Arn",), "TrainingJob": ("Arn",), "RegisterModel": ("Arn",), "Model": ("Arn",),
             "Condition": ("Outcome",), "Fail": ("ErrorMessage",)}
#: Processing job status from its step's status.
_JOB_STATUS = {"Starting": "InProgress", "Executing": "InProgress", "Succeeded": "Completed", "Failed": "Failed",
               "Stopped": "Stopped", "Stopping": "Stopping"}
#: DescribeProcessingJob members the job's request (processingjobconfig.json) carries.
_JOB_REQUEST = ("ProcessingInputs", "ProcessingOutputConfig", "ProcessingResources", "StoppingCondition",
                "AppSpecification", "Environment", "NetworkConfig", "RoleArn", "ExperimentConfig")
#: Endpoint status from the local server's record.
_ENDPOINT_STATUS = {"InService": "InService", "Creating": "Creating", "Updating": "Updating", "Failed": "Failed"}


_LAST = datetime.max.replace(tzinfo=UTC)


def _time(text: Any) -> datetime | None:
    if not text:
        return None
    from ...monitoring.metrics import parse_time

    return parse_time(str(text))


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value not in (None, "", [], {}):
        out[key] = value


class _Running:
    """An execution this process runs: its thread, and whether the runtime is done with it."""

    def __init__(self, execution: Any, thread: threading.Thread) -> None:
        self.execution = execution
        self.thread = thread
        self.settled = threading.Event()
        self.error: BaseException | None = None


class LocalSageMaker:
    def __init__(self, state: StateDir, clock: Clock, region: str) -> None:
        self.state = state
        self.clock = clock
        self.region = region
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._previous_sigterm: Any = None

    # -- pipelines and executions ----------------------------------------------------

    def _pipeline(self, operation: str, name: str) -> dict[str, Any]:
        from ...errors import NotDeployedError
        from ..pipelines import load_pipeline

        name = name.rsplit("/", 1)[-1] if name.startswith("arn:") else name
        try:
            return load_pipeline(self.state, name)
        except NotDeployedError:
            raise client_error(operation, "ResourceNotFound", f"Pipeline '{name}' does not exist.") from None

    def _locate(self, operation: str, arn: str) -> tuple[str, str]:
        """(pipeline name, execution id) of an execution ARN (``.../pipeline/{name}/execution/{id}``)."""
        head, sep, execution_id = arn.rpartition("/execution/")
        lowered = head.rsplit("/", 1)[-1]
        if sep and execution_id and self.state.executions.is_dir():
            for folder in self.state.executions.iterdir():
                if folder.name.lower() == lowered.lower() and (folder / execution_id / "execution.json").is_file():
                    return folder.name, execution_id
        raise client_error(operation, "ResourceNotFound", f"Pipeline execution '{arn}' does not exist.")

    def _record(self, operation: str, arn: str) -> dict[str, Any]:
        from ..executions import executions_dir, reconcile

        name, execution_id = self._locate(operation, arn)
        if arn not in self._running:
            reconcile(self.state, name)
        path = executions_dir(self.state, name) / execution_id / "execution.json"
        return json.loads(path.read_text(encoding="utf-8"))

    def _status(self, record: dict[str, Any]) -> str:
        running = self._running.get(record.get("PipelineExecutionArn", ""))
        if running is not None and not running.settled.is_set():
            return "Executing"  # the runtime is still doing what the cloud does at an execution's end
        return record.get("PipelineExecutionStatus", "Executing")

    def start_pipeline_execution(self, *, PipelineName: str, PipelineParameters: list[dict[str, str]] | None = None,  # noqa: N803
                                 PipelineExecutionDisplayName: str | None = None, ClientRequestToken: str | None = None,
                                 PipelineExecutionDescription: str | None = None,
                                 ParallelismConfiguration: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        from ..executions import reconcile
        from ..executor import Execution, preflight, resolve_parameters

        pipeline = self._pipeline("StartPipelineExecution", PipelineName)
        name = pipeline["PipelineName"]
        reconcile(self.state, name)
        overrides = {p["Name"]: p["Value"] for p in PipelineParameters or []}
        try:
            preflight(pipeline["PipelineDefinition"], f"pipeline {name}")
            values = resolve_parameters(pipeline["PipelineDefinition"], overrides)
        except StsmonError as exc:
            raise client_error("StartPipelineExecution", "ValidationException", exc.message) from None
        started = threading.Event()

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "execution":
                started.set()

        execution = Execution(self.state, pipeline, values, display_name=PipelineExecutionDisplayName,
                              on_event=on_event, clock=self.clock,
                              max_parallel=(ParallelismConfiguration or {}).get("MaxParallelExecutionSteps"))
        if PipelineExecutionDescription:
            execution.record["PipelineExecutionDescription"] = PipelineExecutionDescription
        thread = threading.Thread(target=self._run, args=(execution.arn,), name=f"execution-{execution.id}", daemon=True)
        with self._lock:
            self._running[execution.arn] = _Running(execution, thread)
        self._catch_sigterm()
        thread.start()
        # The record exists (Executing) before the caller hears of the ARN.
        while not started.wait(0.05):
            if self._running[execution.arn].settled.is_set():
                error = self._running[execution.arn].error
                raise StsmonError(f"pipeline {name}: the execution could not start: {error}")
        return {"PipelineExecutionArn": execution.arn}

    def _run(self, arn: str) -> None:
        from .cloudwatch import record_pipeline_execution

        running = self._running[arn]
        try:
            record = running.execution.run()
            record_pipeline_execution(self.state, record, clock=self.clock)
        except BaseException as exc:  # recorded by the executor; kept to surface in close_clients
            running.error = exc
        finally:
            running.settled.set()

    def _catch_sigterm(self) -> None:
        """SIGTERM (``stsmon cleanup`` of another process, a service manager) stops the executions
        this process runs and records them Stopped, like Ctrl-C (the main thread raises
        KeyboardInterrupt; closing the clients stops them)."""
        if self._previous_sigterm is not None or threading.current_thread() is not threading.main_thread():
            return

        def on_term(signum: int, frame: Any) -> None:
            # Once: closing the clients stops the executions; `stsmon cleanup` sends one SIGTERM per running
            # execution, and a second KeyboardInterrupt would break that stop half way (records left Executing).
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            raise KeyboardInterrupt

        self._previous_sigterm = signal.signal(signal.SIGTERM, on_term)

    def close_clients(self, *, interrupted: bool = False) -> None:
        """Stop what this process started and has not finished; wait until each records its end."""
        with self._lock:
            running = list(self._running.values())
        for item in running:
            if not item.settled.is_set():
                item.execution.stop()
        for item in running:
            item.thread.join()
        if self._previous_sigterm is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    def describe_pipeline_execution(self, *, PipelineExecutionArn: str) -> dict[str, Any]:  # noqa: N803
        record = self._record("DescribePipelineExecution", PipelineExecutionArn)
        out: dict[str, Any] = {
            "PipelineArn": record["PipelineArn"],
            "PipelineExecutionArn": record["PipelineExecutionArn"],
            "PipelineExecutionDisplayName": record.get("PipelineExecutionDisplayName") or record["PipelineExecutionId"],
            "PipelineExecutionStatus": self._status(record),
            "CreationTime": _time(record.get("CreationTime")),
            "LastModifiedTime": _time(record.get("LastModifiedTime") or record.get("CreationTime")),
        }
        _put(out, "PipelineExecutionDescription", record.get("PipelineExecutionDescription"))
        if out["PipelineExecutionStatus"] != "Executing":
            _put(out, "FailureReason", record.get("FailureReason"))
        return out

    def list_pipeline_execution_steps(self, *, PipelineExecutionArn: str, SortOrder: str = "Descending",  # noqa: N803
                                      MaxResults: int | None = None, NextToken: str | None = None) -> dict[str, Any]:
        record = self._record("ListPipelineExecutionSteps", PipelineExecutionArn)
        steps = []
        for rec in record.get("Steps") or []:
            step: dict[str, Any] = {"StepName": rec["StepName"], "StepStatus": rec.get("StepStatus", "Starting"),
                                    "AttemptCount": 1}
            _put(step, "StepDisplayName", rec.get("StepDisplayName"))
            _put(step, "StartTime", _time(rec.get("StartTime")))
            _put(step, "EndTime", _time(rec.get("EndTime")))
            _put(step, "FailureReason", rec.get("FailureReason"))
            metadata = {}
            for kind, value in (rec.get("Metadata") or {}).items():
                if kind in _METADATA and isinstance(value, dict):
                    kept = {k: str(v) for k, v in value.items() if k in _METADATA[kind]}
                    if kept:
                        metadata[kind] = kept
            step["Metadata"] = metadata
            steps.append(step)
        steps.sort(key=lambda s: s.get("StartTime") or _LAST, reverse=SortOrder == "Descending")
        start = int(NextToken or 0)
        size = MaxResults or 50
        out: dict[str, Any] = {"PipelineExecutionSteps": steps[start:start + size]}
        if start + size < len(steps):
            out["NextToken"] = str(start + size)
        return out

    def list_pipeline_executions(self, *, PipelineName: str, SortBy: str = "CreationTime",  # noqa: N803
                                 SortOrder: str = "Descending", MaxResults: int | None = None,
                                 NextToken: str | None = None, CreatedAfter: datetime | None = None,
                                 CreatedBefore: datetime | None = None) -> dict[str, Any]:
        from ..executions import list_executions

        name = self._pipeline("ListPipelineExecutions", PipelineName)["PipelineName"]
        summaries = []
        for record in list_executions(self.state, name):
            created = _time(record.get("CreationTime"))
            if (CreatedAfter and created and created <= CreatedAfter) or (CreatedBefore and created and created >= CreatedBefore):
                continue
            summary: dict[str, Any] = {"PipelineExecutionArn": record["PipelineExecutionArn"],
                                       "PipelineExecutionStatus": self._status(record)}
            _put(summary, "StartTime", created)
            _put(summary, "PipelineExecutionDisplayName", record.get("PipelineExecutionDisplayName"))
            _put(summary, "PipelineExecutionDescription", record.get("PipelineExecutionDescription"))
            if summary["PipelineExecutionStatus"] != "Executing":
                _put(summary, "PipelineExecutionFailureReason", record.get("FailureReason"))
            summaries.append(summary)
        key = (lambda s: s["PipelineExecutionArn"]) if SortBy == "PipelineExecutionArn" else (lambda s: s.get("StartTime"))
        summaries.sort(key=key, reverse=SortOrder == "Descending")
        start = int(NextToken or 0)
        size = MaxResults or 50
        out: dict[str, Any] = {"PipelineExecutionSummaries": summaries[start:start + size]}
        if start + size < len(summaries):
            out["NextToken"] = str(start + size)
        return out

    def list_pipeline_parameters_for_execution(self, *, PipelineExecutionArn: str, NextToken: str | None = None,  # noqa: N803
                                               MaxResults: int | None = None) -> dict[str, Any]:
        record = self._record("ListPipelineParametersForExecution", PipelineExecutionArn)
        return {"PipelineParameters": [{"Name": p["Name"], "Value": str(p["Value"])} for p in record.get("Parameters") or []]}

    def stop_pipeline_execution(self, *, PipelineExecutionArn: str, ClientRequestToken: str | None = None) -> dict[str, Any]:  # noqa: N803
        record = self._record("StopPipelineExecution", PipelineExecutionArn)
        if record.get("PipelineExecutionStatus") != "Executing":
            raise client_error("StopPipelineExecution", "ValidationException",
                               f"Pipeline execution {PipelineExecutionArn} is {record.get('PipelineExecutionStatus')}, "
                               f"it cannot be stopped.")
        running = self._running.get(PipelineExecutionArn)
        if running is not None:
            running.execution.stop()
        else:  # another process runs it: its SIGTERM handler stops it and records Stopped
            from ... import supervisor
            from ..executions import executor_of

            supervisor.send_signal(executor_of(record), signal.SIGTERM)
        return {"PipelineExecutionArn": PipelineExecutionArn}

    def describe_pipeline(self, *, PipelineName: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        pipeline = self._pipeline("DescribePipeline", PipelineName)
        out: dict[str, Any] = {
            "PipelineArn": pipeline["PipelineArn"],
            "PipelineName": pipeline["PipelineName"],
            "PipelineDefinition": json.dumps(pipeline["PipelineDefinition"]),
            "PipelineStatus": "Active",
        }
        _put(out, "PipelineDisplayName", pipeline.get("PipelineDisplayName"))
        _put(out, "PipelineDescription", pipeline.get("PipelineDescription"))
        _put(out, "RoleArn", pipeline.get("RoleArn"))
        _put(out, "CreationTime", _time(pipeline.get("CreationTime")))
        _put(out, "LastModifiedTime", _time(pipeline.get("LastModifiedTime")))
        _put(out, "ParallelismConfiguration", pipeline.get("ParallelismConfiguration"))
        return out

    # -- processing jobs -------------------------------------------------------------

    def _job_step(self, name: str) -> tuple[Path, dict[str, Any]]:
        """The execution folder and step record of processing job ``name``."""
        suffix = f"processing-job/{name.lower()}"
        folders = sorted(self.state.executions.glob("*/*/execution.json")) if self.state.executions.is_dir() else []
        for path in folders:
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            for step in record.get("Steps") or []:
                arn = ((step.get("Metadata") or {}).get("ProcessingJob") or {}).get("Arn", "")
                if arn.endswith(suffix):
                    return path.parent, step
        raise client_error("DescribeProcessingJob", "ValidationException", f"Could not find requested job with name {name}")

    def describe_processing_job(self, *, ProcessingJobName: str) -> dict[str, Any]:  # noqa: N803
        folder, step = self._job_step(ProcessingJobName)
        config = folder / "steps" / step["StepName"] / "opt" / "ml" / "config" / "processingjobconfig.json"
        try:
            request = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise client_error("DescribeProcessingJob", "ValidationException",
                               f"Could not find requested job with name {ProcessingJobName}") from None
        arn = step["Metadata"]["ProcessingJob"]["Arn"]
        out: dict[str, Any] = {k: request[k] for k in _JOB_REQUEST if request.get(k) not in (None, {}, [])}
        out.update(ProcessingJobName=request.get("ProcessingJobName") or ProcessingJobName, ProcessingJobArn=arn,
                   ProcessingJobStatus=_JOB_STATUS.get(step.get("StepStatus", ""), "InProgress"))
        message = step.get("ExitMessage") or (step.get("Properties") or {}).get("ExitMessage")
        _put(out, "ExitMessage", message)
        if out["ProcessingJobStatus"] in ("Failed", "Stopped"):
            _put(out, "FailureReason", step.get("FailureReason"))
        _put(out, "CreationTime", _time(step.get("StartTime")))
        _put(out, "ProcessingStartTime", _time(step.get("StartTime")))
        _put(out, "ProcessingEndTime", _time(step.get("EndTime")))
        _put(out, "LastModifiedTime", _time(step.get("EndTime") or step.get("StartTime")))
        return conform_output("sagemaker", "describe_processing_job", out)

    # -- model packages (the local registry) -----------------------------------------------

    def _registry(self, *, writable: bool = False) -> Any:
        from .. import LocalEnvironment
        from ..registry import Registry

        from ..events import registry_listener

        env = LocalEnvironment(region=self.region)
        if not writable:
            return Registry(self.state.registry_db, env=env)
        return Registry(self.state.registry_db, env=env, clock=self.clock,
                        on_change=registry_listener(self.state, env, self.clock))

    def _registry_call(self, operation: str, method: str, params: dict[str, Any], *, writable: bool = False) -> Any:
        from ..registry import RegistryError, ResourceNotFound

        if not self.state.registry_db.exists():
            if operation == "ListModelPackages":
                return {"ModelPackageSummaryList": []}
            raise client_error(operation, "ValidationException",
                               f"ModelPackage {params.get('ModelPackageName') or params.get('ModelPackageArn')} does not exist.")
        with self._registry(writable=writable) as registry:
            try:
                return getattr(registry, method)(**params)
            except ResourceNotFound as exc:
                raise client_error(operation, "ValidationException", exc.message) from None
            except RegistryError as exc:
                raise client_error(operation, "ValidationException", exc.message) from None

    def describe_model_package(self, **params: Any) -> dict[str, Any]:
        return self._registry_call("DescribeModelPackage", "describe_model_package", params)

    def list_model_packages(self, **params: Any) -> dict[str, Any]:
        return self._registry_call("ListModelPackages", "list_model_packages", params)

    def update_model_package(self, **params: Any) -> dict[str, Any]:
        return self._registry_call("UpdateModelPackage", "update_model_package", params, writable=True)

    def delete_model_package(self, **params: Any) -> dict[str, Any]:
        return self._registry_call("DeleteModelPackage", "delete_model_package", params, writable=True)

    # -- endpoints -------------------------------------------------------------------------

    def _capture_key(self, config_name: str) -> str:
        """The endpoint config's DataCaptureConfig.KmsKeyId ("" when it names none)."""
        from ...endpoint.handlers import _configs_dir

        try:
            config = json.loads((_configs_dir(self.state) / f"{config_name}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return ""
        return str((config.get("DataCaptureConfig") or {}).get("KmsKeyId") or "")

    def _resource_record(self, operation: str, folder: Path, name: str, what: str) -> tuple[dict[str, Any], datetime]:
        """A local model's or endpoint config's record and when it was written (its creation: a changed
        model or config is a new one with a new name, as SageMaker replaces them)."""
        path = folder / f"{name}.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except (OSError, ValueError):
            raise client_error(operation, "ValidationException", f'Could not find {what} "{name}".') from None
        return record, written

    def describe_endpoint_config(self, *, EndpointConfigName: str) -> dict[str, Any]:  # noqa: N803
        """The config ``stsmon deploy`` recorded (its template properties, resolved)."""
        from ...endpoint.handlers import _configs_dir

        record, written = self._resource_record("DescribeEndpointConfig", _configs_dir(self.state), EndpointConfigName,
                                                "endpoint configuration")
        out: dict[str, Any] = {"EndpointConfigName": record["EndpointConfigName"],
                               "EndpointConfigArn": record["EndpointConfigArn"],
                               "ProductionVariants": record.get("ProductionVariants") or [],
                               "CreationTime": written}
        _put(out, "DataCaptureConfig", record.get("DataCaptureConfig"))
        _put(out, "KmsKeyId", record.get("KmsKeyId"))
        return conform_output("sagemaker", "describe_endpoint_config", out)

    def describe_model(self, *, ModelName: str) -> dict[str, Any]:  # noqa: N803
        """The model ``stsmon deploy`` recorded: its containers as the template declares them (a model
        package's ARN in ``ModelPackageName``), as DescribeModel returns them."""
        from ...endpoint.handlers import _models_dir

        record, written = self._resource_record("DescribeModel", _models_dir(self.state), ModelName, "model")
        out: dict[str, Any] = {"ModelName": record["ModelName"], "ModelArn": record["ModelArn"], "CreationTime": written}
        _put(out, "Containers", record.get("Containers"))
        if record.get("EnableNetworkIsolation") is not None:
            out["EnableNetworkIsolation"] = bool(record["EnableNetworkIsolation"])
        return conform_output("sagemaker", "describe_model", out)

    def describe_endpoint(self, *, EndpointName: str) -> dict[str, Any]:  # noqa: N803
        from ...endpoint.process import endpoint_paths, read_record

        record: dict[str, Any] = {}
        try:
            record = read_record(self.state, EndpointName) or {}
            deployed = json.loads((endpoint_paths(self.state, EndpointName).folder / "resource.json").read_text())
        except (OSError, ValueError, StsmonError):
            if not record:
                raise client_error("DescribeEndpoint", "ValidationException",
                                   f'Could not find endpoint "{EndpointName}".') from None
            # A server started without a deployment (a test's, `python -m stsmon.endpoint`): its own record.
            from .. import LocalEnvironment

            deployed = {"EndpointArn": LocalEnvironment(region=self.region).arn("sagemaker", f"endpoint/{EndpointName.lower()}"),
                        "EndpointConfigName": (record.get("info") or {}).get("EndpointConfigName") or EndpointName}
        status = _ENDPOINT_STATUS.get(str(record.get("status")), "OutOfService") if record.get("running") or \
            record.get("status") == "Failed" else "OutOfService"
        created = _time(record.get("started_at") or record.get("updated_at")) or _time("1970-01-01T00:00:00Z")
        out: dict[str, Any] = {
            "EndpointName": EndpointName,
            "EndpointArn": deployed["EndpointArn"],
            "EndpointConfigName": deployed.get("EndpointConfigName", ""),
            "EndpointStatus": status,
            "CreationTime": created,
            "LastModifiedTime": _time(record.get("updated_at")) or created,
        }
        if status == "Failed":
            _put(out, "FailureReason", record.get("failure_reason"))
        capture = record.get("capture")
        if capture:
            out["DataCaptureConfig"] = {"EnableCapture": True, "CaptureStatus": "Started",
                                        "CurrentSamplingPercentage": int(float(capture.get("sampling_percentage", 100))),
                                        "DestinationS3Uri": capture.get("destination_uri") or "",
                                        "KmsKeyId": self._capture_key(out["EndpointConfigName"])}
        variant = record.get("variant")
        if variant:
            out["ProductionVariants"] = [{"VariantName": variant, "CurrentWeight": 1.0, "DesiredWeight": 1.0,
                                          "CurrentInstanceCount": 1, "DesiredInstanceCount": 1}]
        return out
