"""The ``stsmon`` command line: one thin command per operator task.

Each command lives in its own module under ``stsmon/commands/`` and is
imported only when it runs, so ``stsmon --help`` stays fast and a command's
heavy imports (scikit-learn, boto3) cost only that command.
"""

from __future__ import annotations

import importlib
import sys

import click

from stscontracts.errors import ContractError

from .errors import StsmonError

#: command name -> (module under stsmon.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "Run the whole flow locally: synth, deploy, train, serve, traffic, labels, monitor, report, drift drill."),
    "data": ("data", "Fetch, validate and cache the MSRP corpus."),
    "doctor": ("doctor", "Preflight checks for this machine or an AWS account: one line per check, with what to do."),
    "synth": ("synth", "Synthesize the CDK app into cdk.out (npx cdk synth)."),
    "deploy": ("deploy", "Deploy the cloud assembly locally (or start/stop the local endpoint)."),
    "train": ("train", "Start the training pipeline, wait, print step statuses and metrics."),
    "model": ("model", "The model registry's versions: list, describe, approve, reject, compare, rollback."),
    "traffic": ("traffic", "Send the test split to the endpoint with inference ids."),
    "ground-truth": ("ground_truth", "Write ground-truth labels for captured inference ids."),
    "monitor": ("monitor", "Run the model-quality monitor now or manage its schedule."),
    "report": ("report", "Show model quality over time: HTML report with charts and a terminal summary."),
    "status": ("status", "Show what is deployed and its latest results."),
    "cleanup": ("cleanup", "Stop local processes and remove local state (or clean up AWS leftovers)."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, _ = COMMANDS[name]
        try:
            module = importlib.import_module(f"stsmon.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"stsmon.commands.{module_name}":
                return _not_built(name)
            raise
        return module.command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table, so --help imports no command module.
        rows = [(name, help_) for name, (_, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _not_built(name: str) -> click.Command:
    @click.command(name=name, help=COMMANDS[name][1])
    def missing() -> None:
        raise StsmonError(f"'stsmon {name}' is not available in this build")

    return missing


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="stsmodelmonitor", prog_name="stsmon")
def cli() -> None:
    """Operate stsmodelmonitor: the paraphrase model's training pipeline, its
    endpoint with data capture and its hourly quality monitor, locally (the
    default, no AWS account needed) or on AWS (--target aws)."""


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turn user errors into a message and an exit code."""
    try:
        cli.main(args=argv, prog_name="stsmon", standalone_mode=False)
    except (StsmonError, ContractError) as exc:  # ContractError: a bad configuration value or document
        click.echo(f"Error: {exc.message}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
