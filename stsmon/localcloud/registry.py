"""The local model registry: SageMaker's model package groups and packages, in SQLite.

The API mirrors the boto3 SageMaker client, keyword for keyword and shape for
shape, so code written against ``boto3.client("sagemaker")`` works against
:class:`Registry` unchanged (and the other way round)::

    reg = Registry(state.registry_db)
    reg.create_model_package_group(ModelPackageGroupName="stsPackageGroup")
    arn = reg.create_model_package(ModelPackageGroupName="stsPackageGroup",
                                   InferenceSpecification={...},
                                   ModelApprovalStatus="Approved")["ModelPackageArn"]
    reg.list_model_packages(ModelPackageGroupName="stsPackageGroup",
                            ModelApprovalStatus="Approved",
                            SortBy="CreationTime", SortOrder="Descending", MaxResults=1)
    reg.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")

plus :meth:`Registry.latest_approved_package` (the endpoint's "latest
approved"), :meth:`Registry.set_approval` and :meth:`Registry.metric_uris`
(the S3 URIs of a package's metrics and baseline files; map them to local
paths with ``StateDir.s3_path``).

SageMaker semantics kept: versions count from 1 per group and are never
reused; ARNs keep the group name's case, as SageMaker's do and IAM authorizes
them (``arn:aws:sagemaker:{region}:{account}:model-package/{Group}/{version}``
and ``...:model-package-group/{Group}``: an IAM policy naming the lower-cased
group is denied, aws-samples/ml-edge-getting-started issue #18; the evidence
is gathered in ``stacks/constructs/sagemaker_arns.py``); names are unique
case-insensitively and a package is found by its ARN in any case;
a new package is ``PendingManualApproval`` unless the request says otherwise;
``ListModelPackages`` sorts ascending by default; a group with packages cannot
be deleted; request parameters are validated against botocore's SageMaker
service model (unknown or mistyped parameters are refused, as boto3 would).

Events: a registry opened with ``on_change`` calls it with the package (as
DescribeModelPackage shows it) after it registers one and after an update
changes its approval status, as SageMaker sends its ``SageMaker Model Package
State Change`` event to EventBridge then (:mod:`stsmon.localcloud.events`).

Durability and concurrency: one SQLite file in WAL mode with full sync; every
write is one ``BEGIN IMMEDIATE`` transaction (a package's version is assigned
inside it), so several processes may use the registry at once and a process
killed mid-write leaves either the whole change or none of it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..clock import Clock
from ..errors import NotDeployedError, StsmonError
from . import LocalEnvironment

APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")
DEFAULT_APPROVAL_STATUS = "PendingManualApproval"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_package_group (
    name TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
    arn TEXT NOT NULL,
    description TEXT,
    creation_time TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS model_package (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    group_name TEXT NOT NULL COLLATE NOCASE REFERENCES model_package_group(name),
    version INTEGER NOT NULL,
    arn TEXT NOT NULL UNIQUE,
    approval_status TEXT NOT NULL,
    approval_description TEXT,
    creation_time TEXT NOT NULL,
    last_modified_time TEXT NOT NULL,
    client_token TEXT,
    request TEXT NOT NULL,
    UNIQUE (group_name, version)
);
CREATE TABLE IF NOT EXISTS group_version_counter (
    group_name TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
    last_version INTEGER NOT NULL
);
"""


class RegistryError(StsmonError):
    """A request the registry refuses (bad parameter, conflict)."""

    exit_code = 2


class ResourceNotFound(NotDeployedError):
    """The group or package does not exist (SageMaker's ResourceNotFound / ValidationException)."""


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


_SERVICE_MODEL = None


def _validate(operation: str, params: dict[str, Any]) -> None:
    """Refuse parameters boto3 would refuse (names, types, enums, required members)."""
    global _SERVICE_MODEL
    import botocore.session
    from botocore.validate import ParamValidator

    if _SERVICE_MODEL is None:
        _SERVICE_MODEL = botocore.session.get_session().get_service_model("sagemaker")
    shape = _SERVICE_MODEL.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise RegistryError(f"{operation}: {report.generate_report()}")
    _check_enums(operation, params, shape)


def _check_enums(operation: str, value: Any, shape: Any, path: str = "") -> None:
    # botocore's validator does not check enums; SageMaker does.
    enum = getattr(shape, "enum", None)
    if enum and isinstance(value, str) and value not in enum:
        raise RegistryError(f"{operation}: {path or 'value'}={value!r} is not one of {', '.join(enum)}")
    if shape.type_name == "structure" and isinstance(value, dict):
        for key, member in value.items():
            if key in shape.members:
                _check_enums(operation, member, shape.members[key], f"{path}.{key}" if path else key)
    elif shape.type_name == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            _check_enums(operation, item, shape.member, f"{path}[{i}]")


class Registry:
    """The model registry in one SQLite file (created on first use).

    ``env`` gives the region and account used in ARNs.
    """

    def __init__(self, path: Path | str, *, env: LocalEnvironment | None = None, clock: Clock | None = None,
                 on_change: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.path = Path(path)
        self.env = env or LocalEnvironment()
        self.clock = clock  # writes stamp times from it; a registry opened without one only reads
        self.on_change = on_change  # the package after a registration or an approval status change
        self._conn: sqlite3.Connection | None = None

    def _now(self) -> datetime:
        if self.clock is None:
            raise RuntimeError("this Registry was opened without a clock: it can read, not create or update")
        return self.clock.now()

    # -- plumbing -----------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 60000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            with self._write(conn):
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)
            self._conn = conn
        return self._conn

    @staticmethod
    @contextmanager
    def _write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def group_arn(self, name: str) -> str:
        return self.env.arn("sagemaker", f"model-package-group/{name}")

    def package_arn(self, group: str, version: int) -> str:
        return self.env.arn("sagemaker", f"model-package/{group}/{version}")

    # -- groups -------------------------------------------------------------

    def create_model_package_group(self, **params: Any) -> dict[str, Any]:
        """CreateModelPackageGroup. Refuses a name that exists (SageMaker does too)."""
        _validate("CreateModelPackageGroup", params)
        name = params["ModelPackageGroupName"]
        conn = self._connection()
        with self._write(conn):
            if conn.execute("SELECT 1 FROM model_package_group WHERE name = ?", (name,)).fetchone():
                raise RegistryError(f"model package group {name!r} already exists")
            arn = self.group_arn(name)
            conn.execute(
                "INSERT INTO model_package_group (name, arn, description, creation_time, tags) VALUES (?, ?, ?, ?, ?)",
                (name, arn, params.get("ModelPackageGroupDescription"), _ts(self._now()), json.dumps(params.get("Tags", []))),
            )
        return {"ModelPackageGroupArn": arn}

    def describe_model_package_group(self, *, ModelPackageGroupName: str) -> dict[str, Any]:  # noqa: N803
        name = self._group_name(ModelPackageGroupName)
        row = self._connection().execute("SELECT * FROM model_package_group WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ResourceNotFound(f"model package group {ModelPackageGroupName!r} does not exist")
        return self._group_dict(row)

    def list_model_package_groups(self, **params: Any) -> dict[str, Any]:
        """ListModelPackageGroups (NameContains, SortBy Name|CreationTime, SortOrder; no paging)."""
        _validate("ListModelPackageGroups", params)
        rows = self._connection().execute("SELECT * FROM model_package_group").fetchall()
        groups = [self._group_dict(r) for r in rows]
        if "NameContains" in params:
            groups = [g for g in groups if params["NameContains"].lower() in g["ModelPackageGroupName"].lower()]
        key = "ModelPackageGroupName" if params.get("SortBy") == "Name" else "CreationTime"
        groups.sort(key=lambda g: g[key], reverse=params.get("SortOrder") == "Descending")
        if "MaxResults" in params:
            groups = groups[: params["MaxResults"]]
        return {"ModelPackageGroupSummaryList": groups}

    def delete_model_package_group(self, *, ModelPackageGroupName: str) -> dict[str, Any]:  # noqa: N803
        """DeleteModelPackageGroup: refused while the group holds packages."""
        name = self._group_name(ModelPackageGroupName)
        conn = self._connection()
        with self._write(conn):
            if not conn.execute("SELECT 1 FROM model_package_group WHERE name = ?", (name,)).fetchone():
                raise ResourceNotFound(f"model package group {name!r} does not exist")
            count = conn.execute("SELECT COUNT(*) FROM model_package WHERE group_name = ?", (name,)).fetchone()[0]
            if count:
                raise RegistryError(
                    f"model package group {name!r} still has {count} model package(s); delete them first"
                )
            conn.execute("DELETE FROM model_package_group WHERE name = ?", (name,))
            conn.execute("DELETE FROM group_version_counter WHERE group_name = ?", (name,))
        return {}

    # -- packages -----------------------------------------------------------

    def create_model_package(self, **params: Any) -> dict[str, Any]:
        """CreateModelPackage for a versioned package (``ModelPackageGroupName`` required).

        The group may be given by name or ARN. With a ``ClientToken`` already
        used in the group, the earlier package's ARN is returned (idempotent retry).
        """
        _validate("CreateModelPackage", params)
        if "ModelPackageGroupName" not in params:
            raise RegistryError(
                "CreateModelPackage: only versioned packages are supported; give ModelPackageGroupName"
            )
        status = params.get("ModelApprovalStatus", DEFAULT_APPROVAL_STATUS)
        group = self._group_name(params["ModelPackageGroupName"])
        request = {k: v for k, v in params.items() if k not in ("ClientToken", "Tags")}
        conn = self._connection()
        with self._write(conn):
            grow = conn.execute("SELECT name FROM model_package_group WHERE name = ?", (group,)).fetchone()
            if grow is None:
                raise ResourceNotFound(
                    f"model package group {group!r} does not exist (deploy the stack that declares it first)"
                )
            group = grow["name"]
            token = params.get("ClientToken")
            if token:
                prior = conn.execute(
                    "SELECT arn FROM model_package WHERE group_name = ? AND client_token = ?", (group, token)
                ).fetchone()
                if prior:
                    return {"ModelPackageArn": prior["arn"]}
            last = conn.execute(
                "SELECT last_version FROM group_version_counter WHERE group_name = ?", (group,)
            ).fetchone()
            version = (last["last_version"] if last else 0) + 1
            conn.execute(
                "INSERT INTO group_version_counter (group_name, last_version) VALUES (?, ?) "
                "ON CONFLICT(group_name) DO UPDATE SET last_version = excluded.last_version",
                (group, version),
            )
            arn = self.package_arn(group, version)
            now = _ts(self._now())
            request["ModelPackageGroupName"] = group
            conn.execute(
                "INSERT INTO model_package (group_name, version, arn, approval_status, creation_time, "
                "last_modified_time, client_token, request) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (group, version, arn, status, now, now, token, json.dumps(request, sort_keys=True)),
            )
        self._changed(arn)
        return {"ModelPackageArn": arn}

    def describe_model_package(self, *, ModelPackageName: str) -> dict[str, Any]:  # noqa: N803
        """DescribeModelPackage by ARN (or ``group/version``)."""
        row = self._package_row(ModelPackageName)
        return self._package_dict(row, full=True)

    def list_model_packages(self, **params: Any) -> dict[str, Any]:
        """ListModelPackages: filters ModelPackageGroupName, ModelApprovalStatus,
        NameContains, CreationTimeAfter/Before; SortBy CreationTime (default) or
        Name; SortOrder Ascending (default) or Descending; MaxResults. One page."""
        _validate("ListModelPackages", params)
        sql = "SELECT * FROM model_package WHERE 1=1"
        args: list[Any] = []
        if "ModelPackageGroupName" in params:
            sql += " AND group_name = ?"
            args.append(self._group_name(params["ModelPackageGroupName"]))
        if "ModelApprovalStatus" in params:
            sql += " AND approval_status = ?"
            args.append(params["ModelApprovalStatus"])
        if params.get("ModelPackageType") == "Unversioned":
            return {"ModelPackageSummaryList": []}
        rows = self._connection().execute(sql, args).fetchall()
        items = [self._package_dict(r, full=False) for r in rows]
        if "NameContains" in params:
            items = [i for i in items if params["NameContains"].lower() in i["ModelPackageName"].lower()]
        if "CreationTimeAfter" in params:
            items = [i for i in items if i["CreationTime"] > _aware(params["CreationTimeAfter"])]
        if "CreationTimeBefore" in params:
            items = [i for i in items if i["CreationTime"] < _aware(params["CreationTimeBefore"])]
        if params.get("SortBy") == "Name":
            key = lambda i: (i["ModelPackageName"].lower(), i["ModelPackageVersion"])  # noqa: E731
        else:
            # Version breaks ties between packages created in the same microsecond.
            key = lambda i: (i["CreationTime"], i["ModelPackageGroupName"], i["ModelPackageVersion"])  # noqa: E731
        items.sort(key=key, reverse=params.get("SortOrder") == "Descending")
        if "MaxResults" in params:
            items = items[: params["MaxResults"]]
        return {"ModelPackageSummaryList": items}

    def update_model_package(self, **params: Any) -> dict[str, Any]:
        """UpdateModelPackage: approval status and description, customer metadata."""
        _validate("UpdateModelPackage", params)
        supported = {
            "ModelPackageArn",
            "ModelApprovalStatus",
            "ApprovalDescription",
            "CustomerMetadataProperties",
            "CustomerMetadataPropertiesToRemove",
        }
        unsupported = sorted(set(params) - supported)
        if unsupported:
            raise RegistryError(f"UpdateModelPackage: the local registry does not support {', '.join(unsupported)}")
        conn = self._connection()
        with self._write(conn):
            row = self._package_row(params["ModelPackageArn"], conn)
            request = json.loads(row["request"])
            metadata = dict(request.get("CustomerMetadataProperties", {}))
            metadata.update(params.get("CustomerMetadataProperties", {}))
            for key in params.get("CustomerMetadataPropertiesToRemove", []):
                metadata.pop(key, None)
            if metadata:
                request["CustomerMetadataProperties"] = metadata
            else:
                request.pop("CustomerMetadataProperties", None)
            conn.execute(
                "UPDATE model_package SET approval_status = ?, approval_description = ?, "
                "last_modified_time = ?, request = ? WHERE seq = ?",
                (
                    params.get("ModelApprovalStatus", row["approval_status"]),
                    params.get("ApprovalDescription", row["approval_description"]),
                    _ts(self._now()),
                    json.dumps(request, sort_keys=True),
                    row["seq"],
                ),
            )
        if params.get("ModelApprovalStatus", row["approval_status"]) != row["approval_status"]:
            self._changed(row["arn"])
        return {"ModelPackageArn": row["arn"]}

    def delete_model_package(self, *, ModelPackageName: str) -> dict[str, Any]:  # noqa: N803
        """DeleteModelPackage (the version number is not reused)."""
        conn = self._connection()
        with self._write(conn):
            row = self._package_row(ModelPackageName, conn)
            conn.execute("DELETE FROM model_package WHERE seq = ?", (row["seq"],))
        return {}

    # -- conveniences -------------------------------------------------------

    def latest_approved_package(self, group: str) -> dict[str, Any] | None:
        """The newest *Approved* package of ``group`` (full description), or None.

        Same answer as ``ListModelPackages(ModelApprovalStatus="Approved",
        SortBy="CreationTime", SortOrder="Descending", MaxResults=1)``.
        Raises :class:`ResourceNotFound` when the group does not exist.
        """
        self.describe_model_package_group(ModelPackageGroupName=group)
        items = self.list_model_packages(
            ModelPackageGroupName=group,
            ModelApprovalStatus="Approved",
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=1,
        )["ModelPackageSummaryList"]
        if not items:
            return None
        return self.describe_model_package(ModelPackageName=items[0]["ModelPackageArn"])

    def set_approval(self, arn: str, status: str, description: str | None = None) -> dict[str, Any]:
        """Approve or reject a package (``status`` one of :data:`APPROVAL_STATUSES`)."""
        params: dict[str, Any] = {"ModelPackageArn": arn, "ModelApprovalStatus": status}
        if description is not None:
            params["ApprovalDescription"] = description
        return self.update_model_package(**params)

    @staticmethod
    def metric_uris(package: dict[str, Any]) -> dict[str, str]:
        """Every S3 URI in a described package's ModelMetrics and DriftCheckBaselines,
        keyed by path (``ModelMetrics.ModelQuality.Constraints`` ...)."""
        found: dict[str, str] = {}

        def walk(value: Any, path: str) -> None:
            if isinstance(value, dict):
                if "S3Uri" in value and isinstance(value["S3Uri"], str):
                    found[path] = value["S3Uri"]
                for key, item in value.items():
                    if isinstance(item, dict):
                        walk(item, f"{path}.{key}")

        for top in ("ModelMetrics", "DriftCheckBaselines"):
            if top in package:
                walk(package[top], top)
        return found

    # -- internals ----------------------------------------------------------

    def _changed(self, arn: str) -> None:
        if self.on_change is not None:
            self.on_change(self.describe_model_package(ModelPackageName=arn))

    def _group_name(self, name_or_arn: str) -> str:
        if name_or_arn.startswith("arn:"):
            return name_or_arn.rsplit("/", 1)[-1]
        return name_or_arn

    def _package_row(self, name_or_arn: str, conn: sqlite3.Connection | None = None) -> sqlite3.Row:
        conn = conn or self._connection()
        key = name_or_arn
        if not key.startswith("arn:"):
            key = self.env.arn("sagemaker", f"model-package/{key}")
        row = conn.execute("SELECT * FROM model_package WHERE arn = ? COLLATE NOCASE", (key,)).fetchone()
        if row is None:
            raise ResourceNotFound(f"model package {name_or_arn!r} does not exist")
        return row

    @staticmethod
    def _group_dict(row: sqlite3.Row) -> dict[str, Any]:
        out = {
            "ModelPackageGroupName": row["name"],
            "ModelPackageGroupArn": row["arn"],
            "CreationTime": _dt(row["creation_time"]),
            "ModelPackageGroupStatus": "Completed",
        }
        if row["description"]:
            out["ModelPackageGroupDescription"] = row["description"]
        return out

    @staticmethod
    def _package_dict(row: sqlite3.Row, *, full: bool) -> dict[str, Any]:
        request = json.loads(row["request"])
        out: dict[str, Any] = {
            "ModelPackageName": row["group_name"],
            "ModelPackageGroupName": row["group_name"],
            "ModelPackageVersion": row["version"],
            "ModelPackageArn": row["arn"],
            "CreationTime": _dt(row["creation_time"]),
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": row["approval_status"],
        }
        if "ModelPackageDescription" in request:
            out["ModelPackageDescription"] = request["ModelPackageDescription"]
        if not full:
            return out
        for key, value in request.items():
            if key not in ("ModelPackageGroupName", "ModelPackageName", "ModelApprovalStatus"):
                out[key] = value
        out["ModelPackageStatusDetails"] = {"ValidationStatuses": [], "ImageScanStatuses": []}
        out["CertifyForMarketplace"] = bool(request.get("CertifyForMarketplace", False))
        out["LastModifiedTime"] = _dt(row["last_modified_time"])
        if row["approval_description"]:
            out["ApprovalDescription"] = row["approval_description"]
        return out


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def open_registry(state_root: Path, env: LocalEnvironment | None = None, clock: Clock | None = None) -> Registry:
    """The registry of a state folder (``{state}/registry.sqlite``); without ``clock`` it only reads."""
    from ..state import StateDir

    return Registry(StateDir(state_root).registry_db, env=env, clock=clock)
