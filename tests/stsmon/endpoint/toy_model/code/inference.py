"""The toy model's serving program, shaped like processing_scripts/inference.py:
``model_fn``, ``transform_fn`` (a response with its status: 200, or the client
error's 4xx) and the local endpoint's ``batch_transform_fn``. A bug (an
exception other than ``InferenceError``) propagates: the container answers 500.
"""

from toy_serving import InferenceError, load, parse, predict, render


class Response:
    """Same attributes as the serving toolkit's (Flask) response."""

    def __init__(self, body, status, content_type):
        self.status_code = status
        self.headers = {"Content-Type": content_type}
        self._body = body

    def get_data(self):
        return self._body


def model_fn(model_dir):
    return load(model_dir)


def _render(prediction, accept):
    try:
        body, content_type = render(prediction, accept)
    except InferenceError as exc:
        return _error(exc)
    return Response(body.encode("utf-8"), 200, content_type)


def _error(exc):
    return Response(exc.message.encode("utf-8"), exc.status_code, "text/plain; charset=utf-8")


def transform_fn(model, body, content_type, accept):
    try:
        data = parse(body, content_type)
    except InferenceError as exc:
        return _error(exc)
    return _render(predict(data, model), accept)


def batch_transform_fn(model, requests):
    """One answer per request (or the exception transform_fn would raise), one predict for all."""
    answers = [None] * len(requests)
    parsed = []
    for i, (body, content_type, accept) in enumerate(requests):
        try:
            parsed.append((i, parse(body, content_type), accept))
        except InferenceError as exc:
            answers[i] = _error(exc)
    try:
        predictions = predict([row for _i, rows, _a in parsed for row in rows], model) if parsed else []
    except Exception:  # the bug belongs to one request: find it
        for i, rows, accept in parsed:
            try:
                answers[i] = _render(predict(rows, model), accept)
            except Exception as exc:
                answers[i] = exc
        return answers
    start = 0
    for i, rows, accept in parsed:
        answers[i] = _render(predictions[start:start + len(rows)], accept)
        start += len(rows)
    return answers
