"""Writing the local state's JSON records so that no reader ever sees half a file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: Any, *, indent: int = 1, sort_keys: bool = False, fsync: bool = False) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file in the same
    folder and an atomic rename: readers see the old file or the new one, and
    a crash leaves no partial file (the temporary one is removed on errors).

    Values JSON cannot hold (datetimes, paths) are written as ``str(value)``.
    ``fsync``: also flush to disk before the rename (records that must survive
    a power loss, such as what is deployed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=indent, sort_keys=sort_keys, default=str)
            handle.write("\n")
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
