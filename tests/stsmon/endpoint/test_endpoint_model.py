"""Loading a package like SageMaker's container and batching requests through its functions."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stsmon.endpoint import model as model_mod
from stsmon.endpoint.model import InferenceHandler, ModelLoadError, code_location, prepare_model_dir

CSV = "text/csv"
JSON = "application/json"


def make_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_archive_is_extracted_once_by_content(tmp_path, toy_model_dir):
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for f in sorted(toy_model_dir.rglob("*")):
            tar.add(f, arcname=str(f.relative_to(toy_model_dir)), recursive=False)
    first = prepare_model_dir(archive, tmp_path / "cache")
    assert (first / "model.joblib").is_file() and (first / "code" / "inference.py").is_file()
    assert prepare_model_dir(archive, tmp_path / "cache") == first
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.name]  # no temp leftovers
    assert prepare_model_dir(toy_model_dir, tmp_path / "cache") == toy_model_dir.resolve()


def test_archive_members_escaping_the_folder_are_refused(tmp_path):
    archive = make_tar(tmp_path / "evil.tar.gz", {"../evil.py": b"x", "model.joblib": b"y"})
    with pytest.raises(ModelLoadError, match="cannot extract"):
        prepare_model_dir(archive, tmp_path / "cache")
    assert not (tmp_path / "evil.py").exists()
    assert list((tmp_path / "cache").iterdir()) == []  # nothing half-extracted


def test_missing_or_broken_archives_are_clear_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        prepare_model_dir(tmp_path / "nope.tar.gz", tmp_path / "cache")
    (tmp_path / "bad.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(ModelLoadError, match="cannot extract"):
        prepare_model_dir(tmp_path / "bad.tar.gz", tmp_path / "cache")


def test_code_location_maps_container_paths_into_the_model(tmp_path):
    assert code_location(tmp_path, {}) == (tmp_path / "code", "inference.py")
    env = {"SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code", "SAGEMAKER_PROGRAM": "serve.py"}
    assert code_location(tmp_path, env) == (tmp_path / "code", "serve.py")
    with pytest.raises(ModelLoadError, match="S3 source archive"):
        code_location(tmp_path, {"SAGEMAKER_SUBMIT_DIRECTORY": "s3://b/sourcedir.tar.gz"})
    with pytest.raises(ModelLoadError, match="file name"):
        code_location(tmp_path, {"SAGEMAKER_PROGRAM": "../x.py"})


def write_package(folder: Path, inference_src: str) -> Path:
    (folder / "code").mkdir(parents=True)
    (folder / "code" / "inference.py").write_text(inference_src)
    return folder


def test_load_errors_name_the_problem(tmp_path, isolated_imports):
    with pytest.raises(ModelLoadError, match="inference program not found"):
        InferenceHandler.load(tmp_path / "empty")
    pkg = write_package(tmp_path / "a", "def model_fn(d):\n    return 1\n")
    with pytest.raises(ModelLoadError, match="defines neither transform_fn nor input_fn, predict_fn, output_fn"):
        InferenceHandler.load(pkg)
    pkg = write_package(tmp_path / "b", "import no_such_module_xyz\n")
    with pytest.raises(ModelLoadError, match="cannot import .*No module named 'no_such_module_xyz'"):
        InferenceHandler.load(pkg)
    src = ("def model_fn(d):\n    raise FileNotFoundError('model.joblib missing')\n"
           "input_fn = predict_fn = output_fn = lambda *a: None\n")
    pkg = write_package(tmp_path / "c", src)
    with pytest.raises(ModelLoadError, match="model_fn.*failed: FileNotFoundError: model.joblib missing"):
        InferenceHandler.load(pkg)


def test_transform_fn_next_to_input_fn_is_refused_like_the_image(tmp_path, isolated_imports):
    """aws/sagemaker-scikit-learn-container serving.py ``_user_module_transformer``:
    "Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn"."""
    src = "def model_fn(d):\n    return 1\ntransform_fn = input_fn = lambda *a: None\n"
    with pytest.raises(ModelLoadError, match="defines transform_fn and input_fn.*Cannot use transform_fn"):
        InferenceHandler.load(write_package(tmp_path / "a", src))


@pytest.mark.parametrize("headers, default, expected", [
    ({}, JSON, (JSON, JSON)),
    ({"content-type": CSV}, JSON, (CSV, JSON)),
    ({"content-type": CSV, "accept": "*/*"}, CSV, (CSV, CSV)),
    ({"content-type": CSV, "accept": ""}, JSON, (CSV, JSON)),
    ({"content-type": "", "accept": "text/csv"}, JSON, (JSON, CSV)),
    ({"contenttype": "application/jsonlines", "content-type": CSV, "accept": "*/*;q=0.5"}, JSON,
     ("application/jsonlines", "*/*;q=0.5")),
])
def test_content_type_and_accept_as_the_container_passes_them(headers, default, expected):
    """sagemaker-containers 2.8.6.post2 ``_worker.Request``: ``content_type`` is the
    ``ContentType`` header, else ``Content-Type``, else application/json; ``accept`` is
    the ``Accept`` header unless it is missing or exactly ``*/*``, then the default."""
    assert model_mod.container_request(headers, default) == expected


def test_bodies_reach_the_program_as_the_container_decodes_them():
    """``_worker.Request.content``: text (werkzeug ``get_data(as_text=True)``, UTF-8 with
    replacement) for exactly application/json and text/csv, else bytes."""
    assert model_mod.container_body(b"caf\xc3\xa9,x", CSV) == "café,x"
    assert model_mod.container_body(b"caf\xe9,x", CSV) == "caf\ufffd,x"
    assert model_mod.container_body(b"[1]", JSON) == "[1]"
    assert model_mod.container_body(b"a,b", "text/csv; charset=utf-8") == b"a,b"
    assert model_mod.container_body(b'["a"]', "application/jsonlines") == b'["a"]'


def test_what_the_container_makes_of_a_result():
    """``_transformer.Transformer.transform`` and Flask's ``make_response``."""
    answer = model_mod._answer
    assert answer(("a,b\n", CSV), "f") == model_mod.Result(200, b"a,b\n", "text/csv; charset=utf-8")
    assert answer((b"{}", JSON), "f") == model_mod.Result(200, b"{}", JSON)
    assert answer(("x",), "f").content_type == JSON  # worker.Response's default mimetype
    assert answer("hello", "f") == model_mod.Result(200, b"hello", "text/html; charset=utf-8")
    assert answer({"b": 1, "a": [2]}, "f") == model_mod.Result(200, b'{"a":[2],"b":1}\n', JSON)
    bad = answer(42, "transform_fn")
    assert (bad.status, bad.content_type, bad.kind) == (500, "text/html; charset=utf-8", "server")

    class Resp:
        status_code = 415
        headers = {"Content-Type": "text/plain; charset=utf-8"}

        def get_data(self):
            return b"no such type"

    out = answer(Resp(), "f")
    assert (out.status, out.body, out.content_type, out.kind, out.message) == (
        415, b"no such type", "text/plain; charset=utf-8", "client", "no such type")


def test_transform_path_answers_together_through_batch_transform_fn(toy_model_dir, isolated_imports):
    handler = InferenceHandler.load(toy_model_dir)
    requests = [
        (b"the cat sat,a cat sat\n", CSV, CSV),
        (json.dumps({"instances": [{"sentence1": "x y", "sentence2": "x z"}]}).encode(), JSON, JSON),
        (b"stocks fell,shares fell\nI like tea,the train\n", CSV, JSON),
        (b"only one column\n", CSV, CSV),
    ]
    one_by_one = [handler.infer([r])[0] for r in requests]
    calls = []
    real = handler.batch_transform_fn
    handler.batch_transform_fn = lambda model, reqs: calls.append(len(reqs)) or real(model, reqs)
    batched = handler.infer(requests)
    assert calls == [4] and batched == one_by_one
    assert [r.status for r in batched] == [200, 200, 200, 400]
    assert batched[0].content_type == CSV and batched[0].body.count(b"\n") == 1
    assert len(json.loads(batched[2].body)["predictions"]) == 2
    assert batched[3].kind == "client" and b"expected 2 columns" in batched[3].body


def test_transform_path_keeps_client_statuses_and_a_bug_is_a_500(toy_model_dir, isolated_imports):
    handler = InferenceHandler.load(toy_model_dir)
    results = handler.infer([
        (b"a b,a c\n", CSV, CSV),
        (b"only one column\n", CSV, CSV),  # 400
        (b"a b,a c\n", "text/plain", CSV),  # 415
        (b"a b,a c\n", CSV, "image/png"),  # 406
        (b"__boom__,x\n", CSV, CSV),  # a bug in predict: 500, its neighbours answered
        (b"x y,x y\n", CSV, CSV),
    ])
    assert [r.status for r in results] == [200, 400, 415, 406, 500, 200]
    assert [r.kind for r in results] == ["ok", "client", "client", "client", "server", "ok"]
    assert results[4].body == model_mod.INTERNAL_ERROR_PAGE and results[4].content_type == "text/html; charset=utf-8"


def test_functions_path_answers_500_for_any_exception_as_the_container_does(toy_functions_model_dir,
                                                                            isolated_imports):
    """sagemaker-containers wraps input_fn/predict_fn/output_fn in ``error_wrapper``:
    whatever they raise - a client mistake included - is a 500."""
    handler = InferenceHandler.load(toy_functions_model_dir)
    results = handler.infer([
        (b"a b,a c\n", CSV, CSV),
        (b"only one column\n", CSV, CSV),
        (b"a b,a c\n", "text/plain", CSV),
        (b"a b,a c\n", CSV, "image/png"),
        (b"__boom__,x\n", CSV, CSV),  # retried alone: its neighbours are answered
        (b"x y,x y\n", CSV, CSV),
    ])
    assert [r.status for r in results] == [200, 500, 500, 500, 500, 200]
    assert all(r.body == model_mod.INTERNAL_ERROR_PAGE for r in results[1:5])
    assert results[0].content_type == "text/csv; charset=utf-8"  # a (body, mimetype) tuple, as Flask sends it


def test_batched_results_equal_one_by_one_and_predict_runs_once(toy_functions_model_dir, isolated_imports):
    handler = InferenceHandler.load(toy_functions_model_dir)
    requests = [
        (b"the cat sat,a cat sat\n", CSV, CSV),
        (json.dumps({"instances": [{"sentence1": "x y", "sentence2": "x z"}]}).encode(), JSON, JSON),
        (b"stocks fell,shares fell\nI like tea,the train\n", CSV, JSON),
        (b'["a b", "a b"]\n{"sentence1": "q", "sentence2": "r"}\n', "application/jsonlines", "application/jsonlines"),
    ]
    one_by_one = [handler.infer([r])[0] for r in requests]
    calls = []
    real = handler.predict_fn

    def counting(data, model):
        calls.append(len(data))
        return real(data, model)

    handler.predict_fn = counting
    batched = handler.infer(requests)
    # The toy's inputs are plain lists: all 4 requests (6 rows) stack; the first
    # stacked call is checked once against one-by-one predictions.
    assert calls == [6, 1, 1, 2, 2]
    assert handler.batching and handler._verified
    calls.clear()
    assert handler.infer(requests) == batched
    assert calls == [6]  # one predict_fn call for 6 rows of 4 requests
    assert batched == one_by_one
    assert [r.status for r in batched] == [200] * 4
    assert batched[0].content_type == "text/csv; charset=utf-8" and batched[0].body.count(b"\n") == 1
    assert len(json.loads(batched[2].body)["predictions"]) == 2


def test_max_batch_splits_predict_calls(toy_functions_model_dir, isolated_imports):
    handler = InferenceHandler.load(toy_functions_model_dir, max_batch=2)
    handler._verified = True
    calls = []
    real = handler.predict_fn
    handler.predict_fn = lambda data, model: calls.append(len(data)) or real(data, model)
    assert all(r.status == 200 for r in handler.infer([(b"a,b\n", CSV, CSV)] * 5))
    assert calls == [2, 2, 1]


@pytest.mark.parametrize("items, pred, sizes", [
    ([[1, 2], [3]], [10, 20, 30], [2, 1]),
    ([np.zeros((2, 3)), np.ones((1, 3))], np.arange(3), [2, 1]),
    ([pd.DataFrame({"a": [1, 2]}), pd.DataFrame({"a": [3]})], pd.DataFrame({"p": [1, 2, 3]}), [2, 1]),
    ([[1], [2, 3]], {"label": np.array([0, 1, 1]), "probability": np.array([0.1, 0.6, 0.7])}, [1, 2]),
    ([[1], [2, 3]], (np.array([0, 1, 1]), np.array([0.1, 0.6, 0.7])), [1, 2]),
])
def test_stacking_and_splitting_round_trip(items, pred, sizes):
    """Lists, arrays, frames, dicts and tuples of them stack and split per request."""
    stacked = model_mod._concat(items)
    assert model_mod._rows(stacked) == sum(sizes)
    parts = model_mod._split(pred, sizes)
    assert len(parts) == len(sizes)
    for part, n in zip(parts, sizes):
        if isinstance(part, dict):
            assert all(len(v) == n for v in part.values())
        elif isinstance(part, tuple):
            assert all(len(v) == n for v in part)
        else:
            assert len(part) == n


def test_unstackable_inputs_are_not_stacked():
    assert model_mod._concat([[1], np.zeros(1)]) is None
    assert model_mod._concat([np.zeros((1, 2)), np.zeros((1, 3))]) is None
    assert model_mod._concat([pd.DataFrame({"a": [1]}), pd.DataFrame({"b": [1]})]) is None
    assert model_mod._rows({"a": 1}) is None
    with pytest.raises(ValueError):
        model_mod._split([1, 2], [2, 1])


class Rows(list):
    """Like the real package's ``Pairs``: a list with the request's content type."""

    def __init__(self, rows=(), content_type=None):
        super().__init__(rows)
        self.content_type = content_type


class Preds:
    """Like the real package's ``Predictions``: per-row arrays plus request facts."""

    def __init__(self, values, probabilities, content_type):
        self.values = values
        self.probabilities = probabilities
        self.content_type = content_type

    def __len__(self):
        return len(self.values)


def test_list_subclasses_stack_by_attributes_and_objects_split_by_row_attributes():
    a, b = Rows([("x", "y")], "text/csv"), Rows([("p", "q"), ("r", "s")], "text/csv")
    stacked = model_mod._concat([a, b])
    assert type(stacked) is Rows and stacked.content_type == "text/csv" and len(stacked) == 3
    assert model_mod._concat([a, Rows([("x", "y")], "application/json")]) is None
    pred = Preds(np.array([1, 0, 1]), np.array([0.9, 0.2, 0.7]), "text/csv")
    parts = model_mod._split(pred, [1, 2])
    assert [len(p) for p in parts] == [1, 2] and parts[1].probabilities.tolist() == [0.2, 0.7]
    assert all(p.content_type == "text/csv" for p in parts)
    assert model_mod._same(parts[0], Preds(np.array([1]), np.array([0.9 + 1e-15]), "text/csv"))
    assert not model_mod._same(parts[0], Preds(np.array([1]), np.array([0.8]), "text/csv"))


def test_batching_is_switched_off_when_predictions_depend_on_the_batch(tmp_path, isolated_imports, caplog):
    src = """
def model_fn(d):
    return None
def input_fn(body, content_type):
    return [float(x) for x in body.split()]  # text: the container decodes text/csv
def predict_fn(data, model):
    mean = sum(data) / len(data)
    return [x - mean for x in data]  # depends on the other rows: not batchable
def output_fn(pred, accept):
    return ",".join(f"{p:g}" for p in pred), "text/csv"
"""
    pkg = tmp_path / "pkg"
    (pkg / "code").mkdir(parents=True)
    (pkg / "code" / "inference.py").write_text(src)
    handler = InferenceHandler.load(pkg)
    requests = [(b"1 3", "text/csv", "text/csv"), (b"10 20", "text/csv", "text/csv")]
    results = handler.infer(requests)
    assert [r.body for r in results] == [b"-1,1", b"-5,5"]  # the one-by-one answers
    assert not handler.batching
    assert "batching switched off" in caplog.text
    assert [r.body for r in handler.infer(requests)] == [b"-1,1", b"-5,5"]


THREADS_PROGRAM = '''
import json, os
from threadpoolctl import threadpool_info

def model_fn(model_dir):
    return None

def transform_fn(model, body, content_type, accept):
    import numpy  # BLAS and OpenMP loaded in the serving worker, as a real model does
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return json.dumps({"env": env, "openmp": _openmp_effective_n_threads()}), "application/json"
'''


@pytest.mark.parametrize("package_env, expected", [
    ({}, None),
    ({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}, "1"),
])
def test_worker_thread_pools_come_from_the_package_only(package_env, expected, start_server, tmp_path, monkeypatch):
    """On AWS a worker's thread settings are the container environment's (the image's
    plus the package's): the local endpoint sets none of its own and drops those of the
    shell that started it, so a package without a cap is served uncapped here too."""
    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # the developer's shell
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "7")
    pkg = write_package(tmp_path / "pkg", THREADS_PROGRAM)
    server = start_server(pkg, capture=False, workers=1, env=package_env)
    status, _headers, body = server.request("POST", "/invocations", b"x", {"Content-Type": "text/csv"})
    assert status == 200, body
    got = json.loads(body)
    assert got["env"] == {"OMP_NUM_THREADS": expected, "OPENBLAS_NUM_THREADS": expected, "MKL_NUM_THREADS": expected}
    if expected == "1":
        assert got["openmp"] == 1
