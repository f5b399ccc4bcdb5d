"""The baseline: a plain Flask app serving the same model through the same
``inference.py`` functions, the way SageMaker's scikit-learn container does
(Flask under gunicorn, one worker process per core, one request per
``input_fn`` → ``predict_fn`` → ``output_fn`` call).

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
    try:
        data = inference.input_fn(request.get_data(), request.content_type or "")
        prediction = inference.predict_fn(data, model)
        body, content_type = inference.output_fn(prediction, request.headers.get("Accept", "*/*"))
    except Exception as exc:  # the toolkit maps status_code errors the same way
        status = getattr(exc, "status_code", 500)
        return Response(str(exc), status=status if isinstance(status, int) else 500, mimetype="text/plain")
    return Response(body, status=200, content_type=content_type)
