"""``stsmon ground-truth``: labels for captured inference ids (replaces gen_fake_ground_truth.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import cli_clock, command_clients, context_option, state_dir_option, target_option


@click.command(name="ground-truth")
@target_option
@state_dir_option
@context_option
@click.option("--mode", type=click.Choice(["true", "noise", "random"]), default="true", show_default=True,
              help="true: the test split's labels from the traffic record; noise: those with --error-rate of them "
                   "wrong (the drift drill); random: random labels like the original gen_fake_ground_truth.py.")
@click.option("--error-rate", type=click.FloatRange(0.0, 1.0), default=0.3, show_default=True,
              help="Share of labels made wrong in --mode noise.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --mode noise/random (same seed, same labels).")
@click.option("--positive-rate", type=click.FloatRange(0.0, 1.0), default=0.7, show_default=True,
              help="--mode random, classification: share of positive labels.")
@click.option("--window", default="current", show_default=True, metavar="WINDOW",
              help="Capture hours to label: current, previous, all (last 7 days), END or START/END (ISO-8601, UTC hours).")
@click.option("--traffic-record", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Traffic record with the true labels. Default: the newest runs/traffic-*.json, else ./testendpoint_out.json.")
def command(target: str, state_dir: Path | None, context: tuple[str, ...], mode: str, error_rate: float, seed: int,
            positive_rate: float, window: str, traffic_record: Path | None) -> None:
    """Write ground-truth labels for the inferences captured in a window.

    Labels go to the ground-truth prefix under this hour's yyyy/mm/dd/hh/
    folder, one record per captured inference id, in SageMaker's ground-truth
    format. Writing labels again for the same ids corrects them: the monitor
    uses the latest label of an id.
    """
    from ..clients.stacks import require_outputs
    from ..errors import StsmonError
    from ..monitoring import ground_truth as gt

    now = cli_clock().now()
    start, end = gt.hour_window(window, now)
    with command_clients(target, state_dir, context) as clients:
        state = clients.state
        truth = None
        if mode != "random" or traffic_record is not None:
            truth = gt.read_truth(traffic_record or gt.latest_traffic_record(state))
        outputs = require_outputs(clients, "DataCaptureUri", "EndpointName", "GroundTruthUri")
        captured = gt.read_captures(clients.s3, outputs["DataCaptureUri"], outputs["EndpointName"], start, end)
        window_text = f"[{start:%Y-%m-%dT%H:%MZ}, {end:%Y-%m-%dT%H:%MZ})"
        if not captured:
            raise StsmonError(f"no captured inferences in the window {window_text}: send traffic first "
                              f"(stsmon traffic) or choose another --window")
        plan = gt.plan_labels(captured, mode, truth=truth, error_rate=error_rate, seed=seed, positive_rate=positive_rate)
        if not plan.labels:
            raise StsmonError(f"none of the {plan.captured} captured inferences in {window_text} is in the traffic "
                              f"record {truth.source if truth else ''}: nothing to label")
        uri = gt.write_labels(clients.s3, outputs["GroundTruthUri"], plan.labels, now, now,
                              kms_key_id=outputs.get("KmsKeyArn"))
    for line in gt.summary_lines(plan, uri, truth):
        click.echo(line)
    state.runs.mkdir(parents=True, exist_ok=True)
    record = {"kind": "ground-truth", "target": target, "mode": mode, "error_rate": error_rate if mode == "noise" else None,
              "seed": seed, "window": {"start": start.isoformat(), "end": end.isoformat()}, "uri": uri,
              "captured": plan.captured, "labelled": len(plan.labels), "changed": plan.changed,
              "without_truth": len(plan.without_truth), "written_at": now.isoformat()}
    path = state.runs / f"ground-truth-{now:%Y%m%dT%H%M%S}-{mode}.json"
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    click.echo(f"Run record: {path}")
