"""``stsmon demo``: the whole flow locally, from the MSRP files to a monitoring report."""

from __future__ import annotations

from pathlib import Path

import click

from .common import cli_clock, context_option, resolve_state_dir, state_dir_option, target_option

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
    "Report: metrics over time, violations, confusion matrix",
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
@click.option("--no-drill", is_flag=True, help="Skip the drift drill.")
@click.option("--retrain", is_flag=True,
              help="Train even when the pipeline definition and the data are those of the package already registered.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Requests in flight while sending the test split.")
@click.pass_context
def command(ctx: click.Context, target: str, state_dir: Path | None, context: tuple[str, ...], input_data: str | None,
            assembly: Path, fresh: bool, no_drill: bool, retrain: bool, concurrency: int) -> None:
    """Run the complete original workflow on this machine, no AWS account
    needed: synth, local deploy, train, deploy the endpoint with data capture,
    send the test split, label it, monitor, then a drift drill (noisy labels
    must raise violations), and write the report.

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
    from ..cleanup import remove_local_state, stop_local
    from ..monitoring.aws import monitoring_alarm_prefixes
    from ..data import resolve_msrp
    from . import deploy as deploy_cmd
    from . import ground_truth as gt_cmd
    from . import report as report_cmd
    from . import traffic as traffic_cmd
    from . import train as train_cmd
    from .monitor import MonitoringFailed
    from .monitor import run as monitor_run
    from .synth import run_synth

    clock = cli_clock()

    project = Path.cwd()
    d.check_project(project)
    state = resolve_state_dir(state_dir)
    assembly = assembly if assembly.is_absolute() else project / assembly
    result = d.DemoResult(state)
    out = state.root / "demo"
    echo = click.echo
    total = len(STEPS) - (1 if no_drill else 0)
    numbers = iter(range(1, total + 1))

    def step(index: int) -> d.Step:
        return d.Step(result, echo, next(numbers), total, STEPS[index])

    common = {"state_dir": state.root, "context": context}
    aws = target == "aws"
    if fresh and state.root.exists():
        echo(f"--fresh: stopping local processes and removing {state.root}")
        stop_local(state, echo)
        remove_local_state(state, echo)

    with step(0) as s:
        data = resolve_msrp(input_data)
        s.note = str(data)
        result.files["input_data"] = str(data)
    out.mkdir(parents=True, exist_ok=True)

    from .common import aws_environment, aws_session

    environment = aws_environment()
    # The assembly's stacks carry the region (and, synthesized with credentials,
    # the account): what it was synthesized for is part of its inputs.
    synth_key = (*context, *environment.cdk_args())
    with step(1) as s:
        if not fresh and not aws and d.assembly_is_current(project, assembly, synth_key):
            s.note = f"{assembly} is up to date (inputs unchanged)"
        else:
            # On AWS always again: the CDK CLI then writes your account into the assembly.
            run_synth(project, context, assembly, environment=environment)
            d.mark_assembly(project, assembly, synth_key)
            s.note = str(assembly)
        result.files["assembly"] = str(assembly)

    from stscontracts.config import Config  # noqa: F401  (import check: the configuration module loads)

    session = aws_session(context)
    cfg = session.config
    with step(2):
        ctx.invoke(deploy_cmd.command, target=target, assembly=assembly,
                   stacks=(cfg.stack_name("foundation"), cfg.stack_name("training")), **common)

    with step(3) as s:
        import json

        record_file = out / "trainmodel_out.json"
        key = None if aws else d.training_key(state, cfg.pipeline_name, Path(data))
        record = None if (aws or retrain) else d.reusable_training(state, key)
        if record is not None:
            echo(f"    same pipeline definition and data as the run that registered {record['model_package_arn']}: "
                 "not training again (--retrain to force)")
            record_file.write_text(json.dumps(record, indent=2) + "\n")
        else:
            ctx.invoke(train_cmd.command, target=target, input_data=str(data), out_file=record_file, **common)
            record = json.loads(record_file.read_text())
            if key is not None:
                d.remember_training(state, key, record)
        result.files["train_record"] = str(record_file)
        result.facts["model_package_arn"] = record.get("model_package_arn")
        result.facts["evaluation_metrics"] = record.get("metrics")
        s.note = f"{record.get('model_package_arn')} ({record.get('model_approval_status')})"

    with step(4) as s:
        ctx.invoke(deploy_cmd.command, target=target, assembly=assembly, stacks=(), **common)
        if aws:
            outputs = d.aws_outputs(session.client("cloudformation"), cfg)
            endpoint_name = outputs["EndpointName"]
            result.facts["endpoint_url"] = f"SageMaker endpoint {endpoint_name} ({cfg.region})"
        else:
            from ..endpoint.process import list_records

            running = [r for r in list_records(state) if r.get("running")]
            if not running:
                raise d.DemoFailed("the serving stack deployed but no local endpoint is running; see `stsmon status`")
            result.facts["endpoint_url"] = running[0]["url"]
            endpoint_name = running[0]["endpoint_name"]
        s.note = f"endpoint {endpoint_name}: {result.facts['endpoint_url']}"

    with step(5) as s:
        traffic_file = out / "testendpoint_out.json"
        started = clock.now()
        ctx.invoke(traffic_cmd.command, target=target, concurrency=concurrency, out_file=traffic_file, **common)
        if aws:
            import json as _json

            sent = {r["inference_id"] for r in _json.loads(traffic_file.read_text())["inferences"] if not r.get("error")}
            hours = d.traffic_window(started, clock.now()).split("/")
            arrived = d.wait_for_s3_capture(
                session.client("s3"), outputs["DataCaptureUri"], endpoint_name,
                d.parse_time(hours[0]), d.parse_time(hours[1]), sent, echo=echo)
            stats = {"written": arrived}
        else:
            stats = d.wait_for_capture(state, endpoint_name)
        ended = clock.now()
        window = d.traffic_window(started, ended)
        result.facts["capture"] = stats
        result.files["traffic_record"] = str(traffic_file)
        result.facts["window"] = window
        s.note = f"window {window}; capture records written so far: {stats['written']}"

    with step(6):
        ctx.invoke(gt_cmd.command, target=target, mode="true", window=window, traffic_record=traffic_file, **common)

    def monitor(expect: str) -> dict:
        try:
            ctx.invoke(monitor_run, target=target, window=window, **common)
        except MonitoringFailed:
            pass  # the result below says what happened
        if aws:
            outcome = d.latest_aws_monitor_result(session.client("s3"), session.client("cloudwatch"),
                                                  outputs["MonitoringOutputUri"], monitoring_alarm_prefixes(cfg.prefix))
        else:
            outcome = d.latest_monitor_result(state)
        if outcome["status"] != expect:
            detail = outcome["failure_reason"] or ", ".join(outcome["violations"]) or "no violations"
            raise d.DemoFailed(f"the monitor ended {outcome['status']} ({detail}), expected {expect}; "
                               f"see {outcome['report']}")
        return outcome

    with step(7) as s:
        clean = monitor("Completed")
        result.facts["monitor_clean"] = clean
        metric = cfg.quality_metric
        value = clean["metrics"].get(metric)
        s.note = f"{clean['status']}, {metric} " + (f"{value:.4f}" if isinstance(value, (int, float)) else "n/a")

    if not no_drill:
        with step(8) as s:
            ctx.invoke(gt_cmd.command, target=target, mode="noise", error_rate=d.DRILL_ERROR_RATE, seed=7,
                       window=window, traffic_record=traffic_file, **common)
            drill = monitor("CompletedWithViolations")
            in_alarm = sorted(name for name, value in drill["alarms"].items() if value == "ALARM")
            if not in_alarm:
                raise d.DemoFailed("the drill raised violations but no alarm is in ALARM state")
            result.facts["monitor_drill"] = drill
            s.note = f"violations: {', '.join(drill['violations'])}; in ALARM: {', '.join(in_alarm)}"

    with step(9) as s:
        report_dir = out / "report"
        ctx.invoke(report_cmd.command, target=target, out_dir=report_dir, **common)
        result.files["report"] = str(report_dir / "index.html")
        s.note = str(report_dir / "index.html")

    summary = d.write_summary(result)
    echo("")
    where = f"on AWS ({cfg.region})" if aws else "locally"
    echo(f"\033[1mDone.\033[0m The whole flow ran {where} from the cloud assembly in {assembly}")
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
    if aws:
        echo("Next: `stsmon status --target aws`; remove it all (it costs money) with `npx cdk destroy --all`.")
    else:
        echo("Next: `stsmon status` to see what is deployed, `stsmon cleanup` to stop and remove it all.")
