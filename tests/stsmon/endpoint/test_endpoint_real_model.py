"""The real package: a model trained by processing_scripts/train.py on a small MSRP
sample, served through its own inference.py (batched), called by boto3."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from stsmon.endpoint.capture import scan_capture

SCRIPTS = Path(__file__).resolve().parents[3] / "processing_scripts"
CSV = "text/csv"
JSON = "application/json"


@pytest.fixture(scope="module")
def real_model(tmp_path_factory, msrp, server_env) -> Path:
    root = tmp_path_factory.mktemp("real")
    sample = root / "sample.txt"
    lines = (msrp / "msr_paraphrase_train.txt").read_text(encoding="utf-8").splitlines()[:301]
    sample.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = lambda *argv: subprocess.run([sys.executable, *map(str, argv)], check=True, env=server_env,
                                       capture_output=True, text=True)
    run(SCRIPTS / "preprocess.py", "--input", sample, "--train-dir", root / "train",
        "--validation-dir", root / "validation", "--test-dir", root / "test")
    run(SCRIPTS / "train.py", "--train", root / "train", "--model-dir", root / "model",
        "--estimator", "logistic", "--calibration", "none")
    return root / "model"


@pytest.fixture(scope="module")
def server(module_servers, real_model):
    return module_servers(real_model, name="sts-endpoint", workers=1)


def test_boto3_csv_and_json_through_the_real_inference_code(server, runtime_client):
    client = runtime_client(server.url)
    reply = client.invoke_endpoint(EndpointName="sts-endpoint", ContentType=CSV, Accept=CSV, InferenceId="real_1",
                                   Body=b'"He said ""no,"" twice.",He refused twice.\nThe sky is blue.,Stocks fell.\n')
    rows = reply["Body"].read().decode().splitlines()
    assert reply["ContentType"] == CSV and len(rows) == 2
    assert all(r.split(",")[0] in ("0", "1") and 0 <= float(r.split(",")[1]) <= 1 for r in rows)
    body = json.dumps({"instances": [{"sentence1": "A man sleeps.", "sentence2": "A man is sleeping."}]})
    reply = client.invoke_endpoint(EndpointName="sts-endpoint", ContentType=JSON, Accept=JSON, Body=body,
                                   InferenceId="real_2")
    assert set(json.loads(reply["Body"].read())["predictions"][0]) == {"label", "probability"}


@pytest.mark.parametrize("ctype, accept, body, status", [
    ("text/plain", CSV, b"a,b", 415),
    (CSV, "image/png", b"a,b\n", 406),
    (CSV, CSV, b"only one\n", 400),
    (CSV, CSV, b"caf\xe9,x\n", 400),
    (JSON, JSON, b'{"instances": [', 400),
    ("application/jsonlines", JSON, b'{"sentence1": "a"}\n', 400),
    (CSV, CSV, b'"a,b\n', 400),
])
@pytest.mark.parametrize("path", ["/invocations", "/endpoints/sts-endpoint/invocations"])
def test_the_real_inference_code_refuses_bad_input_with_4xx(server, ctype, accept, body, status, path):
    code, _headers, text = server.request("POST", path, body, {"Content-Type": ctype, "Accept": accept,
                                                               "X-Amzn-SageMaker-Inference-Id": "bad_real"})
    assert code == status, text
    assert b"Traceback" not in text


def test_concurrent_requests_are_batched_and_answer_like_sequential_ones(server):
    bodies = [f"The company sold {n} cars.,It sold {n} cars last year.\n".encode() for n in range(24)]
    sequential = [server.request("POST", "/invocations", b, {"Content-Type": CSV, "Accept": CSV})[2] for b in bodies]
    concurrent: list = [None] * len(bodies)

    def send(i):
        concurrent[i] = server.request("POST", "/invocations", bodies[i], {"Content-Type": CSV, "Accept": CSV})[2]

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert concurrent == sequential
    log = (server.state.endpoints / server.name / "server.log").read_text()
    assert "batching switched off" not in log


def test_capture_holds_the_real_requests_and_nothing_refused(server):
    server.stop()
    records = {r["eventMetadata"].get("inferenceId"): r for r in scan_capture(server.capture_root).records}
    assert {"real_1", "real_2"} <= set(records) and "bad_real" not in records
    assert records["real_1"]["captureData"]["endpointOutput"]["data"].count("\n") == 2
    assert records["real_2"]["captureData"]["endpointInput"]["encoding"] == "JSON"
