"""The local SageMaker endpoint: serving, data capture, background process.

- :mod:`.server` — the master process and its pre-forked workers (``ServerSpec``);
- :mod:`.worker` — one worker: asyncio HTTP loop + batching inference thread;
- :mod:`.protocol` — the HTTP/1.1 parser and writer;
- :mod:`.model` — loading a package with its ``inference.py`` and running batches;
- :mod:`.capture` — SageMaker data capture records, the writer and a reader;
- :mod:`.process` — starting/stopping a server in the background (pid, log, URL);
- :mod:`.handlers` — the local-deploy handlers of the serving stack's resources.

Run one by hand: ``python -m stsmon.endpoint serve --model model.tar.gz --port 8080``.
"""
