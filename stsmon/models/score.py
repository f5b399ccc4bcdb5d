"""Score sentence pairs with one model package's own inference program, in its own process.

``python -m stsmon.models.score MODEL_DIR`` reads ``{"env": {...}, "pairs":
[[sentence1, sentence2], ...]}`` on stdin and writes ``{"predictions":
[{"label", "probability"} | {"score"}, ...]}`` on stdout. The model is
loaded as the endpoint's workers load it (:class:`stsmon.endpoint.model.
InferenceHandler`: the package's ``model_fn``, the container's
environment) and asked as the endpoint asks it: ``text/csv`` requests,
``application/json`` answers. One process per model, because a program is
imported under its own name (``inference``) with its code folder first on
``sys.path``, as in the container: two models cannot share a process.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

#: Pairs per request (the inference program predicts a request's rows together).
CHUNK = 512


def _csv(pairs: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(pairs)
    return buf.getvalue().encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    from ..endpoint.model import InferenceHandler, ModelLoadError

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m stsmon.models.score MODEL_DIR < request.json", file=sys.stderr)
        return 2
    request = json.load(sys.stdin)
    try:
        handler = InferenceHandler.load(Path(args[0]), request.get("env") or {}, max_batch=1)
    except ModelLoadError as exc:
        print(exc.message.splitlines()[0], file=sys.stderr)
        return 1
    pairs = request["pairs"]
    predictions: list[dict] = []
    for start in range(0, len(pairs), CHUNK):
        result = handler.infer([(_csv(pairs[start:start + CHUNK]), "text/csv", "application/json")])[0]
        if result.kind != "ok":
            print(f"the model answered {result.status}: {result.message}", file=sys.stderr)
            return 1
        predictions.extend(json.loads(result.body)["predictions"])
    json.dump({"predictions": predictions}, sys.stdout)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
