"""inference.py: strict parsing of every wire format, content negotiation, errors with their status
through transform_fn, batching, thread safety."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import inference
from inference import InferenceError


@pytest.fixture(scope="module")
def model(binary_run):
    return inference.model_fn(str(binary_run.model))


PAIR = ("The bank raised rates by a quarter point.", 'Rates rose a "quarter point", the bank said.')


@pytest.mark.parametrize("body, content_type", [
    (b'The bank raised rates by a quarter point.,"Rates rose a ""quarter point"", the bank said."\n', "text/csv"),
    (b'The bank raised rates by a quarter point.,"Rates rose a ""quarter point"", the bank said."',
     "text/csv; charset=utf-8"),
    (json.dumps({"instances": [{"sentence1": PAIR[0], "sentence2": PAIR[1]}]}).encode(), "application/json"),
    (json.dumps([list(PAIR)]).encode(), "application/json"),
    (json.dumps({"sentence1": PAIR[0], "sentence2": PAIR[1]}).encode(), "application/json"),
    (json.dumps({"instances": [list(PAIR)]}).encode(), "Application/JSON"),
    (json.dumps({"sentence1": PAIR[0], "sentence2": PAIR[1]}).encode() + b"\n", "application/jsonlines"),
    (json.dumps(list(PAIR)).encode(), "application/jsonlines"),
    ("\ufeff" + json.dumps([list(PAIR)]), "application/json"),  # str bodies work too
])
def test_every_wire_format_parses_to_the_same_pair(body, content_type):
    data = inference.parse_request(body, content_type)
    assert list(data) == [PAIR]
    assert data.content_type == content_type.split(";")[0].lower()


def test_many_pairs_keep_their_order():
    pairs = [(f"Sentence number {i}.", f"Another sentence {i}, with a comma.") for i in range(50)]
    lines = "".join(json.dumps({"sentence1": a, "sentence2": b}) + "\n" for a, b in pairs)
    assert list(inference.parse_request(lines.encode(), "application/jsonlines")) == pairs
    csv_body = "".join(f'{a},"{b}"\r\n' for a, b in pairs).encode()
    assert list(inference.parse_request(csv_body, "text/csv")) == pairs


BAD = [
    (b"", "text/csv", 400, "empty request body"),
    (b"  \n ", "application/json", 400, "empty request body"),
    (None, "text/csv", 400, "empty request body"),
    (b"a,b", "text/plain", 415, "unsupported content type 'text/plain'"),
    (b"a,b", None, 415, "unsupported content type None"),
    (b"a,b", "text/csv; charset=latin-1", 415, "unsupported charset 'latin-1'"),
    (b"caf\xe9,b", "text/csv", 400, "not UTF-8 text (byte 0xe9 at offset 3)"),
    # What the container hands over for non-UTF-8 text/csv and application/json bodies.
    ("caf\ufffd,b", "text/csv", 400, "not UTF-8 text (character 3 decodes to U+FFFD"),
    (b"only one column\n", "text/csv", 400, "row 1: expected 2 columns (sentence1,sentence2), got 1"),
    (b"a,b\n1,a,b\n", "text/csv", 400, "row 2: expected 2 columns (sentence1,sentence2), got 3"),
    (b"a,b\n\nc,d\n", "text/csv", 400, "row 2 is empty"),
    (b'a,"b\n', "text/csv", 400, "malformed CSV"),
    (b'a,"b"c\n', "text/csv", 400, "malformed CSV"),
    (b"a, \n", "text/csv", 400, "sentence2 is empty"),
    (b"{", "application/json", 400, "malformed JSON at line 1 column 2"),
    (b"[" * 100000, "application/json", 400, "malformed JSON"),
    (b'"just a string"', "application/json", 400, "got str"),
    (b'["a", "b"]', "application/json", 400, "wrap a single pair: [[sentence1, sentence2]]"),
    (b'{"instances": []}', "application/json", 400, "no sentence pairs"),
    (b'[]', "application/json", 400, "no sentence pairs"),
    (b'{"instances": {"sentence1": "a"}}', "application/json", 400, "'instances' must be a list, got dict"),
    (b'{"instances": [], "extra": 1}', "application/json", 400, "unexpected key(s) 'extra'"),
    (b'{"instances": [{"sentence1": "a"}]}', "application/json", 400, "instance 0: expected keys sentence1 and "
                                                                      "sentence2 (missing sentence2)"),
    (b'{"instances": [{"sentence1": "a", "sentence2": "b", "id": 3}]}', "application/json", 400,
     "unexpected 'id'"),
    (b'{"instances": [{"sentence1": "a", "sentence2": 5}]}', "application/json", 400,
     "instance 0: sentence2 must be a string, got int"),
    (b'[["a", null]]', "application/json", 400, "instance 0: sentence2 must be a string, got null"),
    (b'[["a", "b", "c"]]', "application/json", 400, "expected a pair [sentence1, sentence2], got 3 values"),
    (b'[["a", "b"], 7]', "application/json", 400, "instance 1: expected an object"),
    (b'[[NaN, "b"]]', "application/json", 400, "sentence1 must be a string, got float"),
    (b'{"sentence1": "a", "sentence2": "b"}\n{"sentence1": "a"}', "application/jsonlines", 400,
     "line 2: expected keys sentence1 and sentence2"),
    (b'{"sentence1": "a", "sentence2": "b"}\n\n["a", "b"]', "application/jsonlines", 400, "line 2 is empty"),
    (b'["a", "b"]\n{oops', "application/jsonlines", 400, "malformed JSON on line 2"),
]


@pytest.mark.parametrize("body, content_type, status, message", BAD)
def test_client_mistakes_are_inference_errors_with_a_clear_message(body, content_type, status, message):
    with pytest.raises(InferenceError) as info:
        inference.parse_request(body, content_type)
    assert info.value.status_code == status
    assert message in info.value.message


def test_limits(monkeypatch):
    with pytest.raises(InferenceError) as info:
        inference.parse_request(b"a,b\n" * (inference.MAX_BODY_BYTES // 4 + 1), "text/csv")
    assert info.value.status_code == 413
    with pytest.raises(InferenceError, match="limit is 5000"):
        inference.parse_request(("a," + "b" * 5001).encode(), "text/csv")
    monkeypatch.setattr(inference, "MAX_PAIRS", 3)
    with pytest.raises(InferenceError, match="4 pairs; the limit is 3"):
        inference.parse_request(b"a,b\n" * 4, "text/csv")
    with pytest.raises(InferenceError, match="the limit is 3"):
        inference.parse_request(json.dumps([["a", "b"]] * 10).encode(), "application/json")


def test_prediction_outputs_in_every_accept_type(model):
    data = inference.parse_request(b"A cat sat on the mat.,A cat sat on the mat.\n"
                              b"A cat sat on the mat.,Stock prices fell sharply in Tokyo.\n", "text/csv")
    prediction = inference.predict(data, model)
    body, ct = inference.format_response(prediction, "application/json")
    records = json.loads(body)["predictions"]
    assert ct == "application/json" and len(records) == 2
    assert all(set(r) == {"label", "probability"} and r["label"] in (0, 1) for r in records)
    assert records[0]["probability"] > records[1]["probability"]
    assert all(r["label"] == int(r["probability"] >= 0.5) for r in records)
    csv_body, ct = inference.format_response(prediction, "text/csv")
    assert ct == "text/csv"
    assert csv_body == "".join(f"{r['label']},{r['probability']:.6f}\n" for r in records)
    lines, ct = inference.format_response(prediction, "application/jsonlines")
    assert ct == "application/jsonlines"
    assert [json.loads(line) for line in lines.splitlines()] == records


@pytest.mark.parametrize("request_type, accept, default, expected", [
    ("text/csv", None, None, "application/json"),  # the default answer type, whatever the request's
    ("text/csv", "*/*", None, "application/json"),
    ("text/csv", "*/*", "text/csv", "text/csv"),
    ("application/json", None, "application/jsonlines", "application/jsonlines"),
    ("application/json", "*/*", "image/png", "application/json"),  # not a type this code writes
    ("application/jsonlines", "", None, "application/json"),
    ("text/csv", "application/*", None, "application/json"),
    ("application/json", "text/*", None, "text/csv"),
    ("text/csv", "text/html, application/jsonlines;q=0.5, application/json;q=0.9", None, "application/json"),
    ("text/csv", "application/json; charset=utf-8", None, "application/json"),
])
def test_accept_negotiation(model, monkeypatch, request_type, accept, default, expected):
    """Missing or ``*/*``: ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` when it names a type this
    code writes, else application/json - the container's own rule (sagemaker-containers
    ``_env.ServingEnv.default_accept``), never the request's type."""
    if default is None:
        monkeypatch.delenv(inference.DEFAULT_ACCEPT_ENV, raising=False)
    else:
        monkeypatch.setenv(inference.DEFAULT_ACCEPT_ENV, default)
    body = b"a b c,a b d" if request_type == "text/csv" else b'[["a b c", "a b d"]]'
    if request_type == "application/jsonlines":
        body = b'["a b c", "a b d"]'
    prediction = inference.predict(inference.parse_request(body, request_type), model)
    assert inference.format_response(prediction, accept)[1] == expected


def test_unsatisfiable_accept_is_406(model):
    prediction = inference.predict([PAIR], model)
    with pytest.raises(InferenceError) as info:
        inference.format_response(prediction, "text/html, application/xml;q=0.5")
    assert info.value.status_code == 406
    assert "text/csv, application/json, application/jsonlines" in info.value.message


def test_batches_equal_single_predictions_and_threads_agree(model, binary_run):
    import steputil

    _, pairs = steputil.read_split(binary_run.test)
    pairs = pairs * 4
    batch = inference.predict(pairs, model).probabilities
    with ThreadPoolExecutor(4) as pool:
        singles = list(pool.map(lambda p: inference.predict([p], model).probabilities[0], pairs))
    np.testing.assert_allclose(singles, batch, rtol=0, atol=1e-12)


def test_no_pairs_give_no_predictions(model):
    prediction = inference.predict(inference.Pairs([], "text/csv"), model)
    assert len(prediction) == 0
    assert inference.format_response(prediction, "text/csv") == ("", "text/csv")
    assert json.loads(inference.format_response(prediction, "application/json")[0]) == {"predictions": []}


THREADS = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import inference  # nothing else first: the container imports the program, then model_fn loads the model
inference.model_fn(sys.argv[2])
from threadpoolctl import threadpool_info
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
print(json.dumps({"openmp_threads": _openmp_effective_n_threads(),
                  "pools": {i["user_api"]: i["num_threads"] for i in threadpool_info()}}))
"""


def test_model_fn_caps_openmp_and_blas_to_one_thread(binary_run, scripts_dir, script_env):
    """One gunicorn worker per vCPU in the image: model_fn leaves the serving thread one
    OpenMP thread (HistGradientBoosting's pool) and one BLAS thread, even when the
    environment asked for more. The OpenMP runtime is loaded with the model, so the cap
    must come after loading it (threadpoolctl caps only loaded libraries)."""
    import subprocess
    import sys

    env = dict(script_env, OMP_NUM_THREADS="4", OPENBLAS_NUM_THREADS="4", MKL_NUM_THREADS="4")
    out = subprocess.run([sys.executable, "-c", THREADS, str(scripts_dir), str(binary_run.model)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["openmp_threads"] == 1
    assert got["pools"].get("openmp") == 1 and got["pools"].get("blas") == 1


def test_model_fn_errors_and_info(model, tmp_path):
    assert model.problem_type == "BinaryClassification"
    assert model.info["labels"] == [0, 1]
    with pytest.raises(FileNotFoundError, match="no model.joblib"):
        inference.model_fn(str(tmp_path))


def test_inference_error_carries_status_and_message():
    err = InferenceError(415, "nope")
    assert (err.status_code, err.message, str(err)) == (415, "nope", "nope")
    assert isinstance(err, Exception)


def test_the_container_sees_transform_fn_only():
    """The scikit-learn image refuses a module with transform_fn and any of
    input_fn/predict_fn/output_fn; with input_fn etc. every exception would be a 500."""
    assert callable(inference.transform_fn) and callable(inference.model_fn)
    assert not any(hasattr(inference, f) for f in ("input_fn", "predict_fn", "output_fn"))


def _answer(response):
    return response.status_code, response.headers["Content-Type"], response.get_data()


@pytest.mark.parametrize("body, content_type, accept, status, words", [
    ("A cat sat.,A cat sat.\n", "text/csv", "application/json", 200, b'{"predictions":[{"label":'),
    ("A cat sat.,A cat sat.\n", "text/csv", "text/csv", 200, b"1,"),
    (b'["A cat sat.", "A cat sat."]\n', "application/jsonlines", "application/jsonlines", 200, b'{"label":'),
    ("only one column\n", "text/csv", "application/json", 400, b"expected 2 columns"),
    ("{", "application/json", "application/json", 400, b"malformed JSON"),
    (b"x", "text/plain", "application/json", 415, b"unsupported content type 'text/plain'"),
    ("A cat sat.,A cat sat.\n", "text/csv", "image/png", 406, b"cannot produce 'image/png'"),
    ("", "text/csv", "application/json", 400, b"empty request body"),
    ("caf\ufffd,b\n", "text/csv", "application/json", 400, b"not UTF-8"),
    (b"a,b\n" * (inference.MAX_BODY_BYTES // 4 + 1), "text/csv; charset=utf-8", "text/csv", 413, b"the limit is"),
])
def test_transform_fn_answers_with_the_status(model, body, content_type, accept, status, words):
    got_status, got_type, got_body = _answer(inference.transform_fn(model, body, content_type, accept))
    assert got_status == status and words in got_body
    if status == 200:
        assert got_type == accept
    else:
        assert got_type == "text/plain; charset=utf-8" and b"Traceback" not in got_body


def test_batch_transform_fn_equals_transform_fn_per_request(model, monkeypatch):
    requests = [("A cat sat.,A cat sat.\n", "text/csv", "text/csv"),
                ("x", "text/csv", "text/csv"),
                ('[["Stocks fell.", "Shares dropped."], ["a b", "c d"]]', "application/json", "application/json"),
                (b"x", "image/png", "text/csv"),
                ("Tea is hot.,The train was late.\n", "text/csv", "image/png")]
    calls = []
    real = inference.predict
    monkeypatch.setattr(inference, "predict", lambda pairs, m: calls.append(len(pairs)) or real(pairs, m))
    batched = [_answer(r) for r in inference.batch_transform_fn(model, requests)]
    assert calls == [4]  # one prediction for the 4 pairs of the 3 requests that parse
    assert batched == [_answer(inference.transform_fn(model, *r)) for r in requests]
    assert [status for status, _t, _b in batched] == [200, 400, 200, 415, 406]


def test_a_bug_is_raised_not_answered(model, monkeypatch):
    """transform_fn lets a bug propagate (the container answers 500); batch_transform_fn
    hands it back in that request's place, its neighbours answered."""
    real = inference.predict

    def predict(pairs, m):
        if any(a == "boom" for a, _b in pairs):
            raise RuntimeError("a bug")
        return real(pairs, m)

    monkeypatch.setattr(inference, "predict", predict)
    with pytest.raises(RuntimeError, match="a bug"):
        inference.transform_fn(model, "boom,x\n", "text/csv", "text/csv")
    out = inference.batch_transform_fn(model, [("boom,x\n", "text/csv", "text/csv"),
                                               ("a b,a c\n", "text/csv", "text/csv")])
    assert isinstance(out[0], RuntimeError) and out[1].status_code == 200
