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
