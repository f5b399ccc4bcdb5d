"""The server speaks SageMaker's container and runtime contracts to real clients,
and answers every bad request with its status and a clear body."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stsmon.endpoint.capture import scan_capture

CSV = "text/csv"
JSON = "application/json"
JSONL = "application/jsonlines"
NAME = "toy-endpoint"
RUNTIME = f"/endpoints/{NAME}/invocations"
SIX_MB = 6 * 1024 * 1024


@pytest.fixture(scope="module")
def server(toy_server):
    assert toy_server.name == NAME
    return toy_server


def wait_for_ids(server, ids: set[str], timeout: float = 15.0) -> dict[str, dict]:
    """The capture records of ``ids`` once all are on disk (flushes are asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        found = {r["eventMetadata"].get("inferenceId"): r for r in scan_capture(server.capture_root).records}
        if ids <= set(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


# -- real clients ------------------------------------------------------------------


def test_boto3_runtime_client_csv_and_json_with_inference_ids_in_capture(server, runtime_client):
    client = runtime_client(server.url)
    r = client.invoke_endpoint(EndpointName=NAME, Body=b'"a, b",a b\nx y,x y\n', ContentType=CSV,
                               Accept=CSV, InferenceId="boto_csv")
    assert r["ContentType"] == CSV and r["InvokedProductionVariant"] == "AllTraffic"
    rows = [line.split(",") for line in r["Body"].read().decode().splitlines()]
    assert len(rows) == 2 and all(row[0] in ("0", "1") and 0 <= float(row[1]) <= 1 for row in rows)

    body = json.dumps({"instances": [{"sentence1": "the cat sat", "sentence2": "a cat sat"}]})
    r = client.invoke_endpoint(EndpointName=NAME, Body=body, ContentType=JSON, Accept=JSON, InferenceId="boto_json")
    preds = json.loads(r["Body"].read())["predictions"]
    assert r["ContentType"] == JSON and set(preds[0]) == {"label", "probability"}

    r = client.invoke_endpoint(EndpointName=NAME, Body=b'["a", "b"]\n', ContentType=JSONL, Accept=JSONL)
    assert json.loads(r["Body"].read().decode().splitlines()[0])["label"] in (0, 1)

    found = wait_for_ids(server, {"boto_csv", "boto_json"})
    rec = found["boto_csv"]
    assert rec["captureData"]["endpointInput"] == {"observedContentType": CSV, "mode": "INPUT",
                                                   "data": '"a, b",a b\nx y,x y\n', "encoding": "CSV"}
    assert rec["captureData"]["endpointOutput"]["encoding"] == "CSV"
    assert rec["captureData"]["endpointOutput"]["data"].count("\n") == 2
    assert found["boto_json"]["captureData"]["endpointInput"]["encoding"] == "JSON"
    assert json.loads(found["boto_json"]["captureData"]["endpointInput"]["data"]) == json.loads(body)


def test_boto3_sees_model_errors_and_validation_errors_as_sagemaker_does(server, runtime_client):
    client = runtime_client(server.url)
    with pytest.raises(client.exceptions.ModelError) as err:
        client.invoke_endpoint(EndpointName=NAME, Body=b"x", ContentType="text/plain")
    assert err.value.response["OriginalStatusCode"] == 415
    assert "not supported" in err.value.response["OriginalMessage"]
    assert err.value.response["Error"]["Message"].startswith("Received client error (415) from primary")
    with pytest.raises(client.exceptions.ValidationError, match="Endpoint nope .* not found"):
        client.invoke_endpoint(EndpointName="nope", Body=b"a,b", ContentType=CSV)


def test_sagemaker_sdk_v3_endpoint_invoke(server, monkeypatch):
    """The SDK v3 Predictor path: ``sagemaker.core.resources.Endpoint.invoke`` with
    serializers, pointed at the local server like any SageMaker endpoint URL."""
    import boto3
    from sagemaker.core.deserializers import CSVDeserializer, JSONDeserializer
    from sagemaker.core.resources import Endpoint
    from sagemaker.core.serializers import CSVSerializer, JSONSerializer

    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", server.url)
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    ep = Endpoint.model_construct(endpoint_name=NAME, serializer=CSVSerializer(), deserializer=CSVDeserializer())
    out = ep.invoke(body=[["he said, \"yes\"", "he agreed"], ["x", "y"]], content_type=CSV, accept=CSV,
                    inference_id="sdk_csv", session=session, region="us-east-1")
    assert out.content_type == CSV and out.invoked_production_variant == "AllTraffic"
    assert len(out.body) == 2 and all(row[0] in ("0", "1") for row in out.body)

    ep = Endpoint.model_construct(endpoint_name=NAME, serializer=JSONSerializer(), deserializer=JSONDeserializer())
    out = ep.invoke(body={"instances": [{"sentence1": "a b", "sentence2": "a c"}]}, content_type=JSON,
                    accept=JSON, inference_id="sdk_json", session=session, region="us-east-1")
    assert out.body["predictions"][0]["label"] in (0, 1)
    found = wait_for_ids(server, {"sdk_csv", "sdk_json"})
    assert found["sdk_csv"]["captureData"]["endpointInput"]["data"] == '"he said, ""yes""",he agreed\nx,y'


def test_container_contract_ping_and_invocations(server):
    status, headers, body = server.request("GET", "/ping")
    assert status == 200
    status, headers, body = server.request("POST", "/invocations", b"a b,a c\n", {"Content-Type": CSV})
    assert status == 200 and headers["x-amzn-invoked-production-variant"] == "AllTraffic"
    # Accept missing: the container's default, SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT or JSON.
    assert headers["content-type"] == JSON and "predictions" in json.loads(body)


# -- bad input: every case has its status, a clear body, no capture ------------------

BAD_BODIES = [
    # (case id, content type, accept, body, status, words in the answer)
    ("text-plain", "text/plain", CSV, b"a,b\n", 415, "not supported"),
    ("xml", "application/xml", CSV, b"<a/>", 415, "not supported"),
    # No Content-Type: the container passes application/json (sagemaker-containers _worker.Request).
    ("no-content-type", None, CSV, b"a,b\n", 400, "malformed JSON"),
    ("png", "image/png", CSV, b"\x89PNG\r\n", 415, "not supported"),
    ("csv-typo", "text/csvx", CSV, b"a,b\n", 415, "not supported"),
    ("accept-png", CSV, "image/png", b"a,b\n", 406, "accept"),
    ("accept-html", CSV, "text/html", b"a,b\n", 406, "accept"),
    ("accept-xml", JSON, "application/xml", b'[["a", "b"]]', 406, "accept"),
    ("empty-csv", CSV, CSV, b"", 400, "empty"),
    ("empty-json", JSON, JSON, b"", 400, "empty"),
    ("blank-csv", CSV, CSV, b"  \n\n", 400, "empty"),
    ("csv-one-column", CSV, CSV, b"just one\n", 400, "2 columns"),
    ("csv-three-columns", CSV, CSV, b"a,b,c\n", 400, "2 columns"),
    ("csv-second-row-short", CSV, CSV, b"a,b\nc\n", 400, "row 2"),
    ("json-missing-key", JSON, JSON, b'{"instances": [{"sentence1": "a"}]}', 400, "sentence2"),
    ("json-triples", JSON, JSON, b'[["a", "b", "c"]]', 400, "pair"),
    ("json-number", JSON, JSON, b'[["a", 5]]', 400, "pair"),
    ("csv-latin1", CSV, CSV, b"caf\xe9,cafe\n", 400, "UTF-8"),
    ("json-bad-byte", JSON, JSON, b'[["a", "\xff"]]', 400, "UTF-8"),
    ("jsonl-bad-byte", JSONL, JSONL, b'["a", "\xfe"]\n', 400, "UTF-8"),
    ("json-truncated", JSON, JSON, b'{"instances": [', 400, "malformed JSON"),
    ("json-null", JSON, JSON, b"null", 400, "instances"),
    ("json-string", JSON, JSON, b'"hello"', 400, "instances"),
    ("json-instances-object", JSON, JSON, b'{"instances": {}}', 400, "instances"),
    ("json-empty-list", JSON, JSON, b"[]", 400, "instances"),
    ("jsonl-broken-line", JSONL, JSONL, b'["a", "b"]\n{"sentence1": \n', 400, "line 2"),
    ("csv-unclosed-quote", CSV, CSV, b'"a,b\n', 400, "CSV"),
    ("csv-junk-after-quote", CSV, CSV, b'"a"b,c\n', 400, "CSV"),
    ("csv-junk-after-second-quote", CSV, CSV, b'a,"b"c\n', 400, "CSV"),
]


def _ask(server, method, path, body, headers):
    status, resp_headers, resp_body = server.request(method, path, body, headers)
    text = resp_body.decode("utf-8", "replace")
    return status, resp_headers, text


@pytest.mark.parametrize("path", ["/invocations", RUNTIME], ids=["container", "runtime"])
@pytest.mark.parametrize("case", BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_bad_bodies(server, path, case):
    case_id, ctype, accept, body, expected, words = case
    headers = {"Accept": accept, "X-Amzn-SageMaker-Inference-Id": f"bad_{case_id}_{path[1:4]}"}
    if ctype:
        headers["Content-Type"] = ctype
    status, resp_headers, text = _ask(server, "POST", path, body, headers)
    assert status == expected, text
    assert words.lower() in text.lower() and "Traceback" not in text
    if path == RUNTIME:  # SageMaker's error shapes, so boto3 raises the right exception
        kind = resp_headers["x-amzn-errortype"].split(":")[0]
        assert kind == ("ValidationError" if case_id.startswith(("empty", "big")) else "ModelError")
        if kind == "ModelError":
            assert json.loads(text)["OriginalStatusCode"] == expected
    assert server.ping() == 200


BAD_REQUESTS = [
    # (case id, method, path, headers, body, status, words)
    ("unknown-path", "POST", "/invocation", {"Content-Type": CSV}, b"a,b", 404, "no such path"),
    ("root", "GET", "/", {}, None, 404, "no such path"),
    ("endpoint-without-invocations", "POST", f"/endpoints/{NAME}", {"Content-Type": CSV}, b"a,b", 404, "no such path"),
    ("other-endpoint", "POST", "/endpoints/other/invocations", {"Content-Type": CSV}, b"a,b", 404, "not found"),
    ("empty-endpoint-name", "POST", "/endpoints//invocations", {"Content-Type": CSV}, b"a,b", 404, "no such path"),
    ("ping-subpath", "GET", "/ping/x", {}, None, 404, "no such path"),
    ("get-invocations", "GET", "/invocations", {}, None, 405, "use POST"),
    ("put-invocations", "PUT", "/invocations", {"Content-Type": CSV}, b"a,b", 405, "use POST"),
    ("delete-runtime", "DELETE", RUNTIME, {}, None, 405, "use POST"),
    ("post-ping", "POST", "/ping", {"Content-Type": CSV}, b"a,b", 405, "use GET"),
    ("id-too-long", "POST", "/invocations", {"Content-Type": CSV, "X-Amzn-SageMaker-Inference-Id": "x" * 65},
     b"a,b", 400, "Inference-Id"),
    ("id-control-char", "POST", RUNTIME, {"Content-Type": CSV, "X-Amzn-SageMaker-Inference-Id": "a\tb"},
     b"a,b", 400, "Inference-Id"),
    ("custom-attributes-too-long", "POST", RUNTIME,
     {"Content-Type": CSV, "X-Amzn-SageMaker-Custom-Attributes": "a" * 1025}, b"a,b", 400, "Custom-Attributes"),
    ("wrong-variant", "POST", RUNTIME, {"Content-Type": CSV, "X-Amzn-SageMaker-Target-Variant": "B"},
     b"a,b", 400, "TargetVariant"),
    ("target-model", "POST", RUNTIME, {"Content-Type": CSV, "X-Amzn-SageMaker-Target-Model": "m.tar.gz"},
     b"a,b", 400, "multi-model"),
    ("six-mb-plus-one", "POST", "/invocations", {"Content-Type": CSV}, b"a" * (SIX_MB + 1), 413, "limit"),
    ("six-mb-plus-one-runtime", "POST", RUNTIME, {"Content-Type": CSV}, b"a" * (SIX_MB + 1), 413, "limit"),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests(server, case):
    case_id, method, path, headers, body, expected, words = case
    status, resp_headers, text = _ask(server, method, path, body, headers)
    assert status == expected, text
    assert words.lower() in text.lower() and "Traceback" not in text
    if expected == 405:
        assert "POST" in resp_headers["allow"] or "GET" in resp_headers["allow"]
    assert server.ping() == 200


def test_exactly_six_mb_is_not_too_large(server):
    # Not UTF-8, so the model refuses it quickly: 400 from input_fn, not 413.
    status, _h, text = _ask(server, "POST", "/invocations", b"\xff" * SIX_MB, {"Content-Type": CSV})
    assert status == 400 and "UTF-8" in text


def test_rejected_requests_are_never_captured(server):
    """Runs after the tables above (file order): none of their ids reached capture."""
    status, _h, _t = _ask(server, "POST", "/invocations", b"a,b\n", {"Content-Type": CSV,
                                                                     "X-Amzn-SageMaker-Inference-Id": "sentinel"})
    assert status == 200
    found = wait_for_ids(server, {"sentinel"})
    assert "sentinel" in found
    bad = sorted(i for i in found if i and i.startswith("bad_"))
    assert bad == []
    scan = scan_capture(server.capture_root)
    assert scan.bad_lines == 0 and scan.incomplete_last_lines == 0


# -- fuzz ----------------------------------------------------------------------------

TYPES = st.sampled_from([CSV, JSON, JSONL, "text/plain", "application/octet-stream", "", "text/csv; charset=utf-8"])
ACCEPTS = st.sampled_from([CSV, JSON, JSONL, "*/*", "image/png", ""])
BODIES = st.one_of(
    st.binary(min_size=0, max_size=300),
    st.text(max_size=200).map(lambda s: s.encode("utf-8")),
    st.lists(st.lists(st.text(max_size=20), max_size=4), max_size=4).map(lambda rows: json.dumps(rows).encode()),
    st.text(alphabet=',"\n\r ab\\', max_size=60).map(lambda s: s.encode()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, ctype=TYPES, accept=ACCEPTS, runtime=st.booleans())
def test_fuzz_random_bodies_never_get_a_5xx(server, body, ctype, accept, runtime):
    headers = {}
    if ctype:
        headers["Content-Type"] = ctype
    if accept:
        headers["Accept"] = accept
    status, _h, text = _ask(server, "POST", RUNTIME if runtime else "/invocations", body, headers)
    assert status in (200, 400, 406, 415), (status, text)
    assert "Traceback" not in text
