"""Names that join the pipeline's steps, in one place.

Shared by the step scripts (which ship this file next to them), by
``pipeline_code/`` (which builds the definitions) and by the local runtime.
Standard library only: it runs inside the SageMaker scikit-learn container.
See docs/CONTRACTS.md for the formats behind the names.
"""

# Problem types (SageMaker's names).
BINARY_CLASSIFICATION = "BinaryClassification"
REGRESSION = "Regression"
PROBLEM_TYPES = (BINARY_CLASSIFICATION, REGRESSION)

# Training pipeline step names.
STEP_PREPROCESS = "Preprocess"
STEP_TRAIN = "Train"
STEP_EVALUATE = "Evaluate"
STEP_QUALITY_GATE = "CheckQuality"
STEP_BASELINE = "Baseline"
STEP_REGISTER = "RegisterModel"
STEP_FAIL = "QualityGateFailed"

# Monitoring pipeline step name.
STEP_MONITOR = "MonitorModelQuality"

# Processing output names (ProcessingOutputConfig.Outputs[].OutputName).
OUTPUT_TRAIN = "train"
OUTPUT_VALIDATION = "validation"
OUTPUT_TEST = "test"
OUTPUT_EVALUATION = "evaluation"
OUTPUT_BASELINE = "baseline"
OUTPUT_MONITORING = "monitoring"

# Training channels.
CHANNEL_TRAIN = "train"
CHANNEL_VALIDATION = "validation"

# Split file names inside each output folder (headerless label,sentence1,sentence2).
SPLIT_COLUMNS = ("label", "sentence1", "sentence2")
TRAIN_FILE = "train.csv"
VALIDATION_FILE = "validation.csv"
TEST_FILE = "test.csv"

# Model artifact contents.
MODEL_ARCHIVE = "model.tar.gz"
MODEL_FILE = "model.joblib"
MODEL_INFO_FILE = "model_info.json"
MODEL_CODE_DIR = "code"
INFERENCE_PROGRAM = "inference.py"
#: Files train.py copies into code/ of the model: the serving entry point and
#: the modules it (or unpickling model.joblib) imports.
MODEL_CODE_FILES = (INFERENCE_PROGRAM, "featurizer.py", "stsmodel.py", "contract.py")

# Evaluation report (a PropertyFile of the Evaluate step).
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

# Baseline and monitoring outputs (Model Monitor's model-quality formats).
BASELINE_CSV = "baseline.csv"
STATISTICS_FILE = "statistics.json"
CONSTRAINTS_FILE = "constraints.json"
VIOLATIONS_FILE = "constraint_violations.json"

# monitor.py's exit message on a Failed window (the job's ExitMessage), before the reason.
MONITOR_FAILED_PREFIX = "monitoring Failed: "

# Data capture.
CAPTURE_VARIANT = "AllTraffic"

# Script files shipped in the code asset.
SCRIPT_PREPROCESS = "preprocess.py"
SCRIPT_TRAIN = "train.py"
SCRIPT_EVALUATE = "evaluate.py"
SCRIPT_BASELINE = "baseline.py"
SCRIPT_MONITOR = "monitor.py"
SOURCEDIR_ARCHIVE = "sourcedir.tar.gz"


def gate_json_path(problem_type: str, metric: str) -> str:
    """JsonGet path of a metric's value in evaluation.json."""
    return f"{METRICS_KEY[problem_type]}.{metric}.value"
