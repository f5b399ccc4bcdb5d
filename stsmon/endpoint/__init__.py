"""The local SageMaker endpoint: serving, data capture, background process.

- :mod:`.server` — the master process and its pre-forked workers (``ServerSpec``);
- :mod:`.worker` — one worker: its accept loop, uvicorn's HTTP/1.1 protocol (httptools' C
  parser) serving an ASGI app, and the batching inference thread;
- :mod:`.batching` — the dynamic batcher (one inference thread, no HTTP);
- :mod:`.model` — loading a package with its ``inference.py`` and running batches;
- :mod:`.capture` — SageMaker data capture records, the writer and a reader;
- :mod:`.process` — starting/stopping a server in the background (pid, log, URL);
- :mod:`.handlers` — the local-deploy handlers of the serving stack's resources.

Run one by hand: ``python -m stsmon.endpoint serve --model model.tar.gz --port 8080``.
"""
