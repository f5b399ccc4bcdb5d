"""The handler extension point: registration, lookup, the default update."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stsmon import resource_handlers
from stsmon.localcloud import handlers as h
from stsmon.state import StateDir


def test_register_and_lookup(monkeypatch):
    monkeypatch.setattr(h, "_HANDLERS", {})

    calls = []

    @h.register("Test::Thing", "Test::Other")
    class Thing(h.ResourceHandler):
        def create(self, ctx, logical_id, props):
            calls.append(("create", props["N"]))
            return h.HandlerResult(f"thing-{props['N']}", {"N": props["N"]})

        def delete(self, ctx, logical_id, previous):
            calls.append(("delete", previous.physical_id))

    handler = resource_handlers.handler_for("Test::Thing")
    assert isinstance(handler, Thing) and resource_handlers.handler_for("Test::Other") is handler
    assert resource_handlers.handler_for("Test::Missing") is None
    assert resource_handlers.supported_types() == ["Test::Other", "Test::Thing"]

    previous = h.DeployedResource("T", "Test::Thing", "thing-1", {"N": 1}, {"N": 1})
    result = handler.update(None, "T", {"N": 2}, previous)
    assert result == h.HandlerResult("thing-2", {"N": 2})
    assert calls == [("delete", "thing-1"), ("create", 2)]

    with pytest.raises(ValueError, match="two handlers"):

        @h.register("Test::Thing")
        class Another(h.ResourceHandler):
            pass


def test_the_registry_names_every_handler_module_and_each_handles_something():
    """One table (stsmon/resource_handlers.py); every type is handled by exactly the module it lists."""
    by_module = {m.__name__: resource_handlers.types_of(m) for m in resource_handlers.HANDLER_MODULES}
    assert list(by_module) == ["stsmon.localcloud.handlers.core", "stsmon.localcloud.handlers.sagemaker",
                               "stsmon.localcloud.handlers.events", "stsmon.endpoint.handlers",
                               "stsmon.monitoring.handlers"]
    assert by_module["stsmon.localcloud.handlers.events"] == ["AWS::Events::Rule"]
    assert "AWS::Scheduler::Schedule" in by_module["stsmon.monitoring.handlers"]
    assert "Custom::StsApprovedModelPackage" in by_module["stsmon.endpoint.handlers"]
    # (Other test modules register Test:: handlers of their own in this process.)
    real = [t for t in resource_handlers.supported_types() if not t.startswith("Test::")]
    assert sorted(t for types in by_module.values() for t in types) == real


def test_a_missing_handler_module_is_an_error_not_a_skip(subprocess_env):
    """Before: the interface imported the endpoint and monitoring handlers by name and skipped a module
    that was not there, so a deploy then refused their types as unknown (or, worse, a half-present
    runtime deployed without them). Now the deployer's import fails, naming the module."""
    code = ("import sys; sys.modules['stsmon.monitoring.handlers'] = None\n"
            "import stsmon.localcloud.deployer")
    proc = subprocess.run([sys.executable, "-c", code], env=subprocess_env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "ModuleNotFoundError: import of stsmon.monitoring.handlers halted" in proc.stderr


def test_unresolved_values_are_detected_in_nested_props():
    u = h.Unresolved("Fn::GetAtt Bucket.Arn")
    assert str(u) == "<Fn::GetAtt Bucket.Arn>"
    assert h.is_resolved({"a": [1, {"b": "x"}]})
    assert not h.is_resolved({"a": [1, {"b": u}]})


def test_deployed_resource_json_round_trip():
    r = h.DeployedResource("B", "AWS::S3::Bucket", "bucket-1", {"BucketName": "bucket-1"}, {"Arn": "arn"})
    assert h.DeployedResource.from_json("B", r.to_json()) == r


def test_context_opens_the_state_registry(tmp_path, clock):
    ctx = h.DeployContext(state=StateDir(tmp_path), env=h.LocalEnvironment(), stack_name="s", clock=clock)
    ctx.registry.create_model_package_group(ModelPackageGroupName="g")
    assert (tmp_path / "registry.sqlite").is_file()
    assert ctx.asset_path("bucket", "key") is None
