"""``python -m stsmon.endpoint serve``: run the endpoint server in this process.

Two ways to say what to serve::

    python -m stsmon.endpoint serve --spec endpoints/NAME/serving.json
    python -m stsmon.endpoint serve --model model.tar.gz|MODEL_DIR --name NAME [--port 8080]
        [--capture-dir DIR --sampling 100] [--workers N] [--max-batch 64] [--batch-wait 0.0005] ...

The first is how ``stsmon deploy`` starts it in the background; the second is
for trying a model by hand and for the benchmarks. Stop with Ctrl-C or
SIGTERM (drains); SIGHUP re-reads ``--spec`` and swaps the model.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

from .capture import CaptureSettings
from .model import ModelLoadError, prepare_model_dir
from ..clock import SystemClock
from ..fileio import write_json_atomic
from .server import Master, ServerSpec, configure_logging
from .worker import WorkerLimits


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m stsmon.endpoint", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve a model until stopped")
    s.add_argument("--spec", type=Path, help="server spec JSON (as written by stsmon deploy)")
    s.add_argument("--model", type=Path, help="model.tar.gz or an extracted model folder")
    s.add_argument("--name", default="local-endpoint", help="endpoint name (runtime path /endpoints/NAME/invocations)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    s.add_argument("--port", type=int, default=8080, help="port (0: any free port; default 8080)")
    s.add_argument("--workers", type=int, default=0, help="worker processes (default: one per core)")
    s.add_argument("--capture-dir", type=Path, help="write data capture under this folder (default: no capture)")
    s.add_argument("--sampling", type=float, default=100.0, help="capture sampling percentage (default 100)")
    s.add_argument("--flush-interval", type=float, default=1.0, help="capture flush interval, seconds (max 1)")
    s.add_argument("--max-batch", type=int, default=WorkerLimits.max_batch, help="requests per predict_fn call")
    s.add_argument("--batch-wait", type=float, default=WorkerLimits.batch_wait,
                   help="dynamic batching: seconds a busy worker waits for more requests to batch "
                        f"(0 = off; default {WorkerLimits.batch_wait:g})")
    s.add_argument("--max-queue", type=int, default=WorkerLimits.max_queue, help="queued requests per worker before 503")
    s.add_argument("--timeout", type=float, default=WorkerLimits.timeout, help="invocation timeout, seconds")
    s.add_argument("--record", type=Path, help="write the endpoint record (status, url, pids) to this file")
    s.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="container environment variable for the model (repeatable)")
    s.add_argument("--ready-file", type=Path, help="write the record here once the server is in service")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(logging.INFO)
    if args.spec is not None:
        try:
            spec = ServerSpec.from_json(json.loads(args.spec.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            print(f"error: cannot read server spec {args.spec}: {exc}", file=sys.stderr)
            return 2
        spec_file = args.spec
    else:
        if args.model is None:
            print("error: give --spec or --model", file=sys.stderr)
            return 2
        try:
            model_dir = prepare_model_dir(args.model, Path(tempfile.gettempdir()) / "stsmon-models")
        except ModelLoadError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        env = {}
        for item in args.env:
            key, sep, value = item.partition("=")
            if not sep:
                print(f"error: --env needs KEY=VALUE, got {item!r}", file=sys.stderr)
                return 2
            env[key] = value
        try:
            limits = WorkerLimits(max_batch=args.max_batch, max_queue=args.max_queue, timeout=args.timeout,
                                  batch_wait=args.batch_wait)
            capture = (CaptureSettings(folder=args.capture_dir.resolve(), destination_uri=str(args.capture_dir),
                                       sampling_percentage=args.sampling, flush_interval=args.flush_interval)
                       if args.capture_dir else None)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        spec = ServerSpec(
            endpoint_name=args.name, model_dir=str(model_dir), model_env=env, host=args.host, port=args.port,
            workers=args.workers, capture=capture,
            limits=limits,
            record_path=str(args.record) if args.record else None,
        )
        spec_file = None

    def ready(record: dict) -> None:
        print(f"endpoint {record['endpoint_name']} in service at {record['url']}", flush=True)
        if args.ready_file is not None:
            write_json_atomic(args.ready_file, record)

    # The endpoint process's entry point: where its clock is made.
    return Master(spec, spec_file, clock=SystemClock()).run(on_ready=ready)


if __name__ == "__main__":
    sys.exit(main())
