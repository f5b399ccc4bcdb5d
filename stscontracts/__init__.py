"""The contracts of stsmodelmonitor: the bottom layer every other part imports.

What joins the parts lives here once: the configuration (:mod:`.config`), the
names that join steps, stacks and the local runtime, and the formats of the
files that pass between them. The cloud definition (``app.py``, ``stacks/``,
``pipeline_code/``), the step scripts (``processing_scripts/``) and the local
runtime and CLI (``stsmon/``) import it; it imports none of them (an
import-linter contract in the test suite holds the line, see
docs/architecture.md).

Standard library only, so the step scripts can carry it into the SageMaker
scikit-learn container: the step-code asset, the training job's
``sourcedir.tar.gz`` and the model's ``code/`` folder each ship this package
next to the scripts.
"""

from __future__ import annotations

from pathlib import Path

#: This package's folder (wherever it was imported from: the repository, a
#: step-code folder, a model's ``code/``).
PACKAGE_DIR = Path(__file__).resolve().parent
#: What ships, relative to :data:`PACKAGE_DIR`: the modules and the JSON Schemas.
SHIPPED_PATTERNS = ("*.py", "schemas/*.json")


def package_files() -> list[tuple[str, Path]]:
    """``(path in a code folder, file)`` of every file that ships, sorted by that path.

    The path starts with the package's own name (``stscontracts/names.py``),
    so a code folder that holds these files can ``import stscontracts``.
    """
    found = {p for pattern in SHIPPED_PATTERNS for p in PACKAGE_DIR.glob(pattern) if p.is_file()}
    return sorted((f"{PACKAGE_DIR.name}/{p.relative_to(PACKAGE_DIR).as_posix()}", p) for p in found)
