"""The training pipeline: Preprocess -> Train -> Evaluate -> CheckQuality ->
[Baseline, BaselineDataQuality -> RegisterModel] else QualityGateFailed.

Baseline writes the model-quality baseline (Model Monitor's model-quality
statistics and constraints), BaselineDataQuality the data-quality one (the
watched features of the validation pairs and predictions, Model Monitor's
data-quality statistics and constraints, the calibration of the
probabilities); RegisterModel stores both with the package as
``DriftCheckBaselines.ModelQuality`` and ``DriftCheckBaselines.ModelDataQuality``.

Step, output, channel and file names come from ``processing_scripts/names.py``
so the scripts, this definition and the local executor agree. Step outputs go
to ``s3://{bucket}/{p}/pipelines/{execution id}/{step}/{output}``.
"""

from __future__ import annotations

from typing import Any

from stscontracts import names

from stscontracts.config import Config

from . import placeholders
from .common import (
    PROCESSING_ROOT,
    Literals,
    code_input,
    definition_dict,
    processing_input,
    processing_output,
    script_processor,
)
from .sdk import offline_sdk, pipeline_session
from .serving_env import serving_environment

# Parameter names (the pipeline's public interface: `stsmon train` and the
# console pass these). ProblemType is not one: it is fixed at synth (below).
P_INPUT_DATA = "InputDataUri"
P_PROBLEM_TYPE = "ProblemType"
P_PROCESSING_INSTANCE = "ProcessingInstanceType"
P_TRAINING_INSTANCE = "TrainingInstanceType"
P_APPROVAL = "ModelApprovalStatus"
P_THRESHOLD = "QualityThreshold"

TRAINING_MAX_RUNTIME_S = 3600
#: Content types the inference script accepts / returns (docs/CONTRACTS.md §1).
CONTENT_TYPES = ["text/csv", "application/json", "application/jsonlines"]


def build_training_definition(cfg: Config, code_prefix: str) -> dict[str, Any]:
    """The training pipeline definition (a dict) with placeholders for the
    bucket, the execution role and the KMS key.

    ``code_prefix`` is the key prefix of the step-script asset; it must hold
    the scripts and ``sourcedir.tar.gz``.
    """
    with offline_sdk(cfg.region):
        return definition_dict(_pipeline(cfg, code_prefix))


def _pipeline(cfg: Config, code_prefix: str) -> Any:
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString
    from sagemaker.mlops.workflow.pipeline import Pipeline

    literals = Literals(cfg.base_job_prefix, code_prefix, cfg.region, cfg.sklearn_image_version)
    session = pipeline_session(cfg.region, placeholders.BUCKET)
    params = {
        P_INPUT_DATA: ParameterString(P_INPUT_DATA, default_value=f"{literals.bucket_uri}/{names.input_prefix(cfg.prefix)}"),
        P_PROCESSING_INSTANCE: ParameterString(P_PROCESSING_INSTANCE, default_value=cfg.processing_instance_type),
        P_TRAINING_INSTANCE: ParameterString(P_TRAINING_INSTANCE, default_value=cfg.training_instance_type),
        P_APPROVAL: ParameterString(P_APPROVAL, default_value=cfg.model_approval_status, enum_values=["Approved", "PendingManualApproval", "Rejected"]),
        P_THRESHOLD: ParameterFloat(P_THRESHOLD, default_value=cfg.quality_threshold),
    }
    # The problem type is fixed at synth, not a run-time parameter: the quality
    # gate's JsonGet path, its metric, direction and threshold, and what serving
    # and monitoring alarm on all follow from it. Every step gets the same literal.
    parameters = list(params.values())
    params = {**params, P_PROBLEM_TYPE: cfg.problem_type}
    preprocess = _preprocess_step(session, literals, params)
    train = _train_step(session, literals, params, preprocess)
    evaluate, report = _evaluate_step(session, literals, params, preprocess, train)
    baseline = _baseline_step(session, literals, params, preprocess, train)
    data_quality = _data_quality_baseline_step(session, cfg, literals, params, preprocess, train)
    register = _register_step(session, cfg, literals, params, train, evaluate, baseline, data_quality)
    fail = _fail_step(cfg, evaluate, report, params)
    gate = _gate_step(cfg, evaluate, report, params, if_steps=[baseline, data_quality, register], else_steps=[fail])
    return Pipeline(
        name=cfg.pipeline_name,
        parameters=parameters,
        steps=[preprocess, train, evaluate, gate],
        sagemaker_session=session,
        # No automatic Experiment/Trial: they would outlive `cdk destroy`.
        pipeline_experiment_config=None,
    )


def _output_uri(literals: Literals, step: str, output: str) -> Any:
    """``s3://{bucket}/{p}/pipelines/{execution id}/{step}/{output}``."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

    return Join(on="/", values=[f"{literals.bucket_uri}/{names.pipelines_prefix(literals.prefix)}", ExecutionVariables.PIPELINE_EXECUTION_ID, step, output])


def _processing_output_uri(step: Any, output: str) -> Any:
    return step.properties.ProcessingOutputConfig.Outputs[output].S3Output.S3Uri


def _preprocess_step(session: Any, literals: Literals, params: dict) -> Any:
    from sagemaker.mlops.workflow.steps import ProcessingStep

    processor = script_processor(
        session, literals=literals, script=names.SCRIPT_PREPROCESS, step=names.STEP_PREPROCESS,
        instance_type=params[P_PROCESSING_INSTANCE], network_isolation=True,
    )
    dirs = {name: f"{PROCESSING_ROOT}/{name}" for name in (names.OUTPUT_TRAIN, names.OUTPUT_VALIDATION, names.OUTPUT_TEST)}
    step_args = processor.run(
        inputs=[code_input(literals), processing_input("data", params[P_INPUT_DATA], f"{PROCESSING_ROOT}/input/data")],
        outputs=[processing_output(name, path, _output_uri(literals, names.STEP_PREPROCESS, name)) for name, path in dirs.items()],
        arguments=[
            "--input", f"{PROCESSING_ROOT}/input/data",
            "--train-dir", dirs[names.OUTPUT_TRAIN],
            "--validation-dir", dirs[names.OUTPUT_VALIDATION],
            "--test-dir", dirs[names.OUTPUT_TEST],
            "--problem-type", params[P_PROBLEM_TYPE],
        ],
    )
    return ProcessingStep(name=names.STEP_PREPROCESS, step_args=step_args)


def _train_step(session: Any, literals: Literals, params: dict, preprocess: Any) -> Any:
    from sagemaker.mlops.workflow.steps import TrainingStep
    from sagemaker.train.configs import Compute, InputData, OutputDataConfig, StoppingCondition
    from sagemaker.train.model_trainer import ModelTrainer

    # Script mode without ModelTrainer(source_code=...), which would upload
    # local files: the sklearn container's toolkit fetches
    # sagemaker_submit_directory (our asset's sourcedir.tar.gz) and runs
    # sagemaker_program from it.
    trainer = ModelTrainer(
        training_image=literals.sklearn_image(),
        role=placeholders.ROLE_ARN,
        sagemaker_session=session,
        base_job_name=f"{literals.prefix}-train",
        compute=Compute(instance_type=params[P_TRAINING_INSTANCE], instance_count=1, volume_size_in_gb=30, volume_kms_key_id=placeholders.KMS_KEY_ARN),
        output_data_config=OutputDataConfig(
            s3_output_path=_output_uri(literals, names.STEP_TRAIN, "model"),
            kms_key_id=placeholders.KMS_KEY_ARN,
        ),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=TRAINING_MAX_RUNTIME_S),
        hyperparameters={
            "sagemaker_program": names.SCRIPT_TRAIN,
            "sagemaker_submit_directory": f"{literals.code_uri}{names.SOURCEDIR_ARCHIVE}",
            "problem-type": params[P_PROBLEM_TYPE],
        },
    )
    step_args = trainer.train(
        input_data_config=[
            InputData(channel_name=names.CHANNEL_TRAIN, data_source=_processing_output_uri(preprocess, names.OUTPUT_TRAIN)),
            InputData(channel_name=names.CHANNEL_VALIDATION, data_source=_processing_output_uri(preprocess, names.OUTPUT_VALIDATION)),
        ],
    )
    return TrainingStep(name=names.STEP_TRAIN, step_args=step_args)


def _model_input(train: Any) -> Any:
    return processing_input("model", train.properties.ModelArtifacts.S3ModelArtifacts, f"{PROCESSING_ROOT}/model")


def _evaluate_step(session: Any, literals: Literals, params: dict, preprocess: Any, train: Any) -> tuple[Any, Any]:
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.steps import ProcessingStep

    processor = script_processor(
        session, literals=literals, script=names.SCRIPT_EVALUATE, step=names.STEP_EVALUATE,
        instance_type=params[P_PROCESSING_INSTANCE], network_isolation=True,
    )
    out_dir = f"{PROCESSING_ROOT}/{names.OUTPUT_EVALUATION}"
    report = PropertyFile(name=names.EVALUATION_PROPERTY_FILE, output_name=names.OUTPUT_EVALUATION, path=names.EVALUATION_FILE)
    step_args = processor.run(
        inputs=[
            code_input(literals),
            _model_input(train),
            processing_input(names.OUTPUT_TEST, _processing_output_uri(preprocess, names.OUTPUT_TEST), f"{PROCESSING_ROOT}/test"),
        ],
        outputs=[processing_output(names.OUTPUT_EVALUATION, out_dir, _output_uri(literals, names.STEP_EVALUATE, names.OUTPUT_EVALUATION))],
        arguments=[
            "--model-dir", f"{PROCESSING_ROOT}/model",
            "--test-dir", f"{PROCESSING_ROOT}/test",
            "--output-dir", out_dir,
        ],
    )
    return ProcessingStep(name=names.STEP_EVALUATE, step_args=step_args, property_files=[report]), report


def _baseline_step(session: Any, literals: Literals, params: dict, preprocess: Any, train: Any) -> Any:
    from sagemaker.mlops.workflow.steps import ProcessingStep

    processor = script_processor(
        session, literals=literals, script=names.SCRIPT_BASELINE, step=names.STEP_BASELINE,
        instance_type=params[P_PROCESSING_INSTANCE], network_isolation=True,
    )
    out_dir = f"{PROCESSING_ROOT}/{names.OUTPUT_BASELINE}"
    step_args = processor.run(
        inputs=[
            code_input(literals),
            _model_input(train),
            processing_input(names.OUTPUT_VALIDATION, _processing_output_uri(preprocess, names.OUTPUT_VALIDATION), f"{PROCESSING_ROOT}/validation"),
        ],
        outputs=[processing_output(names.OUTPUT_BASELINE, out_dir, _output_uri(literals, names.STEP_BASELINE, names.OUTPUT_BASELINE))],
        arguments=[
            "--model-dir", f"{PROCESSING_ROOT}/model",
            "--validation-dir", f"{PROCESSING_ROOT}/validation",
            "--output-dir", out_dir,
        ],
    )
    return ProcessingStep(name=names.STEP_BASELINE, step_args=step_args)


def _data_quality_baseline_step(session: Any, cfg: Config, literals: Literals, params: dict, preprocess: Any,
                                train: Any) -> Any:
    from sagemaker.mlops.workflow.steps import ProcessingStep

    processor = script_processor(
        session, literals=literals, script=names.SCRIPT_DATA_QUALITY_BASELINE, step=names.STEP_DATA_QUALITY_BASELINE,
        instance_type=params[P_PROCESSING_INSTANCE], network_isolation=True,
    )
    out_dir = f"{PROCESSING_ROOT}/{names.OUTPUT_DATA_QUALITY_BASELINE}"
    step_args = processor.run(
        inputs=[
            code_input(literals),
            _model_input(train),
            processing_input(names.OUTPUT_VALIDATION, _processing_output_uri(preprocess, names.OUTPUT_VALIDATION), f"{PROCESSING_ROOT}/validation"),
        ],
        outputs=[processing_output(names.OUTPUT_DATA_QUALITY_BASELINE, out_dir,
                                   _output_uri(literals, names.STEP_DATA_QUALITY_BASELINE, names.OUTPUT_DATA_QUALITY_BASELINE))],
        arguments=[
            "--model-dir", f"{PROCESSING_ROOT}/model",
            "--validation-dir", f"{PROCESSING_ROOT}/validation",
            "--output-dir", out_dir,
            "--comparison-threshold", str(cfg.drift_threshold),
            "--comparison-method", cfg.drift_method,
        ],
    )
    return ProcessingStep(name=names.STEP_DATA_QUALITY_BASELINE, step_args=step_args)


def _file_in(step: Any, output: str, filename: str) -> Any:
    from sagemaker.core.workflow.functions import Join

    return Join(on="/", values=[_processing_output_uri(step, output), filename])


def _register_step(session: Any, cfg: Config, literals: Literals, params: dict, train: Any, evaluate: Any, baseline: Any,
                   data_quality: Any) -> Any:
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.serve.model_builder import ModelBuilder

    evaluation = MetricsSource(content_type="application/json", s3_uri=_file_in(evaluate, names.OUTPUT_EVALUATION, names.EVALUATION_FILE))
    statistics = MetricsSource(content_type="application/json", s3_uri=_file_in(baseline, names.OUTPUT_BASELINE, names.STATISTICS_FILE))
    constraints = MetricsSource(content_type="application/json", s3_uri=_file_in(baseline, names.OUTPUT_BASELINE, names.CONSTRAINTS_FILE))
    data_statistics = MetricsSource(content_type="application/json", s3_uri=_file_in(data_quality, names.OUTPUT_DATA_QUALITY_BASELINE, names.STATISTICS_FILE))
    data_constraints = MetricsSource(content_type="application/json", s3_uri=_file_in(data_quality, names.OUTPUT_DATA_QUALITY_BASELINE, names.CONSTRAINTS_FILE))
    # The package carries everything serving and monitoring need: the test
    # metrics (ModelQuality.Statistics), the monitor's thresholds
    # (ModelQuality.Constraints) and both baselines (DriftCheckBaselines:
    # ModelQuality, and ModelDataQuality for the data-quality check; its folder
    # also holds the vocabulary, calibration and Model Monitor preprocessor).
    metrics = ModelMetrics(model_statistics=evaluation, model_constraints=constraints)
    drift = DriftCheckBaselines(model_statistics=statistics, model_constraints=constraints,
                                model_data_statistics=data_statistics, model_data_constraints=data_constraints)
    builder = ModelBuilder(
        s3_model_data_url=train.properties.ModelArtifacts.S3ModelArtifacts,
        image_uri=literals.sklearn_image(),
        role_arn=placeholders.ROLE_ARN,
        sagemaker_session=session,
        env_vars=serving_environment(),
        dependencies=None,
    )
    step_args = builder.register(
        model_package_group_name=cfg.model_package_group_name,
        content_types=CONTENT_TYPES,
        response_types=CONTENT_TYPES,
        inference_instances=[cfg.endpoint_instance_type],
        transform_instances=[cfg.endpoint_instance_type],
        model_metrics=metrics,
        drift_check_baselines=drift,
        approval_status=params[P_APPROVAL],
        customer_metadata_properties={"ProblemType": params[P_PROBLEM_TYPE]},
    )
    return ModelStep(name=names.STEP_REGISTER, step_args=step_args)


def _gate_metric(cfg: Config, evaluate: Any, report: Any) -> Any:
    from sagemaker.core.workflow.functions import JsonGet

    return JsonGet(step_name=evaluate.name, property_file=report, json_path=names.gate_json_path(cfg.problem_type, cfg.quality_metric))


def _gate_step(cfg: Config, evaluate: Any, report: Any, params: dict, *, if_steps: list, else_steps: list) -> Any:
    from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo, ConditionLessThanOrEqualTo
    from sagemaker.mlops.workflow.condition_step import ConditionStep

    comparison = ConditionGreaterThanOrEqualTo if cfg.gate_higher_is_better else ConditionLessThanOrEqualTo
    condition = comparison(left=_gate_metric(cfg, evaluate, report), right=params[P_THRESHOLD])
    return ConditionStep(name=names.STEP_QUALITY_GATE, conditions=[condition], if_steps=if_steps, else_steps=else_steps)


def _fail_step(cfg: Config, evaluate: Any, report: Any, params: dict) -> Any:
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.fail_step import FailStep

    relation = "below" if cfg.gate_higher_is_better else "above"
    message = Join(
        on=" ",
        values=[
            f"Quality gate failed: {cfg.quality_metric} =",
            _gate_metric(cfg, evaluate, report),
            f"is {relation} the threshold",
            params[P_THRESHOLD],
            "; no model was registered.",
        ],
    )
    return FailStep(name=names.STEP_FAIL, error_message=message)
