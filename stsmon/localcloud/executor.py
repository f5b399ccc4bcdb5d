"""Run a SageMaker pipeline definition locally, step by step, like SageMaker does.

:func:`start_execution` runs one execution of a locally registered pipeline
(``pipelines/{name}.json``, written by ``stsmon deploy``) to completion. This
module schedules the steps; the rest of the executor lives beside it:

- :mod:`.expressions` — ``Get`` references to parameters, execution
  variables and step properties, ``Std:Join``, ``Std:JsonGet``, conditions
  (pure);
- :mod:`.container` — the job-container contract: images, ``/opt/ml``
  remapping, staging from and to the local buckets, the ``SM_*``
  environment, the job processes and the job endpoint's hand-off;
- :mod:`.executions` — the records on disk: list, describe, reconcile, stop.

- **Step types**: Processing, Training, Condition, RegisterModel, Fail, Model.
  Arguments are the CreateProcessingJob / CreateTrainingJob /
  CreateModelPackage / CreateModel requests, evaluated first.
- **AWS from inside a job**: the execution's :class:`~stsmon.localcloud.job_endpoint.JobEndpoint`
  (loopback) stands in for the regional AWS endpoints while the execution runs;
  every job gets its URL, credentials and ``AWS_REGION`` (:mod:`.container`).
- **Graph**: steps run as soon as what they depend on succeeded, up to
  ``ParallelismConfiguration.MaxParallelExecutionSteps`` (default: the CPU
  count) at a time; a failed step stops its dependents; a Fail step stops
  the execution; a condition runs only the chosen branch.
- **Crash safety**: the record names the executor process; an execution left
  Executing by a process that no longer exists is marked Failed the next
  time executions are read. Child processes die with the executor (Linux).
  Outputs are published only after success, file by file with atomic renames;
  a package is registered in one registry transaction.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from ..clock import Clock
from ..errors import StsmonError, UsageError
from ..fileio import write_json_atomic
from ..state import StateDir
from . import LocalEnvironment
from .container import FAILURE_REASON_MAX, Job, JobFailed, JobProcesses, check_image, pipeline_job_name, rand
from .container import run_processing_job, run_training_job
from .executions import ExecutionRecord, execution_folder, new_record, reconcile, stamp
from .expressions import Evaluator, execution_time_value, param_str
from .job_endpoint import JobEndpoint
from .pipelines import ExecutionError, StepFailed, StepSpec, collect_steps, definition_problems, load_pipeline
from .registry import Registry

__all__ = ["Execution", "ExecutionError", "StepFailed", "preflight", "resolve_parameters", "start_execution"]


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
        self.id = execution_id or rand(12)
        self.arn = f"{pipeline['PipelineArn']}/execution/{self.id}"
        self.folder = execution_folder(state, self.name, self.id)
        self.on_event = on_event or (lambda kind, data: None)
        self.steps = collect_steps(self.definition)
        self.parameters = parameters
        configured = (pipeline.get("ParallelismConfiguration") or {}).get("MaxParallelExecutionSteps")
        self.max_parallel = max_parallel or configured or os.cpu_count() or 2
        self.stop_event = threading.Event()
        self.jobs = JobProcesses(self.env.region, self.stop_event)
        self.properties: dict[str, dict[str, Any]] = {}
        self.start_time = clock.now()
        self.evaluator = Evaluator(
            parameters=self.parameters,
            variables=self._variables,
            properties=self.properties,
            steps=self.steps,
            read_json=lambda uri: json.loads(self.state.s3_path(uri).read_text(encoding="utf-8")),
        )
        self.log = ExecutionRecord(
            self.folder,
            new_record(pipeline, self.id, display_name=display_name, created=self._now(),
                       parameters=[{"Name": k, "Value": param_str(v)} for k, v in parameters.items()]),
            steps=self.steps,
            now=self._now,
        )
        self.record = self.log.data

    def _now(self) -> str:
        return stamp(self.clock.now())

    def _variables(self) -> dict[str, str]:
        return {
            "PipelineExecutionId": self.id,
            "PipelineExecutionArn": self.arn,
            "PipelineName": self.name,
            "PipelineArn": self.pipeline["PipelineArn"],
            "StartDateTime": execution_time_value(self.start_time),
            "CurrentDateTime": execution_time_value(self.clock.now()),
        }

    def _set_step(self, name: str, **fields: Any) -> None:
        self.on_event("step", self.log.set_step(name, **fields))

    def evaluate(self, value: Any, where: str) -> Any:
        """Evaluate pipeline expressions in ``value``."""
        return self.evaluator.evaluate(value, where)

    # -- scheduling ------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.folder / "definition.json", self.definition)
        self.log.save()
        self.on_event("execution", dict(self.record))
        status: dict[str, str] = {name: "Pending" for name in self.steps}
        branch_taken: dict[str, str] = {}
        fail_reached = False
        futures: dict[cf.Future[str], str] = {}
        pool = cf.ThreadPoolExecutor(max_workers=self.max_parallel, thread_name_prefix="step")
        job_endpoint = JobEndpoint(self.state, region=self.env.region, source=self.id).start()
        self.jobs.endpoint_environment = job_endpoint.environment()
        try:
            while True:
                if not self.stop_event.is_set() and not fail_reached:
                    for name, spec in self.steps.items():
                        if status[name] != "Pending" or len(futures) >= self.max_parallel:
                            continue
                        verdict = _readiness(spec, status, branch_taken)
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
            job_endpoint.stop()
            self.jobs.endpoint_environment = {}
            self._finish(status)
        return self.record

    def _finish(self, status: dict[str, str]) -> None:
        with self.log.lock:
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
            self.log.save()
        self.on_event("execution", dict(self.record))

    def stop(self) -> None:
        """Stop: no new steps; running jobs get SIGTERM, then SIGKILL after 10 s."""
        self.stop_event.set()
        self.jobs.stop()

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
            # A processing job's ExitMessage is kept with the step, as DescribeProcessingJob shows it.
            kept = {"ExitMessage": exc.exit_message} if isinstance(exc, JobFailed) and exc.exit_message else {}
            if self.stop_event.is_set():
                self._set_step(spec.name, **kept, StepStatus="Stopped", FailureReason="stopped by the user")
                return "Stopped"
            self._set_step(spec.name, **kept, StepStatus="Failed", FailureReason=exc.reason[:FAILURE_REASON_MAX])
            return "Failed"
        except StsmonError as exc:
            self._set_step(spec.name, StepStatus="Failed", FailureReason=exc.message[:FAILURE_REASON_MAX])
            return "Failed"
        except Exception as exc:  # a bug in the executor: keep the record honest, then surface it
            self._set_step(spec.name, StepStatus="Failed", FailureReason=f"internal error: {type(exc).__name__}: {exc}"[:FAILURE_REASON_MAX])
            raise
        with self.log.lock:
            self.properties[spec.name] = props
            self.log.step(spec.name)["Properties"] = _jsonable(props)
        self._set_step(spec.name, StepStatus="Succeeded", Metadata=metadata)
        return "Succeeded"

    def _job(self, spec: StepSpec) -> Job:
        return Job(step=spec.name, job_name=pipeline_job_name(self.id, spec.name), folder=self.folder / "steps" / spec.name,
                   state=self.state, env=self.env, processes=self.jobs)

    def _processing(self, spec: StepSpec) -> tuple[dict[str, Any], dict[str, Any]]:
        args = self.evaluate(spec.arguments, f"Steps.{spec.name}.Arguments")
        job = self._job(spec)
        return run_processing_job(
            job, args, on_started=lambda metadata: self._set_step(spec.name, StepStatus="Executing", Metadata=metadata, LogDir=str(job.folder)))

    def _training(self, spec: StepSpec) -> tuple[dict[str, Any], dict[str, Any]]:
        args = self.evaluate(spec.arguments, f"Steps.{spec.name}.Arguments")
        job = self._job(spec)
        return run_training_job(
            job, args, on_started=lambda metadata: self._set_step(spec.name, StepStatus="Executing", Metadata=metadata, LogDir=str(job.folder)),
            timestamp=self._now)

    def _condition(self, spec: StepSpec) -> tuple[dict[str, Any], dict[str, Any]]:
        conditions = spec.arguments.get("Conditions") or []
        outcome = all(self.evaluator.condition(c, f"Steps.{spec.name}.Conditions[{i}]") for i, c in enumerate(conditions))
        return {"Outcome": outcome}, {"Condition": {"Outcome": "True" if outcome else "False"}}

    def _register_model(self, spec: StepSpec) -> tuple[dict[str, Any], dict[str, Any]]:
        args = self.evaluate(spec.arguments, f"Steps.{spec.name}.Arguments")
        args = {k: v for k, v in args.items() if v is not None}
        from .events import registry_listener

        # SageMaker records which execution registered a package (MetadataProperties.GeneratedBy, as in
        # the AWS docs' model package state change example); `stsmon model compare` finds the test split there.
        metadata = dict(args.get("MetadataProperties") or {})
        metadata.setdefault("GeneratedBy", self.arn)
        args["MetadataProperties"] = metadata
        reg = Registry(self.state.registry_db, env=self.env, clock=self.clock,
                       on_change=registry_listener(self.state, self.env, self.clock))
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
        self._set_step(spec.name, Metadata={"Fail": {"ErrorMessage": param_str(message)}})
        raise StepFailed(param_str(message))


def _readiness(spec: StepSpec, status: dict[str, str], branch_taken: dict[str, str]) -> str:
    """``ready`` to run, ``wait`` for its dependencies, or ``never`` (a dependency failed, the other branch)."""
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
            # Once: the stop this starts records Stopped. `stsmon cleanup` sends one SIGTERM per running
            # execution; a second KeyboardInterrupt would break that stop half way (record left Executing).
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        return execution.run()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


