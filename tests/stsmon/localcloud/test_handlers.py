"""The handler extension point: registration, lookup, the default update."""

from __future__ import annotations

import pytest

from stsmon.localcloud import handlers as h
from stsmon.state import StateDir


def test_register_and_lookup(monkeypatch):
    monkeypatch.setattr(h, "_HANDLERS", {})
    monkeypatch.setattr(h, "_LOADED", True)

    calls = []

    @h.register("Test::Thing", "Test::Other")
    class Thing(h.ResourceHandler):
        def create(self, ctx, logical_id, props):
            calls.append(("create", props["N"]))
            return h.HandlerResult(f"thing-{props['N']}", {"N": props["N"]})

        def delete(self, ctx, logical_id, previous):
            calls.append(("delete", previous.physical_id))

    handler = h.handler_for("Test::Thing")
    assert isinstance(handler, Thing) and h.handler_for("Test::Other") is handler
    assert h.handler_for("Test::Missing") is None
    assert h.supported_types() == ["Test::Other", "Test::Thing"]

    previous = h.DeployedResource("T", "Test::Thing", "thing-1", {"N": 1}, {"N": 1})
    result = handler.update(None, "T", {"N": 2}, previous)
    assert result == h.HandlerResult("thing-2", {"N": 2})
    assert calls == [("delete", "thing-1"), ("create", 2)]

    with pytest.raises(ValueError, match="two handlers"):

        @h.register("Test::Thing")
        class Another(h.ResourceHandler):
            pass


def test_missing_handler_modules_are_skipped_but_broken_ones_raise(monkeypatch):
    monkeypatch.setattr(h, "_LOADED", False)
    monkeypatch.setattr(h, "HANDLER_MODULES", ("stsmon.no_such_package.handlers",))
    h.load_handlers()
    monkeypatch.setattr(h, "_LOADED", False)
    monkeypatch.setattr(h, "HANDLER_MODULES", ("json.no_such_module",))
    h.load_handlers()

    def broken(name):
        raise ModuleNotFoundError("No module named 'nonexistent_dependency'", name="nonexistent_dependency")

    monkeypatch.setattr(h, "_LOADED", False)
    monkeypatch.setattr(h, "HANDLER_MODULES", ("stsmon.endpoint.handlers",))
    monkeypatch.setattr(h.importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="nonexistent_dependency"):
        h.load_handlers()


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
