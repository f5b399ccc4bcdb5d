"""``stsmon data``: fetch, validate and locate the MSRP corpus."""

from __future__ import annotations

from pathlib import Path

import click

from .. import data as msrp


@click.group(name="data")
def command() -> None:
    """Fetch, validate and cache the MSRP corpus (the demo's training data).

    The corpus is downloaded from the public SentEval mirror and cached under
    $XDG_CACHE_HOME/stsmon/msrp (default ~/.cache/stsmon/msrp). Offline, point
    at a local copy with STSMON_MSRP_DIR or the demo's --input-data.
    """


@command.command()
@click.option("--base-url", default=msrp.BASE_URL, show_default=True,
              help="Where msr_paraphrase_train.txt and msr_paraphrase_test.txt are served.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Cache folder. Default: $XDG_CACHE_HOME/stsmon/msrp, else ~/.cache/stsmon/msrp.")
@click.option("--force", is_flag=True, help="Download again even when the cache is valid.")
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds to wait for the mirror.")
def fetch(base_url: str, cache_dir: Path | None, force: bool, timeout: float) -> None:
    """Download and check the MSRP files; print the pipeline's input file."""
    dest = cache_dir or msrp.cache_dir()
    try:
        combined = msrp.fetch_msrp(base_url, dest, force=force, timeout=timeout)
    except msrp.MsrpError as exc:
        raise msrp.MsrpError(f"{exc.message}. {msrp.OFFLINE_HINT}") from None
    counts = msrp.validate_msrp_dir(dest)
    click.echo(f"MSRP corpus in {dest}: train {counts[msrp.TRAIN_FILE]} pairs, "
               f"test {counts[msrp.TEST_FILE]} pairs")
    click.echo(str(combined))


@command.command()
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
def validate(path: Path | None) -> None:
    """Check MSRP files: a file, a folder (default: the cache) - header, columns, labels, counts, checksums."""
    target = path or msrp.cache_dir()
    if target.is_file():
        counts = {target.name: msrp.validate_msrp_file(target)}
    else:
        counts = msrp.validate_msrp_dir(target)
    for name, rows in counts.items():
        click.echo(f"ok  {target / name if target.is_dir() else target}: {rows} pairs")


@command.command()
@click.option("--input-data", default=None, help="A file or folder to use instead of the usual places.")
def path(input_data: str | None) -> None:
    """Print the training input file the demo would use (downloading it if needed)."""
    click.echo(str(msrp.resolve_msrp(input_data)))
