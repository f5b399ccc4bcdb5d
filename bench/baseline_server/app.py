"""The baseline: a plain Flask app serving the same model through the same
``inference.py`` entry, the way SageMaker's scikit-learn container does
(Flask under gunicorn, one worker process per core, one ``transform_fn`` call
per request, the body passed as the container passes it). The real image's
stack (sagemaker-containers, gevent workers) is ``tests/serving/realstack.py``.

Run (what ``bench/endpoint_load.py`` does)::

    STSMON_BASELINE_MODEL_DIR=/path/to/model gunicorn -w 2 -b 127.0.0.1:8090 \
        --chdir bench/baseline_server app:app

``STSMON_BASELINE_MODEL_DIR``: an extracted model folder (``model.joblib`` and
``code/inference.py``); the code folder goes first on ``sys.path`` as in the
container.
"""

import importlib.util
import os
import sys

from flask import Flask, Response, request

MODEL_DIR = os.environ["STSMON_BASELINE_MODEL_DIR"]
CODE_DIR = os.path.join(MODEL_DIR, "code")
sys.path.insert(0, CODE_DIR)
_spec = importlib.util.spec_from_file_location("inference", os.path.join(CODE_DIR, "inference.py"))
inference = importlib.util.module_from_spec(_spec)
sys.modules["inference"] = inference
_spec.loader.exec_module(inference)
model = inference.model_fn(MODEL_DIR)

app = Flask(__name__)


@app.get("/ping")
def ping():
    return Response(status=200)


@app.post("/invocations")
def invocations():
    content_type = request.headers.get("Content-Type") or "application/json"
    body = request.get_data(as_text=content_type in ("application/json", "text/csv"))
    accept = request.headers.get("Accept")
    if not accept or accept == "*/*":
        accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/json")
    answer = inference.transform_fn(model, body, content_type, accept)
    return Response(answer.get_data(), status=answer.status_code,
                    headers={"Content-Type": answer.headers["Content-Type"]})
