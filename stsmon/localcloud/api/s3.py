"""S3 over the state folder's buckets (``{state}/s3/{bucket}/{key}``), with boto3's shapes.

``list_objects_v2`` (prefix, delimiter, continuation tokens, ``MaxKeys``,
``StartAfter``), ``get_object`` / ``head_object`` (whole objects; the body is
a botocore ``StreamingBody``, as boto3 returns it), ``put_object``
(written atomically: readers see the old object or the new one) and
``delete_objects``. A missing bucket is ``NoSuchBucket``, a missing key
``NoSuchKey`` (404), as S3 answers. Files whose name starts with ``.`` are
the local runtime's temporary files, never objects.
"""

from __future__ import annotations

import base64
import io
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ...clients.errors import client_error
from ...state import StateDir
from ..job_endpoint import MAX_KEYS, LocalBuckets
from ..job_endpoint import _etag as _file_etag


def _modified(stat: os.stat_result) -> datetime:
    # S3 keeps LastModified to the second.
    return datetime.fromtimestamp(int(stat.st_mtime), UTC)


class LocalS3:
    def __init__(self, state: StateDir) -> None:
        self.state = state
        self.buckets = LocalBuckets(state)

    def _bucket(self, operation: str, bucket: str) -> Path:
        path = self.buckets.bucket_path(bucket)
        if path is None:
            raise client_error(operation, "NoSuchBucket", "The specified bucket does not exist", status=404)
        return path

    def list_objects_v2(self, *, Bucket: str, Prefix: str = "", Delimiter: str = "", MaxKeys: int = MAX_KEYS,  # noqa: N803
                        ContinuationToken: str | None = None, StartAfter: str = "", EncodingType: str | None = None,
                        FetchOwner: bool = False, **_: Any) -> dict[str, Any]:
        base = self._bucket("ListObjectsV2", Bucket)
        max_keys = max(0, min(MAX_KEYS, MaxKeys))
        after = StartAfter
        if ContinuationToken is not None:
            try:
                after = base64.urlsafe_b64decode(ContinuationToken.encode()).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise client_error("ListObjectsV2", "InvalidArgument", "The continuation token provided is incorrect") from None
        entries, truncated, last = self.buckets.list_page(Bucket, Prefix, Delimiter, max_keys, after)
        contents, prefixes = [], []
        for kind, value in entries:
            if kind == "prefix":
                prefixes.append({"Prefix": value})
                continue
            path = base.joinpath(*value.split("/"))
            try:
                stat = path.stat()
            except OSError:
                continue  # removed meanwhile: S3 would not list it either
            contents.append({"Key": value, "LastModified": _modified(stat),
                             "ETag": _file_etag(path, stat),
                             "Size": stat.st_size, "StorageClass": "STANDARD"})
        page: dict[str, Any] = {"IsTruncated": truncated, "Name": Bucket, "Prefix": Prefix, "MaxKeys": max_keys,
                                "KeyCount": len(entries)}
        if contents:
            page["Contents"] = contents
        if prefixes:
            page["CommonPrefixes"] = prefixes
        if Delimiter:
            page["Delimiter"] = Delimiter
        if ContinuationToken is not None:
            page["ContinuationToken"] = ContinuationToken
        if truncated:
            page["NextContinuationToken"] = base64.urlsafe_b64encode(last.encode("utf-8")).decode()
        if StartAfter:
            page["StartAfter"] = StartAfter
        if EncodingType:
            page["EncodingType"] = EncodingType
        return page

    def _object(self, operation: str, bucket: str, key: str) -> Path:
        self._bucket(operation, bucket)
        path = self.buckets.object_path(bucket, key)
        if path is None:
            raise client_error(operation, "NoSuchKey", "The specified key does not exist.", status=404)
        return path

    def head_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        path = self._object("HeadObject", Bucket, Key)
        stat = path.stat()
        return {"ContentLength": stat.st_size, "LastModified": _modified(stat), "ETag": _file_etag(path, stat),
                "ContentType": "binary/octet-stream", "AcceptRanges": "bytes"}

    def get_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        from botocore.response import StreamingBody

        path = self._object("GetObject", Bucket, Key)
        try:
            data = path.read_bytes()
            stat = path.stat()
        except OSError:
            raise client_error("GetObject", "NoSuchKey", "The specified key does not exist.", status=404) from None
        return {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentLength": len(data),
                "LastModified": _modified(stat), "ETag": _file_etag(path, stat), "ContentType": "binary/octet-stream",
                "AcceptRanges": "bytes"}

    def put_object(self, *, Bucket: str, Key: str, Body: Any = b"", ServerSideEncryption: str | None = None,  # noqa: N803
                   SSEKMSKeyId: str | None = None, **_: Any) -> dict[str, Any]:
        base = self._bucket("PutObject", Bucket)
        parts = Key.split("/")
        if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            # S3 takes such keys; a folder tree cannot hold them (and '.'-names are the runtime's temporary files).
            raise client_error("PutObject", "InvalidArgument",
                               f"the local S3 cannot store the key {Key!r} (empty, '.' or '..' segments, or a "
                               f"segment starting with '.')")
        data = Body.read() if hasattr(Body, "read") else Body
        data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        target = base.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        out: dict[str, Any] = {"ETag": _file_etag(target, target.stat())}
        if ServerSideEncryption:
            out["ServerSideEncryption"] = ServerSideEncryption
        if SSEKMSKeyId:
            out["SSEKMSKeyId"] = SSEKMSKeyId
        return out

    def delete_objects(self, *, Bucket: str, Delete: dict[str, Any], **_: Any) -> dict[str, Any]:  # noqa: N803
        self._bucket("DeleteObjects", Bucket)
        deleted = []
        for entry in Delete.get("Objects") or []:
            path = self.buckets.object_path(Bucket, entry["Key"])
            if path is not None:
                path.unlink(missing_ok=True)
            deleted.append({"Key": entry["Key"]})  # S3 reports a missing key as deleted too
        return {} if Delete.get("Quiet") else {"Deleted": deleted}
