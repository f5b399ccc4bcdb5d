"""``stsmon demo``: the whole flow locally, from the MSRP files to a monitoring report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .common import context_option, state_dir_option, target_option

MANUAL_APPROVAL = "PendingManualApproval"
STEPS = (
    "Data: find or fetch the MSRP corpus",
    "Synth: the CDK app into a cloud assembly",
    "Deploy foundation and training stacks locally",
    "Train: run the training pipeline",
    "Deploy serving and monitoring stacks (endpoint with data capture, hourly schedule)",
    "Traffic: the test split through the endpoint",
    "Ground truth: the true labels of the captured inferences",
    "Monitor: model quality of the window (expect Completed)",
    "Drift drill: 30 % wrong labels, monitor again (expect CompletedWithViolations)",
    "Label-free drill: mismatched pairs, no labels, monitor the hour (expect data-quality drift and its alarm)",
    "Report: metrics over time, violations, confusion matrix, data quality",
)


@click.command(name="demo")
@target_option
@state_dir_option
@context_option
@click.option("--input-data", default=None, metavar="PATH",
              help="MSRP-layout data: a file, or a folder with the MSRP files. Default: $STSMON_MSRP_DIR, "
                   "the cache, else a download from the public SentEval mirror.")
@click.option("--assembly", type=click.Path(file_okay=False, path_type=Path), default=Path("cdk.out"),
              show_default=True, help="Where to synthesize the cloud assembly.")
@click.option("--fresh", is_flag=True, help="Start over: stop local processes, delete the state folder, synthesize again.")
@click.option("--no-drill", is_flag=True, help="Skip the drills (noisy labels; shifted traffic without labels).")
@click.option("--retrain", is_flag=True,
              help="Train even when the pipeline definition and the data are those of the package already registered.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Requests in flight while sending the test split.")
@click.option("--manual-approval", is_flag=True,
              help="Register new versions PendingManualApproval (MODEL_APPROVAL_STATUS) and approve them in a "
                   "review step (`stsmon model approve`, refused if the evaluation fails the quality gate) "
                   "before deploying.")
@click.pass_context
def command(ctx: click.Context, target: str, state_dir: Path | None, context: tuple[str, ...], input_data: str | None,
            assembly: Path, fresh: bool, no_drill: bool, retrain: bool, concurrency: int, manual_approval: bool) -> None:
    """Run the complete original workflow on this machine, no AWS account
    needed: synth, local deploy, train, deploy the endpoint with data capture,
    send the test split, label it, monitor, then a drift drill (noisy labels
    must raise violations) and a label-free drill (mismatched pairs with no
    labels must raise data-quality drift and its alarm within the hour), and
    write the report.

    Rerunnable: unchanged inputs are not synthesized again, deploys apply only
    differences, and the model is not trained again when the pipeline
    definition and the data are those of the approved package already
    registered (--retrain forces it; a new version is then swapped into the
    running endpoint without dropping requests).
    Leaves the endpoint and the scheduler running; `stsmon cleanup` stops them.

    With --target aws the same steps run against your AWS account (your
    credentials): `cdk deploy` of the same assembly, the SageMaker pipelines,
    the real endpoint (the demo waits for its capture files in S3). That costs
    money; remove it all with `npx cdk destroy --all`.
    """
    from .. import demo as d
    from .common import command_clients

    project = Path.cwd()
    d.check_project(project)
    if manual_approval:  # the pipeline's ModelApprovalStatus default, as `cdk -c` would set it
        context = (*context, f"MODEL_APPROVAL_STATUS={MANUAL_APPROVAL}")
    assembly = assembly if assembly.is_absolute() else project / assembly
    with command_clients(target, state_dir, context) as clients:
        _demo(ctx, clients, project=project, assembly=assembly, context=context, input_data=input_data, fresh=fresh,
              no_drill=no_drill, retrain=retrain, concurrency=concurrency)


def _demo(ctx: click.Context, clients: Any, *, project: Path, assembly: Path, context: tuple[str, ...],
          input_data: str | None, fresh: bool, no_drill: bool, retrain: bool, concurrency: int) -> None:
    """The flow, on whichever target ``clients`` act on: the same commands, in order."""
    import json

    from .. import demo as d
    from ..clients.stacks import deployed_outputs
    from ..data import resolve_msrp
    from ..monitoring.runs import monitoring_alarm_prefixes
    from . import deploy as deploy_cmd
    from . import ground_truth as gt_cmd
    from . import report as report_cmd
    from . import traffic as traffic_cmd
    from . import train as train_cmd
    from .common import aws_environment, cli_sleep
    from .monitor import MonitoringFailed
    from .monitor import run as monitor_run
    from .synth import run_synth

    steps = {"deploy": deploy_cmd.command, "train": train_cmd.command, "traffic": traffic_cmd.command,
             "ground_truth": gt_cmd.command, "monitor": monitor_run, "report": report_cmd.command}
    prefixes = monitoring_alarm_prefixes(clients.config.prefix)
    environment = aws_environment()
    sleep = cli_sleep

    state = clients.state
    cfg = clients.config
    clock = clients.clock
    result = d.DemoResult(state)
    out = state.root / "demo"
    echo = click.echo
    total = len(STEPS) - (2 if no_drill else 0)
    numbers = iter(range(1, total + 1))

    def step(index: int) -> Any:
        return d.Step(result, echo, next(numbers), total, STEPS[index])

    common = {"target": clients.target, "state_dir": state.root, "context": context}
    if fresh:
        clients.runtime.start_over(echo)

    with step(0) as s:
        data = resolve_msrp(input_data)
        s.note = str(data)
        result.files["input_data"] = str(data)
    out.mkdir(parents=True, exist_ok=True)

    # The assembly's stacks carry the region (and, synthesized with credentials,
    # the account): what it was synthesized for is part of its inputs.
    synth_key = (*context, *environment.cdk_args())
    with step(1) as s:
        if not fresh and clients.runtime.reuses_assembly and d.assembly_is_current(project, assembly, synth_key):
            s.note = f"{assembly} is up to date (inputs unchanged)"
        else:
            run_synth(project, context, assembly, environment=environment)
            d.mark_assembly(project, assembly, synth_key)
            s.note = str(assembly)
        result.files["assembly"] = str(assembly)

    with step(2):
        ctx.invoke(steps["deploy"], assembly=assembly,
                   stacks=(cfg.stack_name("foundation"), cfg.stack_name("training")), **common)

    with step(3) as s:
        record_file = out / "trainmodel_out.json"
        pipeline = deployed_outputs(clients, ("training",)).get("TrainingPipelineName") or cfg.pipeline_name
        key = d.training_key(clients, pipeline, Path(data))
        record = None if retrain else d.reusable_training(clients, key)
        if record is not None:
            echo(f"    same pipeline definition and data as the run that registered {record['model_package_arn']}: "
                 "not training again (--retrain to force)")
            record_file.write_text(json.dumps(record, indent=2) + "\n")
        else:
            ctx.invoke(steps["train"], input_data=str(data), out_file=record_file, **common)
            record = json.loads(record_file.read_text())
            d.remember_training(state, key, record)
        if record.get("model_approval_status") == MANUAL_APPROVAL:
            from .model import approve

            echo(f"    {record['model_package_arn']} is {MANUAL_APPROVAL}: the review step approves it "
                 "(stsmon model approve; refused if its evaluation fails the quality gate)")
            ctx.invoke(approve, version=str(record["model_package_version"]), force=False,
                       description="approved by stsmon demo --manual-approval: its evaluation passes the quality gate",
                       **common)
            record["model_approval_status"] = "Approved"
        result.files["train_record"] = str(record_file)
        result.facts["model_package_arn"] = record.get("model_package_arn")
        result.facts["evaluation_metrics"] = record.get("metrics")
        s.note = f"{record.get('model_package_arn')} ({record.get('model_approval_status')})"

    with step(4) as s:
        ctx.invoke(steps["deploy"], assembly=assembly, stacks=(), **common)
        outputs = deployed_outputs(clients)
        endpoint_name = outputs["EndpointName"]
        result.facts["endpoint_url"] = d.endpoint_in_service(clients, endpoint_name)
        s.note = f"endpoint {endpoint_name}: {result.facts['endpoint_url']}"

    with step(5) as s:
        traffic_file = out / "testendpoint_out.json"
        started = clock.now()
        ctx.invoke(steps["traffic"], concurrency=concurrency, out_file=traffic_file, **common)
        sent = {r["inference_id"] for r in json.loads(traffic_file.read_text())["inferences"] if not r.get("error")}
        hours = d.traffic_window(started, clock.now()).split("/")
        # Capture files reach S3 after the answers (SageMaker: in batches, within minutes; locally the
        # writers flush every second): label and monitor only what has arrived.
        arrived = d.wait_for_s3_capture(
            clients.s3, outputs["DataCaptureUri"], endpoint_name, d.parse_time(hours[0]), d.parse_time(hours[1]), sent,
            timeout=clients.timing.capture_timeout, poll=clients.timing.capture_poll, sleep=sleep, echo=echo)
        window = d.traffic_window(started, clock.now())
        result.facts["capture"] = {"written": arrived}
        result.files["traffic_record"] = str(traffic_file)
        result.facts["window"] = window
        s.note = f"window {window}; capture records in S3: {arrived}"

    with step(6):
        ctx.invoke(steps["ground_truth"], mode="true", window=window, traffic_record=traffic_file, **common)

    def monitor(expect: str, *, window: str = window, model_quality_only: bool = False) -> dict:
        try:
            ctx.invoke(steps["monitor"], window=window, **common)
        except MonitoringFailed:
            pass  # the result below says what happened
        outcome = d.latest_monitor_result(clients, outputs["MonitoringPipelineName"], outputs.get("MonitoringOutputUri"),
                                          prefixes)
        status = outcome.get("model_quality_status", outcome["status"]) if model_quality_only else outcome["status"]
        if status != expect:
            detail = outcome["failure_reason"] or ", ".join(outcome["violations"]) or "no violations"
            dq = outcome.get("data_quality") or {}
            if dq.get("drifted"):
                detail += f"; data-quality drift: {', '.join(dq['drifted'])}"
            raise d.DemoFailed(f"the monitor ended {status} ({detail}), expected {expect}; "
                               f"see {outcome['report']}")
        return outcome

    shifted_file = out / "shifted_traffic.json"
    with step(7) as s:
        # A rerun within the hour of an earlier label-free drill monitors that drill's shifted captures
        # too: the data-quality check rightly finds them, so only the model quality must be clean then.
        earlier_shift = d.traffic_in_window(shifted_file, window)
        clean = monitor("Completed", model_quality_only=earlier_shift)
        if not earlier_shift:
            alarmed = [n for n in d.drift_alarms(clean) if clean["alarms"].get(n) == "ALARM"]
            if alarmed:
                raise d.DemoFailed(f"the in-distribution hour left drift alarms in ALARM: {', '.join(alarmed)}")
        result.facts["monitor_clean"] = clean
        metric = cfg.quality_metric
        value = clean["metrics"].get(metric)
        dq_status = (clean.get("data_quality") or {}).get("status")
        s.note = (f"{clean['status']}, {metric} " + (f"{value:.4f}" if isinstance(value, (int, float)) else "n/a")
                  + (f"; data quality {dq_status}" if dq_status else "")
                  + ("; the hour also holds an earlier label-free drill's captures" if earlier_shift else ""))

    if not no_drill:
        with step(8) as s:
            ctx.invoke(steps["ground_truth"], mode="noise", error_rate=d.DRILL_ERROR_RATE, seed=7,
                       window=window, traffic_record=traffic_file, **common)
            drill = monitor("CompletedWithViolations")
            in_alarm = sorted(name for name, value in drill["alarms"].items() if value == "ALARM")
            if not in_alarm:
                raise d.DemoFailed("the drill raised violations but no alarm is in ALARM state")
            result.facts["monitor_drill"] = drill
            s.note = f"violations: {', '.join(drill['violations'])}; in ALARM: {', '.join(in_alarm)}"

    if not no_drill:
        with step(9) as s:
            started = clock.now()
            sent: set[str] = set()
            requests, passes = 0, 0
            while requests < d.SHIFT_MIN_REQUESTS:  # a small test split goes again, reshuffled, with new ids
                record_file = shifted_file if passes == 0 else out / f"shifted_traffic-{passes + 1}.json"
                ctx.invoke(steps["traffic"], concurrency=concurrency, out_file=record_file, shift_text=d.SHIFT,
                           seed=d.SHIFT_SEED + passes, prefix=d.SHIFT_PREFIX, start=requests + 1, **common)
                inferences = json.loads(record_file.read_text())["inferences"]
                sent |= {r["inference_id"] for r in inferences if not r.get("error")}
                requests, passes = requests + len(inferences), passes + 1
                if not inferences:
                    break
            hours = d.traffic_window(started, clock.now()).split("/")
            d.wait_for_s3_capture(
                clients.s3, outputs["DataCaptureUri"], endpoint_name, d.parse_time(hours[0]), d.parse_time(hours[1]),
                sent, timeout=clients.timing.capture_timeout, poll=clients.timing.capture_poll, sleep=sleep, echo=echo)
            shift_window = d.traffic_window(started, clock.now())
            shifted = monitor("CompletedWithViolations", window=shift_window)
            drifted = (shifted.get("data_quality") or {}).get("drifted") or []
            if not drifted:
                raise d.DemoFailed(f"the mismatched pairs raised no baseline_drift_check violation in {shift_window}; "
                                   f"see {shifted['report']}")
            in_alarm = [n for n in d.drift_alarms(shifted) if shifted["alarms"].get(n) == "ALARM"]
            if not in_alarm:
                raise d.DemoFailed("the label-free drill raised data-quality drift but no drift alarm is in ALARM")
            result.facts["monitor_label_free"] = shifted | {"window": shift_window}
            result.files["shifted_traffic_record"] = str(shifted_file)
            s.note = f"drifted: {', '.join(drifted)}; in ALARM: {', '.join(in_alarm)}"

    with step(10) as s:
        report_dir = out / "report"
        ctx.invoke(steps["report"], out_dir=report_dir, **common)
        result.files["report"] = str(report_dir / "index.html")
        s.note = str(report_dir / "index.html")

    summary = d.write_summary(result)
    echo("")
    echo(f"\033[1mDone.\033[0m The whole flow ran {clients.runtime.where()} from the cloud assembly in {assembly}")
    for timing in result.timings:
        echo(f"  {timing.seconds:6.1f} s  {timing.name}")
    echo(f"  {sum(t.seconds for t in result.timings):6.1f} s  in all")
    echo("")
    echo(f"  Report (open in a browser): {result.files['report']}")
    echo(f"  Training record:            {result.files['train_record']}")
    echo(f"  Traffic record:             {result.files['traffic_record']}")
    echo(f"  Demo summary:               {summary}")
    echo(f"  Endpoint (still running):   {result.facts['endpoint_url']}")
    echo("")
    echo(f"Next: {clients.runtime.next_steps()}")
