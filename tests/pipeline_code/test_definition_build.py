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


@pytest.mark.slow
def test_background_build_matches_the_in_process_build(tmp_path, built):
    """Byte for byte: the builder process imports placeholders for pandas, numpy, scipy, docker,
    paramiko and omegaconf (pipeline_code/unused_imports.py); the in-process build has the real ones."""
    source = build.definitions(load_config(), CODE_PREFIX, tmp_path)
    assert isinstance(source, build.BackgroundDefinitions)
    assert json.dumps(source.get("monitoring")) == json.dumps(built["monitoring"])
    assert json.dumps(source.get("training")) == json.dumps(built["training"])
    assert len(list(tmp_path.glob("*.json"))) == 1


@pytest.mark.slow
def test_background_failure_is_reported_with_the_child_error(tmp_path):
    cfg = build.Config(region="xx-nowhere-1")  # a region the SDK has no image for
    source = build.BackgroundDefinitions(cfg, CODE_PREFIX)
    with pytest.raises(RuntimeError, match="building the pipeline definitions failed"):
        source.get("training")
    assert list(tmp_path.iterdir()) == []


def test_the_builder_entry_point_skips_the_unused_imports_before_it_builds(monkeypatch):
    from pipeline_code import unused_imports

    calls = []
    monkeypatch.setattr(unused_imports, "skip_unused_imports", lambda: calls.append("skip"))
    monkeypatch.setattr(build, "build_all", lambda cfg, prefix: calls.append("build") or {})
    request = json.dumps({"config": build.config_to_json(load_config()), "code_prefix": CODE_PREFIX})
    assert build.main([request]) == 0
    assert calls == ["skip", "build"]


PLACEHOLDER_PROBE = r"""
import json, sys
import json as already_imported
from pipeline_code.unused_imports import UnusedImportUsed, is_placeholder, skip_unused_imports
skip_unused_imports(("pandas", "omegaconf", "json"))
import pandas
from pandas import DataFrame
from omegaconf import dictconfig, OmegaConf
from omegaconf.dictconfig import DictConfig
def annotated(frame: DataFrame | None, config: dictconfig.DictConfig, rows: DataFrame[int]) -> None: ...
isinstance(object(), DataFrame)
errors = []
for use in (lambda: DataFrame({"a": [1]}), lambda: OmegaConf.create({}), lambda: DictConfig()):
    try:
        use()
    except UnusedImportUsed as exc:
        errors.append(str(exc))
print(json.dumps({"pandas": is_placeholder(pandas), "json": is_placeholder(sys.modules["json"]), "errors": errors}))
"""


def test_a_placeholder_imports_like_the_package_and_fails_loudly_when_used(subprocess_env):
    """What the SDK does with the skipped packages at import time works (names, submodules,
    annotations, isinstance); calling or instantiating anything raises an error that names
    the package and the fix. A package already imported stays the real one."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", PLACEHOLDER_PROBE], capture_output=True, text=True,
                         env=subprocess_env, check=True).stdout
    result = json.loads(out)
    assert result["pandas"] is True and result["json"] is False
    assert len(result["errors"]) == 3
    assert result["errors"][0].startswith("pandas.DataFrame was used while building a pipeline definition")
    assert "remove 'pandas' from UNUSED in pipeline_code/unused_imports.py" in result["errors"][0]
    assert result["errors"][1].startswith("omegaconf.OmegaConf.create was used")
    assert result["errors"][2].startswith("omegaconf.dictconfig.DictConfig was used")


def test_while_definitions_are_built_every_botocore_loader_is_one_loader():
    """The SDK's sessions and its endpoint resolver (``image_uris.retrieve`` calls
    ``botocore.loaders.create_loader()`` on every call: sagemaker-core's common_utils._botocore_resolver)
    share one loader, so endpoints.json and the service models are parsed once per process;
    botocore's own functions are back afterwards."""
    import botocore.loaders
    import botocore.session

    from pipeline_code.sdk import offline_sdk

    original = botocore.loaders.create_loader
    with offline_sdk("us-east-1"):
        session_loader = botocore.session.Session().get_component("data_loader")
        assert botocore.loaders.create_loader() is session_loader
        assert botocore.loaders.create_loader() is botocore.loaders.create_loader()
    assert botocore.loaders.create_loader is original and botocore.session.create_loader is original
    assert botocore.loaders.create_loader() is not botocore.loaders.create_loader()
