"""The job-container contract, locally: what a SageMaker processing or training job's container
sees, given to a script run by this machine's Python.

- **Image**: only the SageMaker scikit-learn image of the local scikit-learn
  version (any region's account, e.g.
  ``683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3``)
  maps to this interpreter (``sys.executable``); :func:`check_image` refuses
  any other.
- **/opt/ml**: each job has a folder; ``{folder}/opt/ml`` is its ``/opt/ml``.
  ``/opt/ml`` in entrypoints, arguments, environment values and staged shell
  scripts is remapped there (:func:`remap`).
- **Staging**: ``s3://`` inputs are copied from the local bucket into the job
  folder before the job; processing outputs and the training job's
  ``model.tar.gz`` (packed from ``/opt/ml/model``) are copied to their S3
  URIs after it succeeds, file by file with atomic renames. Training runs in
  script mode: ``sagemaker_submit_directory`` extracted to ``/opt/ml/code``,
  ``sagemaker_program`` run with hyperparameters as ``--key value``, the
  ``SM_*`` environment, channels in ``/opt/ml/input/data/<channel>``, the
  ``input/config`` files.
- **AWS from inside a job**: every job process gets ``AWS_REGION`` and the
  environment of the execution's
  :class:`~stsmon.localcloud.job_endpoint.JobEndpoint` (its URL as
  ``AWS_ENDPOINT_URL_*``, credentials), as a SageMaker container gets its
  role and region, so a script's boto3 calls run unchanged against the
  local buckets. The caller's ``SM_*``/``AWS_*`` variables are not passed on.
- **Failure**: a job that exits non-zero fails with the first lines of
  ``/opt/ml/output/failure`` (training) or ``/opt/ml/output/message``
  (processing, also kept as ``ExitMessage``), else the end of its stderr.

:func:`run_processing_job` and :func:`run_training_job` run one job from its
(evaluated) CreateProcessingJob / CreateTrainingJob request and return the
Describe*Job view SageMaker gives the step's properties.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import random
import re
import shutil
import string
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import supervisor
from ..fileio import write_json_atomic
from ..state import StateDir
from . import LocalEnvironment
from .expressions import param_str
from .pipelines import ExecutionError, StepFailed

FAILURE_REASON_MAX = 1024
PYTHON_COMMANDS = ("python", "python3", "python3.11", "python3.12", "python3.13", "/usr/bin/python3", "/usr/local/bin/python", "/usr/local/bin/python3", "/usr/bin/python")
SHELL_COMMANDS = ("/bin/bash", "bash", "/bin/sh", "sh")
SKLEARN_REPOSITORY = "sagemaker-scikit-learn"
_IMAGE_RE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)(?::(.+))?$")
_OPT_ML = re.compile(r"(?<![\w.-])/opt/ml(?=/|$|[^\w/])")
#: Fallback when the SageMaker SDK's image config is not installed.
_FALLBACK_SKLEARN_ACCOUNTS = {"us-east-1": "683313688378", "us-east-2": "257758044811", "us-west-2": "246618743249", "eu-west-1": "141502667606"}


def rand(n: int) -> str:
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


# -- /opt/ml ---------------------------------------------------------------------


def remap(text: str, root: Path) -> str:
    """``/opt/ml/...`` -> ``{root}/...`` wherever it appears as a path in ``text``."""
    return _OPT_ML.sub(lambda m: str(root), text)


def remap_path(path: str, root: Path) -> Path:
    mapped = remap(path, root)
    if mapped == path:
        raise StepFailed(f"container path {path!r} is outside /opt/ml, which is all the local runtime maps")
    return Path(mapped)


def local_command(command: list[str], root: Path) -> list[str]:
    """The container's command as this machine runs it: python -> this interpreter; a shell
    script staged from the inputs (e.g. the SDK's runproc.sh) gets its /opt/ml paths remapped."""
    exe = command[0]
    if exe in PYTHON_COMMANDS:
        return [sys.executable, *command[1:]]
    if exe in SHELL_COMMANDS:
        for arg in command[1:]:
            path = Path(arg)
            if path.is_file() and root in path.parents:
                path.write_text(remap(path.read_text(encoding="utf-8"), root), encoding="utf-8")
        return command
    raise StepFailed(f"entrypoint {exe!r} cannot run locally (python or a shell script only)")


# -- staging ---------------------------------------------------------------------


def download(state: StateDir, uri: str, dest: Path, label: str) -> None:
    """Copy an ``s3://`` object or prefix from the local buckets into ``dest``."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise StepFailed(f"input {label}: {uri!r} is not an s3:// URI")
    src = state.s3_path(uri)
    dest.mkdir(parents=True, exist_ok=True)
    if src.is_file():
        shutil.copy2(src, dest / src.name)
    elif src.is_dir() and any(p.is_file() for p in src.rglob("*")):
        shutil.copytree(src, dest, dirs_exist_ok=True)
    else:
        raise StepFailed(f"input {label}: no S3 objects found under {uri} (local path {src})")


def upload(state: StateDir, src: Path, uri: str) -> None:
    """Publish every file under ``src`` to ``uri``, each with an atomic rename."""
    dest = state.s3_path(uri)
    for path in sorted(src.rglob("*")):
        if path.is_file():
            target = dest / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{rand(6)}.tmp")
            shutil.copy2(path, tmp)
            os.replace(tmp, target)


def stage_code(state: StateDir, submit: str, code: Path) -> None:
    """``sagemaker_submit_directory`` (an ``s3://`` tar.gz or prefix) into ``code``."""
    if not submit.startswith("s3://"):
        raise StepFailed(f"sagemaker_submit_directory {submit!r} is not an s3:// URI")
    src = state.s3_path(submit)
    if src.is_file() and (src.name.endswith(".tar.gz") or tarfile.is_tarfile(src)):
        with tarfile.open(src) as tar:
            tar.extractall(code, filter="data")
    elif src.is_dir():
        shutil.copytree(src, code, dirs_exist_ok=True)
    else:
        raise StepFailed(f"sagemaker_submit_directory {submit} does not exist locally ({src})")


def pack(state: StateDir, folder: Path, uri: str) -> None:
    """``folder`` as a tar.gz at ``uri`` (atomic rename)."""
    dest = state.s3_path(uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{rand(6)}.tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    os.replace(tmp, dest)


# -- the processes ---------------------------------------------------------------


class JobProcesses:
    """The job processes of one execution: each started with the container's environment,
    all stopped together.

    ``stop_event``: the execution's; once set, no job starts and a starting one is stopped.
    ``endpoint_environment``: the job endpoint's variables (set while the endpoint runs).
    """

    def __init__(self, region: str, stop_event: threading.Event) -> None:
        self.region = region
        self.stop_event = stop_event
        self.endpoint_environment: Mapping[str, str] = {}
        self._running: dict[str, subprocess.Popen[bytes]] = {}

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """What the job process gets: this process's environment without ``SM_*``/``AWS_*``,
        the region and the job endpoint (as SageMaker gives a container its region and role), then ``env``."""
        full_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SM_", "AWS_")) and k not in ("PYTHONHOME",)
        }
        full_env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), full_env.get("PATH", "")])
        full_env["PYTHONUNBUFFERED"] = "1"
        # AWS_REGION is set in processing containers (aws/sagemaker-spark-container#74); our
        # scripts take the region as an argument anyway.
        full_env["AWS_REGION"] = full_env["AWS_DEFAULT_REGION"] = self.region
        full_env.update(self.endpoint_environment)
        full_env.update(env)
        return full_env

    def run(self, name: str, command: list[str], env: Mapping[str, str], *, cwd: Path, log_dir: Path,
            failure_file: Path | None = None) -> None:
        """Run ``command`` to the end (logs in ``log_dir``); raise :class:`StepFailed` with the
        job's failure reason when it exits non-zero or the execution is stopped."""
        if self.stop_event.is_set():
            raise StepFailed("stopped by the user")
        full_env = self.environment(env)
        stdout_path, stderr_path = log_dir / "stdout.log", log_dir / "stderr.log"
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            out.write(f"$ {' '.join(command)}\n".encode())
            out.flush()
            try:
                proc = subprocess.Popen(
                    command, cwd=cwd, env=full_env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                    preexec_fn=supervisor.child_dies_with_parent(),
                )
                self._running[name] = proc
                if self.stop_event.is_set():  # stop() ran while the process was starting
                    supervisor.stop_child(proc)
                code = proc.wait()
            finally:
                self._running.pop(name, None)
        if self.stop_event.is_set():
            raise StepFailed("stopped by the user")
        if code != 0:
            reason = ""
            if failure_file is not None and failure_file.is_file():
                reason = failure_file.read_text(encoding="utf-8", errors="replace").strip()
            if not reason:
                reason = tail(stderr_path) or f"exit code {code}"
            raise StepFailed(f"{reason} (exit code {code}; logs: {log_dir})")

    def stop(self) -> None:
        """SIGTERM to every running job, SIGKILL after 10 s."""
        for proc in list(self._running.values()):
            supervisor.stop_child(proc)


# -- jobs ------------------------------------------------------------------------


class JobFailed(StepFailed):
    """A processing job failed; ``exit_message`` is its ExitMessage (may be empty)."""

    def __init__(self, reason: str, exit_message: str) -> None:
        super().__init__(reason)
        self.exit_message = exit_message


@dataclass
class Job:
    """One job of a pipeline step: its SageMaker name and its local folder."""

    step: str
    job_name: str
    folder: Path
    state: StateDir
    env: LocalEnvironment
    processes: JobProcesses

    @property
    def root(self) -> Path:
        """The container's ``/opt/ml``."""
        return self.folder / "opt" / "ml"


def fresh_folder(folder: Path) -> None:
    """An empty job folder (what a step's previous attempt left is removed)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def pipeline_job_name(execution_id: str, step: str) -> str:
    """The name SageMaker gives a step's job: ``pipelines-{execution id}-{step}-{RANDOM}``."""
    step = re.sub(r"[^a-zA-Z0-9-]", "-", step)
    return f"pipelines-{execution_id}-{step}"[:52] + "-" + rand(10).upper()[:10]


def run_processing_job(job: Job, args: dict[str, Any],
                       on_started: Callable[[dict[str, Any]], None]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run a CreateProcessingJob request; returns (DescribeProcessingJob view, step metadata).
    ``on_started(metadata)`` is called once the job has a name, before it is staged."""
    app = args.get("AppSpecification") or {}
    check_image(app.get("ImageUri", ""), f"step {job.step}")
    fresh_folder(job.folder)
    root = job.root
    arn = job.env.arn("sagemaker", f"processing-job/{job.job_name.lower()}")
    # The job's request first: once the step names its job, DescribeProcessingJob answers for it.
    config_dir = root / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(config_dir / "processingjobconfig.json", {**args, "ProcessingJobName": job.job_name})
    on_started({"ProcessingJob": {"Arn": arn}})
    for inp in args.get("ProcessingInputs") or []:
        s3 = inp.get("S3Input")
        if s3 is None:
            raise StepFailed(f"input {inp.get('InputName')}: only S3Input is supported locally")
        if s3.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise StepFailed(f"input {inp.get('InputName')}: S3DataType {s3.get('S3DataType')} is not supported locally")
        if s3.get("S3CompressionType", "None") != "None":
            raise StepFailed(f"input {inp.get('InputName')}: S3CompressionType {s3['S3CompressionType']} is not supported locally")
        download(job.state, s3["S3Uri"], remap_path(s3["LocalPath"], root), inp.get("InputName", ""))
    outputs = (args.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    for out in outputs:
        if "S3Output" not in out:
            raise StepFailed(f"output {out.get('OutputName')}: only S3Output is supported locally")
        remap_path(out["S3Output"]["LocalPath"], root).mkdir(parents=True, exist_ok=True)
    write_json_atomic(config_dir / "resourceconfig.json", {"current_host": "algo-1", "hosts": ["algo-1"]})
    entrypoint = list(app.get("ContainerEntrypoint") or [])
    if not entrypoint:
        raise StepFailed("AppSpecification.ContainerEntrypoint is empty: the local runtime needs the command to run")
    command = [remap(str(a), root) for a in entrypoint + list(app.get("ContainerArguments") or [])]
    command = local_command(command, root)
    env = {k: remap(param_str(v), root) for k, v in (args.get("Environment") or {}).items()}
    message_file = root / "output" / "message"
    try:
        job.processes.run(job.step, command, env, cwd=job.folder, log_dir=job.folder, failure_file=message_file)
    except StepFailed as exc:
        # Outputs are uploaded only when the job completes (EndOfJob); the job's ExitMessage
        # (the first 1 KB of /opt/ml/output/message) is kept with the step, as DescribeProcessingJob shows it.
        raise JobFailed(exc.reason, exit_message(message_file)) from None
    for out in outputs:
        upload(job.state, remap_path(out["S3Output"]["LocalPath"], root), out["S3Output"]["S3Uri"])
    props = dict(args)
    props.update(ProcessingJobName=job.job_name, ProcessingJobArn=arn, ProcessingJobStatus="Completed")
    message = exit_message(message_file)
    if message:
        props["ExitMessage"] = message
    return props, {"ProcessingJob": {"Arn": arn}}


def run_training_job(job: Job, args: dict[str, Any], on_started: Callable[[dict[str, Any]], None],
                     timestamp: Callable[[], str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run a CreateTrainingJob request in script mode; returns (DescribeTrainingJob view, step metadata).
    ``timestamp()``: the time of the final metrics, when the job ends."""
    algo = args.get("AlgorithmSpecification") or {}
    check_image(algo.get("TrainingImage", ""), f"step {job.step}")
    if algo.get("TrainingInputMode", "File") != "File":
        raise StepFailed(f"TrainingInputMode {algo['TrainingInputMode']} is not supported locally (File only)")
    arn = job.env.arn("sagemaker", f"training-job/{job.job_name.lower()}")
    fresh_folder(job.folder)
    root = job.root
    on_started({"TrainingJob": {"Arn": arn}})
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
        download(job.state, src["S3Uri"], root / "input" / "data" / name, name)
        channels.append(name)
    code = root / "code"
    code.mkdir(parents=True, exist_ok=True)
    if submit:
        stage_code(job.state, str(submit), code)
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
    env = {k: param_str(v) for k, v in (args.get("Environment") or {}).items()}
    env.update(training_environment(root, channels, hps, user_hps, cmd_args, job.job_name, str(program), str(submit or "")))
    command = [sys.executable, str(program), *cmd_args]
    job.processes.run(job.step, command, env, cwd=code, log_dir=job.folder, failure_file=root / "output" / "failure")
    out_path = (args.get("OutputDataConfig") or {}).get("S3OutputPath", "").rstrip("/")
    if not out_path:
        raise StepFailed("OutputDataConfig.S3OutputPath is missing")
    model_uri = f"{out_path}/{job.job_name}/output/model.tar.gz"
    pack(job.state, root / "model", model_uri)
    if any((root / "output" / "data").iterdir()):
        pack(job.state, root / "output" / "data", f"{out_path}/{job.job_name}/output/output.tar.gz")
    metrics = final_metrics(algo.get("MetricDefinitions") or [], job.folder, timestamp())
    props = dict(args)
    props.update(
        TrainingJobName=job.job_name,
        TrainingJobArn=arn,
        TrainingJobStatus="Completed",
        SecondaryStatus="Completed",
        ModelArtifacts={"S3ModelArtifacts": model_uri},
        FinalMetricDataList=metrics,
        HyperParameters=args.get("HyperParameters") or {},
    )
    return props, {"TrainingJob": {"Arn": arn}}


def training_environment(root: Path, channels: list[str], hps: dict[str, Any], user_hps: dict[str, Any],
                         cmd_args: list[str], job_name: str, program: str, submit: str) -> dict[str, str]:
    """The ``SM_*`` variables of a script-mode training container (sagemaker-training-toolkit's names)."""
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


# -- what a job leaves behind ----------------------------------------------------------


def _decode_hp(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def exit_message(path: Path) -> str:
    """A processing job's ExitMessage: the first 1 KB of /opt/ml/output/message, UTF-8
    (docs.aws.amazon.com/sagemaker/latest/dg/byoc-metadata.html)."""
    try:
        data = path.read_bytes()[:1024]
    except OSError:
        return ""
    return data.decode("utf-8", "replace").strip()


def tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(kept)[-FAILURE_REASON_MAX:]


def final_metrics(definitions: list[dict[str, Any]], log_dir: Path, stamp: str) -> list[dict[str, Any]]:
    """``FinalMetricDataList``: each ``MetricDefinitions`` regex's last match in the job's logs."""
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
