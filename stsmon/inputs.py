"""Training input given on the command line (``--input-data``)."""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError


def local_input_files(source: str) -> list[tuple[str, Path]]:
    """``(relative key, file)`` for a local path or ``file://`` URI: the file
    itself, or every file under the folder (hidden ones skipped), in order.
    Raises :class:`UsageError` naming ``--input-data`` when there is nothing."""
    path = Path(source.removeprefix("file://")).expanduser()
    if not path.exists():
        raise UsageError(f"--input-data {source}: no such file or folder")
    if path.is_file():
        return [(path.name, path)]
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise UsageError(f"--input-data {source}: the folder has no files")
    return [(f.relative_to(path).as_posix(), f) for f in files]
