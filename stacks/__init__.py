"""The CDK stacks of stsmodelmonitor (each one lifecycle) and their constructs.

:func:`add_stacks` builds all four from one validated :class:`~stscontracts.config.Config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import App, Environment, Tags

from pipeline_code.build import definitions
from stscontracts.config import Config

from .constructs.step_code import step_code_prefix
from .foundation import FoundationStack
from .monitoring import MonitoringStack
from .serving import ServingStack
from .training import TrainingStack

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPTS_DIR = REPO_ROOT / "processing_scripts"


@dataclass(frozen=True)
class Stacks:
    foundation: FoundationStack
    training: TrainingStack
    serving: ServingStack
    monitoring: MonitoringStack

    def all(self) -> list:
        return [self.foundation, self.training, self.serving, self.monitoring]


def add_stacks(app: App, config: Config, *, scripts_dir: Path = SCRIPTS_DIR, background: bool = True) -> Stacks:
    """Add the four stacks to ``app``; deployment order foundation -> training -> serving -> monitoring.

    The pipeline definitions come from ``{outdir}/.definitions/`` when an
    identical build is there (content-addressed, see
    ``pipeline_code.build.cache_key``); otherwise, with ``background`` (the
    default), a separate process started here builds them (the SageMaker
    SDK's import then runs on another core while the constructs are built)
    and they are collected at synth; without it, in this process at synth.
    """
    cfg = config
    code_prefix = step_code_prefix(cfg.prefix, scripts_dir)
    source = definitions(cfg, code_prefix, Path(app.outdir) / ".definitions", background=background)
    env = Environment(account=cfg.account, region=cfg.region)
    common = {"env": env, "analytics_reporting": False}
    foundation = FoundationStack(
        app, cfg.stack_name("foundation"), config=cfg,
        description="stsmodelmonitor: KMS key, artifact bucket, SageMaker execution role, model registry, alarm topic", **common,
    )
    training = TrainingStack(
        app, cfg.stack_name("training"), config=cfg, foundation=foundation, scripts_dir=scripts_dir, definitions=source,
        description="stsmodelmonitor: step scripts and the SageMaker training pipeline", **common,
    )
    serving = ServingStack(
        app, cfg.stack_name("serving"), config=cfg, foundation=foundation, training=training,
        description="stsmodelmonitor: endpoint with data capture, serving the latest approved model package", **common,
    )
    monitoring = MonitoringStack(
        app, cfg.stack_name("monitoring"), config=cfg, foundation=foundation, training=training, serving=serving,
        definitions=source,
        description=f"stsmodelmonitor: hourly model-quality monitoring ({cfg.monitor_backend}), alarms, dashboard", **common,
    )
    stacks = Stacks(foundation, training, serving, monitoring)
    for stack in stacks.all():
        Tags.of(stack).add("project", "stsmodelmonitor")
        Tags.of(stack).add("profile", cfg.profile)
    return stacks
