"""Names that join the parts, in one place.

Step, output, channel and file names of the pipelines; the production
variant; the CloudWatch namespaces and dimensions; the artifact bucket's key
layout; the files the monitor writes. The step scripts, ``pipeline_code/``
(which builds the definitions), ``stacks/`` and the local runtime all read
them from here. docs/CONTRACTS.md describes the formats behind the names (its
tables are checked against this module by tests/stscontracts/).

Standard library only: it runs inside the SageMaker scikit-learn container.
"""

from __future__ import annotations

from datetime import datetime, timezone

# -- problem types (SageMaker's names) ---------------------------------------

BINARY_CLASSIFICATION = "BinaryClassification"
REGRESSION = "Regression"
PROBLEM_TYPES = (BINARY_CLASSIFICATION, REGRESSION)

# -- the training pipeline's steps --------------------------------------------

STEP_PREPROCESS = "Preprocess"
STEP_TRAIN = "Train"
STEP_EVALUATE = "Evaluate"
STEP_QUALITY_GATE = "CheckQuality"
STEP_BASELINE = "Baseline"
STEP_DATA_QUALITY_BASELINE = "BaselineDataQuality"
STEP_REGISTER = "RegisterModel"
STEP_FAIL = "QualityGateFailed"

# -- the monitoring pipeline's step --------------------------------------------

STEP_MONITOR = "MonitorModelQuality"

# -- processing output names (ProcessingOutputConfig.Outputs[].OutputName) ------

OUTPUT_TRAIN = "train"
OUTPUT_VALIDATION = "validation"
OUTPUT_TEST = "test"
OUTPUT_EVALUATION = "evaluation"
OUTPUT_BASELINE = "baseline"
OUTPUT_DATA_QUALITY_BASELINE = "data-quality-baseline"
OUTPUT_MONITORING = "monitoring"

# -- training channels ---------------------------------------------------------

CHANNEL_TRAIN = "train"
CHANNEL_VALIDATION = "validation"

# -- split files inside each output folder (headerless label,sentence1,sentence2) -

SPLIT_COLUMNS = ("label", "sentence1", "sentence2")
TRAIN_FILE = "train.csv"
VALIDATION_FILE = "validation.csv"
TEST_FILE = "test.csv"

# -- the model artifact -------------------------------------------------------

MODEL_ARCHIVE = "model.tar.gz"
MODEL_FILE = "model.joblib"
MODEL_INFO_FILE = "model_info.json"
MODEL_CODE_DIR = "code"
INFERENCE_PROGRAM = "inference.py"
#: Files train.py copies into code/ of the model: the serving entry point and
#: the modules it (or unpickling model.joblib) imports. This package goes
#: there too (:data:`PACKAGE`).
MODEL_CODE_FILES = (INFERENCE_PROGRAM, "featurizer.py", "pair_features.py", "stsmodel.py")

# -- the evaluation report (a PropertyFile of the Evaluate step) ----------------

EVALUATION_FILE = "evaluation.json"
EVALUATION_PROPERTY_FILE = "EvaluationReport"
METRICS_KEY = {
    BINARY_CLASSIFICATION: "binary_classification_metrics",
    REGRESSION: "regression_metrics",
}
CONSTRAINTS_KEY = {
    BINARY_CLASSIFICATION: "binary_classification_constraints",
    REGRESSION: "regression_constraints",
}

# -- baseline and monitoring outputs (Model Monitor's model-quality formats) ------

BASELINE_CSV = "baseline.csv"
STATISTICS_FILE = "statistics.json"
CONSTRAINTS_FILE = "constraints.json"
VIOLATIONS_FILE = "constraint_violations.json"
#: The data-quality baseline's extra files (next to its statistics.json and constraints.json):
#: the calibration of the served probabilities on the validation split (binary classification),
#: the training vocabulary (one token per line; the unseen-token shares), and Model Monitor's
#: record preprocessor (pair_features.py with that vocabulary) for the model-monitor backend.
CALIBRATION_FILE = "calibration.json"
VOCABULARY_FILE = "vocabulary.txt"
PREPROCESSOR_FILE = "preprocessor.py"
#: The monitor's data-quality outputs: statistics.json and constraint_violations.json in this
#: sub-folder of its output (Model Monitor's data-quality formats).
DATA_QUALITY_DIR = "data-quality"
#: The monitoring job's input folder name of the served package's data-quality baseline.
INPUT_DATA_QUALITY_BASELINE = "data-quality-baseline"
#: What one monitoring run concluded (status, counts, metrics, violations, files read).
RESULT_FILE = "monitoring_result.json"
#: The run's own HTML report.
REPORT_FILE = "report.html"
#: The PutMetricData input the run published (or would have).
CLOUDWATCH_FILE = "cloudwatch_metrics.json"

#: A monitoring run's status, as Model Monitor's.
MONITOR_COMPLETED = "Completed"
MONITOR_VIOLATIONS = "CompletedWithViolations"
MONITOR_FAILED = "Failed"
MONITOR_STATUSES = (MONITOR_COMPLETED, MONITOR_VIOLATIONS, MONITOR_FAILED)
#: monitor.py's exit message on a Failed window (the job's ExitMessage), before the reason.
MONITOR_FAILED_PREFIX = "monitoring Failed: "

# -- data capture ----------------------------------------------------------------

#: SageMaker's production variant name of a single-variant endpoint.
VARIANT = "AllTraffic"

# -- CloudWatch ------------------------------------------------------------------

#: Namespace the monitor (pipeline backend) publishes the quality metrics to.
METRICS_NAMESPACE = "stsmodelmonitor"
#: Namespace SageMaker Model Monitor publishes model-quality metrics to (model-monitor backend).
MODEL_MONITOR_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
#: SageMaker's own per-pipeline metrics (ExecutionStarted/Succeeded/Failed/Stopped).
PIPELINE_METRICS_NAMESPACE = "AWS/Sagemaker/ModelBuildingPipeline"
#: Dimensions of the quality metrics (both backends).
DIMENSION_ENDPOINT = "Endpoint"
DIMENSION_SCHEDULE = "MonitoringSchedule"
#: Dimension of SageMaker's pipeline metrics.
DIMENSION_PIPELINE = "PipelineName"
#: What monitor.py publishes next to the quality metrics: 1 for a Failed window, else 0.
METRIC_MONITORING_FAILED = "monitoring_failed"
#: Namespace SageMaker Model Monitor publishes data-quality metrics to (model-monitor backend).
MODEL_MONITOR_DATA_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
#: Model Monitor's data-quality metric of a feature's distance to the baseline (both backends; ours
#: publishes it to :data:`METRICS_NAMESPACE`): ``feature_baseline_drift_<feature>``.
FEATURE_DRIFT_PREFIX = "feature_baseline_drift_"
#: The data-quality check's violations of the window (every check type), and those of
#: ``baseline_drift_check`` alone (the drift alarm watches it).
METRIC_DATA_QUALITY_VIOLATIONS = "data_quality_violations"
METRIC_DRIFT_VIOLATIONS = "baseline_drift_violations"
#: Quality estimated before labels (CBPE): ``estimated_<metric>`` and its 95 % interval
#: ``estimated_<metric>_lower`` / ``_upper`` (binary classification: accuracy, precision, recall, f1).
ESTIMATED_METRIC_PREFIX = "estimated_"
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1")


#: The features the data-quality check watches, in column order (processing_scripts/pair_features.py
#: computes them and, being Model Monitor's self-contained record preprocessor, keeps its own copy of
#: the list; tests/processing_scripts/test_pair_features.py holds the two equal).
DATA_QUALITY_PAIR_FEATURES = (
    "sentence1_tokens", "sentence2_tokens", "sentence1_chars", "sentence2_chars",
    "sentence1_unseen_share", "sentence2_unseen_share", "non_ascii_share", "empty_pair", "identical_pair",
    "word1_f1", "word2_f1", "char3_jaccard", "bleu_mean", "rouge_l_f1", "word_edit_norm", "len_ratio",
)
DATA_QUALITY_PREDICTION_FEATURES = {
    BINARY_CLASSIFICATION: ("probability", "predicted_label"),
    REGRESSION: ("score",),
}


def data_quality_features(problem_type: str) -> tuple[str, ...]:
    """Every watched feature of a problem type: the pair's, then the prediction's."""
    return DATA_QUALITY_PAIR_FEATURES + DATA_QUALITY_PREDICTION_FEATURES[problem_type]


def feature_drift_metric(feature: str) -> str:
    """``feature_baseline_drift_<feature>`` (Model Monitor's name)."""
    return f"{FEATURE_DRIFT_PREFIX}{feature}"


def estimated_metric(metric: str) -> str:
    """``estimated_<metric>``: the CBPE estimate of a model-quality metric."""
    return f"{ESTIMATED_METRIC_PREFIX}{metric}"
#: SageMaker's count of failed executions of a pipeline (in :data:`PIPELINE_METRICS_NAMESPACE`).
METRIC_EXECUTION_FAILED = "ExecutionFailed"

# -- model registry events (EventBridge) ---------------------------------------------

#: What SageMaker sends to EventBridge when a model package is registered or its approval
#: status changes (AWS docs, "Events that Amazon SageMaker sends to Amazon EventBridge",
#: Model package state change): ``source`` and ``detail-type`` of the event.
EVENT_SOURCE_SAGEMAKER = "aws.sagemaker"
MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
#: The approval statuses whose events notify the alarm topic: a new version waits for a
#: person, or a version was approved (and the next deploy serves it).
NOTIFIED_APPROVAL_STATUSES = ("PendingManualApproval", "Approved")

# -- the step-code asset --------------------------------------------------------

SCRIPT_PREPROCESS = "preprocess.py"
SCRIPT_TRAIN = "train.py"
SCRIPT_EVALUATE = "evaluate.py"
SCRIPT_BASELINE = "baseline.py"
SCRIPT_DATA_QUALITY_BASELINE = "data_quality_baseline.py"
SCRIPT_MONITOR = "monitor.py"
SOURCEDIR_ARCHIVE = "sourcedir.tar.gz"
#: This package's name: a folder of that name ships next to the step scripts,
#: inside ``sourcedir.tar.gz`` and in the model's ``code/``.
PACKAGE = __name__.partition(".")[0]

# -- the artifact bucket's key layout (under the BASE_JOB_PREFIX ``{p}``) -----------

#: ``{p}/code/{hash}/``: the step-code asset.
KEY_CODE = "code"
#: ``{p}/input/``: training input data (the pipeline's default ``InputDataUri``).
KEY_INPUT = "input"
#: ``{p}/pipelines/{execution id}/{step}/{output}``: training step outputs.
KEY_PIPELINES = "pipelines"
#: ``{p}/datacapture/{endpoint}/{variant}/yyyy/mm/dd/hh/``: data capture.
KEY_CAPTURE = "datacapture"
#: ``{p}/ground-truth/yyyy/mm/dd/hh/``: ground-truth labels.
KEY_GROUND_TRUTH = "ground-truth"
#: ``{p}/monitoring/{schedule}/{execution id}/``: monitoring outputs.
KEY_MONITORING = "monitoring"
#: Prefixes whose objects expire after ``DATA_RETENTION_DAYS``.
EXPIRING_KEYS = (KEY_CAPTURE, KEY_GROUND_TRUTH, KEY_MONITORING)
#: ``yyyy/mm/dd/hh`` (UTC) of the hour folders of capture and ground truth.
HOUR_LAYOUT = "%Y/%m/%d/%H"


def code_prefix(prefix: str, content_hash: str) -> str:
    """``{p}/code/{hash}/``."""
    return f"{prefix}/{KEY_CODE}/{content_hash}/"


def input_prefix(prefix: str) -> str:
    """``{p}/input/`` (trailing slash: a folder of input files)."""
    return f"{prefix}/{KEY_INPUT}/"


def pipelines_prefix(prefix: str) -> str:
    """``{p}/pipelines`` (then ``/{execution id}/{step}/{output}``)."""
    return f"{prefix}/{KEY_PIPELINES}"


def capture_prefix(prefix: str) -> str:
    """``{p}/datacapture``: the endpoint's data-capture destination."""
    return f"{prefix}/{KEY_CAPTURE}"


def ground_truth_prefix(prefix: str) -> str:
    """``{p}/ground-truth``."""
    return f"{prefix}/{KEY_GROUND_TRUTH}"


def monitoring_prefix(prefix: str) -> str:
    """``{p}/monitoring`` (then ``/{schedule}/{execution id}/``)."""
    return f"{prefix}/{KEY_MONITORING}"


def hour_prefix(moment: datetime) -> str:
    """``yyyy/mm/dd/hh`` of an instant, in UTC (no slash at either end)."""
    return moment.astimezone(timezone.utc).strftime(HOUR_LAYOUT)


def capture_hour_prefix(endpoint: str, moment: datetime, variant: str = VARIANT) -> str:
    """``{endpoint}/{variant}/yyyy/mm/dd/hh`` below the capture destination."""
    return f"{endpoint}/{variant}/{hour_prefix(moment)}"


def gate_json_path(problem_type: str, metric: str) -> str:
    """JsonGet path of a metric's value in evaluation.json."""
    return f"{METRICS_KEY[problem_type]}.{metric}.value"
