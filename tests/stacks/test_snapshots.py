"""One snapshot per stack (asset and script-content hashes masked).

A snapshot diff is a reviewable summary of what a change does to the
templates. After an intended change, regenerate with
``STSMON_UPDATE_SNAPSHOTS=1 python -m pytest tests/stacks/test_snapshots.py``
and review the diff like code.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
UPDATE = os.environ.get("STSMON_UPDATE_SNAPSHOTS") == "1"

_MASKS = [
    (re.compile(r"\b[0-9a-f]{64}\b"), "<asset-hash>"),  # CDK asset hashes (Lambda code, staged scripts)
    (re.compile(r"/code/[0-9a-f]{16}/"), "/code/<script-hash>/"),  # our step-script prefix
]


def masked(template: dict) -> str:
    text = json.dumps(template, indent=1, sort_keys=True)
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text + "\n"


@pytest.mark.parametrize("kind", ["foundation", "training", "serving", "monitoring"])
def test_stack_matches_its_snapshot(dev, kind):
    name = dev.config.stack_name(kind)
    actual = masked(dev.template(kind))
    path = SNAPSHOTS / f"{name}.json"
    if UPDATE:
        path.write_text(actual)
    assert path.is_file(), f"no snapshot {path}; create it with STSMON_UPDATE_SNAPSHOTS=1"
    assert actual == path.read_text(), f"{name} differs from {path}; review, then STSMON_UPDATE_SNAPSHOTS=1 to accept"


def test_masking_hides_only_hashes():
    template = {"Key": "a" * 64 + ".zip", "Prefix": "sts/code/0123456789abcdef/x", "Name": "stsPipeline"}
    text = masked(template)
    assert "<asset-hash>.zip" in text and "sts/code/<script-hash>/x" in text and "stsPipeline" in text
