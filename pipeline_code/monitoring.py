"""The monitoring pipeline: one Processing step, ``MonitorModelQuality``,
running ``processing_scripts/monitor.py`` over the endpoint's captured data
and the ground truth for one window, against the deployed package's baseline.

Capture and ground truth are not processing inputs: an input is a whole
prefix, copied in full before the script starts, and these prefixes grow
every hour (up to the retention). ``monitor.py`` gets their S3 URIs and the
stack's region and lists and downloads only the window's ``yyyy/mm/dd/hh/``
prefixes itself; the code and the baseline stay File-mode inputs.

EventBridge Scheduler starts it hourly (the monitoring stack); the local
runtime's scheduler runs the same definition. Outputs go to
``s3://{bucket}/{p}/monitoring/{schedule}/{execution id}/``.
"""

from __future__ import annotations

from typing import Any

from stscontracts import names

from stscontracts.config import Config

from . import placeholders
from .common import PROCESSING_ROOT, Literals, code_input, definition_dict, processing_input, processing_output, script_processor
from .sdk import offline_sdk, pipeline_session

P_WINDOW_END = "WindowEnd"
P_WINDOW_HOURS = "WindowHours"
P_LABEL_DELAY = "LabelDelayHours"
P_MIN_COVERAGE = "MinLabelCoverage"
P_PUBLISH = "PublishCloudWatch"
P_BASELINE = "BaselineConstraintsUri"
P_DATA_BASELINE = "DataQualityBaselineUri"
P_INSTANCE = "MonitoringInstanceType"


BASELINE_DIR = f"{PROCESSING_ROOT}/input/baseline"
DATA_QUALITY_BASELINE_DIR = f"{PROCESSING_ROOT}/input/{names.INPUT_DATA_QUALITY_BASELINE}"
OUTPUT_DIR = f"{PROCESSING_ROOT}/output"
#: Where monitor.py downloads the window's capture and label files (the job's volume).
DOWNLOAD_DIR = f"{PROCESSING_ROOT}/window"
#: SageMaker's exit message file: its first 1 KB is the processing job's ExitMessage.
EXIT_MESSAGE_FILE = "/opt/ml/output/message"


def build_monitoring_definition(cfg: Config, code_prefix: str) -> dict[str, Any]:
    """The monitoring pipeline definition with placeholders for the bucket,
    role, KMS key, region and the default baseline URI
    (``placeholders.BASELINE_URI``, resolved at deploy time from the served
    model package) and of its data-quality baseline
    (``placeholders.DATA_QUALITY_BASELINE_URI``, likewise)."""
    with offline_sdk(cfg.region):
        return definition_dict(_pipeline(cfg, code_prefix))


def _pipeline(cfg: Config, code_prefix: str) -> Any:
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import ProcessingStep

    literals = Literals(cfg.base_job_prefix, code_prefix, cfg.region, cfg.sklearn_image_version)
    session = pipeline_session(cfg.region, placeholders.BUCKET)
    params = {
        P_WINDOW_END: ParameterString(P_WINDOW_END, default_value=""),
        P_WINDOW_HOURS: ParameterInteger(P_WINDOW_HOURS, default_value=cfg.monitor_window_hours),
        P_LABEL_DELAY: ParameterInteger(P_LABEL_DELAY, default_value=cfg.monitor_label_delay_hours),
        P_MIN_COVERAGE: ParameterFloat(P_MIN_COVERAGE, default_value=cfg.monitor_min_label_coverage),
        P_PUBLISH: ParameterString(P_PUBLISH, default_value="true", enum_values=["true", "false"]),
        P_BASELINE: ParameterString(P_BASELINE, default_value=placeholders.BASELINE_URI),
        P_DATA_BASELINE: ParameterString(P_DATA_BASELINE, default_value=placeholders.DATA_QUALITY_BASELINE_URI),
        P_INSTANCE: ParameterString(P_INSTANCE, default_value=cfg.monitoring_instance_type),
    }
    # The monitor reads S3 and publishes CloudWatch metrics itself, so this job keeps network access.
    processor = script_processor(
        session, literals=literals, script=names.SCRIPT_MONITOR, step=names.STEP_MONITOR,
        instance_type=params[P_INSTANCE], network_isolation=False,
    )
    bucket = literals.bucket_uri
    output_uri = Join(on="/", values=[f"{bucket}/{names.monitoring_prefix(cfg.prefix)}/{cfg.monitoring_schedule_name}", ExecutionVariables.PIPELINE_EXECUTION_ID])
    step_args = processor.run(
        inputs=[
            code_input(literals),
            processing_input("baseline", params[P_BASELINE], BASELINE_DIR),
            processing_input(names.INPUT_DATA_QUALITY_BASELINE, params[P_DATA_BASELINE], DATA_QUALITY_BASELINE_DIR),
        ],
        outputs=[processing_output(names.OUTPUT_MONITORING, OUTPUT_DIR, output_uri)],
        arguments=[
            "--capture-uri", f"{bucket}/{names.capture_prefix(cfg.prefix)}/{cfg.endpoint_name}",
            "--ground-truth-uri", f"{bucket}/{names.ground_truth_prefix(cfg.prefix)}",
            "--region", placeholders.REGION,
            "--download-dir", DOWNLOAD_DIR,
            "--baseline-dir", BASELINE_DIR,
            "--data-quality-baseline-dir", DATA_QUALITY_BASELINE_DIR,
            "--output-dir", OUTPUT_DIR,
            "--exit-message-file", EXIT_MESSAGE_FILE,
            "--execution-time", ExecutionVariables.START_DATETIME,
            # "--window-end=" keeps an empty value one argument.
            Join(on="", values=["--window-end=", params[P_WINDOW_END]]),
            "--window-hours", params[P_WINDOW_HOURS].to_string(),
            "--label-delay-hours", params[P_LABEL_DELAY].to_string(),
            "--min-label-coverage", params[P_MIN_COVERAGE].to_string(),
            "--endpoint-name", cfg.endpoint_name,
            "--schedule-name", cfg.monitoring_schedule_name,
            "--namespace", names.METRICS_NAMESPACE,
            "--publish-cloudwatch", params[P_PUBLISH],
            "--problem-type", "auto",
        ],
    )
    step = ProcessingStep(name=names.STEP_MONITOR, step_args=step_args)
    return Pipeline(
        name=cfg.monitoring_pipeline_name,
        parameters=list(params.values()),
        steps=[step],
        sagemaker_session=session,
        pipeline_experiment_config=None,
    )
