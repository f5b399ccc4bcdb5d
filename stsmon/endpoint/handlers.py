"""Local meaning of the serving stack's resources (registered with the local deployer).

- ``Custom::StsApprovedModelPackage`` — which model package to serve: runs
  the custom resource's logic, the one its Lambda runs on AWS
  (``stscontracts.served_package.handle``, which the Lambda's asset ships),
  against the local registry and local buckets, so "latest approved",
  "pinned" and "the endpoint's package" mean exactly what they mean on AWS. Unlike CloudFormation (which calls it only when a property changes),
  every local deploy re-resolves it, so ``stsmon deploy`` after a newly
  approved package serves that package. ``stsmon deploy --package-arn`` (and
  ``stsmon model rollback``) pins a package: the pin is recorded
  (``endpoints/_pin.json``) and later deploys keep serving it until
  ``stsmon deploy --unpin`` — as on AWS, where the pin is in the synthesized
  templates until the app is synthesized again without it.
- ``AWS::SageMaker::Model`` — resolves its container (``ModelPackageName``
  through the registry, or ``PrimaryContainer``/``Containers``) to a model
  data URL and environment. A changed container is a new model (new name),
  like SageMaker's replacement.
- ``AWS::SageMaker::EndpointConfig`` — one production variant and its
  ``DataCaptureConfig`` (validated at check time).
- ``AWS::SageMaker::Endpoint`` — a real local server
  (:mod:`stsmon.endpoint.process`): started in the background (or in the
  foreground with ``--foreground``), swapped to a new model in place when the
  config changes (no request dropped), restarted by a later deploy if it is
  not running, stopped by ``--stop`` and on delete.

Model and config records live in ``endpoints/_models/{name}.json`` and
``endpoints/_configs/{name}.json`` (endpoint names cannot contain ``_``); the
endpoint's in ``endpoints/{name}/resource.json`` next to its server files.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

from stscontracts import names, served_package

from ..errors import StsmonError
from ..localcloud.handlers import DeployContext, DeployedResource, HandlerResult, ResourceHandler, is_resolved, register
from ..state import StateDir
from .capture import settings_from_data_capture_config
from .model import ModelLoadError, prepare_model_dir
from .process import endpoint_paths, read_record, serve_foreground, start_endpoint, stop_endpoint
from .server import ServerSpec

#: The port of a local endpoint when ``stsmon deploy --port`` is not given.
DEFAULT_PORT = 8080
APPROVED_PACKAGE_TYPE = served_package.RESOURCE_TYPE


# -- local records ----------------------------------------------------------------


def _port_free(host: str, port: int) -> bool:
    """True when ``host:port`` can be bound right now (the default port may be taken)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _models_dir(state: StateDir) -> Path:
    return state.endpoints / "_models"


def _configs_dir(state: StateDir) -> Path:
    return state.endpoints / "_configs"


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _read(path: Path, what: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StsmonError(f"{what} is not deployed locally (no {path})") from None


def _name(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> str:
    """A SageMaker-style generated name that changes when the properties change
    (replacement), so the old and new model/config can coexist during a swap."""
    digest = hashlib.sha256(json.dumps(props, sort_keys=True, default=str).encode()).hexdigest()[:10]
    head = f"{ctx.stack_name}-{logical_id}"[: 63 - 11]
    return f"{head}-{digest}".replace("_", "-")


class _LocalSageMaker:
    """The slice of the boto3 SageMaker client the approved-package Lambda uses."""

    def __init__(self, ctx: DeployContext) -> None:
        self.ctx = ctx

    def list_model_packages(self, **params: Any) -> dict[str, Any]:
        return self.ctx.registry.list_model_packages(**params)

    def describe_model_package(self, **params: Any) -> dict[str, Any]:
        return self.ctx.registry.describe_model_package(**params)

    def describe_endpoint(self, *, EndpointName: str) -> dict[str, Any]:  # noqa: N803
        return _read(endpoint_paths(self.ctx.state, EndpointName).folder / "resource.json", f"endpoint {EndpointName}")

    def describe_endpoint_config(self, *, EndpointConfigName: str) -> dict[str, Any]:  # noqa: N803
        return _read(_configs_dir(self.ctx.state) / f"{EndpointConfigName}.json", f"endpoint config {EndpointConfigName}")

    def describe_model(self, *, ModelName: str) -> dict[str, Any]:  # noqa: N803
        return _read(_models_dir(self.ctx.state) / f"{ModelName}.json", f"model {ModelName}")


class _LocalS3:
    """``get_object`` on the local buckets."""

    def __init__(self, state: StateDir) -> None:
        self.state = state

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        path = self.state.s3_path(f"s3://{Bucket}/{Key}")
        try:
            return {"Body": io.BytesIO(path.read_bytes())}
        except FileNotFoundError:
            raise StsmonError(f"s3://{Bucket}/{Key} does not exist locally ({path})") from None


@register(APPROVED_PACKAGE_TYPE)
class ApprovedPackageHandler(ResourceHandler):
    """Which model package to serve (see the module docstring)."""

    def _resolve(self, ctx: DeployContext, props: dict[str, Any]) -> HandlerResult:
        props = dict(props)
        pin = _pin_path(ctx.state)
        pinned = ""
        if not props.get("EndpointName"):  # the serving stack's package (the monitoring stack's follows the endpoint)
            if ctx.serving.unpin:
                pin.unlink(missing_ok=True)
            pinned = ctx.serving.package_arn or ("" if ctx.serving.unpin else _read_pin(pin))
            if pinned:
                props["ModelPackageArn"] = pinned
                if not ctx.serving.package_arn:
                    ctx.echo(f"{ctx.stack_name}: keeping the pinned package {pinned} "
                             "(`stsmon deploy --unpin` serves the latest Approved one)")
        try:
            physical_id, data = served_package.handle("Create", props, {}, sagemaker=_LocalSageMaker(ctx),
                                                      s3=_LocalS3(ctx.state))
        except served_package.ServedPackageError as exc:
            message = exc.message.replace("stsmon train --target aws", "stsmon train")
            raise StsmonError(message) from None
        except StsmonError:
            raise
        except Exception as exc:  # e.g. the registry refusing an unknown ARN
            raise StsmonError(f"cannot resolve the model package to serve: {exc}") from exc
        if ctx.serving.package_arn and not props.get("EndpointName"):
            _write(pin, {"ModelPackageArn": data["ModelPackageArn"]})
        return HandlerResult(physical_id, data)

    def create(self, ctx, logical_id, props):
        result = self._resolve(ctx, props)
        ctx.echo(f"{ctx.stack_name}: serving model package {result.attributes['ModelPackageArn']}")
        return result

    def update(self, ctx, logical_id, props, previous):
        return self.create(ctx, logical_id, props)

    def refresh(self, ctx, logical_id, props, previous):
        result = self._resolve(ctx, props)
        if result.attributes != previous.attributes:
            ctx.echo(f"{ctx.stack_name}: model package is now {result.attributes['ModelPackageArn']}")
            return result
        return None

    def delete(self, ctx, logical_id, previous):
        if not previous.properties.get("EndpointName"):
            _pin_path(ctx.state).unlink(missing_ok=True)
        return None


def _pin_path(state: StateDir) -> Path:
    """The serving stack's pinned package (``stsmon deploy --package-arn``, ``stsmon model rollback``)."""
    return state.endpoints / "_pin.json"


def _read_pin(path: Path) -> str:
    try:
        return str(json.loads(path.read_text()).get("ModelPackageArn") or "")
    except FileNotFoundError:
        return ""
    except (OSError, ValueError) as exc:
        raise StsmonError(f"the pin {path} cannot be read ({exc}): `stsmon deploy --unpin` removes it") from None


def _name_of(previous: DeployedResource, attribute: str) -> str:
    """The resource's name: its ``attribute`` (Ref is the ARN, as on CloudFormation); a record
    written before that change kept the name as its physical id."""
    return str(previous.attributes.get(attribute) or previous.physical_id)


@register("AWS::SageMaker::Model")
class ModelHandler(ResourceHandler):
    def check(self, ctx, logical_id, props):
        containers = props.get("Containers") or ([props["PrimaryContainer"]] if props.get("PrimaryContainer") else [])
        if len(containers) != 1:
            raise StsmonError(f"a local model needs exactly one container, {logical_id} has {len(containers)}")

    def _container(self, ctx: DeployContext, props: dict[str, Any]) -> dict[str, Any]:
        container = (props.get("Containers") or [props.get("PrimaryContainer") or {}])[0]
        package_arn = container.get("ModelPackageName")
        if package_arn:
            package = ctx.registry.describe_model_package(ModelPackageName=package_arn)
            spec = package["InferenceSpecification"]["Containers"][0]
            return {"ModelPackageName": package_arn, "Image": spec.get("Image", ""),
                    "ModelDataUrl": spec.get("ModelDataUrl", ""), "Environment": dict(spec.get("Environment") or {})}
        return {"Image": container.get("Image", ""), "ModelDataUrl": container.get("ModelDataUrl", ""),
                "Environment": dict(container.get("Environment") or {})}

    def create(self, ctx, logical_id, props):
        name = props.get("ModelName") or _name(ctx, logical_id, props)
        resolved = self._container(ctx, props)
        if not resolved["ModelDataUrl"]:
            raise StsmonError(f"model {name}: its container has no ModelDataUrl")
        path = ctx.state.s3_path(resolved["ModelDataUrl"])
        if not path.exists():
            raise StsmonError(f"model {name}: model data {resolved['ModelDataUrl']} does not exist locally ({path})")
        arn = ctx.env.arn("sagemaker", f"model/{name.lower()}")
        containers = props.get("Containers") or [props.get("PrimaryContainer") or {}]
        _write(_models_dir(ctx.state) / f"{name}.json",
               {"ModelName": name, "ModelArn": arn, "Containers": containers, "Resolved": resolved,
                "EnableNetworkIsolation": props.get("EnableNetworkIsolation", False)})
        return HandlerResult(arn, {"ModelName": name, "ModelArn": arn})  # Ref: the ARN, as CloudFormation

    def update(self, ctx, logical_id, props, previous):
        result = self.create(ctx, logical_id, props)
        if result.physical_id != previous.physical_id:
            self.delete(ctx, logical_id, previous)
        return result

    def refresh(self, ctx, logical_id, props, previous):
        if props != previous.properties or not (_models_dir(ctx.state) / f"{_name_of(previous, 'ModelName')}.json").is_file():
            return self.update(ctx, logical_id, props, previous)
        return None

    def delete(self, ctx, logical_id, previous):
        (_models_dir(ctx.state) / f"{_name_of(previous, 'ModelName')}.json").unlink(missing_ok=True)


@register("AWS::SageMaker::EndpointConfig")
class EndpointConfigHandler(ResourceHandler):
    def check(self, ctx, logical_id, props):
        variants = props.get("ProductionVariants") or []
        if len(variants) != 1:
            raise StsmonError(f"a local endpoint serves exactly one production variant, {logical_id} has {len(variants)}")
        capture = props.get("DataCaptureConfig")
        if capture and is_resolved(capture):
            try:
                settings_from_data_capture_config(capture, ctx.state.s3_path)
            except (ValueError, StsmonError) as exc:
                raise StsmonError(f"DataCaptureConfig of {logical_id}: {exc}") from None

    def create(self, ctx, logical_id, props):
        name = props.get("EndpointConfigName") or _name(ctx, logical_id, props)
        arn = ctx.env.arn("sagemaker", f"endpoint-config/{name.lower()}")
        _write(_configs_dir(ctx.state) / f"{name}.json", {**props, "EndpointConfigName": name, "EndpointConfigArn": arn})
        return HandlerResult(arn, {"EndpointConfigName": name, "EndpointConfigArn": arn})  # Ref: the ARN

    update = ModelHandler.update

    def delete(self, ctx, logical_id, previous):
        (_configs_dir(ctx.state) / f"{_name_of(previous, 'EndpointConfigName')}.json").unlink(missing_ok=True)

    def refresh(self, ctx, logical_id, props, previous):
        if props != previous.properties or not (_configs_dir(ctx.state) / f"{_name_of(previous, 'EndpointConfigName')}.json").is_file():
            return self.update(ctx, logical_id, props, previous)
        return None


def serving_spec(ctx: DeployContext, endpoint_name: str, config_name: str) -> ServerSpec:
    """The server spec of an endpoint from its config and model records (extracting the model)."""
    config = _read(_configs_dir(ctx.state) / f"{config_name}.json", f"endpoint config {config_name}")
    variant = config["ProductionVariants"][0]
    model = _read(_models_dir(ctx.state) / f"{variant['ModelName']}.json", f"model {variant['ModelName']}")
    resolved = model["Resolved"]
    paths = endpoint_paths(ctx.state, endpoint_name)
    try:
        model_dir = prepare_model_dir(ctx.state.s3_path(resolved["ModelDataUrl"]), paths.models)
    except ModelLoadError as exc:
        raise StsmonError(f"endpoint {endpoint_name}: {exc.message}") from None
    capture = None
    if ctx.serving.capture and config.get("DataCaptureConfig"):
        capture = settings_from_data_capture_config(config["DataCaptureConfig"], ctx.state.s3_path,
                                                    variant=variant.get("VariantName", names.VARIANT))
    current = read_record(ctx.state, endpoint_name)
    port = ctx.serving.port
    fallback = False
    if port is None:
        if current and current.get("running"):
            port = current["port"]
        elif _port_free(ctx.serving.host, DEFAULT_PORT):
            port, fallback = DEFAULT_PORT, True  # taken between this check and the bind: a free one then
        else:
            ctx.echo(f"{ctx.stack_name}: port {DEFAULT_PORT} is in use; the endpoint takes a free port "
                     "(choose one with `stsmon deploy --port`)")
            port = 0
    return ServerSpec(
        endpoint_name=endpoint_name,
        model_dir=str(model_dir),
        model_env=dict(resolved.get("Environment") or {}),
        host=ctx.serving.host,
        port=port,
        port_fallback=fallback,
        capture=capture,
        variant=variant.get("VariantName", names.VARIANT),
        region=ctx.env.region,
        account=ctx.env.account,
        info={"EndpointConfigName": config_name, "ModelName": model["ModelName"],
              "ModelPackageArn": resolved.get("ModelPackageName"), "ModelDataUrl": resolved["ModelDataUrl"]},
    )


@register("AWS::SageMaker::Endpoint")
class EndpointHandler(ResourceHandler):
    def check(self, ctx, logical_id, props):
        if not props.get("EndpointName"):
            raise StsmonError(f"{logical_id}: a local endpoint needs an EndpointName")

    def _serve(self, ctx: DeployContext, props: dict[str, Any]) -> HandlerResult:
        name = props["EndpointName"]
        config_name = props["EndpointConfigName"]
        spec = serving_spec(ctx, name, config_name)
        arn = ctx.env.arn("sagemaker", f"endpoint/{name.lower()}")
        _write(endpoint_paths(ctx.state, name).folder / "resource.json",
               {"EndpointName": name, "EndpointArn": arn, "EndpointConfigName": config_name})
        attributes = {"EndpointName": name, "EndpointArn": arn}
        if ctx.serving.stop:
            if stop_endpoint_quietly(ctx.state, name):
                ctx.echo(f"{ctx.stack_name}: endpoint {name} stopped")
            return HandlerResult(arn, attributes)
        if ctx.serving.foreground:
            stop_endpoint_quietly(ctx.state, name)
            ctx.echo(f"{ctx.stack_name}: serving endpoint {name} at http://{spec.host}:{spec.port} in the "
                     "foreground; Ctrl-C stops it")
            code = serve_foreground(ctx.state, spec, clock=ctx.clock)
            if code:
                record = read_record(ctx.state, name) or {}
                raise StsmonError(f"endpoint {name} could not serve: {record.get('failure_reason', f'exit code {code}')}")
            return HandlerResult(arn, attributes)
        record = start_endpoint(ctx.state, spec)
        capture = "capture off" if spec.capture is None else f"capture {spec.capture.sampling_percentage:g}% to {spec.capture.destination_uri}"
        ctx.echo(f"{ctx.stack_name}: endpoint {name} in service at {record['url']} (pid {record['pid']}, {capture}, "
                 f"log {record['log']})")
        return HandlerResult(arn, attributes)  # Ref: the ARN, as CloudFormation

    def create(self, ctx, logical_id, props):
        return self._serve(ctx, props)

    def update(self, ctx, logical_id, props, previous):
        if props["EndpointName"] != _name_of(previous, "EndpointName"):
            self.delete(ctx, logical_id, previous)
        return self._serve(ctx, props)

    def refresh(self, ctx, logical_id, props, previous):
        """Unchanged endpoint: honour --stop / --foreground / --no-capture / --port, restart
        it if it is not running; a running one with the same settings is left alone."""
        name = props["EndpointName"]
        record = read_record(ctx.state, name)
        running = bool(record and record.get("running"))
        if ctx.serving.stop or ctx.serving.foreground or not running:
            return self._serve(ctx, props)
        wanted = serving_spec(ctx, name, props["EndpointConfigName"])
        current = (record.get("host"), record.get("port"), record.get("model_dir"), bool(record.get("capture")))
        if current != (wanted.host, wanted.port, wanted.model_dir, wanted.capture is not None):
            return self._serve(ctx, props)
        ctx.echo(f"{ctx.stack_name}: endpoint {name} in service at {record['url']} (pid {record['pid']})")
        return None

    def delete(self, ctx, logical_id, previous):
        name = _name_of(previous, "EndpointName")
        stop_endpoint_quietly(ctx.state, name)
        folder = endpoint_paths(ctx.state, name).folder
        if folder.is_dir():
            shutil.rmtree(folder)


def stop_endpoint_quietly(state: StateDir, name: str) -> bool:
    """Stop the endpoint's server if one runs; True if it did."""
    if read_record(state, name) is None:
        return False
    return stop_endpoint(state, name)
