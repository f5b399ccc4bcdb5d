"""The model-quality monitor: one window of captured predictions vs ground truth.

Runs as the monitoring pipeline's processing step (SageMaker scikit-learn
container) and, unchanged, under the local runtime. For a window of whole
hours it

1. reads the endpoint's data-capture records of the window's hours: with
   ``--capture-uri s3://bucket/{p}/datacapture/{endpoint}`` it lists and
   downloads just the ``{variant}/yyyy/mm/dd/hh/`` prefixes of those hours
   (boto3, ``--region``); with ``--capture-dir`` it reads the same layout
   from a folder (``{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl``),
2. reads the ground-truth records (``--ground-truth-uri`` or
   ``--ground-truth-dir``, ``yyyy/mm/dd/hh/*.jsonl``) of the hours from the
   window start up to the hour of the execution time, at most the label
   delay + 1 hour past the window: labels arrive after the predictions, so
   with a label delay the hours between the window and the run are read too,
3. merges them on the capture's ``inferenceId`` (else its ``eventId``) =
   the label's ``eventMetadata.eventId``,
4. computes Model Monitor's model-quality metrics (binary classification or
   regression), compares them with the baseline's ``constraints.json``,
5. checks the window's captured pairs and predictions against the served
   package's data-quality baseline (``--data-quality-baseline-dir``) and
   estimates the window's quality from the served probabilities, with no
   label needed (``monitor_data_quality``): its own status in
   ``monitoring_result.json`` (``data_quality``), Model Monitor's
   data-quality ``statistics.json`` and ``constraint_violations.json`` in
   ``data-quality/``,
6. writes ``statistics.json``, ``constraint_violations.json``, ``report.html``,
   ``cloudwatch_metrics.json`` and ``monitoring_result.json`` into
   ``--output-dir`` (all or nothing, with the data-quality files), and with
   ``--publish-cloudwatch true`` publishes the metrics with CloudWatch
   ``PutMetricData`` (the data-quality ones whatever the model-quality status).

What a run reads does not depend on how much history the bucket keeps: one
``ListObjectsV2`` (with ``Delimiter``) for the endpoint's variants, then per
variant and hour (and per label hour) one listing of that hour's prefix, and
one ``GetObject`` per file of those hours. The counts and bytes are in
``monitoring_result.json`` (``read``). Every boto3 client gets ``--region``
(the definition passes the stack's region): SageMaker does not document
``AWS_REGION`` in processing containers. Endpoints and credentials come from
boto3's own configuration (the container's role; locally the runtime's
``AWS_ENDPOINT_URL_S3``), so the code path is the same everywhere.

Status, as Model Monitor's: ``Completed``, ``CompletedWithViolations`` or
``Failed`` with a reason (no capture in the window, no labels, label coverage
below ``--min-label-coverage``). This is the model-quality check's; the
data-quality check has its own (``data_quality.status``: the same three, or
``NotEvaluated`` without a data-quality baseline) and does not change it or
the exit code: its violations are results, which its alarms watch. Exit codes:

- 0: Completed or CompletedWithViolations (violations are a result; their
  alarms watch the published metrics);
- 3: Failed. The outputs are written and the metrics published first
  (``monitoring_failed`` = 1), the reason goes to ``--exit-message-file``
  (SageMaker's ``/opt/ml/output/message``: ``ExitMessage`` of the processing
  job) and stderr, then the non-zero exit fails the job, the step and the
  pipeline execution, so SageMaker's ``ExecutionFailed`` metric counts it;
- 1: an AWS call failed (reading S3: nothing written; publishing: outputs
  written);
- 2: unusable arguments or baseline files (``error: ...``, nothing written).

The program is split along its seams: ``monitor_window`` (the window's
hours, local folders and S3), ``monitor_records`` (capture and label files
into columns, predictions, labels, the join), ``model_metrics`` (the metrics,
shared with evaluate.py and baseline.py), ``monitor_baseline`` (constraints
and their check), ``monitor_outputs`` (the files and CloudWatch) and
``monitor_report`` (the HTML page), ``monitor_data_quality`` (the
label-free half, on ``data_quality``, ``pair_features`` and
``performance_estimation``). This file is the job and its command
line; it runs from a folder holding those modules (:data:`PROGRAM_FILES`)
and the contracts package ``stscontracts``.

Standard library and numpy (the scikit-learn image has pandas, scipy and
scikit-learn too; their imports alone cost 1.3 s, so nothing here uses them);
boto3 (the image's requirements.txt pins it) only to read S3 and publish.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

from stscontracts import names

try:  # imported as processing_scripts.monitor (tests, local runtime)
    from . import model_metrics, monitor_baseline, monitor_data_quality, monitor_outputs, monitor_records, monitor_window
except ImportError:  # run as a script next to its sibling modules (SageMaker)
    import model_metrics  # type: ignore[no-redef]
    import monitor_data_quality  # type: ignore[no-redef]
    import monitor_baseline  # type: ignore[no-redef]
    import monitor_outputs  # type: ignore[no-redef]
    import monitor_records  # type: ignore[no-redef]
    import monitor_window  # type: ignore[no-redef]

#: The files this program needs next to it (SageMaker runs it from the code folder), besides
#: the contracts package (``stscontracts/``, shipped in every code folder).
PROGRAM_FILES = ("monitor.py", "monitor_window.py", "monitor_records.py", "model_metrics.py",
                 "monitor_baseline.py", "monitor_outputs.py", "monitor_report.py",
                 "monitor_data_quality.py", "data_quality.py", "pair_features.py", "performance_estimation.py")

MonitorError = monitor_window.MonitorError
ReadFailed = monitor_window.ReadFailed
ReadStats = monitor_window.ReadStats
parse_time = monitor_window.parse_time
compute_window = monitor_window.compute_window
floor_hour = monitor_window.floor_hour
iso = monitor_window.iso
Baseline = monitor_baseline.Baseline
load_baseline = monitor_baseline.load_baseline
STATUS_COMPLETED = monitor_outputs.STATUS_COMPLETED
STATUS_VIOLATIONS = monitor_outputs.STATUS_VIOLATIONS
STATUS_FAILED = monitor_outputs.STATUS_FAILED
RESULT_FILE = monitor_outputs.RESULT_FILE
CLOUDWATCH_FILE = monitor_outputs.CLOUDWATCH_FILE
COUNT_KEYS = monitor_records.COUNT_KEYS

DEFAULT_NAMESPACE = names.METRICS_NAMESPACE


# --------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class Settings:
    capture_dir: Path | None
    ground_truth_dir: Path | None
    baseline_dir: Path
    output_dir: Path
    execution_time: datetime
    window_start: datetime
    window_end: datetime
    endpoint_name: str
    schedule_name: str
    namespace: str
    publish_cloudwatch: bool
    min_label_coverage: float
    problem_type: str
    capture_uri: str = ""
    ground_truth_uri: str = ""
    region: str = ""
    download_dir: Path | None = None
    label_delay_hours: int = 0
    exit_message_file: Path | None = None
    data_quality_baseline_dir: Path | None = None
    data_quality_sample: int = monitor_data_quality.SAMPLE_MAX

    @property
    def label_end(self) -> datetime:
        """End of the label hours: labels are read from the window start up to the end of the
        execution's hour, and no further than the label delay (+1 h) past the window.

        For the default window (ending at the execution's hour minus the delay)
        both bounds are the same; for a given ``--window-end`` long before the
        run (a backfill), the second keeps the hours read to
        ``window + delay + 1``, whatever the time since.
        """
        latest = min(floor_hour(self.execution_time), self.window_end + timedelta(hours=self.label_delay_hours))
        return max(self.window_end, latest + timedelta(hours=1))


def run_monitor(settings: Settings, baseline: Baseline, read: ReadStats | None = None,
                data_baseline: tuple[Any, str] | None = None) -> dict[str, Any]:
    """Compute the window's result from local folders (no files written): monitoring_result.json's content.

    The returned dict also carries ``_statistics`` (statistics.json's content)
    and ``_data_quality_statistics`` (the data-quality statistics.json's, or
    None) for the writer. ``read``: what was downloaded from S3 for it, if
    anything. ``data_baseline``: :func:`monitor_data_quality.load_data_quality_baseline`'s
    answer (default: loaded from ``settings.data_quality_baseline_dir``).
    """
    if data_baseline is None:
        data_baseline = monitor_data_quality.load_data_quality_baseline(settings.data_quality_baseline_dir)
    problem_type = baseline.problem_type
    capture_files = monitor_window.files_in_hours(
        settings.capture_dir, settings.window_start, settings.window_end, endpoint=settings.endpoint_name or None
    ) if settings.capture_dir else []
    label_files = monitor_window.files_in_hours(
        settings.ground_truth_dir, settings.window_start, settings.label_end
    ) if settings.ground_truth_dir else []

    # The data-quality sample reads the same capture files: on a large window, on the other core
    # while the whole window is parsed here (monitor_data_quality.start_sample).
    sample = monitor_data_quality.start_sample(capture_files, data_baseline[0], problem_type,
                                               settings.data_quality_sample)
    matched = monitor_records.match(capture_files, label_files, problem_type)
    counts = matched.counts
    coverage = counts["matched"] / counts["captured"] if counts["captured"] else 0.0

    metrics_block: dict[str, Any] = {}
    if counts["matched"]:
        if problem_type == names.BINARY_CLASSIFICATION:
            metrics_block = model_metrics.model_monitor_binary_metrics(matched.label, matched.prediction, matched.score)
        else:
            metrics_block = model_metrics.model_monitor_regression_metrics(matched.label, matched.prediction)

    window = f"[{iso(settings.window_start)}, {iso(settings.window_end)})"
    failure_reason = ""
    if counts["captured"] == 0:
        failure_reason = (f"no capture records in the window {window} "
                          f"({len(capture_files)} capture files, {counts['malformed_capture_lines']} malformed lines)")
    elif counts["matched"] == 0:
        failure_reason = (f"none of the {counts['captured']} captured records in the window {window} has a "
                          f"ground-truth label ({counts['labelled']} labels read, none for these ids)")
    elif coverage < settings.min_label_coverage:
        failure_reason = (f"label coverage {coverage:.3f} ({counts['matched']} of {counts['captured']} captured "
                          f"records labelled) is below the minimum {settings.min_label_coverage:g}")

    violations: list[dict] = []
    checks: list[dict] = []
    if not failure_reason:
        violations, checks = monitor_baseline.check_constraints(baseline.constraints, metrics_block)
        model_status = STATUS_VIOLATIONS if violations else STATUS_COMPLETED
    else:
        model_status = STATUS_FAILED

    data_quality_block, data_quality_statistics = monitor_data_quality.run_data_quality(
        capture_files, *data_baseline, problem_type=problem_type, prediction=matched.captured_prediction,
        score=matched.captured_score, model_constraints=baseline.constraints,
        comparisons=monitor_baseline.COMPARISONS, execution_time=iso(settings.execution_time),
        limit=settings.data_quality_sample, sample=sample.result())
    model_quality = {"status": model_status, "reason": failure_reason}
    status, failure_reason = combined_status(model_quality, data_quality_block, no_labels=counts["captured"] > 0
                                             and counts["matched"] == 0)

    scalar = {name: metrics_block[name]["value"]
              for name in monitor_baseline.SCALAR_METRICS[problem_type] if name in metrics_block}
    statistics = {
        "version": 0.0,
        "dataset": {"item_count": counts["matched"], "evaluation_time": iso(settings.execution_time)},
        names.METRICS_KEY[problem_type]: metrics_block,
    }
    return {
        "status": status,
        "failure_reason": failure_reason,
        "problem_type": problem_type,
        "execution_time": iso(settings.execution_time),
        "window": {"start": iso(settings.window_start), "end": iso(settings.window_end)},
        "endpoint_name": settings.endpoint_name,
        "schedule_name": settings.schedule_name,
        "counts": counts,
        "label_coverage": round(coverage, 6),
        "min_label_coverage": settings.min_label_coverage,
        "metrics": scalar,
        "confusion_matrix": metrics_block.get("confusion_matrix"),
        "constraints": baseline.constraints,
        "checks": checks,
        "violations": violations,
        "files": {"capture": len(capture_files), "ground_truth": len(label_files)},
        "read": read.as_dict() if read is not None else None,
        "malformed_examples": {"capture": matched.capture_examples[:5], "ground_truth": matched.label_examples[:5]},
        "model_quality": model_quality,
        "data_quality": data_quality_block,
        "_statistics": statistics,
        "_data_quality_statistics": data_quality_statistics,
        "_baseline_statistics": baseline.statistics,
    }


def combined_status(model_quality: dict[str, str], data_quality: dict[str, Any], *, no_labels: bool) -> tuple[str, str]:
    """(the run's status, its failure reason) from the two checks'.

    Labels arrive late or never, so a window with captures and no label at all
    is not a failed run when the data-quality check judged it: the
    model-quality half is then ``NotEvaluated`` (its reason kept in
    ``model_quality``) and the run has the data-quality check's status.
    Otherwise a Failed model-quality check fails the run as it always did (no
    capture, label coverage below the minimum), and violations of either
    check make it CompletedWithViolations.
    """
    judged = data_quality.get("status") in (STATUS_COMPLETED, STATUS_VIOLATIONS)
    if model_quality["status"] == STATUS_FAILED:
        if no_labels and judged:
            model_quality["status"] = monitor_data_quality.DQ_NOT_EVALUATED
            return data_quality["status"], ""
        return STATUS_FAILED, model_quality["reason"]
    if model_quality["status"] == STATUS_VIOLATIONS or data_quality.get("status") == STATUS_VIOLATIONS:
        return STATUS_VIOLATIONS, ""
    return STATUS_COMPLETED, ""


# --------------------------------------------------------------------------- command line


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _int_arg(minimum: int):
    def parse(value: str) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {number}")
        return number

    return parse


def _fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value!r}")
    return number


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2, like every step script
        raise MonitorError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(description="Model-quality monitor for one window of captured predictions and ground truth.")
    p.add_argument("--capture-uri", default="",
                   help="s3://bucket/{p}/datacapture/{endpoint}: the window's {variant}/yyyy/mm/dd/hh/ prefixes are "
                        "listed and downloaded (needs --region)")
    p.add_argument("--ground-truth-uri", default="",
                   help="s3://bucket/{p}/ground-truth: the label hours' yyyy/mm/dd/hh/ prefixes are listed and "
                        "downloaded (needs --region)")
    p.add_argument("--capture-dir", type=Path, default=None,
                   help="instead of --capture-uri, a folder: {endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl, "
                        "searched recursively")
    p.add_argument("--ground-truth-dir", type=Path, default=None,
                   help="instead of --ground-truth-uri, a folder: yyyy/mm/dd/hh/*.jsonl")
    p.add_argument("--download-dir", type=Path, default=Path("/opt/ml/processing/window"),
                   help="where the window's S3 objects are downloaded (removed after the run)")
    p.add_argument("--region", default="", help="AWS region of every client (S3, CloudWatch)")
    p.add_argument("--baseline-dir", type=Path, default=Path("/opt/ml/processing/input/baseline"),
                   help="constraints.json (+ statistics.json if present)")
    p.add_argument("--data-quality-baseline-dir", type=Path,
                   default=Path(f"/opt/ml/processing/input/{names.INPUT_DATA_QUALITY_BASELINE}"),
                   help="the served package's data-quality baseline (statistics.json, constraints.json, "
                        "vocabulary.txt, calibration.json); absent or without them: the data-quality check is "
                        "NotEvaluated")
    p.add_argument("--data-quality-sample", type=_int_arg(100), default=monitor_data_quality.SAMPLE_MAX,
                   help="records of the window whose pair features are computed at most (an evenly spread "
                        "sample beyond)")
    p.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output"))
    p.add_argument("--exit-message-file", type=Path, default=Path("/opt/ml/output/message"),
                   help="on a Failed result the reason is written here (SageMaker: the job's ExitMessage)")
    p.add_argument("--execution-time", default="", help="ISO-8601; default now (UTC)")
    p.add_argument("--window-end", default="",
                   help='ISO-8601, floored to the hour; "" = execution time floored to the hour minus the label delay')
    p.add_argument("--window-hours", type=_int_arg(1), default=1)
    p.add_argument("--label-delay-hours", type=_int_arg(0), default=0)
    p.add_argument("--endpoint-name", default="", help="CloudWatch dimension Endpoint")
    p.add_argument("--schedule-name", default="", help="CloudWatch dimension MonitoringSchedule")
    p.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="CloudWatch namespace")
    p.add_argument("--publish-cloudwatch", type=_bool, default=False)
    p.add_argument("--min-label-coverage", type=_fraction, default=0.0)
    p.add_argument("--problem-type", choices=("auto",) + names.PROBLEM_TYPES, default="auto")
    return p


def settings_from_args(argv: Sequence[str] | None, now: datetime) -> Settings:
    """Settings from the command line; without ``--execution-time`` the window is taken from ``now``."""
    args = build_parser().parse_args(argv)
    execution_time = (
        parse_time(args.execution_time, "--execution-time") if args.execution_time.strip() else now
    )
    start, end = compute_window(execution_time, args.window_end, args.window_hours, args.label_delay_hours)
    if not args.namespace.strip():
        raise MonitorError("--namespace must not be empty")
    for uri, folder, what in ((args.capture_uri, args.capture_dir, "capture"),
                              (args.ground_truth_uri, args.ground_truth_dir, "ground-truth")):
        if bool(uri.strip()) == (folder is not None):
            raise MonitorError(f"give exactly one of --{what}-uri (S3) and --{what}-dir (a folder)")
        if uri.strip():
            monitor_window.parse_s3_uri(uri, f"--{what}-uri")
    if (args.capture_uri.strip() or args.ground_truth_uri.strip() or args.publish_cloudwatch) and not args.region.strip():
        raise MonitorError("--region is required to read S3 (--capture-uri, --ground-truth-uri) or publish to "
                           "CloudWatch: every client is made in the stack's region, not the container's default")
    return Settings(
        capture_dir=args.capture_dir,
        ground_truth_dir=args.ground_truth_dir,
        baseline_dir=args.baseline_dir,
        output_dir=args.output_dir,
        execution_time=execution_time,
        window_start=start,
        window_end=end,
        endpoint_name=args.endpoint_name,
        schedule_name=args.schedule_name,
        namespace=args.namespace,
        publish_cloudwatch=args.publish_cloudwatch,
        min_label_coverage=args.min_label_coverage,
        problem_type=args.problem_type,
        capture_uri=args.capture_uri.strip(),
        ground_truth_uri=args.ground_truth_uri.strip(),
        region=args.region.strip(),
        download_dir=args.download_dir,
        label_delay_hours=args.label_delay_hours,
        exit_message_file=args.exit_message_file,
        data_quality_baseline_dir=args.data_quality_baseline_dir,
        data_quality_sample=args.data_quality_sample,
    )


def run_window(settings: Settings, baseline: Baseline, data_baseline: tuple[Any, str] | None = None) -> dict[str, Any]:
    """The window's result; S3 inputs are downloaded (the window's hours only) and removed afterwards."""
    if not (settings.capture_uri or settings.ground_truth_uri):
        return run_monitor(settings, baseline, data_baseline=data_baseline)
    from botocore.exceptions import BotoCoreError, ClientError

    dest = Path(tempfile.mkdtemp(prefix="window-", dir=_made(settings.download_dir)))
    try:
        try:
            capture_root, label_root, stats = monitor_window.download_window(
                monitor_window.s3_client(settings.region),
                capture_uri=settings.capture_uri,
                ground_truth_uri=settings.ground_truth_uri,
                capture_hours=monitor_window.hours_between(settings.window_start, settings.window_end),
                label_hours=monitor_window.hours_between(settings.window_start, settings.label_end),
                dest=dest,
            )
        except (BotoCoreError, ClientError) as exc:
            raise ReadFailed(f"reading the window from S3 ({settings.capture_uri or '-'}, "
                             f"{settings.ground_truth_uri or '-'}) failed: {type(exc).__name__}: {exc}") from None
        local = replace(settings,
                        capture_dir=capture_root if settings.capture_uri else settings.capture_dir,
                        ground_truth_dir=label_root if settings.ground_truth_uri else settings.ground_truth_dir)
        return run_monitor(local, baseline, stats, data_baseline)
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def _made(folder: Path | None) -> Path:
    path = folder or Path(tempfile.gettempdir())
    path.mkdir(parents=True, exist_ok=True)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = settings_from_args(argv, now=datetime.now(timezone.utc))  # the program's entry: its clock
        baseline = load_baseline(settings.baseline_dir, settings.problem_type)
        data_baseline = monitor_data_quality.load_data_quality_baseline(settings.data_quality_baseline_dir)
        if settings.publish_cloudwatch and not (settings.endpoint_name and settings.schedule_name):
            raise MonitorError("--publish-cloudwatch true needs --endpoint-name and --schedule-name (the dimensions)")
    except MonitorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        computed = run_window(settings, baseline, data_baseline)
    except ReadFailed as exc:
        write_exit_message(settings.exit_message_file, str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result = monitor_outputs.write_outputs(computed, settings.output_dir, settings.namespace)
    counts = result["counts"]
    print(f"{result['status']}: window {result['window']['start']} .. {result['window']['end']}, "
          + ", ".join(f"{k} {counts[k]}" for k in COUNT_KEYS))
    if result.get("read"):
        read = result["read"]
        print(f"read from S3: {read['objects']} objects, {read['bytes']} bytes "
              f"({read['list_calls']} list calls over {read['prefixes']} prefixes)")
    if result["failure_reason"]:
        print(f"reason: {result['failure_reason']}")
    elif result["model_quality"]["status"] == monitor_data_quality.DQ_NOT_EVALUATED:
        print(f"model quality: {result['model_quality']['status']} ({result['model_quality']['reason']})")
    for v in result["violations"]:
        print(f"violation: {v['description']}")
    dq = result["data_quality"]
    print(f"data quality: {dq['status']}" + (f" ({dq['reason']})" if dq.get("reason") else "")
          + (f", {dq['records']} records{' (a sample)' if dq.get('sampled') else ''}" if "records" in dq else ""))
    for v in dq["violations"]:
        print(f"data-quality violation: {v['feature_name']}: {v['constraint_check_type']}: {v['description']}")
    for v in (dq.get("estimated") or {}).get("violations", []):
        print(f"estimated-quality violation: {v['description']}")
    if settings.publish_cloudwatch:
        payload = json.loads((settings.output_dir / CLOUDWATCH_FILE).read_text(encoding="utf-8"))
        try:
            sent = monitor_outputs.publish_cloudwatch(payload, region=settings.region)
        except Exception as exc:  # botocore's errors share no base class worth naming here
            # The outputs are written and complete; the job fails so the pipeline shows it.
            message = (f"publishing to CloudWatch namespace {settings.namespace} failed: {type(exc).__name__}: {exc}"
                       + (f"; the window's result: Failed: {result['failure_reason']}" if result["failure_reason"] else ""))
            write_exit_message(settings.exit_message_file, message)
            print(f"error: {message}", file=sys.stderr)
            return 1
        print(f"published {sent} metric data points to CloudWatch namespace {settings.namespace}")
    if result["status"] == STATUS_FAILED:
        # A Failed window fails the job (after its outputs and metrics): the pipeline execution
        # fails, SageMaker counts it in ExecutionFailed, the alarms on it fire.
        message = f"{names.MONITOR_FAILED_PREFIX}{result['failure_reason']}"
        write_exit_message(settings.exit_message_file, message)
        print(message, file=sys.stderr)
        return EXIT_FAILED
    return 0


#: Exit code of a Failed result (outputs written, metrics published).
EXIT_FAILED = 3
#: SageMaker keeps the first 1 KB of /opt/ml/output/message as the job's ExitMessage.
EXIT_MESSAGE_BYTES = 1024


def write_exit_message(path: Path | None, message: str) -> None:
    """The reason a job fails, where SageMaker reads it (``ExitMessage``: UTF-8, first 1 KB).

    Best effort: a folder that cannot be written must not hide the failure
    itself, which stderr and the exit code carry anyway.
    """
    if path is None:
        return
    data = message.encode("utf-8")[:EXIT_MESSAGE_BYTES].decode("utf-8", "ignore")  # never cut a character
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data, encoding="utf-8")
    except OSError as exc:
        print(f"warning: could not write the exit message to {path}: {exc}", file=sys.stderr)


#: glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory() -> bool:
    """Let this process reuse the memory it frees instead of returning it to the system.

    With glibc's defaults every numpy array over 128 KiB (a million-record
    window makes many: 8 MB per float column) is its own ``mmap`` and is
    ``munmap``-ed when freed, so the next one starts from fresh zeroed pages:
    about 50,000 page faults and 0.3-0.4 s of system time for a million
    records (``/usr/bin/time``, docs/monitoring.md), for ~55 MiB more peak
    memory. Only for the job's own process (``__main__``), never a process
    that imports the module. False where it does not apply (not glibc).
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_THRESHOLD, 1 << 30), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 256 << 20)))


if __name__ == "__main__":
    keep_freed_memory()
    sys.exit(main())
