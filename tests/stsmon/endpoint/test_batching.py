"""Dynamic batching (stsmon.endpoint.batching.Batcher), without a server or a model."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from stsmon.endpoint.batching import Batcher
from stsmon.endpoint.model import Result
from stsmon.endpoint.worker import WorkerLimits


def _job(name: str):
    return SimpleNamespace(body=name.encode(), program_type="text/csv", accept="text/csv", done=False)


class _Handler:
    """Records each batch; ``on_first`` runs inside the first call (requests arriving meanwhile)."""

    def __init__(self, on_first=None) -> None:
        self.batches: list[list[bytes]] = []
        self.on_first = on_first

    def infer(self, requests):
        self.batches.append([body for body, _ct, _accept in requests])
        if len(self.batches) == 1 and self.on_first is not None:
            self.on_first()
        return [Result(200, body, "text/csv") for body, _ct, _accept in requests]


def _run(batch_wait: float, connections: int, on_first, expect_jobs: int) -> tuple[_Handler, float]:
    handler = _Handler()
    done = threading.Event()
    delivered = []

    def deliver(jobs, results):
        delivered.extend(jobs)
        if len(delivered) >= expect_jobs:
            done.set()

    batcher = Batcher(handler, max_batch=64, batch_wait=batch_wait, open_connections=lambda: connections,
                      deliver=deliver)
    handler.on_first = lambda: on_first(batcher)
    batcher.start()
    t0 = time.monotonic()
    batcher.submit(_job("a"))
    assert done.wait(10), handler.batches
    elapsed = time.monotonic() - t0
    batcher.stop()
    return handler, elapsed


def test_a_busy_batcher_waits_for_the_requests_of_open_connections():
    def arrivals(batcher):  # b arrives while a is computed; c and d a moment later
        batcher.submit(_job("b"))
        threading.Timer(0.02, lambda: (batcher.submit(_job("c")), batcher.submit(_job("d")))).start()

    handler, elapsed = _run(batch_wait=2.0, connections=3, on_first=arrivals, expect_jobs=4)
    assert handler.batches == [[b"a"], [b"b", b"c", b"d"]]
    assert elapsed < 1.5  # it stops waiting once every open connection's request is in


def test_batch_wait_zero_answers_at_once():
    handler, elapsed = _run(batch_wait=0.0, connections=3, on_first=lambda b: b.submit(_job("b")), expect_jobs=2)
    assert handler.batches == [[b"a"], [b"b"]]
    assert elapsed < 1.0


def test_a_busy_batcher_gives_up_after_batch_wait():
    handler, elapsed = _run(batch_wait=0.3, connections=3, on_first=lambda b: b.submit(_job("b")), expect_jobs=2)
    assert handler.batches == [[b"a"], [b"b"]]
    assert elapsed >= 0.3


def test_an_idle_batcher_does_not_wait():
    handler, elapsed = _run(batch_wait=5.0, connections=3, on_first=lambda b: None, expect_jobs=1)
    assert handler.batches == [[b"a"]] and elapsed < 2.0


@pytest.mark.parametrize("kwargs, word", [({"batch_wait": -0.1}, "batch_wait"), ({"batch_wait": 5}, "batch_wait"),
                                          ({"max_batch": 0}, "max_batch")])
def test_bad_limits_are_refused(kwargs, word):
    with pytest.raises(ValueError, match=word):
        WorkerLimits(**kwargs)


def test_serve_refuses_a_bad_batch_wait(toy_model_dir, capsys):
    from stsmon.endpoint.__main__ import main

    assert main(["serve", "--model", str(toy_model_dir), "--batch-wait", "-1"]) == 2
    assert "batch_wait must be 0-1 seconds, got -1.0" in capsys.readouterr().err
