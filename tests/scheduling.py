"""How the suite spreads over pytest-xdist's workers (``./run.sh test`` runs ``-n 2 --dist loadfile``).

``--dist loadfile`` sends whole files to a worker, so a file's module fixtures are built once. Two
things it does not do, which this module adds (tests/conftest.py installs both):

* **Files that share a session fixture go to the same worker** (:data:`SHARED`). A session fixture
  is built once per *worker*: the tiny training run of ``processing_scripts/conftest.py`` or the
  in-process synths of ``stacks/conftest.py`` were built on both workers when their files landed
  on both.
* **The longest work units start first** (:data:`LONGEST_FIRST`). xdist orders work units by their
  number of tests, so the demo's end-to-end run (12 tests, ~2 min) started late and the suite
  ended with one worker idle while the other finished it. Here the units go out in the order
  below (measured with ``--durations``, longest first), then the rest in collection order.
"""

from __future__ import annotations

from xdist.scheduler import LoadFileScheduling

#: Work units that are one group of files: (group, files whose tests share its session fixtures).
SHARED: dict[str, tuple[str, ...]] = {
    # binary_run / regression_run: the tiny pipeline run as subprocesses (processing_scripts/conftest.py)
    "tests/processing_scripts[binary_run]": (
        "tests/processing_scripts/test_data_quality_baseline.py",
        "tests/processing_scripts/test_inference.py",
        "tests/processing_scripts/test_pipeline.py",
        "tests/processing_scripts/test_train_evaluate_baseline.py",
    ),
    # toy_server: one background toy endpoint (tests/stsmon/endpoint/endpoint_fixtures.py)
    "tests/stsmon/endpoint[toy_server]": (
        "tests/stsmon/endpoint/test_endpoint_contract.py",
        "tests/stsmon/endpoint/test_http_framing.py",
    ),
    # dev / prod: one in-process synth per configuration, with the nag packs (stacks/conftest.py)
    "tests/stacks[synth]": (
        "tests/stacks/test_cdk_synth.py",
        "tests/stacks/test_security_gates.py",
        "tests/stacks/test_authorization.py",
        "tests/stacks/test_custom_resource_handlers.py",
        "tests/stacks/test_foundation_stack.py",
        "tests/stacks/test_monitoring_stack.py",
        "tests/stacks/test_serving_stack.py",
        "tests/stacks/test_snapshots.py",
        "tests/stacks/test_training_stack.py",
    ),
}

#: The longest work units, longest first (seconds on this 2-core machine, from ``--durations``).
LONGEST_FIRST: tuple[str, ...] = (
    "tests/test_demo.py",                       # the demo on the full corpus, its rerun, a release, two trainings
    "tests/stacks[synth]",                      # the in-process synths, three real `cdk synth`s, cfn-lint, checkov
    "tests/test_demo_regression.py",            # the demo on graded scores
    "tests/processing_scripts[binary_run]",
    "tests/stsmon/endpoint/test_endpoint_faults.py",
    "tests/processing_scripts/test_featurizer_alignment.py",
    "tests/pipeline_code/test_definition_build.py",
    "tests/stsmon/endpoint/test_endpoint_handlers.py",
    "tests/serving/test_real_serving.py",
    "tests/pipeline_code/test_training_pipeline_definition.py",
    "tests/stsmon/models/test_model_aws.py",
    "tests/stsmon/commands/test_status_cleanup.py",
)

_GROUP_OF = {path: group for group, paths in SHARED.items() for path in paths}


def work_unit(nodeid: str) -> str:
    """The work unit of a test id: its file, or the group its file shares session fixtures with."""
    path = nodeid.split("::", 1)[0]
    return _GROUP_OF.get(path, path)


def order_items(items: list) -> None:
    """Sort ``items`` in place: the units of :data:`LONGEST_FIRST` in that order, then the others as
    collected (stable, so each file's tests keep their order and stay together)."""
    rank = {unit: i for i, unit in enumerate(LONGEST_FIRST)}
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        first_seen.setdefault(work_unit(item.nodeid), index)

    def key(indexed):
        index, item = indexed
        unit = work_unit(item.nodeid)
        return (rank.get(unit, len(rank)), first_seen[unit], index)

    items[:] = [item for _, item in sorted(enumerate(items), key=key)]


class SharedFixtureScheduling(LoadFileScheduling):
    """``--dist loadfile`` with :data:`SHARED` files as one unit, handed out in collection order
    (which :func:`order_items` made longest first) rather than by number of tests."""

    def __init__(self, config, log=None) -> None:
        super().__init__(config, log)
        config.option.loadscopereorder = False  # keep the collection's order (xdist's --no-loadscope-reorder)

    def _split_scope(self, nodeid: str) -> str:
        return work_unit(nodeid)
