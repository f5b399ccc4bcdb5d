"""Building the definitions for the stacks: in a background process, in-process, or from the cache."""

from __future__ import annotations

import json

import pytest

from pipeline_code import build
from stscontracts.config import load_config

CODE_PREFIX = "sts/code/0123456789abcdef/"


@pytest.fixture(scope="module")
def built():
    return build.build_all(load_config(), CODE_PREFIX)


def test_cache_key_covers_config_code_and_sdk_versions():
    cfg = load_config()
    key = build.cache_key(cfg, CODE_PREFIX)
    assert key == build.cache_key(load_config(), CODE_PREFIX)
    assert key != build.cache_key(load_config({"QUALITY_THRESHOLD": "0.8"}), CODE_PREFIX)
    assert key != build.cache_key(cfg, "sts/code/fedcba9876543210/")
    assert any(p.name == "training.py" for p in build._SOURCES) and "sagemaker-core" in build._PACKAGES


def test_in_process_build_is_stored_and_a_second_call_reads_it(tmp_path, built):
    cfg = load_config()
    first = build.definitions(cfg, CODE_PREFIX, tmp_path, background=False)
    assert isinstance(first, build.InProcessDefinitions)
    assert first.get("training") == built["training"]
    (stored,) = tmp_path.glob("*.json")
    assert stored.name == f"{build.cache_key(cfg, CODE_PREFIX)}.json"
    second = build.definitions(cfg, CODE_PREFIX, tmp_path, background=False)
    assert isinstance(second, build.CachedDefinitions)
    assert second.get("training") == built["training"] and second.get("monitoring") == built["monitoring"]
    assert json.dumps(second.get("training")) == json.dumps(built["training"])  # same bytes, same key order


def test_background_build_matches_the_in_process_build(tmp_path, built):
    source = build.definitions(load_config(), CODE_PREFIX, tmp_path)
    assert isinstance(source, build.BackgroundDefinitions)
    assert source.get("monitoring") == built["monitoring"]
    assert source.get("training") == built["training"]
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_background_failure_is_reported_with_the_child_error(tmp_path):
    cfg = build.Config(region="xx-nowhere-1")  # a region the SDK has no image for
    source = build.BackgroundDefinitions(cfg, CODE_PREFIX)
    with pytest.raises(RuntimeError, match="building the pipeline definitions failed"):
        source.get("training")
    assert list(tmp_path.iterdir()) == []
