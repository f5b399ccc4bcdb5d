"""``stsmon traffic``: send the test split to the endpoint with inference ids (was ``testendpoint.py``).

Each pair goes as one ``text/csv`` request (one pair, one capture record, one
ground-truth label) through the real ``sagemaker-runtime`` client, with
``InferenceId`` ``<prefix><n>`` (``sts_1 ... sts_N`` by default, as the
original). Locally the client points at the local endpoint's URL
(``endpoints/{name}/endpoint.json``); with ``--target aws`` it calls the
deployed endpoint with your AWS credentials.

``--shift`` sends shifted traffic instead, for the label-free drill
(``stsmon/traffic_shift.py``): ``mismatched`` (each pair's second sentence
is another pair's, seeded by ``--seed``), ``truncated`` (each sentence cut to
the first half of its words) — both of the input — or ``file:PATH`` (another
domain: the pairs of PATH, ``sentence1<TAB>sentence2`` lines or one sentence
per line). Shifted pairs carry no true label.

The record of the run — every input, inference id, true label (when the
input has labels) and prediction — goes to ``runs/traffic-<time>.json`` in
the state folder and to ``testendpoint_out.json`` in the current folder (the
original's hand-off file); ``stsmon ground-truth`` reads the true labels from
it::

    {"target", "endpoint_name", "url", "input", "shift", "problem_type", "inference_id_prefix",
     "started", "ended", "duration_seconds", "requests", "succeeded", "failed",
     "inferences": [{"inference_id": "sts_1", "sentence1", "sentence2", "label": 1,
                     "prediction": {"label": 1, "probability": 0.87}, "error": null,
                     "latency_ms": 3.1}, ...]}
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from stscontracts import names

from ..clock import Clock
from ..errors import NotDeployedError, StsmonError, UsageError
from ..state import StateDir
# The input side (also read by `stsmon model compare`):
from ..test_split import MSRP_HEADER, Pair, _label, latest_test_split, read_pairs  # noqa: F401
from ..traffic_shift import Shift, parse_shift, shifted_pairs
from .common import command_clients, context_option, state_dir_option, target_option

RECORD_FILENAME = "testendpoint_out.json"


# -- sending --------------------------------------------------------------------------


def csv_body(pair: Pair) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([pair.sentence1, pair.sentence2])
    return buf.getvalue().encode("utf-8")


def parse_prediction(body: bytes, content_type: str) -> dict[str, Any]:
    """``label,probability`` or ``score`` (CSV), or the first JSON prediction."""
    text = body.decode("utf-8").strip()
    if content_type.split(";")[0].strip() == "application/json":
        preds = json.loads(text).get("predictions") or [{}]
        return preds[0]
    first = text.splitlines()[0].split(",") if text else []
    if len(first) == 2:
        return {"label": int(float(first[0])), "probability": float(first[1])}
    if len(first) == 1:
        return {"score": float(first[0])}
    return {"raw": text}


def send_all(
    client: Any,
    endpoint_name: str,
    pairs: list[Pair],
    *,
    prefix: str,
    start: int = 1,
    concurrency: int = 1,
    rate: float | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> list[dict[str, Any]]:
    """Invoke the endpoint once per pair; one result dict per pair, in input order."""
    results: list[dict[str, Any] | None] = [None] * len(pairs)
    t0 = time.monotonic()
    lock = threading.Lock()

    def one(i: int) -> None:
        if rate:
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        pair = pairs[i]
        item: dict[str, Any] = {"inference_id": f"{prefix}{start + i}", "sentence1": pair.sentence1,
                                "sentence2": pair.sentence2}
        if pair.label is not None:
            item["label"] = pair.label
        began = time.perf_counter()
        try:
            reply = client.invoke_endpoint(EndpointName=endpoint_name, Body=csv_body(pair), ContentType="text/csv",
                                           Accept="text/csv", InferenceId=item["inference_id"])
            item["prediction"] = parse_prediction(reply["Body"].read(), reply.get("ContentType", "text/csv"))
            item["error"] = None
        except Exception as exc:  # recorded per request; the run goes on
            item["prediction"] = None
            item["error"] = _error_text(exc)
        item["latency_ms"] = round((time.perf_counter() - began) * 1000, 2)
        results[i] = item
        with lock:
            progress(1)

    if concurrency <= 1:
        for i in range(len(pairs)):
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(one, range(len(pairs))))
    return results  # type: ignore[return-value]


def _error_text(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error") or {}
        return f"{err.get('Code', type(exc).__name__)}: {err.get('Message', str(exc))}"
    return f"{type(exc).__name__}: {exc}"


def check_in_service(clients: Any, name: str) -> None:
    """The endpoint exists and is InService (``describe_endpoint``), else NotDeployedError with what to do."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ..clients.errors import error_code, error_message

    try:
        status = clients.sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"]
    except ClientError as exc:
        if error_code(exc) == "ValidationException":
            raise NotDeployedError(f"endpoint {name} is not deployed {clients.runtime.where()}: "
                                   f"{clients.deploy_hint()}") from None
        raise StsmonError(f"describe_endpoint({name}) failed: {error_message(exc)}") from None
    except BotoCoreError as exc:
        raise StsmonError(f"describe_endpoint({name}) failed: {exc}") from None
    if status != "InService":
        raise NotDeployedError(f"endpoint {name} is {status}, not InService {clients.runtime.where()}: "
                               f"{clients.deploy_hint()} (it starts the endpoint again)")


def write_record(record: dict[str, Any], state: StateDir, out_file: Path, *, now: datetime) -> list[Path]:
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    paths = [state.runs / f"traffic-{stamp}.json", out_file]
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return paths


def run_traffic(
    *,
    state: StateDir,
    target: str,
    endpoint_name: str,
    url: str | None,
    pairs: list[Pair],
    input_desc: str,
    client: Any,
    prefix: str,
    start: int,
    concurrency: int,
    rate: float | None,
    out_file: Path,
    progress: Callable[[int], None] = lambda n: None,
    clock: Clock,
    shift: Shift | None = None,
) -> tuple[dict[str, Any], list[Path]]:
    """Send ``pairs`` and write the run record (start and end from ``clock``); returns (record, written paths)."""
    started = clock.now()
    results = send_all(client, endpoint_name, pairs, prefix=prefix, start=start, concurrency=concurrency,
                       rate=rate, progress=progress)
    ended = clock.now()
    labels = [p.label for p in pairs if p.label is not None]
    problem = None
    if labels:
        problem = names.BINARY_CLASSIFICATION if set(labels) <= {0, 1} else names.REGRESSION
    failed = sum(1 for r in results if r["error"])
    record = {
        "target": target,
        "endpoint_name": endpoint_name,
        "url": url,
        "input": input_desc,
        "shift": shift.describe() if shift else None,
        "problem_type": problem,
        "inference_id_prefix": prefix,
        "started": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "ended": ended.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "duration_seconds": round((ended - started).total_seconds(), 3),
        "requests": len(results),
        "succeeded": len(results) - failed,
        "failed": failed,
        "inferences": results,
    }
    return record, write_record(record, state, out_file, now=ended)


@click.command(name="traffic")
@target_option
@state_dir_option
@context_option
@click.option("--endpoint", "endpoint", default=None,
              help="Endpoint name. Default: the running local endpoint, or ENDPOINT_NAME of the configuration (AWS).")
@click.option("--input", "input_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Pairs to send: a split CSV (label,sentence1,sentence2) or an MSRP-layout file. "
                   "Default: test/test.csv of the latest training execution.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Send only the first N pairs.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Requests per second (default: as fast as the answers come).")
@click.option("--concurrency", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Requests in flight at once.")
@click.option("--prefix", default="sts_", show_default=True, help="Inference id prefix: ids are <prefix><n>.")
@click.option("--start", type=click.IntRange(min=0), default=1, show_default=True, help="n of the first inference id.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=Path(RECORD_FILENAME),
              show_default=True, help="Copy of the run record (the original's hand-off file).")
@click.option("--shift", "shift_text", default=None, metavar="mismatched|truncated|file:PATH",
              help="Send shifted traffic with no labels (the label-free drill): the input's pairs mismatched or "
                   "truncated, or another domain's pairs from PATH (sentence1<TAB>sentence2 lines, or one sentence "
                   "per line, consecutive lines paired).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --shift mismatched.")
def command(target: str, state_dir: Path | None, context: tuple[str, ...], endpoint: str | None,
            input_path: Path | None, limit: int | None, rate: float | None, concurrency: int, prefix: str,
            start: int, out_file: Path, shift_text: str | None, seed: int) -> None:
    """Send the test split to the endpoint, one pair per request, with inference ids."""
    if not prefix or len(prefix) > 40 or not prefix.isprintable() or prefix[0].isspace():
        raise UsageError(f"--prefix must be 1-40 printable characters, got {prefix!r}")
    shift = parse_shift(shift_text) if shift_text is not None else None
    if shift is not None and shift.kind == "file" and input_path is not None:
        raise UsageError("--shift file:PATH sends the pairs of PATH: leave out --input")
    if shift is not None and shift.kind == "file":  # read before anything is looked up or sent
        domain = [Pair(a, b, None) for a, b in shifted_pairs(shift, [])][:limit]
    from ..clients.stacks import deployed_outputs

    with command_clients(target, state_dir, context) as clients:
        state = clients.state
        outputs = deployed_outputs(clients)
        if shift is not None and shift.kind == "file":
            path, pairs = shift.path, domain
        else:
            if input_path is None:
                path = latest_test_split(clients, outputs.get("TrainingPipelineName") or clients.config.pipeline_name)
            else:
                path = input_path
            pairs = read_pairs(path)[:limit]
            if shift is not None:
                pairs = [Pair(a, b, None) for a, b in
                         shifted_pairs(shift, [(p.sentence1, p.sentence2) for p in pairs], seed=seed)]
        name = endpoint or outputs.get("EndpointName")
        if not name:
            raise NotDeployedError(f"no endpoint is deployed {clients.runtime.where()} (no EndpointName output; "
                                   f"--endpoint names one): {clients.deploy_hint()}")
        check_in_service(clients, name)
        url = clients.runtime.endpoint_url(name)
        client = clients.sagemaker_runtime(concurrency=concurrency)
        shifted = f" ({shift.describe()}, no labels)" if shift else ""
        click.echo(f"Sending {len(pairs)} pairs{shifted} from {path} to {name} at {url} "
                   f"(ids {prefix}{start}..{prefix}{start + len(pairs) - 1})", err=True)
        with click.progressbar(length=len(pairs), label="traffic", file=sys.stderr) as bar:
            record, written = run_traffic(state=state, target=clients.target, endpoint_name=name, url=url, pairs=pairs,
                                          input_desc=str(path), client=client, prefix=prefix, start=start,
                                          concurrency=concurrency, rate=rate, out_file=out_file, progress=bar.update,
                                          clock=clients.clock, shift=shift)
    click.echo(f"{record['succeeded']} of {record['requests']} succeeded in {record['duration_seconds']:.1f} s; "
               f"record: {written[0]} and {written[1]}")
    if record["failed"]:
        errors = [r["error"] for r in record["inferences"] if r["error"]]
        raise StsmonError(f"{record['failed']} of {record['requests']} requests failed; first error: {errors[0]}")
