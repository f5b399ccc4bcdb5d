"""Sentence pairs to send or score: a training run's test split, or a file.

``read_pairs`` reads a split file (headerless ``label,sentence1,sentence2``
CSV, what the Preprocess step writes) or an MSRP-layout file;
``execution_test_split`` fetches the Preprocess step's ``test`` output of one
training execution and ``latest_test_split`` that of the newest succeeded
one, through the target's clients (``stsmon traffic``, ``stsmon model compare``).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stscontracts import names

from .errors import NotDeployedError, StsmonError, UsageError

MSRP_HEADER = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"


@dataclass(frozen=True)
class Pair:
    sentence1: str
    sentence2: str
    label: float | None  # the true label, when the input has one


# -- input ----------------------------------------------------------------------------


def read_pairs(path: Path) -> list[Pair]:
    """Pairs of a split file (headerless ``label,sentence1,sentence2`` CSV) or an
    MSRP-layout file (tab-separated, header ``Quality	#1 ID	#2 ID	#1 String	#2 String``,
    read with quoting off: the strings contain raw ``"``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"input file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    lines = text.lstrip("\ufeff").splitlines()
    pairs: list[Pair] = []
    if lines and lines[0].startswith("Quality\t"):
        if lines[0].rstrip("\r") != MSRP_HEADER:
            raise UsageError(f"{path}:1: expected the MSRP header {MSRP_HEADER!r}")
        for no, line in enumerate(lines[1:], 2):
            if not line.strip():
                continue
            cols = line.rstrip("\r").split("\t")
            if len(cols) != 5:
                raise UsageError(f"{path}:{no}: expected 5 tab-separated columns, got {len(cols)}")
            pairs.append(Pair(cols[3], cols[4], _label(cols[0], path, no)))
    else:
        reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), strict=True)
        try:
            for row in reader:
                if not row:
                    continue
                if len(row) != 3:
                    raise UsageError(f"{path}:{reader.line_num}: expected 3 columns (label,sentence1,sentence2), "
                                     f"got {len(row)}")
                pairs.append(Pair(row[1], row[2], _label(row[0], path, reader.line_num)))
        except csv.Error as exc:
            raise UsageError(f"{path}:{reader.line_num}: malformed CSV: {exc}") from None
    if not pairs:
        raise UsageError(f"{path} has no sentence pairs")
    return pairs


def _label(raw: str, path: Path, line: int) -> float | None:
    if raw.strip() == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{path}:{line}: label {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{path}:{line}: label {raw!r} is not a finite number")
    return int(value) if value.is_integer() else value


def execution_test_split(clients: Any, arn: str) -> Path | None:
    """``test.csv`` of training execution ``arn`` (its Preprocess step's ``test`` output), read from S3
    into the state folder (``inputs/{execution id}/test.csv``); None when the execution has none."""
    from . import executions

    sm = clients.sagemaker
    step = next((s for s in executions.steps(sm, arn) if s["StepName"] == names.STEP_PREPROCESS
                 and s.get("StepStatus") == "Succeeded"), None)
    job_arn = (((step or {}).get("Metadata") or {}).get("ProcessingJob") or {}).get("Arn")
    if not job_arn:
        return None
    job = sm.describe_processing_job(ProcessingJobName=job_arn.rsplit("/", 1)[-1])
    uri = next((o["S3Output"]["S3Uri"] for o in job.get("ProcessingOutputConfig", {}).get("Outputs", [])
                if o["OutputName"] == names.OUTPUT_TEST), None)
    if not uri:
        return None
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    listed = clients.s3.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/").get("Contents", [])
    keys = sorted(o["Key"] for o in listed if o["Key"].endswith(".csv"))
    if not keys:
        return None
    path = clients.state.root / "inputs" / executions.execution_id(arn) / keys[0].rsplit("/", 1)[-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(clients.s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read())
    return path


def latest_test_split(clients: Any, pipeline: str) -> Path:
    """``test.csv`` of the newest succeeded training execution (its Preprocess step's ``test``
    output), read from S3 into the state folder (``inputs/{execution id}/test.csv``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from .clients.errors import error_message, is_not_found

    hint = (f"no test split of a training run {clients.runtime.where()}: run `stsmon train` first, or pass "
            "--input FILE (a split CSV or an MSRP-layout file)")
    sm = clients.sagemaker
    try:
        for page in sm.get_paginator("list_pipeline_executions").paginate(
                PipelineName=pipeline, SortBy="CreationTime", SortOrder="Descending"):
            for summary in page.get("PipelineExecutionSummaries", []):
                if summary.get("PipelineExecutionStatus") != "Succeeded":
                    continue
                path = execution_test_split(clients, summary["PipelineExecutionArn"])
                if path is not None:
                    return path
    except ClientError as exc:
        if is_not_found(exc):
            raise NotDeployedError(hint) from None
        raise StsmonError(f"finding the latest test split failed: {error_message(exc)}") from None
    except BotoCoreError as exc:
        raise StsmonError(f"finding the latest test split failed: {exc}") from None
    raise NotDeployedError(hint)
