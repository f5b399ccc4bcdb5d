"""The model package on the SageMaker scikit-learn image's real serving stack, with network isolation.

The stack (``realstack.py``): the image 1.9-0's packages (aws/deep-learning-containers
``docker/sklearn/1.9-0`` uv.lock, commit 2c080f67de: pip 26.1.2, setuptools 80.10.2,
gunicorn 26.0.0, gevent 26.5.0, Flask 3.1.3), sagemaker-containers 2.8.6.post2 patched like
the image's Dockerfile, the image's ``serve`` (aws/sagemaker-scikit-learn-container) (``serving.py``: ``serving_entrypoint`` ->
sagemaker-containers ``_server.start`` -> ``pip install`` of the code, gunicorn with
gevent workers -> ``serving.main``), in a network namespace with only loopback, as an
endpoint with ``EnableNetworkIsolation`` runs. The package is a real ``model.tar.gz``
(the fixture corpus through ``preprocess.py`` and ``train.py``) with the container
``Environment`` of the RegisterModel step of the synthesized training pipeline.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

import realstack

pytestmark = [pytest.mark.usefixtures("real_stack"), pytest.mark.slow]

#: The environment the package was registered with before the fix (issue 10, fault 1).
BEFORE_FIX = ("SAGEMAKER_PROGRAM", "SAGEMAKER_SUBMIT_DIRECTORY")


@pytest.fixture(scope="module")
def container(model_archive, package_env, tmp_path_factory):
    """The package served by the real stack, shared by this module's tests."""
    run = realstack.Container(model_archive, package_env, tmp_path_factory.mktemp("container"))
    ready = run.start()
    yield run, ready
    run.close()


def test_package_serves_with_network_isolation(container):
    """The image's ``serve`` always runs ``pip install .`` on the code folder before
    gunicorn starts (sagemaker-containers ``_server.start`` -> ``_modules.import_module``);
    with the package's environment that install succeeds offline and /ping is 200."""
    run, ready = container
    assert ready == {"ready": True, "ping": 200, "exit_code": None}, run.log_tail()
    assert run.request("GET", "/ping").status == 200
    log = run.log.read_text(errors="replace")
    assert "-m pip install ." in log and "Successfully installed inference-1.0.0" in log, run.log_tail()
    assert "Booting worker" in log and "gevent" in log


def test_without_the_package_environment_serve_fails_under_isolation(model_archive, package_env, tmp_path):
    """The fault class: the package as registered before (program and submit directory
    only) never serves under network isolation - ``pip install .`` cannot download
    setuptools for its isolated build, ``serve`` exits, /ping never answers. The code
    folder on ``PYTHONPATH`` alone does not help: the install runs before gunicorn,
    whether or not the module is importable."""
    variants = {"as registered before": BEFORE_FIX, "PYTHONPATH only": BEFORE_FIX + ("PYTHONPATH",)}
    runs = {}
    try:
        for i, (name, keys) in enumerate(variants.items()):  # started together, they fail together
            env = {k: v for k, v in package_env.items() if k in keys}
            assert set(keys) == set(env)
            runs[name] = realstack.Container(model_archive, env, tmp_path / f"container{i}")
            runs[name].launch()
        for name, run in runs.items():
            ready = run.wait_ready()
            log = run.log.read_text(errors="replace")
            assert ready["ready"] is False and ready["ping"] is None and ready["exit_code"] not in (None, 0), \
                f"{name}: {ready}\n{log[-3000:]}"
            assert "InstallModuleError" in log and "setuptools" in log, f"{name}:\n{log[-3000:]}"
    finally:
        for run in runs.values():
            run.close()


SIX_MB = 6 * 1024 * 1024
GOOD_CSV = 'The company said its profit rose 12 percent.,"Profit at the company rose 12 percent, it said."\n' \
           "Police arrested two men.,The hurricane forced residents to leave.\n"
GOOD_JSON = json.dumps({"instances": [{"sentence1": "He did not attend the meeting.",
                                       "sentence2": "He skipped the meeting."}]})
GOOD_JSONL = '["Shares closed up 2 percent.", "Shares ended 2 percent higher."]\n' \
             '{"sentence1": "The museum will reopen in June.", "sentence2": "The team won on Sunday."}\n'

#: (case, Content-Type or None, Accept or None, body): a good request in each form, and the
#: bad-input matrix. Answers of the real stack and of the local endpoint must agree.
MATRIX = [
    ("csv-no-accept", "text/csv", None, GOOD_CSV.encode()),
    ("csv-accept-any", "text/csv", "*/*", GOOD_CSV.encode()),
    ("csv-accept-csv", "text/csv", "text/csv", GOOD_CSV.encode()),
    ("csv-charset-accept-jsonl", "text/csv; charset=utf-8", "application/jsonlines", GOOD_CSV.encode()),
    ("json", "application/json", "application/json", GOOD_JSON.encode()),
    ("jsonlines-accept-csv", "application/jsonlines", "text/csv", GOOD_JSONL.encode()),
    ("accept-list", "text/csv", "text/html, text/csv;q=0.5", GOOD_CSV.encode()),
    ("bad-csv-row", "text/csv", "text/csv", b'a b,"unclosed quote\n'),
    ("csv-junk-after-quote", "text/csv", "text/csv", b'a b,"c d"e\n'),
    ("wrong-column-count", "text/csv", "text/csv", b"one column only\n"),
    ("three-columns", "text/csv", None, b"a,b,c\n"),
    ("malformed-json", "application/json", "application/json", b'{"instances": [{"sentence1": "a"'),
    ("json-missing-key", "application/json", None, b'{"instances": [{"sentence1": "a b"}]}'),
    ("malformed-jsonlines", "application/jsonlines", None, b'["a", "b"]\n{oops\n'),
    ("unknown-content-type", "text/plain", "text/csv", GOOD_CSV.encode()),
    ("no-content-type", None, None, GOOD_CSV.encode()),
    ("latin1-charset", "text/csv; charset=latin-1", None, GOOD_CSV.encode()),
    ("unsupported-accept", "text/csv", "image/png", GOOD_CSV.encode()),
    ("empty-body", "text/csv", "text/csv", b""),
    ("blank-body", "application/json", None, b"  \n"),
    ("oversize-body", "text/csv", "text/csv", b"a b,c d\n" * (SIX_MB // 8 + 1)),
    ("non-utf8-csv", "text/csv", None, b"caf\xe9 au lait,coffee\n"),
    ("non-utf8-json", "application/json", None, b'[["caf\xe9", "coffee"]]'),
    ("non-utf8-jsonlines", "application/jsonlines", None, b'["caf\xe9", "coffee"]\n'),
]


def _shape(content_type: str | None, body: bytes):
    """What a client reads: parsed records (floats compared to 1e-6 later) or the text."""
    if content_type == "application/json":
        return json.loads(body)
    if content_type == "application/jsonlines":
        return [json.loads(line) for line in body.decode().splitlines()]
    if content_type == "text/csv":
        return [[float(x) for x in row] for row in csv.reader(io.StringIO(body.decode()))]
    return body.decode("utf-8", "replace")


def _close(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= 1e-6
    return a == b


@pytest.fixture(scope="module")
def real_answers(container):
    """Every matrix request through the real stack once (one round trip each)."""
    run, ready = container
    assert ready["ready"], run.log_tail()
    return {case: run.invoke(body, ctype, accept) for case, ctype, accept, body in MATRIX}


@pytest.mark.parametrize("case, ctype, accept, body", MATRIX, ids=[m[0] for m in MATRIX])
def test_local_endpoint_answers_what_the_real_container_answers(case, ctype, accept, body, real_answers,
                                                               local_endpoint):
    """Status, Content-Type and body of the local endpoint's ``/invocations`` equal the real
    stack's (predictions to 1e-6: Python and numpy differ between the two). The real stack
    is the image's: client errors keep their status only because ``inference.py`` answers
    through ``transform_fn`` (sagemaker-containers 2.8.6.post2 ``_transformer.Transformer.transform``
    returns its response as is; ``input_fn``/``predict_fn``/``output_fn`` exceptions become
    500), and a missing or ``*/*`` Accept is ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``
    (``_worker.Request.accept``)."""
    real = real_answers[case]
    headers = {}
    if ctype is not None:
        headers["Content-Type"] = ctype
    if accept is not None:
        headers["Accept"] = accept
    status, local_headers, local_body = local_endpoint.request("POST", "/invocations", body, headers)
    assert (status, local_headers.get("content-type")) == (real.status, real.content_type), \
        (real.body[:300], local_body[:300])
    if real.status == 200:
        assert _close(_shape(real.content_type, local_body), _shape(real.content_type, real.body)), \
            (real.body[:300], local_body[:300])
    else:
        assert local_body == real.body


def test_the_matrix_holds_every_kind_of_answer(real_answers):
    """The real stack's answers to the matrix: good requests 200 in the negotiated type,
    every client mistake its 4xx with a one-line message - none a 500."""
    got = {case: (a.status, a.content_type) for case, a in real_answers.items()}
    ok = {case: ct for case, (status, ct) in got.items() if status == 200}
    assert ok == {"csv-no-accept": "application/json", "csv-accept-any": "application/json",
                  "csv-accept-csv": "text/csv", "csv-charset-accept-jsonl": "application/jsonlines",
                  "json": "application/json", "jsonlines-accept-csv": "text/csv", "accept-list": "text/csv"}
    statuses = {case: status for case, (status, _ct) in got.items() if status != 200}
    assert statuses == {
        "bad-csv-row": 400, "csv-junk-after-quote": 400, "wrong-column-count": 400, "three-columns": 400,
        "malformed-json": 400, "json-missing-key": 400, "malformed-jsonlines": 400,
        "unknown-content-type": 415, "no-content-type": 400, "latin1-charset": 415, "unsupported-accept": 406,
        "empty-body": 400, "blank-body": 400, "oversize-body": 413, "non-utf8-csv": 400, "non-utf8-json": 400,
        "non-utf8-jsonlines": 400}
    for case in statuses:
        answer = real_answers[case]
        assert answer.content_type == "text/plain; charset=utf-8"
        assert b"\n" not in answer.body.strip() and b"Traceback" not in answer.body
    assert b"not UTF-8" in real_answers["non-utf8-csv"].body  # decoded by the container, refused by us
    assert b"malformed JSON" in real_answers["no-content-type"].body  # no Content-Type is JSON to the container
