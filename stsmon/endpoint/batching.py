"""Dynamic batching: one inference thread that answers queued invocations in batches.

Independent of the HTTP layer: the worker (:mod:`stsmon.endpoint.worker`)
queues jobs from its asyncio loop and gets the results back through
``deliver``, called in the inference thread (the owner hands them to its
loop). It ran unchanged behind the hand-written HTTP layer and behind uvicorn
when the two were compared (docs/endpoint.md § "The HTTP layer").

A job is any object with ``body``, ``program_type``, ``accept`` (what
:meth:`InferenceHandler.infer` takes) and a ``done`` flag (a job already
answered, e.g. timed out, is skipped).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Sequence

from .model import InferenceHandler, Result

log = logging.getLogger("stsmon.endpoint.batching")

#: An inference thread whose last batch ended less than this ago (s) counts as busy.
BUSY_GAP = 0.002


class Batcher:
    """Runs ``handler.infer`` on everything queued since the last batch.

    ``max_batch``: most jobs per call. ``batch_wait`` (s, 0 = off): how long
    a *busy* thread (its last batch ended under :data:`BUSY_GAP` ago) waits
    for more jobs while more connections are open than jobs are waiting
    (``open_connections()``): those clients' next requests are probably on
    their way, and one ``predict_fn`` call serving several is cheaper per pair
    (the package's model: 2.0 ms alone, 1.1 ms in fours, 1.0 ms in eights).
    An idle endpoint answers at once. ``deliver(jobs, results)`` is called in
    the inference thread.
    """

    def __init__(self, handler: InferenceHandler, *, max_batch: int, batch_wait: float,
                 open_connections: Callable[[], int],
                 deliver: Callable[[list[Any], Sequence[Result]], None]) -> None:
        self.handler = handler
        self.max_batch = max_batch
        self.batch_wait = batch_wait
        self.open_connections = open_connections
        self.deliver = deliver
        self.pending: collections.deque = collections.deque()
        self.cv = threading.Condition()
        self.stopping = False
        #: Batches run and jobs answered (their ratio: the mean batch size).
        self.batches = 0
        self.jobs = 0
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        """Jobs waiting (not yet in a batch)."""
        return len(self.pending)

    def submit(self, job: Any) -> None:
        with self.cv:
            self.pending.append(job)
            self.cv.notify()

    def start(self) -> Batcher:
        self._thread = threading.Thread(target=self._run, name="inference", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the batch in progress and stop (jobs still queued are left)."""
        with self.cv:
            self.stopping = True
            self.cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        handler = self.handler
        cv = self.cv
        pending = self.pending
        max_batch = self.max_batch
        batch_wait = self.batch_wait
        last_end = 0.0
        while True:
            with cv:
                while not pending and not self.stopping:
                    cv.wait()
                if not pending:
                    return
                if batch_wait > 0 and time.monotonic() - last_end < BUSY_GAP:
                    deadline = time.monotonic() + batch_wait
                    while (len(pending) < max_batch and self.open_connections() > len(pending)
                           and not self.stopping):
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        cv.wait(left)
                batch = []
                while pending and len(batch) < max_batch:
                    batch.append(pending.popleft())
            live = [job for job in batch if not job.done]
            if not live:
                continue
            try:
                results = handler.infer([(j.body, j.program_type, j.accept) for j in live])
            except Exception:  # a bug in the batching itself: fail these, keep serving
                log.exception("inference batch failed")
                msg = b"internal error while running the model; see the endpoint log"
                results = [Result(500, msg, "text/plain; charset=utf-8", "server", msg.decode())] * len(live)
            self.batches += 1
            self.jobs += len(live)
            self.deliver(live, results)
            last_end = time.monotonic()
